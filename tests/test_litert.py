"""LiteRT exports (``rdanet_gan.inference.litert``, ``rdanet-gan export``): the converted network is the Keras one."""

from __future__ import annotations

import json

import cv2
import keras
import numpy as np
import pytest

from rdanet_gan.cli import main
from rdanet_gan.errors import ModelFileError
from rdanet_gan.inference import InferenceSettings, read_scan, segment_image
from rdanet_gan.inference.litert import LiteRTSegmenter, export_litert
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.models import build_model

SIZE = 32


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    """A small RDAU-Net whose BatchNorm statistics are not the initial ones (as after training), saved."""
    keras.config.set_dtype_policy("float32")  # whatever policy an earlier test in this worker left
    keras.utils.set_random_seed(3)
    model = build_model("rdau-net", input_shape=(SIZE, SIZE, 1), base_width=4)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            mean, variance = layer.moving_mean, layer.moving_variance
            mean.assign(np.random.default_rng(0).normal(0, 0.1, mean.shape).astype("float32"))
            variance.assign(np.random.default_rng(1).uniform(0.5, 2.0, variance.shape).astype("float32"))
    path = tmp_path_factory.mktemp("litert") / "tiny.keras"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def scans():
    return np.random.default_rng(4).random((7, SIZE, SIZE, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def float32_export(segmenter, tmp_path_factory):
    return export_litert(segmenter[0], tmp_path_factory.mktemp("export") / "tiny.tflite")


def test_a_float32_export_predicts_what_keras_predicts_in_any_batch_size(segmenter, float32_export, scans):
    export = load_segmenter(float32_export)
    assert isinstance(export, LiteRTSegmenter)
    assert export.input_shape == export.output_shape == (None, SIZE, SIZE, 1)
    reference = segmenter[0].predict(scans, verbose=0)
    for batch_size in (1, 3, 32):  # the interpreter is resized between batches of different sizes
        np.testing.assert_allclose(export.predict(scans, batch_size=batch_size), reference, atol=1e-5)
    assert export.predict(scans[:0]).shape == (0, SIZE, SIZE, 1)


def test_the_sigmoid_runs_outside_the_network_so_the_probability_tail_survives(segmenter, float32_export, scans):
    export = LiteRTSegmenter(float32_export)
    logits = keras.Model(segmenter[0].input, segmenter[0].get_layer("mask").input).predict(scans, verbose=0)
    np.testing.assert_allclose(export(scans), 1 / (1 + np.exp(-logits)), atol=1e-5)


def test_an_int8_export_calibrated_on_scans_stays_close_and_is_smaller(segmenter, float32_export, scans, tmp_path):
    # float16 storage is checked on the shipped model (tests/test_shipped_weights.py), against validation Dice.
    calibration = np.random.default_rng(5).random((16, SIZE, SIZE, 1), dtype=np.float32)
    path = export_litert(segmenter[0], tmp_path / "int8.tflite", "int8", calibration=calibration)
    assert path.stat().st_size < 0.5 * float32_export.stat().st_size
    difference = np.abs(LiteRTSegmenter(path).predict(scans) - segmenter[0].predict(scans, verbose=0))
    assert difference.max() < 0.2


def test_export_refuses_what_it_cannot_export(segmenter, tmp_path):
    with pytest.raises(ValueError, match="calibration"):
        export_litert(segmenter[0], tmp_path / "a.tflite", "int8")
    with pytest.raises(ValueError, match="quantization"):
        export_litert(segmenter[0], tmp_path / "a.tflite", "int4")
    inputs = keras.Input((SIZE, SIZE, 1))
    plain = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    with pytest.raises(ModelFileError, match="no sigmoid output layer named 'mask'"):
        export_litert(plain, tmp_path / "a.tflite")
    assert not (tmp_path / "a.tflite").exists()


def test_loading_refuses_files_that_are_not_exports_in_one_line(tmp_path):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flat buffer" * 10)
    with pytest.raises(ModelFileError) as error:
        load_segmenter(garbage)
    assert str(error.value).startswith(f"{garbage}: not a readable LiteRT model") and "\n" not in str(error.value)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_segmenter(tmp_path / "missing.tflite")


def test_export_command_writes_the_file_with_the_model_settings_and_never_overwrites(segmenter, tmp_path, capsys):
    source = segmenter[1]
    folder = tmp_path / "model"
    folder.mkdir()
    keras_file = folder / "tiny.keras"
    keras_file.write_bytes(source.read_bytes())
    settings = {"threshold": 0.4, "flip_tta": True, "postprocess": False, "presence": 0.0}
    (folder / "tiny.inference.json").write_text(json.dumps(settings))
    out = tmp_path / "exported" / "fast.tflite"
    assert main(["export", str(keras_file), "--out", str(out)]) == 0
    assert "largest probability difference from Keras" in capsys.readouterr().out
    assert json.loads((tmp_path / "exported" / "fast.inference.json").read_text()) == settings
    before = out.read_bytes()
    assert main(["export", str(keras_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before
    for argv, message in [
        (["--quantization", "int8"], "needs --data and --split"),
        (["--out", str(tmp_path / "x.keras")], "a LiteRT file ends in .tflite"),
        (["--data", "phantom"], "calibrate --quantization int8 only"),
    ]:
        assert main(["export", str(keras_file), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_segment_runs_an_export_as_it_runs_the_keras_model(segmenter, float32_export, tmp_path, capsys):
    scan_path = tmp_path / "scan.png"
    cv2.imwrite(str(scan_path), np.random.default_rng(6).integers(0, 255, (45, 70), dtype=np.uint8))
    out = tmp_path / "masks"
    assert main(["segment", str(scan_path), "--model", str(float32_export), "--out", str(out), "--flip-tta"]) == 0
    written = cv2.imread(str(out / "scan_mask.png"), cv2.IMREAD_UNCHANGED) > 0
    expected = segment_image(segmenter[0], read_scan(scan_path), InferenceSettings(flip_tta=True))
    assert np.mean(written == expected) > 0.995  # a pixel whose probability sits on the threshold may differ
    capsys.readouterr()
    assert main(["segment", str(scan_path), "--model", str(float32_export), "--backend", "keras", "--out", str(out)]) == 2
    assert "--backend chooses how the shipped model runs" in capsys.readouterr().err


def test_without_ai_edge_litert_tensorflows_interpreter_runs_the_export_quietly(float32_export, scans, monkeypatch):
    import builtins
    import warnings

    real_import = builtins.__import__

    def no_litert(name, *args, **kwargs):
        if name.startswith("ai_edge_litert"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    with_litert = LiteRTSegmenter(float32_export).predict(scans)
    monkeypatch.setattr(builtins, "__import__", no_litert)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # TensorFlow's deprecation notice would fail here
        np.testing.assert_allclose(LiteRTSegmenter(float32_export).predict(scans), with_litert, atol=1e-6)


def test_a_network_litert_cannot_convert_is_refused_in_one_line_naming_the_file(tmp_path, capsys):
    keras.config.set_dtype_policy("float32")
    path = tmp_path / "segnet.keras"
    build_model("segnet", input_shape=(SIZE, SIZE, 1), base_width=4).save(path)  # its pooling switches use BitwiseAnd
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rdanet-gan export: error: {path}: LiteRT cannot convert this network (no LiteRT kernel for BitwiseAnd)"
    assert not (tmp_path / "segnet.tflite").exists()
