"""SegNet (Badrinarayanan et al. 2017), the paper's second baseline.

A VGG16 encoder (13 convolutions with batch normalisation, five 2×2 max
poolings) and a mirrored decoder: level ``k`` works at ``1 / 2**(k - 1)`` of
the input size, ``enc1`` … ``enc5`` go down and ``dec5`` → ``dec1`` come back
up, each decoder level first unpooling (``unpool{k}``) to the size of
``enc{k}``.

Unpooling ``"indices"`` (the default) is SegNet's own: every value returns to
the position that won the max pooling of ``enc{k}`` (recorded by
``switches{k}``), the other three positions of the 2×2 window get zero; this
keeps boundaries sharp without learned upsampling, which is the point of the
architecture, so the baseline is faithful by default. ``"upsample"`` copies
each value to the whole window (nearest-neighbour), a cheaper variant that
stores no switches.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from rdanet_gan.models.blocks import BN_MOMENTUM, check_input_shape, conv_block

VGG16_STAGES = ((1, 2), (2, 2), (4, 3), (8, 3), (8, 3))
"""``(width multiplier, convolutions)`` of the five VGG16 stages (64 … 512 at width 64)."""

UNPOOLING = ("indices", "upsample")


@keras.saving.register_keras_serializable(package="rdanet_gan")
class PoolingSwitches(keras.layers.Layer):
    """One-hot map of where each ``pool_size``×``pool_size`` max pooling window has its maximum.

    The output has the shape of the input: 1 at the winner of every window
    and channel, 0 elsewhere; ties go to the first position in row-major
    order, as in ``tf.nn.max_pool_with_argmax``. Multiplying a
    nearest-neighbour upsampled map by it is max unpooling. Built from
    reshape, argmax and one-hot only, so it runs under XLA, and it carries no
    gradient (argmax is piecewise constant).
    """

    def __init__(self, pool_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pool_size

    def call(self, inputs):
        p = self.pool_size
        height, width, channels = inputs.shape[1:]
        windows = ops.reshape(inputs, (-1, height // p, p, width // p, p, channels))
        windows = ops.transpose(windows, (0, 1, 3, 5, 2, 4))
        windows = ops.reshape(windows, (-1, height // p, width // p, channels, p * p))
        switches = ops.one_hot(ops.argmax(windows, axis=-1), p * p, dtype=self.compute_dtype)
        switches = ops.reshape(switches, (-1, height // p, width // p, channels, p, p))
        switches = ops.transpose(switches, (0, 1, 4, 2, 5, 3))
        return ops.reshape(switches, (-1, height, width, channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


def _decoder_widths(base_width: int) -> list[list[int]]:
    """Channels of each decoder convolution, ``dec1`` first, mirroring the VGG16 encoder.

    A level keeps its encoder width except in its last convolution, which
    narrows to the width of the level above (SegNet's ``conv4_1_D`` etc.);
    ``dec1`` keeps one convolution less, the caller's one-channel classifier.
    """
    widths = []
    for level, (multiplier, convs) in enumerate(VGG16_STAGES):
        width = base_width * multiplier
        if level == 0:
            widths.append([width] * (convs - 1))
        else:
            widths.append([width] * (convs - 1) + [base_width * VGG16_STAGES[level - 1][0]])
    return widths


def build_segnet(
    input_shape: Sequence[int] = (128, 128, 1),
    base_width: int = 64,
    unpooling: str = "indices",
    bn_momentum: float = BN_MOMENTUM,
    name: str = "segnet",
) -> keras.Model:
    """Build SegNet, mapping images ``[B, H, W, C]`` to lesion probabilities ``[B, H, W, 1]``.

    Args:
        input_shape: ``(height, width, channels)``; height and width must be
            multiples of 32 (five poolings).
        base_width: channels of the first VGG16 stage (64 in the paper).
        unpooling: ``"indices"`` (max-pooling switches, SegNet's own and the
            default) or ``"upsample"`` (nearest-neighbour); see the module docstring.
        bn_momentum: batch-norm momentum, 0.9 for short epochs (see
            :mod:`rdanet_gan.models.blocks`).
        name: model name.

    As in SegNet the last convolution is a 3×3 classifier (``logits``, one
    channel), followed by the float32 sigmoid ``mask``.
    """
    check_input_shape(input_shape, len(VGG16_STAGES), "segnet")
    if unpooling not in UNPOOLING:
        raise ValueError(f"unpooling must be one of {', '.join(map(repr, UNPOOLING))}, got {unpooling!r}")

    image = keras.Input(shape=tuple(input_shape), name="image")
    switches = []
    x = image
    for level, (multiplier, convs) in enumerate(VGG16_STAGES, start=1):
        x = conv_block(x, [base_width * multiplier] * convs, "batch", f"enc{level}", bn_momentum)
        if unpooling == "indices":
            switches.append(PoolingSwitches(name=f"switches{level}")(x))
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)

    decoder_widths = _decoder_widths(base_width)
    for level in range(len(VGG16_STAGES), 0, -1):
        x = layers.UpSampling2D(2, name=f"unpool{level}")(x)
        if unpooling == "indices":
            x = layers.Multiply(name=f"unpool{level}_switched")([x, switches[level - 1]])
        x = conv_block(x, decoder_widths[level - 1], "batch", f"dec{level}", bn_momentum)

    logits = layers.Conv2D(1, 3, padding="same", name="logits")(x)
    mask = layers.Activation("sigmoid", dtype="float32", name="mask")(logits)
    return keras.Model(image, mask, name=name)
