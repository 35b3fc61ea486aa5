"""Table 1 of the paper, reproduced: our scores beside the published ones.

Two tables come out, both in percent except HD95:

* pooled: each metric of the confusion counts summed over all test pixels
  (HD95 is the per-image mean, as it cannot be pooled), beside the paper's rows;
* per image: mean ± SD over test images, which is how most segmentation
  papers report, and which the paper does not state it used.

A footnote block defines every column in TP/FP/FN/TN, so the numbers can be
read without guessing, and notes where the paper's own figures disagree.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping

from rdanet_gan.evaluation.scoring import Evaluation
from rdanet_gan.evaluation.statistics import LEVEL, RESAMPLES, dice_interval, paired_dice_difference

PAPER_TABLE1: dict[str, dict[str, float]] = {
    "RDA-NET-GAN": {
        "accuracy": 98.11,
        "dice": 85.84,
        "precision": 84.78,
        "sensitivity": 75.14,
        "specificity": 99.07,
        "mean_iou": 79.97,
        "f1": 66.16,
    },
    "RDAU-NET": {"dice": 84.69, "precision": 88.58, "sensitivity": 83.19, "mean_iou": 80.67},
}
"""The paper's Table 1 in PERCENT, as printed (57 BUSI test images at 128×128).

Keys are our metric names; the paper's "M-IOU" is taken to be ``mean_iou``.
Metrics the paper does not report for a model are absent, and the U-Net and
SegNet rows are left out.
"""

PAPER_TEST_IMAGES = 57

COLUMNS = (
    ("accuracy", "Acc"),
    ("dice", "Dice"),
    ("precision", "Precision"),
    ("sensitivity", "Sensitivity"),
    ("specificity", "Specificity"),
    ("iou", "IoU"),
    ("mean_iou", "M-IoU"),
    ("f1", "F1"),
    ("hd95", "HD95"),
)
"""(metric name, column header) of Table 1, in order."""

FOOTNOTES = """\
Columns, with TP/FP/FN/TN the pixel counts of lesion (positive) and background:
- Acc = (TP + TN) / (TP + FP + FN + TN)
- Dice = 2TP / (2TP + FP + FN)
- Precision = TP / (TP + FP)
- Sensitivity = TP / (TP + FN)
- Specificity = TN / (TN + FP)
- IoU = TP / (TP + FP + FN), the lesion's Jaccard index
- M-IoU = (TP / (TP + FP + FN) + TN / (TN + FP + FN)) / 2, the two-class mean IoU of
  `keras.metrics.MeanIoU(num_classes=2)`
- F1 = 2 · Precision · Sensitivity / (Precision + Sensitivity), which equals Dice on binary masks
- HD95 = 95th percentile of the boundary distances between prediction and truth, both ways
  (0 when both masks are empty, undefined when only one is; the mean leaves out and counts
  the undefined images)

"Pooled" counts TP/FP/FN/TN over all pixels of all test images, then applies the formula;
"per image" applies it to each image, then averages. A denominator of zero gives 1.0 when
prediction and truth agree on every pixel and 0.0 otherwise.
"""
PLAIN_MASKS = "a pixel is predicted lesion where the network's probability is at least 0.5"
"""How the masks were made, unless told otherwise (``inference`` of :func:`table1_markdown`)."""

PAPER_NOTE = """\
The paper's figures do not fit these definitions together: its F1 (66.16) differs from its
Dice (85.84), and its Dice lies outside [min(Precision, Sensitivity), max(Precision,
Sensitivity)], where a pooled Dice must lie (a per-image mean need not). The paper states
neither its aggregation nor its definitions; its M-IOU is listed here as M-IoU.
"""


def table1_markdown(
    results: Mapping[str, Evaluation],
    include_paper: bool = True,
    reference: str | None = None,
    inference: str = PLAIN_MASKS,
) -> str:
    """Table 1 as Markdown: pooled table (with the paper's rows), per-image table, the
    bootstrap intervals of each pooled Dice, footnotes.

    ``include_paper`` adds the paper's rows and a note on how its figures disagree.
    ``reference`` names a model of ``results`` to compare every other one with,
    paired on the same test images. ``inference`` says how the masks were made
    (e.g. :meth:`~rdanet_gan.inference.settings.InferenceSettings.describe`).
    """
    unit = _distance_unit(results)
    headers = ["Model", "Source", "Images", *(_header(title, unit) for _, title in COLUMNS)]
    pooled_rows = [
        [model, "ours", str(len(evaluation.per_image)), *_pooled_cells(evaluation)]
        for model, evaluation in results.items()
    ]
    if include_paper:
        pooled_rows += [
            [model, "paper", str(PAPER_TEST_IMAGES), *(_number(reported.get(name)) for name, _ in COLUMNS)]
            for model, reported in PAPER_TABLE1.items()
        ]
    per_image_rows = [
        [model, "ours", str(len(evaluation.per_image)), *_per_image_cells(evaluation)]
        for model, evaluation in results.items()
    ]
    return "\n".join(
        [
            f"### Table 1: pooled over all test pixels (percent; HD95 in {unit})",
            "",
            markdown_table(headers, pooled_rows),
            "",
            f"### Table 1: mean ± SD over test images (percent; HD95 in {unit})",
            "",
            markdown_table(headers, per_image_rows),
            "",
            *_uncertainty_lines(results, reference),
            FOOTNOTES + f"Masks: {inference}.\n" + ("\n" + PAPER_NOTE if include_paper else ""),
        ]
    )


def table1_csv(results: Mapping[str, Evaluation], include_paper: bool = True) -> str:
    """Table 1 as CSV text: rows (model, source, statistic) for pooled, mean, sd and the paper.

    Overlap metrics are in percent (columns ``*_percent``); HD95 is in the
    evaluations' distance unit (``hd95_px`` or ``hd95_mm``).
    """
    unit = _distance_unit(results)
    overlap = [name for name, _ in COLUMNS if name != "hd95"]
    fieldnames = ["model", "source", "statistic", "images", *(f"{name}_percent" for name in overlap)]
    fieldnames += [f"hd95_{unit}", "hd95_undefined"]
    rows = []
    for model, evaluation in results.items():
        hd95 = evaluation.summary["hd95"]
        for statistic in ("pooled", "mean", "sd"):
            if statistic == "pooled":
                values = evaluation.pooled
            else:
                values = {name: evaluation.summary[name][statistic] for name in overlap}
            rows.append(
                {
                    "model": model,
                    "source": "ours",
                    "statistic": statistic,
                    "images": len(evaluation.per_image),
                    **{f"{name}_percent": 100 * values[name] for name in overlap},
                    f"hd95_{unit}": hd95["sd" if statistic == "sd" else "mean"],
                    "hd95_undefined": hd95["undefined"],
                }
            )
    if include_paper:
        for model, reported in PAPER_TABLE1.items():
            paper = {"model": model, "source": "paper", "statistic": "reported", "images": PAPER_TEST_IMAGES}
            rows.append(paper | {f"{name}_percent": reported[name] for name in overlap if name in reported})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _uncertainty_lines(results: Mapping[str, Evaluation], reference: str | None) -> list[str]:
    """Markdown lines: each pooled Dice with its 95 % bootstrap interval, and paired differences from ``reference``."""
    if reference is not None and reference not in results:
        raise ValueError(f"reference {reference!r} is not one of the models: {', '.join(results)}")
    lines = [f"### Pooled Dice with its {LEVEL:.0%} bootstrap interval ({RESAMPLES:,} resamples of the test images)", ""]
    for model, evaluation in results.items():
        if not evaluation.per_image:
            continue
        low, high = dice_interval(evaluation)
        line = f"- {model}: {_percent(evaluation.pooled['dice'])} [{_percent(low)}, {_percent(high)}]"
        if reference is not None and model != reference:
            paired = paired_dice_difference(results[reference], evaluation)
            line += (
                f"; {reference} minus {model}: {_signed_percent(paired['difference'])} "
                f"[{_signed_percent(paired['low'])}, {_signed_percent(paired['high'])}], "
                f"{reference} higher in {paired['share_first_better']:.0%} of resamples"
            )
        lines.append(line)
    return [*lines, ""]


def _signed_percent(fraction: float) -> str:
    return f"{100 * fraction:+.2f}"


def _distance_unit(results: Mapping[str, Evaluation]) -> str:
    """The one distance unit of all evaluations ("px" when there are none)."""
    units = {evaluation.distance_unit for evaluation in results.values()} or {"px"}
    if len(units) > 1:
        raise ValueError(f"evaluations mix distance units {sorted(units)}; score all in px or all in mm")
    return units.pop()


def _header(title: str, unit: str) -> str:
    return f"{title} ({unit})" if title == "HD95" else title


def _pooled_cells(evaluation: Evaluation) -> list[str]:
    """Pooled overlap metrics in percent, then the per-image mean HD95."""
    cells = [_percent(evaluation.pooled[name]) for name, _ in COLUMNS if name != "hd95"]
    return cells + [_hd95_cell(evaluation, with_sd=False)]


def _per_image_cells(evaluation: Evaluation) -> list[str]:
    """Per-image mean ± SD of each metric (percent; HD95 in its unit)."""
    cells = []
    for name, _ in COLUMNS:
        if name == "hd95":
            cells.append(_hd95_cell(evaluation, with_sd=True))
        else:
            stats = evaluation.summary[name]
            cells.append(f"{_percent(stats['mean'])} ± {_percent(stats['sd'])}")
    return cells


def _hd95_cell(evaluation: Evaluation, with_sd: bool) -> str:
    """Mean HD95 (± SD), with the count of images where it is undefined."""
    stats = evaluation.summary["hd95"]
    cell = _number(stats["mean"]) + (f" ± {_number(stats['sd'])}" if with_sd else "")
    return cell + (f" ({stats['undefined']} undefined)" if stats["undefined"] else "")


def _percent(fraction: float) -> str:
    """A fraction as percent with two decimals."""
    return _number(100 * fraction)


def _number(value: float | None) -> str:
    """``value`` with two decimals, or a dash when missing or undefined."""
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of ``headers`` and ``rows`` of cells already formatted."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
