"""How sure a test-split score is: bootstrap intervals over test images, and paired comparisons.

With 57 test scans a pooled Dice moves by a few hundredths when a handful of
scans change, so a single figure cannot say whether one model beats another.
Resampling the test images with replacement (the unit that was sampled) gives
a 95 % percentile interval of a pooled Dice; resampling the *same* images for
two models gives the interval of their difference (a paired comparison, which
is far tighter than comparing two separate intervals).

Everything here works from an :class:`Evaluation`'s per-image rows, so it
applies to saved ``evaluation.json`` files too: each image's true-positive
count is recovered exactly from its Dice and pixel counts
(Dice = 2TP / (|prediction| + |truth|)).
"""

from __future__ import annotations

import numpy as np

from rdanet_gan.evaluation.scoring import Evaluation

RESAMPLES = 10_000
LEVEL = 0.95


def lesion_counts(evaluation: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Per image: true positives, and |prediction| + |truth| (pixels), the two sums of a pooled Dice."""
    rows = evaluation.per_image
    sizes = np.array([row["true_pixels"] + row["pred_pixels"] for row in rows], dtype=np.float64)
    tp = np.round(np.array([row["dice"] for row in rows], dtype=np.float64) * sizes / 2)
    return tp, sizes


def _pooled_dice(tp: np.ndarray, sizes: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Pooled Dice of every resample (row of image indices); 1.0 where a resample has no lesion pixel at all."""
    denominator = sizes[draws].sum(axis=1)
    numerator = 2 * tp[draws].sum(axis=1)
    return np.divide(numerator, denominator, out=np.ones_like(numerator), where=denominator > 0)


def _draws(count: int, resamples: int, seed: int) -> np.ndarray:
    """``[resamples, count]`` image indices drawn with replacement: one set for both models of a paired comparison.

    Not ``scipy.stats.bootstrap``: it draws these same indices (SciPy 1.17) but takes its interval ends with
    ``scipy.stats.quantile``, which differs from ``np.percentile`` in the last bit, so the committed intervals
    would not reproduce bit for bit.
    """
    if count == 0:
        raise ValueError("no images to resample")
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def dice_interval(
    evaluation: Evaluation, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the pooled Dice, resampling images with replacement."""
    tp, sizes = lesion_counts(evaluation)
    return _interval(_pooled_dice(tp, sizes, _draws(len(tp), resamples, seed)), level)


def paired_dice_difference(
    first: Evaluation, second: Evaluation, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0
) -> dict[str, float]:
    """Pooled Dice of ``first`` minus that of ``second`` on the same images, with its bootstrap interval.

    Both evaluations must score the same images in the same order. Returns the
    observed difference, the interval's ends, and ``share_first_better``: the
    fraction of resamples in which ``first`` scores higher.
    """
    first_ids = [row["id"] for row in first.per_image]
    if first_ids != [row["id"] for row in second.per_image]:
        raise ValueError("a paired comparison needs both evaluations on the same images, in the same order")
    draws = _draws(len(first_ids), resamples, seed)
    (tp_a, sizes_a), (tp_b, sizes_b) = lesion_counts(first), lesion_counts(second)
    difference = _pooled_dice(tp_a, sizes_a, draws) - _pooled_dice(tp_b, sizes_b, draws)
    low, high = _interval(difference, level)
    return {
        "difference": float(first.pooled["dice"] - second.pooled["dice"]),
        "low": low,
        "high": high,
        "share_first_better": float(np.mean(difference > 0)),
    }
