"""The Wasserstein critic of RDA-NET-GAN: scores how real an (image, mask) pair looks.

Five stages ``stage1`` … ``stage5`` of two 3×3 convolutions with LeakyReLU,
the second of stride 2 (128×128 → 4×4), then global average pooling and a
linear ``score``. There is no sigmoid (the Wasserstein loss needs an
unbounded score) and no batch normalisation: the gradient penalty of WGAN-GP
is defined per sample, and batch statistics would couple the samples of a
batch. ``norm="layer"`` normalises each sample on its own instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from rdanet_gan.models.blocks import check_input_shape, check_norm, conv3x3, normalize

CRITIC_NORMS = ("none", "layer")
DEPTH = 5
"""Stages of the default critic: each halves the map."""


def build_critic(
    input_shape: Sequence[int] = (128, 128, 2),
    base_width: int = 32,
    depth: int = DEPTH,
    norm: str = "none",
    leaky_slope: float = 0.2,
    name: str = "critic",
) -> keras.Model:
    """Build the critic, mapping ``concat(image, mask)`` ``[B, H, W, 2]`` to scores ``[B, 1]``.

    Args:
        input_shape: ``(height, width, channels)``, the image channels plus
            one mask channel; height and width must be multiples of ``2**depth``.
        base_width: filters of the first stage, doubled at every stage.
        depth: number of stages, each halving the map.
        norm: ``"none"`` or ``"layer"`` (per-sample statistics over height,
            width and channels); batch normalisation is refused because it
            breaks the per-sample gradient penalty.
        leaky_slope: negative slope of the LeakyReLU activations.
        name: model name.

    The ``score`` layer computes in float32 even under mixed precision.
    """
    if depth < 1:
        raise ValueError(f"critic: depth must be at least 1, got {depth}")
    check_input_shape(input_shape, depth, "critic")
    check_norm(norm, CRITIC_NORMS)

    pair = keras.Input(shape=tuple(input_shape), name="image_mask")
    x = pair
    for stage in range(1, depth + 1):
        width = base_width * 2 ** (stage - 1)
        for i, strides in enumerate((1, 2), start=1):
            x = conv3x3(x, width, f"stage{stage}_conv{i}", strides=strides, use_bias=norm == "none")
            x = normalize(x, norm, f"stage{stage}", str(i))
            x = layers.LeakyReLU(leaky_slope, name=f"stage{stage}_lrelu{i}")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    score = layers.Dense(1, dtype="float32", name="score")(x)
    return keras.Model(pair, score, name=name)
