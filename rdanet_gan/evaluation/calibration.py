"""Inference settings chosen on the validation split, and kept beside the model they suit.

Flip test-time augmentation, a tuned threshold and post-processing each help
some networks and hurt others (see ``benchmarks/results/ablation.md``), so
they are chosen per model: :func:`choose_inference` scores five settings on
the validation scans with a lesion (pooled Dice), then the presence level on
all validation scans (per-image Dice: this is where lesion-free validation
scans, ``rdanet-gan split --validation-normal N``, teach it to say "no
lesion"). :func:`write_inference` records the result as
``NAME.inference.json`` beside ``NAME.keras``. ``rdanet-gan train`` writes one
for ``best.keras`` and ``final.keras``; ``segment`` and ``evaluate`` apply it
unless told otherwise. The test split is never read here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rdanet_gan.data import ArraySet
from rdanet_gan.errors import DataError
from rdanet_gan.evaluation.evaluate import score_probability_maps
from rdanet_gan.evaluation.scoring import Evaluation, predict_probabilities
from rdanet_gan.fileio import write_json
from rdanet_gan.postprocess import (
    InferenceSettings,
    PresenceScore,
    choose_presence,
    choose_threshold,
    predict_with_flips,
    score_presence,
)

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


@dataclass
class Calibration:
    """The validation scores of every candidate setting and the best of them.

    ``evaluations`` score the :data:`SETTINGS` on the validation scans with a
    lesion; ``presence`` maps each presence level tried to how it does on
    all ``validation_scans``, ``lesion_free_scans`` of them without a lesion;
    ``max_false_alarms`` is the false-alarm target the level was chosen for
    (None: the best per-image Dice).
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
            return "the best per-image Dice over all validation scans"
        return f"the lowest level flagging at most {self.max_false_alarms * 100:g} % of the lesion-free validation scans"

    def validation_dice(self) -> dict[str, float]:
        """Pooled validation Dice of each candidate setting."""
        return {name: evaluation.pooled["dice"] for name, evaluation in self.evaluations.items()}


def choose_inference(
    model: keras.Model, validation: ArraySet, batch_size: int = 32, max_false_alarms: float | None = None
) -> Calibration:
    """Score the :data:`SETTINGS` on the ``validation`` scans with a lesion (pooled Dice; the best wins, ties
    to the simpler), then choose the presence level on all of them (:func:`~rdanet_gan.postprocess.choose_presence`,
    for ``max_false_alarms`` when given)."""
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
            probabilities,
            lesions,
            ids=[ids[index] for index in with_lesion],
            threshold=candidates[name].threshold,
            postprocess=setting["postprocess"],
        )
    chosen = max(SETTINGS, key=lambda name: evaluations[name].pooled["dice"])  # the first of equals: simpler
    by_level = score_presence(maps[candidates[chosen].flip_tta], truths, candidates[chosen])
    settings = dataclasses.replace(candidates[chosen], presence=choose_presence(by_level, max_false_alarms))
    return Calibration(
        chosen, settings, evaluations, by_level, len(truths), len(truths) - len(with_lesion), max_false_alarms
    )


def validation_problem(validation: ArraySet, max_false_alarms: float | None = None) -> str | None:
    """Why :func:`choose_inference` cannot calibrate on ``validation`` (for ``max_false_alarms``), or None."""
    has_lesion = validation.masks.any(axis=(1, 2, 3))
    if not has_lesion.any():
        return "the validation list holds no scan with a lesion: nothing to validate on"
    if max_false_alarms is not None and has_lesion.all():
        return "a false-alarm target needs lesion-free validation scans (rdanet-gan split --validation-normal N)"
    return None


def inference_file(model_path: str | os.PathLike) -> Path:
    """Where the settings of ``NAME.keras`` live: ``NAME.inference.json`` beside it."""
    return Path(model_path).with_suffix(".inference.json")


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


def read_inference(model_path: str | os.PathLike) -> InferenceSettings | None:
    """The recorded settings of a model, or None when it has none."""
    path = inference_file(model_path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        settings = InferenceSettings(
            threshold=float(record["threshold"]),
            flip_tta=bool(record["flip_tta"]),
            postprocess=bool(record["postprocess"]),
            presence=float(record.get("presence", 0.0)),  # files written before the presence level: none
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DataError(path, f"not an inference-settings file ({type(error).__name__}: {error}); delete or rewrite it")
    problem = settings_problem(settings)
    if problem:
        raise DataError(path, f"{problem[0]} {getattr(settings, problem[0])} {problem[1]}")
    return settings


def settings_problem(settings: InferenceSettings) -> tuple[str, str] | None:
    """The field of ``settings`` out of its range and why (threshold in (0, 1), presence in [0, 1)), or None."""
    if not 0.0 < settings.threshold < 1.0:
        return "threshold", "must be between 0 and 1"
    if not 0.0 <= settings.presence < 1.0:
        return "presence", "must be at least 0 and below 1"
    return None
