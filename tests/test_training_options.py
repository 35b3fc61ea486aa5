"""Training options beyond the paper: deep supervision, the plateau schedule (and its resume) and
re-estimated BatchNorm statistics, end to end on phantoms."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rdanet_gan.data import prepare_data
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.models import build_unet
from rdanet_gan.training import DeeplySupervised, TrainConfig, train
from rdanet_gan.training.batchnorm import reestimate_batchnorm
from rdanet_gan.training.build import build_segmenter
from rdanet_gan.training.callbacks import MetricsLogger, ResumablePlateau

SIZE = 32


@pytest.fixture(scope="module")
def phantoms():
    return prepare_data("phantom", image_size=SIZE, seed=0)


def tiny(model: str, epochs: int = 1, **overrides) -> TrainConfig:
    settings = {"model": model, "data": "phantom", "epochs": epochs, "batch_size": 8, "image_size": SIZE, "base_width": 4}
    return TrainConfig(**{**settings, "precision": "float32", "jit": "off", "seed": 3, **overrides})


def test_deep_supervision_trains_side_heads_and_saves_the_plain_network(tmp_path, phantoms):
    result = train(tiny("unet", epochs=2, deep_supervision=True, learning_rate=1e-3), tmp_path / "run", data=phantoms, verbose=0)
    assert {"loss", "side_loss", "val_loss", "val_dice"} <= set(result.history[-1])
    assert "val_side_loss" not in result.history[-1]
    assert result.history[-1]["side_loss"] < result.history[0]["side_loss"]
    saved = keras.models.load_model(result.final_model, safe_mode=True)
    assert len(saved.outputs) == 1
    assert not any(layer.name.endswith("_side") for layer in saved.layers)
    assert saved.count_params() == build_segmenter(tiny("unet")).count_params()


@pytest.mark.parametrize("model", ["rdau-net", "unet"])
def test_side_heads_sit_on_three_decoder_levels_and_predict_at_full_size(model):
    segmenter = build_segmenter(tiny(model))
    wrapped = DeeplySupervised(segmenter)
    assert [segmenter.decoder_outputs[level].shape[1] for level in (2, 3, 4)] == [SIZE // 2, SIZE // 4, SIZE // 8]
    outputs = wrapped(np.zeros((2, SIZE, SIZE, 1), np.float32))
    sides = [outputs[f"dec{level}_side"] for level in (2, 3, 4)]
    assert [tuple(side.shape) for side in sides] == [(2, SIZE, SIZE, 1)] * 3
    assert tuple(outputs["mask"].shape) == (2, SIZE, SIZE, 1)
    assert list(wrapped.side_weights.values()) == [0.5, 0.25, 0.125]
    assert wrapped.output_weights["mask"] == 1.0


def test_side_heads_follow_the_decoder_levels_not_layer_names():
    """A renamed U-Net of depth 2 has one coarse level (2) to supervise; one of depth 1 has none."""
    shallow = build_unet(input_shape=(16, 16, 1), base_width=2, depth=2, name="renamed")
    wrapped = DeeplySupervised(shallow)
    assert sorted(wrapped.output_names) == ["dec2_side", "mask"] and wrapped.side_weights == {"dec2_side": 0.5}
    with pytest.raises(ValueError, match="no decoder level"):
        DeeplySupervised(build_unet(input_shape=(16, 16, 1), base_width=2, depth=1))


def test_plateau_schedule_puts_the_learning_rate_under_a_callback(tmp_path, phantoms):
    """ReduceLROnPlateau logs the rate it controls (a constant-rate run's log has no such column)."""
    plateau = train(tiny("unet", epochs=1, lr_schedule="plateau"), tmp_path / "plateau", data=phantoms, verbose=0)
    assert plateau.history[-1]["learning_rate"] == pytest.approx(1e-4)


def _rates_under_plateau(callback, log, val_dice, epochs, learning_rate=1e-3):
    """Drive ``callback`` (and its log) by hand over ``epochs``; the learning rate after each."""
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch in epochs:
        for step in (log, callback):
            step.on_epoch_begin(epoch)
        for step in (callback, log):
            step.on_epoch_end(epoch, {"val_dice": val_dice[epoch]})
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    return rates


def test_the_plateau_schedule_halves_a_resumed_run_when_an_uninterrupted_one_would(tmp_path):
    # Patience 2: the Dice peaks in epoch 2, so the rate halves after epochs 4 and 6.
    val_dice = [0.5, 0.6, 0.55, 0.58, 0.57, 0.56]
    options = {"monitor": "val_dice", "mode": "max", "factor": 0.5, "patience": 2, "min_lr": 1e-6}

    def plateau(name, kind=ResumablePlateau):
        log = MetricsLogger(tmp_path / f"{name}.csv", tmp_path / f"{name}.json")
        return (kind(log, 1e-3, **options) if kind is ResumablePlateau else kind(**options)), log

    uninterrupted = _rates_under_plateau(*plateau("whole"), val_dice, range(6))
    assert uninterrupted == pytest.approx([1e-3] * 3 + [5e-4] * 2 + [2.5e-4])
    # Killed after epoch 3; BackupAndRestore brings back the weights and the rate, but not the counters.
    killed = _rates_under_plateau(*plateau("resumed"), val_dice, range(3))
    resumed = _rates_under_plateau(*plateau("resumed"), val_dice, range(3, 6), learning_rate=killed[-1])
    assert killed + resumed == pytest.approx(uninterrupted)
    forgetful = _rates_under_plateau(
        *plateau("forgetful", keras.callbacks.ReduceLROnPlateau), val_dice, range(3, 6), learning_rate=killed[-1]
    )
    assert forgetful != pytest.approx(uninterrupted[3:])  # Keras's own callback starts counting again


def _moving_statistics(model: keras.Model) -> list[np.ndarray]:
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    return [keras.ops.convert_to_numpy(v) for layer in norms for v in (layer.moving_mean, layer.moving_variance)]


def test_reestimated_statistics_are_the_size_weighted_mean_of_batch_statistics_with_dropout_off():
    inputs = keras.Input((4, 4, 2))
    outputs = keras.layers.BatchNormalization(momentum=0.99)(keras.layers.Dropout(0.5)(inputs))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).normal(3.0, 2.0, (10, 4, 4, 2)).astype("float32")
    assert reestimate_batchnorm(model, images, batch_size=4) == 1  # batches of 4, 4 and 2 scans
    batches = [images[:4], images[4:8], images[8:]]
    mean = sum(len(b) * b.mean(axis=(0, 1, 2)) for b in batches) / 10
    variance = sum(len(b) * b.var(axis=(0, 1, 2)) for b in batches) / 10
    moving_mean, moving_variance = _moving_statistics(model)
    np.testing.assert_allclose(moving_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(moving_variance, variance, rtol=1e-4)  # no dropout noise: the inputs' own spread
    assert model.layers[2].momentum == 0.99 and model.layers[1].rate == 0.5  # both restored
    plain = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    assert reestimate_batchnorm(plain, images) == 0


def test_training_with_reestimated_statistics_saves_them_in_both_checkpoints(tmp_path, phantoms):
    result = train(tiny("unet", epochs=1, bn_reestimate=True), tmp_path / "run", data=phantoms, verbose=0)
    summary = (result.run_dir / "summary.json").read_text()
    assert '"bn_reestimated_layers"' in summary
    for path in (result.final_model, result.best_model):
        saved = load_segmenter(path)
        again = keras.models.clone_model(saved)
        again.set_weights(saved.get_weights())
        reestimate_batchnorm(again, phantoms.train.images, batch_size=8)  # what train did: the same statistics
        for a, b in zip(_moving_statistics(saved), _moving_statistics(again)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
