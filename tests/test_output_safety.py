"""Outputs: written atomically, never over an existing file without --overwrite, never over an input."""

from __future__ import annotations

import errno
import hashlib
import json
import stat
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

from rdanet_gan import fileio
from rdanet_gan.cli import main
from rdanet_gan.evaluation import score_predictions
from rdanet_gan.fileio import write_json
from rdanet_gan.inference.outputs import write_mask
from rdanet_gan.inference.overlay import plot_overlay
from rdanet_gan.training.callbacks import BestModelCheckpoint

OLD = b"the previous version of this file"


def write_scan(path: Path, value: int = 200, mask: bool = False) -> Path:
    """A scan of ``value`` with one pixel a level off (segment skips a uniform scan), or a uniform mask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((12, 16), value, np.uint8)
    if not mask:
        pixels[0, 0] = value ^ 1
    assert cv2.imwrite(str(path), pixels)
    return path


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A one-pixel-kernel segmenter: lesion where the scan is brighter than one half."""
    inputs = keras.Input((32, 32, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    model.layers[-1].set_weights([np.full((1, 1, 1, 1), 40.0, np.float32), np.array([-20.0], np.float32)])
    path = tmp_path_factory.mktemp("model") / "brightness.keras"
    model.save(path)
    return path


# Atomic writes: a writer that dies half-way leaves neither a partial target nor a temporary file.


class Interrupted(Exception):
    """Stands for the process being stopped while a file is half-written."""


def half_then_stop(target: str | Path, data: bytes) -> None:
    """Write the first half of ``data`` to ``target``, then stop."""
    with open(target, "wb") as handle:
        handle.write(data[: len(data) // 2])
    raise Interrupted


def write_mask_png(target: Path, monkeypatch) -> None:
    monkeypatch.setattr(Path, "write_bytes", lambda self, data: half_then_stop(self, data))
    write_mask(np.eye(8, dtype=bool), target, overwrite=True)


def write_csv(target: Path, monkeypatch) -> None:
    evaluation = score_predictions([np.eye(8, dtype=bool)], [np.eye(8, dtype=bool)], ids=["a"])
    monkeypatch.setattr(Path, "write_text", lambda self, text, **_: half_then_stop(self, text.encode()))
    evaluation.write_csv(target)


def write_json_file(target: Path, monkeypatch) -> None:
    monkeypatch.setattr(Path, "write_text", lambda self, text, **_: half_then_stop(self, text.encode()))
    write_json(target, {"dice": 0.5, "rows": list(range(100))})


def write_figure(target: Path, monkeypatch) -> None:
    monkeypatch.setattr(Figure, "savefig", lambda self, path, **_: half_then_stop(path, b"\x89PNG" * 100))
    plot_overlay(np.zeros((8, 8)), None, np.eye(8, dtype=bool), target)


def write_model(target: Path, monkeypatch) -> None:
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    monkeypatch.setattr(keras.Model, "save", lambda self, path, **_: half_then_stop(path, b"PK\x03\x04" * 100))
    checkpoint = BestModelCheckpoint(target)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_dice": 0.5})


WRITERS = {
    "mask.png": write_mask_png,
    "per_image.csv": write_csv,
    "summary.json": write_json_file,
    "overlay.png": write_figure,
    "best.keras": write_model,
}


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize("name", list(WRITERS))
def test_a_write_stopped_half_way_leaves_no_partial_file(tmp_path, monkeypatch, name, existing):
    target = tmp_path / name
    if existing:
        target.write_bytes(OLD)
    with pytest.raises(Interrupted):
        WRITERS[name](target, monkeypatch)
    assert sorted(p.name for p in tmp_path.iterdir()) == ([name] if existing else [])
    if existing:
        assert target.read_bytes() == OLD


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    write_scan(tmp_path / "data" / "images" / "a.png")
    write_scan(tmp_path / "data" / "masks" / "a.png", value=255, mask=True)
    report = tmp_path / "report" / "inspection.json"

    def disk_full(self, text, **_):
        with open(self, "w") as handle:
            handle.write(text[:10])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", disk_full)
    assert main(["inspect", "--data", str(tmp_path / "data"), "--json", str(report)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("rdanet-gan inspect: error: [Errno 28] No space left on device")
    assert list(report.parent.iterdir()) == []


# Existing outputs: replaced only with --overwrite, and the refusal comes before any work.


def test_segment_keeps_an_existing_mask_without_overwrite(tmp_path, model_file, capsys):
    scans = tmp_path / "scans"
    write_scan(scans / "a.png")
    write_scan(scans / "b.png")
    out = tmp_path / "masks"
    out.mkdir()
    (out / "a_mask.png").write_bytes(OLD)

    assert main(["segment", str(scans), "--model", str(model_file), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"rdanet-gan segment: skipped {out / 'a_mask.png'}: already exists (use --overwrite to replace it)"
    ]
    assert (out / "a_mask.png").read_bytes() == OLD
    assert (out / "b_mask.png").is_file()

    assert main(["segment", str(scans), "--model", str(model_file), "--out", str(out), "--overwrite"]) == 0
    mask = cv2.imread(str(out / "a_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (12, 16) and np.all(mask == 255)


def test_segment_checks_every_output_of_a_scan_before_writing_any(tmp_path, model_file, capsys):
    write_scan(tmp_path / "scans" / "a.png")
    out = tmp_path / "masks"
    out.mkdir()
    (out / "a_overlay.png").write_bytes(OLD)
    argv = ["segment", str(tmp_path / "scans"), "--model", str(model_file), "--out", str(out), "--overlay"]
    assert main(argv) == 2
    assert "a_overlay.png: already exists" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a_overlay.png"]  # no mask without its overlay


def test_evaluate_refuses_existing_results_before_any_work(tmp_path, capsys):
    out = tmp_path / "evaluation"
    out.mkdir()
    (out / "summary.json").write_bytes(OLD)
    argv = ["evaluate", "--model", str(tmp_path / "absent.keras"), "--data", str(tmp_path / "absent")]
    code = main(argv + ["--split", str(tmp_path / "absent.json"), "--out", str(out)])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"rdanet-gan evaluate: error: {out / 'summary.json'}: already exists (use --overwrite to replace it)"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert (out / "summary.json").read_bytes() == OLD


def test_split_refuses_an_existing_file_before_reading_the_dataset(tmp_path, capsys):
    existing = tmp_path / "split.json"
    existing.write_bytes(OLD)
    assert main(["split", "--data", str(tmp_path / "absent"), "--out", str(existing)]) == 2
    assert "split.json: already exists (use --overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == OLD


def test_an_output_folder_that_is_a_file_is_refused_once_before_any_work(tmp_path, model_file, capsys):
    write_scan(tmp_path / "scans" / "a.png")
    write_scan(tmp_path / "scans" / "b.png")
    not_a_folder = tmp_path / "masks"
    not_a_folder.write_bytes(OLD)
    assert main(["segment", str(tmp_path / "scans"), "--model", str(model_file), "--out", str(not_a_folder)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"rdanet-gan segment: error: --out {not_a_folder}: an existing file, not a folder"
    ]
    assert not_a_folder.read_bytes() == OLD


# Inputs: never modified, even when segment writes into the input folder.


def test_segment_into_the_input_folder_never_replaces_an_input(tmp_path, model_file, capsys):
    scans = tmp_path / "benign"
    write_scan(scans / "benign (1).png")
    write_scan(scans / "benign (1)_mask.png", value=0, mask=True)  # the ground truth, named like an output
    write_scan(scans / "benign (2).png")
    before = digests(scans)

    argv = ["segment", str(scans), "--model", str(model_file), "--out", str(scans), "--overwrite"]
    assert main(argv) == 3
    refusal = (
        f"rdanet-gan segment: skipped {scans / 'benign (1)_mask.png'}: is an input or was in the input folder, "
        "and is never replaced; choose another --out"
    )
    assert capsys.readouterr().err.splitlines() == [refusal]
    after = digests(scans)
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {"benign (2)_mask.png"}


def test_segment_never_writes_over_a_file_named_as_an_input(tmp_path, model_file, capsys):
    scan = write_scan(tmp_path / "x.png")
    other_input = write_scan(tmp_path / "masks" / "x_mask.png", value=10)
    before = digests(tmp_path)
    argv = ["segment", str(scan), str(other_input), "--model", str(model_file), "--out", str(tmp_path / "masks")]
    assert main(argv + ["--overwrite"]) == 3
    assert "x_mask.png: is an input" in capsys.readouterr().err
    after = digests(tmp_path)
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {"masks/x_mask_mask.png"}


def test_two_inputs_with_one_output_name_do_not_overwrite_each_other(tmp_path, model_file, capsys):
    first = write_scan(tmp_path / "left" / "scan.png", value=255)
    second = write_scan(tmp_path / "right" / "scan.png", value=0)
    out = tmp_path / "masks"
    assert main(["segment", str(tmp_path), "--model", str(model_file), "--out", str(out), "--overwrite"]) == 3
    assert capsys.readouterr().err.splitlines() == [
        f"rdanet-gan segment: skipped {second}: has the output name scan_mask.png of {first}; rename one of them"
    ]
    assert np.all(cv2.imread(str(out / "scan_mask.png"), cv2.IMREAD_UNCHANGED) == 255)  # the first scan's


def test_rerunning_into_an_output_folder_inside_the_inputs_does_not_segment_outputs(tmp_path, model_file, capsys):
    scans = tmp_path / "scans"
    write_scan(scans / "a.png")
    argv = ["segment", str(scans), "--model", str(model_file), "--out", str(scans / "results"), "--overlay"]
    assert main(argv) == 0
    (scans / ".a_overlay.x1y2.tmp.png").write_bytes(b"left by a killed run")  # hidden: never an input
    first = sorted(p.name for p in (scans / "results").iterdir())
    assert main(argv + ["--overwrite"]) == 0
    assert sorted(p.name for p in (scans / "results").iterdir()) == first
    assert capsys.readouterr().out.count("peak probability") == 2  # one scan, twice


def test_rerunning_into_the_input_folder_does_not_segment_its_overlays(tmp_path, model_file, capsys):
    scans = tmp_path / "scans"
    write_scan(scans / "a.png")
    write_scan(scans / "b.png")
    argv = ["segment", str(scans), "--model", str(model_file), "--overlay"]
    assert main(argv + ["--out", str(scans)]) == 0
    first = digests(scans)
    assert sorted(first) == ["a.png", "a_mask.png", "a_overlay.png", "b.png", "b_mask.png", "b_overlay.png"]
    capsys.readouterr()

    # Again into the input folder: the overlays are no scans, and the first run's masks stay as they are.
    assert main(argv + ["--out", str(scans), "--overwrite"]) == 2
    refusal = "is an input or was in the input folder, and is never replaced; choose another --out"
    assert capsys.readouterr().err.splitlines() == [
        f"rdanet-gan segment: skipped {scans / 'a_mask.png'}: {refusal}",
        f"rdanet-gan segment: skipped {scans / 'b_mask.png'}: {refusal}",
        "rdanet-gan segment: error: no input could be segmented",
    ]
    assert digests(scans) == first

    out = tmp_path / "masks"
    assert main(argv + ["--out", str(out)]) == 0
    assert capsys.readouterr().out.count("peak probability") == 2  # a.png and b.png only
    assert sorted(p.name for p in out.iterdir()) == ["a_mask.png", "a_overlay.png", "b_mask.png", "b_overlay.png"]


def test_evaluate_writes_nothing_into_the_dataset(tmp_path, model_file, capsys):
    for index in range(4):
        write_scan(tmp_path / "data" / "images" / f"case{index}.png")
        write_scan(tmp_path / "data" / "masks" / f"case{index}.png", value=255, mask=True)
    split = tmp_path / "split.json"
    case_ids = [f"images/case{index}.png" for index in range(4)]
    split.write_text(json.dumps({"train": case_ids[:2], "validation": case_ids[2:3], "test": case_ids[3:]}))
    before = digests(tmp_path / "data")
    argv = ["evaluate", "--model", str(model_file), "--data", str(tmp_path / "data"), "--split", str(split)]
    assert main(argv + ["--out", str(tmp_path / "evaluation"), "--native-resolution"]) == 0
    assert digests(tmp_path / "data") == before
    assert sorted(p.name for p in (tmp_path / "evaluation").iterdir()) == ["dice_by_size.png", "per_image.csv", "subgroups.json", "summary.json"]


def test_outputs_get_the_usual_file_mode_not_the_temporary_files_private_one(tmp_path):
    """Masks and reports are readable as any file the user makes (0644 under umask 022), not 0600."""
    write_json(tmp_path / "summary.json", {})
    assert stat.S_IMODE((tmp_path / "summary.json").stat().st_mode) == 0o666 & ~fileio._UMASK


def test_json_outputs_write_undefined_values_as_null(tmp_path):
    """JSON has no NaN: an undefined value (e.g. the HD95 of a missed lesion) is written as null, nested too."""
    write_json(tmp_path / "out.json", {"hd95": float("nan"), "rows": [{"assd": float("nan")}, (1.0, float("nan"))]})
    assert json.loads((tmp_path / "out.json").read_text()) == {"hd95": None, "rows": [{"assd": None}, [1.0, None]]}
    assert "NaN" not in (tmp_path / "out.json").read_text()
