"""``benchmarks/ablation.py``: a tiny run on a small BUSI-layout folder writes its table, and a rerun resumes."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from busi_folders import write_busi_phantoms, write_normal_scans

from rdanet_gan.evaluation.calibration import SETTINGS

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"
TINY = ["--data", "phantom", "--epochs", "1", "--base-width", "4", "--image-size", "32", "--batch-size", "8", "--jit", "off"]


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_ablation_scores_validation_settings_reads_test_once_and_resumes(ablation, tmp_path, capsys):  # noqa: PLR0915
    write_busi_phantoms(tmp_path / "busi", benign=12, malignant=6, size=48)
    write_normal_scans(tmp_path / "busi", count=6)
    out = tmp_path / "ablation"
    argv = [*TINY, "--data", str(tmp_path / "busi"), "--out", str(out), "--train-normal", "2"]
    assert ablation.main([*argv, "--variants", "paper"]) == 0
    results = json.loads((out / "ablation.json").read_text())["variants"]
    paper = results["paper"]
    assert set(paper["validation"]) == set(SETTINGS)
    chosen = paper["inference"]
    assert paper["validation"][chosen]["dice"] == max(v["dice"] for v in paper["validation"].values())
    assert set(paper["test"]) == {"dice", "dice_per_image", "precision", "sensitivity", "hd95", "scans"}  # one setting
    assert json.loads((out / "paper" / "config.json").read_text())["settings"]["augmentation"] == "paper"
    assert "rdanet-gan train --model rdau-net" in paper["command"] and "--recipe paper" in paper["command"]

    # The train-normal split adds 2 lesion-free scans to train; the other variants validate on those 2
    # (their presence level), and every variant's alarms count the 4 others.
    split = json.loads((out / "split.json").read_text())
    with_normal = json.loads((out / ablation.TRAIN_NORMAL_SPLIT).read_text())
    added = sorted(set(with_normal["train"]) - set(split["train"]))
    assert len(added) == 2 and all(case_id.startswith("normal/") for case_id in added)
    assert {key: with_normal[key] for key in ("validation", "test")} == {key: split[key] for key in ("validation", "test")}
    assert json.loads((out / "paper" / "split.json").read_text()) == split
    assert paper["validation_presence"]["lesion_free_scans"] == 2 and paper["normal_scans"]["scans"] == 4
    alarms = paper["normal_scans"]
    assert alarms["flagged_with_settings"] <= alarms["flagged"] <= 4
    # Operating points: the lowest level flagging at most 20 % (the package's default) or 10 % (the second table)
    # of the 2 lesion-free validation scans, else the level that flags fewest.
    point, flagged = paper["false_alarm_target"], paper["validation_presence"]["lesion_free_flagged"]
    assert "0" in flagged

    def operating_point(target: float) -> float:
        meeting = [float(level) for level, fraction in flagged.items() if fraction <= target]
        return min(meeting) if meeting else float(min(flagged, key=lambda level: (flagged[level], float(level))))

    assert paper["presence"] == operating_point(0.2)
    assert point["max_false_alarms"] == 0.1 and point["presence"] == operating_point(0.1)
    assert point["validation_lesion_free_flagged"] == flagged[f"{point['presence']:g}"] and point["normal_scans"]["scans"] == 4
    table = (out / "ablation.md").read_text()
    assert "| paper |" in table and "held-out lesion-free scans flagged" in table
    assert "operating point: at most 10 % of the lesion-free validation scans flagged" in table
    # A network trained on the lesion-free validation scans (train-normal) does not choose its presence level on them.
    args = ablation.parse_args(argv)
    data = ablation.prepare_data(args.data, str(out / "split.json"), image_size=32)
    lesion_free = ablation.lesion_free_scans(args, data.split, out)
    assert sorted(record.case_id for record in lesion_free.validation.records) == added
    without = ablation.assess(out / "paper", data, lesion_free, False, 8, 0.1)
    assert without["validation_presence"]["lesion_free_scans"] == 0 and without["presence"] == 0.0
    assert "false_alarm_target" not in without

    log = (out / "paper" / "log.csv").read_text()
    assert ablation.main([*argv, "--variants", "paper"]) == 0  # resumes: nothing retrained
    assert (out / "paper" / "log.csv").read_text() == log
    assert "== paper: val Dice" in capsys.readouterr().out
    # Trained further (here with another operating point too), the variant is rescored: its row describes
    # the network it now has.
    assert ablation.main([*argv, "--variants", "paper", "--epochs", "2", "--max-false-alarms", "0.5"]) == 0
    paper = json.loads((out / "ablation.json").read_text())["variants"]["paper"]
    assert paper["training"]["epochs"] == 2 and "--epochs 2" in paper["command"]
    assert paper["false_alarm_target"]["max_false_alarms"] == 0.5 and len(json.loads((out / "paper" / "log.json").read_text())) == 2

    shutil.rmtree(out / "paper")  # a run folder lost with its machine: the recorded result stands, nothing retrains
    assert ablation.main([*argv, "--variants", "paper"]) == 0
    assert "recorded result kept" in capsys.readouterr().out and not (out / "paper").exists()
    assert json.loads((out / "ablation.json").read_text())["variants"]["paper"] == paper


def test_gan_variants_start_from_the_paper_variant(ablation, tmp_path, capsys):
    assert ablation.main([*TINY, "--out", str(tmp_path), "--variants", "gan-adversarial-0.01"]) == 2
    assert "train 'paper' first" in capsys.readouterr().err
    args = ablation.parse_args([*TINY, "--out", str(tmp_path), "--gan-epochs", "3"])
    command = ablation.train_command("gan-adversarial-0.1", args, tmp_path / "gan-adversarial-0.1")
    assert command[command.index("--init-weights") + 1] == str(tmp_path / "paper" / "best.keras")
    assert command[command.index("--epochs") + 1] == "3" and command[-2:] == ["--out", str(tmp_path / "gan-adversarial-0.1")]
    assert command.index("rdanet-gan", 2) > command.index("rdau-net")  # the later --model wins


def test_unknown_variant_is_refused(ablation, tmp_path, capsys):
    assert ablation.main([*TINY, "--out", str(tmp_path), "--variants", "paper,bigger"]) == 2
    assert "unknown variant 'bigger'" in capsys.readouterr().err


def test_train_normal_variant_needs_lesion_free_scans(ablation, tmp_path, capsys):
    assert ablation.main([*TINY, "--out", str(tmp_path), "--variants", "train-normal"]) == 2
    assert "needs lesion-free scans" in capsys.readouterr().err


def test_variants_combine_with_a_plus(ablation, tmp_path, capsys):
    args = ablation.parse_args([*TINY, "--out", str(tmp_path)])
    command = ablation.train_command("group-norm+train-normal", args, tmp_path / "group-norm+train-normal")
    assert command[command.index("--norm") + 1] == "group"
    assert command[command.index("--split") + 1] == str(tmp_path / ablation.TRAIN_NORMAL_SPLIT)
    assert ablation.main([*TINY, "--out", str(tmp_path), "--variants", "gan-adversarial-0.01+group-norm"]) == 2
    assert "do not combine" in capsys.readouterr().err
