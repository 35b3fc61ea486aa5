"""Bootstrap intervals of a pooled Dice and paired model comparisons, checked against a direct computation."""

from __future__ import annotations

import numpy as np
import pytest

from rdanet_gan.evaluation import report
from rdanet_gan.evaluation.metrics import Confusion, confusion
from rdanet_gan.evaluation.scoring import score_predictions
from rdanet_gan.evaluation.statistics import dice_interval, lesion_counts, paired_dice_difference


def _masks(count: int, seed: int, noise: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Random blob truths (one empty) and predictions that flip a fraction ``noise`` of pixels."""
    rng = np.random.default_rng(seed)
    truths, preds = [], []
    for index in range(count):
        truth = np.zeros((24, 20), dtype=bool)
        if index:
            top, left, size = rng.integers(0, 10), rng.integers(0, 8), rng.integers(3, 12)
            truth[top : top + size, left : left + size] = True
        truths.append(truth)
        preds.append(truth ^ (rng.random(truth.shape) < noise))
    return preds, truths


@pytest.fixture
def scans():
    truth_seed, count = 3, 12
    good, truths = _masks(count, truth_seed, noise=0.02)
    worse = [pred ^ (np.random.default_rng(index).random(pred.shape) < 0.08) for index, pred in enumerate(good)]
    return score_predictions(good, truths), score_predictions(worse, truths), good, worse, truths


def test_true_positives_are_recovered_exactly_from_the_saved_rows(scans):
    evaluation, _, preds, _, truths = scans
    tp, sizes = lesion_counts(evaluation)
    np.testing.assert_array_equal(tp, [np.sum(p & t) for p, t in zip(preds, truths)])
    np.testing.assert_array_equal(sizes, [p.sum() + t.sum() for p, t in zip(preds, truths)])


def test_interval_matches_a_direct_resampling_of_confusion_counts(scans):
    evaluation, _, preds, _, truths = scans
    resamples = 400
    draws = np.random.default_rng(7).integers(0, len(preds), size=(resamples, len(preds)))
    direct = [Confusion.pool(confusion(preds[i], truths[i]) for i in draw).dice() for draw in draws]
    expected = np.percentile(direct, [2.5, 97.5])
    np.testing.assert_allclose(dice_interval(evaluation, resamples=resamples, seed=7), expected, rtol=1e-12)
    low, high = dice_interval(evaluation)
    assert low < evaluation.pooled["dice"] < high


def test_identical_images_give_a_point_interval():
    truth = np.zeros((10, 10), dtype=bool)
    truth[2:6, 2:6] = True
    pred = truth.copy()
    pred[2, 2:6] = False  # Dice 24 / 28 on every image
    evaluation = score_predictions([pred] * 5, [truth] * 5)
    assert dice_interval(evaluation) == pytest.approx((24 / 28, 24 / 28))


def test_paired_difference_sees_a_model_better_on_every_image(scans):
    good, worse, *_ = scans
    paired = paired_dice_difference(good, worse)
    assert paired["difference"] == pytest.approx(good.pooled["dice"] - worse.pooled["dice"])
    assert 0 < paired["low"] <= paired["difference"] <= paired["high"]
    assert paired["share_first_better"] == 1.0
    assert paired_dice_difference(good, good) == {"difference": 0.0, "low": 0.0, "high": 0.0, "share_first_better": 0.0}


def test_paired_comparison_refuses_different_images(scans):
    good, _, preds, _, truths = scans
    shuffled = score_predictions(preds[::-1], truths[::-1], ids=[str(i) for i in range(len(preds))][::-1])
    with pytest.raises(ValueError, match="same images"):
        paired_dice_difference(good, shuffled)


def test_table1_reports_intervals_and_paired_differences_from_the_reference(scans):
    good, worse, *_ = scans
    text = report.table1_markdown({"GAN": good, "U-Net": worse}, include_paper=False, reference="GAN")
    low, high = dice_interval(good)
    assert f"- GAN: {100 * good.pooled['dice']:.2f} [{100 * low:.2f}, {100 * high:.2f}]" in text
    assert "GAN minus U-Net: +" in text and "GAN higher in 100% of resamples" in text
    with pytest.raises(ValueError, match="reference 'SegNet'"):
        report.table1_markdown({"GAN": good}, reference="SegNet")
