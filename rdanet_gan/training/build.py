"""What a run trains: its networks, optimizers and learning rates, compiled for ``fit``.

:func:`build_trainable` gives the model that ``fit`` trains (the segmenter, the
segmenter with deep-supervision side heads, or the GAN) and the segmenter inside
it, which is what a run saves (:func:`float32_copy`).
"""

from __future__ import annotations

import keras

from rdanet_gan.errors import DataError
from rdanet_gan.evaluation.keras_metrics import segmentation_metrics
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.models import build_model
from rdanet_gan.training.config import TrainConfig, segmenter_name
from rdanet_gan.training.deep_supervision import MAIN_OUTPUT, DeeplySupervised
from rdanet_gan.training.gan import RDANetGAN
from rdanet_gan.training.losses import DiceBCELoss
from rdanet_gan.training.optimizers import EncoderScaledAdam


def build_segmenter(config: TrainConfig, pretrained: bool = True) -> keras.Model:
    """The segmentation network of ``config`` at its input size and width.

    ``pretrained=False`` skips loading an encoder's pretrained weights (for a copy whose weights are set next).
    """
    options: dict = {"input_shape": (config.image_size, config.image_size, 1), "bn_momentum": config.bn_momentum}
    if config.base_width:
        options["base_width"] = config.base_width
    if config.norm:
        options["norm"] = config.norm
    if config.encoder:
        options.update(encoder=config.encoder, encoder_weights=config.encoder_weights if pretrained else None)
    return build_model(segmenter_name(config.model), **options)


def initial_segmenter(config: TrainConfig) -> keras.Model:
    """The segmenter of ``config`` with the weights of ``config.init_weights`` if given, else its own.

    The weights do not depend on the input size, so a network trained at 128×128 can go on at 256×256.
    """
    segmenter = build_segmenter(config, pretrained=not config.init_weights)
    if config.init_weights:
        initial = load_segmenter(config.init_weights)
        try:
            segmenter.set_weights(initial.get_weights())
        except ValueError:
            raise DataError(
                config.init_weights,
                f"its {initial.name} network does not fit this {segmenter.name} ({segmenter.count_params():,} "
                f"parameters against {initial.count_params():,}); pass the --model, --base-width and --encoder it was "
                "trained with",
            ) from None
    return segmenter


def segmenter_optimizer(config: TrainConfig, steps_per_epoch: float) -> keras.optimizers.Optimizer:
    """Adam for the segmenter; with a pretrained encoder, Adam with the encoder's own rate scale."""
    rate = learning_rate(config, steps_per_epoch)
    if config.encoder:
        return EncoderScaledAdam(rate, encoder_scale=config.encoder_lr_scale)
    return keras.optimizers.Adam(rate)


def build_critic(config: TrainConfig) -> keras.Model:
    """The Wasserstein critic of ``config``: image and mask in, one score out."""
    options: dict = {"input_shape": (config.image_size, config.image_size, 2)}
    if config.base_width:
        options["base_width"] = config.base_width
    return build_model("critic", **options)


def learning_rate(config: TrainConfig, steps_per_epoch: float) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """An optimizer's learning rate: constant (the paper's), or warm-up then cosine decay.

    ``steps_per_epoch`` counts that optimizer's own steps (see :func:`player_steps` for the GAN's).
    """
    if config.lr_schedule in ("constant", "plateau"):  # plateau: a callback lowers the rate
        return config.learning_rate
    warmup = round(config.warmup_epochs * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.learning_rate,
        decay_steps=max(1, round((config.epochs - config.warmup_epochs) * steps_per_epoch)),
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def player_steps(config: TrainConfig, batches: int) -> tuple[float, float]:
    """Critic and generator steps per epoch of ``batches`` batches: sigma each in Algorithm 1's
    epoch schedule; ``n_critic`` of every ``n_critic + 1`` steps for the critic when interleaved."""
    if config.schedule == "epoch":
        return float(batches), float(batches)
    cycle = config.n_critic + 1
    return batches * config.n_critic / cycle, batches / cycle


def build_trainable(config: TrainConfig, jit_compile: bool, steps_per_epoch: int = 1) -> tuple[keras.Model, keras.Model]:
    """The compiled model to ``fit``, and the segmenter inside it."""
    if config.model == "rdanet-gan":
        return build_gan(config, jit_compile, steps_per_epoch)
    segmenter = initial_segmenter(config)
    if not config.deep_supervision:
        segmenter.compile(
            optimizer=segmenter_optimizer(config, steps_per_epoch),
            loss=DiceBCELoss(presence_weight=config.presence_loss),
            metrics=segmentation_metrics(),
            jit_compile=jit_compile,
        )
        return segmenter, segmenter
    model = DeeplySupervised(segmenter)
    model.compile(
        optimizer=segmenter_optimizer(config, steps_per_epoch),
        loss={name: DiceBCELoss(presence_weight=config.presence_loss) for name in model.output_names},
        loss_weights=model.output_weights,
        metrics={MAIN_OUTPUT: segmentation_metrics()},
        jit_compile=jit_compile,
    )
    return model, segmenter


def build_gan(config: TrainConfig, jit_compile: bool, steps_per_epoch: int = 1) -> tuple[RDANetGAN, keras.Model]:
    """RDA-NET-GAN compiled with its two optimizers, and its generator (from ``init_weights`` if given)."""
    generator = initial_segmenter(config)
    gan = RDANetGAN(generator, build_critic(config), schedule=config.schedule, n_critic=config.n_critic, seed=config.seed)
    critic_steps, generator_steps = player_steps(config, steps_per_epoch)
    gan.compile(
        g_optimizer=segmenter_optimizer(config, generator_steps),
        d_optimizer=keras.optimizers.Adam(learning_rate(config, critic_steps)),
        segmentation_loss=DiceBCELoss(presence_weight=config.presence_loss),
        adversarial_weight=config.adversarial_weight,
        segmentation_weight=config.segmentation_weight,
        gp_weight=config.gp_weight,
        clip_value=config.clip_value,
        jit_compile=jit_compile,
    )
    return gan, generator


def float32_copy(segmenter: keras.Model, config: TrainConfig) -> keras.Model:
    """The segmenter rebuilt under the float32 policy, so saved files do not depend on training precision."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = build_segmenter(config, pretrained=False)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(segmenter.get_weights())
    return copy
