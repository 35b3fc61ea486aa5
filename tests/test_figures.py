"""Figures are written as valid PNG files, atomically, without a display."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from rdanet_gan.errors import DataError
from rdanet_gan.evaluation import figures
from rdanet_gan.inference import overlay

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 50
    assert pixels.std() > 0  # something was drawn
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left


def _scan_and_masks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    scan = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    truth = np.zeros((32, 32), dtype=bool)
    truth[8:20, 10:24] = True
    pred = np.zeros((32, 32), dtype=np.uint8)
    pred[0:14, 12:32] = 1  # touches the top and right borders
    return scan, truth, pred


def test_training_curves_from_a_csv_logger_file(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(
        "epoch,d_loss,dice,g_loss,learning_rate,loss,val_dice,val_loss\n"
        "0,0.9,0.30,1.2,0.001,1.0,0.25,1.1\n"
        "1,0.8,0.50,1.0,0.001,0.8,NA,0.9\n"
        "2,0.7,0.60,0.9,0.0005,0.7,0.55,0.85\n"
    )
    figures.plot_training_curves(log, tmp_path / "out" / "curves.png")
    _assert_png(tmp_path / "out" / "curves.png")


def test_training_curves_report_unusable_logs(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        figures.plot_training_curves(tmp_path / "missing.csv", tmp_path / "curves.png")
    (tmp_path / "empty.csv").write_text("epoch,loss\n")
    with pytest.raises(DataError, match="no epochs"):
        figures.plot_training_curves(tmp_path / "empty.csv", tmp_path / "curves.png")
    (tmp_path / "other.csv").write_text("step,loss\n0,1.0\n")
    with pytest.raises(DataError, match="'epoch'"):
        figures.plot_training_curves(tmp_path / "other.csv", tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def test_overlay_with_an_empty_prediction_or_no_truth(tmp_path):
    scan, truth, pred = _scan_and_masks()
    overlay.plot_overlay(scan, truth, pred, tmp_path / "overlay.png", title="benign (1)")
    overlay.plot_overlay(scan[..., 0], truth, np.zeros_like(pred), tmp_path / "empty.png")
    overlay.plot_overlay(scan, None, pred, tmp_path / "no_truth.png")
    for name in ("overlay.png", "empty.png", "no_truth.png"):
        _assert_png(tmp_path / name)


def test_contours_follow_the_mask_edges_and_close_at_the_border():
    _, truth, pred = _scan_and_masks()
    [(rows, cols)] = overlay._contours(truth)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (7.5, 19.5, 9.5, 23.5)
    [(rows, cols)] = overlay._contours(pred)
    assert (rows[0], cols[0]) == (rows[-1], cols[-1])  # closed although the lesion touches the border
    assert overlay._contours(np.zeros((4, 4))) == []


def test_dice_distribution(tmp_path):
    per_model = {"U-Net": [0.9, 0.7, float("nan"), 0.2], "RDA-NET-GAN": np.array([0.95, 0.8, 0.85]), "empty": []}
    figures.plot_dice_distribution(per_model, tmp_path / "dice.png")
    _assert_png(tmp_path / "dice.png")


def test_dice_by_size_plots_the_lesion_scans_of_every_class(tmp_path):
    rows = [
        {"id": f"{label}/{n}.png", "height": 100, "width": 100, "true_pixels": pixels, "dice": dice}
        for label, n, pixels, dice in (("benign", 1, 50, 0.9), ("benign", 2, 3000, 0.4), ("malignant", 3, 500, 0.7))
    ] + [{"id": "normal/4.png", "height": 100, "width": 100, "true_pixels": 0, "dice": 1.0}]
    figures.plot_dice_by_size(rows, tmp_path / "by_size.png")
    _assert_png(tmp_path / "by_size.png")


def test_comparison_grid(tmp_path):
    scan, truth, pred = _scan_and_masks()
    figures.plot_comparison_grid(
        [scan, scan[..., :1]],
        [truth, truth],
        {"U-Net": [pred, np.zeros_like(pred)], "GAN": [truth, pred]},
        tmp_path / "grid.png",
    )
    _assert_png(tmp_path / "grid.png")
    with pytest.raises(ValueError, match="same non-zero number"):
        figures.plot_comparison_grid([scan], [truth], {"U-Net": [pred, pred]}, tmp_path / "bad.png")


def test_presence_tradeoff(tmp_path):
    from rdanet_gan.evaluation.calibration import PresenceScore

    scores = {0.0: PresenceScore(0.45, 0.6, 0.9), 0.9: PresenceScore(0.52, 0.55, 0.4), 0.99: PresenceScore(0.5, 0.4, 0.1)}
    figures.plot_presence_tradeoff(scores, 0.9, tmp_path / "presence.png")
    _assert_png(tmp_path / "presence.png")
