"""Ship a finished reproduction into ``rdanet_gan/weights/``: the default model, its records, the manifest.

    python benchmarks/ship_weights.py --reproduction ~/runs/table1 --data BUSI_DIR [--overwrite]

``--reproduction`` is the output folder of a finished ``rdanet-gan reproduce``
run, which holds the command that made it (``command.txt``). This script copies

* RDA-NET-GAN's generator at its best validation Dice as ``rdanet_gan.keras``
  (the default model of ``rdanet-gan segment``), stored as trained (float32),
  with ``rdanet_gan.inference.json``: its threshold, flip TTA and
  post-processing, chosen on the validation split (``segment`` applies them);
* for each of the four models, shipped or not: ``log.csv`` (every epoch),
  ``config.json`` (settings, machine), ``training_summary.json`` (time, the
  inference- vs training-mode check), ``evaluation.json`` (test split, pooled
  and per image), ``normal_scans.json`` (lesions predicted on the dataset's
  lesion-free scans, when it has some) and ``command.txt`` (the exact command);
* ``table1.md`` / ``table1.csv``, made again from the evaluations by this
  version of the report (bootstrap intervals, paired differences from
  RDA-NET-GAN), and ``dice_distribution.png`` (scores only, no scan);

and writes ``manifest.json``: every shipped file's SHA-256 and size, and for
the model the pooled Dice on the first :data:`CHECK_SCANS` test scans of
``rdanet_gan/weights/split.json``, which ``tests/test_shipped_weights.py`` recomputes.
Nothing that would reconstruct a scan or a mask is copied (no figure of scans).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from rdanet_gan.data import ArraySet, load_normal_scans, load_split, prepare_data
from rdanet_gan.errors import DataError, OutputExistsError, RdanetError
from rdanet_gan.evaluation.calibration import choose_inference, write_inference
from rdanet_gan.evaluation.evaluate import evaluate_model, normal_scan_alarms
from rdanet_gan.evaluation.report import table1_csv, table1_markdown
from rdanet_gan.evaluation.scoring import Evaluation
from rdanet_gan.fileio import atomic_path, portable, write_json, write_text
from rdanet_gan.modelfiles import DEFAULT_MODEL, WEIGHTS_DIR, load_segmenter, sha256
from rdanet_gan.reproduce import GAN_ROW, TABLE1_MODELS
from rdanet_gan.training.trainer import TrainConfig, run_finished

SHIPPED_MODEL = "rdanet-gan"
"""The reproduction row whose ``best.keras`` becomes :data:`DEFAULT_MODEL`."""
CHECK_SCANS = 8
"""Test scans (the first of the split's test list) whose pooled Dice the manifest records."""
RECORDS = {
    "log.csv": "log.csv",
    "config.json": "config.json",
    "summary.json": "training_summary.json",
    "evaluation/summary.json": "evaluation.json",
}
"""File in a model's run folder -> its name in ``rdanet_gan/weights/MODEL/``."""


def calibrate(model_path: Path, data: str | Path, split_path: str | Path) -> Path:
    """Choose the shipped model's inference settings on the split's validation scans (only those are decoded)."""
    model = load_segmenter(model_path)
    validation = load_split(split_path)["validation"]
    scans = prepare_data(data, {"train": [], "validation": validation, "test": []}, image_size=model.input_shape[1])
    return write_inference(model_path, choose_inference(model, scans.validation))


def handful_dice(model_path: str | Path, data: str | Path, split_path: str | Path) -> tuple[list[str], float]:
    """The first :data:`CHECK_SCANS` test scans of a split, and a segmenter's pooled Dice on them
    (threshold 0.5, inference mode). Only those scans are decoded."""
    model = load_segmenter(model_path)
    case_ids = load_split(split_path)["test"][:CHECK_SCANS]
    handful = prepare_data(data, {"train": [], "validation": [], "test": case_ids}, image_size=model.input_shape[1])
    return case_ids, float(evaluate_model(model, handful.test).pooled["dice"])


def _normal_scans(data: str | Path, split: dict[str, list[str]]) -> ArraySet | None:
    """The dataset's lesion-free scans (BUSI ``normal/``) that ``split`` does not train on, or None."""
    try:
        return load_normal_scans(data, split=split)
    except DataError:
        return None


def _copy(source: Path, target: Path) -> None:
    if not source.is_file():
        raise RdanetError(f"{source}: missing; is the reproduction finished?")
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def ship(reproduction: Path, data: str | Path, weights: Path = WEIGHTS_DIR, overwrite: bool = False) -> dict:
    """Copy a finished reproduction's model and records into ``weights``; return the manifest."""
    command_file = reproduction / "command.txt"
    if not command_file.is_file():
        raise RdanetError(f"{command_file}: missing; it records the reproduce command (written by rdanet-gan reproduce)")
    command = portable(command_file.read_text(encoding="utf-8").strip(), data)
    models = [model for model in TABLE1_MODELS if (reproduction / model / "config.json").is_file()]
    if SHIPPED_MODEL not in models:
        raise RdanetError(f"{reproduction}: holds no {SHIPPED_MODEL} run")
    for model in models:
        epochs = TrainConfig.from_json(reproduction / model / "config.json").epochs
        if not run_finished(reproduction / model, epochs):
            raise RdanetError(f"{reproduction / model}: not finished ({epochs} epochs asked); rerun the reproduce command")
    shipped_split = weights / "split.json"
    if shipped_split.is_file() and load_split(shipped_split) != load_split(reproduction / "split.json"):
        raise RdanetError(f"{reproduction}: trained on another split than {shipped_split}, which the shipped models are scored on")
    if not overwrite:
        for path in [weights / DEFAULT_MODEL, weights / "manifest.json"]:
            if path.exists():
                raise OutputExistsError(path)

    shipped: list[Path] = []
    for model in models:
        for source, name in RECORDS.items():
            if source.endswith(".json"):  # settings and results: no machine paths in the repository
                write_json(weights / model / name, portable(json.loads((reproduction / model / source).read_text()), data))
            else:
                _copy(reproduction / model / source, weights / model / name)
            shipped.append(weights / model / name)
        write_text(weights / model / "command.txt", command + "\n")
        shipped.append(weights / model / "command.txt")
    normal = _normal_scans(data, load_split(reproduction / "split.json"))
    if normal is not None:
        for model in models:
            alarms = normal_scan_alarms(load_segmenter(reproduction / model / "best.keras"), normal)
            write_json(weights / model / "normal_scans.json", alarms)
            shipped.append(weights / model / "normal_scans.json")
    results = {TABLE1_MODELS[model]: Evaluation.read_json(reproduction / model / "evaluation" / "summary.json") for model in models}
    write_text(weights / "table1.md", table1_markdown(results, reference=GAN_ROW))
    write_text(weights / "table1.csv", table1_csv(results))
    _copy(reproduction / "dice_distribution.png", weights / "dice_distribution.png")
    shipped += [weights / "table1.md", weights / "table1.csv", weights / "dice_distribution.png"]
    _copy(reproduction / SHIPPED_MODEL / "best.keras", weights / DEFAULT_MODEL)
    shipped += [weights / DEFAULT_MODEL, calibrate(weights / DEFAULT_MODEL, data, reproduction / "split.json")]

    case_ids, dice = handful_dice(weights / DEFAULT_MODEL, data, reproduction / "split.json")
    manifest = {
        "model": DEFAULT_MODEL,
        "made_by": command,
        "check": {
            "subset": "test",
            "scans": case_ids,
            "dice": dice,
            "threshold": 0.5,
        },
        "files": {
            path.relative_to(weights).as_posix(): {"sha256": sha256(path), "bytes": path.stat().st_size}
            for path in sorted(shipped)
        },
    }
    write_json(weights / "manifest.json", manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reproduction", required=True, type=Path, help="output folder of a finished rdanet-gan reproduce")
    parser.add_argument("--data", required=True, help="the BUSI folder it was trained on")
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="folder to ship into (default: the repository's rdanet_gan/weights/)")
    parser.add_argument("--overwrite", action="store_true", help="replace a shipped model and manifest")
    args = parser.parse_args(argv)
    try:
        manifest = ship(args.reproduction, args.data, args.weights, args.overwrite)
    except RdanetError as error:
        print(f"ship_weights: error: {error}", file=sys.stderr)
        return 2
    size = manifest["files"][DEFAULT_MODEL]["bytes"] / 1e6
    print(f"{args.weights / DEFAULT_MODEL}: {size:.1f} MB, Dice {manifest['check']['dice']:.4f} on {CHECK_SCANS} test scans")
    print(f"{args.weights / 'manifest.json'}: {len(manifest['files'])} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
