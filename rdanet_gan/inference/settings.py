"""Inference settings: how a probability map becomes a mask, and ``NAME.inference.json``, which keeps them
beside ``NAME.keras`` (chosen on the validation split by :mod:`rdanet_gan.evaluation.calibration`)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rdanet_gan.errors import DataError
from rdanet_gan.inference.refine import binarize, clean_mask


@dataclass(frozen=True)
class InferenceSettings:
    """How a probability map becomes a mask: threshold, flip TTA, post-processing, presence level (above
    ``threshold``, it empties the mask of a scan whose peak probability stays below it, as a network that
    hesitates everywhere on a scan has most likely found nothing there; 0: never)."""

    threshold: float = 0.5
    flip_tta: bool = False
    postprocess: bool = False
    presence: float = 0.0

    def mask(self, probability: np.ndarray, peak: float | None = None) -> np.ndarray:
        """The lesion mask of one 2-D probability map (flip-averaged already when ``flip_tta``); ``peak``: the
        map's highest probability at the network's size, for a map resized from there (presence is decided on it)."""
        mask = binarize(probability, self.threshold)
        if self.postprocess:
            mask = clean_mask(mask)
        if self.presence and (float(np.max(probability)) if peak is None else peak) < self.presence:
            mask = np.zeros_like(mask)
        return mask

    def describe(self) -> str:
        """The settings in words, as ``segment`` and ``evaluate`` print them."""
        refinements = [name for name, on in (("flip TTA", self.flip_tta), ("post-processing", self.postprocess)) if on]
        presence = [f"a lesion only where the peak probability reaches {self.presence:g}"] if self.presence else []
        return ", ".join([f"threshold {self.threshold:.2f}", *refinements, *presence])


def settings_problem(settings: InferenceSettings) -> tuple[str, str] | None:
    """The field of ``settings`` out of its range and why (threshold in (0, 1), presence in [0, 1)), or None."""
    if not 0.0 < settings.threshold < 1.0:
        return "threshold", "must be between 0 and 1"
    if not 0.0 <= settings.presence < 1.0:
        return "presence", "must be at least 0 and below 1"
    return None


def inference_file(model_path: str | os.PathLike) -> Path:
    """Where the settings of ``NAME.keras`` live: ``NAME.inference.json`` beside it."""
    return Path(model_path).with_suffix(".inference.json")


def read_inference(model_path: str | os.PathLike) -> InferenceSettings | None:
    """The recorded settings of a model, or None when it has none."""
    path = inference_file(model_path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        fields = float(record["threshold"]), bool(record["flip_tta"]), bool(record["postprocess"])
        settings = InferenceSettings(*fields, float(record.get("presence", 0.0)))  # older files: no presence level
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DataError(path, f"not an inference-settings file ({type(error).__name__}: {error}); delete or rewrite it")
    problem = settings_problem(settings)
    if problem:
        raise DataError(path, f"{problem[0]} {getattr(settings, problem[0])} {problem[1]}")
    return settings


def model_settings(model_path: str | os.PathLike, **options: float | bool | None) -> tuple[InferenceSettings, str]:
    """A model's recorded settings (the defaults where it has none) with the ``options`` that are not None
    in their place, and where they come from, in words."""
    chosen = {name: value for name, value in options.items() if value is not None}
    recorded = read_inference(model_path)
    source = f"recorded in {inference_file(model_path)}" if recorded else "the defaults"
    settings = dataclasses.replace(recorded or InferenceSettings(), **chosen)
    return settings, source + (", with options given" if chosen else "")
