"""Packed model files: 8-bit kernels stored, float32 computed, loaded without code."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from rdanet_gan.errors import ModelFileError, OutputExistsError
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.models import build_critic, build_rdau_net
from rdanet_gan.models.packed import MIN_QUANTISED_SIZE, load_packed, pack_model, quantise


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(0)
    return build_rdau_net(input_shape=(32, 32, 1), base_width=4)


def test_quantise_keeps_each_slice_within_half_a_step():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 8, 5)).astype(np.float32)
    values, scales = quantise(kernel)
    assert values.dtype == np.int8 and scales.shape == (3, 3, 1, 5)
    assert np.abs(values).max() == 127  # the largest magnitude of a slice maps to 127
    assert np.all(np.abs(values * scales - kernel) <= scales / 2 + 1e-7)
    zero_values, zero_scales = quantise(np.zeros((3, 3, 2, 2), np.float32))
    assert not zero_values.any() and np.all(zero_scales == 1)


def test_packed_model_predicts_like_the_original(network, tmp_path):
    path = pack_model(network, tmp_path / "model.npz")
    loaded = load_packed(path)
    assert json.dumps(loaded.get_config()) == json.dumps(network.get_config())
    original, restored = network.get_weights(), loaded.get_weights()
    assert all(a.dtype == np.float32 and a.shape == b.shape for a, b in zip(restored, original))
    small = [a.ndim < 2 or a.size < MIN_QUANTISED_SIZE for a in original]
    assert all(np.array_equal(a, b) for a, b, kept in zip(restored, original, small) if kept)
    assert any(not np.array_equal(a, b) for a, b in zip(restored, original))  # the kernels were quantised
    scans = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    difference = np.abs(loaded.predict(scans, verbose=0) - network.predict(scans, verbose=0))
    assert 0 < difference.mean() < 0.005 and difference.max() < 0.05  # an untrained network: seeded, few values


def test_packed_file_is_a_quarter_of_float32(network, tmp_path):
    path = pack_model(network, tmp_path / "model.npz")
    float32_bytes = sum(weight.nbytes for weight in network.get_weights())
    assert path.stat().st_size < 0.35 * float32_bytes


def test_pack_refuses_to_overwrite_and_wrong_suffix(network, tmp_path):
    path = pack_model(network, tmp_path / "model.npz")
    with pytest.raises(OutputExistsError):
        pack_model(network, path)
    pack_model(network, path, overwrite=True)
    with pytest.raises(ValueError, match=r"ends in \.npz"):
        pack_model(network, tmp_path / "model.keras")


def test_damaged_or_foreign_files_fail_in_one_line(network, tmp_path):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(pack_model(network, tmp_path / "model.npz").read_bytes()[:5000])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    missing_weight = tmp_path / "missing.npz"
    with np.load(tmp_path / "model.npz") as stored:
        arrays = {name: stored[name] for name in stored.files if name != "weight_0"}
    np.savez(missing_weight, **arrays)
    for path, problem in [
        (truncated, "not a readable packed model"),
        (foreign, "no Keras config inside"),
        (missing_weight, "lacks weight 0 of "),
        (tmp_path / "absent.npz", "not a readable packed model"),
    ]:
        with pytest.raises(ModelFileError, match=problem) as error:
            load_packed(path)
        assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_code_in_the_config_is_refused(tmp_path):
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = tmp_path / "lambda.npz"
    np.savez(path, config=np.array(json.dumps(keras.saving.serialize_keras_object(model))))
    with pytest.raises(ModelFileError, match="cannot be loaded"):
        load_packed(path)


def test_segment_and_load_segmenter_take_a_packed_model(network, tmp_path):
    path = pack_model(network, tmp_path / "model.npz")
    assert load_segmenter(path).input_shape == (None, 32, 32, 1)
    critic = tmp_path / "critic.npz"
    pack_model(build_critic(input_shape=(32, 32, 2), base_width=4), critic)
    with pytest.raises(ModelFileError, match="not a segmenter"):
        load_segmenter(critic)
