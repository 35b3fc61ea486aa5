"""Scoring a set of predictions (per image, pooled, mean ± SD), its files, and the Table 1 report."""

from __future__ import annotations

import csv
import io
import json
import math

import cv2
import keras
import numpy as np
import pytest
from medpy.metric import binary as medpy_binary
from skimage.transform import resize
from sklearn.metrics import f1_score

from rdanet_gan.data import ArraySet
from rdanet_gan.errors import DataError
from rdanet_gan.evaluation import report
from rdanet_gan.evaluation.evaluate import (
    evaluate_model,
    lesion_free_false_positives,
    lesion_scan_scores,
    score_probability_maps,
)
from rdanet_gan.evaluation.metrics import METRIC_NAMES
from rdanet_gan.evaluation.scoring import Evaluation, score_predictions
from rdanet_gan.inference.predict import predict_probabilities, resize_to
from rdanet_gan.inference.settings import InferenceSettings


def _square(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


@pytest.fixture
def two_images() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A large lesion found exactly (Dice 1) and a small one missed entirely (Dice 0), of two sizes."""
    big = _square((20, 24), 5, 5, 10)  # 100 pixels
    small = _square((12, 16), 4, 4, 2)  # 4 pixels
    return [big, np.zeros_like(small)], [big, small]


def test_pooled_and_per_image_means_differ(two_images):
    preds, truths = two_images
    evaluation = score_predictions(preds, truths, ids=["big", "small"])

    assert [row["dice"] for row in evaluation.per_image] == [1.0, 0.0]
    assert evaluation.summary["dice"]["mean"] == pytest.approx(0.5)
    assert evaluation.summary["dice"]["sd"] == pytest.approx(math.sqrt(0.5))  # sample SD of {1, 0}
    # Pooled: TP = 100, FP = 0, FN = 4 over both images.
    assert evaluation.pooled["dice"] == pytest.approx(200 / 204)
    assert evaluation.pooled["sensitivity"] == pytest.approx(100 / 104)
    assert evaluation.pooled["accuracy"] == pytest.approx(1 - 4 / (20 * 24 + 12 * 16))


def test_rows_hold_sizes_counts_and_every_metric(two_images):
    preds, truths = two_images
    rows = score_predictions(preds, truths).per_image
    assert rows[0]["id"] == "0"
    assert (rows[1]["height"], rows[1]["width"]) == (12, 16)
    assert (rows[1]["true_pixels"], rows[1]["pred_pixels"]) == (4, 0)
    assert set(METRIC_NAMES) | {"hd95", "assd"} <= set(rows[0])
    assert "soft_dice" not in rows[0]


def test_undefined_surface_distances_are_counted_not_averaged(two_images):
    preds, truths = two_images
    shifted = _square((20, 24), 5, 8, 10)  # the big lesion moved 3 columns
    evaluation = score_predictions([shifted, preds[1]], truths, ids=["big", "small"])
    assert evaluation.per_image[0]["hd95"] == pytest.approx(medpy_binary.hd95(shifted, truths[0]))
    assert math.isnan(evaluation.per_image[1]["hd95"])
    hd95 = evaluation.summary["hd95"]
    assert hd95["mean"] == pytest.approx(evaluation.per_image[0]["hd95"])
    assert (hd95["n"], hd95["undefined"]) == (1, 1)
    assert math.isnan(hd95["sd"])  # one value has no sample SD
    assert evaluation.summary["dice"]["undefined"] == 0


def test_spacing_gives_millimetres(two_images):
    _, truths = two_images
    shifted = _square((20, 24), 5, 8, 10)
    evaluation = score_predictions([shifted], truths[:1], spacing=(0.1, 0.2))
    assert evaluation.distance_unit == "mm"
    assert evaluation.per_image[0]["hd95"] == pytest.approx(medpy_binary.hd95(shifted, truths[0], (0.1, 0.2)))


def test_soft_dice_from_probabilities():
    truth = np.array([[1, 1], [0, 0]])
    probability = np.array([[0.5, 1.0], [0.5, 0.0]])
    evaluation = score_predictions([probability >= 0.5], [truth], probabilities=[probability[..., None]])
    assert evaluation.per_image[0]["soft_dice"] == pytest.approx(2 * 1.5 / (2.0 + 2))
    assert evaluation.pooled["soft_dice"] == pytest.approx(2 * 1.5 / (2.0 + 2))
    assert evaluation.summary["soft_dice"]["n"] == 1


def test_bad_inputs_name_the_image(two_images):
    preds, truths = two_images
    with pytest.raises(DataError, match=r"^small: .*\(12, 15\)"):
        score_predictions([preds[0], preds[1][:, :15]], truths, ids=["big", "small"])
    with pytest.raises(DataError, match="^big: .*threshold"):
        score_predictions([preds[0] * 0.7, preds[1]], truths, ids=["big", "small"])
    with pytest.raises(ValueError, match="differ in number"):
        score_predictions(preds, truths[:1])


def test_no_images_is_refused_rather_than_scored_perfect():
    with pytest.raises(ValueError, match="no images to score"):
        score_predictions([], [])
    with pytest.raises(ValueError, match="no images to score"):
        score_probability_maps([], [])
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
    empty = ArraySet(np.zeros((0, 8, 8, 1), np.float32), np.zeros((0, 8, 8, 1), np.float32), [], [])
    with pytest.raises(ValueError, match="no scans to evaluate"):  # not a crash inside model.predict
        evaluate_model(model, empty)


def test_json_and_csv_files(tmp_path, two_images):
    preds, truths = two_images
    evaluation = score_predictions(preds, truths, ids=["big", "small"])
    evaluation.write_json(tmp_path / "eval.json")
    evaluation.write_csv(tmp_path / "eval.csv")

    def refuse_nan(constant):
        raise AssertionError(f"invalid JSON constant {constant}")

    data = json.loads((tmp_path / "eval.json").read_text(), parse_constant=refuse_nan)
    assert data["per_image"][1]["hd95"] is None
    assert data["pooled"]["dice"] == pytest.approx(200 / 204)

    loaded = Evaluation.read_json(tmp_path / "eval.json")
    assert loaded.pooled == evaluation.pooled
    assert math.isnan(loaded.per_image[1]["hd95"])
    assert loaded.summary["dice"] == evaluation.summary["dice"]

    rows = list(csv.DictReader(io.StringIO((tmp_path / "eval.csv").read_text())))
    assert [row["id"] for row in rows] == ["big", "small"]
    assert float(rows[1]["true_pixels"]) == 4
    assert math.isnan(float(rows[1]["hd95"]))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["eval.csv", "eval.json"]  # no temp files left


def test_read_json_reports_bad_files(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        Evaluation.read_json(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match="not an evaluation"):
        Evaluation.read_json(tmp_path / "other.json")


def test_resize_to_is_bilinear_with_half_pixel_centres():
    probability = np.random.default_rng(0).random((8, 6)).astype(np.float32)
    resized = resize_to(probability[..., None], (11, 17))
    assert resized.shape == (11, 17)
    assert resize_to(probability, (11, 17, 3)).shape == (11, 17)  # an RGB image's shape
    expected = resize(probability, (11, 17), order=1, anti_aliasing=False, mode="edge")
    np.testing.assert_allclose(resized, expected, atol=1e-6)


def test_predict_probabilities_in_inference_mode():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Dropout(0.9),  # active only when training: inference must not apply it
            keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ]
    )
    images = np.random.default_rng(1).random((5, 8, 8, 1)).astype(np.float32)
    probabilities = predict_probabilities(model, images, batch_size=2)
    assert probabilities.shape == (5, 8, 8, 1)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, keras.ops.convert_to_numpy(model(images, training=False)), atol=1e-6)
    two_channels = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 1)])
    with pytest.raises(ValueError, match="N, H, W, 1"):
        predict_probabilities(two_channels, images)


def test_real_masks_at_native_resolution(busi_dir):
    """Real BUSI masks of different sizes, each predicted as its copy shifted 5 pixels right."""
    paths = [busi_dir / "benign" / "benign (1)_mask.png", busi_dir / "malignant" / "malignant (1)_mask.png"]
    truths = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0 for path in paths]
    preds = [np.roll(truth, 5, axis=1) for truth in truths]
    evaluation = score_predictions(preds, truths, ids=[path.stem for path in paths])
    for row, pred, truth in zip(evaluation.per_image, preds, truths, strict=True):
        assert (row["height"], row["width"]) == truth.shape
        assert row["dice"] == pytest.approx(f1_score(truth.ravel(), pred.ravel()))
        assert row["hd95"] == pytest.approx(medpy_binary.hd95(pred, truth))


def _evaluation(unit: str = "px") -> Evaluation:
    big = _square((20, 24), 5, 5, 10)
    small = _square((12, 16), 4, 4, 2)
    return score_predictions([big, np.zeros_like(small)], [big, small], spacing=None if unit == "px" else (1, 1))


def test_table1_markdown():
    text = report.table1_markdown({"RDA-NET-GAN (ours)": _evaluation()})
    assert "| RDA-NET-GAN (ours) | ours | 2 | 99.40 | 98.04 |" in text  # pooled Acc, Dice in percent
    assert "50.00 ± 70.71" in text  # per-image Dice: mean ± SD of {100, 0}
    assert "| RDA-NET-GAN | paper | 57 | 98.11 | 85.84 | 84.78 | 75.14 | 99.07 | – | 79.97 | 66.16 | – |" in text
    assert "(1 undefined)" in text
    assert "Dice = 2TP / (2TP + FP + FN)" in text
    assert "paper" not in report.table1_markdown({"ours": _evaluation()}, include_paper=False)


def test_table1_csv():
    rows = list(csv.DictReader(io.StringIO(report.table1_csv({"gan": _evaluation("mm")}))))
    assert [(row["model"], row["statistic"]) for row in rows] == [
        ("gan", "pooled"),
        ("gan", "mean"),
        ("gan", "sd"),
        ("RDA-NET-GAN", "reported"),
        ("RDAU-NET", "reported"),
    ]
    assert float(rows[0]["dice_percent"]) == pytest.approx(100 * 200 / 204)
    assert float(rows[1]["dice_percent"]) == pytest.approx(50)
    assert rows[0]["hd95_undefined"] == "1"
    assert rows[4]["accuracy_percent"] == ""
    assert float(rows[4]["mean_iou_percent"]) == 80.67
    with pytest.raises(ValueError, match="distance units"):
        report.table1_csv({"a": _evaluation("px"), "b": _evaluation("mm")})


def test_the_presence_level_judges_resized_maps_by_their_peak_at_the_network_size():
    # Bilinear resizing can lower a map's peak: a level chosen at 128x128 must not empty the same scan
    # at its own size.
    resized = np.zeros((8, 8), np.float32)
    resized[2:6, 2:6] = 0.8
    truth = resized > 0
    kept = score_probability_maps([resized], [truth], settings=InferenceSettings(presence=0.9), peaks=[0.95])
    dropped = score_probability_maps([resized], [truth], settings=InferenceSettings(presence=0.9))
    assert kept.per_image[0]["pred_pixels"] == 16 and dropped.per_image[0]["pred_pixels"] == 0
    assert kept.per_image[0]["peak_probability"] == 0.95  # the peak the level was compared with, recorded
    assert dropped.per_image[0]["peak_probability"] == pytest.approx(0.8)


def test_lesion_free_scans_with_a_predicted_lesion_are_counted():
    empty, spot = np.zeros((6, 6), bool), np.zeros((6, 6), bool)
    spot[2, 2] = True
    evaluation = score_predictions([spot, empty, spot], [empty, empty, spot])  # two normal scans, one flagged
    assert lesion_free_false_positives(evaluation) == {"lesion_free_scans": 2, "with_predicted_lesion": 1, "fraction": 0.5}


def test_lesion_scan_scores_leave_the_lesion_free_scans_out_and_match_pooling_the_lesion_scans_alone():
    rng = np.random.default_rng(0)
    truths = [rng.random((8, 8)) > 0.6 for _ in range(3)] + [np.zeros((8, 8), bool)] * 2
    predictions = [rng.random((8, 8)) > 0.5 for _ in range(5)]  # false alarms on both lesion-free scans
    lesions = lesion_scan_scores(score_predictions(predictions, truths))
    alone = score_predictions(predictions[:3], truths[:3])
    assert lesions["lesion_scans"] == 3
    for name in ("dice", "precision", "sensitivity"):
        assert lesions[name] == pytest.approx(alone.pooled[name])
    assert lesions["dice_per_image"] == pytest.approx(np.mean([row["dice"] for row in alone.per_image]))
    assert score_predictions(predictions, truths).pooled["precision"] < lesions["precision"]  # what mixing costs
