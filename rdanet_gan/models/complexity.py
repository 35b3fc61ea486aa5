"""Forward FLOPs of a Keras model, counted analytically from its layers' shapes.

Only the linear layers are counted, a multiply-add as two FLOPs: convolutions
(1-D to 3-D, any dilation, stride or grouping; depthwise), transposed convolutions and dense layers,
which hold nearly all the arithmetic of the networks here. Bias additions,
normalisation, activations, pooling, resizing and element-wise sums are left
out, as in most papers' FLOP tables. Every kernel tap counts, including the
taps of a dilated convolution that fall in the zero padding.

This is the arithmetic of the model, not of a particular kernel: TensorFlow's
profiler agrees on plain and strided convolutions (plus bias additions) but
reports more for dilated ones, because TensorFlow runs them on
space-to-batch padded copies of the input.
"""

from __future__ import annotations

import math

import keras
from keras import layers

_CONVOLUTIONS = (layers.Conv1D, layers.Conv2D, layers.Conv3D)
_TRANSPOSED = (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)
_NORMALIZATIONS = (  # weighted but element-wise: not counted
    layers.BatchNormalization,
    layers.GroupNormalization,
    layers.LayerNormalization,
    layers.UnitNormalization,
    layers.Normalization,
)


def count_flops(model: keras.Model) -> int:
    """Forward FLOPs of ``model`` for one input sample (multiply-adds count 2).

    Nested models are counted through. Raises ``ValueError`` for a layer with
    weights whose cost is not modelled (rather than silently under-counting)
    or for shapes that are not static; a layer called more than once is not
    supported.
    """
    return sum(_layer_flops(layer) for layer in model.layers)


def _layer_flops(layer: keras.Layer) -> int:
    if isinstance(layer, keras.Model):
        return count_flops(layer)
    if isinstance(layer, (*_TRANSPOSED, *_CONVOLUTIONS, layers.Dense)):
        # The kernel's shape minus its last axis is the taps of one value: every output
        # value of a convolution or dense layer gathers kernel_h × kernel_w × channels /
        # groups (or in_features) inputs; every input value of a transposed convolution
        # scatters to kernel_h × kernel_w × filters outputs.
        taps = math.prod(layer.kernel.shape[:-1])
        values = layer.input if isinstance(layer, _TRANSPOSED) else layer.output
        return 2 * taps * _elements(values)
    if isinstance(layer, layers.DepthwiseConv2D):  # each output value gathers kernel_h × kernel_w inputs
        return 2 * math.prod(layer.kernel.shape[:2]) * _elements(layer.output)
    if layer.weights and not isinstance(layer, _NORMALIZATIONS):
        raise ValueError(f"count_flops: cannot count layer {layer.name!r} of type {type(layer).__name__}")
    return 0


def _elements(tensor: keras.KerasTensor) -> int:
    """Values per sample of a symbolic tensor (the batch axis excluded)."""
    shape = tensor.shape[1:]
    if any(dim is None for dim in shape):
        raise ValueError(f"count_flops: shape {tensor.shape} is not static; build the model with a fixed input size")
    return math.prod(shape)
