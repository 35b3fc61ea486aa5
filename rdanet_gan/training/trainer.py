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

:func:`train` runs in stages, each a function below: prepare the run folder
(:mod:`rdanet_gan.training.run_folder`), set the numerics, load the data, build
(:mod:`rdanet_gan.training.build`), fit, finalise the checkpoints, calibrate
their inference settings, and report (the figures: Matplotlib loads there only).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # op determinism: no public way to read it or switch it off

from rdanet_gan.data import ArraySet, Augmentation, DataSplits, make_dataset, prepare_data, save_split
from rdanet_gan.errors import DataError
from rdanet_gan.evaluation.calibration import Calibration, choose_inference, validation_problem, write_inference
from rdanet_gan.evaluation.metrics import dice
from rdanet_gan.fileio import atomic_path, write_json
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.training.batchnorm import reestimate_batchnorm
from rdanet_gan.training.build import build_trainable, float32_copy
from rdanet_gan.training.callbacks import (
    BestModelCheckpoint,
    EpochSeed,
    MetricsLogger,
    ResumablePlateau,
    StopOnNonFinite,
)
from rdanet_gan.training.config import TrainConfig
from rdanet_gan.training.deep_supervision import DeeplySupervised
from rdanet_gan.training.gan import RDANetGAN
from rdanet_gan.training.optimizers import EncoderSchedule
from rdanet_gan.training.precision import resolve_jit, set_precision
from rdanet_gan.training.run_folder import prepare_run_dir, write_config

PLATEAU = {"factor": 0.5, "patience": 5, "min_lr": 1e-6}
"""``lr_schedule="plateau"``: halve the rate after 5 epochs without a better validation Dice."""


@dataclass
class TrainResult:
    """Where a run lives, its per-epoch log, and its two saved segmenters."""

    run_dir: Path
    history: list[dict]
    final_model: Path
    best_model: Path


class Datasets(NamedTuple):
    """The batches ``fit`` reads, and the epoch variable the training batches are drawn by."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    epoch: tf.Variable


class Checkpoints(NamedTuple):
    """The two saved segmenters, whether they are one network, and what re-estimating BatchNorm changed."""

    best: keras.Model
    final: keras.Model
    last_was_best: bool
    reestimated: dict


def train(
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
    config = prepare_run_dir(run_dir, config, resume)
    caller_policy = keras.mixed_precision.global_policy()
    caller_determinism = tf_config.is_op_determinism_enabled()
    try:  # the run's precision and op determinism are global: the caller's come back afterwards
        policy, jit_compile = _set_numerics(config)
        data = _load_data(config, run_dir / "split.json", data, verbose)
        model, segmenter, datasets = _build(config, run_dir, data, strategy or tf.distribute.get_strategy(), policy, jit_compile)
        logger, seconds = _fit(config, run_dir, model, segmenter, datasets, verbose, callbacks)
        checkpoints = _finalise_checkpoints(config, run_dir, model, segmenter, data.train)
        _write_summary(config, run_dir, checkpoints, data.validation, logger.rows, seconds)
        calibrations = _calibrate(config, run_dir, checkpoints, data.validation)
    finally:
        keras.mixed_precision.set_global_policy(caller_policy)
        _set_op_determinism(caller_determinism)
    _report(run_dir, calibrations)
    history = logger.rows
    return TrainResult(run_dir, [history[e] for e in sorted(history)], run_dir / "final.keras", run_dir / "best.keras")


def _set_numerics(config: TrainConfig) -> tuple[str, bool]:
    """Seed everything, set the precision policy and decide on XLA; the policy and whether XLA is on."""
    keras.utils.set_random_seed(config.seed)
    policy = set_precision(config.precision)
    jit_compile = resolve_jit(config.jit, policy)
    # Bit-for-bit reproducible runs without XLA; with it, determinism off, or Keras would turn XLA off.
    _set_op_determinism(not jit_compile)
    return policy, jit_compile


def _set_op_determinism(enabled: bool) -> None:
    """Switch TensorFlow's op determinism on or off (it has a public switch for on only)."""
    if enabled:
        tf.config.experimental.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()


def _load_data(config: TrainConfig, split_path: Path, data: DataSplits | None, verbose: int | str) -> DataSplits:
    """The run's scans (by its own split when resuming), refused before the first epoch if they cannot validate."""
    if data is None:
        split = str(split_path) if split_path.exists() else config.split
        data = prepare_data(config.data, split, image_size=config.image_size, seed=config.seed, verbose=bool(verbose))
    problem = validation_problem(data.validation, config.max_false_alarms)
    if problem:  # before the first epoch, not after the last
        raise DataError(config.split or config.data, problem)
    return data


def _build(
    config: TrainConfig,
    run_dir: Path,
    data: DataSplits,
    strategy: tf.distribute.Strategy,
    policy: str,
    jit_compile: bool,
) -> tuple[keras.Model, keras.Model, Datasets]:
    """The model to fit, the segmenter inside it, and their datasets; writes ``config.json``, then ``split.json``."""
    with tf.device("/CPU:0"):  # read by the tf.data pipeline, which runs on the host
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    augmentation = Augmentation.parse(config.augmentation)
    train_ds = make_dataset(
        data.train.images, data.train.masks, config.batch_size, training=True, augmentation=augmentation, seed=config.seed, epoch=epoch
    )
    val_ds = make_dataset(data.validation.images, data.validation.masks, config.batch_size)
    # A run with a backup resumes from it, so its starting file (init_weights) is neither read nor needed.
    resuming = (run_dir / "backup").is_dir() and any((run_dir / "backup").iterdir())
    start = dataclasses.replace(config, init_weights=None) if resuming else config
    with strategy.scope():
        model, segmenter = build_trainable(start, jit_compile, steps_per_epoch=int(train_ds.cardinality()))
    if isinstance(model, DeeplySupervised):  # every output learns the mask
        train_ds, val_ds = model.targets(train_ds), model.targets(val_ds)
    write_config(run_dir, config, policy, bool(model.jit_compile))  # what Keras accepted, not only what was asked
    split_path = run_dir / "split.json"
    if not split_path.exists():  # after config.json: a run that fails to start leaves no split behind
        save_split(data.split, split_path)
    return model, segmenter, Datasets(train_ds, val_ds, epoch)


def _fit(
    config: TrainConfig,
    run_dir: Path,
    model: keras.Model,
    segmenter: keras.Model,
    datasets: Datasets,
    verbose: int | str,
    callbacks: list[keras.callbacks.Callback] | None,
) -> tuple[MetricsLogger, float]:
    """Fit ``model`` for the epochs not done yet; its per-epoch log and the seconds this session took."""
    logger = MetricsLogger(run_dir / "log.csv", run_dir / "log.json")
    run_callbacks = [
        EpochSeed(datasets.epoch),
        StopOnNonFinite(),
        logger,
        BestModelCheckpoint(run_dir / "best.keras", extract=lambda _: float32_copy(segmenter, config)),
        # Last, so an epoch counts as done only once its log row and checkpoint are written.
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), double_checkpoint=True, delete_checkpoint=False),
        *(callbacks or []),
    ]
    if config.encoder:  # first: it builds the optimizer that BackupAndRestore may restore
        run_callbacks.insert(0, _encoder_schedule(config, model, segmenter))
    if config.lr_schedule == "plateau":
        plateau = ResumablePlateau(logger, config.learning_rate, monitor="val_dice", mode="max", verbose=1, **PLATEAU)
        run_callbacks.insert(2, plateau)
    started = time.perf_counter()
    model.fit(
        datasets.train, validation_data=datasets.validation, epochs=config.epochs, callbacks=run_callbacks, verbose=verbose, shuffle=False
    )  # the dataset shuffles itself, by (seed, epoch)
    return logger, time.perf_counter() - started


def _encoder_schedule(config: TrainConfig, model: keras.Model, segmenter: keras.Model) -> EncoderSchedule:
    """The callback that sets the pretrained encoder's learning-rate scale each epoch (0 while frozen)."""
    optimizer = model.g_optimizer if isinstance(model, RDANetGAN) else model.optimizer
    return EncoderSchedule(
        getattr(optimizer, "inner_optimizer", optimizer),  # under a loss-scale wrapper
        segmenter.trainable_variables if isinstance(model, RDANetGAN) else model.trainable_variables,
        config.freeze_encoder_epochs,
        config.encoder_lr_scale,
    )


def _finalise_checkpoints(
    config: TrainConfig, run_dir: Path, model: keras.Model, segmenter: keras.Model, train_scans: ArraySet
) -> Checkpoints:
    """Save ``final.keras`` (float32), with ``best.keras`` re-estimated when asked, and the GAN's ``gan.keras``."""
    final = float32_copy(segmenter, config)
    best = load_segmenter(run_dir / "best.keras")
    last_was_best = same_weights(best, final)
    reestimated = {}
    if config.bn_reestimate:
        reestimated["bn_reestimated_layers"] = reestimate_batchnorm(final, train_scans.images, config.batch_size)
        if last_was_best:  # one network: its statistics once
            best.set_weights(final.get_weights())
        else:
            reestimate_batchnorm(best, train_scans.images, config.batch_size)
        with atomic_path(run_dir / "best.keras") as tmp:
            best.save(tmp)
    with atomic_path(run_dir / "final.keras") as tmp:
        final.save(tmp)
    if isinstance(model, RDANetGAN):
        with atomic_path(run_dir / "gan.keras") as tmp:
            model.save(tmp)
    return Checkpoints(best, final, last_was_best, reestimated)


def _write_summary(
    config: TrainConfig, run_dir: Path, checkpoints: Checkpoints, validation: ArraySet, history: dict[int, dict], seconds: float
) -> None:
    """Write ``summary.json``: training time, and the final network's Dice in inference against training mode."""
    write_json(
        run_dir / "summary.json",
        {
            "model": config.model,
            "epochs": config.epochs,
            "seconds_this_session": round(seconds, 1),
            "seconds_total": round(sum(row.get("seconds", 0.0) for row in history.values()), 1),
            **mode_agreement(checkpoints.final, validation.images, validation.masks, config.batch_size),
            **checkpoints.reestimated,
        },
    )


def _calibrate(config: TrainConfig, run_dir: Path, checkpoints: Checkpoints, validation: ArraySet) -> dict[Path, Calibration]:
    """Choose each checkpoint's inference settings on the validation scans and write them beside it."""
    best = choose_inference(checkpoints.best, validation, config.batch_size, config.max_false_alarms)
    calibrations = {
        run_dir / "best.keras": best,
        run_dir / "final.keras": best  # the last epoch was the best: the same network
        if checkpoints.last_was_best
        else choose_inference(checkpoints.final, validation, config.batch_size, config.max_false_alarms),
    }
    for checkpoint, calibration in calibrations.items():
        write_inference(checkpoint, calibration)
    return calibrations


def _report(run_dir: Path, calibrations: dict[Path, Calibration]) -> None:
    """Draw what each presence level trades (with lesion-free validation scans) and the training curves."""
    from rdanet_gan.evaluation.figures import plot_presence_tradeoff, plot_training_curves  # Matplotlib: here only

    for checkpoint, calibration in calibrations.items():
        if calibration.lesion_free_scans:  # the presence level had something to trade
            plot_presence_tradeoff(calibration.presence, calibration.settings.presence, checkpoint.with_suffix(".presence.png"))
    plot_training_curves(run_dir / "log.csv", run_dir / "curves.png")


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


def same_weights(a: keras.Model, b: keras.Model) -> bool:
    """Whether two networks of one architecture hold the same weights, bit for bit."""
    weights_a, weights_b = a.get_weights(), b.get_weights()
    return len(weights_a) == len(weights_b) and all(
        x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(weights_a, weights_b)
    )
