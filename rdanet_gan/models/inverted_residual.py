"""The inverted residual trunk shared by the pretrained encoders.

MobileNetV2's inverted residual block and EfficientNet-Lite's MBConv block (which is the same
block without squeeze-and-excitation) are 1×1 expansion, depthwise convolution and a linear 1×1
projection, with a residual sum where the shape allows. The encoders differ only in their stage
tables and in how they pad a convolution (``conv_bn``), which each module keeps for its weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
from keras import layers

ConvBN = Callable[..., keras.KerasTensor]
"""``conv_bn(x, filters, kernel, stride, name, bn_momentum, depthwise=False, relu=True)``."""


def as_rgb(image: keras.KerasTensor) -> keras.KerasTensor:
    """A gray scan repeated to the three channels ImageNet weights expect (an RGB input as it is)."""
    return layers.Concatenate(name="encoder_rgb")([image, image, image]) if image.shape[-1] == 1 else image


def inverted_residual_stages(
    x: keras.KerasTensor,
    stages: Sequence[tuple[int, int, int, int, int]],
    channels: int,
    first_block: int,
    feature_blocks: dict[int, int],
    conv_bn: ConvBN,
    bn_momentum: float,
) -> dict[int, keras.KerasTensor]:
    """Run ``x`` (``channels`` wide) through the stages; return the outputs of ``feature_blocks`` by stride.

    ``stages`` are (expansion, channels, repeats, first stride, kernel); blocks are numbered from
    ``first_block`` and their layers named ``encoder_b{N}_{expand,depthwise,project,add}``.
    """
    features: dict[int, keras.KerasTensor] = {}
    block = first_block
    for expansion, width, repeats, first_stride, kernel in stages:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            name = f"encoder_b{block}"
            y = x
            if expansion != 1:
                y = conv_bn(y, channels * expansion, 1, 1, f"{name}_expand", bn_momentum)
            y = conv_bn(y, 0, kernel, stride, f"{name}_depthwise", bn_momentum, depthwise=True)
            y = conv_bn(y, width, 1, 1, f"{name}_project", bn_momentum, relu=False)
            x = layers.Add(name=f"{name}_add")([x, y]) if stride == 1 and channels == width else y
            channels = width
            for stride_of_level, feature_block in feature_blocks.items():
                if feature_block == block:
                    features[stride_of_level] = x
            block += 1
    return features
