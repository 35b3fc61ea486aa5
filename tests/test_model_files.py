"""Untrusted model files: safe-mode loading, one-line refusals, shipped weights checked against the manifest."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from rdanet_gan.cli import main
from rdanet_gan.errors import ModelFileError
from rdanet_gan.inference import model_files
from rdanet_gan.inference.model_files import load_segmenter, load_shipped, verify_shipped


def segmenter(size: int = 16) -> keras.Model:
    inputs = keras.Input((size, size, 1))
    return keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))


def with_config(source: Path, target: Path, edit) -> Path:
    """A copy of the ``.keras`` archive ``source`` whose config.json is changed by ``edit``."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            copy.writestr(item, data)
    return target


def rename_conv_class(config: dict) -> None:
    """Turn the Conv2D layer into a class that no code registers."""
    layer = config["config"]["layers"][1]
    layer.update(module=None, class_name="Sharpen", registered_name="Clinic>Sharpen")


def with_lambda(path: Path) -> Path:
    inputs = keras.Input((16, 16, 1))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)
    return path


def truncated(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


def corrupted(source: Path, target: Path) -> Path:
    """Flip bytes inside the stored weights: the archive still opens, a checksum fails."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        weights = archive.getinfo("model.weights.h5")
    start = weights.header_offset + 30 + len(weights.filename) + len(weights.extra) + weights.compress_size // 2
    data[start : start + 16] = bytes(b ^ 0xFF for b in data[start : start + 16])
    target.write_bytes(bytes(data))
    return target


def not_a_segmenter(path: Path) -> Path:
    inputs = keras.Input((5,))
    keras.Model(inputs, keras.layers.Dense(1)(inputs)).save(path)
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "good.keras"
    segmenter().save(path)
    return path


# Each row: how to make the bad file from a good one, and the problem its one-line refusal names.
BAD_MODELS = {
    "lambda": (lambda good, path: with_lambda(path), "refused: holds a Lambda layer (arbitrary Python code)"),
    "unregistered class": (
        lambda good, path: with_config(good, path, rename_conv_class),
        "refused: unknown class 'Sharpen' (not a Keras or rdanet_gan class; custom code is not loaded)",
    ),
    "truncated": (truncated, "not a readable .keras model archive (truncated or corrupted?)"),
    "corrupted": (corrupted, "corrupted .keras model archive (model.weights.h5 fails its checksum)"),
    "zero bytes": (lambda good, path: path.write_bytes(b""), "not a readable .keras model archive"),
    "zip without config": (
        lambda good, path: zipfile.ZipFile(path, "w").close(),
        "not a .keras model archive (no config.json inside)",
    ),
    "not a segmenter": (
        lambda good, path: not_a_segmenter(path),
        "not a segmenter: maps (None, 5) to (None, 1), expected (None, H, W, 1) to the same shape",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_MODELS))
def test_a_bad_model_file_is_refused_in_one_line(tmp_path, good, kind):
    make, problem = BAD_MODELS[kind]
    path = tmp_path / "bad.keras"
    make(good, path)
    with pytest.raises(ModelFileError) as caught:
        load_segmenter(path)
    assert str(caught.value).startswith(f"{path}: {problem}")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", ["lambda", "corrupted", "not a segmenter"])
def test_segment_with_a_bad_model_is_one_line_and_exit_2(tmp_path, good, capsys, kind):
    make, problem = BAD_MODELS[kind]
    model = make(good, tmp_path / "bad.keras")
    assert cv2.imwrite(str(tmp_path / "scan.png"), np.zeros((16, 16), np.uint8))
    assert main(["segment", str(tmp_path / "scan.png"), "--model", str(model), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"rdanet-gan segment: error: {model}: {problem}")
    assert not (tmp_path / "out").exists()


def test_the_lambda_refusal_is_safe_mode_not_a_load_failure(good, tmp_path):
    path = with_lambda(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        keras.models.load_model(path, safe_mode=True)
    assert keras.models.load_model(path, safe_mode=False).output_shape == (None, 16, 16, 1)  # a well-formed file


def test_a_good_model_loads(good):
    model = load_segmenter(good)
    assert model.input_shape == model.output_shape == (None, 16, 16, 1)


def test_a_file_with_plain_dilated_convolutions_loads_with_dilated_conv2d(tmp_path):
    from rdanet_gan.models.blocks import DilatedConv2D

    image = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, dilation_rate=16, padding="same", name="r16")(image)
    model = keras.Model(image, keras.layers.Activation("sigmoid", name="mask")(keras.layers.Conv2D(1, 1)(x)))
    model.save(tmp_path / "old.keras")
    loaded = load_segmenter(tmp_path / "old.keras")
    assert type(loaded.get_layer("r16")) is DilatedConv2D
    scans = np.random.default_rng(0).random((2, 16, 16, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(scans, verbose=0), model.predict(scans, verbose=0), atol=1e-6)


# Shipped weights: checked against their manifest before they are loaded.


@pytest.fixture
def shipped(tmp_path, good, monkeypatch) -> Path:
    """A weights folder holding ``good`` as the default model and its manifest entry."""
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setattr(model_files, "DEFAULT_MODEL", "default.keras")
    model = weights / model_files.DEFAULT_MODEL
    model.write_bytes(good.read_bytes())
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    (weights / "manifest.json").write_text(json.dumps({"files": {model.name: {"sha256": digest}}}))
    monkeypatch.setattr(model_files, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(model_files, "MANIFEST", weights / "manifest.json")
    return model


def test_verify_shipped_accepts_the_listed_hash(shipped):
    verify_shipped(shipped)
    assert load_shipped().output_shape == (None, 16, 16, 1)


def test_a_default_model_without_a_litert_export_runs_in_keras_and_litert_asked_is_one_clear_error(shipped):
    model, path = model_files.open_segmenter()  # no default.tflite beside it
    assert path == shipped and model.output_shape == (None, 16, 16, 1)
    with pytest.raises(ModelFileError, match=r"default\.tflite: the default model ships no LiteRT export; run it with --backend keras"):
        model_files.open_segmenter(backend="litert")


def test_verify_shipped_refuses_a_modified_file(shipped):
    with shipped.open("ab") as handle:
        handle.write(b"\0")  # still a loadable archive: only the hash can tell
    with pytest.raises(ModelFileError, match="SHA-256 differs from rdanet_gan/weights/manifest.json"):
        verify_shipped(shipped)
    with pytest.raises(ModelFileError, match="SHA-256 differs"):
        load_shipped()
    assert load_segmenter(shipped).output_shape == (None, 16, 16, 1)


def test_verify_shipped_refuses_an_unlisted_file(shipped):
    other = shipped.with_name("other.keras")
    other.write_bytes(shipped.read_bytes())
    with pytest.raises(ModelFileError, match="not listed in the weights manifest") as caught:
        verify_shipped(other)
    assert caught.value.path == str(other)


def test_segment_with_modified_shipped_weights_is_one_line_and_exit_2(shipped, tmp_path, capsys):
    shipped.write_bytes(shipped.read_bytes() + b"\0")
    assert cv2.imwrite(str(tmp_path / "scan.png"), np.zeros((16, 16), np.uint8))
    assert main(["segment", str(tmp_path / "scan.png"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"rdanet-gan segment: error: {shipped}: SHA-256 differs from rdanet_gan/weights/manifest.json (modified or corrupted file)"
    ]


def test_a_shipped_model_is_found_by_its_bare_name_and_checked_while_a_local_file_of_that_name_wins(shipped, good, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, path = model_files.open_segmenter("default.keras")  # no such file here: the shipped one
    assert path == shipped and model.output_shape == (None, 16, 16, 1)
    shipped.write_bytes(shipped.read_bytes() + b"\0")
    with pytest.raises(ModelFileError, match="SHA-256 differs"):
        model_files.open_segmenter("default.keras")
    (tmp_path / "default.keras").write_bytes(good.read_bytes())
    assert model_files.open_segmenter("default.keras")[1] == Path("default.keras")  # the user's own file
    with pytest.raises(ModelFileError, match="no such model file"):
        model_files.open_segmenter("elsewhere/default.keras")  # a path is a path
