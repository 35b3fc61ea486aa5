"""Inference-time refinements: flip test-time augmentation, a validated threshold, mask clean-up.

BUSI lesions are single, compact regions, so keeping the largest connected
component and filling its holes removes speckle-induced islands without
touching the lesion itself; a region too small to be a lesion is dropped,
which turns a speck on a lesion-free scan into no lesion. Each refinement
is off unless asked for, and the threshold is chosen on the validation
split only.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from scipy import ndimage

from rdanet_gan.evaluation.metrics import Confusion, binarize, confusion


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
