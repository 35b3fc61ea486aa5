"""The four networks of the comparison: RDAU-Net (generator), its critic, U-Net and SegNet; RDAU-Net's presence head; ensembles.

Importing this package registers the custom layers, so saved ``.keras``
models load with ``keras.models.load_model(path)`` in safe mode.
"""

from __future__ import annotations

import keras

from rdanet_gan.models import critic, unet
from rdanet_gan.models.blocks import check_input_shape
from rdanet_gan.models.complexity import count_flops
from rdanet_gan.models.critic import build_critic
from rdanet_gan.models.ensemble import build_ensemble
from rdanet_gan.models.presence import (
    add_presence_head,
    fit_presence,
    has_presence_head,
    pooled_features,
    presence_features,
)
from rdanet_gan.models.rdau_net import ENCODER_MULTIPLIERS, ENCODERS, build_rdau_net
from rdanet_gan.models.segnet import VGG16_STAGES, PoolingSwitches, build_segnet
from rdanet_gan.models.unet import build_unet

BUILDERS = {
    "rdau-net": build_rdau_net,
    "unet": build_unet,
    "segnet": build_segnet,
    "critic": build_critic,
}
"""Model name → builder; the names the command line and configuration files use."""

DOWNSAMPLINGS = {
    "rdau-net": len(ENCODER_MULTIPLIERS) - 1,
    "unet": unet.DEPTH,
    "segnet": len(VGG16_STAGES),
    "critic": critic.DEPTH,
}
"""How often each network halves its input, as built by default: the input size must be a multiple of 2**n."""


def check_input_size(name: str, size: int) -> None:
    """Raise ``ValueError`` unless network ``name`` takes ``size``×``size`` scans (before building anything)."""
    check_input_shape((size, size, 1), DOWNSAMPLINGS[name], name)


def build_model(name: str, **options) -> keras.Model:
    """Build the network called ``name`` with the builder's keyword ``options``."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(BUILDERS)}")
    return BUILDERS[name](**options)


__all__ = [
    "BUILDERS",
    "DOWNSAMPLINGS",
    "ENCODERS",
    "PoolingSwitches",
    "add_presence_head",
    "build_critic",
    "build_ensemble",
    "build_model",
    "build_rdau_net",
    "build_segnet",
    "build_unet",
    "check_input_size",
    "count_flops",
    "fit_presence",
    "has_presence_head",
    "pooled_features",
    "presence_features",
]
