"""Inference settings chosen on the validation split, and kept beside the model they suit.

Flip test-time augmentation, a tuned threshold (:func:`choose_threshold`) and
post-processing each help some networks and hurt others (see
``benchmarks/results/ablation.md``), so they are chosen per model:
:func:`choose_inference` scores five settings on the validation scans with a
lesion (pooled Dice), then the presence level (:func:`score_presence`,
:func:`choose_presence`) as an operating point on the lesion-free validation
scans (``rdanet-gan split --validation-normal N``): the level that keeps the
most lesions while flagging at most a stated fraction of them. :func:`write_inference` records the result as
``NAME.inference.json`` beside ``NAME.keras``. ``rdanet-gan train`` writes one
for ``best.keras`` and ``final.keras``; ``segment`` and ``evaluate`` apply it
(:func:`rdanet_gan.inference.settings.read_inference`) unless told otherwise.
The test split is never read here.
"""
from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from rdanet_gan.data import ArraySet
from rdanet_gan.evaluation.evaluate import score_probability_maps
from rdanet_gan.evaluation.metrics import Confusion, confusion
from rdanet_gan.evaluation.scoring import Evaluation
from rdanet_gan.fileio import write_json
from rdanet_gan.inference.predict import predict_probabilities, predict_with_flips
from rdanet_gan.inference.refine import binarize
from rdanet_gan.inference.settings import InferenceSettings, inference_file

if TYPE_CHECKING:
    import keras

SETTINGS = {
    "plain": {"flip_tta": False, "tune_threshold": False, "postprocess": False},
    "flip-tta": {"flip_tta": True, "tune_threshold": False, "postprocess": False},
    "threshold": {"flip_tta": False, "tune_threshold": True, "postprocess": False},
    "postprocess": {"flip_tta": False, "tune_threshold": False, "postprocess": True},
    "all": {"flip_tta": True, "tune_threshold": True, "postprocess": True},
}
"""The candidate settings: plain (threshold 0.5), each refinement alone, and all three."""


def choose_threshold(
    probabilities: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    candidates: Sequence[float] = tuple(np.round(np.arange(0.2, 0.71, 0.05), 2)),
) -> float:
    """The candidate threshold with the best pooled Dice on the given (validation) images. The grid starts at 0.2:
    two networks on BUSI chose 0.30 when it started there (``benchmarks/results/vgg16-hed.md``, ``wide-decoder.md``)."""

    def pooled_dice(threshold: float) -> float:
        return Confusion.pool(confusion(binarize(p, threshold), t) for p, t in zip(probabilities, truths)).dice()

    return max(candidates, key=pooled_dice)


def _levels_near_one(steps: Sequence[float] = (7, 5, 3, 2, 1.5, 1), digits: range = range(2, 7)) -> list[float]:
    """``1 - m 10^-k`` for each step m and k in ``digits``, except those ``:g`` cannot print exactly."""
    levels = [round(1 - step * 10.0**-k, k + 1) for k in digits for step in steps]
    return [level for level in levels if float(f"{level:g}") == level]


PRESENCE_LEVELS = (0.0, 0.6, 0.7, 0.8, 0.9, *_levels_near_one())
"""The presence levels :func:`choose_presence` tries; 0 is none. Above 0.9 they run from 0.93 to 1 - 1e-6
(a peak logit of 13.8, still well resolved by a float32 sigmoid) at most 0.7 apart as peak logits, mostly
0.3 to 0.5: a confident network's peaks on lesion-free scans lie between 0.999 and 1 - 1e-6, and the earlier
grid's steps there (0.9995 to 0.9999 is 1.6 logits) made the operating point flag fewer lesion-free scans
than allowed and empty lesions it could have kept (``benchmarks/results/presence-loss.md``). Each level
prints exactly with ``:g``, the form of the keys in settings files."""


class PresenceScore(NamedTuple):
    """How one presence level does on a set of scans."""

    dice_per_image: float
    """Mean per-image Dice over all scans (it depends on how many of them are lesion-free)."""
    lesion_dice_per_image: float
    """Mean per-image Dice over the scans with a lesion (NaN when there are none)."""
    lesion_free_flagged: float
    """Fraction of the lesion-free scans with a lesion predicted (NaN when there are none)."""


LESION_COST_WARNING = 0.05
"""Per-image Dice on the validation lesion scans that a chosen presence level may cost before it is warned of:
on BUSI a level chosen near the top of the grid (0.999995) cost 0.13 to 0.15 there, and on test reported no lesion on 21 to
34 of 57 lesion scans (``benchmarks/results/wide-decoder.md``)."""


def score_presence(
    probabilities: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    settings: InferenceSettings,
    levels: Sequence[float] = PRESENCE_LEVELS,
) -> dict[float, PresenceScore]:
    """How each presence level does on the given (validation) scans under ``settings``.

    Per-image Dice counts a lesion-free scan as 1 when nothing is predicted on
    it and 0 otherwise (the empty-mask policy of :mod:`rdanet_gan.evaluation.metrics`),
    so scans with and without a lesion weigh in by their number. Levels at or
    below the threshold change nothing and are skipped. A higher level only
    empties more masks, so lesion Dice and the flagged fraction both fall
    (or stay) as the level rises.
    """
    masks = [settings.mask(p) for p in probabilities]
    peaks = [float(np.max(p)) for p in probabilities]
    has_lesion = np.array([bool(truth.any()) for truth in truths])
    scores = {}
    for level in (level for level in levels if level == 0.0 or level > settings.threshold):
        kept = [mask if peak >= level else np.zeros_like(mask) for mask, peak in zip(masks, peaks)]
        dice = np.array([confusion(mask, truth).dice() for mask, truth in zip(kept, truths)])
        flagged = np.array([mask.any() for mask in kept])
        scores[float(level)] = PresenceScore(
            float(dice.mean()),
            float(dice[has_lesion].mean()) if has_lesion.any() else float("nan"),
            float(flagged[~has_lesion].mean()) if (~has_lesion).any() else float("nan"),
        )
    return scores


DEFAULT_MAX_FALSE_ALARMS = 0.2
"""The operating point when none is given: at most 20 % of the lesion-free validation scans flagged (the project's
false-alarm target for its shipped models). It replaced the best per-image Dice over all validation scans, a rule that depends on how many
of them are lesion-free (47 % on the default split, 17 % in BUSI) and chose levels near the top of the grid that
reported no lesion on 10 to 34 of the 57 test lesion scans (``benchmarks/results/presence-rule.md``)."""


def has_lesion_free(scores: dict[float, PresenceScore]) -> bool:
    """Whether the scans behind ``scores`` include lesion-free ones (else false alarms cannot be counted)."""
    return not any(math.isnan(score.lesion_free_flagged) for score in scores.values())


def choose_presence(scores: dict[float, PresenceScore], max_false_alarms: float | None = None) -> float:
    """The presence level to use, from the :func:`score_presence` of the validation scans: an operating point.

    The lowest level (the one that keeps the most lesions) that flags at most
    ``max_false_alarms`` (None: :data:`DEFAULT_MAX_FALSE_ALARMS`) of the
    lesion-free scans, or, when none does, the level that flags fewest. Without
    lesion-free scans there is nothing to count false alarms on: no level (0)
    when no target was given, a ValueError when one was.
    """
    if not has_lesion_free(scores):
        if max_false_alarms is None:
            return 0.0
        raise ValueError("a false-alarm target needs lesion-free scans")
    if max_false_alarms is None:
        max_false_alarms = DEFAULT_MAX_FALSE_ALARMS
    meeting = [level for level, score in scores.items() if score.lesion_free_flagged <= max_false_alarms]
    return min(meeting) if meeting else min(scores, key=lambda level: (scores[level].lesion_free_flagged, level))


@dataclass
class Calibration:
    """The validation scores of every candidate setting and the best of them.

    ``evaluations`` score the :data:`SETTINGS` on the validation scans with a
    lesion; ``presence`` maps each presence level tried to how it does on
    all ``validation_scans``, ``lesion_free_scans`` of them without a lesion;
    ``max_false_alarms`` is the false-alarm target the level was chosen for
    (None: no level, as no validation scan was lesion-free).
    """

    chosen: str
    settings: InferenceSettings
    evaluations: dict[str, Evaluation]
    presence: dict[float, PresenceScore]
    validation_scans: int
    lesion_free_scans: int
    max_false_alarms: float | None = None

    def presence_rule(self) -> str:
        """How the presence level was chosen, in words."""
        if self.max_false_alarms is None:
            return "none, no lesion-free validation scan to count false alarms on"
        return f"the lowest level flagging at most {self.max_false_alarms * 100:g} % of the lesion-free validation scans"

    def presence_warning(self) -> str | None:
        """One line when the presence level costs the validation lesion scans more than :data:`LESION_COST_WARNING`
        of per-image Dice (it then reports no lesion on some of them), else None."""
        level = self.settings.presence
        if not level or level not in self.presence or 0.0 not in self.presence:
            return None
        cost = self.presence[0.0].lesion_dice_per_image - self.presence[level].lesion_dice_per_image
        if not cost > LESION_COST_WARNING:
            return None
        advice = f"a --max-false-alarms above {self.max_false_alarms:g} keeps more lesions"
        return (
            f"presence level {level:g} lowers per-image Dice on the validation lesion scans from "
            f"{self.presence[0.0].lesion_dice_per_image:.3f} to {self.presence[level].lesion_dice_per_image:.3f}: "
            f"it reports no lesion on some of them, and may miss many more on new scans; {advice}"
        )

    def validation_dice(self) -> dict[str, float]:
        """Pooled validation Dice of each candidate setting."""
        return {name: evaluation.pooled["dice"] for name, evaluation in self.evaluations.items()}


def choose_inference(
    model: keras.Model, validation: ArraySet, batch_size: int = 32, max_false_alarms: float | None = None
) -> Calibration:
    """Score the :data:`SETTINGS` on the ``validation`` scans with a lesion (pooled Dice; the best wins, ties
    to the simpler), then choose the presence level on all of them (:func:`choose_presence`, for
    ``max_false_alarms``, by default :data:`DEFAULT_MAX_FALSE_ALARMS` where some are lesion-free). Warns when that level costs the lesion scans (:meth:`Calibration.presence_warning`)."""
    problem = validation_problem(validation, max_false_alarms)
    if problem:
        raise ValueError(problem)
    truths = [mask[..., 0] > 0.5 for mask in validation.masks]
    with_lesion = [index for index, truth in enumerate(truths) if truth.any()]
    ids = [record.case_id for record in validation.records] or [str(index) for index in range(len(truths))]
    maps = {  # by flip TTA: each setting only thresholds and cleans one of these
        False: list(predict_probabilities(model, validation.images, batch_size=batch_size)[..., 0]),
        True: list(predict_with_flips(model, validation.images, batch_size=batch_size)[..., 0]),
    }
    evaluations, candidates = {}, {}
    for name, setting in SETTINGS.items():
        probabilities = [maps[setting["flip_tta"]][index] for index in with_lesion]
        lesions = [truths[index] for index in with_lesion]
        threshold = choose_threshold(probabilities, lesions) if setting["tune_threshold"] else 0.5
        candidates[name] = InferenceSettings(float(threshold), setting["flip_tta"], setting["postprocess"])
        evaluations[name] = score_probability_maps(
            probabilities, lesions, ids=[ids[index] for index in with_lesion], settings=candidates[name]
        )
    chosen = max(SETTINGS, key=lambda name: evaluations[name].pooled["dice"])  # the first of equals: simpler
    by_level = score_presence(maps[candidates[chosen].flip_tta], truths, candidates[chosen])
    settings = dataclasses.replace(candidates[chosen], presence=choose_presence(by_level, max_false_alarms))
    if max_false_alarms is None and has_lesion_free(by_level):
        max_false_alarms = DEFAULT_MAX_FALSE_ALARMS
    calibration = Calibration(
        chosen, settings, evaluations, by_level, len(truths), len(truths) - len(with_lesion), max_false_alarms
    )
    warning = calibration.presence_warning()
    if warning:
        warnings.warn(warning, stacklevel=2)
    return calibration


def validation_problem(validation: ArraySet, max_false_alarms: float | None = None) -> str | None:
    """Why :func:`choose_inference` cannot calibrate on ``validation`` (for ``max_false_alarms``), or None."""
    has_lesion = validation.masks.any(axis=(1, 2, 3))
    if not has_lesion.any():
        return "the validation list holds no scan with a lesion: nothing to validate on"
    if max_false_alarms is not None and has_lesion.all():
        return "a false-alarm target needs lesion-free validation scans (rdanet-gan split --validation-normal N)"
    return None


def write_inference(model_path: str | os.PathLike, calibration: Calibration, overwrite: bool = True) -> Path:
    """Record ``calibration`` beside the model it was chosen for; returns the file."""
    path = inference_file(model_path)
    write_json(
        path,
        {
            **asdict(calibration.settings),
            "chosen": calibration.chosen,
            "chosen_on": f"validation scans with a lesion, pooled Dice; presence level: {calibration.presence_rule()}",
            "max_false_alarms": calibration.max_false_alarms,
            "validation_dice": calibration.validation_dice(),
            "validation_scans": calibration.validation_scans,
            "validation_lesion_free_scans": calibration.lesion_free_scans,
            "validation_by_presence": {
                f"{level:g}": score._asdict()
                for level, score in calibration.presence.items()
            },
        },
        overwrite=overwrite,
    )
    return path
