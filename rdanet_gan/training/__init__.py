"""Training: the settings (``TrainConfig``) and their command-line flags, the GAN of Algorithm 1, deep
supervision, losses, callbacks, precision, re-estimated BatchNorm statistics, run folders, and the ``train``
entry point (names load on first use)."""

import lazy_loader

from rdanet_gan.options import MODELS, RECIPES

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "batchnorm": ["reestimate_batchnorm"],
        "callbacks": ["BestModelCheckpoint", "EpochSeed", "MetricsLogger", "StopOnNonFinite", "TrainingDivergedError"],
        "deep_supervision": ["DeeplySupervised"],
        "gan": ["RDANetGAN"],
        "losses": ["DiceBCELoss", "gradient_penalty"],
        "precision": ["resolve_jit", "resolve_precision", "set_precision"],
        "config": ["TrainConfig"],
        "run_folder": ["run_finished"],
        "trainer": ["TrainResult", "train"],
    },
)
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
    "run_finished",
    "set_precision",
    "train",
]
