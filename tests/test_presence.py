"""The presence head (``rdanet_gan.models.presence``, ``rdanet-gan presence-head``): its fit, the model it makes."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from busi_folders import write_busi_phantoms, write_normal_scans

import rdanet_gan  # noqa: F401 - registers the package's Keras objects, as a user's script would
from rdanet_gan.cli import main
from rdanet_gan.inference.litert import export_litert
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.models import build_model
from rdanet_gan.models.presence import (
    add_presence_head,
    fit_presence,
    has_presence_head,
    pooled_features,
    presence_features,
    rank_auc,
)

SIZE = 32


def sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logit))


def toy_features(count: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features on very different scales and offsets, the label noisy in the first: as pooled activations are."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(count, 8)) * rng.uniform(0.1, 10, 8) + rng.normal(0, 5, 8)
    has_lesion = features[:, 0] / features[:, 0].std() + rng.normal(size=count) > 0.8
    return features, has_lesion


@pytest.fixture(scope="module")
def segmenter():
    keras.config.set_dtype_policy("float32")  # whatever policy an earlier test in this worker left
    keras.utils.set_random_seed(2)
    return build_model("rdau-net", input_shape=(SIZE, SIZE, 1), base_width=4)


@pytest.fixture(scope="module")
def scans():
    return np.random.default_rng(4).random((6, SIZE, SIZE, 1), dtype=np.float32)


def head_at_median(model: keras.Model, scans: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Random head weights, the bias putting the head's probability among the mask's: some pixels capped, some not."""
    features = pooled_features(model, scans)
    weights = np.random.default_rng(5).normal(0, 0.3, features.shape[1])
    centred = np.median(model.predict(scans, verbose=0))
    bias = float(np.log(centred / (1 - centred)) - np.mean(features @ weights))
    return weights, bias, sigmoid(features @ weights + bias)


@pytest.mark.parametrize("l2", [0.01, 0.1, 1.0])
def test_the_fit_is_scikit_learns_balanced_logistic_regression_on_standardised_features(l2):
    linear_model = pytest.importorskip("sklearn.linear_model")
    features, has_lesion = toy_features()
    weights, bias = fit_presence(features, has_lesion, l2)
    standardised = (features - features.mean(axis=0)) / features.std(axis=0)
    reference = linear_model.LogisticRegression(
        C=1 / (l2 * len(has_lesion)), class_weight="balanced", tol=1e-10, max_iter=10_000
    ).fit(standardised, has_lesion)
    np.testing.assert_allclose(
        sigmoid(features @ weights + bias), reference.predict_proba(standardised)[:, 1], atol=1e-4
    )


def test_the_fit_separates_a_linearly_separable_set():
    rng = np.random.default_rng(1)
    has_lesion = np.arange(40) % 3 == 0
    features = rng.normal(size=(40, 5)) + np.where(has_lesion, 4.0, -4.0)[:, None] * np.array([1, -1, 0, 0, 0])
    weights, bias = fit_presence(features, has_lesion)
    scores = features @ weights + bias
    assert ((scores > 0) == has_lesion).all() and rank_auc(scores, has_lesion) == 1.0


def test_the_fit_needs_both_classes_and_a_positive_penalty():
    features, _ = toy_features()
    for labels in (np.ones(60, bool), np.zeros(60, bool)):
        with pytest.raises(ValueError, match="needs scans with and without a lesion"):
            fit_presence(features, labels)
    with pytest.raises(ValueError, match="l2 must be positive"):
        fit_presence(*toy_features(), l2=0.0)


def test_rank_auc_counts_ties_half():
    assert rank_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert rank_auc(np.array([0.5, 0.5, 0.2]), np.array([1, 0, 0])) == 0.75


def test_the_head_caps_the_mask_at_its_probability(segmenter, scans):
    weights, bias, probability = head_at_median(segmenter, scans)
    headed = add_presence_head(segmenter, weights, bias)
    assert headed.name == segmenter.name and headed.output_shape == segmenter.output_shape
    assert has_presence_head(headed) and not has_presence_head(segmenter)
    plain = segmenter.predict(scans, verbose=0)
    capped = probability[:, None, None, None]
    assert (plain > capped).any() and (plain < capped).any()  # the test reaches both sides of the minimum
    np.testing.assert_allclose(headed.predict(scans, verbose=0), np.minimum(plain, capped), atol=1e-6)


def test_a_sure_head_leaves_the_mask_and_a_doubting_one_empties_it(segmenter, scans):
    weights = np.zeros(presence_features(segmenter).shape[-1])
    plain = segmenter.predict(scans, verbose=0)
    np.testing.assert_allclose(add_presence_head(segmenter, weights, 50.0).predict(scans, verbose=0), plain, atol=1e-6)
    assert add_presence_head(segmenter, weights, -50.0).predict(scans, verbose=0).max() < 1e-6


def test_a_saved_head_loads_in_safe_mode_and_predicts_the_same(segmenter, scans, tmp_path):
    weights, bias, _ = head_at_median(segmenter, scans)
    headed = add_presence_head(segmenter, weights, bias)
    headed.save(tmp_path / "headed.keras")
    for loaded in (keras.models.load_model(tmp_path / "headed.keras"), load_segmenter(tmp_path / "headed.keras")):
        assert has_presence_head(loaded)
        np.testing.assert_array_equal(loaded.predict(scans, verbose=0), headed.predict(scans, verbose=0))
    with pytest.raises(ValueError, match="already has a presence head"):
        presence_features(loaded)


def test_the_litert_export_keeps_the_head(segmenter, scans, tmp_path):
    weights, bias, _ = head_at_median(segmenter, scans)
    headed = add_presence_head(segmenter, weights, bias)
    export = load_segmenter(export_litert(headed, tmp_path / "headed.tflite"))
    np.testing.assert_allclose(export.predict(scans), headed.predict(scans, verbose=0), atol=1e-5)


def test_the_head_stays_float32_under_mixed_precision(scans):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model("rdau-net", input_shape=(SIZE, SIZE, 1), base_width=4)
        weights, bias, probability = head_at_median(model, scans)
        headed = add_presence_head(model, weights, bias)
    finally:
        keras.config.set_dtype_policy("float32")
    assert headed.get_layer("presence").compute_dtype == "float32" and headed.output.dtype == "float32"
    expected = np.minimum(model.predict(scans, verbose=0), probability[:, None, None, None])
    np.testing.assert_allclose(headed.predict(scans, verbose=0), expected, atol=1e-6)


def test_a_network_without_the_dilated_module_takes_no_head():
    with pytest.raises(ValueError, match="needs RDAU-Net"):
        presence_features(build_model("unet", input_shape=(SIZE, SIZE, 1), base_width=4))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A BUSI-like folder (12 scans with a lesion, 4 lesion-free), a split training on 2 lesion-free scans and
    validating on 1, a split without lesion-free scans, and a saved tiny RDAU-Net and U-Net."""
    root = tmp_path_factory.mktemp("presence")
    write_busi_phantoms(root / "busi", benign=8, malignant=4, size=48)
    write_normal_scans(root / "busi", 4)
    held_out = ["--data", str(root / "busi"), "--test", "2", "--validation", "2"]
    assert main(["split", *held_out, "--out", str(root / "lesions.json")]) == 0
    normal = ["--from", str(root / "lesions.json"), "--train-normal", "2", "--validation-normal", "1"]
    assert main(["split", *held_out, *normal, "--out", str(root / "split.json")]) == 0
    keras.config.set_dtype_policy("float32")
    build_model("rdau-net", input_shape=(SIZE, SIZE, 1), base_width=4).save(root / "rdau.keras")
    build_model("unet", input_shape=(SIZE, SIZE, 1), base_width=4).save(root / "unet.keras")
    return root


def presence_head(dataset, out, *options: str, model: str = "rdau.keras", split: str = "split.json") -> list[str]:
    """The command fitting a head on ``model`` (a name in ``dataset``, or a path) with ``split``'s training list."""
    data = ["--data", str(dataset / "busi"), "--split", str(dataset / split)]
    return ["presence-head", "--model", str(dataset / model), *data, "--out", str(out), *options]


def test_the_command_writes_the_model_with_its_head_then_calibrate_takes_it(dataset, tmp_path, capsys):
    out = tmp_path / "headed.keras"
    assert main(presence_head(dataset, out, "--l2", "0.5", "--batch-size", "4")) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{out}: presence head fitted on 10 training scans (8 with a lesion, 2 lesion-free)")
    assert "training AUC" in line and f"rdanet-gan calibrate --model {out}" in line and "\n" not in line
    assert has_presence_head(load_segmenter(out))
    data = ["--data", str(dataset / "busi"), "--split", str(dataset / "split.json")]
    assert (
        main(["calibrate", "--model", str(out), *data]) == 0
        and json.loads(out.with_suffix(".inference.json").read_text())["validation_lesion_free_scans"] == 1
    )
    capsys.readouterr()

    assert main(presence_head(dataset, out)) == 2
    assert f"error: {out}: already exists (use --overwrite to replace it)" in capsys.readouterr().err
    assert main(presence_head(dataset, out, "--overwrite")) == 0
    err = capsys.readouterr().err.strip()  # the settings file beside the new model belongs to the old one
    assert err.startswith("rdanet-gan presence-head: warning:") and "run calibrate --overwrite" in err
    assert main(presence_head(dataset, tmp_path / "again.keras", model=str(out))) == 2
    assert "already has a presence head" in capsys.readouterr().err


NO_LESION_FREE = (
    "{root}/lesions.json: the training list holds no lesion-free scans, which the presence head needs; make a split "
    "with some: rdanet-gan split --data {root}/busi --from {root}/lesions.json --train-normal N --out NEW.json"
)
NO_DILATED_MODULE = "{root}/unet.keras: no dilated module: the presence head applies to RDAU-Net"


@pytest.mark.parametrize(
    ("options", "message"), [({"split": "lesions.json"}, NO_LESION_FREE), ({"model": "unet.keras"}, NO_DILATED_MODULE)]
)
def test_the_command_refuses_what_takes_no_head_in_one_line(dataset, options, message, tmp_path, capsys):
    out = tmp_path / "headed.keras"
    assert main(presence_head(dataset, out, **options)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message.format(root=dataset) in err
    assert not out.exists()
