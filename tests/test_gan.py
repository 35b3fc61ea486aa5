"""RDA-NET-GAN training (Algorithm 1): phases, schedule, penalty, resume, saving."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from rdanet_gan.data import make_phantoms
from rdanet_gan.models import build_model
from rdanet_gan.training import RDANetGAN, gradient_penalty

SIZE = 32


def small_generator() -> keras.Model:
    """A few layers, BatchNorm among them (its statistics must not move in the critic phase).

    The GAN's logic does not depend on the generator's architecture, and a small
    network traces in a fraction of RDAU-Net's time; tests/test_trainer.py
    trains the real RDAU-Net generator.
    """
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32")(x))


def tiny_gan(schedule: str = "epoch", seed: int = 0) -> RDANetGAN:
    keras.utils.set_random_seed(seed)
    generator = small_generator()
    critic = build_model("critic", input_shape=(SIZE, SIZE, 2), base_width=4, depth=2)
    gan = RDANetGAN(generator, critic, schedule=schedule, n_critic=2, seed=seed)
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3))
    return gan


def phantom_dataset(n: int = 12, batch_size: int = 4) -> tf.data.Dataset:
    images, masks = make_phantoms(n, image_size=SIZE, seed=1)
    return tf.data.Dataset.from_tensor_slices((images, masks)).batch(batch_size)


def snapshot(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def changed(before: list[np.ndarray], model: keras.Model) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_each_phase_freezes_the_other_player():
    gan = tiny_gan()
    gan.critic_steps.assign(1)
    gan.generator_steps.assign(1)
    batch = next(iter(phantom_dataset()))

    generator_before, critic_before = snapshot(gan.generator), snapshot(gan.critic)
    assert gan.is_critic_step()
    gan.train_step(batch)
    assert not changed(generator_before, gan.generator), "critic phase moved a generator weight or BN statistic"
    assert changed(critic_before, gan.critic)

    generator_before, critic_before = snapshot(gan.generator), snapshot(gan.critic)
    assert not gan.is_critic_step()
    gan.train_step(batch)
    assert not changed(critic_before, gan.critic), "generator phase moved a critic weight"
    assert changed(generator_before, gan.generator)


class OptimizerSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps: list[tuple[int, int]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append((int(self.model.d_optimizer.iterations), int(self.model.g_optimizer.iterations)))


def test_epoch_schedule_runs_sigma_critic_then_sigma_generator_steps():
    gan = tiny_gan(schedule="epoch")
    recorder = OptimizerSteps()
    gan.fit(phantom_dataset(n=12, batch_size=4), epochs=2, callbacks=[recorder], verbose=0)  # sigma = 3
    one_epoch = [(1, 0), (2, 0), (3, 0), (3, 1), (3, 2), (3, 3)]
    assert recorder.steps == one_epoch + [(d + 3, g + 3) for d, g in one_epoch]


class StepLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.keys: list[set[str]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.keys.append(set(logs))


def test_critic_half_reports_only_critic_terms_and_the_epoch_logs_everything():
    """No generator metric is shown before the generator has run that epoch (it would read 1.0, nothing counted)."""
    gan = tiny_gan(schedule="epoch")
    recorder = StepLogs()
    history = gan.fit(phantom_dataset(n=8, batch_size=4), epochs=1, callbacks=[recorder], verbose=0)  # sigma = 2
    assert recorder.keys[0] == recorder.keys[1] == {"d_loss", "wasserstein", "gp"}
    assert {"d_loss", "g_loss", "seg_loss", "dice"} <= recorder.keys[2] == recorder.keys[3]
    assert {"d_loss", "g_loss", "dice"} <= set(history.history)


def test_interleaved_schedule_runs_n_critic_steps_per_generator_step():
    gan = tiny_gan(schedule="interleaved")  # n_critic = 2
    recorder = OptimizerSteps()
    gan.fit(phantom_dataset(n=12, batch_size=4), epochs=2, callbacks=[recorder], verbose=0)
    assert recorder.steps == [(1, 0), (2, 0), (2, 1), (3, 1), (4, 1), (4, 2)]


def test_gradient_penalty_vanishes_for_a_1_lipschitz_critic_and_stays_finite_at_zero_gradient():
    inputs = keras.Input((8, 8, 2))
    critic = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(keras.layers.Flatten()(inputs)))
    rng = np.random.default_rng(0)
    w = rng.normal(size=(128, 1)).astype("float32")
    critic.set_weights([w / np.linalg.norm(w)])  # a linear map with unit-norm gradient everywhere
    real = tf.constant(rng.random((4, 8, 8, 2)), tf.float32)
    fake = tf.constant(rng.random((4, 8, 8, 2)), tf.float32)
    alpha = tf.constant(rng.random((4, 1, 1, 1)), tf.float32)
    # (1 - |g|)^2 with |g| = 1 up to float32 arithmetic (1.5e-8 seen with oneDNN's AVX-512 kernels)
    assert float(gradient_penalty(critic, real, fake, alpha)) == pytest.approx(0.0, abs=1e-6)

    critic.set_weights([np.zeros_like(w)])  # zero gradient: the norm's own gradient must not be NaN
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(critic, real, fake, alpha)
    grads = tape.gradient(penalty, critic.trainable_variables)
    assert float(penalty) == pytest.approx(1.0, abs=1e-5)
    assert all(np.isfinite(g.numpy()).all() for g in grads)


def test_losses_fall_on_phantoms_and_validation_is_logged():
    gan = tiny_gan()
    dataset = phantom_dataset(n=16, batch_size=4)
    history = gan.fit(dataset, epochs=12, validation_data=phantom_dataset(4), verbose=0).history
    assert history["seg_loss"][-1] < 0.8 * history["seg_loss"][0]
    assert all(math.isfinite(v) for key in ("d_loss", "g_loss", "gp") for v in history[key])
    assert {"val_dice", "val_precision", "val_sensitivity", "val_specificity", "val_seg_loss"} <= set(history)
    json.dumps(history)


def test_evaluate_and_predict_use_the_generator_in_inference_mode():
    gan = tiny_gan()
    dataset = phantom_dataset(n=8, batch_size=4)
    results = gan.evaluate(dataset, return_dict=True, verbose=0)
    assert {"dice", "precision", "sensitivity", "specificity", "iou", "mean_iou", "seg_loss"} <= set(results)
    images = next(iter(dataset))[0]
    np.testing.assert_allclose(gan.predict(images, verbose=0), gan.generator(images, training=False), atol=1e-6)


def test_whole_gan_round_trips_through_keras_file_and_keeps_training(tmp_path):
    gan = tiny_gan()
    dataset = phantom_dataset(n=8, batch_size=4)
    gan.fit(dataset, epochs=1, verbose=0)
    path = tmp_path / "gan.keras"
    gan.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, RDANetGAN)
    assert int(loaded.d_optimizer.iterations) == int(gan.d_optimizer.iterations) == 2
    assert int(loaded.g_optimizer.iterations) == 2
    assert int(loaded.step_counter) == 4
    images = next(iter(dataset))[0]
    np.testing.assert_allclose(loaded.predict(images, verbose=0), gan.predict(images, verbose=0), atol=1e-6)
    loaded.fit(dataset, epochs=1, verbose=0)
    assert int(loaded.g_optimizer.iterations) == 4


def test_compile_config_keeps_loss_weights(tmp_path):
    gan = tiny_gan()
    gan.compile(adversarial_weight=0.5, gp_weight=3.0)
    gan.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert (loaded.adversarial_weight, loaded.gp_weight) == (0.5, 3.0)


def test_weight_clipping_bounds_the_critic():
    gan = tiny_gan()
    gan.compile(gp_weight=0.0, clip_value=0.01)
    gan.fit(phantom_dataset(n=8, batch_size=4), epochs=1, verbose=0)
    assert max(float(np.abs(w).max()) for w in gan.critic.get_weights()) <= 0.01 + 1e-7
