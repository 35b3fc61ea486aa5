"""Presence signals compared on the validation split at the package's operating point (issue 19).

    python benchmarks/presence_crossfit.py --model MODEL --data BUSI_DIR --split SPLIT [--repeats 20]

A scan is reported lesion-free when its presence score stays below a level; the level is the lowest that
flags at most 20 % of the lesion-free validation scans (``calibration.DEFAULT_MAX_FALSE_ALARMS``, the package's
rule). Four scores, each on the 94 validation scans of the default split, the masks made under the model's own
settings (``NAME.inference.json``; its presence level ignored):

* ``peak``: the highest pixel probability (what ``segment`` uses);
* ``head, fitted on training``: ``rdanet-gan presence-head``'s regression on the pooled deepest encoder
  features, fitted on the training scans (which the network has learned, so their features are cleaner than a
  new scan's);
* ``head, cross-fitted on validation``: the same regression fitted on validation scans, each scored by a fit
  that did not see it (stratified 5-fold, repeated with new folds; figures are means over repeats);
* ``mask statistics, cross-fitted``: a logistic regression, cross-fitted the same way, on three numbers of the
  probability map: the peak's logit, log(1 + predicted area) and the mean probability inside the mask.

Printed: ROC AUC (lesion vs lesion-free), then at the operating point the lesion-free scans flagged, the lesion
scans reported empty and the mean per-image Dice of the lesion scans. The level is chosen on the same scores
it is counted on, for every signal alike. The test split is not read.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from rdanet_gan.data import load_split, prepare_data
from rdanet_gan.errors import RdanetError
from rdanet_gan.evaluation.calibration import DEFAULT_MAX_FALSE_ALARMS
from rdanet_gan.evaluation.metrics import confusion
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.inference.predict import predict_probabilities, predict_with_flips
from rdanet_gan.inference.settings import read_inference
from rdanet_gan.models.presence import fit_presence, pooled_features, rank_auc

FOLDS = 5


def mask_statistics(probabilities: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``[N, 3]``: the peak's logit, log(1 + predicted area) and the mean probability inside the mask (0 if empty)."""
    peak = np.clip(probabilities.max(axis=(1, 2)), 1e-7, 1 - 1e-7)
    area = masks.sum(axis=(1, 2))
    inside = np.where(area > 0, (probabilities * masks).sum(axis=(1, 2)) / np.maximum(area, 1), 0.0)
    return np.stack([np.log(peak / (1 - peak)), np.log1p(area), inside], axis=1)


def cross_fitted(features: np.ndarray, has_lesion: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out-of-fold logits of :func:`fit_presence`: each scan scored by a fit on the other folds (stratified)."""
    folds = np.empty(len(has_lesion), int)
    for label in (True, False):
        members = rng.permutation(np.flatnonzero(has_lesion == label))
        folds[members] = np.arange(len(members)) % FOLDS
    scores = np.empty(len(has_lesion))
    for fold in range(FOLDS):
        held = folds == fold
        weights, bias = fit_presence(features[~held], has_lesion[~held], l2=1 / (0.1 * (~held).sum()))
        scores[held] = features[held] @ weights + bias
    return scores


def operating_point(scores: np.ndarray, has_lesion: np.ndarray, dice: np.ndarray) -> dict[str, float]:
    """The lowest level flagging at most the target share of lesion-free scans, and what it costs the lesion scans.

    ``dice``: each lesion scan's Dice with its mask kept (a scan below the level scores 0)."""
    normal = np.sort(scores[~has_lesion])
    allowed = int(np.floor(DEFAULT_MAX_FALSE_ALARMS * len(normal) + 1e-9))
    level = normal[len(normal) - allowed - 1] if allowed < len(normal) else -np.inf  # flag only scores above it
    kept = scores[has_lesion] > level
    return {
        "flagged": float(np.mean(scores[~has_lesion] > level)),
        "emptied": int((~kept).sum()),
        "lesion_dice": float(np.mean(np.where(kept, dice, 0.0))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a .keras or packed .npz segmenter with its settings file")
    parser.add_argument("--data", required=True, help="the BUSI folder")
    parser.add_argument("--split", type=Path, required=True, help="a split with lesion-free training and validation scans")
    parser.add_argument("--repeats", type=int, default=20, help="cross-fitting repeats, each with new folds")
    args = parser.parse_args(argv)
    try:
        compare(args)
    except (RdanetError, ValueError) as error:  # a file that is not a segmenter, a network without the head's layer
        print(f"presence_crossfit: error: {error}", file=sys.stderr)
        return 2
    return 0


def compare(args: argparse.Namespace) -> None:
    """Print the table of the module docstring for ``args.model`` on ``args.split``'s validation scans."""
    model, settings = load_segmenter(args.model), read_inference(args.model)
    if settings is None:
        raise RdanetError(f"{args.model}: no settings file; run rdanet-gan calibrate on a copy first")
    settings = dataclasses.replace(settings, presence=0.0)  # the signals below decide presence
    split = load_split(args.split)
    scans = prepare_data(args.data, {**split, "test": []}, image_size=model.input_shape[1])
    val, train = scans.validation, scans.train
    predict = predict_with_flips if settings.flip_tta else predict_probabilities
    probabilities = predict(model, val.images)[..., 0].astype(np.float64)
    truths = val.masks[..., 0] > 0.5
    has_lesion = truths.any(axis=(1, 2))
    masks = np.stack([settings.mask(p) for p in probabilities]).astype(bool)
    dice = np.array([confusion(mask, truth).dice() for mask, truth in zip(masks[has_lesion], truths[has_lesion])])
    pooled_val = pooled_features(model, val.images)
    weights, bias = fit_presence(pooled_features(model, train.images), train.masks.any(axis=(1, 2, 3)))
    statistics = mask_statistics(probabilities, masks)
    rng = np.random.default_rng(0)
    signals = {
        "peak": [probabilities.max(axis=(1, 2))],
        "head, fitted on training": [pooled_val @ weights + bias],
        "head, cross-fitted on validation": [cross_fitted(pooled_val, has_lesion, rng) for _ in range(args.repeats)],
        "mask statistics, cross-fitted": [cross_fitted(statistics, has_lesion, rng) for _ in range(args.repeats)],
    }
    print(f"{args.model.name}: {len(val)} validation scans ({int((~has_lesion).sum())} lesion-free), {settings.describe()}")
    print(f"no presence rule: lesion per-image Dice {dice.mean():.3f}")
    print("| presence score | AUC | lesion-free flagged | lesion scans emptied | lesion per-image Dice |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in signals.items():
        # A scan with an empty mask is reported lesion-free whatever its score.
        points = [operating_point(np.where(masks.any(axis=(1, 2)), run, -np.inf), has_lesion, dice) for run in runs]
        auc = np.mean([rank_auc(run, has_lesion) for run in runs])
        mean = {key: np.mean([point[key] for point in points]) for key in points[0]}
        print(f"| {name} | {auc:.3f} | {mean['flagged']:.0%} | {mean['emptied']:.1f} | {mean['lesion_dice']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
