"""A run folder: made fresh, or found again to resume, and its settings file.

A fresh run refuses a folder that holds a run, or the files of one without its
``config.json``; a resumed run keeps the settings in its ``config.json`` except
:data:`RESUME_OVERRIDES`, and names in one warning every other setting it ignores.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

from rdanet_gan.errors import RdanetError
from rdanet_gan.fileio import write_json
from rdanet_gan.training.config import TrainConfig

RUN_FILES = ("split.json", "log.csv", "log.json", "best.json", "best.keras", "final.keras", "backup")
"""What a run writes into its folder besides ``config.json``: a fresh run refuses a folder holding any."""
RESUME_OVERRIDES = ("epochs", "data")
"""Settings a resume takes from the caller: more epochs, or the dataset at a new place (same split)."""


def prepare_run_dir(run_dir: Path, config: TrainConfig, resume: bool) -> TrainConfig:
    """Make ``run_dir`` for a fresh run, or check it holds one to resume; the settings to run with.

    Warnings point at the caller of the function that calls this one (``train``'s caller).
    """
    config_path = run_dir / "config.json"
    if config_path.exists():
        if not resume:
            raise RdanetError(f"{run_dir}: holds a run already; pass --resume to continue it, or choose another --out")
        stored = TrainConfig.from_json(config_path)
        ignored = [
            f"{field.name} {getattr(config, field.name)!r} (the run's: {getattr(stored, field.name)!r})"
            for field in dataclasses.fields(TrainConfig)
            if field.name not in RESUME_OVERRIDES and getattr(config, field.name) != getattr(stored, field.name)
        ]
        if ignored:
            warnings.warn(f"{config_path}: a resumed run keeps its settings; ignored: {'; '.join(ignored)}", stacklevel=3)
        return dataclasses.replace(stored, **{name: getattr(config, name) for name in RESUME_OVERRIDES})
    if resume:
        raise RdanetError(f"{run_dir}: no run to resume (no config.json)")
    leftovers = [name for name in RUN_FILES if (run_dir / name).exists()]
    if leftovers:
        raise RdanetError(f"{run_dir}: holds {', '.join(leftovers)} but no config.json; remove them or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    return config


def write_config(run_dir: Path, config: TrainConfig, policy: str, jit_compile: bool) -> None:
    """Write the run's ``config.json``: its settings, the precision and XLA it runs with, and the machine."""
    from rdanet_gan.machine import describe_machine  # TensorFlow: the rest of this module needs none

    write_json(
        run_dir / "config.json",
        {
            "settings": dataclasses.asdict(config),
            "precision_policy": policy,
            "jit_compile": jit_compile,
            "machine": describe_machine(),
        },
    )


def run_finished(run_dir: str | Path, epochs: int) -> bool:
    """Whether ``run_dir`` holds a run that completed at least ``epochs`` epochs (its ``summary.json``)."""
    summary = Path(run_dir) / "summary.json"
    return summary.exists() and json.loads(summary.read_text())["epochs"] >= epochs
