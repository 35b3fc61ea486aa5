"""An image-level "lesion present" head, fitted after training on a segmenter's deepest encoder features.

The peak pixel probability separates lesion-free from lesion scans with validation AUC 0.909 for the
MobileNetV2 model (the default then); a logistic regression on the global-average-pooled input of the
dilated module (4×4×320 there), fitted on the training scans, reaches 0.96. :func:`add_presence_head` puts that regression into
the network as built-in layers, keeping one output of the same shape: the lesion logits capped by the
head's logit, then the sigmoid ``mask``. As the sigmoid is monotonic, the mask equals
``min(probabilities, head probability)``: unchanged on a scan the head calls a lesion, capped everywhere
on one it does not, so the peak-based presence level reports a lesion only when both reach it. Keeping the
sigmoid last keeps the logits where the LiteRT export takes them (:mod:`rdanet_gan.inference.litert`).
"""

from __future__ import annotations

import keras
import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import rankdata

from rdanet_gan.models.blocks import sigmoid_mask_layer

FEATURES_LAYER = "dilated_r1"
"""The layer whose input the head reads: RDAU-Net's deepest encoder features, before the dilated module."""
HEAD_LAYER = "presence"
DEFAULT_L2 = 1 / (0.1 * 584)
"""Weight of ``(l2 / 2)·||w||²`` against the mean class-weighted log loss: scikit-learn's
``LogisticRegression(C=0.1, class_weight="balanced")`` on the MobileNetV2 model's 584 training scans
(540 with a lesion, 44 without), whose penalty ``1 / (2C)`` does not scale with the scans' count."""
STD_FLOOR = 1e-6
"""Smallest standard deviation a feature is divided by (a constant feature stays 0 once centred)."""


def has_presence_head(model: keras.Model) -> bool:
    """Whether ``model`` already carries a presence head (:func:`add_presence_head`)."""
    return any(layer.name == HEAD_LAYER for layer in getattr(model, "layers", ()))


def presence_features(model: keras.Model) -> keras.KerasTensor:
    """The features the head reads: the input of RDAU-Net's ``dilated_r1`` layer (``[B, h, w, C]``).

    Raises ``ValueError`` for a network without the dilated module (U-Net, SegNet) or with a head already.
    """
    if has_presence_head(model):
        raise ValueError(f"model {model.name!r} already has a presence head")
    layer = next((layer for layer in getattr(model, "layers", ()) if layer.name == FEATURES_LAYER), None)
    if layer is None:
        raise ValueError(f"model {model.name!r} has no layer {FEATURES_LAYER!r}: the presence head needs RDAU-Net")
    return layer.input


def pooled_features(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The head's inputs for ``images`` (``[N, H, W, 1]``): the features of :func:`presence_features`,
    averaged over the map in float32 as the head averages them, ``[N, C]``."""
    pooled = keras.layers.GlobalAveragePooling2D(dtype="float32", name="presence_pool")(presence_features(model))
    features = keras.Model(model.input, pooled, name=f"{model.name}_presence_features")
    return np.asarray(features.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0), np.float64)


def fit_presence(features: np.ndarray, has_lesion: np.ndarray, l2: float = DEFAULT_L2) -> tuple[np.ndarray, float]:
    """Class-balanced L2-regularised logistic regression of ``has_lesion`` on ``features`` (``[N, C]``).

    On features standardised by their mean and standard deviation, minimises the mean over scans of the log
    loss weighted ``N / (2 · n_class)`` plus ``(l2 / 2)·||w||²`` (the bias is not penalised): scikit-learn's
    ``LogisticRegression(C=1 / (l2 · N), class_weight="balanced")``. Returns the weights ``[C]`` and bias
    that apply to the raw features (the standardisation folded in).
    """
    x = np.asarray(features, np.float64)
    y = np.asarray(has_lesion, bool).reshape(-1)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features must be [N, C] with one label per row, got {x.shape} and {len(y)} labels")
    if y.all() or not y.any():
        raise ValueError(
            f"the presence head needs scans with and without a lesion, got {int(y.sum())} of {len(y)} with"
        )
    if not l2 > 0:
        raise ValueError(f"l2 must be positive, got {l2}")
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), STD_FLOOR)
    z = (x - mean) / std
    target = y.astype(np.float64)
    weight = np.where(y, len(y) / (2 * y.sum()), len(y) / (2 * (~y).sum())) / len(y)  # the mean folded in

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        logit = z @ w + b
        loss = weight @ (np.logaddexp(0.0, logit) - target * logit) + 0.5 * l2 * w @ w
        residual = weight * (expit(logit) - target)
        return loss, np.append(z.T @ residual + l2 * w, residual.sum())

    result = minimize(
        objective,
        np.zeros(x.shape[1] + 1),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10},
    )
    w, b = result.x[:-1] / std, result.x[-1]
    return w, float(b - w @ mean)


def add_presence_head(model: keras.Model, weights: np.ndarray, bias: float) -> keras.Model:
    """A new model on ``model``'s graph whose mask is capped by the fitted head (:func:`fit_presence`).

    Global average pooling of :func:`presence_features`, a ``Dense`` logit (``presence``, float32) with
    ``weights`` and ``bias``, and the minimum with the segmenter's logits before its float32 sigmoid ``mask``:
    same input, output shape and name, built-in layers only (loads in safe mode), and float32 where it
    matters under a mixed-precision policy.
    """
    features = presence_features(model)
    mask = sigmoid_mask_layer(model)
    if mask is None:
        raise ValueError(f"model {model.name!r} has no sigmoid output layer 'mask' to put the presence head before")
    weights = np.asarray(weights, np.float32).reshape(features.shape[-1], 1)
    head = keras.layers.Dense(1, dtype="float32", name=HEAD_LAYER)
    logit = head(keras.layers.GlobalAveragePooling2D(dtype="float32", name="presence_pool")(features))
    head.set_weights([weights, np.array([bias], np.float32)])
    cap = keras.layers.Reshape((1, 1, 1), dtype="float32", name="presence_map")(logit)
    capped = keras.layers.Minimum(dtype="float32", name="mask_with_presence")([mask.input, cap])
    output = keras.layers.Activation("sigmoid", dtype="float32", name="mask")(capped)
    return keras.Model(model.input, output, name=model.name)


def rank_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the ``positive`` scans, from their ranks (ties count half)."""
    positive = np.asarray(positive, bool).reshape(-1)
    count, others = int(positive.sum()), int((~positive).sum())
    if not count or not others:
        raise ValueError("the AUC needs scans of both classes")
    ranks = rankdata(np.asarray(scores, np.float64).reshape(-1))
    return float((ranks[positive].sum() - count * (count + 1) / 2) / (count * others))
