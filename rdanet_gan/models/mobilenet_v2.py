"""MobileNetV2 (Sandler et al. 2018) as a pretrained encoder, with torchvision's ImageNet weights.

The layers follow torchvision's ``mobilenet_v2`` exactly (symmetric padding on stride-2
convolutions, ReLU6, BatchNorm epsilon 1e-5), so its ImageNet weights, shipped in
``pretrained/mobilenet_v2_imagenet.npz`` (made by ``tools/convert_mobilenet_v2.py``; BSD-3-Clause,
see ``pretrained/NOTICE``), give the same features here. Keras's own ``MobileNetV2`` pads
stride-2 convolutions on one side only and could not reuse them.

:func:`mobilenet_v2_features` maps a gray scan to the encoder's feature maps by stride (2 to
32), as KerasHub backbones expose their pyramid outputs. Every layer's name starts with
``encoder_``, which is how a per-encoder learning rate finds them
(:class:`~rdanet_gan.training.optimizers.EncoderScaledAdam`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from rdanet_gan.models import pretrained
from rdanet_gan.models.blocks import BN_MOMENTUM
from rdanet_gan.models.inverted_residual import as_rgb, inverted_residual_stages

WEIGHTS_FILE = "mobilenet_v2_imagenet.npz"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPSILON = 1e-5
"""PyTorch's BatchNorm epsilon, which the weights were trained with (Keras defaults to 1e-3)."""

INVERTED_RESIDUALS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
"""(expansion, channels, repeats, first stride) of each stage: torchvision's table."""

FEATURE_BLOCKS = {2: 1, 4: 3, 8: 6, 16: 13, 32: 17}
"""Stride → the block (``features.N``) whose output is the feature map at that stride."""


def _conv_bn(
    x, filters: int, kernel: int, stride: int, name: str, bn_momentum: float, depthwise: bool = False, relu: bool = True
):
    """Convolution → BatchNorm (→ ReLU6), padded as PyTorch pads: ``kernel // 2`` on every side."""
    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, strides=stride, use_bias=False, name=f"{name}_dw")(x)
    else:
        x = layers.Conv2D(filters, kernel, strides=stride, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu else x


def _layer_sources() -> list[tuple[str, str, str]]:
    """(Keras layer name, torchvision name prefix, kind) for every weighted layer of the encoder."""
    sources = [("encoder_b0_conv", "features.0.0", "conv"), ("encoder_b0_bn", "features.0.1", "bn")]
    block = 1
    for expansion, _, repeats, _ in INVERTED_RESIDUALS:
        for _ in range(repeats):
            prefix, torch_prefix = f"encoder_b{block}", f"features.{block}.conv"
            parts = ([] if expansion == 1 else ["expand"]) + ["depthwise", "project"]
            for index, part in enumerate(parts):
                kind = "depthwise" if part == "depthwise" else "conv"
                if part == "project":  # a bare convolution then a BatchNorm, not a ConvBNReLU
                    sources += [(f"{prefix}_project_conv", f"{torch_prefix}.{index}", kind)]
                    sources += [(f"{prefix}_project_bn", f"{torch_prefix}.{index + 1}", "bn")]
                else:
                    suffix = "dw" if part == "depthwise" else "conv"
                    sources += [(f"{prefix}_{part}_{suffix}", f"{torch_prefix}.{index}.0", kind)]
                    sources += [(f"{prefix}_{part}_bn", f"{torch_prefix}.{index}.1", "bn")]
            block += 1
    return sources


def imagenet_arrays() -> dict[str, np.ndarray]:
    """torchvision's ImageNet MobileNetV2 encoder arrays (PyTorch names and layout), read without pickles."""
    return pretrained.read_arrays(WEIGHTS_FILE)


def mobilenet_v2_features(
    image: keras.KerasTensor, bn_momentum: float = BN_MOMENTUM
) -> tuple[dict[int, keras.KerasTensor], list[tuple[str, str, str]]]:
    """The MobileNetV2 trunk on ``image`` (gray or RGB in [0, 1]): feature maps by stride, weight sources.

    A gray scan is repeated to three channels and normalised with ImageNet's mean and standard
    deviation inside the network, so callers feed the same [0, 1] scans as to every other network.
    """
    x = layers.Normalization(
        mean=list(IMAGENET_MEAN), variance=[s * s for s in IMAGENET_STD], name="encoder_imagenet_normalize"
    )(as_rgb(image))
    x = _conv_bn(x, 32, 3, 2, "encoder_b0", bn_momentum)
    stages = [(*stage, 3) for stage in INVERTED_RESIDUALS]  # every depthwise kernel is 3×3
    features = inverted_residual_stages(x, stages, 32, 1, FEATURE_BLOCKS, _conv_bn, bn_momentum)
    return features, _layer_sources()


def load_imagenet_weights(model: keras.Model, sources: list[tuple[str, str, str]]) -> None:
    """Set the encoder layers of ``model`` to torchvision's ImageNet weights."""
    pretrained.set_weights(model, sources, imagenet_arrays())
