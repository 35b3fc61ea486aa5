"""Training: the GAN of Algorithm 1, deep supervision, losses, callbacks, precision, re-estimated BatchNorm
statistics, and the ``train`` entry point."""

from rdanet_gan.training.batchnorm import reestimate_batchnorm
from rdanet_gan.training.callbacks import (
    BestModelCheckpoint,
    EpochSeed,
    MetricsLogger,
    StopOnNonFinite,
    TrainingDivergedError,
)
from rdanet_gan.training.deep_supervision import DeeplySupervised
from rdanet_gan.training.gan import RDANetGAN
from rdanet_gan.training.losses import DiceBCELoss, gradient_penalty
from rdanet_gan.training.precision import resolve_jit, resolve_precision, set_precision
from rdanet_gan.training.trainer import MODELS, RECIPES, TrainConfig, TrainResult, train

__all__ = [
    "MODELS",
    "RECIPES",
    "BestModelCheckpoint",
    "DeeplySupervised",
    "DiceBCELoss",
    "EpochSeed",
    "MetricsLogger",
    "RDANetGAN",
    "StopOnNonFinite",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "gradient_penalty",
    "reestimate_batchnorm",
    "resolve_jit",
    "resolve_precision",
    "set_precision",
    "train",
]
