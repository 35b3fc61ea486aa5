"""Shared fixtures: the real BUSI copy (when present) and quiet, deterministic TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
