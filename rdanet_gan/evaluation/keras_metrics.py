"""Streaming Keras metrics for training logs: pixel counts pooled over an epoch.

An epoch's ``dice`` is the Dice of all its pixels together, not the mean of
per-image scores (:mod:`rdanet_gan.evaluation.scoring` gives those, and the final
numbers). Counters are float32 and summed across ``tf.distribute`` replicas;
updates are XLA-compilable and accept float16/bfloat16 predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from rdanet_gan.evaluation.metrics import METRIC_NAMES, Confusion

LOGGED_FIGURES = ("accuracy", "dice", "precision", "sensitivity", "specificity", "iou", "mean_iou")
"""The figures :func:`segmentation_metrics` logs (``f1`` is ``dice`` under another name)."""

COUNTS = ("tp", "fp", "fn", "tn")


class _TensorConfusion(Confusion):
    """:class:`Confusion`'s formulas and empty-mask policy on backend tensors (graph and XLA safe)."""

    def _ratio(self, numerator, denominator):
        agree = ops.cast(ops.logical_and(ops.equal(self.fp, 0), ops.equal(self.fn, 0)), "float32")
        return ops.where(ops.greater(denominator, 0), ops.divide_no_nan(numerator, denominator), agree)

    def f1(self):
        return self.dice()  # equal on binary masks, without Confusion.f1's Python branch


def _sum_variable(metric: keras.metrics.Metric, name: str):
    """A float32 scalar counter of ``metric``, summed across replicas."""
    return metric.add_variable(shape=(), initializer="zeros", dtype="float32", aggregation="sum", name=name)


def _truth_and_weight(y_true, sample_weight, shape):
    """float32 0/1 ``y_true >= 0.5`` (interpolated masks stay usable) and ``sample_weight`` broadcast, of ``shape``."""
    truth = ops.cast(ops.reshape(ops.cast(y_true, "float32"), shape) >= 0.5, "float32")
    if sample_weight is None:
        return truth, ops.ones(shape, "float32")
    weight = ops.cast(sample_weight, "float32")
    while len(weight.shape) < len(shape):  # (batch,) weighs whole images
        weight = ops.expand_dims(weight, -1)
    return truth, ops.broadcast_to(weight, shape)


@keras.saving.register_keras_serializable(package="rdanet_gan")
class ConfusionMetrics(keras.metrics.Metric):
    """Overlap figures of predictions thresholded at ``p >= threshold``, from one set of pooled TP/FP/FN/TN.

    ``result()`` maps each of ``figures`` (names from ``METRIC_NAMES``) to its
    value, and Keras logs each under its own name; ``name`` is not logged.
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
        self.counts = {key: _sum_variable(self, key) for key in COUNTS}

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the batch's TP/FP/FN/TN (weighted by ``sample_weight``, if given)."""
        truth, weight = _truth_and_weight(y_true, sample_weight, ops.shape(y_pred))
        pred = ops.cast(y_pred >= self.threshold, "float32")
        indicators = (pred * truth, pred * (1 - truth), (1 - pred) * truth, (1 - pred) * (1 - truth))
        for key, indicator in zip(COUNTS, indicators, strict=True):
            self.counts[key].assign_add(ops.sum(indicator * weight))

    def result(self) -> dict:
        """Each figure of the counts accumulated since the last reset, by name."""
        counts = _TensorConfusion(*(self.counts[key].value for key in COUNTS))
        return {figure: getattr(counts, figure)() for figure in self.figures}

    def get_config(self) -> dict:
        return {**super().get_config(), "figures": list(self.figures), "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="rdanet_gan")
class OverlapMetric(ConfusionMetrics):
    """One figure as a scalar metric named after it: the class before :class:`ConfusionMetrics`, so old models load."""

    def __init__(self, metric: str = "dice", threshold: float = 0.5, name: str | None = None, dtype=None):
        super().__init__((metric,), threshold, name=name or metric, dtype=dtype)

    def result(self):
        return super().result()[self.figures[0]]

    def get_config(self) -> dict:
        config = super().get_config()
        config["metric"] = config.pop("figures")[0]
        return config


@keras.saving.register_keras_serializable(package="rdanet_gan")
class SoftDice(keras.metrics.Metric):
    """Soft Dice 2·Σpt / (Σp + Σt) of probabilities p and masks t, pooled: unthresholded, it tracks the Dice loss.

    1.0 when Σp + Σt = 0.
    """

    def __init__(self, name: str = "soft_dice", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.intersection, self.total = _sum_variable(self, "intersection"), _sum_variable(self, "total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the batch's Σpt and Σp + Σt (weighted by ``sample_weight``, if given)."""
        truth, weight = _truth_and_weight(y_true, sample_weight, ops.shape(y_pred))
        probability = ops.cast(y_pred, "float32")
        self.intersection.assign_add(ops.sum(probability * truth * weight))
        self.total.assign_add(ops.sum((probability + truth) * weight))

    def result(self):
        """2·Σpt / (Σp + Σt) since the last reset."""
        total = self.total.value
        empty = ops.cast(ops.equal(total, 0), "float32")
        return ops.where(ops.greater(total, 0), ops.divide_no_nan(2 * self.intersection.value, total), empty)


def segmentation_metrics(threshold: float = 0.5) -> list[keras.metrics.Metric]:
    """What training logs (``val_`` prefixed on validation data): :data:`LOGGED_FIGURES` and ``soft_dice``."""
    return [ConfusionMetrics(LOGGED_FIGURES, threshold), SoftDice()]


def metric_results(metrics: Sequence[keras.metrics.Metric]) -> dict:
    """Each metric's result under its name, a dict result's entries under theirs (as Keras logs them)."""
    results = {}
    for metric in metrics:
        result = metric.result()
        results.update(result if isinstance(result, dict) else {metric.name: result})
    return results
