"""Compact storage of a trained network: 8-bit kernels, computed in float32 once loaded.

A full-width generator is 97 MB in float32 and 48 MB in float16, more than the
package can carry beside its other weights; 8-bit kernels with one scale per
group take a quarter. Only the storage is quantised: :func:`load_packed`
rebuilds the Keras model and gives it float32 weights (kernel = int8 × scale),
so it trains, saves and exports like any other. Each scale covers one kernel
slice along the input channels (a 3×3 convolution's kernel ``(3, 3, in, out)``
has ``3·3·out`` scales), symmetric, the largest magnitude mapped to 127.

The file is a NumPy ``.npz`` read with ``allow_pickle=False``: arrays and the
model's Keras config (JSON), deserialised in safe mode — no code is loaded.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras
import numpy as np

from rdanet_gan.errors import ModelFileError
from rdanet_gan.fileio import atomic_path

PACKED_SUFFIX = ".npz"
MIN_QUANTISED_SIZE = 1024
"""Weights with fewer values (biases, BatchNorm vectors, small kernels) stay float32: they cost nothing."""


def pack_model(model: keras.Model, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``model`` to ``path`` (``.npz``): its config, its kernels as int8 with float32 scales, the rest float32."""
    path = Path(path)
    if path.suffix != PACKED_SUFFIX:
        raise ValueError(f"{path}: a packed model file ends in {PACKED_SUFFIX}")
    arrays = {"config": np.array(json.dumps(keras.saving.serialize_keras_object(model)))}
    for index, weight in enumerate(model.get_weights()):
        if weight.ndim >= 2 and weight.size >= MIN_QUANTISED_SIZE:
            arrays[f"kernel_{index}"], arrays[f"scale_{index}"] = quantise(weight)
        else:
            arrays[f"weight_{index}"] = weight.astype(np.float32)
    with atomic_path(path, overwrite) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def quantise(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 values and float32 scales of ``kernel``, one scale per slice along axis ``-2``."""
    scale = np.abs(kernel).max(axis=-2, keepdims=True).astype(np.float32) / 127.0
    scale[scale == 0] = 1.0
    return np.clip(np.round(kernel / scale), -127, 127).astype(np.int8), scale


def load_packed(path: str | os.PathLike) -> keras.Model:
    """The Keras model stored by :func:`pack_model`, with float32 weights; one-line errors name the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise ModelFileError(path, "not a readable packed model (.npz) file (truncated or corrupted?)") from None
    if "config" not in arrays:
        raise ModelFileError(path, "not a packed model: no Keras config inside")
    try:
        model = keras.saving.deserialize_keras_object(json.loads(str(arrays["config"])), safe_mode=True)
        count = len(model.weights)
        model.set_weights([_weight(arrays, index) for index in range(count)])
    except KeyError as error:
        raise ModelFileError(path, f"packed model lacks weight {error.args[0]} of {count}") from None
    except (TypeError, ValueError) as error:
        raise ModelFileError(path, f"cannot be loaded: {str(error).splitlines()[0]}") from None
    return model


def _weight(arrays: dict[str, np.ndarray], index: int) -> np.ndarray:
    """Weight ``index`` in float32: stored as it is, or dequantised."""
    if f"weight_{index}" in arrays:
        return arrays[f"weight_{index}"]
    if f"kernel_{index}" in arrays and f"scale_{index}" in arrays:
        return arrays[f"kernel_{index}"].astype(np.float32) * arrays[f"scale_{index}"]
    raise KeyError(index)
