"""Deep supervision: extra segmentation losses on side outputs of a decoder, trained by plain ``fit``.

A segmentation network exposes its decoder's features by level
(``model.decoder_outputs``, see :func:`~rdanet_gan.models.build_rdau_net` and
:func:`~rdanet_gan.models.build_unet`). On each coarse level ``k`` of 2, 3 and 4
that the network has, a side head (a 1×1 convolution, upsampled bilinearly to the
input size, and a sigmoid) predicts the lesion mask too. :class:`DeeplySupervised`
is the functional model with the segmenter's output ``mask`` and the side outputs
``dec{k}_side``, compiled with one Dice + BCE loss per output, weighted 1 for the
mask and ``0.5 ** (k - 1)`` (½, ¼, ⅛) for level ``k``; Keras's ``fit`` trains it,
and scales its losses for distribution. The side heads give the coarse levels a
direct gradient and exist only while training: the segmenter shares its layers
with the model and is the network that is saved.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import layers

MAIN_OUTPUT = "mask"
"""The segmenter's output, whose loss and metrics the logs report under their plain names."""
SIDE_LEVELS = (2, 3, 4)
"""Decoder levels that get a side head (those the network has)."""


def side_weight(level: int) -> float:
    """The weight of level ``level``'s side loss: halved per level below the top (½ at level 2)."""
    return 0.5 ** (level - 1)


class DeeplySupervised(keras.Model):
    """``segmenter`` with side heads on its decoder levels ``levels``: a multi-output functional model.

    Compile it with one loss per output (``output_names``), ``loss_weights=output_weights``
    and metrics on :data:`MAIN_OUTPUT`, and fit it on :meth:`targets` of the data.

    Keras names each output's loss and metrics after it (``mask_dice``,
    ``dec2_side_loss``) and logs the weighted sum of the losses as ``loss``. The
    logs keep the names of the segmenter trained alone instead: ``loss``, ``dice``,
    … (and ``val_loss``, ``val_dice``, …) are the main output's, and ``side_loss``,
    in training only, is the weighted sum of the side losses.
    """

    def __init__(self, segmenter: keras.Model, levels: Sequence[int] = SIDE_LEVELS, **kwargs):
        decoder = getattr(segmenter, "decoder_outputs", None) or {}
        levels = [level for level in levels if level in decoder]
        if not levels:
            raise ValueError(
                f"deep supervision: {segmenter.name} exposes no decoder level among {', '.join(map(str, SIDE_LEVELS))} "
                "(model.decoder_outputs)"
            )
        size = segmenter.input_shape[1]
        outputs = {MAIN_OUTPUT: segmenter.output}
        for level in levels:
            outputs[f"dec{level}_side"] = side_head(decoder[level], size, f"dec{level}_side")
        super().__init__(segmenter.input, outputs, name=f"{segmenter.name}_deeply_supervised", **kwargs)
        self.side_weights = {f"dec{level}_side": side_weight(level) for level in levels}
        self.output_weights = {MAIN_OUTPUT: 1.0, **self.side_weights}  # compile(loss_weights=...)
        self.evaluating = False

    def targets(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """``dataset`` of ``(image, mask)`` with the mask as the target of every output."""
        names = self.output_names
        return dataset.map(lambda image, mask: (image, dict.fromkeys(names, mask)))

    def evaluate(self, *args, **kwargs):
        self.evaluating = True  # read when the test step is traced and when its results are read
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self.evaluating = False

    def get_metrics_result(self):
        results = super().get_metrics_result()
        prefix = f"{MAIN_OUTPUT}_"
        logs = {name.removeprefix(prefix): value for name, value in results.items() if name.startswith(prefix)}
        side = {f"{name}_loss": weight for name, weight in self.side_weights.items()}
        if not self.evaluating and side.keys() <= results.keys():  # not before the losses are built
            logs["side_loss"] = sum(weight * results[name] for name, weight in side.items())
        return logs


def side_head(features: keras.KerasTensor, size: int, name: str) -> keras.KerasTensor:
    """A lesion probability map at ``size`` × ``size`` from one decoder level's ``features``."""
    logits = layers.Conv2D(1, 1, name=f"{name}_logits")(features)
    upsampled = layers.UpSampling2D(size // features.shape[1], interpolation="bilinear", name=f"{name}_up")(logits)
    return layers.Activation("sigmoid", dtype="float32", name=name)(upsampled)
