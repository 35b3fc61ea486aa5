"""Losses of the segmenters and of the Wasserstein GAN.

All reductions run in float32, whatever the compute dtype of the network
(``mixed_bfloat16`` / ``mixed_float16`` produce low-precision activations;
the final sigmoid and the critic's score are float32 already).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

SMOOTH = 1.0  # Laplace smoothing of the soft Dice: an empty mask predicted empty costs 0


def soft_dice_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Per-image ``1 - (2 sum(p t) + s) / (sum(p) + sum(t) + s)`` on probabilities, shape [B]."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    axes = tuple(range(1, len(y_pred.shape)))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return 1.0 - (2.0 * intersection + SMOOTH) / (total + SMOOTH)


def pixel_bce(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Per-image mean binary cross-entropy on probabilities, shape [B]."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    bce = keras.losses.binary_crossentropy(y_true, y_pred)  # mean over the channel axis
    return ops.mean(bce, axis=tuple(range(1, len(bce.shape))))


def presence_bce(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Per-image binary cross-entropy of the peak probability against "the mask is not empty", shape [B].

    The peak probability is what the presence rule reads. On a lesion-free scan
    with a confident false lesion the smoothed Dice is near 1 and nearly flat, and
    the pixel mean spreads a small gradient; this term pushes the peak itself down.
    """
    axes = tuple(range(1, len(y_pred.shape)))
    present = ops.cast(ops.max(ops.cast(y_true, "float32"), axis=axes) > 0.5, "float32")
    peak = ops.max(ops.cast(y_pred, "float32"), axis=axes)
    return keras.losses.binary_crossentropy(present[:, None], peak[:, None])


@keras.saving.register_keras_serializable(package="rdanet_gan")
class DiceBCELoss(keras.losses.Loss):
    """``dice_weight * soft Dice loss + bce_weight * binary cross-entropy [+ presence_weight * presence BCE]``, per image.

    The supervised term of every model in the paper's comparison, and the
    segmentation term of the GAN's generator loss; ``presence_weight`` (0: off,
    the paper's loss) adds :func:`presence_bce`.
    """

    def __init__(
        self,
        dice_weight: float = 1.0,
        bce_weight: float = 1.0,
        presence_weight: float = 0.0,
        name: str = "dice_bce",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.dice_weight = float(dice_weight)
        self.bce_weight = float(bce_weight)
        self.presence_weight = float(presence_weight)

    def call(self, y_true, y_pred):
        loss = self.dice_weight * soft_dice_loss(y_true, y_pred) + self.bce_weight * pixel_bce(y_true, y_pred)
        if self.presence_weight:
            loss = loss + self.presence_weight * presence_bce(y_true, y_pred)
        return loss

    def get_config(self) -> dict:
        weights = {"dice_weight": self.dice_weight, "bce_weight": self.bce_weight, "presence_weight": self.presence_weight}
        return {**super().get_config(), **weights}


def critic_wasserstein_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tf.Tensor:
    """The critic minimises ``E[D(fake)] - E[D(real)]`` (a negated Wasserstein estimate)."""
    return ops.mean(ops.cast(fake_scores, "float32")) - ops.mean(ops.cast(real_scores, "float32"))


def generator_adversarial_loss(fake_scores: tf.Tensor) -> tf.Tensor:
    """The generator minimises ``-E[D(fake)]``: its masks should score like real ones."""
    return -ops.mean(ops.cast(fake_scores, "float32"))


def gradient_penalty(
    critic: keras.Model,
    real: tf.Tensor,
    fake: tf.Tensor,
    alpha: tf.Tensor,
    epsilon: float = 1e-12,
) -> tf.Tensor:
    """WGAN-GP penalty ``E[(||grad D(x_hat)||_2 - 1)^2]`` at ``x_hat = alpha real + (1 - alpha) fake``.

    ``alpha`` has shape [B, 1, 1, 1] (uniform in [0, 1]). The epsilon sits inside
    the square root so that the penalty's own gradient stays finite when a
    gradient norm is exactly zero.
    """
    real = ops.cast(real, "float32")
    fake = ops.cast(fake, "float32")
    interpolated = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        scores = critic(interpolated, training=True)
    grads = ops.cast(tape.gradient(scores, interpolated), "float32")
    norms = ops.sqrt(ops.sum(ops.square(grads), axis=(1, 2, 3)) + epsilon)
    return ops.mean(ops.square(norms - 1.0))
