"""The segmentation losses: values on hand-made masks, and the presence term's job."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from rdanet_gan.training import TrainConfig
from rdanet_gan.training.build import build_trainable
from rdanet_gan.training.losses import DiceBCELoss, pixel_bce, presence_bce, soft_dice_loss

SIZE = 8


def scans(peak: float) -> tuple[np.ndarray, np.ndarray]:
    """A lesion-free mask and a lesion mask, both predicted as 0.01 everywhere but one pixel at ``peak``."""
    masks = np.zeros((2, SIZE, SIZE, 1), np.float32)
    masks[1, 2:5, 2:5] = 1.0
    predictions = np.full((2, SIZE, SIZE, 1), 0.01, np.float32)
    predictions[:, 3, 3] = peak
    return masks, predictions


def test_presence_bce_scores_the_peak_probability_against_the_scan_label():
    masks, predictions = scans(0.9)
    np.testing.assert_allclose(presence_bce(masks, predictions), [-np.log(0.1), -np.log(0.9)], rtol=1e-5)


def test_the_presence_weight_adds_its_term_and_zero_is_the_paper_loss():
    masks, predictions = scans(0.9)
    paper = soft_dice_loss(masks, predictions) + pixel_bce(masks, predictions)
    np.testing.assert_allclose(DiceBCELoss().call(masks, predictions), paper, rtol=1e-6)
    with_presence = DiceBCELoss(presence_weight=0.5).call(masks, predictions)
    np.testing.assert_allclose(with_presence, paper + 0.5 * presence_bce(masks, predictions), rtol=1e-6)


def test_the_presence_weight_survives_serialisation():
    loss = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(DiceBCELoss(presence_weight=0.25)))
    assert isinstance(loss, DiceBCELoss) and loss.presence_weight == 0.25


def test_a_confident_false_lesion_gets_its_gradient_from_the_presence_term():
    """On a lesion-free scan the smoothed Dice is nearly flat once a false lesion is large, and the
    pixel mean thins its gradient over the scan: the presence term pushes the peak down far harder."""
    logits = np.full((1, 32, 32, 1), -4.0, np.float32)
    logits[0, 2:6, 2:6] = 2.0  # a 16-pixel false lesion on a lesion-free scan, peaking at one pixel
    logits[0, 3, 3] = 3.0
    logits = tf.Variable(logits)

    def peak_gradient(loss: DiceBCELoss) -> float:
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(loss.call(np.zeros((1, 32, 32, 1), np.float32), tf.sigmoid(logits)))
        return float(tape.gradient(value, logits)[0, 3, 3, 0])

    assert peak_gradient(DiceBCELoss(presence_weight=1.0)) > 100 * peak_gradient(DiceBCELoss()) > 0


@pytest.mark.parametrize("model", ["rdau-net", "rdanet-gan"])
def test_train_compiles_the_presence_weight_into_the_segmentation_loss(model):
    config = TrainConfig(model=model, image_size=32, base_width=4, precision="float32", jit="off", presence_loss=0.5)
    trainable, _ = build_trainable(config, jit_compile=False)
    loss = trainable.segmentation_loss if model == "rdanet-gan" else trainable.loss
    assert loss.presence_weight == 0.5
