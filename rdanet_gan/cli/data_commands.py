"""The dataset commands: ``inspect`` (what a dataset folder holds) and ``split`` (a train/validation/test split file)."""

from __future__ import annotations

from pathlib import Path

from rdanet_gan.cli.checks import check_numbers, refuse_existing
from rdanet_gan.cli.parser import EXIT_PARTIAL


def inspect_command(args) -> int:
    from rdanet_gan.data import format_inspection, inspect_dataset
    from rdanet_gan.fileio import write_json

    report = inspect_dataset(args.data, layout=args.layout)
    print(format_inspection(report))
    if args.json:
        write_json(args.json, report)
    return EXIT_PARTIAL if report["bad_records"] else 0


def split_command(args) -> int:
    from rdanet_gan.data import add_lesion_free, find_records, load_split, make_split, save_split
    from rdanet_gan.data.records import NORMAL_LABEL
    from rdanet_gan.errors import DataError

    check_numbers(vars(args))
    _check_folds(args)
    refuse_existing([Path(args.out)], args.overwrite)
    wanted = {"train": args.train_normal, "validation": args.validation_normal}
    records = find_records(args.data, include_normal=any(wanted.values()))
    lesion_free = [record for record in records if record.label == NORMAL_LABEL]
    if any(wanted.values()) and not lesion_free:
        raise DataError(args.data, f"holds no lesion-free scans (a {NORMAL_LABEL}/ folder in the BUSI layout)")
    records = [record for record in records if record.label != NORMAL_LABEL]
    if args.base:
        split = load_split(args.base)
    else:
        fold = (args.fold, args.folds) if args.folds else None
        n_test = 57 if args.test is None else args.test
        split = make_split(records, args.data, n_test=n_test, n_validation=args.validation, seed=args.seed, fold=fold)
    for side, count in reversed(wanted.items()):  # validation first: adding training scans leaves its picks alone
        if count:
            split = add_lesion_free(split, lesion_free, count, side=side, seed=args.seed)
    save_split(split, args.out, overwrite=args.overwrite)
    print(f"{args.out}: " + ", ".join(f"{len(v)} {k}" for k, v in split.items()))
    return 0


def _check_folds(args) -> None:
    """``--folds`` and ``--fold`` go together, fold numbers run from 1 to K, and a fold replaces ``--test``."""
    from rdanet_gan.errors import RdanetError

    if (args.folds is None) != (args.fold is None):
        raise RdanetError("--folds K and --fold I go together: the test set is fold I of K")
    if args.folds is None:
        return
    if args.folds < 2 or not 1 <= args.fold <= args.folds:
        raise RdanetError(f"--folds {args.folds} --fold {args.fold}: needs at least 2 folds and a fold from 1 to {max(args.folds, 2)}")
    if args.test is not None or args.base:
        raise RdanetError(f"--folds replaces {'--test' if args.test is not None else '--from'}: the test set is fold {args.fold}")
