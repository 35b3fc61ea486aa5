"""Reusable building blocks of the segmentation networks and the critic.

Every block is a function from Keras tensors to a Keras tensor that names its
layers ``{name}_{part}`` (``enc3_conv1``, ``enc3_bn1``, ``att2_coeff``), so a
model summary reads like the architecture and a sub-model can pick any
intermediate output by name.

Batch normalisation defaults to momentum 0.9 rather than Keras's 0.99: with
the ~17 training steps per epoch of BUSI, 0.99 leaves the moving statistics
far from the batch statistics, and a model that reaches training-mode Dice
0.92 scores 0.45 in inference mode.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import keras
from keras import layers

from rdanet_gan.options import NORMS

GROUPS = 8
"""Group count of ``norm="group"`` (the largest divisor of the channels up to 8)."""

BN_MOMENTUM = 0.9
"""Default moving-average momentum of batch normalisation (see the module docstring)."""

_NORM_TAG = {"batch": "bn", "group": "gn", "instance": "in", "layer": "ln"}


def check_norm(norm: str, allowed: Sequence[str] = NORMS) -> None:
    """Raise ``ValueError`` unless ``norm`` is one of ``allowed``."""
    if norm not in allowed:
        raise ValueError(f"norm must be one of {', '.join(map(repr, allowed))}, got {norm!r}")


def sigmoid_mask_layer(model: keras.Model) -> layers.Layer | None:
    """The segmenter's output layer ``mask`` if it is a sigmoid (its input is then the logits), else ``None``."""
    mask = next((layer for layer in model.layers if layer.name == "mask"), None)
    if mask is None or getattr(mask, "activation", None) is not keras.activations.sigmoid:
        return None
    return mask


def check_input_shape(input_shape: Sequence[int], downsamplings: int, model: str) -> None:
    """Raise ``ValueError`` unless height and width survive ``downsamplings`` halvings."""
    if len(input_shape) != 3 or any(not isinstance(d, numbers.Integral) or d < 1 for d in input_shape):
        raise ValueError(f"{model}: input_shape must be (height, width, channels), got {tuple(input_shape)}")
    factor = 2**downsamplings
    height, width = input_shape[:2]
    if height % factor or width % factor:
        raise ValueError(
            f"{model}: input height and width must be multiples of {factor} "
            f"({downsamplings} downsamplings), got {height}x{width}"
        )


def check_dropout(dropout: float) -> None:
    """Raise ``ValueError`` unless ``0 <= dropout < 1``."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def normalize(
    x: keras.KerasTensor, norm: str, name: str, index: str = "", bn_momentum: float = BN_MOMENTUM
) -> keras.KerasTensor:
    """Apply ``norm`` in a layer named ``{name}_{bn|gn|in|ln}{index}``; identity for ``"none"``.

    ``"group"`` uses up to ``GROUPS`` groups, ``"instance"`` one group per
    channel and ``"layer"`` a single group: per-sample statistics over height,
    width and channels with a per-channel scale and offset.
    """
    if norm == "none":
        return x
    layer_name = f"{name}_{_NORM_TAG[norm]}{index}"
    if norm == "batch":
        return layers.BatchNormalization(momentum=bn_momentum, name=layer_name)(x)
    channels = x.shape[-1]
    groups = {"group": math.gcd(channels, GROUPS), "instance": channels, "layer": 1}[norm]
    return layers.GroupNormalization(groups=groups, name=layer_name)(x)


def conv3x3(
    x: keras.KerasTensor, filters: int, name: str, strides: int = 1, dilation_rate: int = 1, use_bias: bool = True
) -> keras.KerasTensor:
    """A 3×3 same-padded convolution with He initialisation (the networks use ReLU)."""
    return layers.Conv2D(
        filters,
        3,
        strides=strides,
        dilation_rate=dilation_rate,
        padding="same",
        use_bias=use_bias,
        kernel_initializer="he_normal",
        name=name,
    )(x)


def conv_block(
    x: keras.KerasTensor,
    widths: Sequence[int],
    norm: str,
    name: str,
    bn_momentum: float = BN_MOMENTUM,
) -> keras.KerasTensor:
    """3×3 convolution → normalisation → ReLU once per entry of ``widths``: a U-Net or VGG stage."""
    for i, width in enumerate(widths, start=1):
        x = conv3x3(x, width, f"{name}_conv{i}", use_bias=norm == "none")
        x = normalize(x, norm, name, str(i), bn_momentum)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def residual_unit(
    x: keras.KerasTensor,
    filters: int,
    stride: int,
    preactivation: bool,
    norm: str,
    name: str,
    bn_momentum: float = BN_MOMENTUM,
) -> keras.KerasTensor:
    """Two 3×3 convolutions plus a projection shortcut (1×1 convolution and normalisation).

    ``preactivation=False`` is the plain unit conv → norm → ReLU → conv (the
    first unit of RDAU-Net, which sees the raw image); ``True`` is the
    pre-activation unit norm → ReLU → conv → norm → ReLU → conv of He et al.
    (2016). ``stride=2`` halves the map in the first convolution and in the
    shortcut, replacing pooling.
    """
    use_bias = norm == "none"
    shortcut = SubsampledConv2D(filters, 1, strides=stride, use_bias=use_bias, name=f"{name}_shortcut")(x)
    shortcut = normalize(shortcut, norm, f"{name}_shortcut", bn_momentum=bn_momentum)
    if preactivation:
        x = normalize(x, norm, name, "1", bn_momentum)
        x = layers.ReLU(name=f"{name}_relu1")(x)
        x = conv3x3(x, filters, f"{name}_conv1", strides=stride, use_bias=use_bias)
        x = normalize(x, norm, name, "2", bn_momentum)
        x = layers.ReLU(name=f"{name}_relu2")(x)
    else:
        x = conv3x3(x, filters, f"{name}_conv1", strides=stride, use_bias=use_bias)
        x = normalize(x, norm, name, "1", bn_momentum)
        x = layers.ReLU(name=f"{name}_relu1")(x)
    x = conv3x3(x, filters, f"{name}_conv2", use_bias=use_bias)
    return layers.Add(name=f"{name}_add")([x, shortcut])


def attention_gate(
    skip: keras.KerasTensor, gating: keras.KerasTensor, inter_channels: int, name: str
) -> keras.KerasTensor:
    """Additive attention gate (Oktay et al. 2018): weight each skip pixel by a coefficient in [0, 1].

    ``skip`` and ``gating`` have the same height and width. Both are projected
    to ``inter_channels`` by 1×1 convolutions, added, passed through ReLU and a
    1×1 convolution to one channel whose sigmoid, ``{name}_coeff``, scales the
    skip features. The skip projection has no bias: the gating one carries it.
    """
    theta = layers.Conv2D(inter_channels, 1, use_bias=False, name=f"{name}_skip")(skip)
    phi = layers.Conv2D(inter_channels, 1, name=f"{name}_gating")(gating)
    joint = layers.Add(name=f"{name}_add")([theta, phi])
    joint = layers.ReLU(name=f"{name}_relu")(joint)
    logit = layers.Conv2D(1, 1, name=f"{name}_psi")(joint)
    coeff = layers.Activation("sigmoid", name=f"{name}_coeff")(logit)
    return layers.Multiply(name=f"{name}_gated")([skip, coeff])


@keras.saving.register_keras_serializable(package="rdanet_gan")
class DilatedConv2D(layers.Conv2D):
    """A same-padded dilated ``Conv2D`` that skips the taps which can only see padding.

    When the dilation reaches past the feature map on both axes (RDAU-Net's
    bottleneck is 4×4; rates 4 to 32), every tap but the centre lands in the
    zero padding, so the convolution equals a 1×1 convolution with the centre
    weights: same outputs, same gradients (zero for the outer taps either way),
    same 3×3 kernel. On the CPU the full dilated kernel and its gradients cost
    a large share of a training step (``benchmarks/results/profile/``).
    """

    def convolution_op(self, inputs, kernel):
        height, width = inputs.shape[1:3] if self.data_format == "channels_last" else inputs.shape[2:4]
        rate_h, rate_w = self.dilation_rate
        outer_taps_in_padding = (
            self.padding == "same" and self.strides == (1, 1) and self.kernel_size == (3, 3)
            and height is not None and width is not None and rate_h >= height and rate_w >= width
        )  # fmt: skip
        if not outer_taps_in_padding:
            return super().convolution_op(inputs, kernel)
        return keras.ops.conv(inputs, kernel[1:2, 1:2], strides=1, padding="same", data_format=self.data_format)


def with_dilated_conv2d(model: keras.Model) -> keras.Model:
    """``model`` with every plain dilated ``Conv2D`` (nested models too) made a :class:`DilatedConv2D`.

    The same function with the same weights; models saved before ``DilatedConv2D`` existed (the shipped
    default among them) then skip the padding-only taps too: its LiteRT export predicts about 1.2× faster
    (``benchmarks/results/prediction-profile.md``). A model with no such layer is returned as it is.
    """

    def plain_dilated(layer: keras.Layer) -> bool:
        return type(layer) is layers.Conv2D and max(layer.dilation_rate) > 1

    def layers_of(model: keras.Model):
        for layer in model.layers:
            yield layer
            if isinstance(layer, keras.Model):
                yield from layers_of(layer)

    if not any(plain_dilated(layer) for layer in layers_of(model)):
        return model

    def clone(layer: keras.Layer) -> keras.Layer:
        return (DilatedConv2D if plain_dilated(layer) else layer.__class__).from_config(layer.get_config())

    faster = keras.models.clone_model(model, clone_function=clone, recursive=True)
    faster.set_weights(model.get_weights())
    return faster


@keras.saving.register_keras_serializable(package="rdanet_gan")
class SubsampledConv2D(layers.Conv2D):
    """A strided 1×1 ``Conv2D`` computed as subsampling, then the 1×1 convolution at stride 1.

    A 1×1 kernel at stride ``s`` only reads every ``s``-th pixel, so this is the same
    function with the same weights and configuration. It exists because TensorFlow
    2.21's oneDNN kernels crash the process ("double free or corruption") in the
    float32 backward pass of a strided 1×1 convolution from 8 channels on AVX-512
    CPUs without XLA (RDAU-Net's ``enc2`` shortcut at base width 8; measured on a
    2-core AMD EPYC with AVX-512, and on a Xeon with AMX).
    """

    def convolution_op(self, inputs, kernel):
        if self.kernel_size != (1, 1) or self.strides == (1, 1):
            return super().convolution_op(inputs, kernel)
        step_h, step_w = self.strides
        if self.data_format == "channels_last":
            inputs = inputs[:, ::step_h, ::step_w, :]
        else:
            inputs = inputs[:, :, ::step_h, ::step_w]
        return keras.ops.conv(inputs, kernel, strides=1, padding="valid", data_format=self.data_format)


def dilated_module(
    x: keras.KerasTensor, filters: int, rates: Sequence[int], name: str
) -> keras.KerasTensor:
    """A cascade of 3×3 ReLU convolutions at growing dilation ``rates``, their outputs summed.

    Each convolution ``{name}_r{rate}`` feeds the next, so the receptive field
    grows with every rate; the sum ``{name}_sum`` mixes all the scales. With
    same padding a rate larger than the map is harmless: the outer taps only
    see zeros.
    """
    if not rates or len(set(rates)) != len(rates) or any(rate < 1 for rate in rates):
        raise ValueError(f"dilation rates must be distinct positive integers, got {tuple(rates)}")
    outputs = []
    for rate in rates:
        x = DilatedConv2D(
            filters,
            3,
            dilation_rate=rate,
            padding="same",
            activation="relu",
            kernel_initializer="he_normal",
            name=f"{name}_r{rate}",
        )(x)
        outputs.append(x)
    if len(outputs) == 1:
        return outputs[0]
    return layers.Add(name=f"{name}_sum")(outputs)
