"""Overlays: a scan in gray with lesion outlines drawn on it, written to a PNG file (matplotlib: imported
only when an overlay is asked for). Figures are ``matplotlib.figure.Figure`` objects, not ``pyplot``'s:
no display, no global backend switch (a notebook's is left alone), nothing left open after saving."""

from __future__ import annotations

import os

import contourpy
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rdanet_gan.fileio import atomic_path

TRUTH_COLOUR = "lime"
PREDICTION_COLOUR = "magenta"


def plot_overlay(
    image: np.ndarray, truth: np.ndarray | None, pred: np.ndarray, out_png: str | os.PathLike, title: str | None = None
) -> None:
    """A scan in gray with the ground-truth (unless None) and predicted lesion contours drawn on it."""
    outlines = [("ground truth", truth, TRUTH_COLOUR), ("prediction", pred, PREDICTION_COLOUR)]
    outlines = [outline for outline in outlines if outline[1] is not None]
    figure = Figure(figsize=(5, 5), layout="constrained")
    axes = figure.subplots()
    axes.imshow(gray(image), cmap="gray")
    for _, mask, colour in outlines:
        for rows, cols in _contours(mask):
            axes.plot(cols, rows, color=colour, linewidth=1.5)
    handles = [Line2D([], [], color=colour, label=label) for label, _, colour in outlines]
    axes.legend(handles=handles, loc="lower right", fontsize="small")
    axes.set_axis_off()
    if title:
        axes.set_title(title)
    save_figure(figure, out_png)


def gray(image: np.ndarray) -> np.ndarray:
    """A 2-D gray view of an (H, W), (H, W, 1) or (H, W, 3) scan."""
    image = np.asarray(image, dtype=float)
    return image.mean(axis=-1) if image.ndim == 3 else image


def save_figure(figure: Figure, out_png: str | os.PathLike) -> None:
    """Write ``figure`` as a PNG file at 120 dpi, atomically."""
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, dpi=120)


def _contours(mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, cols) of each closed lesion outline; a lesion touching the border is closed along it."""
    mask = np.asarray(mask, dtype=float)
    padded = np.pad(mask.reshape(mask.shape[:2]), 1)  # (H, W) or (H, W, 1); never squeeze a 1-pixel side away
    lines = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate).lines(0.5)  # (x, y) points
    return [(line[:, 1] - 1, line[:, 0] - 1) for line in lines]
