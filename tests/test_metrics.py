"""Overlap metrics and surface distances against scikit-learn, medpy and hand counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from medpy.metric import binary as medpy_binary
from sklearn import metrics as sk

from rdanet_gan.evaluation import metrics, surface
from rdanet_gan.evaluation.metrics import METRIC_NAMES, Confusion

# Hand-counted 4x4 case: TP = 3, FP = 1 (row 1, col 3), FN = 1 (row 2, col 1), TN = 11.
TRUTH_4X4 = np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
PRED_4X4 = np.array([[0, 0, 0, 0], [0, 1, 1, 1], [0, 0, 1, 0], [0, 0, 0, 0]])
EXPECTED_4X4 = {
    "accuracy": 14 / 16,
    "dice": 6 / 8,
    "precision": 3 / 4,
    "sensitivity": 3 / 4,
    "specificity": 11 / 12,
    "iou": 3 / 5,
    "mean_iou": (3 / 5 + 11 / 13) / 2,
    "f1": 6 / 8,
}


def test_hand_counted_4x4_case():
    assert metrics.confusion(PRED_4X4, TRUTH_4X4) == (3, 1, 1, 11)
    for name, expected in EXPECTED_4X4.items():
        assert getattr(metrics, name)(PRED_4X4, TRUTH_4X4) == pytest.approx(expected), name


@pytest.mark.parametrize("seed", range(5))
def test_random_masks_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    shape = (2, 13, 7)
    truth = rng.random(shape) < rng.uniform(0.05, 0.6)
    pred = rng.random(shape) < rng.uniform(0.05, 0.6)
    t, p = truth.ravel(), pred.ravel()

    tn, fp, fn, tp = sk.confusion_matrix(t, p, labels=[False, True]).ravel()
    assert metrics.confusion(pred, truth) == (tp, fp, fn, tn)
    expected = {
        "accuracy": sk.accuracy_score(t, p),
        "dice": sk.f1_score(t, p),
        "precision": sk.precision_score(t, p),
        "sensitivity": sk.recall_score(t, p),
        "specificity": sk.recall_score(t, p, pos_label=False),
        "iou": sk.jaccard_score(t, p),
        "mean_iou": sk.jaccard_score(t, p, average="macro", labels=[False, True]),
        "f1": sk.f1_score(t, p),
    }
    for name, value in expected.items():
        assert getattr(metrics, name)(pred, truth) == pytest.approx(value), name


def test_accepts_bool_int_and_float_masks_alike():
    for pred, truth in ((PRED_4X4.astype(np.uint8), TRUTH_4X4), (PRED_4X4.astype(np.float32), TRUTH_4X4 == 1)):
        assert metrics.confusion(pred, truth) == (3, 1, 1, 11)


def test_refuses_probabilities_and_mismatched_shapes():
    with pytest.raises(ValueError, match="threshold"):
        metrics.dice(np.full((4, 4), 0.7), TRUTH_4X4)
    with pytest.raises(ValueError, match="shape"):
        metrics.dice(PRED_4X4[:3], TRUTH_4X4)


def test_binarize_counts_the_threshold_as_lesion():
    np.testing.assert_array_equal(metrics.binarize(np.array([0.2, 0.5, 0.9])), [False, True, True])


EMPTY = np.zeros((4, 4), dtype=bool)
FULL = np.ones((4, 4), dtype=bool)
LESION = np.zeros((4, 4), dtype=bool)
LESION[1:3, 1:3] = True

EMPTY_CASES = {
    # (pred, truth): expected value of every metric
    "both empty": (
        EMPTY,
        EMPTY,
        {
            "accuracy": 1,
            "dice": 1,
            "precision": 1,
            "sensitivity": 1,
            "specificity": 1,
            "iou": 1,
            "mean_iou": 1,
            "f1": 1,
        },
    ),
    "prediction empty": (
        EMPTY,
        LESION,
        {
            "accuracy": 12 / 16,
            "dice": 0,
            "precision": 0,
            "sensitivity": 0,
            "specificity": 1,
            "iou": 0,
            "mean_iou": 12 / 16 / 2,
            "f1": 0,
        },
    ),
    "truth empty": (
        LESION,
        EMPTY,
        {
            "accuracy": 12 / 16,
            "dice": 0,
            "precision": 0,
            "sensitivity": 0,
            "specificity": 12 / 16,
            "iou": 0,
            "mean_iou": 12 / 16 / 2,
            "f1": 0,
        },
    ),
    "both all lesion": (
        FULL,
        FULL,
        {
            "accuracy": 1,
            "dice": 1,
            "precision": 1,
            "sensitivity": 1,
            "specificity": 1,
            "iou": 1,
            "mean_iou": 1,
            "f1": 1,
        },
    ),
    "truth all lesion, prediction partial": (
        LESION,
        FULL,
        {
            "accuracy": 4 / 16,
            "dice": 8 / 20,
            "precision": 1,
            "sensitivity": 4 / 16,
            "specificity": 0,
            "iou": 4 / 16,
            "mean_iou": 4 / 16 / 2,
            "f1": 8 / 20,
        },
    ),
}


@pytest.mark.parametrize("case", EMPTY_CASES)
def test_empty_mask_policy(case):
    pred, truth, expected = EMPTY_CASES[case]
    assert set(expected) == set(METRIC_NAMES)
    for name, value in expected.items():
        assert getattr(metrics, name)(pred, truth) == pytest.approx(value), name


def test_pooled_confusion_sums_counts():
    counts = [Confusion(1, 2, 3, 4), Confusion(10, 20, 30, 40)]
    assert Confusion.pool(counts) == (11, 22, 33, 44)
    assert Confusion.pool([]) == (0, 0, 0, 0)


def test_soft_dice():
    truth = np.array([1, 0, 0, 1])
    assert metrics.soft_dice(np.array([0.5, 0.5, 0.0, 1.0]), truth) == pytest.approx(2 * 1.5 / (2.0 + 2))
    assert metrics.soft_dice(truth.astype(float), truth) == 1.0
    assert metrics.soft_dice(np.zeros(4), np.zeros(4)) == 1.0
    assert metrics.soft_dice(np.zeros(4), truth) == 0.0


def _blob_masks(seed: int, shape=(24, 20)) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping irregular masks, one of them touching the image border."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    truth = (rows - 11) ** 2 / 40 + (cols - 9) ** 2 / 25 < 1 + 0.3 * rng.random(shape)
    pred = (rows - 13) ** 2 / 60 + (cols - 4) ** 2 / 30 < 1 + 0.3 * rng.random(shape)
    return pred, truth


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("spacing", [None, (0.5, 1.3)])
def test_surface_distances_match_medpy(seed, spacing):
    pred, truth = _blob_masks(seed)
    assert surface.hd95(pred, truth, spacing) == pytest.approx(medpy_binary.hd95(pred, truth, spacing))
    assert surface.assd(pred, truth, spacing) == pytest.approx(medpy_binary.assd(pred, truth, spacing))


def test_surface_distances_by_hand():
    pred, truth = np.zeros((5, 8), bool), np.zeros((5, 8), bool)
    pred[2, 2] = truth[2, 5] = True  # three columns apart
    assert surface.hd95(pred, truth) == pytest.approx(3.0)
    assert surface.assd(pred, truth) == pytest.approx(3.0)
    assert surface.hd95(pred, truth, spacing=(2.0, 0.5)) == pytest.approx(1.5)
    assert surface.hd95(truth, truth) == 0.0
    truth[2, 6] = True  # distances: pred -> truth {3}, truth -> pred {3, 4}
    assert surface.assd(pred, truth) == pytest.approx(10 / 3)  # mean of all three, not of the two means
    assert surface.hd95(pred, truth) == pytest.approx(3.9)  # numpy's linear-interpolated 95th percentile


def test_surface_distances_of_empty_masks():
    assert surface.hd95(EMPTY, EMPTY) == 0.0
    assert surface.assd(EMPTY, EMPTY) == 0.0
    for pred, truth in ((EMPTY, LESION), (LESION, EMPTY)):
        assert math.isnan(surface.hd95(pred, truth))
        assert math.isnan(surface.assd(pred, truth))


def test_surface_distances_refuse_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        surface.hd95(np.ones((2, 4, 4)), np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="spacing"):
        surface.hd95(LESION, LESION, spacing=(1.0, 0.0))
