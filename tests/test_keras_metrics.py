"""Streaming Keras metrics equal the NumPy metrics on the same pixels, however they are fed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from rdanet_gan.evaluation.keras_metrics import (
    ConfusionMetrics,
    OverlapMetric,
    SoftDice,
    metric_results,
    segmentation_metrics,
)
from rdanet_gan.evaluation.metrics import binarize, confusion, soft_dice

LOG_NAMES = ["accuracy", "dice", "precision", "sensitivity", "specificity", "iou", "mean_iou", "soft_dice"]


def _expected(prob: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The NumPy metrics of all pixels at once, under the Keras metrics' names."""
    return confusion(binarize(prob), truth).metrics() | {"soft_dice": soft_dice(prob, truth)}


def _data(seed: int = 0, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prob = rng.random((n, 8, 8, 1)).astype(np.float32)
    truth = (rng.random((n, 8, 8, 1)) < 0.4).astype(np.float32)
    return prob, truth


def _results(metrics: list[keras.metrics.Metric]) -> dict[str, float]:
    """What Keras logs: each figure under its own name."""
    return {name: float(value) for name, value in metric_results(metrics).items()}


def test_factory_names_and_serialization():
    metrics = segmentation_metrics(threshold=0.3)
    assert list(_results(metrics)) == LOG_NAMES
    for metric in [*metrics, OverlapMetric("iou", 0.3)]:
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(clone) is type(metric)
        assert clone.get_config() == metric.get_config()
    assert metrics[0].get_config()["threshold"] == 0.3
    with pytest.raises(ValueError, match="unknown metric"):
        OverlapMetric("hausdorff")
    with pytest.raises(ValueError, match="unknown metric"):
        ConfusionMetrics(["dice", "hausdorff"])


def test_one_set_of_counts_gives_every_figure():
    prob, truth = _data(seed=6)
    confusion = ConfusionMetrics()
    single = [OverlapMetric(name) for name in confusion.figures]
    assert len(confusion.variables) == 4
    for metric in [confusion, *single]:
        metric.update_state(truth, prob)
    assert {name: float(value) for name, value in confusion.result().items()} == _results(single)


def test_pooled_over_batches_equals_numpy():
    prob, truth = _data()
    prob[0, 0, 0, 0] = 0.5  # on the threshold: lesion, as binarize() counts it
    metrics = segmentation_metrics()
    for start in range(0, 6, 2):
        for metric in metrics:
            metric.update_state(truth[start : start + 2], prob[start : start + 2])
    expected = _expected(prob, truth)
    for name, value in _results(metrics).items():
        assert value == pytest.approx(expected[name], abs=1e-6), name

    for metric in metrics:
        metric.reset_state()
    truth_batch = truth[:1].astype(np.uint8)  # integer masks are accepted too
    for metric in metrics:
        metric.update_state(truth_batch, prob[:1])
    expected = _expected(prob[:1], truth[:1])
    for name, value in _results(metrics).items():
        assert value == pytest.approx(expected[name], abs=1e-6), name


def test_mean_iou_is_what_keras_mean_iou_reports():
    prob, truth = _data(seed=1)
    ours = OverlapMetric("mean_iou")
    ours.update_state(truth, prob)
    reference = keras.metrics.MeanIoU(num_classes=2)
    reference.update_state(truth.astype(int), binarize(prob).astype(int))
    assert float(ours.result()) == pytest.approx(float(reference.result()), abs=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_predictions(dtype):
    prob, truth = _data(seed=2)
    low = keras.ops.cast(prob, dtype)
    metrics = segmentation_metrics()
    for metric in metrics:
        metric.update_state(truth, low)
    expected = _expected(keras.ops.convert_to_numpy(keras.ops.cast(low, "float32")), truth)
    for name, value in _results(metrics).items():
        assert value == pytest.approx(expected[name], abs=1e-5), name


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [
        (
            0,
            0,
            {"dice": 1, "precision": 1, "sensitivity": 1, "specificity": 1, "iou": 1, "mean_iou": 1, "soft_dice": 1},
        ),
        (0, 1, {"dice": 0, "precision": 0, "sensitivity": 0, "iou": 0, "soft_dice": 0}),
        (1, 0, {"dice": 0, "precision": 0, "sensitivity": 0, "specificity": 0, "iou": 0}),
    ],
    ids=["both empty", "prediction empty", "truth empty"],
)
def test_empty_mask_policy_matches_numpy(pred, truth, expected):
    shape = (2, 4, 4, 1)
    prob, mask = np.full(shape, float(pred), np.float32), np.full(shape, truth, np.float32)
    metrics = segmentation_metrics()
    for metric in metrics:
        metric.update_state(mask, prob)
    results = _results(metrics)
    numpy_results = _expected(prob, mask)
    for name, value in expected.items():
        assert results[name] == pytest.approx(value), name
        assert numpy_results[name] == pytest.approx(value), name


def test_sample_weight_zero_leaves_an_image_out():
    prob, truth = _data(seed=3, n=3)
    weighted = segmentation_metrics()
    for metric in weighted:
        metric.update_state(truth, prob, sample_weight=np.array([1.0, 0.0, 1.0]))
    expected = _expected(prob[[0, 2]], truth[[0, 2]])
    for name, value in _results(weighted).items():
        assert value == pytest.approx(expected[name], abs=1e-6), name


def test_update_inside_an_xla_compiled_step():
    prob, truth = _data(seed=4)
    metrics = [OverlapMetric("dice"), SoftDice()]

    @tf.function(jit_compile=True)
    def step(y_true, y_pred):
        for metric in metrics:
            metric.update_state(y_true, y_pred)

    step(truth[:3], prob[:3])
    step(truth[3:], prob[3:])
    expected = _expected(prob, truth)
    assert float(metrics[0].result()) == pytest.approx(expected["dice"], abs=1e-6)
    assert float(metrics[1].result()) == pytest.approx(expected["soft_dice"], abs=1e-6)


def test_compiled_model_logs_and_evaluates_under_jit():
    images, truth = _data(seed=5, n=8)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=segmentation_metrics(), jit_compile=True)
    history = model.fit(images, truth, batch_size=4, epochs=1, validation_data=(images, truth), verbose=0)
    assert {*LOG_NAMES, *(f"val_{name}" for name in LOG_NAMES)} <= set(history.history)

    logs = model.evaluate(images, truth, batch_size=3, return_dict=True, verbose=0)
    expected = _expected(model.predict(images, batch_size=3, verbose=0), truth)
    for name in LOG_NAMES:
        assert logs[name] == pytest.approx(expected[name], abs=1e-5), name


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from rdanet_gan.evaluation.keras_metrics import segmentation_metrics
    rng = np.random.default_rng(0)
    x = rng.random((8, 8, 8, 1)).astype("float32")
    y = (rng.random((8, 8, 8, 1)) < 0.4).astype("float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")])
        model.compile(loss="binary_crossentropy", metrics=segmentation_metrics())
    logs = model.evaluate(x, y, batch_size=4, return_dict=True, verbose=0)
    np.save("prob.npy", model.predict(x, verbose=0))
    np.save("truth.npy", y)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "logs": {k: float(v) for k, v in logs.items()}}))
    """
)


def test_counts_are_summed_across_mirrored_replicas(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    expected = _expected(np.load(tmp_path / "prob.npy"), np.load(tmp_path / "truth.npy"))
    for name in LOG_NAMES:
        assert report["logs"][name] == pytest.approx(expected[name], abs=1e-5), name
