"""Score a set of predicted masks: per-image rows, pooled metrics and mean ± SD.

Two aggregates answer different questions and both are kept:

* ``pooled``: the metrics of the confusion counts summed over every pixel of
  every image (large lesions weigh more; what a Keras metric logs per epoch);
* ``summary``: the mean and sample SD (ddof = 1) over images of each image's
  metric (every image weighs the same; HD95 and ASSD leave out images where
  they are undefined and count them).

Masks may differ in size from image to image, so scans can be scored at their
native resolution: resize each probability map with
:func:`rdanet_gan.inference.predict.resize_to`, then threshold it with
:func:`rdanet_gan.inference.refine.binarize`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rdanet_gan.errors import DataError
from rdanet_gan.evaluation.metrics import (
    METRIC_NAMES,
    Confusion,
    as_binary_mask,
    confusion,
    soft_dice,
)
from rdanet_gan.evaluation.surface import assd, hd95
from rdanet_gan.fileio import nan_to_none, write_text

SURFACE_METRICS = ("hd95", "assd")


@dataclass(frozen=True)
class Evaluation:
    """Scores of one model on one set of images.

    Attributes:
        per_image: one dict per image: id, height, width, true_pixels and
            pred_pixels (lesion pixel counts), every metric of
            ``METRIC_NAMES``, soft_dice (when probabilities were given),
            hd95 and assd (NaN when undefined).
        pooled: metric name -> value over all pixels of all images.
        summary: metric name -> {"mean", "sd", "n", "undefined"} over images.
        distance_unit: "px", or "mm" when a pixel spacing was given.
    """

    per_image: list[dict[str, Any]]
    pooled: dict[str, float]
    summary: dict[str, dict[str, float | int]]
    distance_unit: str = "px"

    def to_json(self) -> str:
        """The evaluation as JSON text (NaN written as null)."""
        data = {
            "distance_unit": self.distance_unit,
            "pooled": self.pooled,
            "summary": self.summary,
            "per_image": self.per_image,
        }
        return json.dumps(nan_to_none(data), indent=2, allow_nan=False) + "\n"

    @classmethod
    def read_json(cls, path: str | os.PathLike) -> Evaluation:
        """Load an evaluation written by :meth:`write_json`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(
                per_image=[_none_to_nan(row) for row in data["per_image"]],
                pooled=_none_to_nan(data["pooled"]),
                summary={name: _none_to_nan(stats) for name, stats in data["summary"].items()},
                distance_unit=data["distance_unit"],
            )
        except OSError as error:
            raise DataError(path, f"cannot read: {error.strerror}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise DataError(path, f"not an evaluation JSON file ({error!r})") from None

    def write_json(self, path: str | os.PathLike, overwrite: bool = True) -> None:
        """Write :meth:`to_json` to ``path`` atomically."""
        write_text(path, self.to_json(), overwrite)

    def write_csv(self, path: str | os.PathLike, overwrite: bool = True) -> None:
        """Write the per-image rows to ``path`` atomically (undefined values as ``nan``)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.per_image[0]) if self.per_image else ["id"])
        writer.writeheader()
        writer.writerows(self.per_image)
        write_text(path, buffer.getvalue(), overwrite)


def score_predictions(
    pred_masks: Sequence[np.ndarray],
    true_masks: Sequence[np.ndarray],
    ids: Sequence[str] | None = None,
    probabilities: Sequence[np.ndarray] | None = None,
    spacing: tuple[float, float] | None = None,
) -> Evaluation:
    """Score binary predicted masks against the true masks, image by image.

    Args:
        pred_masks: 2-D binary masks (bool or 0/1), one per image.
        true_masks: the ground-truth masks, each of its prediction's shape.
        ids: image names for the rows; "0", "1", ... by default.
        probabilities: the probability maps the masks came from, to add soft Dice.
        spacing: pixel size ``(row_mm, col_mm)`` of every image, to give
            HD95 and ASSD in millimetres instead of pixels.

    Raises:
        DataError: naming the image whose masks do not fit together.
        ValueError: with no images, or unequal numbers of each input.
    """
    ids = [str(index) for index in range(len(true_masks))] if ids is None else [str(name) for name in ids]
    lengths = {len(pred_masks), len(true_masks), len(ids)}
    if probabilities is not None:
        lengths.add(len(probabilities))
    if len(lengths) != 1:
        raise ValueError(f"predictions, masks, ids and probabilities differ in number: {sorted(lengths)}")
    if not ids:
        raise ValueError("no images to score: the metrics of an empty set are undefined")

    rows, counts = [], []
    total_intersection = total_sum = 0.0
    for index, (image_id, pred, truth) in enumerate(zip(ids, pred_masks, true_masks, strict=True)):
        pred, truth = _checked_pair(image_id, pred, truth)
        count = confusion(pred, truth)
        counts.append(count)
        row: dict[str, Any] = {
            "id": image_id,
            "height": truth.shape[0],
            "width": truth.shape[1],
            "true_pixels": count.tp + count.fn,
            "pred_pixels": count.tp + count.fp,
            **count.metrics(),
        }
        if probabilities is not None:
            probability = _as_2d(probabilities[index]).astype(np.float64)
            if probability.shape != truth.shape:
                raise DataError(image_id, f"probability map {probability.shape} and true mask {truth.shape} differ")
            row["soft_dice"] = soft_dice(probability, truth)
            total_intersection += probability[truth].sum()
            total_sum += probability.sum() + count.tp + count.fn
        row["hd95"] = hd95(pred, truth, spacing)
        row["assd"] = assd(pred, truth, spacing)
        rows.append(row)

    pooled = Confusion.pool(counts).metrics()
    if probabilities is not None:
        pooled["soft_dice"] = 2 * total_intersection / total_sum if total_sum else 1.0
    names = [*METRIC_NAMES, *(["soft_dice"] if probabilities is not None else []), *SURFACE_METRICS]
    summary = {name: _mean_sd(row[name] for row in rows) for name in names}
    return Evaluation(rows, pooled, summary, "px" if spacing is None else "mm")


def _checked_pair(image_id: str, pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as 2-D bool arrays of one shape, or a DataError naming the image."""
    pred, truth = _as_2d(pred), _as_2d(truth)
    if pred.shape != truth.shape or truth.ndim != 2:
        raise DataError(image_id, f"predicted mask {pred.shape} and true mask {truth.shape} are not one 2-D shape")
    try:
        return as_binary_mask(pred, "predicted mask"), as_binary_mask(truth, "true mask")
    except ValueError as error:
        raise DataError(image_id, str(error)) from None


def _as_2d(array: np.ndarray) -> np.ndarray:
    """``array`` without a trailing channel axis of size 1: ``(H, W, 1)`` -> ``(H, W)``."""
    array = np.asarray(array)
    return array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array


def _mean_sd(values) -> dict[str, float | int]:
    """Mean, sample SD and count of the finite values; ``undefined`` counts the NaNs."""
    values = np.asarray(list(values), dtype=np.float64)
    defined = values[~np.isnan(values)]
    return {
        "mean": float(defined.mean()) if defined.size else math.nan,
        "sd": float(defined.std(ddof=1)) if defined.size > 1 else math.nan,
        "n": int(defined.size),
        "undefined": int(values.size - defined.size),
    }


def _none_to_nan(mapping: dict[str, Any]) -> dict[str, Any]:
    """``mapping`` with None values read back as NaN."""
    return {key: math.nan if value is None else value for key, value in mapping.items()}
