"""Ensembles of segmenters (``rdanet_gan.models.build_ensemble``): the mean of the members' logits."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import rdanet_gan  # noqa: F401 - registers the package's Keras objects, as a user's script would
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.models import build_ensemble, build_model, build_rdau_net, build_unet
from rdanet_gan.models.blocks import sigmoid_mask_layer

SIZE = 32


@pytest.fixture(scope="module")
def members() -> list[keras.Model]:
    keras.utils.set_random_seed(0)
    return [
        build_rdau_net(input_shape=(SIZE, SIZE, 1), base_width=4, name="first"),
        build_unet(input_shape=(SIZE, SIZE, 1), base_width=4, name="second"),
    ]


@pytest.fixture(scope="module")
def scans() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(3, SIZE, SIZE, 1)).astype("float32")


def logits(model: keras.Model, scans: np.ndarray) -> np.ndarray:
    return keras.Model(model.input, sigmoid_mask_layer(model).input)(scans, training=False).numpy()


def test_the_ensemble_is_the_sigmoid_of_the_mean_logit(members, scans):
    expected = 1 / (1 + np.exp(-np.mean([logits(member, scans) for member in members], axis=0)))
    ensemble = build_ensemble(members)
    np.testing.assert_allclose(ensemble.predict(scans, verbose=0), expected, atol=1e-5)
    assert sigmoid_mask_layer(ensemble) is not None  # a segmenter like one network: calibrate, export, presence head


def test_a_saved_ensemble_loads_in_safe_mode_and_predicts_the_same(members, scans, tmp_path):
    ensemble = build_ensemble(members)
    ensemble.save(tmp_path / "ensemble.keras")
    loaded = load_segmenter(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(loaded.predict(scans, verbose=0), ensemble.predict(scans, verbose=0), atol=1e-6)


def test_members_must_be_segmenters_on_one_input_shape(members):
    with pytest.raises(ValueError, match="at least two"):
        build_ensemble(members[:1])
    other = build_model("unet", input_shape=(2 * SIZE, 2 * SIZE, 1), base_width=4)
    with pytest.raises(ValueError, match="member 1"):
        build_ensemble([members[0], other])
    critic = build_model("critic", input_shape=(SIZE, SIZE, 2), base_width=4)
    with pytest.raises(ValueError, match="no sigmoid output layer 'mask'"):
        build_ensemble([critic, members[0]])
