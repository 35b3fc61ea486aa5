"""Segment scans of any size with a trained segmenter and write the masks."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from rdanet_gan.data import read_image
from rdanet_gan.data.dicom import read_dicom
from rdanet_gan.errors import DataError
from rdanet_gan.evaluation.scoring import resize_to
from rdanet_gan.fileio import atomic_path
from rdanet_gan.postprocess import InferenceSettings, predict_with_flips

if TYPE_CHECKING:
    import keras


def read_scan(path: str | Path) -> np.ndarray:
    """A scan as float32 gray in [0, 1] at its own size (DICOM by its ``.dcm`` suffix).

    A file that cannot be read is a one-line :class:`DataError`. pydicom's
    warnings about a damaged DICOM are not shown: it reads, or is refused.
    """
    path = Path(path)
    if path.suffix.lower() != ".dcm":
        return read_image(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
            return read_dicom(path)[0]
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 - a damaged header read lazily (pixel spacing, bits) raises many types
        raise DataError(path, f"not a readable DICOM file ({type(error).__name__})") from None


def refuse_degenerate(path: str | Path, image: np.ndarray) -> None:
    """Refuse a scan whose pixels are all equal (a blank frame, a 1x1 image) with a DataError.

    It shows no tissue, so no finding either way: a mask of it, even an empty
    one, would read as a result ("no lesion"), where the file needs checking.
    """
    if image.size == 0 or image.min() == image.max():
        raise DataError(path, "degenerate image (all pixels equal)")


def network_probability(model: keras.Model, image: np.ndarray, flip_tta: bool = False) -> np.ndarray:
    """The lesion probability map of one 2-D scan at the network's input size.

    The scan is area-resized to the network's input, as in training.
    ``flip_tta`` averages with the prediction for the mirrored scan.
    """
    height, width = model.input_shape[1:3]
    small = cv2.resize(image.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)[None, ..., None]
    if flip_tta:
        return predict_with_flips(model, small)[0, ..., 0]
    return np.asarray(model(small, training=False))[0, ..., 0]


def predict_probability(model: keras.Model, image: np.ndarray, flip_tta: bool = False) -> np.ndarray:
    """The lesion probability map of one 2-D scan, at the scan's own size (resized back bilinearly)."""
    return resize_to(network_probability(model, image, flip_tta), image.shape)


def segment_image(
    model: keras.Model,
    image: np.ndarray,
    threshold: float = 0.5,
    flip_tta: bool = False,
    postprocess: bool = False,
    presence: float = 0.0,
) -> np.ndarray:
    """The binary lesion mask of one 2-D scan, at the scan's own size.

    ``flip_tta`` averages with the mirrored scan's prediction; ``postprocess``
    keeps the largest region with its holes filled (none when it is too small
    to be a lesion: :func:`rdanet_gan.postprocess.clean_mask`); ``presence``
    gives an empty mask when the scan's peak probability stays below it, the
    peak at the network's size, where the level was chosen (resizing can lower it).
    """
    settings = InferenceSettings(threshold, flip_tta, postprocess, presence)
    probability = network_probability(model, image, flip_tta)
    return settings.mask(resize_to(probability, image.shape), peak=float(probability.max()))


def write_mask(mask: np.ndarray, path: str | Path, overwrite: bool = False) -> None:
    """Write a binary mask as an 8-bit PNG (0 background, 255 lesion), atomically."""
    ok, encoded = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8))
    if not ok:
        raise DataError(path, "could not encode the mask as PNG")
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(encoded.tobytes())
