"""Ship a finished reproduction into ``rdanet_gan/weights/``: the default model, its records, the manifest.

    python benchmarks/ship_weights.py --reproduction ~/runs/table1 --data BUSI_DIR [--overwrite]
    python benchmarks/ship_weights.py --run ~/runs/pretrained-long/mobilenet-v2 --name rdau_net_mobilenet_v2 \
        --split VALIDATION_SPLIT --command "..." --data BUSI_DIR   # one trained network beside them
    python benchmarks/ship_weights.py --export rdau_net_mobilenet_v2 --data BUSI_DIR   # its LiteRT export
    python benchmarks/ship_weights.py --repack rdau_net_mobilenet_v2 --data BUSI_DIR   # NAME.keras stored as NAME.npz
    python benchmarks/ship_weights.py --recalibrate rdau_net_mobilenet_v2 --data BUSI_DIR   # its settings chosen again
    python benchmarks/ship_weights.py --ensemble rdau_net_ensemble --members rdau_net_vgg16_hed.npz \
        rdau_net_mobilenet_v2.npz --presence all --split VALIDATION_SPLIT --data BUSI_DIR   # shipped models as one

``--reproduction`` is the output folder of a finished ``rdanet-gan reproduce``
run, which holds the command that made it (``command.txt``). This script copies

* RDA-NET-GAN's generator at its best validation Dice as ``rdanet_gan.npz``
  (the paper's model, ``load_shipped("rdanet_gan.npz")``), stored packed (8-bit kernels),
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
from rdanet_gan.inference.ensemble_file import ENSEMBLE_SUFFIX, write_ensemble_file
from rdanet_gan.inference.litert import export_litert
from rdanet_gan.inference.model_files import EXPORT_SUFFIX, PAPER_MODEL, WEIGHTS_DIR, load_segmenter, sha256
from rdanet_gan.inference.settings import InferenceSettings, read_inference
from rdanet_gan.models.packed import PACKED_SUFFIX, pack_model
from rdanet_gan.options import ENSEMBLE_PRESENCE
from rdanet_gan.reproduce import GAN_ROW, TABLE1_MODELS
from rdanet_gan.training.config import TrainConfig
from rdanet_gan.training.run_folder import run_finished

SHIPPED_MODEL = "rdanet-gan"
"""The reproduction row whose ``best.keras`` becomes :data:`PAPER_MODEL`."""
CHECK_SCANS = 8
"""Test scans (the first of the split's test list) whose pooled Dice the manifest records."""
EXPORT_QUANTIZATION = "float16"
"""The shipped LiteRT export stores its weights in half precision: half the file, the same speed, validation
Dice within 0.001 of the Keras model (``manifest.json``)."""
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


def _store(trained: Path, target: Path) -> None:
    """A trained ``.keras`` network shipped as ``target``: copied, or packed when ``target`` is an ``.npz``."""
    if target.suffix == PACKED_SUFFIX:
        pack_model(load_segmenter(trained), target, overwrite=True)
    else:
        _copy(trained, target)


def shipped_file(weights: Path, name: str) -> Path:
    """The shipped model ``NAME``: ``NAME.keras`` or ``NAME.npz``, whichever is there."""
    for suffix in (".keras", PACKED_SUFFIX):
        if (weights / f"{name}{suffix}").is_file():
            return weights / f"{name}{suffix}"
    raise RdanetError(f"{weights / name}: no shipped model of that name (.keras or {PACKED_SUFFIX})")


def repack(name: str, data: str | Path, weights: Path = WEIGHTS_DIR) -> dict:
    """Store the shipped ``NAME.keras`` as ``NAME.npz`` (8-bit kernels: a quarter of the bytes), as ``--run --packed``
    ships a network: the plain validation Dice of both recorded (the tests hold them within 0.002), the handful
    check made again, the manifest's entries moved to the new file, and the ``.keras`` removed. Its settings file
    (``NAME.inference.json``) is unchanged: the same network chose it."""
    source, target = weights / f"{name}.keras", weights / f"{name}{PACKED_SUFFIX}"
    if not source.is_file():
        raise RdanetError(f"{source}: no shipped .keras model of that name")
    trained = load_segmenter(source)
    pack_model(trained, target, overwrite=True)
    packed = load_segmenter(target)
    split = weights / "split.json"
    plain = {kind: validation_dice(model, data, split, InferenceSettings()) for kind, model in (("float32", trained), ("packed", packed))}
    case_ids, dice = handful_dice(target, data, split)
    check = {"subset": "test", "scans": case_ids, "dice": dice, "threshold": 0.5}
    manifest = json.loads((weights / "manifest.json").read_text())
    entry = manifest.setdefault("models", {}).pop(source.name, {"made_by": manifest.get("made_by", "")})
    if manifest.get("model") == source.name:  # the reproduction's model: the manifest's own check is its
        manifest["model"], manifest["check"] = target.name, check
    made_by = f"{entry['made_by']}; stored packed by python benchmarks/ship_weights.py --repack {name}"
    manifest["models"][target.name] = {"made_by": made_by, "check": check, "validation_dice": {**plain, "settings": InferenceSettings().describe()}}
    del manifest["files"][source.name]
    manifest["files"][target.name] = {"sha256": sha256(target), "bytes": target.stat().st_size}
    manifest["files"] = dict(sorted(manifest["files"].items()))
    write_json(weights / "manifest.json", manifest)
    source.unlink()
    return manifest


def recalibrate(name: str, data: str | Path, weights: Path = WEIGHTS_DIR) -> dict:
    """Choose the shipped model ``NAME``'s settings again, under the package's current rule, on the validation scans
    of the split it was trained with (``weights/NAME/split.json``): its settings file and manifest entry replaced,
    and, where it ships a LiteRT export, the export made and recorded again under them (:func:`ship_export`)."""
    settings_file = calibrate(shipped_file(weights, name), data, weights / name / "split.json")
    manifest = json.loads((weights / "manifest.json").read_text())
    manifest["files"][settings_file.name] = {"sha256": sha256(settings_file), "bytes": settings_file.stat().st_size}
    write_json(weights / "manifest.json", manifest)
    if (weights / f"{name}{EXPORT_SUFFIX}").is_file():
        manifest = ship_export(name, data, weights=weights, overwrite=True)
    return manifest


def ship(  # noqa: C901, PLR0912 - checks, then copies, in the order a release needs
    reproduction: Path, data: str | Path, weights: Path = WEIGHTS_DIR, overwrite: bool = False
) -> dict:
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
        for path in [weights / PAPER_MODEL, weights / "manifest.json"]:
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
    _store(reproduction / SHIPPED_MODEL / "best.keras", weights / PAPER_MODEL)
    shipped += [weights / PAPER_MODEL, calibrate(weights / PAPER_MODEL, data, reproduction / "split.json")]

    case_ids, dice = handful_dice(weights / PAPER_MODEL, data, reproduction / "split.json")
    manifest = {
        "model": PAPER_MODEL,
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
    previous = json.loads((weights / "manifest.json").read_text()) if (weights / "manifest.json").exists() else {}
    if previous.get("models"):  # networks shipped beside the reproduction (ship_run) stay listed
        manifest["models"] = previous["models"]
        kept = {Path(name).stem for name in previous["models"]}
        manifest["files"].update({
            name: entry for name, entry in previous["files"].items() if name.split("/")[0].split(".")[0] in kept
        })  # fmt: skip
    write_json(weights / "manifest.json", manifest)
    return manifest


def ship_run(
    run_dir: Path,
    name: str,
    data: str | Path,
    split_path: Path,
    command: str,
    weights: Path = WEIGHTS_DIR,
    overwrite: bool = False,
    packed: bool = False,
) -> dict:
    """Ship one trained run's best network as ``NAME.keras`` (``NAME.npz`` if ``packed``) beside the reproduction's.

    Its inference settings (presence level included) are chosen, as ``ablation.py`` chose them, on the
    validation list of ``split_path`` with its lesion-free scans; its records go to ``weights/NAME/``;
    the manifest gains the files and a check of its own under ``models``. A packed model
    (:mod:`rdanet_gan.models.packed`, 8-bit kernels) also records its plain validation Dice beside
    the float32 network's, which ``tests/test_shipped_weights.py`` holds within 0.002.
    """
    model_file = weights / f"{name}{'.npz' if packed else '.keras'}"
    if model_file.exists() and not overwrite:
        raise OutputExistsError(model_file)
    config = TrainConfig.from_json(run_dir / "config.json")
    if not run_finished(run_dir, config.epochs):
        raise RdanetError(f"{run_dir}: not finished ({config.epochs} epochs asked)")
    plain = {}
    if packed:
        trained = load_segmenter(run_dir / "best.keras")
        pack_model(trained, model_file, overwrite=True)
        plain["float32"] = validation_dice(trained, data, weights / "split.json", InferenceSettings())
    else:
        _copy(run_dir / "best.keras", model_file)
    model = load_segmenter(model_file)
    validation = prepare_data(data, {"train": [], "validation": load_split(split_path)["validation"], "test": []},
                              image_size=model.input_shape[1]).validation  # fmt: skip
    if packed:
        plain["packed"] = validation_dice(model, data, weights / "split.json", InferenceSettings())
    settings_file = write_inference(model_file, choose_inference(model, validation))
    shipped = [model_file, settings_file]
    records = {"log.csv": "log.csv", "config.json": "config.json", "summary.json": "training_summary.json", "split.json": "split.json"}
    for source, target in records.items():  # the split too: it names the lesion-free scans trained and validated on
        if source.endswith(".json"):
            write_json(weights / name / target, portable(json.loads((run_dir / source).read_text()), data))
        else:
            _copy(run_dir / source, weights / name / target)
        shipped.append(weights / name / target)
    case_ids, dice = handful_dice(model_file, data, weights / "split.json")
    manifest = json.loads((weights / "manifest.json").read_text())
    manifest.setdefault("models", {})[model_file.name] = {
        "made_by": portable(command, data),
        "check": {"subset": "test", "scans": case_ids, "dice": dice, "threshold": 0.5},
        **({"validation_dice": {**plain, "settings": InferenceSettings().describe()}} if packed else {}),
    }
    for path in shipped:
        manifest["files"][path.relative_to(weights).as_posix()] = {"sha256": sha256(path), "bytes": path.stat().st_size}
    manifest["files"] = dict(sorted(manifest["files"].items()))
    write_json(weights / "manifest.json", manifest)
    return manifest


def ship_ensemble(
    name: str,
    members: list[str],
    presence: str,
    data: str | Path,
    split_path: Path,
    weights: Path = WEIGHTS_DIR,
    overwrite: bool = False,
) -> dict:
    """Ship shipped models ``members`` as one ensemble, ``NAME.json`` (:mod:`rdanet_gan.inference.ensemble_file`:
    it names them, so no weights are stored twice), its settings chosen like ``ship_run``'s on the validation list
    of ``split_path``, with its manifest entries and handful check."""
    shipped = json.loads((weights / "manifest.json").read_text())["models"]
    for member in members:
        if member not in shipped:
            raise RdanetError(f"{weights / member}: not a shipped model (a member must be one, listed in manifest.json)")
    model_file = weights / f"{name}{ENSEMBLE_SUFFIX}"
    write_ensemble_file(model_file, [weights / member for member in members], presence, overwrite=overwrite)
    settings_file = calibrate(model_file, data, split_path)
    case_ids, dice = handful_dice(model_file, data, weights / "split.json")
    manifest = json.loads((weights / "manifest.json").read_text())
    manifest["models"][model_file.name] = {
        "made_by": f"rdanet-gan ensemble {' '.join(members)} --presence {presence} --out {model_file.name}",
        "check": {"subset": "test", "scans": case_ids, "dice": dice, "threshold": 0.5},
    }
    for path in (model_file, settings_file):
        manifest["files"][path.name] = {"sha256": sha256(path), "bytes": path.stat().st_size}
    manifest["files"] = dict(sorted(manifest["files"].items()))
    write_json(weights / "manifest.json", manifest)
    return manifest


def ship_export(
    name: str, data: str | Path, quantization: str = EXPORT_QUANTIZATION, weights: Path = WEIGHTS_DIR, overwrite: bool = False
) -> dict:
    """Ship the LiteRT export of shipped model ``NAME`` (``.keras`` or ``.npz``) as ``NAME.tflite`` (its settings file is shared).

    The manifest records the validation Dice of both under those settings (pooled, at the network's size),
    which ``tests/test_shipped_weights.py`` recomputes, and the usual handful check.
    """
    model_file, export = shipped_file(weights, name), weights / f"{name}{EXPORT_SUFFIX}"
    settings = read_inference(model_file)
    if settings is None:
        raise RdanetError(f"{model_file}: ship it with its inference settings first (--run)")
    model = load_segmenter(model_file)
    export_litert(model, export, quantization, overwrite=overwrite)
    dice = {
        "keras": validation_dice(model, data, weights / "split.json", settings),
        "litert": validation_dice(load_segmenter(export), data, weights / "split.json", settings),
    }
    case_ids, handful = handful_dice(export, data, weights / "split.json")
    manifest = json.loads((weights / "manifest.json").read_text())
    manifest.setdefault("models", {})[export.name] = {
        "made_by": f"rdanet-gan export {model_file.name} --quantization {quantization}",
        "check": {"subset": "test", "scans": case_ids, "dice": handful, "threshold": 0.5},
        "validation_dice": {**dice, "settings": settings.describe()},
    }
    manifest["files"][export.name] = {"sha256": sha256(export), "bytes": export.stat().st_size}
    manifest["files"] = dict(sorted(manifest["files"].items()))
    write_json(weights / "manifest.json", manifest)
    return manifest


def validation_dice(model, data: str | Path, split_path: str | Path, settings: InferenceSettings) -> float:
    """A segmenter's pooled Dice on a split's validation scans under ``settings``, at the network's size."""
    validation = load_split(split_path)["validation"]
    scans = prepare_data(data, {"train": [], "validation": validation, "test": []}, image_size=model.input_shape[1])
    return float(evaluate_model(model, scans.validation, settings).pooled["dice"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reproduction", type=Path, help="output folder of a finished rdanet-gan reproduce")
    parser.add_argument("--run", type=Path, help="instead: one finished training run, shipped as --name")
    parser.add_argument("--name", help="with --run: the shipped file's name without .keras")
    parser.add_argument("--split", type=Path, help="with --run: the split whose validation list (lesion-free scans included) chooses its settings")
    parser.add_argument("--command", help="with --run: the command that trained it, for the manifest")
    parser.add_argument("--packed", action="store_true", help="with --run: ship NAME.npz, 8-bit kernels (rdanet_gan.models.packed)")
    parser.add_argument("--export", metavar="NAME", help="instead: ship the LiteRT export of the shipped model NAME")
    parser.add_argument("--ensemble", metavar="NAME", help="instead: ship shipped --members as one ensemble file, NAME.json")
    parser.add_argument("--members", nargs="+", help="with --ensemble: the shipped model files it averages")
    parser.add_argument("--presence", default="mean", choices=ENSEMBLE_PRESENCE, help="with --ensemble: its presence rule (default: mean)")
    parser.add_argument("--repack", metavar="NAME", help="instead: store the shipped NAME.keras as NAME.npz (8-bit kernels)")
    parser.add_argument("--recalibrate", metavar="NAME", help="instead: choose the shipped NAME's settings again on its own split")
    parser.add_argument("--data", required=True, help="the BUSI folder it was trained on")
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="folder to ship into (default: the package's rdanet_gan/weights/)")
    parser.add_argument("--overwrite", action="store_true", help="replace a shipped model and manifest")
    args = parser.parse_args(argv)
    sources = [args.reproduction, args.run, args.export, args.repack, args.recalibrate, args.ensemble]
    incomplete = (args.run and not (args.name and args.split and args.command)) or (args.ensemble and not (args.members and args.split))
    if sum(source is not None for source in sources) != 1 or incomplete:
        parser.error(
            "give --reproduction, --export NAME, --repack NAME, --recalibrate NAME, --ensemble NAME with --members and "
            "--split, or --run with --name, --split and --command"
        )
    try:
        if args.recalibrate:
            model = shipped_file(args.weights, args.recalibrate).name
            manifest = recalibrate(args.recalibrate, args.data, args.weights)
            check = manifest["models"][model]["check"]
        elif args.repack:
            model = f"{args.repack}{PACKED_SUFFIX}"
            manifest = repack(args.repack, args.data, args.weights)
            check = manifest["models"][model]["check"]
        elif args.ensemble:
            model = f"{args.ensemble}{ENSEMBLE_SUFFIX}"
            manifest = ship_ensemble(args.ensemble, args.members, args.presence, args.data, args.split, args.weights, args.overwrite)
            check = manifest["models"][model]["check"]
        elif args.export:
            model = f"{args.export}{EXPORT_SUFFIX}"
            manifest = ship_export(args.export, args.data, weights=args.weights, overwrite=args.overwrite)
            check = manifest["models"][model]["check"]
        elif args.run:
            manifest = ship_run(args.run, args.name, args.data, args.split, args.command, args.weights, args.overwrite, args.packed)
            model = f"{args.name}{'.npz' if args.packed else '.keras'}"
            check = manifest["models"][model]["check"]
        else:
            manifest = ship(args.reproduction, args.data, args.weights, args.overwrite)
            check, model = manifest["check"], PAPER_MODEL
    except RdanetError as error:
        print(f"ship_weights: error: {error}", file=sys.stderr)
        return 2
    size = manifest["files"][model]["bytes"] / 1e6
    print(f"{args.weights / model}: {size:.1f} MB, Dice {check['dice']:.4f} on {CHECK_SCANS} test scans")
    print(f"{args.weights / 'manifest.json'}: {len(manifest['files'])} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
