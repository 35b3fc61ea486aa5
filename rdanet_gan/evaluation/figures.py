"""Figures of a run, written to PNG files: training curves, Dice spread, Dice by lesion size, Fig. 4 grid,
the presence level's trade (a scan's overlay: :mod:`rdanet_gan.inference.overlay`).

Figures are built as ``matplotlib.figure.Figure`` objects, not through
``pyplot``: they need no display and no global backend switch (a notebook's
backend is left alone), and nothing stays open after saving. Every file is
written atomically.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rdanet_gan.errors import DataError
from rdanet_gan.inference.overlay import gray, save_figure

if TYPE_CHECKING:
    from rdanet_gan.evaluation.calibration import PresenceScore

_NOT_PLOTTED = {"epoch", "lr", "learning_rate"}


def plot_training_curves(log_csv: str | os.PathLike, out_png: str | os.PathLike) -> None:
    """Loss terms (left) and metrics (right) per epoch from a Keras ``CSVLogger`` file.

    Every column whose name contains "loss" goes left, training solid and
    validation (``val_``) dashed; the validation metrics go right, or the
    training metrics when the log has no validation columns.
    """
    epochs, columns = _read_log(log_csv)
    losses = [name for name in columns if "loss" in name]
    others = [name for name in columns if name not in losses]
    metrics = [name for name in others if name.startswith("val_")] or others

    figure = Figure(figsize=(11, 4), layout="constrained")
    loss_axes, metric_axes = figure.subplots(1, 2)
    for axes, names, title in ((loss_axes, losses, "Loss"), (metric_axes, metrics, "Metrics")):
        colours: dict[str, str] = {}  # a training column and its val_ column share a colour
        for name in names:
            colour = colours.setdefault(name.removeprefix("val_"), f"C{len(colours) % 10}")
            style = "--" if name.startswith("val_") else "-"
            axes.plot(epochs, columns[name], style, color=colour, marker=".", label=name)
        axes.set(title=title, xlabel="epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if names:
            axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    save_figure(figure, out_png)


def plot_dice_distribution(per_model: Mapping[str, Sequence[float]], out_png: str | os.PathLike) -> None:
    """Per-image Dice of each model: a box plot with every image as a jittered point on top."""
    names = list(per_model)
    scores = [np.asarray(per_model[name], dtype=float) for name in names]
    scores = [values[~np.isnan(values)] for values in scores]
    jitter = np.random.default_rng(0)

    figure = Figure(figsize=(1.8 * len(names) + 2, 4), layout="constrained")
    axes = figure.subplots()
    axes.boxplot(scores, showfliers=False)
    axes.set_xticks(range(1, len(names) + 1), names)
    for position, values in enumerate(scores, start=1):
        offsets = jitter.uniform(-0.15, 0.15, size=values.size)
        axes.scatter(position + offsets, values, s=10, alpha=0.6, zorder=3)
    axes.set(ylabel="Dice per image", ylim=(-0.02, 1.02))
    axes.grid(axis="y", alpha=0.3)
    save_figure(figure, out_png)


def plot_dice_by_size(per_image: Sequence[Mapping], out_png: str | os.PathLike) -> None:
    """Per-image Dice of the scans with a lesion against the lesion's share of the scan (log scale), one
    colour per class (:func:`~rdanet_gan.evaluation.subgroups.lesion_class`), the size groups' bounds dashed:
    whether misses gather at one size or class shows at a glance."""
    from rdanet_gan.evaluation.subgroups import SIZE_GROUPS, lesion_class, lesion_share

    rows = [row for row in per_image if row["true_pixels"] > 0]
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    axes = figure.subplots()
    for name in sorted({lesion_class(row) or "scans" for row in rows}):
        group = [row for row in rows if (lesion_class(row) or "scans") == name]
        axes.scatter([100 * lesion_share(row) for row in group], [row["dice"] for row in group], s=14, alpha=0.7, label=f"{name} ({len(group)})")
    for bound, _ in SIZE_GROUPS[:-1]:
        axes.axvline(100 * bound, color="gray", linestyle="--", linewidth=1)
    axes.set(xscale="log", xlabel="lesion's share of the scan (%)", ylabel="Dice per image", ylim=(-0.02, 1.02))
    axes.set_title("Dice by lesion size")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    save_figure(figure, out_png)


def plot_presence_tradeoff(scores: Mapping[float, PresenceScore], chosen: float, out_png: str | os.PathLike) -> None:
    """What each presence level trades: lesion-free scans flagged (x) against per-image Dice on the scans
    with a lesion (y), one labelled point per level, the chosen one ringed."""
    levels = sorted(scores)
    flagged = [100 * scores[level].lesion_free_flagged for level in levels]
    dice = [scores[level].lesion_dice_per_image for level in levels]

    figure = Figure(figsize=(6, 4.5), layout="constrained")
    axes = figure.subplots()
    axes.plot(flagged, dice, "-o", color="C0")
    labels: dict[tuple[float, float], list[str]] = {}  # levels that land on one point share its label
    for level, x, y in zip(levels, flagged, dice):
        labels.setdefault((x, y), []).append(f"{level:g}" if level else "none")
    for (x, y), names in labels.items():
        axes.annotate(", ".join(names), (x, y), textcoords="offset points", xytext=(5, 5), fontsize="small")
    axes.scatter(
        [100 * scores[chosen].lesion_free_flagged],
        [scores[chosen].lesion_dice_per_image],
        s=160,
        facecolors="none",
        edgecolors="C3",
        linewidths=2,
        zorder=3,
        label=f"chosen: {chosen:g}" if chosen else "chosen: none",
    )
    axes.set(
        xlabel="lesion-free validation scans with a lesion predicted (%)",
        ylabel="Dice per image, validation scans with a lesion",
        title="Presence level: false alarms against missed lesions",
    )
    axes.margins(0.12)  # room for the labels
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    save_figure(figure, out_png)


def plot_comparison_grid(
    images: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    preds_by_model: Mapping[str, Sequence[np.ndarray]],
    out_png: str | os.PathLike,
) -> None:
    """Rows of scans; columns: scan, ground truth, then each model's mask (like the paper's Fig. 4)."""
    counts = {len(images), len(truths), *(len(preds) for preds in preds_by_model.values())}
    if len(counts) != 1 or not images:
        raise ValueError(f"need the same non-zero number of scans, truths and predictions per model, got {counts}")
    titles = ["scan", "ground truth", *preds_by_model]
    figure = Figure(figsize=(2 * len(titles), 2 * len(images)), layout="constrained")
    grid = figure.subplots(len(images), len(titles), squeeze=False)
    for row, (image, truth) in enumerate(zip(images, truths, strict=True)):
        grid[row, 0].imshow(gray(image), cmap="gray")
        masks = [truth, *(preds[row] for preds in preds_by_model.values())]
        for col, mask in enumerate(masks, start=1):
            grid[row, col].imshow(np.squeeze(np.asarray(mask, dtype=float)), cmap="gray", vmin=0, vmax=1)
        for axes in grid[row]:
            axes.set_axis_off()
    for col, title in enumerate(titles):
        grid[0, col].set_title(title, fontsize="medium")
    save_figure(figure, out_png)


def _read_log(log_csv: str | os.PathLike) -> tuple[list[float], dict[str, list[float]]]:
    """Epochs and the plottable columns of a CSVLogger file ("NA" and blanks read as NaN)."""
    try:
        with open(log_csv, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise DataError(log_csv, f"cannot read training log: {error.strerror}") from None
    if not rows:
        raise DataError(log_csv, "training log has no epochs")
    if "epoch" not in rows[0]:
        raise DataError(log_csv, "training log has no 'epoch' column (expected a Keras CSVLogger file)")
    names = [name for name in rows[0] if name not in _NOT_PLOTTED]
    epochs = [_number(row["epoch"]) for row in rows]
    return epochs, {name: [_number(row[name]) for row in rows] for name in names}


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan
