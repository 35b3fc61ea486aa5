"""Training options beyond the paper: deep supervision and the plateau schedule, end to end on phantoms."""

from __future__ import annotations

import keras
import pytest

from rdanet_gan.data import prepare_data
from rdanet_gan.training import TrainConfig, train
from rdanet_gan.training.trainer import build_segmenter

SIZE = 32


@pytest.fixture(scope="module")
def phantoms():
    return prepare_data("phantom", image_size=SIZE, seed=0)


def tiny(model: str, epochs: int = 1, **overrides) -> TrainConfig:
    settings = {"model": model, "data": "phantom", "epochs": epochs, "batch_size": 8, "image_size": SIZE, "base_width": 4}
    return TrainConfig(**{**settings, "precision": "float32", "jit": "off", "seed": 3, **overrides})


def test_deep_supervision_trains_side_heads_and_saves_the_plain_network(tmp_path, phantoms):
    result = train(tiny("rdau-net", epochs=2, deep_supervision=True, learning_rate=1e-3), tmp_path / "run", data=phantoms, verbose=0)
    assert {"loss", "side_loss", "val_loss", "val_dice"} <= set(result.history[-1])
    assert "val_side_loss" not in result.history[-1]
    assert result.history[-1]["side_loss"] < result.history[0]["side_loss"]
    saved = keras.models.load_model(result.final_model, safe_mode=True)
    assert len(saved.outputs) == 1
    assert not any(layer.name.endswith("_side") for layer in saved.layers)
    plain = build_segmenter(tiny("rdau-net"))
    assert saved.count_params() == plain.count_params()


def test_plateau_schedule_puts_the_learning_rate_under_a_callback(tmp_path, phantoms):
    """ReduceLROnPlateau logs the rate it controls; a constant-rate run has no such column."""
    plateau = train(tiny("unet", epochs=1, lr_schedule="plateau"), tmp_path / "plateau", data=phantoms, verbose=0)
    assert plateau.history[-1]["learning_rate"] == pytest.approx(1e-4)
    constant = train(tiny("unet", epochs=1), tmp_path / "constant", data=phantoms, verbose=0)
    assert "learning_rate" not in constant.history[-1]
