"""Shared fixtures: the real BUSI copy (when present) and quiet, deterministic TensorFlow."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Test workers run side by side (pytest-xdist): none may take a whole GPU's memory.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


@pytest.fixture(autouse=True)
def float32_after_each_test():
    """Reset Keras's global precision policy, so that a test that trains in mixed precision (as the
    throughput benchmark does) leaves no bfloat16 layers to the next test of its worker."""
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def busi_dir() -> Path:
    """The BUSI root from ``RDANET_BUSI_DIR``.

    Locally the test skips when the variable is unset; under ``.ci/run``
    (``RDANET_REQUIRE_DATA=1``) a missing dataset fails the test instead.
    """
    value = os.environ.get("RDANET_BUSI_DIR")
    required = os.environ.get("RDANET_REQUIRE_DATA") == "1"
    if not value or not Path(value, "benign").is_dir():
        reason = f"BUSI not found (RDANET_BUSI_DIR={value!r})"
        if required:
            pytest.fail(reason + " but RDANET_REQUIRE_DATA=1")
        pytest.skip(reason)
    return Path(value)


@pytest.fixture(scope="session")
def phantom_folder(tmp_path_factory) -> Path:
    """A small dataset on disk in the generic paired layout (``images/`` + ``masks/``), made of phantoms."""
    import cv2
    import numpy as np

    from rdanet_gan.data import make_phantoms

    root = tmp_path_factory.mktemp("phantom_dataset")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    images, masks = make_phantoms(24, image_size=48, seed=5)
    for index, (image, mask) in enumerate(zip(images, masks)):
        cv2.imwrite(str(root / "images" / f"scan_{index:02d}.png"), np.round(image[..., 0] * 255).astype(np.uint8))
        cv2.imwrite(str(root / "masks" / f"scan_{index:02d}_mask.png"), (mask[..., 0] > 0.5).astype(np.uint8) * 255)
    return root
