"""Scores of the lesion scans by subgroup: by class (BUSI's ``benign/`` and ``malignant/`` folders) and by size.

A pooled Dice over a split mixes every kind and size of lesion, and the largest weigh the most. BUSI studies
report benign and malignant lesions apart (malignant margins are irregular and harder to trace), and a model
that under-segments large lesions shows it only in a breakdown by size. Every figure is pooled from the
evaluation's per-image rows (:func:`~rdanet_gan.evaluation.evaluate.lesion_row_scores`), so a recorded
``summary.json`` can be broken down after the fact; lesion-free scans belong to no subgroup.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from rdanet_gan.data.records import LESION_LABELS, NORMAL_LABEL
from rdanet_gan.evaluation.evaluate import lesion_row_scores
from rdanet_gan.evaluation.report import markdown_table
from rdanet_gan.evaluation.scoring import Evaluation

#: Upper bounds (exclusive) of the lesion's share of the scan's area, with each group's name: about a third of
#: BUSI's lesion scans falls in each at 128x128.
SIZE_GROUPS: tuple[tuple[float, str], ...] = (
    (0.02, "small (< 2 % of the scan)"),
    (0.10, "medium (2-10 %)"),
    (math.inf, "large (>= 10 %)"),
)


def lesion_class(row: dict) -> str | None:
    """The BUSI class of a scan from the folder of its id (``benign/benign (3).png`` -> ``benign``); None for
    the layouts without classes (``images/…``, UDIAT's ``original/…``)."""
    folder = row["id"].rpartition("/")[0].lower()
    return folder if folder in (*LESION_LABELS, NORMAL_LABEL) else None


def lesion_share(row: dict) -> float:
    """The true lesion's share of the scan's pixels."""
    return row["true_pixels"] / (row["height"] * row["width"])


def lesion_size(row: dict) -> str:
    """The :data:`SIZE_GROUPS` name of a scan's true lesion, by :func:`lesion_share`."""
    return next(name for bound, name in SIZE_GROUPS if lesion_share(row) < bound)


def subgroup_scores(evaluation: Evaluation) -> dict[str, dict[str, dict[str, float | int]]]:
    """``{"class": {name: scores}, "lesion_size": {name: scores}}`` over the scans with a lesion.

    Scores as :func:`~rdanet_gan.evaluation.evaluate.lesion_scan_scores` (pooled Dice, precision, sensitivity,
    per-image Dice, lesion scans reported empty). Classes in alphabetical order, none when no id has a folder;
    sizes from small to large, each only where a scan falls in it.
    """
    by_class = _grouped(evaluation, lesion_class)
    by_size = _grouped(evaluation, lesion_size)
    return {
        "class": dict(sorted(by_class.items())),
        "lesion_size": {name: by_size[name] for _, name in SIZE_GROUPS if name in by_size},
    }


def subgroup_markdown(breakdown: dict[str, dict[str, dict[str, float | int]]]) -> str:
    """:func:`subgroup_scores` as one Markdown table, a row per subgroup."""
    headers = ["lesion scans by", "scans", "pooled Dice", "precision", "sensitivity", "per-image Dice", "reported empty"]
    rows = [
        [
            f"{'class' if kind == 'class' else 'size'}: {name}",
            str(scores["lesion_scans"]),
            *(f"{scores[metric]:.3f}" for metric in ("dice", "precision", "sensitivity", "dice_per_image")),
            str(scores["reported_empty"]),
        ]
        for kind, groups in breakdown.items()
        for name, scores in groups.items()
    ]
    return markdown_table(headers, rows)


def _grouped(evaluation: Evaluation, group_of: Callable[[dict], str | None]) -> dict[str, dict[str, float | int]]:
    groups: dict[str, list[dict]] = {}
    for row in evaluation.per_image:
        if row["true_pixels"] > 0 and (name := group_of(row)) is not None:
            groups.setdefault(name, []).append(row)
    return {name: lesion_row_scores(rows) for name, rows in groups.items()}
