"""The ``rdanet-gan`` command line end to end, on phantoms at tiny sizes."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rdanet_gan.cli import main
from rdanet_gan.evaluation.calibration import SETTINGS
from rdanet_gan.inference import InferenceSettings, network_probability, read_scan, segment_image
from rdanet_gan.inference.model_files import DEFAULT_MODEL, PAPER_MODEL, WEIGHTS_DIR, load_segmenter, verify_shipped

SHIP_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ship_weights.py"

TINY = ["--image-size", "32", "--base-width", "4", "--batch-size", "8", "--epochs", "1", "--jit", "off"]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", ["inspect", "split", "train", "evaluate", "calibrate", "segment", "reproduce"])
def test_every_command_explains_its_options(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--" in capsys.readouterr().out


def test_segment_help_says_which_files_it_reads_and_what_it_skips(capsys):
    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # as argparse wraps it
    assert "Scans are read by their suffix: .png .jpg .jpeg .bmp .tif .tiff .dcm" in text
    assert "GIF and other image formats (.webp .jp2 .heic .avif) are refused, whether named or found" in text
    assert "skipped as a degenerate image, not reported lesion-free" in text


def test_python_dash_m_runs_the_same_command_line():
    result = subprocess.run([sys.executable, "-m", "rdanet_gan", "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0
    assert all(name in result.stdout for name in ("inspect", "split", "train", "evaluate", "segment", "reproduce"))


def test_inspect_reports_layout_and_counts(phantom_folder, tmp_path, capsys):
    code, out, _ = run(["inspect", "--data", str(phantom_folder), "--json", str(tmp_path / "report.json")], capsys)
    assert code == 0
    assert "paired" in out and "24" in out
    assert json.loads((tmp_path / "report.json").read_text())["layout"] == "paired"


def test_split_writes_a_split_file_and_never_overwrites_it(phantom_folder, tmp_path, capsys):
    out = tmp_path / "split.json"
    argv = ["split", "--data", str(phantom_folder), "--out", str(out), "--test", "4", "--validation", "4"]
    assert run(argv, capsys)[0] == 0
    split = json.loads(out.read_text())
    assert [len(split[k]) for k in ("train", "validation", "test")] == [16, 4, 4]
    code, _, err = run(argv, capsys)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def trained_run(phantom_folder, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--model", "unet", "--data", str(phantom_folder), *TINY, "--out", str(run_dir)]) == 0
    return run_dir


def test_train_writes_a_complete_run_directory(trained_run):
    for name in ("config.json", "split.json", "log.csv", "final.keras", "best.keras", "curves.png"):
        assert (trained_run / name).is_file(), name
    rows = list(csv.DictReader((trained_run / "log.csv").open()))
    assert len(rows) == 1 and 0.0 <= float(rows[0]["val_dice"]) <= 1.0


@pytest.mark.parametrize("native", [False, True])
def test_evaluate_prints_the_table_and_writes_csv_and_json(trained_run, phantom_folder, tmp_path, capsys, native):
    argv = ["evaluate", "--model", str(trained_run / "final.keras"), "--data", str(phantom_folder)]
    argv += ["--split", str(trained_run / "split.json"), "--out", str(tmp_path / "eval")]
    code, out, _ = run(argv + (["--native-resolution"] if native else []), capsys)
    assert code == 0 and "Dice" in out
    rows = list(csv.DictReader((tmp_path / "eval" / "per_image.csv").open()))
    assert rows and {int(rows[0]["height"]), int(rows[0]["width"])} == ({48} if native else {32})
    assert "dice" in json.loads((tmp_path / "eval" / "summary.json").read_text())["pooled"]


def test_evaluate_with_flip_tta_postprocessing_and_a_threshold(trained_run, phantom_folder, capsys):
    argv = ["evaluate", "--model", str(trained_run / "final.keras"), "--data", str(phantom_folder)]
    argv += ["--split", str(trained_run / "split.json"), "--flip-tta", "--postprocess", "--threshold", "0.4"]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "Dice" in out


def test_segment_writes_masks_at_the_input_size_and_overlays(trained_run, phantom_folder, tmp_path, capsys):
    out = tmp_path / "masks"
    argv = ["segment", str(phantom_folder / "images"), "--model", str(trained_run / "final.keras")]
    code, _, _ = run(argv + ["--out", str(out), "--overlay"], capsys)
    assert code == 0
    masks = sorted(out.glob("*_mask.png"))
    assert len(masks) == 24 and len(list(out.glob("*_overlay.png"))) == 24
    mask = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (48, 48) and set(mask.ravel()) <= {0, 255}


def test_segment_overlays_scans_one_pixel_high_or_wide(trained_run, tmp_path, capsys):
    scans = tmp_path / "scans"
    scans.mkdir()
    for name, shape in {"row": (1, 40), "column": (40, 1), "square": (40, 40)}.items():
        cv2.imwrite(str(scans / f"{name}.png"), np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))
    out = tmp_path / "masks"
    code, _, err = run(["segment", str(scans), "--model", str(trained_run / "final.keras"), "--out", str(out), "--overlay"], capsys)
    assert code == 0, err
    for name, shape in {"row": (1, 40), "column": (40, 1), "square": (40, 40)}.items():
        assert cv2.imread(str(out / f"{name}_mask.png"), cv2.IMREAD_UNCHANGED).shape == shape
        assert (out / f"{name}_overlay.png").is_file()


def test_segment_with_flip_tta_and_postprocessing_writes_at_most_one_region(trained_run, phantom_folder, tmp_path, capsys):
    out = tmp_path / "masks"
    argv = ["segment", str(phantom_folder / "images"), "--model", str(trained_run / "final.keras"), "--out", str(out)]
    assert run(argv + ["--flip-tta", "--postprocess"], capsys)[0] == 0
    for path in sorted(out.glob("*_mask.png")):
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) > 0
        assert cv2.connectedComponents(mask.astype("uint8"), connectivity=8)[0] - 1 <= 1, path.name


def test_train_records_inference_settings_chosen_on_validation(trained_run):
    for name in ("best", "final"):
        record = json.loads((trained_run / f"{name}.inference.json").read_text())
        scores = record["validation_dice"]
        assert set(scores) == set(SETTINGS) and scores[record["chosen"]] == max(scores.values())
        candidate = SETTINGS[record["chosen"]]
        assert (record["flip_tta"], record["postprocess"]) == (candidate["flip_tta"], candidate["postprocess"])
        assert candidate["tune_threshold"] or record["threshold"] == 0.5
        by_presence = {level: score["dice_per_image"] for level, score in record["validation_by_presence"].items()}
        assert record["presence"] == 0.0 and "0" in by_presence and record["max_false_alarms"] is None  # nothing to count alarms on
        assert all(score["lesion_free_flagged"] is None for score in record["validation_by_presence"].values())
        assert record["validation_lesion_free_scans"] == 0 and record["validation_scans"] > 0  # phantoms: all lesions
    assert not list(trained_run.glob("*.presence.png"))  # no lesion-free validation scans: nothing traded


def test_segment_applies_the_recorded_settings_unless_options_override(trained_run, phantom_folder, tmp_path, capsys):
    model, settings = tmp_path / "model.keras", tmp_path / "model.inference.json"
    shutil.copy(trained_run / "final.keras", model)
    scan = phantom_folder / "images" / "scan_00.png"
    outputs = iter(range(10))

    def segment(*options):
        out = tmp_path / f"out{next(outputs)}"
        code, stdout, err = run(["segment", str(scan), "--model", str(model), "--out", str(out), *options], capsys)
        assert code == 0, err
        return stdout.splitlines()[0], cv2.imread(str(out / "scan_00_mask.png"), cv2.IMREAD_UNCHANGED) > 0

    assert segment()[0] == "inference: threshold 0.50 (the defaults)"
    settings.write_text(json.dumps({"threshold": 0.3, "flip_tta": True, "postprocess": True}))
    line, mask = segment()
    assert line == f"inference: threshold 0.30, flip TTA, post-processing (recorded in {settings})"
    expected = segment_image(load_segmenter(model), read_scan(scan), InferenceSettings(0.3, flip_tta=True, postprocess=True))
    np.testing.assert_array_equal(mask, expected)
    line, mask = segment("--threshold", "0.6", "--no-postprocess")
    assert line == f"inference: threshold 0.60, flip TTA (recorded in {settings}, with options given)"
    np.testing.assert_array_equal(mask, segment_image(load_segmenter(model), read_scan(scan), InferenceSettings(0.6, flip_tta=True)))
    probability = network_probability(load_segmenter(model), read_scan(scan), flip_tta=True)
    line, mask = segment("--presence", f"{probability.max() + 1e-4:.6f}")  # just above the scan's peak: no lesion
    assert line.startswith("inference: threshold 0.30, flip TTA, post-processing, a lesion only where the peak") and not mask.any()

    for option, value, why in (("--threshold", "1.5", "must be between 0 and 1"), ("--presence", "1", "must be at least 0 and below 1")):
        code, _, err = run(["segment", str(scan), "--model", str(model), "--out", str(tmp_path / "x"), option, value], capsys)
        assert code == 2 and f"{option} {float(value)}: {why}" in err and len(err.strip().splitlines()) == 1
    settings.write_text("{")
    code, _, err = run(["segment", str(scan), "--model", str(model), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and f"{settings}: not an inference-settings file" in err and len(err.strip().splitlines()) == 1


def test_segment_csv_lists_each_scan_with_its_peak_so_another_presence_level_can_be_applied(
    trained_run, phantom_folder, tmp_path, capsys
):
    model = load_segmenter(trained_run / "final.keras")
    scans = [phantom_folder / "images" / f"scan_{index:02d}.png" for index in range(3)]
    peaks = [float(network_probability(model, read_scan(scan)).max()) for scan in scans]
    level = sorted(peaks)[1] + 1e-6  # above the lowest two peaks: only the highest scan keeps its lesion
    table = tmp_path / "table.csv"
    argv = ["segment", *map(str, scans), "--model", str(trained_run / "final.keras"), "--out", str(tmp_path / "masks")]
    code, stdout, err = run(argv + ["--csv", str(table), "--presence", f"{level:.6f}"], capsys)
    assert code == 0, err
    with table.open(newline="") as rows:
        rows = list(csv.DictReader(rows))
    assert [row["scan"] for row in rows] == list(map(str, scans))
    assert [float(row["peak_probability"]) for row in rows] == pytest.approx(peaks, abs=1e-6)
    for row, scan in zip(rows, scans):
        mask = cv2.imread(str(tmp_path / "masks" / f"{scan.stem}_mask.png"), cv2.IMREAD_UNCHANGED) > 0
        assert row["lesion"] == ("yes" if mask.any() else "no") and float(row["lesion_percent"]) == pytest.approx(100 * mask.mean(), abs=1e-3)
        assert row["presence_level"] == f"{float(f'{level:.6f}'):g}"
    lowest = scans[int(np.argmin(peaks))]
    assert f"{lowest}: no lesion (peak probability {min(peaks):.6f}, below the presence level" in stdout

    # An existing table is replaced only with --overwrite, refused before the model loads; an input never.
    before = table.read_bytes()
    code, _, err = run(argv + ["--csv", str(table)], capsys)
    assert code == 2 and err.strip().splitlines() == [f"rdanet-gan segment: error: {table}: already exists (use --overwrite to replace it)"]
    assert table.read_bytes() == before
    code, _, err = run(argv + ["--csv", str(scans[0]), "--overwrite"], capsys)
    assert code == 2 and f"{scans[0]}: is an input" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(argv + ["--csv", str(table / "t.csv")], capsys)  # a folder below a file
    assert code == 2 and err.strip().splitlines() == [f"rdanet-gan segment: error: --csv {table}: an existing file, not a folder"]


def test_a_bad_model_path_is_one_line_and_exit_2(phantom_folder, tmp_path, capsys):
    code, _, err = run(["segment", str(phantom_folder / "images"), "--model", str(tmp_path / "missing.keras")], capsys)
    assert code == 2
    assert err.strip().splitlines() == [f"rdanet-gan segment: error: {tmp_path / 'missing.keras'}: no such model file"]


def test_reproduce_writes_table1_and_figures(tmp_path, capsys):
    """Two rows keep the test short; the other two networks train in the same loop."""
    out = tmp_path / "reproduction"
    argv = ["reproduce", "--data", "phantom", *TINY, "--batch-size", "16", "--out", str(out)]
    code, _, _ = run(argv + ["--models", "rdau-net,rdanet-gan"], capsys)
    assert code == 0
    table = (out / "table1.md").read_text()
    for row in ("RDAU-NET", "RDA-NET-GAN", "paper"):
        assert row in table
    assert len(list(csv.reader((out / "table1.csv").open()))) >= 5  # header, 2 models, 2 paper rows
    for name in ("dice_distribution.png", "fig4_comparison.png", "split.json"):
        assert (out / name).is_file()
    for model in ("rdau-net", "rdanet-gan"):
        assert json.loads((out / model / "evaluation" / "summary.json").read_text())["pooled"]["dice"] >= 0.0
    init = json.loads((out / "rdanet-gan" / "config.json").read_text())["settings"]["init_weights"]
    assert init.endswith("rdau-net/best.keras")
    command = shlex.join(["rdanet-gan", *argv, "--models", "rdau-net,rdanet-gan"])
    assert (out / "command.txt").read_text().splitlines() == [command]
    assert run(argv + ["--models", "rdau-net,rdanet-gan"], capsys)[0] == 0  # resumed: nothing to train
    assert (out / "command.txt").read_text().splitlines() == [command]  # the same command is logged once
    ship_into_a_weights_folder(out, tmp_path / "weights", command)


def ship_into_a_weights_folder(reproduction, weights, command):
    """``benchmarks/ship_weights.py`` on the finished reproduction: model, records, manifest."""
    spec = importlib.util.spec_from_file_location("ship_weights", SHIP_SCRIPT)
    ship_weights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship_weights)
    args = ["--reproduction", str(reproduction), "--data", "phantom", "--weights", str(weights)]
    assert ship_weights.main(args) == 0
    manifest = json.loads((weights / "manifest.json").read_text())
    assert manifest["made_by"] == command
    for model in ("rdau-net", "rdanet-gan"):
        assert (weights / model / "command.txt").read_text().strip() == command
        assert (weights / model / "evaluation.json").is_file() and (weights / model / "log.csv").is_file()
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((weights / name).read_bytes()).hexdigest() == entry["sha256"], name
    assert not any(name.startswith("fig4") for name in manifest["files"])  # no figure of scans is shipped
    verify_shipped(weights / PAPER_MODEL, weights / "manifest.json")
    assert manifest["check"]["scans"] == json.loads((reproduction / "split.json").read_text())["test"][:8]
    _, dice = ship_weights.handful_dice(weights / PAPER_MODEL, "phantom", reproduction / "split.json")
    assert dice == manifest["check"]["dice"]
    assert ship_weights.main(args) == 2  # a shipped model is never replaced without --overwrite
    other = json.loads((reproduction / "split.json").read_text())
    other["train"][0], other["test"][0] = other["test"][0], other["train"][0]
    (weights / "split.json").write_text(json.dumps(other))
    assert ship_weights.main([*args, "--overwrite"]) == 2  # models scored on another split than rdanet_gan/weights/split.json


@pytest.mark.parametrize("models", ["rdanet-gan", "resnet"])
def test_reproduce_refuses_a_bad_model_selection(models, tmp_path, capsys):
    code, _, err = run(["reproduce", "--data", "phantom", "--out", str(tmp_path), "--models", models], capsys)
    assert code == 2 and err.startswith("rdanet-gan reproduce: error: --models:")


def config_from(argv: list[str]):
    from rdanet_gan.cli import build_parser
    from rdanet_gan.cli.training_commands import training_config

    args = build_parser().parse_args(argv)
    return training_config(args, args.model if args.command == "train" else "rdau-net")


def test_recipes_fill_in_options_the_command_line_leaves_out():
    default = config_from(["train", "--model", "rdau-net", "--data", "phantom"])
    assert (default.recipe, default.augmentation) == ("default", "standard")
    paper = config_from(["reproduce", "--data", "phantom"])  # Table 1 is the faithful recipe
    assert (paper.recipe, paper.augmentation, paper.lr_schedule) == ("paper", "paper", "constant")
    mixed = config_from(["train", "--model", "unet", "--data", "phantom", "--recipe", "paper", "--augmentation", "flip,elastic", "--deep-supervision"])
    assert (mixed.recipe, mixed.augmentation, mixed.deep_supervision) == ("paper", "flip,elastic", True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model", "rdau-net", "--augmentation", "flip,warp"], "unknown augmentation 'warp'"),
        (["--model", "segnet", "--deep-supervision"], "deep_supervision applies to rdau-net and unet"),
    ],
)
def test_options_that_do_not_apply_are_one_line_and_exit_2(options, message, tmp_path, capsys):
    code, _, err = run(["train", *options, "--data", "phantom", "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def busi_like_folder(tmp_path_factory):
    """A small folder in the BUSI layout: 12 benign phantoms and 3 lesion-free normal scans."""

    from rdanet_gan.data import make_phantoms

    root = tmp_path_factory.mktemp("busi_like")
    images, masks = make_phantoms(15, image_size=48, seed=7)
    for label, start, stop in (("benign", 0, 12), ("normal", 12, 15)):
        (root / label).mkdir()
        for number, index in enumerate(range(start, stop), start=1):
            mask = masks[index, ..., 0] > 0.5 if label == "benign" else np.zeros((48, 48), bool)
            cv2.imwrite(str(root / label / f"{label} ({number}).png"), np.round(images[index, ..., 0] * 255).astype(np.uint8))
            cv2.imwrite(str(root / label / f"{label} ({number})_mask.png"), mask.astype(np.uint8) * 255)
    return root


def test_evaluate_counts_lesions_predicted_on_normal_scans(trained_run, busi_like_folder, tmp_path, capsys):
    split = tmp_path / "split.json"
    assert run(["split", "--data", str(busi_like_folder), "--out", str(split), "--test", "2", "--validation", "2"], capsys)[0] == 0
    argv = ["evaluate", "--model", str(trained_run / "final.keras"), "--data", str(busi_like_folder), "--split", str(split)]
    code, out, _ = run(argv + ["--normal", "--out", str(tmp_path / "eval")], capsys)
    assert code == 0 and "lesion-free scans: a lesion is predicted on" in out
    assert "| class: benign | 2 |" in out  # the breakdown of the two test scans, also written:
    assert list(json.loads((tmp_path / "eval" / "subgroups.json").read_text())["class"]) == ["benign"]
    assert (tmp_path / "eval" / "dice_by_size.png").stat().st_size > 0
    alarms = json.loads((tmp_path / "eval" / "normal_scans.json").read_text())
    assert alarms["scans"] == 3 and 0 <= alarms["flagged_postprocessed"] <= alarms["flagged"] <= 3


def test_split_can_train_on_lesion_free_scans_and_evaluate_counts_the_others(trained_run, busi_like_folder, tmp_path, capsys):
    split = tmp_path / "split.json"
    held_out = ["--data", str(busi_like_folder), "--test", "2", "--validation", "2"]
    assert run(["split", *held_out, "--out", str(split), "--train-normal", "2"], capsys)[0] == 0
    listed = json.loads(split.read_text())
    assert sum(case_id.startswith("normal/") for case_id in listed["train"]) == 2 and len(listed["train"]) == 10
    argv = ["evaluate", "--model", str(trained_run / "final.keras"), "--data", str(busi_like_folder), "--split", str(split)]
    assert run(argv + ["--normal", "--out", str(tmp_path / "eval")], capsys)[0] == 0
    assert json.loads((tmp_path / "eval" / "normal_scans.json").read_text())["scans"] == 1  # the one not trained on
    code, _, err = run(["split", *held_out, "--out", str(tmp_path / "all.json"), "--train-normal", "3"], capsys)
    assert code == 2 and f"{busi_like_folder}: cannot add 3 of 3 unlisted lesion-free scans to train" in err
    assert len(err.strip().splitlines()) == 1

    both = tmp_path / "both.json"
    assert run(["split", *held_out, "--out", str(both), "--train-normal", "1", "--validation-normal", "1"], capsys)[0] == 0
    listed = json.loads(both.read_text())
    assert [sum(c.startswith("normal/") for c in listed[side]) for side in ("train", "validation", "test")] == [1, 1, 0]
    assert run(argv[:-1] + [str(both), "--normal", "--out", str(tmp_path / "eval2")], capsys)[0] == 0
    assert json.loads((tmp_path / "eval2" / "normal_scans.json").read_text())["scans"] == 1  # neither trained nor validated on


def test_split_folds_partition_the_lesion_scans_and_misuse_is_one_line(busi_like_folder, tmp_path, capsys):
    tested = []
    for fold in (1, 2, 3):
        out = tmp_path / f"fold{fold}.json"
        argv = ["split", "--data", str(busi_like_folder), "--folds", "3", "--fold", str(fold), "--validation", "2"]
        assert run(argv + ["--out", str(out)], capsys)[0] == 0
        listed = json.loads(out.read_text())
        assert (len(listed["train"]), len(listed["validation"]), len(listed["test"])) == (6, 2, 4)
        tested += listed["test"]
    assert sorted(tested) == sorted(f"benign/benign ({n}).png" for n in range(1, 13))
    base = ["split", "--data", str(busi_like_folder), "--out", str(tmp_path / "bad.json")]
    for options, message in (
        (["--folds", "3"], "--folds K and --fold I go together"),
        (["--folds", "3", "--fold", "4"], "--folds 3 --fold 4: needs at least 2 folds and a fold from 1 to 3"),
        (["--folds", "3", "--fold", "1", "--test", "5"], "--folds replaces --test"),
        (["--folds", "13", "--fold", "1"], f"{busi_like_folder}: cannot make 13 folds of 12 scans"),
    ):
        code, _, err = run(base + options, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.json").exists()


def test_split_from_an_existing_split_only_adds_lesion_free_scans(busi_like_folder, tmp_path, capsys):
    base, grown, alone = (tmp_path / name for name in ("base.json", "grown.json", "alone.json"))
    data = ["--data", str(busi_like_folder)]
    assert run(["split", *data, "--test", "2", "--validation", "2", "--seed", "3", "--out", str(base)], capsys)[0] == 0
    both = ["--validation-normal", "1", "--train-normal", "1"]
    assert run(["split", *data, "--from", str(base), *both, "--out", str(grown)], capsys)[0] == 0
    assert run(["split", *data, "--from", str(base), "--validation-normal", "1", "--out", str(alone)], capsys)[0] == 0
    base, grown, alone = (json.loads(path.read_text()) for path in (base, grown, alone))
    assert grown["test"] == base["test"] and all(set(base[side]) < set(grown[side]) for side in ("train", "validation"))
    assert grown["validation"] == alone["validation"]  # adding training scans leaves the validation picks alone


def test_train_and_calibrate_choose_a_presence_level_on_lesion_free_validation_scans(busi_like_folder, tmp_path, capsys):
    split, run_dir = tmp_path / "split.json", tmp_path / "run"
    held_out = ["--test", "2", "--validation", "2", "--validation-normal", "2"]
    assert run(["split", "--data", str(busi_like_folder), "--out", str(split), *held_out], capsys)[0] == 0
    argv = ["train", "--model", "unet", "--data", str(busi_like_folder), "--split", str(split), *TINY, "--out", str(run_dir)]
    assert run([*argv, "--max-false-alarms", "0"], capsys)[0] == 0
    record = json.loads((run_dir / "best.inference.json").read_text())
    assert (record["validation_scans"], record["validation_lesion_free_scans"]) == (4, 2)
    flagged = {float(level): score["lesion_free_flagged"] for level, score in record["validation_by_presence"].items()}
    assert set(flagged.values()) <= {0.0, 0.5, 1.0}
    # The operating point asked for: the lowest level flagging neither lesion-free scan (else the fewest flagged).
    assert record["max_false_alarms"] == 0.0 and "at most 0 % of the lesion-free" in record["chosen_on"]
    assert record["presence"] == min(flagged, key=lambda level: (flagged[level] > 0, flagged[level], level))
    assert (run_dir / "best.presence.png").is_file() and (run_dir / "final.presence.png").is_file()
    lesions_only = tmp_path / "lesions-only.json"
    assert run(["split", "--data", str(busi_like_folder), "--out", str(lesions_only), "--test", "2", "--validation", "2"], capsys)[0] == 0

    # calibrate: another operating point for the trained network, without training again.
    calibrate = ["calibrate", "--model", str(run_dir / "best.keras"), "--data", str(busi_like_folder), "--split", str(split)]
    code, _, err = run([*calibrate, "--max-false-alarms", "0.5"], capsys)
    assert code == 2 and "best.inference.json" in err and "--overwrite" in err  # the settings train wrote are kept
    code, out, _ = run([*calibrate, "--max-false-alarms", "0.5", "--overwrite"], capsys)
    recalibrated = json.loads((run_dir / "best.inference.json").read_text())
    assert code == 0 and recalibrated["max_false_alarms"] == 0.5 and "at most 50 % of the lesion-free" in out
    assert recalibrated["validation_by_presence"] == record["validation_by_presence"]  # the same network, scored alike
    assert recalibrated["presence"] == min(flagged, key=lambda level: (flagged[level] > 0.5, flagged[level], level))
    code, _, err = run([*calibrate[:6], str(lesions_only), "--max-false-alarms", "0.1", "--overwrite"], capsys)
    assert code == 2 and "needs lesion-free validation scans" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["calibrate", "--model", str(WEIGHTS_DIR / DEFAULT_MODEL), *calibrate[3:], "--overwrite"], capsys)
    assert code == 2 and "a shipped model" in err
    code, _, err = run([*calibrate, "--max-false-alarms", "1.5", "--overwrite"], capsys)
    assert code == 2 and "--max-false-alarms 1.5: must be at least 0 and below 1" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run(["evaluate", *calibrate[1:], "--subset", "validation"], capsys)  # 2 lesion + 2 lesion-free scans
    assert code == 0 and "of 2 lesion-free scans" in out and "the 2 scans with a lesion alone: pooled Dice" in out
    for split_file, value, why in ((split, "1.5", "must be at least 0 and below 1"), (lesions_only, "0.1", "needs lesion-free validation scans")):
        code, _, err = run([*argv[:6], str(split_file), *TINY, "--out", str(tmp_path / f"run-{value}"), "--max-false-alarms", value], capsys)
        assert code == 2 and why in err and len(err.strip().splitlines()) == 1

    only_lesion_free = tmp_path / "only-lesion-free.json"
    held_out = ["--test", "2", "--validation", "0", "--validation-normal", "2"]
    assert run(["split", "--data", str(busi_like_folder), "--out", str(only_lesion_free), *held_out], capsys)[0] == 0
    code, _, err = run([*argv[:6], str(only_lesion_free), *TINY, "--out", str(tmp_path / "run2")], capsys)
    assert code == 2 and "the validation list holds no scan with a lesion" in err and len(err.strip().splitlines()) == 1


def test_split_train_normal_without_lesion_free_scans_names_the_folder(phantom_folder, tmp_path, capsys):
    argv = ["split", "--data", str(phantom_folder), "--out", str(tmp_path / "s.json"), "--test", "4", "--validation", "4"]
    code, _, err = run(argv + ["--train-normal", "1"], capsys)
    assert code == 2 and f"{phantom_folder}: holds no lesion-free scans" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.json").exists()


def test_split_asking_for_too_many_lesion_free_scans_names_the_folder(busi_like_folder, tmp_path, capsys):
    argv = ["split", "--data", str(busi_like_folder), "--out", str(tmp_path / "s.json"), "--test", "2", "--validation", "2"]
    code, _, err = run(argv + ["--validation-normal", "3"], capsys)
    problem = "cannot add 3 of 3 unlisted lesion-free scans to validation and keep some to count false alarms"
    assert code == 2 and err.splitlines() == [f"rdanet-gan split: error: {busi_like_folder}: {problem}"]


def test_evaluate_normal_without_lesion_free_scans_is_one_line(trained_run, phantom_folder, capsys):
    argv = ["evaluate", "--model", str(trained_run / "final.keras"), "--data", str(phantom_folder)]
    code, _, err = run(argv + ["--split", str(trained_run / "split.json"), "--normal"], capsys)
    assert code == 2 and "holds no lesion-free scans" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "why"),
    [
        (["--deep-supervision"], "deep_supervision applies to rdau-net and unet"),
        (["--norm", "group"], "SegNet is defined with batch normalisation"),
        (["--image-size", "48"], "rdau-net: input height and width must be multiples of 32"),
    ],
)
def test_reproduce_refuses_settings_a_row_cannot_take_before_training(option, why, tmp_path, capsys):
    code, _, err = run(["reproduce", "--data", "phantom", "--out", str(tmp_path / "out"), *option], capsys)
    assert code == 2 and why in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_reproduce_on_too_few_scans_for_a_test_list_is_one_line(tmp_path, capsys):
    from busi_folders import write_busi_phantoms

    write_busi_phantoms(tmp_path / "busi", benign=3, malignant=2, size=48)  # the paper's 57 of 647: none of 5
    code, _, err = run(["reproduce", "--data", str(tmp_path / "busi"), "--out", str(tmp_path / "out"), *TINY], capsys)
    assert code == 2 and "leaves no test scans to score Table 1 on" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "rdau-net").exists()  # nothing trained


def test_native_resolution_of_phantoms_is_one_line(trained_run, capsys):
    argv = ["evaluate", "--model", str(trained_run / "final.keras"), "--data", "phantom", "--split", str(trained_run / "split.json")]
    code, _, err = run([*argv, "--native-resolution"], capsys)
    assert code == 2 and "--native-resolution needs scans read from files" in err and len(err.strip().splitlines()) == 1
