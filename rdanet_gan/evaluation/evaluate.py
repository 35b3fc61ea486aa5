"""Evaluate a segmenter on a set of scans, at the network's input size or at native resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rdanet_gan.data import ArraySet, read_mask
from rdanet_gan.evaluation.metrics import Confusion
from rdanet_gan.evaluation.scoring import Evaluation, score_predictions
from rdanet_gan.inference.predict import predict_probabilities, predict_with_flips, resize_to
from rdanet_gan.inference.refine import binarize, clean_mask
from rdanet_gan.inference.settings import InferenceSettings

if TYPE_CHECKING:
    import keras


def evaluate_model(
    model: keras.Model,
    data: ArraySet,
    settings: InferenceSettings | None = None,
    native_resolution: bool = False,
    batch_size: int = 32,
) -> Evaluation:
    """Score ``model`` (inference mode) on ``data``, its masks made under ``settings`` (default: threshold 0.5).

    At the network's input size (the paper's protocol: 128x128) the resized
    ground truth is the reference. With ``native_resolution`` each probability
    map is resized back to its scan's original size and compared with the
    original mask: what a clinician would see. The settings' flip TTA averages
    the prediction with that of the mirrored scan; post-processing keeps the
    largest lesion region and fills its holes; the presence level empties the
    mask of a scan whose peak probability stays below it. No scans is a ValueError.
    """
    if not len(data):
        raise ValueError("no scans to evaluate")
    settings = settings or InferenceSettings()
    predict = predict_with_flips if settings.flip_tta else predict_probabilities
    probabilities = predict(model, data.images, batch_size=batch_size)[..., 0]
    ids = [record.case_id for record in data.records] or None
    if native_resolution:
        if not data.records:
            raise ValueError("native-resolution evaluation needs scans read from files")
        truths = [read_mask(record.masks) for record in data.records]
        maps = [resize_to(p, truth.shape) for p, truth in zip(probabilities, truths)]
    else:
        truths = [mask[..., 0] > 0.5 for mask in data.masks]
        maps = list(probabilities)
    peaks = [float(p.max()) for p in probabilities]  # at the network's size, where the presence level was chosen
    return score_probability_maps(maps, truths, ids=ids, settings=settings, peaks=peaks)


def score_probability_maps(
    maps: list[np.ndarray],
    truths: list[np.ndarray],
    ids: list[str] | None = None,
    settings: InferenceSettings | None = None,
    peaks: list[float] | None = None,
) -> Evaluation:
    """Score lesion probability maps (already flip-averaged where the settings say so) against their masks,
    each made a mask by :meth:`~rdanet_gan.inference.settings.InferenceSettings.mask` (``peaks``: the maps'
    peaks at the network's size, for maps resized from there); one prediction serves several settings this
    way (see ``calibration``). Each per-image row also gets the ``peak_probability`` the presence level was
    compared with, so that another level can be judged from ``per_image.csv`` alone."""
    settings = settings or InferenceSettings()
    peaks = [float(np.max(p)) if peak is None else peak for p, peak in zip(maps, peaks or [None] * len(maps))]
    predictions = [settings.mask(p, peak) for p, peak in zip(maps, peaks)]
    evaluation = score_predictions(predictions, truths, ids=ids, probabilities=[np.asarray(p) for p in maps])
    for row, peak in zip(evaluation.per_image, peaks):
        row["peak_probability"] = peak
    return evaluation


def lesion_free_false_positives(evaluation: Evaluation) -> dict[str, float | int]:
    """On scans without a lesion (BUSI's normal scans): how many got any lesion pixel predicted."""
    normal = [row for row in evaluation.per_image if row["true_pixels"] == 0]
    flagged = sum(1 for row in normal if row["pred_pixels"] > 0)
    return {"lesion_free_scans": len(normal), "with_predicted_lesion": flagged, "fraction": flagged / len(normal) if normal else float("nan")}


def lesion_scan_scores(evaluation: Evaluation) -> dict[str, float | int]:
    """Pooled Dice, precision and sensitivity, and mean per-image Dice, over the scans with a lesion only.

    For a subset that mixes in lesion-free scans (a split from ``split --validation-normal``): their false
    pixels otherwise enter the pooled scores. See :func:`lesion_row_scores`.
    """
    return lesion_row_scores(evaluation.per_image)


def lesion_row_scores(per_image: Sequence[dict]) -> dict[str, float | int]:
    """:func:`lesion_scan_scores` of some of an evaluation's per-image rows (those with a lesion count).

    Each row's pixel counts are rebuilt from its size, its true and predicted pixel counts and its Dice
    (TP = Dice · (true + predicted) / 2), then pooled by :class:`~rdanet_gan.evaluation.metrics.Confusion`
    as every pooled score is.
    """
    rows = [row for row in per_image if row["true_pixels"] > 0]
    counts = []
    for row in rows:
        tp = round(row["dice"] * (row["true_pixels"] + row["pred_pixels"]) / 2)
        fp, fn = row["pred_pixels"] - tp, row["true_pixels"] - tp
        counts.append(Confusion(tp, fp, fn, row["height"] * row["width"] - tp - fp - fn))
    pooled = Confusion.pool(counts)
    mean_dice = sum(row["dice"] for row in rows) / len(rows) if rows else float("nan")
    return {
        "lesion_scans": len(rows),
        "dice": pooled.dice(),
        "precision": pooled.precision(),
        "sensitivity": pooled.sensitivity(),
        "dice_per_image": mean_dice,
        "reported_empty": sum(1 for row in rows if row["pred_pixels"] == 0),
    }


def normal_scan_alarms(
    model: keras.Model, scans: ArraySet, settings: InferenceSettings | None = None, batch_size: int = 32
) -> dict[str, float | int]:
    """On lesion-free scans: how many get a lesion predicted at the settings' threshold (and flip TTA), as
    predicted, after post-processing, and under the whole ``settings`` (default: threshold 0.5 alone)."""
    settings = settings or InferenceSettings()
    predict = predict_with_flips if settings.flip_tta else predict_probabilities
    maps = list(predict(model, scans.images, batch_size=batch_size)[..., 0])
    masks = [binarize(p, settings.threshold) for p in maps]
    counts = {
        "flagged": sum(bool(mask.any()) for mask in masks),
        "flagged_postprocessed": sum(bool(clean_mask(mask).any()) for mask in masks),
        "flagged_with_settings": sum(bool(settings.mask(p).any()) for p in maps),
    }
    count = max(len(masks), 1)
    fractions = {name.replace("flagged", "fraction"): flagged / count for name, flagged in counts.items()}
    return {"scans": len(masks), **counts, **fractions}
