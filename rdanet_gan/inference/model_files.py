"""Loading model files safely, and the shipped weights checked against their manifest."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from rdanet_gan.errors import ModelFileError
from rdanet_gan.inference.ensemble_file import ENSEMBLE_SUFFIX, load_ensemble_file
from rdanet_gan.inference.litert import LiteRTSegmenter
from rdanet_gan.inference.settings import inference_file

if TYPE_CHECKING:
    import keras

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
"""The shipped models and their records, installed with the package."""
MANIFEST = WEIGHTS_DIR / "manifest.json"
DEFAULT_MODEL = "rdau_net_ensemble.json"
"""The model ``segment`` and :func:`load_shipped` use: an ensemble file (:mod:`rdanet_gan.inference.ensemble_file`)
naming :data:`VGG16_MODEL` and :data:`MOBILENET_MODEL`, the mean of their logits, a lesion reported only where both
networks' peaks agree; it won on validation against VGG16-HED alone (``benchmarks/results/cosine-schedule.md``; model
card ``weights/README.md``). It runs in Keras: no LiteRT export of the VGG16 member fits the package."""
VGG16_MODEL = "rdau_net_vgg16_hed.npz"
"""RDAU-Net's decoder on a VGG16 encoder that started from HED's weights, trained with the presence term, packed:
the default until the ensemble it belongs to replaced it (``benchmarks/results/presence-loss.md``)."""
MOBILENET_MODEL = "rdau_net_mobilenet_v2.npz"
"""RDAU-Net's decoder on an ImageNet MobileNetV2, packed: the other member of the default ensemble and the lighter
shipped model, with a twentieth of VGG16-HED's arithmetic and a shipped LiteRT export (``rdau_net_mobilenet_v2.tflite``),
the fastest on a CPU."""
EXPORT_SUFFIX = ".tflite"
"""A LiteRT export of a segmenter (``rdanet-gan export``); :data:`MOBILENET_MODEL` ships one."""
PAPER_MODEL = "rdanet_gan.npz"
"""The paper's RDA-NET-GAN generator at reduced size (base width 8, 20 epochs): the reduced-size Table 1's model,
packed like :data:`FULL_SIZE_MODEL`."""
FULL_SIZE_MODEL = "rdanet_gan_full.npz"
"""The paper's RDA-NET-GAN generator at the paper's size (base width 32, 50 + 50 epochs), packed: 8-bit kernels
stored, float32 computed (:mod:`rdanet_gan.models.packed`; validation Dice within 0.002 of float32)."""
_UNKNOWN_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def load_segmenter(path: str | Path) -> keras.Model | LiteRTSegmenter:
    """Load a ``.keras`` segmenter in safe mode (no Lambda layers, no unknown classes), a packed ``.npz`` one,
    an ensemble file (``.json``, :mod:`rdanet_gan.inference.ensemble_file`), or a ``.tflite`` export as a
    :class:`~rdanet_gan.inference.litert.LiteRTSegmenter`. Dilated convolutions
    come back as :class:`~rdanet_gan.models.blocks.DilatedConv2D` (same outputs, faster). Every failure is one line naming the file:
    missing, not an intact ``.keras`` archive, refused by safe mode, or not a segmenter (one-channel image
    in, one-channel mask of the same size out)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such model file")
    if path.suffix.lower() == EXPORT_SUFFIX:
        return LiteRTSegmenter(path)
    if path.suffix.lower() == ENSEMBLE_SUFFIX:
        return load_ensemble_file(path)
    model = _load_packed(path) if path.suffix.lower() == ".npz" else _load_keras(path)
    from rdanet_gan.models.blocks import with_dilated_conv2d

    model = with_dilated_conv2d(model)  # files saved before DilatedConv2D: the same function, faster
    inputs, outputs = model.input_shape, model.output_shape
    image = isinstance(inputs, tuple) and len(inputs) == 4 and all(isinstance(side, int) for side in inputs[1:])
    if not (image and inputs[3] == 1 and outputs == inputs):
        why = f"not a segmenter: maps {inputs} to {outputs}, expected (None, H, W, 1) to the same shape"
        raise ModelFileError(path, why)
    return model


def _load_keras(path: Path) -> keras.Model:
    """A ``.keras`` archive, checked first, loaded in safe mode."""
    _check_archive(path)
    import keras  # here, not at import: a LiteRT export runs without TensorFlow

    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - Keras raises many types; the user needs one line
        raise ModelFileError(path, _load_problem(error)) from None


def _load_packed(path: Path) -> keras.Model:
    """A packed model (:mod:`rdanet_gan.models.packed`: 8-bit kernels, float32 once loaded)."""
    from rdanet_gan.models.packed import load_packed

    return load_packed(path)


def verify_shipped(path: str | Path, manifest: str | Path | None = None) -> None:
    """Check a shipped model file against the SHA-256 recorded in ``manifest`` (default: :data:`MANIFEST`)."""
    path, manifest = Path(path), Path(manifest or MANIFEST)
    try:
        entries = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError) as error:
        raise ModelFileError(manifest, f"cannot read the weights manifest ({error})") from None
    folder, resolved = manifest.resolve().parent, path.resolve()  # the manifest names files by their path in it
    key = resolved.relative_to(folder).as_posix() if resolved.is_relative_to(folder) else path.name
    expected = entries.get(key, {}).get("sha256")
    if expected is None:
        raise ModelFileError(path, "not listed in the weights manifest")
    if not path.is_file():
        raise ModelFileError(path, "shipped model file is missing")
    if sha256(path) != expected:
        raise ModelFileError(path, "SHA-256 differs from rdanet_gan/weights/manifest.json (modified or corrupted file)")


def load_shipped(name: str | None = None) -> keras.Model | LiteRTSegmenter:
    """Load a model (``.keras``, packed ``.npz`` or LiteRT export) shipped in ``rdanet_gan/weights/``, ``name``
    or by default :data:`DEFAULT_MODEL`, after checking its hash and that of its inference settings."""
    path = WEIGHTS_DIR / (name or DEFAULT_MODEL)
    if not path.is_file():
        raise ModelFileError(path, "no shipped model of that name; train one or pass --model FILE")
    verify_shipped(path)
    if inference_file(path).exists():  # applied by segment: shipped and hashed with the model
        verify_shipped(inference_file(path))
    return load_segmenter(path)


def open_segmenter(path: str | Path | None = None, backend: str | None = None) -> tuple[keras.Model | LiteRTSegmenter, Path]:
    """The segmenter a prediction runs, and its file: ``path`` (:func:`load_segmenter`; a bare name that is no
    file here but a shipped model's, such as ``rdanet_gan_full.npz``, is that model, hash-checked), or the
    shipped default model (:func:`load_shipped`) run by its LiteRT export where one is shipped, or by Keras when
    ``backend`` is ``"keras"`` or there is none (``backend`` ``"litert"`` then is a one-line error)."""
    if path is not None:
        path = Path(path)
        if not path.exists() and str(path) == path.name and (WEIGHTS_DIR / path.name).is_file():
            return load_shipped(path.name), WEIGHTS_DIR / path.name
        return load_segmenter(path), path
    export = WEIGHTS_DIR / Path(DEFAULT_MODEL).with_suffix(EXPORT_SUFFIX).name
    if backend == "litert" and not export.is_file():
        light = Path(MOBILENET_MODEL).with_suffix(EXPORT_SUFFIX).name
        why = f"the default model ships no LiteRT export; run it with --backend keras, or give --model {light} (the lighter shipped model's)"
        raise ModelFileError(export, why)
    shipped = export.name if backend != "keras" and export.is_file() else DEFAULT_MODEL
    return load_shipped(shipped), WEIGHTS_DIR / shipped


def _check_archive(path: Path) -> None:
    """Refuse, before Keras reads it, a file that is not an intact ``.keras`` archive or holds a Lambda layer."""
    seen = []  # the class_name of every object in the config, nested layers and models included
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            if damaged is None:
                json.loads(archive.read("config.json"), object_hook=lambda obj: seen.append(obj.get("class_name")) or obj)
    except KeyError:
        raise ModelFileError(path, "not a .keras model archive (no config.json inside)") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise ModelFileError(path, "not a readable .keras model archive (truncated or corrupted?)") from None
    if damaged is not None:
        raise ModelFileError(path, f"corrupted .keras model archive ({damaged} fails its checksum)")
    if "Lambda" in seen:
        raise ModelFileError(path, "refused: holds a Lambda layer (arbitrary Python code), which safe mode never loads")


def _load_problem(error: Exception) -> str:
    """One line saying why Keras could not load a model file."""
    text = str(error)
    unknown = _UNKNOWN_CLASS.search(text)
    if unknown:
        return f"refused: unknown class {unknown[1]!r} (not a Keras or rdanet_gan class; custom code is not loaded)"
    detail = text.rpartition("Exception encountered:")[2].strip()
    return f"cannot be loaded: {detail.splitlines()[0] if detail else type(error).__name__}"
