"""Training callbacks: per-epoch metric logs, best checkpoint, divergence guard, epoch seed,
and a learning-rate plateau that survives a resume.

Each writes atomically and survives a resume: a run killed at any moment and
restarted by ``BackupAndRestore`` keeps one row per epoch and its best model.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from rdanet_gan.errors import RdanetError
from rdanet_gan.fileio import atomic_path, write_json, write_text

if TYPE_CHECKING:
    import tensorflow as tf


class TrainingDivergedError(RdanetError):
    """A loss term became NaN or infinite; the last good checkpoint is kept."""


class EpochSeed(keras.callbacks.Callback):
    """Set a ``tf.Variable`` to the epoch number before each epoch's data is drawn.

    The training pipeline derives its shuffle order and augmentation from
    (seed, epoch), so a resumed run sees exactly the batches of an uninterrupted one.
    """

    def __init__(self, variable: tf.Variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


class MetricsLogger(keras.callbacks.Callback):
    """Write every epoch's logs (losses, validation metrics, seconds) to CSV and JSON.

    Rows are keyed by epoch, so an epoch re-run after a resume replaces its row
    instead of duplicating it. Columns are in name order (Keras sorts its logs
    by metric, which would put every figure of a
    :class:`~rdanet_gan.evaluation.keras_metrics.ConfusionMetrics` before
    ``loss``), then the learning rate that ``ReduceLROnPlateau`` adds. Not Keras's ``CSVLogger``: it
    appends, so a resumed epoch would add a second row, and it writes no JSON.
    """

    def __init__(self, csv_path: str | Path, json_path: str | Path):
        super().__init__()
        self.csv_path = Path(csv_path)
        self.json_path = Path(json_path)
        self.rows: dict[int, dict] = {}
        self.started = 0.0
        if self.json_path.exists():
            self.rows = {row["epoch"]: row for row in json.loads(self.json_path.read_text())}

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = round(time.perf_counter() - self.started, 2)
        logs = logs or {}
        columns = sorted(logs, key=lambda name: (name.startswith("learning_rate"), name))
        row = {"epoch": epoch + 1, **{name: float(logs[name]) for name in columns}, "seconds": seconds}
        self.rows = {e: r for e, r in self.rows.items() if e <= epoch} | {epoch + 1: row}
        ordered = [self.rows[e] for e in sorted(self.rows)]
        write_json(self.json_path, ordered)
        columns = list(dict.fromkeys(key for r in ordered for key in r))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(ordered)
        write_text(self.csv_path, buffer.getvalue())


class BestModelCheckpoint(keras.callbacks.Callback):
    """Save the segmentation network whenever ``monitor`` improves (default: highest ``val_dice``).

    ``extract`` picks what to save from the trained model (the generator of a
    GAN); the best value so far is kept beside the file so a resumed run does
    not overwrite a better model with a worse one. Not Keras's ``ModelCheckpoint``: it saves the model
    being fitted (the whole GAN, not its generator), and its ``initial_value_threshold`` needs the best
    value of the previous session, which is this file's record.
    """

    def __init__(
        self,
        path: str | Path,
        monitor: str = "val_dice",
        extract: Callable[[keras.Model], keras.Model] | None = None,
    ):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.extract = extract or (lambda model: model)
        self.state_path = self.path.with_suffix(".json")
        self.best = -math.inf
        if self.state_path.exists():
            self.best = json.loads(self.state_path.read_text())["best"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value) or value <= self.best:
            return
        self.best = float(value)
        with atomic_path(self.path) as tmp:
            self.extract(self.model).save(tmp)
        write_json(self.state_path, {"monitor": self.monitor, "best": self.best, "epoch": epoch + 1})


class StopOnNonFinite(keras.callbacks.Callback):
    """Abort at the first NaN or infinite loss term, before anything is saved.

    Raising (rather than setting ``stop_training``) keeps ``BackupAndRestore``
    and the checkpoints at the last good epoch. Not Keras's ``TerminateOnNaN``: it watches ``loss``
    only (not the GAN's critic, generator and penalty terms) and stops by ``stop_training``.
    """

    def __init__(self, terms: tuple[str, ...] = ("loss", "d_loss", "g_loss", "gp", "adv_loss", "seg_loss")):
        super().__init__()
        self.terms = terms
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for term in self.terms:
            value = (logs or {}).get(term)
            if value is not None and not math.isfinite(float(value)):
                raise TrainingDivergedError(
                    f"epoch {self.epoch + 1}, step {batch + 1}: loss term {term!r} became {float(value)}; "
                    "stopped, the last good checkpoint is kept"
                )


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` whose patience survives a resume.

    ``BackupAndRestore`` restores the learning rate but not the callback's
    counters (best value, epochs waited, cooldown), which Keras resets at the
    start of every ``fit``. At the first epoch of a resumed fit they are
    replayed from the run's log, starting from ``initial_learning_rate``, so the
    rate is halved when an uninterrupted run would halve it.
    """

    def __init__(self, log: MetricsLogger, initial_learning_rate: float, **kwargs):
        super().__init__(**kwargs)
        self.log = log
        self.initial_learning_rate = initial_learning_rate
        self.replayed = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.replayed = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.replayed:
            return
        self.replayed = True
        finished = [self.log.rows[e] for e in sorted(self.log.rows) if e <= epoch]  # rows are 1-based
        if not finished:
            return
        optimizer, verbose = self.model.optimizer, self.verbose
        restored = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        optimizer.learning_rate, self.verbose = self.initial_learning_rate, 0
        for row in finished:
            super().on_epoch_end(row["epoch"] - 1, {self.monitor: row[self.monitor]})
        optimizer.learning_rate, self.verbose = restored, verbose
