"""The package's named choices, in one place that imports nothing heavy.

The modules that act on a choice import it from here, and so does the command
line, which builds its parser (``--help``, option errors) without loading
TensorFlow.
"""

from __future__ import annotations

MODELS = ("rdanet-gan", "rdau-net", "unet", "segnet")
"""What ``train`` trains: RDA-NET-GAN, or one of the three segmentation networks on its own."""
LR_SCHEDULES = ("constant", "cosine", "plateau")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
JIT_MODES = ("auto", "on", "off")
"""XLA compilation: ``auto`` (on, except where XLA cannot compile the precision), on, off."""
NORMS = ("batch", "group", "instance", "none")
"""Normalisations a segmentation network accepts."""
GAN_SCHEDULES = ("epoch", "interleaved")
"""How RDA-NET-GAN alternates its players: Algorithm 1's epochs, or ``n_critic`` critic steps per generator step."""
ENCODERS = ("mobilenet_v2", "efficientnet_lite0", "vgg16_hed")
"""Pretrained encoders that can replace RDAU-Net's ``enc2`` … ``enc6``."""
ENCODER_WEIGHTS = ("imagenet", None)
"""A pretrained encoder's initial weights: its pretrained ones (ImageNet's; for ``vgg16_hed`` HED's, which
start from ImageNet's), or None (random)."""
ENSEMBLE_PRESENCE = ("mean", "all")
"""How an ensemble decides that a scan holds a lesion: from its mean map's peak (``mean``), or only where
every member's own peak agrees too (``all``; see :func:`rdanet_gan.models.build_ensemble`)."""
AUGMENTATION_PRESETS = {
    "none": "none",
    "paper": "flip",
    "standard": "flip,affine,intensity,speckle",
    "strong": "flip,affine,intensity,speckle,elastic,crop",
}
"""Named augmentations: ``paper`` flips only (the faithful recipe), ``standard`` adds small
affine, intensity and speckle changes, ``strong`` adds elastic deformation and random crops."""
RECIPES = {
    "paper": {"augmentation": "paper", "lr_schedule": "constant", "warmup_epochs": 0, "deep_supervision": False},
    "default": {"augmentation": "standard", "lr_schedule": "constant", "warmup_epochs": 0, "deep_supervision": False},
}
"""Named sets of training options. ``paper`` is the faithful reproduction (flips only,
constant learning rate; Table 1 uses it); ``default`` is what ``train`` uses unless told
otherwise. Options given explicitly win over the recipe's."""
