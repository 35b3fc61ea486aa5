"""``benchmarks/ablation.py``: a tiny run on phantoms writes its table, and a rerun resumes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"
TINY = ["--data", "phantom", "--epochs", "1", "--base-width", "4", "--image-size", "32", "--batch-size", "8", "--jit", "off"]


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_ablation_scores_validation_settings_and_reads_test_once(ablation, tmp_path, capsys):
    out = tmp_path / "ablation"
    assert ablation.main([*TINY, "--out", str(out), "--variants", "paper"]) == 0
    results = json.loads((out / "ablation.json").read_text())["variants"]
    paper = results["paper"]
    assert set(paper["validation"]) == set(ablation.INFERENCE)
    chosen = paper["inference"]
    assert paper["validation"][chosen]["dice"] == max(v["dice"] for v in paper["validation"].values())
    assert set(paper["test"]) == {"dice", "dice_per_image", "precision", "sensitivity", "hd95"}  # one setting only
    assert json.loads((out / "paper" / "config.json").read_text())["settings"]["augmentation"] == "paper"
    assert "| paper |" in (out / "ablation.md").read_text()
    assert "rdanet-gan train --model rdau-net" in paper["command"] and "--recipe paper" in paper["command"]

    log = (out / "paper" / "log.csv").read_text()
    assert ablation.main([*TINY, "--out", str(out), "--variants", "paper"]) == 0  # resumes: nothing retrained
    assert (out / "paper" / "log.csv").read_text() == log
    assert "== paper: val Dice" in capsys.readouterr().out


def test_gan_variants_start_from_the_paper_variant(ablation, tmp_path, capsys):
    assert ablation.main([*TINY, "--out", str(tmp_path), "--variants", "gan-adversarial-0.01"]) == 2
    assert "train 'paper' first" in capsys.readouterr().err
    args = ablation.parse_args([*TINY, "--out", str(tmp_path), "--gan-epochs", "3"])
    command = ablation.train_command("gan-adversarial-0.1", args, tmp_path / "split.json", tmp_path / "gan-adversarial-0.1")
    assert command[command.index("--init-generator") + 1] == str(tmp_path / "paper" / "best.keras")
    assert command[command.index("--epochs") + 1] == "3" and command[-2:] == ["--out", str(tmp_path / "gan-adversarial-0.1")]
    assert command.index("rdanet-gan", 2) > command.index("rdau-net")  # the later --model wins


def test_unknown_variant_is_refused(ablation, tmp_path, capsys):
    assert ablation.main([*TINY, "--out", str(tmp_path), "--variants", "paper,bigger"]) == 2
    assert "unknown variant 'bigger'" in capsys.readouterr().err
