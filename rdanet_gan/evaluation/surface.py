"""Boundary distances between a predicted and a true 2-D lesion mask: HD95 and ASSD.

Definitions follow ``medpy.metric.binary``: the surface of a mask is the mask
minus its binary erosion (4-connected structuring element), and the distance
from a surface pixel to the other mask is the Euclidean distance to the nearest
surface pixel of that mask. Distances are in pixels, or in millimetres when
``spacing=(row_mm, col_mm)`` gives the pixel size.

Both masks empty gives 0.0 (perfect agreement); exactly one empty gives NaN,
because a distance to nothing is undefined (see ``EMPTY_MASK_POLICY``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from rdanet_gan.evaluation.metrics import as_binary_mask

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def hd95(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """95th percentile of the surface distances of both masks, each to the other.

    With d(a, B) the distance from surface pixel a to the surface of B:
    HD95 = percentile95({d(a, T) : a in surface(P)} ∪ {d(b, P) : b in surface(T)}).
    """
    distances = _symmetric_surface_distances(pred, truth, spacing)
    if distances is None:
        return _empty_case(pred, truth)
    return float(np.percentile(np.concatenate(distances), 95))


def assd(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """Average symmetric surface distance: the mean over the surface pixels of both masks.

    ASSD = mean({d(a, T) : a in surface(P)} ∪ {d(b, P) : b in surface(T)}), as in
    medpy >= 0.5 (older medpy averaged the two directed means instead).
    """
    distances = _symmetric_surface_distances(pred, truth, spacing)
    if distances is None:
        return _empty_case(pred, truth)
    return float(np.concatenate(distances).mean())


def _symmetric_surface_distances(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Distances pred surface -> truth surface and back; None when a mask is empty."""
    pred = as_binary_mask(pred, "pred")
    truth = as_binary_mask(truth, "truth")
    if pred.ndim != 2 or pred.shape != truth.shape:
        raise ValueError(f"need two 2-D masks of one shape, got {pred.shape} and {truth.shape}")
    if spacing is not None:
        spacing = tuple(float(step) for step in spacing)
        if len(spacing) != 2 or min(spacing) <= 0:
            raise ValueError(f"spacing must be two positive sizes (row_mm, col_mm), got {spacing}")
    if not pred.any() or not truth.any():
        return None
    pred_surface, truth_surface = _surface(pred), _surface(truth)
    to_truth = ndimage.distance_transform_edt(~truth_surface, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    return to_truth[pred_surface], to_pred[truth_surface]


def _surface(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-connected neighbour outside it (or on the image border)."""
    return mask & ~ndimage.binary_erosion(mask, structure=_FOUR_CONNECTED)


def _empty_case(pred: np.ndarray, truth: np.ndarray) -> float:
    """0.0 when both masks are empty, NaN when only one is."""
    return 0.0 if not np.any(pred) and not np.any(truth) else float("nan")
