"""Masks out: where a scan's mask and overlay go, the rules that protect files, writing a mask atomically, and
the per-scan table of ``segment --csv``."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from rdanet_gan.errors import DataError, OutputExistsError
from rdanet_gan.fileio import atomic_path, real_path, write_text

if TYPE_CHECKING:
    from rdanet_gan.inference.predict import ScanSegmentation

SEGMENTATION_COLUMNS = ("scan", "lesion", "lesion_percent", "peak_probability", "presence_level")
"""The ``segment --csv`` table: the scan file; ``yes`` when a lesion is reported; its share of the scan's pixels;
the highest lesion probability at the network's size; the level a scan's peak must reach for a lesion to be
reported (0: none). With the peaks, another presence level can be applied afterwards without segmenting again."""


def protected_files(files: Sequence[Path], inputs: Sequence[str | Path], out: str | Path) -> set[Path]:
    """Files ``segment`` never replaces: its inputs, and all that ``out`` holds when it is an input folder."""
    protected = {real_path(path) for path in files}
    if any(real_path(out) == real_path(item) for item in inputs if Path(item).is_dir()):
        protected.update(real_path(path) for path in Path(out).iterdir())
    return protected


def output_paths(
    path: Path, out: str | Path, overlay: bool = False, overwrite: bool = False,
    protected: set[Path] = frozenset(), written: Mapping[Path, Path] | None = None,
) -> list[Path]:
    """The mask (and overlay) files for scan ``path`` in folder ``out``, all checked before any is written:
    none may be ``protected``, or an output already ``written`` this run (by real path, naming its scan);
    an existing one is refused unless ``overwrite``."""
    out, written = Path(out), written or {}
    outputs = [out / f"{path.stem}_mask.png"] + ([out / f"{path.stem}_overlay.png"] if overlay else [])
    for output in outputs:
        if real_path(output) in protected:
            raise DataError(output, "is an input or was in the input folder, and is never replaced; choose another --out")
        if real_path(output) in written:
            raise DataError(path, f"has the output name {output.name} of {written[real_path(output)]}; rename one of them")
        if output.exists() and not overwrite:
            raise OutputExistsError(output)
    return outputs


def write_mask(mask: np.ndarray, path: str | Path, overwrite: bool = False) -> None:
    """Write a binary mask as an 8-bit PNG (0 background, 255 lesion), atomically."""
    ok, encoded = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8))
    if not ok:
        raise DataError(path, "could not encode the mask as PNG")
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(encoded.tobytes())


def write_segmentation_table(
    path: str | Path, results: Sequence[tuple[Path, ScanSegmentation]], presence: float, overwrite: bool = False
) -> None:
    """Write one CSV row per segmented scan (:data:`SEGMENTATION_COLUMNS`), atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(SEGMENTATION_COLUMNS)
    for scan, result in results:
        lesion = bool(result.mask.any())
        writer.writerow([scan, "yes" if lesion else "no", f"{100 * float(result.mask.mean()):.3f}", f"{result.peak:.6f}", f"{presence:g}"])
    write_text(path, text.getvalue(), overwrite=overwrite)
