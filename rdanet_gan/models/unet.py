"""U-Net (Ronneberger et al. 2015), the paper's first baseline, with same padding.

Level ``k`` works at ``1 / 2**(k - 1)`` of the input size: ``enc1`` …
``enc{depth}`` each apply two 3×3 convolutions before a 2×2 max pooling
(``pool{k}``), the ``bottleneck`` doubles the channels once more, and the
decoder runs ``dec{depth}`` → ``dec1``: a 2×2 up-convolution halving the
channels (``up{k}``), concatenation with ``enc{k}`` and two 3×3 convolutions.
The built model's ``decoder_outputs`` maps each level ``k`` to the output of ``dec{k}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from rdanet_gan.models.blocks import (
    BN_MOMENTUM,
    check_dropout,
    check_input_shape,
    check_norm,
    conv_block,
)

DEPTH = 4
"""Encoder levels of the default U-Net (the paper's): each halves the map."""


def build_unet(
    input_shape: Sequence[int] = (128, 128, 1),
    base_width: int = 64,
    depth: int = DEPTH,
    norm: str = "none",
    bn_momentum: float = BN_MOMENTUM,
    dropout: float = 0.0,
    name: str = "unet",
) -> keras.Model:
    """Build a U-Net mapping images ``[B, H, W, C]`` to lesion probabilities ``[B, H, W, 1]``.

    Args:
        input_shape: ``(height, width, channels)``; height and width must be
            multiples of ``2**depth``.
        base_width: channels of ``enc1``, doubled at every level (64 in the paper).
        depth: number of poolings (4 in the paper).
        norm: ``"none"`` as in the 2015 U-Net; ``"batch"``, ``"group"`` or
            ``"instance"`` after every convolution.
        bn_momentum: batch-norm momentum, 0.9 for short epochs (see
            :mod:`rdanet_gan.models.blocks`).
        dropout: dropout rate on the bottleneck features, where the original
            U-Net places it (0 disables it).
        name: model name.

    The output layer ``mask`` is a float32 sigmoid even under mixed precision.
    ``model.decoder_outputs`` maps each decoder level ``k`` (1 to ``depth``, at
    ``1 / 2**(k - 1)`` of the input size) to its features.
    """
    if depth < 1:
        raise ValueError(f"unet: depth must be at least 1, got {depth}")
    check_input_shape(input_shape, depth, "unet")
    check_norm(norm)
    check_dropout(dropout)

    image = keras.Input(shape=tuple(input_shape), name="image")
    skips = []
    x = image
    for level in range(1, depth + 1):
        width = base_width * 2 ** (level - 1)
        x = conv_block(x, (width, width), norm, f"enc{level}", bn_momentum)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)

    width = base_width * 2**depth
    x = conv_block(x, (width, width), norm, "bottleneck", bn_momentum)
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)

    decoder_outputs = {}
    for level in range(depth, 0, -1):
        width = base_width * 2 ** (level - 1)
        x = layers.Conv2DTranspose(width, 2, strides=2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([skips[level - 1], x])
        x = conv_block(x, (width, width), norm, f"dec{level}", bn_momentum)
        decoder_outputs[level] = x

    logits = layers.Conv2D(1, 1, name="logits")(x)
    mask = layers.Activation("sigmoid", dtype="float32", name="mask")(logits)
    model = keras.Model(image, mask, name=name)
    model.decoder_outputs = dict(sorted(decoder_outputs.items()))
    return model
