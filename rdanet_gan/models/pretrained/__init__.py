"""The pretrained encoders' ImageNet weights: NumPy archives in PyTorch's names and layout.

Each encoder module (``mobilenet_v2``, ``efficientnet_lite0``) lists its weighted layers as
``(Keras layer name, PyTorch name prefix, kind)`` sources; the helpers here read an archive of
this folder without pickles and set those layers from it. Licences: ``NOTICE`` in this folder.
"""

from __future__ import annotations

from importlib import resources

import keras
import numpy as np

BN_ARRAYS = ("weight", "bias", "running_mean", "running_var")
"""PyTorch's BatchNorm arrays, in the order Keras's ``BatchNormalization`` takes them (γ, β, mean, variance)."""


def read_arrays(file_name: str) -> dict[str, np.ndarray]:
    """The arrays of archive ``file_name`` of this folder, as stored (``allow_pickle=False``)."""
    source = resources.files(__name__).joinpath(file_name)
    with source.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def keras_weights(arrays: dict[str, np.ndarray], torch_prefix: str, kind: str) -> list[np.ndarray]:
    """One layer's weights in Keras's layout and float32, from PyTorch's (OIHW kernels, BatchNorm's four vectors).

    ``kind`` is ``"conv"``, ``"depthwise"`` or ``"bn"``; an archive may store kernels as float16.
    """
    if kind == "bn":
        return [arrays[f"{torch_prefix}.{name}"].astype(np.float32) for name in BN_ARRAYS]
    kernel = arrays[f"{torch_prefix}.weight"].astype(np.float32)
    return [kernel.transpose(2, 3, 0, 1) if kind == "depthwise" else kernel.transpose(2, 3, 1, 0)]


def set_weights(model: keras.Model, sources: list[tuple[str, str, str]], arrays: dict[str, np.ndarray]) -> None:
    """Set every source layer of ``model`` from ``arrays``."""
    for layer_name, torch_prefix, kind in sources:
        model.get_layer(layer_name).set_weights(keras_weights(arrays, torch_prefix, kind))
