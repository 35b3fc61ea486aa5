"""One entry point that trains any of the four models into a resumable run directory.

A run directory holds::

    config.json      the settings (and the machine, TF version, precision used)
    split.json       the exact split the model saw
    log.csv, log.json  one row per epoch: loss terms, validation metrics, seconds
    backup/          BackupAndRestore state (weights, both optimizers, epoch)
    best.keras       the segmenter at its best validation Dice (generator only for the GAN)
    best.json        that Dice and its epoch (a resumed run keeps a better checkpoint)
    final.keras      the segmenter after the last epoch, stored in float32
    best.inference.json, final.inference.json
                     each one's threshold, flip TTA, post-processing and presence level, chosen on the
                     validation split
    best.presence.png, final.presence.png
                     what each presence level trades (only when validation lists lesion-free scans)
    gan.keras        (GAN only) the whole GAN with its optimizers, to continue training
    summary.json     training time and the inference- vs training-mode check
    curves.png       the training curves
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rdanet_gan.data import Augmentation, DataSplits, make_dataset, prepare_data, save_split
from rdanet_gan.errors import DataError, RdanetError
from rdanet_gan.evaluation.calibration import choose_inference, validation_problem, write_inference
from rdanet_gan.evaluation.figures import plot_presence_tradeoff, plot_training_curves
from rdanet_gan.evaluation.keras_metrics import segmentation_metrics
from rdanet_gan.evaluation.metrics import dice
from rdanet_gan.fileio import atomic_path, write_json
from rdanet_gan.machine import describe_machine
from rdanet_gan.modelfiles import load_segmenter
from rdanet_gan.models import build_model, check_input_size
from rdanet_gan.options import ENCODERS, LR_SCHEDULES, MODELS, RECIPES
from rdanet_gan.training.batchnorm import reestimate_batchnorm
from rdanet_gan.training.callbacks import (
    BestModelCheckpoint,
    EpochSeed,
    MetricsLogger,
    ResumablePlateau,
    StopOnNonFinite,
)
from rdanet_gan.training.deep_supervision import DeeplySupervised
from rdanet_gan.training.gan import RDANetGAN
from rdanet_gan.training.losses import DiceBCELoss
from rdanet_gan.training.optimizers import EncoderScaledAdam, EncoderSchedule
from rdanet_gan.training.precision import resolve_jit, set_precision

PLATEAU = {"factor": 0.5, "patience": 5, "min_lr": 1e-6}
"""``lr_schedule="plateau"``: halve the rate after 5 epochs without a better validation Dice."""



@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as the run's ``config.json``.

    Defaults are the paper's (128x128, batch 32, Adam 1e-4, 50 epochs) except
    ``bn_momentum`` (0.9, not Keras's 0.99: see ``rdanet_gan.models``) and
    ``augmentation`` (the ``default`` recipe's ``standard``; the paper flips only);
    ``bn_reestimate`` replaces the BatchNorm moving statistics of ``best`` and
    ``final`` with those of their own weights on the training scans
    (:func:`~rdanet_gan.training.batchnorm.reestimate_batchnorm`).
    ``norm`` overrides the network's normalisation ("batch", "group",
    "instance", "none"; None keeps the builder's); ``lr_schedule="cosine"``
    decays the learning rate to zero after ``warmup_epochs`` of linear warm-up,
    ``"plateau"`` halves it when the validation Dice stalls (supervised models).
    ``augmentation`` is a preset or stage list of :meth:`Augmentation.parse`;
    ``deep_supervision`` adds side losses on the decoder (RDAU-Net, U-Net).
    ``recipe`` records the named recipe the run started from (see :meth:`from_recipe`).
    ``encoder`` puts a pretrained encoder under RDAU-Net's decoder (RDAU-Net and
    the GAN's generator; ``rdanet_gan.options.ENCODERS``) with
    ``encoder_weights`` (``"imagenet"`` or None); its learning rate is
    ``encoder_lr_scale`` × ``learning_rate``, and 0 (frozen) for the first
    ``freeze_encoder_epochs`` epochs (:mod:`rdanet_gan.training.optimizers`).
    ``max_false_alarms`` chooses the presence level of ``best`` and ``final``
    as an operating point: the lowest that flags at most this fraction of the
    lesion-free validation scans (None: the best per-image Dice; see
    :func:`~rdanet_gan.postprocess.choose_presence`).
    """

    model: str = "rdanet-gan"
    data: str = "phantom"
    split: str | None = None
    epochs: int = 50
    batch_size: int = 32
    image_size: int = 128
    base_width: int | None = None
    learning_rate: float = 1e-4
    seed: int = 0
    precision: str = "auto"
    jit: str = "auto"
    bn_momentum: float = 0.9
    bn_reestimate: bool = False
    norm: str | None = None
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    augmentation: str = "standard"
    deep_supervision: bool = False
    recipe: str | None = None
    encoder: str | None = None
    encoder_weights: str | None = "imagenet"
    encoder_lr_scale: float = 1.0
    freeze_encoder_epochs: int = 0
    max_false_alarms: float | None = None
    init_generator: str | None = None
    schedule: str = "epoch"
    n_critic: int = 5
    adversarial_weight: float = 0.01
    segmentation_weight: float = 1.0
    gp_weight: float = 10.0
    clip_value: float | None = None

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lr_schedule == "plateau" and self.model == "rdanet-gan":
            raise ValueError("lr_schedule 'plateau' applies to the supervised models; use constant or cosine for the GAN")
        for network in (segmenter_name(self.model), *(("critic",) if self.model == "rdanet-gan" else ())):
            check_input_size(network, self.image_size)
        if self.norm and self.model == "segnet":
            raise ValueError("SegNet is defined with batch normalisation; norm applies to rdau-net and unet")
        if self.deep_supervision and self.model in ("rdanet-gan", "segnet"):
            raise ValueError("deep_supervision applies to rdau-net and unet (the GAN inherits it through init_generator)")
        self._check_encoder_options()
        if self.recipe is not None and self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if self.max_false_alarms is not None and not 0.0 <= self.max_false_alarms < 1.0:
            raise ValueError(f"max_false_alarms must be at least 0 and below 1, got {self.max_false_alarms}")
        Augmentation.parse(self.augmentation)

    def _check_encoder_options(self) -> None:
        """Refuse a pretrained encoder the model cannot take, and encoder settings out of range."""
        if self.encoder is not None:
            if segmenter_name(self.model) != "rdau-net":
                raise ValueError(f"encoder applies to rdau-net and rdanet-gan (their generator), not {self.model}")
            if self.encoder not in ENCODERS:
                raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.encoder_weights not in ("imagenet", None):
            raise ValueError(f"encoder_weights must be 'imagenet' or None, got {self.encoder_weights!r}")
        if self.encoder_lr_scale < 0 or self.freeze_encoder_epochs < 0:
            raise ValueError("encoder_lr_scale and freeze_encoder_epochs must not be negative")

    @classmethod
    def from_recipe(cls, recipe: str = "default", **overrides) -> TrainConfig:
        """The settings of a named recipe (``RECIPES``), with ``overrides`` on top."""
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
        return cls(**{**RECIPES[recipe], **overrides, "recipe": recipe})

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """The settings of a run's ``config.json`` (older runs' names translated, unknown keys ignored)."""
        settings = json.loads(Path(path).read_text())["settings"]
        if "augment" in settings and "augmentation" not in settings:  # runs started before augmentation presets
            settings["augmentation"] = "standard" if settings["augment"] else "none"
        return cls(**{f.name: settings[f.name] for f in dataclasses.fields(cls) if f.name in settings})


@dataclass
class TrainResult:
    """Where a run lives, its per-epoch log, and its two saved segmenters."""

    run_dir: Path
    history: list[dict]
    final_model: Path
    best_model: Path


def segmenter_name(model: str) -> str:
    """The segmentation network behind a model name (the GAN's generator is an RDAU-Net)."""
    return "rdau-net" if model == "rdanet-gan" else model


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
    if config.model != "rdanet-gan":
        segmenter = build_segmenter(config)
        model = DeeplySupervised(segmenter) if config.deep_supervision else segmenter
        model.compile(
            optimizer=segmenter_optimizer(config, steps_per_epoch),
            loss=DiceBCELoss(),
            metrics=segmentation_metrics(),
            jit_compile=jit_compile,
        )
        return model, segmenter
    generator = build_segmenter(config)
    if config.init_generator:
        initial = load_segmenter(config.init_generator)
        try:
            generator.set_weights(initial.get_weights())
        except ValueError:
            raise DataError(
                config.init_generator,
                f"its {initial.name} network does not fit this generator ({generator.count_params():,} parameters "
                f"against {initial.count_params():,}); pass the --base-width and --image-size it was trained with",
            ) from None
    gan = RDANetGAN(generator, build_critic(config), schedule=config.schedule, n_critic=config.n_critic, seed=config.seed)
    critic_steps, generator_steps = player_steps(config, steps_per_epoch)
    gan.compile(
        g_optimizer=segmenter_optimizer(config, generator_steps),
        d_optimizer=keras.optimizers.Adam(learning_rate(config, critic_steps)),
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


def mode_agreement(segmenter: keras.Model, images: np.ndarray, masks: np.ndarray, batch_size: int) -> dict[str, float]:
    """Validation Dice in inference mode and with batch statistics (training mode).

    A large gap means the BatchNorm moving statistics do not describe the data
    (the trap of momentum 0.99 with few steps per epoch). A training-mode call
    moves those statistics; they are put back before returning.
    """
    batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
    weights = segmenter.get_weights()
    inference = np.concatenate([keras.ops.convert_to_numpy(segmenter(b, training=False)) for b in batches])
    training = np.concatenate([keras.ops.convert_to_numpy(segmenter(b, training=True)) for b in batches])
    segmenter.set_weights(weights)
    return {
        "val_dice_inference_mode": float(dice(inference >= 0.5, masks > 0.5)),
        "val_dice_training_mode": float(dice(training >= 0.5, masks > 0.5)),
    }


def run_finished(run_dir: str | Path, epochs: int) -> bool:
    """Whether ``run_dir`` holds a run that completed at least ``epochs`` epochs (its ``summary.json``)."""
    summary = Path(run_dir) / "summary.json"
    return summary.exists() and json.loads(summary.read_text())["epochs"] >= epochs


RUN_FILES = ("split.json", "log.csv", "log.json", "best.json", "best.keras", "final.keras", "backup")
"""What a run writes into its folder besides ``config.json``: a fresh run refuses a folder holding any."""
RESUME_OVERRIDES = ("epochs", "data")
"""Settings a resume takes from the caller: more epochs, or the dataset at a new place (same split)."""


def _prepare_run_dir(run_dir: Path, config: TrainConfig, resume: bool) -> TrainConfig:
    config_path = run_dir / "config.json"
    if config_path.exists():
        if not resume:
            raise RdanetError(f"{run_dir}: holds a run already; pass --resume to continue it, or choose another --out")
        stored = TrainConfig.from_json(config_path)
        ignored = [
            f"{field.name} {getattr(config, field.name)!r} (the run's: {getattr(stored, field.name)!r})"
            for field in dataclasses.fields(TrainConfig)
            if field.name not in RESUME_OVERRIDES and getattr(config, field.name) != getattr(stored, field.name)
        ]
        if ignored:
            warnings.warn(f"{config_path}: a resumed run keeps its settings; ignored: {'; '.join(ignored)}", stacklevel=3)
        return dataclasses.replace(stored, **{name: getattr(config, name) for name in RESUME_OVERRIDES})
    if resume:
        raise RdanetError(f"{run_dir}: no run to resume (no config.json)")
    leftovers = [name for name in RUN_FILES if (run_dir / name).exists()]
    if leftovers:
        raise RdanetError(f"{run_dir}: holds {', '.join(leftovers)} but no config.json; remove them or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    return config


def train(  # noqa: C901, PLR0915 - the run's orchestration, in the order it happens
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    verbose: int | str = "auto",
    strategy: tf.distribute.Strategy | None = None,
    data: DataSplits | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainResult:
    """Train ``config.model`` into ``run_dir``; with ``resume=True`` continue an interrupted run.

    ``strategy`` (e.g. ``tf.distribute.MirroredStrategy()``) distributes the
    batches over devices; ``data`` skips loading when the arrays are at hand;
    ``callbacks`` run after the run's own (logging, backup, checkpoint).
    """
    run_dir = Path(run_dir)
    config = _prepare_run_dir(run_dir, config, resume)
    keras.utils.set_random_seed(config.seed)
    policy = set_precision(config.precision)
    jit_compile = resolve_jit(config.jit, policy)
    if not jit_compile:
        # Bit-for-bit reproducible runs. Not with XLA: Keras turns XLA off under op determinism.
        tf.config.experimental.enable_op_determinism()

    split_path = run_dir / "split.json"
    if data is None:
        split = str(split_path) if split_path.exists() else config.split
        data = prepare_data(config.data, split, image_size=config.image_size, seed=config.seed, verbose=bool(verbose))
    problem = validation_problem(data.validation, config.max_false_alarms)
    if problem:  # before the first epoch, not after the last
        raise DataError(config.split or config.data, problem)

    with tf.device("/CPU:0"):  # read by the tf.data pipeline, which runs on the host
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    augmentation = Augmentation.parse(config.augmentation)
    train_ds = make_dataset(
        data.train.images, data.train.masks, config.batch_size, training=True, augmentation=augmentation, seed=config.seed, epoch=epoch
    )
    val_ds = make_dataset(data.validation.images, data.validation.masks, config.batch_size)

    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model, segmenter = build_trainable(config, jit_compile, steps_per_epoch=int(train_ds.cardinality()))
    write_json(
        run_dir / "config.json",
        {
            "settings": dataclasses.asdict(config),
            "precision_policy": policy,
            "jit_compile": bool(model.jit_compile),  # what Keras accepted, not only what was asked
            "machine": describe_machine(),
        },
    )
    if not split_path.exists():  # after config.json: a run that fails to start leaves no split behind
        save_split(data.split, split_path)

    logger = MetricsLogger(run_dir / "log.csv", run_dir / "log.json")
    run_callbacks = [
        EpochSeed(epoch),
        StopOnNonFinite(),
        logger,
        BestModelCheckpoint(run_dir / "best.keras", extract=lambda _: float32_copy(segmenter, config)),
        # Last, so an epoch counts as done only once its log row and checkpoint are written.
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), double_checkpoint=True, delete_checkpoint=False),
        *(callbacks or []),
    ]
    if config.encoder:  # first: it builds the optimizer that BackupAndRestore may restore
        optimizer = model.g_optimizer if isinstance(model, RDANetGAN) else model.optimizer
        run_callbacks.insert(
            0,
            EncoderSchedule(
                getattr(optimizer, "inner_optimizer", optimizer),  # under a loss-scale wrapper
                segmenter.trainable_variables if isinstance(model, RDANetGAN) else model.trainable_variables,
                config.freeze_encoder_epochs,
                config.encoder_lr_scale,
            ),
        )
    if config.lr_schedule == "plateau":
        plateau = ResumablePlateau(logger, config.learning_rate, monitor="val_dice", mode="max", verbose=1, **PLATEAU)
        run_callbacks.insert(2, plateau)
    started = time.perf_counter()
    model.fit(
        train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=run_callbacks, verbose=verbose, shuffle=False
    )  # the dataset shuffles itself, by (seed, epoch)
    seconds = time.perf_counter() - started

    final = float32_copy(segmenter, config)
    best = load_segmenter(run_dir / "best.keras")
    last_was_best = same_weights(best, final)
    reestimated = {}
    if config.bn_reestimate:
        reestimated["bn_reestimated_layers"] = reestimate_batchnorm(final, data.train.images, config.batch_size)
        if last_was_best:  # one network: its statistics once
            best.set_weights(final.get_weights())
        else:
            reestimate_batchnorm(best, data.train.images, config.batch_size)
        with atomic_path(run_dir / "best.keras") as tmp:
            best.save(tmp)
    with atomic_path(run_dir / "final.keras") as tmp:
        final.save(tmp)
    if isinstance(model, RDANetGAN):
        with atomic_path(run_dir / "gan.keras") as tmp:
            model.save(tmp)
    history = logger.rows
    write_json(
        run_dir / "summary.json",
        {
            "model": config.model,
            "epochs": config.epochs,
            "seconds_this_session": round(seconds, 1),
            "seconds_total": round(sum(row.get("seconds", 0.0) for row in history.values()), 1),
            **mode_agreement(final, data.validation.images, data.validation.masks, config.batch_size),
            **reestimated,
        },
    )
    best_calibration = choose_inference(best, data.validation, config.batch_size, config.max_false_alarms)
    calibrations = {
        run_dir / "best.keras": best_calibration,
        run_dir / "final.keras": best_calibration  # the last epoch was the best: the same network
        if last_was_best
        else choose_inference(final, data.validation, config.batch_size, config.max_false_alarms),
    }
    for checkpoint, calibration in calibrations.items():
        write_inference(checkpoint, calibration)
        if calibration.lesion_free_scans:  # the presence level had something to trade
            plot_presence_tradeoff(calibration.presence, calibration.settings.presence, checkpoint.with_suffix(".presence.png"))
    plot_training_curves(run_dir / "log.csv", run_dir / "curves.png")
    return TrainResult(run_dir, [history[e] for e in sorted(history)], run_dir / "final.keras", run_dir / "best.keras")


def same_weights(a: keras.Model, b: keras.Model) -> bool:
    """Whether two networks of one architecture hold the same weights, bit for bit."""
    weights_a, weights_b = a.get_weights(), b.get_weights()
    return len(weights_a) == len(weights_b) and all(
        x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(weights_a, weights_b)
    )
