"""Evaluation of lesion masks: metrics, surface distances, scoring and Table 1.

These modules need only NumPy, SciPy and OpenCV. Two more are imported by
their own path: ``rdanet_gan.evaluation.keras_metrics`` (streaming metrics for
training logs; imports TensorFlow) and ``rdanet_gan.evaluation.figures``
(matplotlib).
"""

from __future__ import annotations

from rdanet_gan.evaluation.metrics import (
    EMPTY_MASK_POLICY,
    METRIC_NAMES,
    Confusion,
    accuracy,
    binarize,
    confusion,
    dice,
    f1,
    iou,
    mean_iou,
    precision,
    sensitivity,
    soft_dice,
    specificity,
)
from rdanet_gan.evaluation.report import PAPER_TABLE1, table1_csv, table1_markdown
from rdanet_gan.evaluation.scoring import Evaluation, score_predictions
from rdanet_gan.evaluation.surface import assd, hd95

__all__ = [
    "EMPTY_MASK_POLICY",
    "METRIC_NAMES",
    "PAPER_TABLE1",
    "Confusion",
    "Evaluation",
    "accuracy",
    "assd",
    "binarize",
    "confusion",
    "dice",
    "f1",
    "hd95",
    "iou",
    "mean_iou",
    "precision",
    "score_predictions",
    "sensitivity",
    "soft_dice",
    "specificity",
    "table1_csv",
    "table1_markdown",
]
