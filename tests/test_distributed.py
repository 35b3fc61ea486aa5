"""``fit`` under ``tf.distribute.MirroredStrategy`` on two logical CPU devices."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    from rdanet_gan.data import make_phantoms
    from rdanet_gan.models import build_model
    from rdanet_gan.training import RDANetGAN

    images, masks = make_phantoms(8, image_size=32, seed=0)

    def fit(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            # Small networks (fast to trace) without BatchNorm, whose per-replica batch
            # statistics would differ from one device's by design.
            inputs = keras.Input((32, 32, 1))
            x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
            x = keras.layers.GroupNormalization(groups=4)(x)
            generator = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(x))
            critic = build_model("critic", input_shape=(32, 32, 2), base_width=4, depth=2)
            gan = RDANetGAN(generator, critic, seed=0)
            gan.compile()
        dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(8)
        history = gan.fit(dataset, epochs=2, verbose=0).history
        return {key: [float(v) for v in values] for key, values in history.items()}

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(json.dumps({
        "replicas": mirrored.num_replicas_in_sync,
        "single": fit(tf.distribute.get_strategy()),
        "mirrored": fit(mirrored),
    }))
    """
)


def test_mirrored_fit_matches_single_device_losses():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    single, mirrored = report["single"], report["mirrored"]
    # Epoch 1: same data, same initial weights, global-batch loss scaling and the same
    # gradient-penalty draws, so the two agree up to float summation order. Later epochs
    # drift a little more: Adam divides each update by the gradient's running RMS, which
    # turns summation-order noise in near-zero gradients into full-size steps.
    for key in ("d_loss", "gp", "g_loss", "seg_loss", "dice"):
        assert mirrored[key][0] == pytest.approx(single[key][0], rel=2e-3, abs=1e-4), key
        assert mirrored[key][1] == pytest.approx(single[key][1], rel=5e-2, abs=1e-3), key


DEEP_SUPERVISION_SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    from rdanet_gan.data import make_phantoms
    from rdanet_gan.training.build import build_trainable
    from rdanet_gan.training.config import TrainConfig

    images, masks = make_phantoms(8, image_size=32, seed=0)
    # U-Net without normalisation: per-replica BatchNorm statistics would differ from one device's by design.
    config = TrainConfig(
        model="unet", image_size=32, base_width=4, batch_size=8, epochs=1, deep_supervision=True, precision="float32", jit="off"
    )

    def fit(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model, _ = build_trainable(config, jit_compile=False)
        dataset = model.targets(tf.data.Dataset.from_tensor_slices((images, masks)).batch(8))  # one batch
        history = model.fit(dataset, validation_data=dataset, epochs=1, verbose=0).history
        return {key: float(values[0]) for key, values in history.items()}

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(json.dumps({
        "replicas": mirrored.num_replicas_in_sync,
        "single": fit(tf.distribute.get_strategy()),
        "mirrored": fit(mirrored),
    }))
    """
)


def test_mirrored_deep_supervision_logs_the_single_device_losses():
    """Two replicas, one batch: the logged losses and metrics are those of one device, computed on the
    same initial weights (the former hand-written training step logged half the loss on two replicas)."""
    result = subprocess.run(
        [sys.executable, "-c", DEEP_SUPERVISION_SCRIPT], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    single, mirrored = report["single"], report["mirrored"]
    assert set(mirrored) == set(single)
    assert {"loss", "side_loss", "dice", "val_loss", "val_dice"} <= set(single) and "val_side_loss" not in single
    for key in ("loss", "side_loss", "dice", "soft_dice"):
        assert mirrored[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key
