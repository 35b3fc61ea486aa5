"""The ``train`` entry point: run directory, resume, reproducibility, divergence guard."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from rdanet_gan.data import prepare_data
from rdanet_gan.errors import RdanetError
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.training import TrainConfig, TrainingDivergedError, train
from rdanet_gan.training.build import build_segmenter, initial_segmenter, learning_rate, player_steps
from rdanet_gan.training.run_folder import prepare_run_dir
from rdanet_gan.training.trainer import mode_agreement, same_weights

SIZE = 32


@pytest.fixture(scope="module")
def phantoms():
    return prepare_data("phantom", image_size=SIZE, seed=0)


def tiny(model: str = "rdanet-gan", epochs: int = 3, **overrides) -> TrainConfig:
    settings = {"model": model, "data": "phantom", "epochs": epochs, "batch_size": 8, "image_size": SIZE, "base_width": 4, "precision": "float32", "jit": "off"}
    return TrainConfig(**{**settings, "seed": 3, **overrides})


class Interrupt(keras.callbacks.Callback):
    """Simulate a crash in the middle of an epoch (after that epoch's first step)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch
        self.current = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch:
            raise KeyboardInterrupt


def weights_of(path) -> list[np.ndarray]:
    return load_segmenter(path).get_weights()


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, phantoms):
    """The GAN run is the hardest case (two optimizers, a step counter); a supervised run
    resumed after SIGKILL is tested in test_resume.py."""
    model = "rdanet-gan"
    straight = train(tiny(model, epochs=2), tmp_path / "straight", data=phantoms, verbose=0)
    check_run_directory(straight)

    with pytest.raises(KeyboardInterrupt):
        train(tiny(model, epochs=2), tmp_path / "resumed", data=phantoms, verbose=0, callbacks=[Interrupt(epoch=1)])
    assert not (tmp_path / "resumed" / "final.keras").exists()
    resumed = train(tiny(model, epochs=2), tmp_path / "resumed", resume=True, data=phantoms, verbose=0)

    for a, b in zip(weights_of(straight.final_model), weights_of(resumed.final_model)):
        np.testing.assert_array_equal(a, b)
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    # both optimizers' states survived the resume
    gan_straight = keras.models.load_model(straight.run_dir / "gan.keras")
    gan_resumed = keras.models.load_model(resumed.run_dir / "gan.keras")
    assert int(gan_resumed.d_optimizer.iterations) == int(gan_straight.d_optimizer.iterations) > 0
    assert int(gan_resumed.g_optimizer.iterations) == int(gan_straight.g_optimizer.iterations) > 0


def check_run_directory(result):
    names = {p.name for p in result.run_dir.iterdir()}
    expected = {"config.json", "split.json", "log.csv", "log.json", "best.keras", "final.keras", "gan.keras"}
    assert expected | {"summary.json", "curves.png", "backup"} <= names
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["settings"]["model"] == "rdanet-gan" and config["precision_policy"] == "float32"
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert 0.0 <= summary["val_dice_inference_mode"] <= 1.0
    assert {"val_dice", "d_loss", "g_loss", "seconds"} <= set(result.history[-1])
    final = keras.models.load_model(result.final_model, safe_mode=True)
    assert final.output_shape == (None, SIZE, SIZE, 1)


def test_existing_run_is_not_overwritten_without_resume(tmp_path, phantoms):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"settings": {"model": "segnet"}}))
    with pytest.raises(RdanetError, match="--resume"):
        train(tiny("segnet", epochs=1), tmp_path / "run", data=phantoms, verbose=0)
    with pytest.raises(RdanetError, match="no run to resume"):
        train(tiny("segnet", epochs=1), tmp_path / "other", resume=True, data=phantoms, verbose=0)


class PoisonWeights(keras.callbacks.Callback):
    """Turn a weight of the generator's output layer into NaN at the start of the given epoch.

    The output layer: an earlier NaN may not reach the loss, as a ReLU maps NaN to 0 on some
    CPUs (AVX-512 max instructions return the non-NaN operand).
    """

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            network = getattr(self.model, "generator", self.model)
            weight = network.trainable_variables[-1]
            weight.assign(np.full(weight.shape, np.nan, dtype="float32"))


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, phantoms):
    run = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match="epoch 2.*became nan"):
        train(tiny("unet", epochs=2), run, data=phantoms, verbose=0, callbacks=[PoisonWeights(epoch=1)])
    assert all(np.isfinite(w).all() for w in weights_of(run / "best.keras"))
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    assert [row["epoch"] for row in json.loads((run / "log.json").read_text())] == [1]


def test_a_fresh_run_refuses_a_folder_with_files_of_another_run(tmp_path, phantoms):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "split.json").write_text("{}")  # e.g. left by a start that failed
    with pytest.raises(RdanetError, match="holds split.json but no config.json"):
        train(tiny("segnet", epochs=1), tmp_path / "run", data=phantoms, verbose=0)


def test_a_resume_keeps_the_run_settings_and_names_the_options_it_ignores(tmp_path):
    stored = tiny("unet", epochs=1, data="/old/place")
    (tmp_path / "config.json").write_text(json.dumps({"settings": dataclasses.asdict(stored)}))
    asked = tiny("unet", epochs=2, base_width=8, data="/new/place")
    with pytest.warns(UserWarning, match=r"keeps its settings; ignored: base_width 8 \(the run's: 4\)$"):
        resumed = prepare_run_dir(tmp_path, asked, resume=True)
    # More epochs and a moved dataset are taken (the split stays the run's own split.json).
    assert resumed == dataclasses.replace(stored, epochs=2, data="/new/place")


def test_a_generator_start_of_another_width_names_the_file(tmp_path, phantoms):
    other = tmp_path / "wide.keras"
    build_segmenter(tiny("rdau-net", base_width=8)).save(other)
    with pytest.raises(RdanetError, match=f"{other}: its .* network does not fit this "):
        train(tiny(epochs=1, init_weights=str(other)), tmp_path / "gan", data=phantoms, verbose=0)


def test_a_run_resumes_after_its_starting_file_is_gone(tmp_path, phantoms):
    start = tmp_path / "start.keras"
    build_segmenter(tiny("unet")).save(start)
    config = tiny("unet", epochs=1, init_weights=str(start))
    train(config, tmp_path / "run", data=phantoms, verbose=0)
    start.unlink()  # moved or deleted once the run began: the backup holds everything a resume needs
    result = train(dataclasses.replace(config, epochs=2), tmp_path / "run", resume=True, data=phantoms, verbose=0)
    assert [row["epoch"] for row in result.history] == [1, 2]


def test_training_in_mixed_precision_gives_the_caller_back_its_policy(tmp_path, phantoms):
    train(tiny("unet", epochs=1, precision="mixed_bfloat16"), tmp_path / "run", data=phantoms, verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # a model built next is float32 again


def test_the_gan_trains_under_xla_after_a_deterministic_run(tmp_path, phantoms):
    """XLA is the ``auto`` setting on CPUs without AVX-512 and on GPUs: Algorithm 1's step compiles and learns,
    also after a run without XLA in the same process (which switched op determinism on, where Keras refuses XLA);
    the caller's determinism comes back afterwards."""
    tf.config.experimental.enable_op_determinism()  # as a run with --jit off left it
    try:
        result = train(tiny(epochs=1, jit="on"), tmp_path / "run", data=phantoms, verbose=0)
        assert json.loads((result.run_dir / "config.json").read_text())["jit_compile"] is True
        assert all(np.isfinite(result.history[-1][key]) for key in ("d_loss", "g_loss", "val_dice"))
        assert tf_config.is_op_determinism_enabled()
    finally:
        tf_config.disable_op_determinism()  # the worker's later tests get the process as they found it


def test_each_gan_player_decays_its_rate_over_its_own_steps():
    assert player_steps(tiny(schedule="epoch"), 12) == (12.0, 12.0)  # sigma critic, then sigma generator steps
    assert player_steps(tiny(schedule="interleaved", n_critic=5), 12) == (10.0, 2.0)
    config = tiny(epochs=2, schedule="interleaved", lr_schedule="cosine", learning_rate=1e-3)
    generator = learning_rate(config, player_steps(config, 12)[1])
    assert float(generator(2)) == pytest.approx(5e-4) and float(generator(4)) == pytest.approx(0.0, abs=1e-9)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    config = tiny("rdau-net", epochs=5, lr_schedule="cosine", warmup_epochs=1, learning_rate=1e-3)
    schedule = learning_rate(config, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 5, 10, 30, 50)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(5e-4) and rates[2] == pytest.approx(1e-3)
    assert 0.0 < rates[3] < 1e-3 and rates[4] == pytest.approx(0.0, abs=1e-9)
    assert learning_rate(tiny("rdau-net"), steps_per_epoch=10) == 1e-4
    with pytest.raises(ValueError, match="lr_schedule"):
        tiny("rdau-net", lr_schedule="step")


def test_norm_option_replaces_batch_normalisation():
    layers = build_segmenter(tiny("rdau-net", norm="group")).layers
    kinds = {type(layer).__name__ for layer in layers}
    assert "GroupNormalization" in kinds and "BatchNormalization" not in kinds


def test_recipes_set_options_and_explicit_options_win():
    paper = TrainConfig.from_recipe("paper", model="rdau-net")
    assert (paper.recipe, paper.augmentation, paper.lr_schedule, paper.deep_supervision) == ("paper", "paper", "constant", False)
    assert TrainConfig.from_recipe("paper", augmentation="strong").augmentation == "strong"
    assert TrainConfig.from_recipe().recipe == "default"
    with pytest.raises(ValueError, match="recipe must be one of paper, default"):
        TrainConfig.from_recipe("fancy")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "rdanet-gan", "lr_schedule": "plateau"}, "plateau"),
        ({"model": "segnet", "deep_supervision": True}, "deep_supervision"),
        ({"model": "unet", "augmentation": "flip,warp"}, "unknown augmentation 'warp'"),
        ({"model": "segnet", "norm": "group"}, "SegNet is defined with batch normalisation"),
        # Sizes the networks cannot halve often enough fail before a scan is decoded.
        ({"model": "rdau-net", "image_size": 100}, "rdau-net: input height and width must be multiples of 32"),
        ({"model": "unet", "image_size": 40}, "unet: input height and width must be multiples of 16"),
        ({"model": "rdanet-gan", "image_size": 48}, "rdau-net: .*multiples of 32"),
        ({"model": "unet", "max_false_alarms": 1.0}, "max_false_alarms must be at least 0 and below 1"),
        ({"model": "unet", "init_weights": "best.tflite"}, "best.tflite: a LiteRT export holds no trainable weights"),
    ],
)
def test_settings_that_do_not_apply_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def test_a_run_from_before_augmentation_presets_resumes_with_its_augmentation(tmp_path):
    settings = {"model": "rdau-net", "epochs": 50, "augment": True}
    (tmp_path / "config.json").write_text(json.dumps({"settings": settings}))
    assert TrainConfig.from_json(tmp_path / "config.json").augmentation == "standard"
    (tmp_path / "config.json").write_text(json.dumps({"settings": {**settings, "augment": False}}))
    assert TrainConfig.from_json(tmp_path / "config.json").augmentation == "none"


def test_a_run_from_before_init_weights_resumes_from_its_generator_start(tmp_path):
    settings = {"model": "rdanet-gan", "epochs": 50, "init_generator": "runs/rdau-net/best.keras"}
    (tmp_path / "config.json").write_text(json.dumps({"settings": settings}))
    assert TrainConfig.from_json(tmp_path / "config.json").init_weights == "runs/rdau-net/best.keras"


def test_a_network_starts_from_a_saved_one_at_a_larger_input_size(tmp_path):
    start = build_segmenter(tiny("unet"))
    start.save(tmp_path / "start.keras")
    larger = initial_segmenter(tiny("unet", image_size=2 * SIZE, init_weights=str(tmp_path / "start.keras")))
    assert larger.input_shape == (None, 2 * SIZE, 2 * SIZE, 1)
    assert all(np.array_equal(a, b) for a, b in zip(larger.get_weights(), start.get_weights(), strict=True))
    fresh = initial_segmenter(tiny("unet", image_size=2 * SIZE))
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), start.get_weights(), strict=True))


def test_same_weights_tells_a_copy_from_a_changed_network():
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    assert same_weights(model, copy)
    copy.set_weights([w + 1e-7 for w in model.get_weights()])
    assert not same_weights(model, copy)


def test_the_training_mode_check_leaves_the_batchnorm_statistics_as_they_were(phantoms):
    network = build_segmenter(tiny("rdau-net"))  # 32 BatchNorm layers, which a training-mode call updates
    before = network.get_weights()
    agreement = mode_agreement(network, phantoms.validation.images, phantoms.validation.masks, batch_size=4)
    assert set(agreement) == {"val_dice_inference_mode", "val_dice_training_mode"}
    assert all(np.array_equal(a, b) for a, b in zip(before, network.get_weights()))


def test_training_imports_no_plotting():
    """The figures are drawn at the end of a run, by a lazy import: training code loads without Matplotlib.
    (Keras imports Matplotlib itself when it can, so the check blocks it rather than looking for it.)"""
    code = (
        "import importlib.abc, sys\n"
        "class NoMatplotlib(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoMatplotlib())\n"
        "import rdanet_gan.training.trainer, rdanet_gan.training.build, rdanet_gan.reproduce\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' or m.endswith('.figures')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1:] == ["[]"]
