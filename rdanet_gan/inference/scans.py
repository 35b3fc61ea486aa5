"""Scans in: which files are scans (by suffix), and reading one at its own size.

Other image formats are refused, named or found in a folder, so that no scan is left out unnoticed (GIF:
often an animated cine loop, of which one frame would be read). No image library is imported until a scan
is read: the command line's help text is built from this module.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rdanet_gan.errors import DataError
from rdanet_gan.fileio import real_path

if TYPE_CHECKING:
    import numpy as np

SEGMENT_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm")
REFUSED_IMAGE_SUFFIXES = (".gif", ".webp", ".jp2", ".heic", ".avif")
READ_OR_REFUSED = SEGMENT_SUFFIXES + REFUSED_IMAGE_SUFFIXES


def find_scans(inputs: Sequence[str | Path], out: str | Path) -> tuple[list[Path], list[str]]:
    """Expand files and folders into scan files; problems (a file that is not a scan, a refused image format
    in a folder, a folder without scans) are returned, not raised. A folder's hidden files, ``*_mask*`` and
    ``*_overlay`` files, and the files of a separate output folder ``out`` inside it are not inputs."""
    files, problems = [], []
    out = real_path(out)
    for item in map(Path, inputs):
        found, trouble = _folder_scans(item, out) if item.is_dir() else _file_scan(item)
        files += found
        problems += trouble
    return files, problems


def _folder_scans(folder: Path, out: Path) -> tuple[list[Path], list[str]]:
    try:
        found = sorted(path for path in folder.rglob("*") if path.suffix.lower() in READ_OR_REFUSED)
    except OSError as error:
        return [], [f"{folder}: cannot list the folder ({error.strerror or error})"]
    separate_out = out != real_path(folder)
    files, problems = [], []
    for path in found:
        output_name = "_mask" in path.stem or path.stem.endswith("_overlay")  # a mask, or segment's output
        if path.name.startswith(".") or output_name or (separate_out and real_path(path.parent).is_relative_to(out)):
            continue
        if path.is_file() or path.is_symlink():  # not a folder (or a pipe) named like a scan
            found_here, trouble = _file_scan(path)
            files += found_here
            problems += trouble
    if not files and not problems:
        problems.append(f"{folder}: holds no supported scan ({', '.join(SEGMENT_SUFFIXES)})")
    return files, problems


def _file_scan(path: Path) -> tuple[list[Path], list[str]]:
    """``([path], [])`` for a scan file, else ``([], [its problem])``."""
    if path.is_file() and path.suffix.lower() in SEGMENT_SUFFIXES:
        return [path], []
    if path.is_file():
        kind = f"{path.suffix[1:].upper()} file" if path.suffix else "file without a suffix"
        return [], [f"{path}: unsupported {kind}; segment reads {', '.join(SEGMENT_SUFFIXES)} (convert it to PNG)"]
    if path.is_symlink():
        return [], [f"{path}: broken symbolic link or symlink loop"]
    return [], [f"{path}: no such file or folder"]


def read_scan(path: str | Path) -> np.ndarray:
    """A scan as float32 gray in [0, 1] at its own size (DICOM by its ``.dcm`` suffix); a file that cannot be
    read is a one-line :class:`DataError` (pydicom's warnings about a damaged DICOM are not shown)."""
    from rdanet_gan.data.decode import read_image
    from rdanet_gan.data.dicom import read_dicom

    path = Path(path)
    if path.suffix.lower() != ".dcm":
        return read_image(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
            return read_dicom(path)[0]
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 - a damaged header read lazily (pixel spacing, bits) raises many types
        raise DataError(path, f"not a readable DICOM file ({type(error).__name__})") from None


def refuse_degenerate(path: str | Path, image: np.ndarray) -> None:
    """Refuse with a DataError a scan whose pixels are all equal (a blank frame, a 1x1 image): it shows no
    tissue, and a mask of it, even an empty one, would read as a result ("no lesion")."""
    if image.size == 0 or image.min() == image.max():
        raise DataError(path, "degenerate image (all pixels equal)")
