"""RDAU-Net: the generator of RDA-NET-GAN (residual encoder, dilated bottleneck, attention decoder).

Level ``k`` of the network works at ``1 / 2**(k - 1)`` of the input size:
``enc1`` to ``enc6`` go down from 128×128 to 4×4 (by strided convolutions, no
pooling), the ``dilated`` module widens the receptive field at 4×4, and the
decoder runs ``dec5`` → ``dec1`` back up to 128×128. At level ``k`` the
decoder upsamples (``up{k}``), gates the encoder's skip features with the
upsampled map (``att{k}``, projecting to half the skip's channels, with the
coefficients in ``att{k}_coeff``), concatenates and refines with a
pre-activation residual unit (``dec{k}``). A 1×1 convolution (``logits``)
and a sigmoid (``mask``) give the lesion probability. The built model's
``decoder_outputs`` maps each level ``k`` to the output of ``dec{k}`` (as
KerasHub backbones expose ``pyramid_outputs``), e.g. for deep supervision.

With ``encoder="mobilenet_v2"`` or ``encoder="efficientnet_lite0"`` an
ImageNet-pretrained MobileNetV2 or EfficientNet-Lite0 replaces ``enc2`` …
``enc6`` (its feature maps at strides 2 to 32), with ``encoder="vgg16_hed"``
HED's VGG16 (ImageNet VGG16 fine-tuned for edges); ``enc1``, the dilated
module and the attention decoder stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from rdanet_gan.models import efficientnet_lite0, mobilenet_v2, vgg16_hed
from rdanet_gan.models.blocks import (
    BN_MOMENTUM,
    attention_gate,
    check_dropout,
    check_input_shape,
    check_norm,
    dilated_module,
    residual_unit,
)
from rdanet_gan.options import ENCODER_WEIGHTS, ENCODERS

ENCODER_MULTIPLIERS = (1, 2, 4, 8, 16, 16)
"""Channels of ``enc1`` … ``enc6`` in units of ``base_width`` (32, 64, …, 512, 512 at width 32)."""

ENCODER_TRUNKS = {
    "mobilenet_v2": (mobilenet_v2.mobilenet_v2_features, mobilenet_v2.load_imagenet_weights),
    "efficientnet_lite0": (efficientnet_lite0.efficientnet_lite0_features, efficientnet_lite0.load_imagenet_weights),
    "vgg16_hed": (vgg16_hed.vgg16_hed_features, vgg16_hed.load_imagenet_weights),
}
"""Encoder name (``ENCODERS``) → (its feature maps by stride and weight sources, its ImageNet weight loader)."""


def build_rdau_net(
    input_shape: Sequence[int] = (128, 128, 1),
    base_width: int = 32,
    dilation_rates: Sequence[int] = (1, 2, 4, 8, 16, 32),
    dilated_width: int | None = None,
    norm: str = "batch",
    bn_momentum: float = BN_MOMENTUM,
    dropout: float = 0.0,
    encoder: str | None = None,
    encoder_weights: str | None = "imagenet",
    name: str = "rdau_net",
) -> keras.Model:
    """Build RDAU-Net, mapping images ``[B, H, W, C]`` to lesion probabilities ``[B, H, W, 1]``.

    Args:
        input_shape: ``(height, width, channels)``; height and width must be
            multiples of 32 (five stride-2 units).
        base_width: channels of the first unit; the encoder doubles them up to
            16× (about 24 M parameters at 32).
        dilation_rates: dilation of each convolution of the bottleneck cascade.
        dilated_width: channels of the dilated module (default ``8 * base_width``).
        norm: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        bn_momentum: batch-norm momentum; 0.9 because with ~17 steps per
            epoch Keras's 0.99 leaves the moving statistics far behind the
            batch statistics (training-mode Dice 0.92 against 0.45 in
            inference mode in our measurement).
        dropout: dropout rate on the dilated module's output (0 disables it).
        encoder: ``None`` (RDAU-Net's own residual encoder) or a name of
            ``ENCODERS``: a pretrained network whose feature maps at strides 2
            to 32 replace ``enc2`` … ``enc6`` (its layers are named
            ``encoder_*``; ``norm`` applies to the rest).
        encoder_weights: ``"imagenet"`` (the encoder's pretrained weights; for
            ``vgg16_hed`` HED's, which start from ImageNet's) or ``None`` (random
            initialisation).
        name: model name.

    The output layer ``mask`` is a float32 sigmoid even under a mixed-precision
    policy, so that losses on probabilities stay accurate. ``model.decoder_outputs``
    maps each decoder level ``k`` (1 to 5, at ``1 / 2**(k - 1)`` of the input size)
    to its features.
    """
    check_input_shape(input_shape, len(ENCODER_MULTIPLIERS) - 1, "rdau-net")
    check_norm(norm)
    check_dropout(dropout)
    widths = [base_width * m for m in ENCODER_MULTIPLIERS]
    if dilated_width is None:
        dilated_width = 8 * base_width

    if encoder is not None and encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)} or None, got {encoder!r}")
    if encoder_weights not in ENCODER_WEIGHTS:
        raise ValueError(f"encoder_weights must be 'imagenet' or None, got {encoder_weights!r}")

    image = keras.Input(shape=tuple(input_shape), name="image")
    skips = [residual_unit(image, widths[0], 1, False, norm, "enc1", bn_momentum)]
    if encoder is None:
        for level, width in enumerate(widths[1:], start=2):
            skips.append(residual_unit(skips[-1], width, 2, True, norm, f"enc{level}", bn_momentum))
    else:
        features, weight_sources = ENCODER_TRUNKS[encoder][0](image, bn_momentum)
        skips += [features[stride] for stride in sorted(features)]

    x = dilated_module(skips.pop(), dilated_width, dilation_rates, name="dilated")
    if dropout:
        x = layers.Dropout(dropout, name="dilated_dropout")(x)

    decoder_outputs = {}
    for level in range(len(skips), 0, -1):
        skip = skips[level - 1]
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}")(x)
        gated = attention_gate(skip, x, inter_channels=max(1, skip.shape[-1] // 2), name=f"att{level}")
        x = layers.Concatenate(name=f"dec{level}_concat")([x, gated])
        x = residual_unit(
            x, widths[level - 1], stride=1, preactivation=True, norm=norm, name=f"dec{level}", bn_momentum=bn_momentum
        )
        decoder_outputs[level] = x

    logits = layers.Conv2D(1, 1, name="logits")(x)
    mask = layers.Activation("sigmoid", dtype="float32", name="mask")(logits)
    model = keras.Model(image, mask, name=name)
    model.decoder_outputs = dict(sorted(decoder_outputs.items()))
    if encoder is not None and encoder_weights == "imagenet":
        ENCODER_TRUNKS[encoder][1](model, weight_sources)
    return model
