"""From a dataset folder (or ``"phantom"``) to decoded train / validation / test arrays."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rdanet_gan.data.decode import ArraySet, load_arrays
from rdanet_gan.data.phantom import make_phantoms
from rdanet_gan.data.records import NORMAL_LABEL, find_records, select
from rdanet_gan.data.split import SPLIT_KEYS, check_split, listed_case_ids, load_split, make_split
from rdanet_gan.errors import DataError

PHANTOM = "phantom"
PHANTOM_TRAIN, PHANTOM_HELD_OUT = 48, 8  # 48 train, 8 validation, 8 test
# The paper holds out 57 test and 50 validation scans of BUSI's lesion scans
# (645 of the 647 here); other datasets keep these fractions.
PAPER_SCANS, PAPER_TEST, PAPER_VALIDATION = 647, 57, 50


@dataclass
class DataSplits:
    """The decoded scans of each side of a split, the split itself and the dataset folder.

    ``root`` is ``None`` for phantoms, whose array sets name no files
    (empty ``records`` and ``native_shapes``).
    """

    train: ArraySet
    validation: ArraySet
    test: ArraySet
    split: dict[str, list[str]]
    root: Path | None


def prepare_data(
    data: str | os.PathLike,
    split: str | os.PathLike | dict | None = None,
    image_size: int = 128,
    seed: int = 0,
    verbose: bool = False,
) -> DataSplits:
    """Decode ``data`` split into train, validation and test at ``image_size``.

    ``data`` is a dataset folder, or ``"phantom"`` for 64 generated phantoms
    (48 / 8 / 8, named ``phantom/000`` ...). ``split`` is a split file, a
    split dict, or ``None`` to make one from ``seed`` (stratified,
    near-duplicates kept together, the paper's held-out fractions); a split
    may list BUSI's lesion-free scans (``rdanet-gan split --train-normal`` /
    ``--validation-normal``). A case id the dataset folder does not hold is a
    DataError naming the split file (when ``split`` is one).
    """
    split_file = split if isinstance(split, (str, os.PathLike)) else None
    if split_file is not None:
        split = load_split(split_file)
    elif split is not None:
        split = check_split(split)
    if isinstance(data, str) and data == PHANTOM:
        return _prepare_phantoms(split, image_size, seed)
    # Normal scans are read when the split names some (BUSI's normal/ folder).
    names_normal = any(case_id.startswith(f"{NORMAL_LABEL}/") for case_id in listed_case_ids(split))
    records = find_records(data, include_normal=names_normal)
    root = Path(data).absolute()
    lesion_records = [record for record in records if record.label != NORMAL_LABEL]
    if split is None:
        count = len(lesion_records)
        split = make_split(
            lesion_records,
            root,
            n_test=round(count * PAPER_TEST / PAPER_SCANS),
            n_validation=round(count * PAPER_VALIDATION / PAPER_SCANS),
            seed=seed,
        )
    arrays = {
        key: load_arrays(select(records, split[key], split_file), image_size, verbose=verbose) for key in SPLIT_KEYS
    }
    return DataSplits(**arrays, split=split, root=root)


def load_normal_scans(
    data: str | os.PathLike, image_size: int = 128, split: dict[str, list[str]] | None = None
) -> ArraySet:
    """BUSI's lesion-free scans (``normal/``, empty masks) at ``image_size``, for counting false alarms.

    With ``split``, only the scans it does not list: a network's false alarms
    are counted on lesion-free scans it was not trained on.
    """
    listed = listed_case_ids(split)
    records = [record for record in find_records(data, include_normal=True) if record.label == NORMAL_LABEL]
    if not records:
        raise DataError(data, f"holds no lesion-free scans (a {NORMAL_LABEL}/ folder in the BUSI layout)")
    records = [record for record in records if record.case_id not in listed]
    if not records:
        raise DataError(data, "every lesion-free scan is listed in the split: none is left to count false alarms on")
    return load_arrays(records, image_size)


def _prepare_phantoms(split: dict[str, list[str]] | None, image_size: int, seed: int) -> DataSplits:
    count = PHANTOM_TRAIN + 2 * PHANTOM_HELD_OUT
    case_ids = [f"{PHANTOM}/{index:03d}" for index in range(count)]
    if split is None:
        validation_end = PHANTOM_TRAIN + PHANTOM_HELD_OUT
        split = {
            "train": case_ids[:PHANTOM_TRAIN],
            "validation": case_ids[PHANTOM_TRAIN:validation_end],
            "test": case_ids[validation_end:],
        }
    images, masks = make_phantoms(count, image_size, seed)
    position = {case_id: index for index, case_id in enumerate(case_ids)}
    arrays = {}
    for key in SPLIT_KEYS:
        unknown = [case_id for case_id in split[key] if case_id not in position]
        if unknown:
            raise DataError(unknown[0], f"named by the split but not one of the {count} phantoms")
        indices = [position[case_id] for case_id in split[key]]
        arrays[key] = ArraySet(images=images[indices], masks=masks[indices], records=[], native_shapes=[])
    return DataSplits(**arrays, split=split, root=None)
