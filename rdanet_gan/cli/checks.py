"""The checks a command makes before any work: option values in range, outputs that may be written.

Each raises an :class:`rdanet_gan.errors.RdanetError` naming the option or the file, which the command line
prints as one line (exit code 2). None imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

# Ranges of the numeric options, checked before any work: option name -> (in range, why not).
NUMBER_RANGES = {
    "positive": (lambda value: value > 0, "must be positive"),
    "not negative": (lambda value: value >= 0, "must not be negative"),
    "fraction": (lambda value: 0 <= value < 1, "must be at least 0 and below 1"),
}
OPTION_RANGES = {
    **dict.fromkeys(("seed", "test", "validation", "train_normal", "validation_normal"), "not negative"),
    **dict.fromkeys(("batch_size", "l2"), "positive"),
    "max_false_alarms": "fraction",
}
"""The ranges of the options declared in :mod:`rdanet_gan.cli.parser`; the training commands' come with
TrainConfig's fields (:func:`rdanet_gan.training.arguments.option_ranges`)."""
TRAINING_COMMANDS = ("train", "reproduce")
"""The commands whose options are TrainConfig's fields: only they import the training package."""


def refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """Stop before any work when an output exists and ``--overwrite`` was not given, or is a folder."""
    from rdanet_gan.errors import DataError, OutputExistsError

    for path in paths:
        if path.is_dir():  # --overwrite could not replace it either
            raise DataError(path, "an existing folder; give the name of a file to write")
        if not overwrite and path.exists():
            raise OutputExistsError(path)


def check_output_folder(option: str, folder: Path) -> None:
    """Stop before any work when ``folder`` cannot be made a folder: it, or one above it, is a file."""
    from rdanet_gan.errors import RdanetError

    for path in (folder, *folder.parents):
        if path.is_dir():
            return
        if path.exists() or path.is_symlink():
            what = "an existing file, not a folder" if path.exists() else "a broken symbolic link"
            raise RdanetError(f"{option} {folder}: " + (what if path == folder else f"{path} is {what}"))


def check_numbers(values: dict[str, object]) -> None:
    """Stop on a numeric option out of its range (:data:`OPTION_RANGES`), naming the option and the value."""
    from rdanet_gan.errors import RdanetError

    ranges = OPTION_RANGES
    if values.get("command") in TRAINING_COMMANDS:
        from rdanet_gan.training.arguments import option_ranges

        ranges = {**OPTION_RANGES, **option_ranges()}
    for name, value in values.items():
        if name in ranges and value is not None:
            in_range, why = NUMBER_RANGES[ranges[name]]
            if not in_range(value):  # NaN is in no range
                raise RdanetError(f"--{name.replace('_', '-')} {value}: {why}")


def check_inference_options(args) -> None:
    """Stop on a ``--threshold`` or ``--presence`` out of range before a model is loaded."""
    from rdanet_gan.errors import RdanetError
    from rdanet_gan.inference.settings import InferenceSettings, settings_problem

    chosen = {name: getattr(args, name) for name in ("threshold", "presence") if getattr(args, name) is not None}
    problem = settings_problem(dataclasses.replace(InferenceSettings(), **chosen))
    if problem:
        raise RdanetError(f"--{problem[0]} {chosen[problem[0]]}: {problem[1]}")
