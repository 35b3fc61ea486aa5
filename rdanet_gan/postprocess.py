"""Inference-time refinements: flip test-time augmentation, a validated threshold, mask clean-up,
and a scan-level presence decision.

BUSI lesions are single, compact regions, so keeping the largest connected
component and filling its holes removes speckle-induced islands without
touching the lesion itself; a region too small to be a lesion is dropped,
which turns a speck on a lesion-free scan into no lesion. The presence
decision reports no lesion on a scan whose highest lesion probability stays
below a level: a network that hesitates everywhere on a scan has most likely
found nothing there. Each refinement is off unless asked for, and every
level is chosen on the validation split only (:mod:`rdanet_gan.evaluation.calibration`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy import ndimage

from rdanet_gan.evaluation.metrics import Confusion, binarize, confusion

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class InferenceSettings:
    """How a probability map becomes a mask: threshold, flip TTA, post-processing, presence level.

    ``presence`` above ``threshold`` empties the mask of a scan whose peak
    probability stays below it; 0 (the default) never does.
    """

    threshold: float = 0.5
    flip_tta: bool = False
    postprocess: bool = False
    presence: float = 0.0

    def mask(self, probability: np.ndarray, peak: float | None = None) -> np.ndarray:
        """The binary lesion mask of one 2-D probability map (already flip-averaged when ``flip_tta``).

        ``peak`` is the map's highest probability at the network's size, for a
        map resized from there: the presence level is decided on it.
        """
        mask = binarize(probability, self.threshold)
        if self.postprocess:
            mask = clean_mask(mask)
        if self.presence and (float(np.max(probability)) if peak is None else peak) < self.presence:
            mask = np.zeros_like(mask)
        return mask

    def describe(self) -> str:
        """The settings in words, as ``segment`` and ``evaluate`` print them."""
        refinements = [name for name, on in (("flip TTA", self.flip_tta), ("post-processing", self.postprocess)) if on]
        presence = [f"a lesion only where the peak probability reaches {self.presence:g}"] if self.presence else []
        return ", ".join([f"threshold {self.threshold:.2f}", *refinements, *presence])


def predict_with_flips(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Mean probability over the scan and its horizontal mirror (the flip used in training)."""
    plain = model.predict(images, batch_size=batch_size, verbose=0)
    mirrored = model.predict(images[:, :, ::-1], batch_size=batch_size, verbose=0)[:, :, ::-1]
    return (plain + mirrored) / 2.0


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected lesion region of a 2-D binary mask (an empty mask stays empty)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions enclosed by the lesion."""
    return ndimage.binary_fill_holes(mask)


MIN_LESION_FRACTION = 0.001
"""Regions below 0.1 % of the scan are noise: the smallest lesion of BUSI's training split
covers 0.27 % of its scan (44 pixels at 128×128)."""


def clean_mask(mask: np.ndarray, min_fraction: float = MIN_LESION_FRACTION) -> np.ndarray:
    """Largest connected component with its holes filled; nothing when that region is under ``min_fraction`` of the scan."""
    cleaned = fill_holes(keep_largest_component(mask))
    return cleaned if cleaned.sum() >= min_fraction * cleaned.size else np.zeros_like(cleaned)


def choose_threshold(
    probabilities: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    candidates: Sequence[float] = tuple(np.round(np.arange(0.3, 0.71, 0.05), 2)),
) -> float:
    """The candidate threshold with the best pooled Dice on the given (validation) images."""

    def pooled_dice(threshold: float) -> float:
        return Confusion.pool(confusion(binarize(p, threshold), t) for p, t in zip(probabilities, truths)).dice()

    return max(candidates, key=pooled_dice)


PRESENCE_LEVELS = (
    *(0.0, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995),
    *(0.999, 0.9995, 0.9999, 0.99995, 0.99999, 0.999995, 0.999999),
)
"""The presence levels :func:`choose_presence` tries; 0 is none. The grid reaches 1 - 1e-6 (a peak logit
of 13.8, still well resolved by a float32 sigmoid): a confident network's peaks on lesion-free scans
lie between 0.999 and that, so a grid stopping at 0.999 cannot reach a low false-alarm rate."""


class PresenceScore(NamedTuple):
    """How one presence level does on a set of scans."""

    dice_per_image: float
    """Mean per-image Dice over all scans: what :func:`choose_presence` maximises."""
    lesion_dice_per_image: float
    """Mean per-image Dice over the scans with a lesion (NaN when there are none)."""
    lesion_free_flagged: float
    """Fraction of the lesion-free scans with a lesion predicted (NaN when there are none)."""


def score_presence(
    probabilities: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    settings: InferenceSettings,
    levels: Sequence[float] = PRESENCE_LEVELS,
) -> dict[float, PresenceScore]:
    """How each presence level does on the given (validation) scans under ``settings``.

    Per-image Dice counts a lesion-free scan as 1 when nothing is predicted on
    it and 0 otherwise (the empty-mask policy of :mod:`rdanet_gan.evaluation.metrics`),
    so scans with and without a lesion weigh in by their number. Levels at or
    below the threshold change nothing and are skipped. A higher level only
    empties more masks, so lesion Dice and the flagged fraction both fall
    (or stay) as the level rises.
    """
    masks = [settings.mask(p) for p in probabilities]
    peaks = [float(np.max(p)) for p in probabilities]
    has_lesion = np.array([bool(truth.any()) for truth in truths])
    scores = {}
    for level in (level for level in levels if level == 0.0 or level > settings.threshold):
        kept = [mask if peak >= level else np.zeros_like(mask) for mask, peak in zip(masks, peaks)]
        dice = np.array([confusion(mask, truth).dice() for mask, truth in zip(kept, truths)])
        flagged = np.array([mask.any() for mask in kept])
        scores[float(level)] = PresenceScore(
            float(dice.mean()),
            float(dice[has_lesion].mean()) if has_lesion.any() else float("nan"),
            float(flagged[~has_lesion].mean()) if (~has_lesion).any() else float("nan"),
        )
    return scores


def choose_presence(scores: dict[float, PresenceScore], max_false_alarms: float | None = None) -> float:
    """The presence level to use, from the :func:`score_presence` of the validation scans.

    By default the level with the best mean per-image Dice over all scans (ties
    to the lower level, so scans that all carry a lesion choose none). With
    ``max_false_alarms``, an operating point instead: the lowest level (the one
    that keeps the most lesions) that flags at most that fraction of the
    lesion-free scans, or, when none does, the level that flags fewest.
    """
    if max_false_alarms is None:
        return max(scores, key=lambda level: scores[level].dice_per_image)
    if any(math.isnan(score.lesion_free_flagged) for score in scores.values()):
        raise ValueError("a false-alarm target needs lesion-free scans")
    meeting = [level for level, score in scores.items() if score.lesion_free_flagged <= max_false_alarms]
    return min(meeting) if meeting else min(scores, key=lambda level: (scores[level].lesion_free_flagged, level))
