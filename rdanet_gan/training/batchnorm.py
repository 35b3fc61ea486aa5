"""Re-estimated BatchNorm statistics ("precise BN"): the moving mean and variance of the final weights.

A BatchNormalization layer predicts with exponential moving averages of the
batch statistics seen in training. With about 17 steps an epoch, momentum 0.99
averages over some 100 steps, several epochs of changing weights, so the
averages describe earlier networks than the one saved (the trap in the README:
validation Dice 0.45 in inference mode against 0.92 with batch statistics).
:func:`reestimate_batchnorm` replaces them with the statistics of the final
network on the training scans, without changing a weight.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np


def reestimate_batchnorm(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> int:
    """Set every BatchNormalization layer's moving mean and variance to the average of its batch
    statistics over ``images`` (each batch weighted by its size), seen in training mode with dropout off;
    returns how many layers were re-estimated (0 for a network without BatchNorm, which is left as is)."""
    norms = [layer for layer in _layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return 0
    dropouts = [layer for layer in _layers(model) if isinstance(layer, keras.layers.Dropout)]
    momenta, rates = [layer.momentum for layer in norms], [layer.rate for layer in dropouts]
    try:
        for layer in dropouts:
            layer.rate = 0.0  # the statistics of what inference sees
        seen = 0
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            for layer in norms:  # moving = (seen * moving + n * batch) / (seen + n): a running mean
                layer.momentum = seen / (seen + len(batch))
            model(batch, training=True)
            seen += len(batch)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate
    return len(norms)


def _layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every layer of ``model``, nested models included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
