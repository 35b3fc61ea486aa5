"""Evaluate a segmenter on a set of scans, at the network's input size or at native resolution."""

from __future__ import annotations

import keras
import numpy as np

from rdanet_gan.data import ArraySet, read_mask
from rdanet_gan.evaluation.metrics import binarize
from rdanet_gan.evaluation.scoring import (
    Evaluation,
    predict_probabilities,
    resize_to,
    score_predictions,
)


def evaluate_model(
    model: keras.Model,
    data: ArraySet,
    native_resolution: bool = False,
    batch_size: int = 32,
    threshold: float = 0.5,
) -> Evaluation:
    """Score ``model`` (inference mode) on ``data``.

    At the network's input size (the paper's protocol: 128x128) the resized
    ground truth is the reference. With ``native_resolution`` each probability
    map is resized back to its scan's original size and compared with the
    original mask: what a clinician would see.
    """
    probabilities = predict_probabilities(model, data.images, batch_size=batch_size)[..., 0]
    ids = [record.case_id for record in data.records] or None
    if native_resolution:
        if not data.records:
            raise ValueError("native-resolution evaluation needs scans read from files")
        truths = [read_mask(record.masks) for record in data.records]
        maps = [resize_to(p, truth.shape) for p, truth in zip(probabilities, truths)]
    else:
        truths = [mask[..., 0] > 0.5 for mask in data.masks]
        maps = list(probabilities)
    predictions = [binarize(p, threshold) for p in maps]
    return score_predictions(predictions, truths, ids=ids, probabilities=[np.asarray(p) for p in maps])
