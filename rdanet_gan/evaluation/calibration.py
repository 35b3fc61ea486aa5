"""Inference settings chosen on the validation split, and kept beside the model they suit.

Flip test-time augmentation, a tuned threshold and post-processing each help
some networks and hurt others (see ``benchmarks/results/ablation.md``), so
they are chosen per model: :func:`choose_inference` scores five settings on
the validation split and :func:`write_inference` records the best one as
``NAME.inference.json`` beside ``NAME.keras``. ``rdanet-gan train`` writes one
for ``best.keras`` and ``final.keras``; ``segment`` and ``evaluate`` apply it
unless told otherwise. The test split is never read here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import keras

from rdanet_gan.data import ArraySet
from rdanet_gan.errors import DataError
from rdanet_gan.evaluation.evaluate import score_probability_maps
from rdanet_gan.evaluation.scoring import Evaluation, predict_probabilities
from rdanet_gan.fileio import write_json
from rdanet_gan.postprocess import choose_threshold, predict_with_flips

SETTINGS = {
    "plain": {"flip_tta": False, "tune_threshold": False, "postprocess": False},
    "flip-tta": {"flip_tta": True, "tune_threshold": False, "postprocess": False},
    "threshold": {"flip_tta": False, "tune_threshold": True, "postprocess": False},
    "postprocess": {"flip_tta": False, "tune_threshold": False, "postprocess": True},
    "all": {"flip_tta": True, "tune_threshold": True, "postprocess": True},
}
"""The candidate settings: plain (threshold 0.5), each refinement alone, and all three."""


@dataclass(frozen=True)
class InferenceSettings:
    """How a probability map becomes a mask: threshold, flip TTA, post-processing."""

    threshold: float = 0.5
    flip_tta: bool = False
    postprocess: bool = False

    def describe(self) -> str:
        refinements = [name for name, on in (("flip TTA", self.flip_tta), ("post-processing", self.postprocess)) if on]
        return ", ".join([f"threshold {self.threshold:.2f}", *refinements])


@dataclass
class Calibration:
    """The validation scores of every candidate setting and the best of them."""

    chosen: str
    settings: InferenceSettings
    evaluations: dict[str, Evaluation]

    def validation_dice(self) -> dict[str, float]:
        return {name: evaluation.pooled["dice"] for name, evaluation in self.evaluations.items()}


def choose_inference(model: keras.Model, validation: ArraySet, batch_size: int = 32) -> Calibration:
    """Score the :data:`SETTINGS` on ``validation`` (pooled Dice); the best one wins, ties to the simpler."""
    truths = [mask[..., 0] > 0.5 for mask in validation.masks]
    ids = [record.case_id for record in validation.records] or None
    maps = {  # by flip TTA: each setting only thresholds and cleans one of these
        False: list(predict_probabilities(model, validation.images, batch_size=batch_size)[..., 0]),
        True: list(predict_with_flips(model, validation.images, batch_size=batch_size)[..., 0]),
    }
    evaluations, candidates = {}, {}
    for name, setting in SETTINGS.items():
        probabilities = maps[setting["flip_tta"]]
        threshold = choose_threshold(probabilities, truths) if setting["tune_threshold"] else 0.5
        candidates[name] = InferenceSettings(float(threshold), setting["flip_tta"], setting["postprocess"])
        evaluations[name] = score_probability_maps(
            probabilities, truths, ids=ids, threshold=candidates[name].threshold, postprocess=setting["postprocess"]
        )
    chosen = max(SETTINGS, key=lambda name: evaluations[name].pooled["dice"])  # the first of equals: simpler
    return Calibration(chosen, candidates[chosen], evaluations)


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
            "chosen_on": "validation split, pooled Dice",
            "validation_dice": calibration.validation_dice(),
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
            threshold=float(record["threshold"]), flip_tta=bool(record["flip_tta"]), postprocess=bool(record["postprocess"])
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DataError(path, f"not an inference-settings file ({type(error).__name__}: {error}); delete or rewrite it")
    if not 0.0 < settings.threshold < 1.0:
        raise DataError(path, f"threshold {settings.threshold} is not between 0 and 1")
    return settings
