"""Lesion probabilities and masks from a segmenter (Keras model or LiteRT export): batches at the network's
input size, and one scan of any size, area-resized to the network's input as in training and its probability
map resized back bilinearly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

from rdanet_gan.inference.settings import InferenceSettings

if TYPE_CHECKING:
    import keras


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Lesion probabilities ``(N, H, W, 1)`` float32 of a one-channel sigmoid model, in inference mode."""
    probabilities = np.asarray(model.predict(images, batch_size=batch_size, verbose=0)).astype(np.float32)
    if probabilities.ndim != 4 or probabilities.shape[-1] != 1:
        raise ValueError(f"expected model outputs of shape (N, H, W, 1), got {probabilities.shape}")
    return probabilities


def predict_with_flips(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Mean probability over the scan and its horizontal mirror (the flip used in training)."""
    plain = model.predict(images, batch_size=batch_size, verbose=0)
    mirrored = model.predict(images[:, :, ::-1], batch_size=batch_size, verbose=0)[:, :, ::-1]
    return (plain + mirrored) / 2.0


def resize_to(probability: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Bilinear resize of a ``(h, w)`` (or ``(h, w, 1)``) probability map to ``(H, W) = shape[:2]``."""
    probability = np.asarray(probability)
    if probability.ndim == 3 and probability.shape[-1] == 1:
        probability = probability[..., 0]
    if probability.ndim != 2:
        raise ValueError(f"expected a 2-D probability map, got shape {probability.shape}")
    height, width = shape[:2]
    return cv2.resize(probability.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def network_probability(model: keras.Model, image: np.ndarray, flip_tta: bool = False) -> np.ndarray:
    """The lesion probability map of one 2-D scan at the network's input size (``flip_tta``: averaged with
    the mirrored scan's)."""
    height, width = model.input_shape[1:3]
    small = cv2.resize(image.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)[None, ..., None]
    if flip_tta:
        return predict_with_flips(model, small)[0, ..., 0]
    return np.asarray(model(small, training=False))[0, ..., 0]


def predict_probability(model: keras.Model, image: np.ndarray, flip_tta: bool = False) -> np.ndarray:
    """The lesion probability map of one 2-D scan, at the scan's own size."""
    return resize_to(network_probability(model, image, flip_tta), image.shape)


class ScanSegmentation(NamedTuple):
    """One scan segmented: its binary lesion mask at the scan's own size, and the peak lesion probability at the
    network's size, which the presence level is compared with (so a user can choose another level afterwards)."""

    mask: np.ndarray
    peak: float


def segment_scan(model: keras.Model, image: np.ndarray, settings: InferenceSettings | None = None) -> ScanSegmentation:
    """One 2-D scan's lesion mask under ``settings`` (default: threshold 0.5), with its peak probability.

    The presence level is decided on the peak probability at the network's size, where it was chosen
    (resizing can lower it).
    """
    settings = settings or InferenceSettings()
    probability = network_probability(model, image, settings.flip_tta)
    peak = float(probability.max())
    return ScanSegmentation(settings.mask(resize_to(probability, image.shape), peak=peak), peak)


def segment_image(model: keras.Model, image: np.ndarray, settings: InferenceSettings | None = None) -> np.ndarray:
    """The binary lesion mask of one 2-D scan, at the scan's own size (:func:`segment_scan`'s mask)."""
    return segment_scan(model, image, settings).mask
