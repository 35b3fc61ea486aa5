"""Deep supervision: extra segmentation losses on side outputs of a decoder.

A 1×1 convolution on the features of a coarse decoder level (``dec2``,
``dec3``, ``dec4``), upsampled bilinearly to the input size, predicts the
lesion mask too; its loss, down-weighted by half per level, joins the main
output's loss. The side heads give the coarse levels a direct gradient and
exist only while training: the saved segmenter is the plain network.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import layers

DECODER_TAPS = {
    "rdau_net": ("dec2_add", "dec3_add", "dec4_add"),
    "unet": ("dec2_relu2", "dec3_relu2", "dec4_relu2"),
}
"""The decoder layers whose outputs get a side head, per network (``keras.Model.name``)."""


@keras.saving.register_keras_serializable(package="rdanet_gan")
class DeeplySupervised(keras.Model):
    """Train ``segmenter`` with its main loss plus ``weights``-weighted losses of side heads on ``taps``.

    ``call``, ``evaluate`` and ``predict`` use the segmenter alone, so the
    validation metrics are those of the network that is saved.
    """

    def __init__(self, segmenter: keras.Model, taps: Sequence[str] | None = None, weights: Sequence[float] | None = None, **kwargs):
        super().__init__(**kwargs)
        if taps is None:
            if segmenter.name not in DECODER_TAPS:
                raise ValueError(f"deep supervision: no default decoder levels for {segmenter.name!r}; pass taps")
            taps = DECODER_TAPS[segmenter.name]
        self.segmenter = segmenter
        self.taps = list(taps)
        self.side_weights = [float(w) for w in (weights or [0.5 ** (i + 1) for i in range(len(self.taps))])]
        if len(self.side_weights) != len(self.taps):
            raise ValueError("deep supervision: one weight per tap")
        features = [segmenter.get_layer(tap).output for tap in self.taps]
        self.features = keras.Model(segmenter.input, [segmenter.output, *features], name=f"{segmenter.name}_features")
        size = segmenter.input_shape[1]
        self.heads = [
            keras.Sequential(
                [
                    layers.Conv2D(1, 1),
                    layers.UpSampling2D(size // feature.shape[1], interpolation="bilinear"),
                    layers.Activation("sigmoid", dtype="float32"),
                ],
                name=f"{tap}_side",
            )
            for tap, feature in zip(self.taps, features)
        ]
        for head, feature in zip(self.heads, features):
            head.build(feature.shape)
        # Epoch means of the main output's loss (the one validation reports) and of the side terms.
        self.main_loss_tracker = keras.metrics.Mean(name="loss")
        self.side_loss_tracker = keras.metrics.Mean(name="side_loss")
        self.built = True

    def call(self, images, training=False):
        return self.segmenter(images, training=training)

    def train_step(self, data):
        x, y = data[:2]
        with tf.GradientTape() as tape:
            y_pred, *features = self.features(x, training=True)
            main_loss = self.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            side_loss = sum(w * self.loss(y, head(f, training=True)) for w, head, f in zip(self.side_weights, self.heads, features))
            loss = self.optimizer.scale_loss(main_loss + side_loss)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.main_loss_tracker.update_state(main_loss)
        self.side_loss_tracker.update_state(side_loss)
        results = self.compute_metrics(x, y, y_pred)
        return {**results, "loss": self.main_loss_tracker.result(), "side_loss": self.side_loss_tracker.result()}

    def test_step(self, data):
        x, y = data[:2]
        y_pred = self(x, training=False)
        self.main_loss_tracker.update_state(self.compute_loss(x=x, y=y, y_pred=y_pred, training=False))
        results = {name: value for name, value in self.compute_metrics(x, y, y_pred).items() if name != "side_loss"}
        return {**results, "loss": self.main_loss_tracker.result()}

    def get_config(self):
        return {
            **super().get_config(),
            "segmenter": keras.saving.serialize_keras_object(self.segmenter),
            "taps": self.taps,
            "weights": self.side_weights,
        }

    @classmethod
    def from_config(cls, config):
        config["segmenter"] = keras.saving.deserialize_keras_object(config["segmenter"])
        return cls(**config)
