"""Prediction's refinements: flip TTA, mask clean-up and the presence level (``rdanet_gan.inference``)."""

from __future__ import annotations

import keras
import numpy as np

from rdanet_gan.inference.predict import predict_probability, predict_with_flips
from rdanet_gan.inference.refine import clean_mask, fill_holes, keep_largest_component
from rdanet_gan.inference.settings import InferenceSettings


def test_largest_component_keeps_the_biggest_region_only():
    mask = np.zeros((20, 20), bool)
    mask[2:10, 2:10] = True  # 64 pixels
    mask[15:17, 15:17] = True  # 4 pixels
    kept = keep_largest_component(mask)
    assert kept.sum() == 64 and not kept[15:17, 15:17].any()
    assert not keep_largest_component(np.zeros((5, 5), bool)).any()


def test_holes_inside_the_lesion_are_filled_but_the_outside_is_not():
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7] = True
    ring[4, 4] = False
    filled = fill_holes(ring)
    assert filled[4, 4] and filled.sum() == 25
    assert clean_mask(ring).sum() == 25


def test_clean_mask_drops_a_region_too_small_to_be_a_lesion():
    speck = np.zeros((128, 128), bool)
    speck[10:13, 10:15] = True  # 15 pixels, under 0.1 % of the scan
    assert not clean_mask(speck).any()
    speck[10:14, 10:14] = True  # 19 pixels: above 0.1 % (16.4 pixels)
    assert clean_mask(speck).sum() == speck.sum()
    assert clean_mask(speck, min_fraction=0.01).sum() == 0


def test_flip_tta_averages_the_scan_and_its_mirror():
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))
    images = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    expected = (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)[:, :, ::-1]) / 2
    np.testing.assert_allclose(predict_with_flips(model, images), expected, atol=1e-6)


def test_single_scan_flip_tta_matches_the_batch_version():
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))
    image = np.random.default_rng(1).random((8, 8)).astype("float32")
    expected = predict_with_flips(model, image[None, ..., None])[0, ..., 0]
    np.testing.assert_allclose(predict_probability(model, image, flip_tta=True), expected, atol=1e-6)
    assert not np.allclose(predict_probability(model, image), expected, atol=1e-6)


def test_presence_level_empties_scans_whose_peak_stays_below_it():
    probability = np.full((16, 16), 0.05)
    probability[4:8, 4:8] = 0.8  # a 4x4 lesion peaking at 0.8
    assert InferenceSettings().mask(probability).sum() == 16
    assert InferenceSettings(presence=0.8).mask(probability).sum() == 16  # reached: kept
    assert not InferenceSettings(presence=0.9).mask(probability).any()
    # A map resized from the network's size is judged by its peak there (resizing can lower it).
    assert InferenceSettings(presence=0.9).mask(probability, peak=0.95).sum() == 16
    assert InferenceSettings(presence=0.9).describe() == "threshold 0.50, a lesion only where the peak probability reaches 0.9"
