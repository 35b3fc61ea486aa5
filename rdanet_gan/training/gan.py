"""RDA-NET-GAN: an RDAU-Net generator trained against a Wasserstein critic (Algorithm 1).

Algorithm 1 of the paper alternates, in every epoch, sigma = |X| / n critic
steps with the generator frozen, then sigma generator steps with the critic
frozen. Here one Keras epoch *is* one epoch of Algorithm 1: with the default
``schedule="epoch"``, :meth:`RDANetGAN.fit` repeats the training set twice per
Keras epoch, so that the first pass (sigma batches) trains the critic and the
second pass trains the generator. ``schedule="interleaved"`` instead runs
``n_critic`` critic steps, then one generator step, over and over (the usual
WGAN-GP recipe). Either way the phase of a step is derived from a step counter
that is saved with the model, so a resumed run picks up the cycle where it
stopped.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from rdanet_gan.evaluation.keras_metrics import metric_results, segmentation_metrics
from rdanet_gan.options import GAN_SCHEDULES
from rdanet_gan.training.losses import (
    DiceBCELoss,
    critic_wasserstein_loss,
    generator_adversarial_loss,
    gradient_penalty,
)

SCHEDULES = GAN_SCHEDULES
CRITIC_TERMS = ("d_loss", "wasserstein", "gp")


def _scale_for_replicas(loss: tf.Tensor) -> tf.Tensor:
    """Per-replica mean -> share of the global-batch mean (gradients are summed over replicas).

    Keras does this in its own ``train_step`` with a private helper (``keras.src``); a custom step
    that computes its losses itself has no public one to call.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / replicas if replicas > 1 else loss


@keras.saving.register_keras_serializable(package="rdanet_gan")
class RDANetGAN(keras.Model):
    """A segmentation GAN: ``generator(image) -> mask``, ``critic(concat(image, mask)) -> score``.

    ``fit`` trains both players; ``evaluate`` and ``predict`` use the generator
    alone in inference mode, so validation metrics are what a user of the saved
    generator gets.
    """

    def __init__(
        self,
        generator: keras.Model,
        critic: keras.Model,
        schedule: str = "epoch",
        n_critic: int = 5,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.generator = generator
        self.critic = critic
        self.schedule = schedule
        self.n_critic = int(n_critic)
        self.seed = int(seed)
        # Train steps taken so far, and the cycle: critic steps then generator steps.
        self.step_counter = keras.Variable(
            0, dtype="int64", trainable=False, name="step_counter", aggregation="only_first_replica"
        )
        self.critic_steps = keras.Variable(self.n_critic, dtype="int64", trainable=False, name="critic_steps")
        self.generator_steps = keras.Variable(1, dtype="int64", trainable=False, name="generator_steps")
        self.built = True  # both players are built functional models

    def call(self, images, training=False):
        return self.generator(images, training=training)

    def compile(
        self,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        segmentation_loss: keras.losses.Loss | None = None,
        adversarial_weight: float = 0.01,
        segmentation_weight: float = 1.0,
        gp_weight: float = 10.0,
        clip_value: float | None = None,
        threshold: float = 0.5,
        **kwargs,
    ):
        """Set both optimizers (Adam 1e-4 by default) and the loss weights.

        Generator loss: ``adversarial_weight * -E[D(G(x))] + segmentation_weight * seg_loss``.
        Critic loss: ``E[D(fake)] - E[D(real)] + gp_weight * GP``; with
        ``clip_value`` the critic's weights are clipped to ``[-c, c]`` after each
        step (the original WGAN), which is usually combined with ``gp_weight=0``.
        """
        super().compile(optimizer=None, **kwargs)  # the two optimizers below do the work
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(1e-4)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(1e-4)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            self.g_optimizer = _loss_scaled(self.g_optimizer)
            self.d_optimizer = _loss_scaled(self.d_optimizer)
        # Both optimizers get their slots now: BackupAndRestore and load_model
        # restore only variables that already exist.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.critic.trainable_variables)
        self.segmentation_loss = segmentation_loss or DiceBCELoss()
        self.adversarial_weight = float(adversarial_weight)
        self.segmentation_weight = float(segmentation_weight)
        self.gp_weight = float(gp_weight)
        self.clip_value = None if clip_value is None else float(clip_value)
        self.threshold = float(threshold)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("d_loss", "wasserstein", "gp", "g_loss", "adv_loss", "seg_loss")
        }
        self.segmentation_metrics = segmentation_metrics(threshold)

    @property
    def metrics(self):
        return [*self.trackers.values(), *self.segmentation_metrics]

    # ------------------------------------------------------------------ training
    def fit(self, x=None, *args, **kwargs):
        """Keras ``fit``; with ``schedule="epoch"`` one Keras epoch is one epoch of Algorithm 1.

        ``x`` must then be a finite, batched ``tf.data.Dataset`` of (image, mask):
        its sigma batches are run twice per epoch, first by the critic, then by
        the generator. ``shuffle`` defaults to False: Keras cannot shuffle a
        dataset (it warns and ignores the flag); shuffle the dataset itself.
        """
        kwargs.setdefault("shuffle", False)
        if self.schedule == "epoch":
            sigma = int(x.cardinality()) if isinstance(x, tf.data.Dataset) else -1
            if sigma <= 0:
                raise ValueError('schedule="epoch" needs a finite, batched tf.data.Dataset for x')
            self.critic_steps.assign(sigma)
            self.generator_steps.assign(sigma)
            x = x.repeat(2)
        else:
            self.critic_steps.assign(self.n_critic)
            self.generator_steps.assign(1)
        return super().fit(x, *args, **kwargs)

    def is_critic_step(self) -> bool:
        """Whether the next train step belongs to the critic phase of the cycle."""
        step, critic, generator = (
            int(v.value.numpy()) for v in (self.step_counter, self.critic_steps, self.generator_steps)
        )
        return step % (critic + generator) < critic

    def make_train_function(self, force=False):
        """Compile the critic step and the generator step separately; pick one per step in Python.

        A ``tf.cond`` between the phases inside one compiled step cannot hold the
        optimizers' cross-replica gradient aggregation under ``tf.distribute``;
        two compiled functions can, and each traces only its own phase.
        """
        if self.train_function is not None and not force:
            return self.train_function
        if self.steps_per_execution > 1:
            raise ValueError("RDANetGAN picks its phase per step: compile it with steps_per_execution=1")
        critic_function = self._compiled(self.critic_train_step)
        generator_function = self._compiled(self.generator_train_step)

        def train_function(iterator):
            return critic_function(iterator) if self.is_critic_step() else generator_function(iterator)

        self.train_function = train_function
        return train_function

    def _compiled(self, step):
        """``step`` compiled as Keras compiles a train step (distribution, XLA), through its private
        ``_make_function``: the one place this package relies on a Keras internal."""
        make_function = getattr(self, "_make_function", None)
        if make_function is None:
            raise RuntimeError(
                f"Keras {keras.__version__} has no Trainer._make_function, which RDANetGAN compiles its two phases "
                "with; install the Keras version setup.cfg names (keras>=3.15,<3.16)"
            )
        return make_function(step)

    def train_step(self, data):
        """One step of the phase the step counter is in (``fit`` compiles each phase on its own)."""
        return self.critic_train_step(data) if self.is_critic_step() else self.generator_train_step(data)

    def critic_train_step(self, data):
        """A critic step of Algorithm 1: the critic learns, the generator is frozen.

        With ``schedule="epoch"`` the critic half of an epoch reports the critic's
        terms only: the generator's have not been measured yet that epoch (and the
        epoch's last step, whose logs Keras keeps, is a generator step).
        """
        images, masks, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._critic_step(images, masks)
        self.step_counter.assign_add(1)
        reported = [self.trackers[name] for name in CRITIC_TERMS] if self.schedule == "epoch" else self.metrics
        return metric_results(reported)

    def generator_train_step(self, data):
        """A generator step of Algorithm 1: the generator learns, the critic is frozen."""
        images, masks, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._generator_step(images, masks)
        self.step_counter.assign_add(1)
        return metric_results(self.metrics)

    def _critic_step(self, images, masks):
        # The generator runs in inference mode: no weight nor BatchNorm statistic of it moves.
        fake_masks = self.generator(images, training=False)
        real = ops.concatenate([images, ops.cast(masks, images.dtype)], axis=-1)
        fake = ops.concatenate([images, ops.cast(fake_masks, images.dtype)], axis=-1)
        alpha = self._interpolation_factors(tf.shape(images)[0])
        with tf.GradientTape() as tape:
            real_scores = self.critic(real, training=True)
            fake_scores = self.critic(fake, training=True)
            wasserstein = critic_wasserstein_loss(real_scores, fake_scores)
            gp = gradient_penalty(self.critic, real, fake, alpha) if self.gp_weight else ops.zeros(())
            d_loss = wasserstein + self.gp_weight * gp
            scaled = self.d_optimizer.scale_loss(_scale_for_replicas(d_loss))
        variables = self.critic.trainable_variables
        self.d_optimizer.apply(tape.gradient(scaled, variables), variables)
        if self.clip_value is not None:
            for v in variables:
                v.assign(ops.clip(v, -self.clip_value, self.clip_value))
        self.trackers["d_loss"].update_state(d_loss)
        self.trackers["wasserstein"].update_state(-wasserstein)
        self.trackers["gp"].update_state(gp)

    def _segmentation_loss(self, masks, predictions) -> tf.Tensor:
        """Batch mean of the per-image segmentation loss.

        ``Loss.call`` skips ``Loss.__call__``'s own division by the number of
        replicas: the GAN scales its total losses for distribution once, itself.
        """
        return ops.mean(ops.cast(self.segmentation_loss.call(masks, predictions), "float32"))

    def _interpolation_factors(self, batch: tf.Tensor) -> tf.Tensor:
        """Gradient-penalty factors alpha ~ U[0, 1], one per example, shape [batch, 1, 1, 1].

        A stateless draw keyed on (seed, step) for the whole global batch, of
        which each replica takes its own slice: a resumed run, and a run on
        several devices, draw exactly what an uninterrupted single-device run would.
        """
        context = tf.distribute.get_replica_context()
        replicas, replica = context.num_replicas_in_sync, context.replica_id_in_sync_group
        seed = tf.stack([tf.constant(self.seed, tf.int64), self.step_counter.value])
        draws = tf.random.stateless_uniform((batch * replicas, 1, 1, 1), seed=seed)
        return draws[replica * batch : (replica + 1) * batch]

    def _generator_step(self, images, masks):
        with tf.GradientTape() as tape:
            fake_masks = self.generator(images, training=True)
            fake = ops.concatenate([images, ops.cast(fake_masks, images.dtype)], axis=-1)
            adv_loss = generator_adversarial_loss(self.critic(fake, training=False))
            seg_loss = self._segmentation_loss(masks, fake_masks)
            g_loss = self.adversarial_weight * adv_loss + self.segmentation_weight * seg_loss
            scaled = self.g_optimizer.scale_loss(_scale_for_replicas(g_loss))
        variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(scaled, variables), variables)
        self.trackers["g_loss"].update_state(g_loss)
        self.trackers["adv_loss"].update_state(adv_loss)
        self.trackers["seg_loss"].update_state(seg_loss)
        for metric in self.segmentation_metrics:
            metric.update_state(masks, fake_masks)

    def test_step(self, data):
        images, masks, _ = keras.utils.unpack_x_y_sample_weight(data)
        predictions = self.generator(images, training=False)
        self.trackers["seg_loss"].update_state(self._segmentation_loss(masks, predictions))
        for metric in self.segmentation_metrics:
            metric.update_state(masks, predictions)
        return metric_results([self.trackers["seg_loss"], *self.segmentation_metrics])

    def predict_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        return self.generator(images, training=False)

    # ------------------------------------------------------------------ saving
    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "schedule": self.schedule,
            "n_critic": self.n_critic,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> RDANetGAN:
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["critic"] = keras.saving.deserialize_keras_object(config["critic"])
        return cls(**config)

    def get_compile_config(self) -> dict:
        return {
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "segmentation_loss": keras.saving.serialize_keras_object(self.segmentation_loss),
            "adversarial_weight": self.adversarial_weight,
            "segmentation_weight": self.segmentation_weight,
            "gp_weight": self.gp_weight,
            "clip_value": self.clip_value,
            "threshold": self.threshold,
        }

    def compile_from_config(self, config: dict) -> None:
        config = dict(config)
        for key in ("g_optimizer", "d_optimizer", "segmentation_loss"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        self.compile(**config)


def _loss_scaled(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)
