"""Overlap metrics of a binary lesion mask against the ground truth.

Every metric is a ratio of the pixel counts of the confusion matrix, with the
lesion as the positive class:

* TP: lesion pixels predicted as lesion,
* FP: background pixels predicted as lesion,
* FN: lesion pixels predicted as background,
* TN: background pixels predicted as background.

Masks are binary (``bool``, or numbers that are all 0 or 1) and of any shape;
probability maps are refused, so that every caller thresholds them the same
way (:func:`rdanet_gan.inference.refine.binarize`, lesion where ``p >= 0.5``).

Empty masks follow one rule, :data:`EMPTY_MASK_POLICY`, here and in the Keras
metrics of :mod:`rdanet_gan.evaluation.keras_metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from rdanet_gan.inference.refine import binarize  # noqa: F401 - prediction's threshold, named here too

EMPTY_MASK_POLICY = """\
**Empty masks.** A metric whose denominator is zero (for example Dice when
neither the prediction nor the ground truth has a lesion pixel) is 1.0 when the
prediction agrees with the ground truth on every pixel (FP = FN = 0: nothing to
find and nothing found) and 0.0 otherwise. Hence, per image:

| case | Dice, IoU, F1 | Precision | Sensitivity | Specificity | M-IoU | HD95, ASSD |
|---|---|---|---|---|---|---|
| both masks empty | 1.0 | 1.0 | 1.0 | 1.0 | 1.0 | 0.0 |
| prediction empty, lesion present | 0.0 | 0.0 | 0.0 | 1.0 | TN/(TN+FN)/2 | undefined |
| lesion predicted, truth empty (normal scan) | 0.0 | 0.0 | 0.0 | TN/(TN+FP) | TN/(TN+FP)/2 | undefined |

Surface distances (HD95, ASSD) have no value when exactly one mask is empty:
they are reported as NaN, left out of the means, and counted.
"""

METRIC_NAMES = ("accuracy", "dice", "precision", "sensitivity", "specificity", "iou", "mean_iou", "f1")
"""The overlap metrics that :meth:`Confusion.metrics` reports, in table order."""


class Confusion(NamedTuple):
    """Pixel counts of one mask pair (or of many, pooled with :meth:`pool`)."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def pool(cls, counts: Iterable[Confusion]) -> Confusion:
        """Sum the counts of many images: the confusion of all their pixels together."""
        tp = fp = fn = tn = 0
        for count in counts:
            tp, fp, fn, tn = tp + count.tp, fp + count.fp, fn + count.fn, tn + count.tn
        return cls(tp, fp, fn, tn)

    def _ratio(self, numerator: int, denominator: int) -> float:
        """``numerator / denominator``, or the empty-mask policy when the denominator is 0."""
        if denominator:
            return numerator / denominator
        return 1.0 if self.fp == 0 and self.fn == 0 else 0.0

    def accuracy(self) -> float:
        """(TP + TN) / (TP + FP + FN + TN)."""
        return self._ratio(self.tp + self.tn, self.tp + self.fp + self.fn + self.tn)

    def dice(self) -> float:
        """2TP / (2TP + FP + FN)."""
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def precision(self) -> float:
        """TP / (TP + FP)."""
        return self._ratio(self.tp, self.tp + self.fp)

    def sensitivity(self) -> float:
        """TP / (TP + FN), also called recall."""
        return self._ratio(self.tp, self.tp + self.fn)

    def specificity(self) -> float:
        """TN / (TN + FP)."""
        return self._ratio(self.tn, self.tn + self.fp)

    def iou(self) -> float:
        """Lesion IoU (Jaccard): TP / (TP + FP + FN)."""
        return self._ratio(self.tp, self.tp + self.fp + self.fn)

    def background_iou(self) -> float:
        """Background IoU: TN / (TN + FP + FN)."""
        return self._ratio(self.tn, self.tn + self.fp + self.fn)

    def mean_iou(self) -> float:
        """Two-class mean IoU: (TP / (TP + FP + FN) + TN / (TN + FP + FN)) / 2."""
        return (self.iou() + self.background_iou()) / 2

    def f1(self) -> float:
        """Harmonic mean of precision P and sensitivity S: 2PS / (P + S).

        On binary masks this equals 2TP / (2TP + FP + FN), the Dice score.
        """
        precision, sensitivity = self.precision(), self.sensitivity()
        if precision + sensitivity == 0:
            return 0.0
        return 2 * precision * sensitivity / (precision + sensitivity)

    def metrics(self) -> dict[str, float]:
        """Every metric of :data:`METRIC_NAMES`, by name."""
        return {name: getattr(self, name)() for name in METRIC_NAMES}


def as_binary_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """``mask`` as a bool array; ValueError unless every value is 0 or 1."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{name} holds values other than 0 and 1; threshold probabilities first")
    return mask.astype(bool)


def confusion(pred: np.ndarray, truth: np.ndarray) -> Confusion:
    """Pixel counts ``(tp, fp, fn, tn)`` of a predicted mask against the true mask."""
    pred = as_binary_mask(pred, "pred")
    truth = as_binary_mask(truth, "truth")
    if pred.shape != truth.shape:
        raise ValueError(f"pred shape {pred.shape} differs from truth shape {truth.shape}")
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return Confusion(tp, fp, fn, pred.size - tp - fp - fn)


def accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Pixel accuracy: (TP + TN) / (TP + FP + FN + TN)."""
    return confusion(pred, truth).accuracy()


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice score: 2TP / (2TP + FP + FN); 1.0 when both masks are empty."""
    return confusion(pred, truth).dice()


def precision(pred: np.ndarray, truth: np.ndarray) -> float:
    """Precision: TP / (TP + FP); empty prediction: 1.0 if the truth is empty too, else 0.0."""
    return confusion(pred, truth).precision()


def sensitivity(pred: np.ndarray, truth: np.ndarray) -> float:
    """Sensitivity (recall): TP / (TP + FN); empty truth: 1.0 if the prediction is empty too, else 0.0."""
    return confusion(pred, truth).sensitivity()


def specificity(pred: np.ndarray, truth: np.ndarray) -> float:
    """Specificity: TN / (TN + FP); all-lesion truth: 1.0 if the prediction is all lesion too, else 0.0."""
    return confusion(pred, truth).specificity()


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Lesion IoU (Jaccard index): TP / (TP + FP + FN); 1.0 when both masks are empty."""
    return confusion(pred, truth).iou()


def mean_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean of lesion and background IoU: (TP / (TP + FP + FN) + TN / (TN + FP + FN)) / 2.

    This is what ``keras.metrics.MeanIoU(num_classes=2)`` reports.
    """
    return confusion(pred, truth).mean_iou()


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """F1 score, 2PS / (P + S) of precision P and sensitivity S, = 2TP / (2TP + FP + FN) = Dice."""
    return confusion(pred, truth).f1()


def soft_dice(probability: np.ndarray, truth: np.ndarray) -> float:
    """Soft Dice of a probability map p against a binary mask t: 2·Σpt / (Σp + Σt).

    With p thresholded to {0, 1} this is the Dice score (Σpt = TP, Σp = TP + FP,
    Σt = TP + FN). 1.0 when Σp + Σt = 0 (no lesion and zero probability everywhere).
    """
    probability = np.asarray(probability, dtype=np.float64)
    truth = as_binary_mask(truth, "truth")
    if probability.shape != truth.shape:
        raise ValueError(f"probability shape {probability.shape} differs from truth shape {truth.shape}")
    denominator = probability.sum() + np.count_nonzero(truth)
    if denominator == 0:
        return 1.0
    return float(2 * probability[truth].sum() / denominator)
