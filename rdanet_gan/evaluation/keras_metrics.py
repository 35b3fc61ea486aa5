"""Streaming Keras metrics for training logs: pooled pixel counts over an epoch.

:class:`ConfusionMetrics` thresholds the probability map (lesion where
``p >= threshold``), adds the batch's TP/FP/FN/TN to four float32 counters and
reports every ratio of :class:`rdanet_gan.evaluation.metrics.Confusion` from
them, with the same formulas and the same empty-mask policy: ``result()`` is a
dict, and Keras logs each entry under its own name (``dice``, ``val_dice``, ...),
so the seven logged figures share one set of counters. The counts are pooled
over every pixel seen since the last reset, so an epoch's ``dice`` is the Dice
of all its pixels together, not the mean of per-image Dice scores (use
:mod:`rdanet_gan.evaluation.scoring` for those, and for the final numbers).

The counters are summed across replicas under ``tf.distribute`` strategies,
the update is XLA-compilable, and ``y_pred`` may be float16 or bfloat16 (mixed
precision): it is compared to the threshold and the counts stay float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from rdanet_gan.evaluation.metrics import METRIC_NAMES

LOGGED_FIGURES = ("accuracy", "dice", "precision", "sensitivity", "specificity", "iou", "mean_iou")
"""The figures :func:`segmentation_metrics` logs (``f1`` is ``dice`` under another name)."""

COUNTS = ("tp", "fp", "fn", "tn")


def _ratio(numerator, denominator, agree):
    """``numerator / denominator``; where the denominator is 0, 1.0 if ``agree`` else 0.0."""
    return ops.where(ops.greater(denominator, 0), ops.divide_no_nan(numerator, denominator), ops.cast(agree, "float32"))


def _overlaps(figures: Sequence[str], tp, fp, fn, tn) -> dict:
    """The metrics named in ``figures`` from the counts, with the formulas of ``Confusion``."""
    agree = ops.logical_and(ops.equal(fp, 0), ops.equal(fn, 0))
    lesion_iou = _ratio(tp, tp + fp + fn, agree)
    formulas = {
        "accuracy": lambda: _ratio(tp + tn, tp + fp + fn + tn, agree),
        "dice": lambda: _ratio(2 * tp, 2 * tp + fp + fn, agree),
        "f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn, agree),
        "precision": lambda: _ratio(tp, tp + fp, agree),
        "sensitivity": lambda: _ratio(tp, tp + fn, agree),
        "specificity": lambda: _ratio(tn, tn + fp, agree),
        "iou": lambda: lesion_iou,
        "mean_iou": lambda: (lesion_iou + _ratio(tn, tn + fp + fn, agree)) / 2,
    }
    return {figure: formulas[figure]() for figure in figures}


def _binary_truth(y_true, shape):
    """``y_true`` reshaped to ``shape`` as float32 0/1: lesion where ``y_true >= 0.5``.

    Thresholding keeps masks resized with interpolation usable.
    """
    return ops.cast(ops.reshape(ops.cast(y_true, "float32"), shape) >= 0.5, "float32")


def _pixel_weight(sample_weight, shape):
    """float32 weights of ``shape``: ones, or ``sample_weight`` (``(batch,)`` weighs whole images) broadcast."""
    if sample_weight is None:
        return ops.ones(shape, "float32")
    weight = ops.cast(sample_weight, "float32")
    while len(weight.shape) < len(shape):
        weight = ops.expand_dims(weight, -1)
    return ops.broadcast_to(weight, shape)


@keras.saving.register_keras_serializable(package="rdanet_gan")
class ConfusionMetrics(keras.metrics.Metric):
    """Overlap figures (``"dice"``, ``"iou"``, ...) of thresholded predictions from one set of pooled counts.

    ``result()`` is a dict, figure name to value; Keras logs each figure under
    its own name, not under this metric's ``name``.

    Args:
        figures: names from ``METRIC_NAMES``: accuracy, dice, precision,
            sensitivity, specificity, iou (lesion), mean_iou (two-class), f1.
        threshold: probability at or above which a pixel counts as lesion.
        name: the metric's own name (Keras needs one; it is not logged).
    """

    def __init__(
        self,
        figures: Sequence[str] = LOGGED_FIGURES,
        threshold: float = 0.5,
        name: str = "confusion",
        dtype=None,
    ):
        unknown = [figure for figure in figures if figure not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; expected one of {', '.join(METRIC_NAMES)}")
        super().__init__(name=name, dtype=dtype)
        self.figures = tuple(figures)
        self.threshold = float(threshold)
        self.counts = {
            key: self.add_variable(shape=(), initializer="zeros", dtype="float32", aggregation="sum", name=key)
            for key in COUNTS
        }

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the batch's TP/FP/FN/TN (weighted by ``sample_weight``, if given)."""
        shape = ops.shape(y_pred)
        truth, weight = _binary_truth(y_true, shape), _pixel_weight(sample_weight, shape)
        pred = ops.cast(y_pred >= self.threshold, "float32")
        batch_counts = {
            "tp": pred * truth,
            "fp": pred * (1 - truth),
            "fn": (1 - pred) * truth,
            "tn": (1 - pred) * (1 - truth),
        }
        for key, indicator in batch_counts.items():
            self.counts[key].assign_add(ops.sum(indicator * weight))

    def result(self) -> dict:
        """Each figure of the counts accumulated since the last reset, by name."""
        return _overlaps(self.figures, *(self.counts[key].value for key in COUNTS))

    def get_config(self) -> dict:
        return {**super().get_config(), "figures": list(self.figures), "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="rdanet_gan")
class OverlapMetric(ConfusionMetrics):
    """One overlap figure as a scalar metric named after it (the log column; ``name`` overrides it).

    What :func:`segmentation_metrics` built, seven times, before
    :class:`ConfusionMetrics`; models compiled with it still load.
    """

    def __init__(self, metric: str = "dice", threshold: float = 0.5, name: str | None = None, dtype=None):
        super().__init__((metric,), threshold, name=name or metric, dtype=dtype)
        self.metric = metric

    def result(self):
        """The figure of the counts accumulated since the last reset."""
        return super().result()[self.metric]

    def get_config(self) -> dict:
        config = super().get_config()
        del config["figures"]
        return {**config, "metric": self.metric}


@keras.saving.register_keras_serializable(package="rdanet_gan")
class SoftDice(keras.metrics.Metric):
    """Soft Dice 2·Σpt / (Σp + Σt) of probabilities p and masks t, pooled over batches.

    Unthresholded, so it tracks the Dice loss; 1.0 when Σp + Σt = 0.
    """

    def __init__(self, name: str = "soft_dice", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.intersection = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", aggregation="sum", name="intersection"
        )
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", aggregation="sum", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the batch's Σpt and Σp + Σt (weighted by ``sample_weight``, if given)."""
        shape = ops.shape(y_pred)
        truth, weight = _binary_truth(y_true, shape), _pixel_weight(sample_weight, shape)
        probability = ops.cast(y_pred, "float32")
        self.intersection.assign_add(ops.sum(probability * truth * weight))
        self.total.assign_add(ops.sum((probability + truth) * weight))

    def result(self):
        """2·Σpt / (Σp + Σt) since the last reset."""
        total = self.total.value
        return _ratio(2 * self.intersection.value, total, ops.equal(total, 0))


def segmentation_metrics(threshold: float = 0.5) -> list[keras.metrics.Metric]:
    """The metrics that training logs: a :class:`ConfusionMetrics` thresholded at ``threshold``, and :class:`SoftDice`.

    The log columns they give (``val_`` prefixed on validation data) are
    accuracy, dice, precision, sensitivity, specificity, iou, mean_iou and
    soft_dice.
    """
    return [ConfusionMetrics(LOGGED_FIGURES, threshold), SoftDice()]


def metric_results(metrics: Sequence[keras.metrics.Metric]) -> dict:
    """Each metric's result under its name, a dict result's entries under theirs (as Keras logs them)."""
    results = {}
    for metric in metrics:
        result = metric.result()
        results.update(result if isinstance(result, dict) else {metric.name: result})
    return results
