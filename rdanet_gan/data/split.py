"""Train / validation / test splits that are stratified and leakage-aware.

A split names scans by ``case_id`` and is saved as JSON so that every model
of a comparison sees the same test scans. Near-duplicate scans (see
:mod:`rdanet_gan.data.duplicates`) always land on the same side, otherwise a
test scan's copy in the training set would inflate the test scores.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rdanet_gan.data.duplicates import (
    DUPLICATE_THRESHOLD,
    group_signatures,
    read_signatures,
)
from rdanet_gan.data.records import Record, natural_key
from rdanet_gan.errors import DataError
from rdanet_gan.fileio import write_json

SPLIT_KEYS = ("train", "validation", "test")


def make_split(
    records: Sequence[Record],
    root: str | Path,
    n_test: int = 57,
    n_validation: int = 50,
    seed: int = 0,
    duplicate_threshold: float = DUPLICATE_THRESHOLD,
    signatures: np.ndarray | None = None,
    fold: tuple[int, int] | None = None,
) -> dict[str, list[str]]:
    """Split ``records`` into exactly ``n_test`` test, ``n_validation`` validation and the rest train.

    Each held-out set keeps the class proportions of the whole set, whole
    near-duplicate groups stay on one side, and the result depends only on
    the records (not their order) and ``seed``. The defaults are the paper's
    BUSI counts (57 test, 50 validation). ``signatures`` (from
    :func:`~rdanet_gan.data.duplicates.read_signatures`) saves decoding the
    images again when they are already at hand.

    ``fold=(i, k)`` makes the test scans the i-th (from 1) of k folds that
    partition the scans (sizes within a scan or a near-duplicate group of each
    other, class proportions kept, the same folds for every i of one seed) in
    place of ``n_test`` of them: the k splits of k-fold cross-validation, which
    test every scan once.
    """
    root = Path(root).absolute()
    for record in records:
        if record.image != root / record.case_id:
            raise DataError(record.image, f"not the scan '{record.case_id}' of the dataset folder {root}")
    if fold is not None:
        number, count = fold
        if count < 2 or not 1 <= number <= count:
            raise ValueError(f"fold {number} of {count}: needs at least 2 folds, numbered from 1")
        if count > len(records):
            raise DataError(root, f"cannot make {count} folds of {len(records)} scans")
        n_test = round(len(records) / count)  # for the check below; the fold's own size may differ by a group
    if n_test < 0 or n_validation < 0 or n_test + n_validation >= len(records):
        raise DataError(
            root,
            f"cannot hold out {n_test} test + {n_validation} validation scans of {len(records)} and still train",
        )
    if signatures is None:
        signatures = read_signatures(records)
    case_ids = [record.case_id for record in records]
    labels = [record.label for record in records]
    units = _shuffled_units(signatures, case_ids, duplicate_threshold, seed)
    if fold is None:
        test = _fill(units, n_test, _label_targets(labels, n_test), labels, root)
    else:
        test = _folds(units, labels, fold[1], root)[fold[0] - 1]
    units = [unit for unit in units if unit not in test]
    validation = _fill(units, n_validation, _label_targets(labels, n_validation), labels, root)
    train = {unit for unit in units if unit not in validation}
    return {
        key: sorted((case_ids[index] for unit in chosen for index in unit), key=natural_key)
        for key, chosen in zip(SPLIT_KEYS, (train, validation, test))
    }


def add_lesion_free(
    split: dict[str, list[str]],
    records: Sequence[Record],
    count: int,
    side: str = "train",
    seed: int = 0,
    duplicate_threshold: float = DUPLICATE_THRESHOLD,
) -> dict[str, list[str]]:
    """``split`` with ``count`` of the lesion-free ``records`` (BUSI's ``normal/``) it does not list yet
    added to ``side`` ("train" or "validation").

    Training on some scans without a lesion teaches a network that an empty
    mask is an answer; validating on some lets the inference settings learn
    when to say "no lesion" (the presence level of
    :mod:`rdanet_gan.evaluation.calibration`). The lesion-free scans left
    out of the split are the ones on which false alarms are counted (see
    :func:`~rdanet_gan.data.prepare.load_normal_scans`), so at least one
    stays out. Whole near-duplicate groups move together, chosen by
    ``seed``; the lesion scans' lists are unchanged, so scores stay
    comparable with the split's other models. Errors name the dataset
    folder of the records.
    """
    if side not in ("train", "validation"):
        raise ValueError(f"side must be 'train' or 'validation', not {side!r}")
    if not records:
        raise ValueError("no lesion-free records to add")
    root = _dataset_folder(records[0])
    listed = listed_case_ids(split)
    records = [record for record in records if record.case_id not in listed]
    if not 0 <= count < len(records):
        raise DataError(
            root,
            f"cannot add {count} of {len(records)} unlisted lesion-free scans to {side} and keep some to count false alarms",
        )
    case_ids = [record.case_id for record in records]
    units = _shuffled_units(read_signatures(records), case_ids, duplicate_threshold, seed)
    labels = [record.label for record in records]
    chosen = _fill(units, count, _label_targets(labels, count), labels, root)
    added = [case_ids[index] for unit in chosen for index in unit]
    return {**split, side: sorted(split[side] + added, key=natural_key)}


def save_split(split: dict[str, list[str]], path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write ``split`` as JSON (refusing to replace a file unless ``overwrite``)."""
    write_json(path, check_split(split, source=path), overwrite=overwrite)


def load_split(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a split written by :func:`save_split`, checking its structure."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "no such split file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"cannot read the split file ({error})") from None
    try:
        split = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(path, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    return check_split(split, source=path)


def check_split(split: object, source: str | os.PathLike = "split") -> dict[str, list[str]]:
    """``split`` as a clean dict, or a DataError naming ``source`` and what is wrong."""
    if not isinstance(split, dict) or set(split) != set(SPLIT_KEYS):
        found = sorted(split) if isinstance(split, dict) else type(split).__name__
        raise DataError(source, f"a split needs exactly the lists {', '.join(SPLIT_KEYS)} (found {found})")
    seen: dict[str, str] = {}
    for key in SPLIT_KEYS:
        entries = split[key]
        if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
            raise DataError(source, f"'{key}' must be a list of case ids (strings)")
        for entry in entries:
            if entry in seen:
                raise DataError(source, f"'{entry}' is listed in both {seen[entry]} and {key}")
            seen[entry] = key
    return {key: list(split[key]) for key in SPLIT_KEYS}


def listed_case_ids(split: dict[str, list[str]] | None) -> set[str]:
    """Every case id a split lists, on any side (none for no split)."""
    return {case_id for case_ids in (split or {}).values() for case_id in case_ids}


def _dataset_folder(record: Record) -> Path:
    """The dataset folder of ``record``: its image path less its case id."""
    return record.image.parents[record.case_id.count("/")]


def _units(groups: list[list[int]], case_ids: list[str]) -> list[tuple[int, ...]]:
    """Near-duplicate groups plus singletons, in an order that depends on the case ids only."""
    grouped = {index for group in groups for index in group}
    units = [tuple(group) for group in groups]
    units += [(index,) for index in range(len(case_ids)) if index not in grouped]
    return sorted(units, key=lambda unit: min(natural_key(case_ids[index]) for index in unit))


def _shuffled_units(
    signatures: np.ndarray, case_ids: list[str], duplicate_threshold: float, seed: int
) -> list[tuple[int, ...]]:
    """The near-duplicate units of the scans in an order drawn from ``seed`` (and the case ids only)."""
    units = _units(group_signatures(signatures, duplicate_threshold), case_ids)
    return [units[position] for position in np.random.default_rng(seed).permutation(len(units))]


def _label_targets(labels: list[str], total: int) -> Counter:
    """How many scans of each label a set of ``total`` needs (largest remainder rounding)."""
    counts = Counter(labels)
    shares = {label: total * count / len(labels) for label, count in counts.items()}
    targets = Counter({label: int(share) for label, share in shares.items()})
    by_remainder = sorted(shares, key=lambda label: (shares[label] - targets[label], label), reverse=True)
    for label in by_remainder[: total - sum(targets.values())]:
        targets[label] += 1
    return targets


def _folds(units: list[tuple[int, ...]], labels: list[str], count: int, root: Path) -> list[set[tuple[int, ...]]]:
    """``count`` sets of ``units`` that partition them: each but the last filled to its share of the scans by
    :func:`_fill` (class proportions of the whole set), the last taking the units left."""
    total = sum(len(unit) for unit in units)
    folds, left = [], list(units)
    for number in range(count - 1):
        size = total // count + (number < total % count)
        chosen = _fill(left, size, _label_targets(labels, size), labels, root)
        folds.append(chosen)
        left = [unit for unit in left if unit not in chosen]
    return [*folds, set(left)]


def _fill(
    units: list[tuple[int, ...]], total: int, targets: Counter, labels: list[str], root: Path
) -> set[tuple[int, ...]]:
    """Take units in order until exactly ``total`` scans: first within the label targets, then any.

    Too large near-duplicate groups are a DataError naming the dataset folder ``root``.
    """
    chosen: set[tuple[int, ...]] = set()
    taken: Counter = Counter()
    for respect_labels in (True, False):
        for unit in units:
            room = total - taken.total()
            needed = Counter(labels[index] for index in unit)
            fits_labels = all(taken[label] + k <= targets[label] for label, k in needed.items())
            if unit not in chosen and len(unit) <= room and (fits_labels or not respect_labels):
                chosen.add(unit)
                taken.update(needed)
    if taken.total() != total:
        raise DataError(root, f"near-duplicate groups are too large to hold out exactly {total} scans")
    return chosen
