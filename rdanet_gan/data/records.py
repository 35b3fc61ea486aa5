"""Find the scans of a dataset folder and pair every image with its mask files.

Three layouts are recognised:

* ``busi``: ``benign/``, ``malignant/`` and optionally ``normal/``, the lesion
  mask of ``NAME.png`` being the union of ``NAME_mask.png`` and every
  ``NAME_mask_K.png`` (the published BUSI layout);
* ``paired``: ``images/`` and ``masks/``, matched by file stem, a mask stem
  possibly carrying a suffix such as ``_mask``;
* ``udiat``: ``original/`` and ``GT/`` with equal file names (UDIAT Dataset B).

Scanning never decodes a pixel: it only checks that the files pair up.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rdanet_gan.errors import DataError

LAYOUTS = ("busi", "paired", "udiat")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
LESION_LABELS = ("benign", "malignant")
NORMAL_LABEL = "normal"

# Image and mask folders (matched case-insensitively) of the two-folder layouts.
_LAYOUT_FOLDERS = {"paired": ("images", "masks"), "udiat": ("original", "gt")}
_BUSI_MASK_NAME = re.compile(r"^(?P<stem>.+)_mask(?:_(?P<index>\d+))?$")
# Suffixes a ``paired`` mask stem may add to its image stem, tried in order.
_PAIRED_MASK_SUFFIXES = ("", "_mask", "-mask", "_seg", "_gt", "_label")


@dataclass(frozen=True)
class Record:
    """One scan: its image file, its mask files and its class.

    ``case_id`` is the image path relative to the dataset root in POSIX style
    (``"benign/benign (1).png"``); split files name scans by it.
    """

    image: Path
    masks: tuple[Path, ...]
    label: str
    case_id: str


@dataclass(frozen=True)
class DatasetScan:
    """What :func:`scan_dataset` found: the usable records and every problem."""

    root: Path
    layout: str
    records: list[Record]
    problems: list[DataError]


def natural_key(text: str) -> list[int | str]:
    """Sort key that orders ``"benign (2)"`` before ``"benign (10)"``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def detect_layout(root: str | Path) -> str:
    """Return ``"busi"``, ``"paired"`` or ``"udiat"`` from the sub-folders of ``root``."""
    root = _existing_folder(root)
    if not any(root.iterdir()):
        raise DataError(root, "empty directory")
    folders = _subfolders(root)
    if any(label in folders for label in LESION_LABELS):
        return "busi"
    for layout in ("paired", "udiat"):
        if all(name in folders for name in _LAYOUT_FOLDERS[layout]):
            return layout
    found = ", ".join(f"{name}/" for name in sorted(folders)) or "no sub-folders"
    raise DataError(
        root,
        f"unknown dataset layout (found {found}); expected benign/ + malignant/ (BUSI), "
        "images/ + masks/ (paired) or original/ + GT/ (UDIAT)",
    )


def scan_dataset(root: str | Path, layout: str = "auto", include_normal: bool = False) -> DatasetScan:
    """Pair the images of ``root`` with their masks, collecting problems instead of raising.

    ``include_normal`` adds BUSI's ``normal/`` scans (whose masks are empty);
    the paper trains and tests on benign and malignant scans only.
    """
    root = _existing_folder(root).absolute()
    if layout == "auto":
        layout = detect_layout(root)
    elif layout not in LAYOUTS:
        raise DataError(root, f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)} or auto")
    folders = _subfolders(root)
    records: list[Record] = []
    problems: list[DataError] = []
    if layout == "busi":
        labels = [*LESION_LABELS, NORMAL_LABEL] if include_normal else list(LESION_LABELS)
        for label in labels:
            if label in folders:
                _scan_busi_folder(root, folders[label], label, records, problems)
    else:
        image_name, mask_name = _LAYOUT_FOLDERS[layout]
        for name in (image_name, mask_name):
            if name not in folders:
                raise DataError(root / name, f"missing folder of the {layout} layout")
        suffixes = ("",) if layout == "udiat" else _PAIRED_MASK_SUFFIXES
        _scan_paired_folders(root, folders[image_name], folders[mask_name], suffixes, records, problems)
    records.sort(key=lambda record: natural_key(record.case_id))
    problems.sort(key=lambda problem: natural_key(problem.path))
    return DatasetScan(root=root, layout=layout, records=records, problems=problems)


def find_records(
    root: str | Path, layout: str = "auto", include_normal: bool = False, skip_bad: bool = False
) -> list[Record]:
    """The records of ``root``; raise its first problem unless ``skip_bad`` (then warn)."""
    scan = scan_dataset(root, layout, include_normal)
    if scan.problems:
        if not skip_bad:
            raise scan.problems[0]
        warn_skipped(scan.problems)
    if not scan.records:
        raise DataError(scan.root, f"no image with a mask found ({scan.layout} layout)")
    return scan.records


def select(
    records: Sequence[Record], case_ids: Iterable[str], split_file: str | os.PathLike | None = None
) -> list[Record]:
    """The records named by ``case_ids``, in that order; an unknown one is a DataError naming ``split_file``."""
    by_case_id = {record.case_id: record for record in records}
    selected = []
    for case_id in case_ids:
        if case_id not in by_case_id:
            if split_file is None:
                raise DataError(case_id, "named by the split but not found in the dataset")
            raise DataError(split_file, f"names '{case_id}', which is not a scan of the dataset")
        selected.append(by_case_id[case_id])
    return selected


def warn_skipped(problems: Sequence[DataError], shown: int = 3) -> None:
    """Warn in one line about the skipped records: their folder, count and the first ``shown`` problems."""
    paths = [os.path.abspath(problem.path) for problem in problems]
    folder = os.path.commonpath([os.path.dirname(path) for path in paths])
    listed = "; ".join(
        f"{os.path.relpath(path, folder)} ({problem.problem})" for path, problem in zip(paths[:shown], problems)
    )
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    noun = "record" if len(problems) == 1 else "records"
    warnings.warn(
        f"skipped {len(problems)} bad {noun} in {folder}: {listed}{more} (rdanet-gan inspect lists them all)",
        stacklevel=3,
    )


def _existing_folder(root: str | Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise DataError(root, "no such directory")
    if not root.is_dir():
        raise DataError(root, "not a directory")
    return root


def _subfolders(root: Path) -> dict[str, Path]:
    """Sub-folders of ``root`` by lower-case name."""
    return {path.name.lower(): path for path in root.iterdir() if path.is_dir()}


def _image_files(folder: Path, problems: list[DataError]) -> list[Path]:
    """The visible image files of ``folder``; a broken symbolic link among them is a problem."""
    files = []
    for path in folder.iterdir():
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
            continue
        if path.is_file():
            files.append(path)
        elif path.is_symlink():
            problems.append(DataError(path, "broken symbolic link or symlink loop"))
    return files


def _scan_busi_folder(
    root: Path, folder: Path, label: str, records: list[Record], problems: list[DataError]
) -> None:
    images: dict[str, Path] = {}
    masks: dict[str, list[tuple[int, Path]]] = {}
    for path in _image_files(folder, problems):
        match = _BUSI_MASK_NAME.match(path.stem)
        if match is None:
            images[path.stem] = path
        else:
            index = int(match["index"]) if match["index"] else 0
            masks.setdefault(match["stem"], []).append((index, path))
    for stem, image in images.items():
        if stem in masks:
            mask_paths = tuple(path for _, path in sorted(masks[stem]))
            records.append(_record(root, image, mask_paths, label))
        else:
            problems.append(DataError(image, f"no mask file (expected '{stem}_mask{image.suffix}')"))
    for stem, found in masks.items():
        if stem not in images:
            problems.extend(
                DataError(path, f"mask without an image (no '{stem}.*' beside it)") for _, path in found
            )


def _scan_paired_folders(
    root: Path,
    image_folder: Path,
    mask_folder: Path,
    suffixes: Sequence[str],
    records: list[Record],
    problems: list[DataError],
) -> None:
    images = {path.stem: path for path in _image_files(image_folder, problems)}
    masks: dict[str, list[Path]] = {}
    for path in sorted(_image_files(mask_folder, problems), key=lambda path: natural_key(path.name)):
        stem = _paired_image_stem(path.stem, images, suffixes)
        if stem is None:
            problems.append(
                DataError(path, f"mask without an image (no matching file in {image_folder.name}/)")
            )
        else:
            masks.setdefault(stem, []).append(path)
    for stem, image in images.items():
        if stem in masks:
            records.append(_record(root, image, tuple(masks[stem]), label=""))
        else:
            problems.append(
                DataError(image, f"no mask file (nothing named '{stem}.*' in {mask_folder.name}/)")
            )


def _paired_image_stem(mask_stem: str, images: dict[str, Path], suffixes: Sequence[str]) -> str | None:
    """The image stem a mask stem names, trying each allowed mask suffix."""
    for suffix in suffixes:
        if mask_stem.endswith(suffix):
            stem = mask_stem[: len(mask_stem) - len(suffix)]
            if stem in images:
                return stem
    return None


def _record(root: Path, image: Path, masks: tuple[Path, ...], label: str) -> Record:
    return Record(image=image, masks=masks, label=label, case_id=image.relative_to(root).as_posix())
