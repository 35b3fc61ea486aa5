"""An ensemble of trained segmenters as one Keras model: the mean of their logits, then a sigmoid ``mask``.

Averaging logits (not probabilities) keeps the ensemble a segmenter like any other: its last layer is the
float32 sigmoid ``mask``, so ``calibrate``, ``evaluate``, ``export`` and the presence head take it as they
take one network, and it saves and loads as ``.keras`` in safe mode (built-in layers and the members'
own). Each member keeps its weights and its dtype policy.

Presence: the package reports a lesion where a map's peak reaches a level (``calibrate``). The mean of logits
carries a member's confident false lesion into the ensemble's peak, so ``presence="all"`` caps the mean logits
by the smallest of the members' peak logits (the ``Minimum`` cap of :mod:`rdanet_gan.models.presence`): the
map is unchanged where every member's peak is above it, and a scan counts as a lesion only if each member's
own peak, and the ensemble's, reach the level.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from rdanet_gan.models.blocks import sigmoid_mask_layer
from rdanet_gan.options import ENSEMBLE_PRESENCE


def build_ensemble(members: Sequence[keras.Model], name: str = "ensemble", presence: str = "mean") -> keras.Model:
    """One segmenter from ``members`` (each ending in the sigmoid layer ``mask``, all on the same input shape).

    ``presence``: ``"mean"`` (the mean map alone) or ``"all"`` (every member's peak must agree; module docstring).
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
    if presence not in ENSEMBLE_PRESENCE:
        raise ValueError(f"presence must be one of {', '.join(ENSEMBLE_PRESENCE)}, got {presence!r}")
    shape = members[0].input_shape[1:]
    image = keras.Input(shape=shape, name="image")
    logits = []
    for index, member in enumerate(members):
        mask = sigmoid_mask_layer(member)
        if mask is None:
            raise ValueError(f"member {index} ({member.name!r}) has no sigmoid output layer 'mask'")
        if member.input_shape[1:] != shape:
            raise ValueError(f"member {index} ({member.name!r}) takes {member.input_shape[1:]}, member 0 takes {shape}")
        member_logits = keras.Model(member.input, mask.input, name=f"member{index}_{member.name}")
        logits.append(keras.layers.Activation("linear", dtype="float32", name=f"logits{index}")(member_logits(image)))
    mean = keras.layers.Average(dtype="float32", name="mean_logits")(logits)
    if presence == "all":
        peaks = [
            keras.layers.GlobalMaxPooling2D(keepdims=True, dtype="float32", name=f"peak{index}")(member_logits)
            for index, member_logits in enumerate(logits)
        ]
        lowest_peak = keras.layers.Minimum(dtype="float32", name="lowest_peak")(peaks)
        mean = keras.layers.Minimum(dtype="float32", name="mean_logits_capped")([mean, lowest_peak])
    return keras.Model(image, keras.layers.Activation("sigmoid", dtype="float32", name="mask")(mean), name=name)
