"""Calibration on validation scans: the threshold, the presence level and the settings chosen for a model."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest

from rdanet_gan.evaluation.calibration import (
    DEFAULT_MAX_FALSE_ALARMS,
    PRESENCE_LEVELS,
    Calibration,
    choose_presence,
    choose_threshold,
    score_presence,
)
from rdanet_gan.inference.settings import InferenceSettings


def test_threshold_is_the_one_with_the_best_pooled_dice():
    truth = np.zeros((10, 10), bool)
    truth[:, :5] = True
    probability = np.where(truth, 0.45, 0.2)  # an under-confident model: 0.5 finds nothing
    assert choose_threshold([probability], [truth], candidates=(0.3, 0.5, 0.7)) == 0.3


def _scan(peak: float, lesion: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A 16x16 probability map whose 4x4 blob reaches ``peak``, and its truth (the blob, or nothing)."""
    probability = np.full((16, 16), 0.05)
    probability[4:8, 4:8] = peak
    truth = np.zeros((16, 16), bool)
    truth[4:8, 4:8] = lesion
    return probability, truth


def _presence_scores(scans, settings: InferenceSettings | None = None):
    return score_presence([p for p, _ in scans], [t for _, t in scans], settings or InferenceSettings())


def test_presence_level_trades_lesions_missed_against_false_alarms():
    # Two confident lesions, one hesitant lesion (peak 0.7) and three hesitant false alarms (peak 0.75):
    # dropping the scans under 0.8 loses one lesion and clears three lesion-free scans.
    scans = [_scan(0.99), _scan(0.97), _scan(0.7), *[_scan(0.75, lesion=False)] * 3]
    scores = _presence_scores(scans)
    assert choose_presence(scores) == 0.8 and scores[0.0].dice_per_image == 3 / 6 and scores[0.8].dice_per_image == 5 / 6
    assert scores[0.0][1:] == (1.0, 1.0) and scores[0.8][1:] == (2 / 3, 0.0)  # lesion Dice, lesion-free flagged
    assert min(scores) == 0.0 and all(level > 0.5 for level in scores if level)  # none, or above the threshold
    # Without lesion-free scans there are no false alarms to count: no level.
    assert choose_presence(_presence_scores(scans[:3])) == 0.0
    # Levels at or under the threshold change nothing and are not tried.
    assert all(level == 0.0 or level > 0.7 for level in _presence_scores(scans[:1], InferenceSettings(0.7)))


def test_a_presence_level_that_costs_the_validation_lesions_is_warned_of():
    # The scans above: level 0.8 drops the hesitant lesion, per-image lesion Dice 1.0 -> 2/3.
    scans = [_scan(0.99), _scan(0.97), _scan(0.7), *[_scan(0.75, lesion=False)] * 3]
    scores = _presence_scores(scans)

    def calibration(level: float, max_false_alarms: float | None = None) -> Calibration:
        return Calibration("plain", InferenceSettings(presence=level), {}, scores, len(scans), 3, max_false_alarms)

    assert "from 1.000 to 0.667" in calibration(0.8, 0.2).presence_warning()
    assert calibration(0.8, 0.1).presence_warning().endswith("a --max-false-alarms above 0.1 keeps more lesions")
    assert calibration(0.0).presence_warning() is None  # no level, no cost
    assert calibration(0.9, 0.2).presence_warning() is not None
    assert calibration(0.6, 0.2).presence_warning() is None  # under every lesion's peak: it drops none


def test_presence_levels_reach_past_0999_where_a_confident_network_saturates():
    # Lesions peak at 0.99999 and above, false alarms at 0.9995: a grid topped at 0.999 flags both.
    scans = [_scan(0.999999), _scan(0.99999), *[_scan(0.9995, lesion=False)] * 2]
    scores = _presence_scores(scans)
    level = choose_presence(scores)
    assert 0.9995 < level <= 0.99999 and scores[level][1:] == (1.0, 0.0)
    assert scores[0.999].lesion_free_flagged == 1.0


def test_presence_levels_near_one_are_close_enough_to_keep_a_lesion_just_above_a_false_alarm():
    # A false alarm peaking at 0.9996 and a lesion at 0.9998: 0.9997 clears one and keeps the other, where
    # the earlier grid's 0.9995 flagged the alarm and its 0.9999 emptied the lesion.
    scores = _presence_scores([_scan(0.9998), _scan(0.9996, lesion=False)])
    assert choose_presence(scores, max_false_alarms=0.0) == 0.9997 and scores[0.9997][1:] == (1.0, 0.0)
    logits = [math.log(level / (1 - level)) for level in PRESENCE_LEVELS if level > 0.9]
    assert max(b - a for a, b in itertools.pairwise(logits)) < 0.7 and PRESENCE_LEVELS[-1] == 0.999999
    assert all(float(f"{level:g}") == level for level in PRESENCE_LEVELS)  # settings files key levels by :g


def test_a_false_alarm_target_chooses_the_lowest_level_that_meets_it():
    # Four lesion-free scans whose false alarms peak at 0.65, 0.75, 0.85 and 0.97, and two lesions.
    scans = [_scan(0.99), _scan(0.92), *[_scan(peak, lesion=False) for peak in (0.65, 0.75, 0.85, 0.97)]]
    scores = _presence_scores(scans)
    assert [scores[level].lesion_free_flagged for level in (0.0, 0.7, 0.8, 0.9, 0.98)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert choose_presence(scores, max_false_alarms=0.5) == 0.8  # 0.7 flags three of four
    assert choose_presence(scores, max_false_alarms=0.25) == 0.9  # still keeps both lesions
    assert choose_presence(scores, max_false_alarms=0.0) == 0.98  # loses the lesion at 0.92
    assert choose_presence(scores, max_false_alarms=1.0) == 0.0
    assert choose_presence(scores) == choose_presence(scores, DEFAULT_MAX_FALSE_ALARMS) == 0.98  # 20 %: 0.9 flags 25 %
    # A target no level meets: the level that flags fewest, the lowest of equals.
    stubborn = _presence_scores([_scan(0.99), _scan(0.9999995, lesion=False)])
    assert choose_presence(stubborn, max_false_alarms=0.0) == 0.0
    with pytest.raises(ValueError, match="needs lesion-free scans"):
        choose_presence(_presence_scores(scans[:2]), max_false_alarms=0.1)


def test_choose_inference_scores_settings_on_lesion_scans_and_presence_on_all():
    from rdanet_gan.data import ArraySet, make_phantoms
    from rdanet_gan.evaluation.calibration import SETTINGS, choose_inference

    images, masks = make_phantoms(6, image_size=16, seed=3)
    lesions = ArraySet(images, masks, [], [])
    lesion_free = ArraySet(images[:2], np.zeros_like(masks[:2]), [], [])
    inputs = keras.Input((16, 16, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))
    alone, both = choose_inference(model, lesions), choose_inference(model, lesions + lesion_free)
    assert (alone.validation_scans, alone.lesion_free_scans, both.validation_scans, both.lesion_free_scans) == (6, 0, 8, 2)
    for name in SETTINGS:  # the refinements see the scans with a lesion only: the same either way
        assert len(both.evaluations[name].per_image) == 6
        assert both.evaluations[name].pooled == alone.evaluations[name].pooled
    assert both.chosen == alone.chosen and alone.settings.presence == 0.0
    assert all(np.isnan(score.lesion_free_flagged) for score in alone.presence.values())
    assert alone.max_false_alarms is None and "no lesion-free validation scan" in alone.presence_rule()
    assert both.max_false_alarms == DEFAULT_MAX_FALSE_ALARMS  # the default operating point, recorded
    assert both.settings.presence == choose_presence(both.presence, DEFAULT_MAX_FALSE_ALARMS)
    target = choose_inference(model, lesions + lesion_free, max_false_alarms=0.0)
    assert target.presence == both.presence and target.settings.presence == choose_presence(both.presence, 0.0)
    assert "at most 0 % of the lesion-free" in target.presence_rule()
    with pytest.raises(ValueError, match="needs lesion-free validation scans"):
        choose_inference(model, lesions, max_false_alarms=0.1)
