"""``benchmarks/profile_step.py``: one profiled training step of a tiny RDAU-Net, split into categories."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def profile_step():
    """The script as a module (it imports its sibling ``throughput``)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("profile_step", BENCHMARKS / "profile_step.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_op_names_fall_into_their_categories(profile_step):
    classify = profile_step.classify
    assert classify("rdau_net_1/enc3_conv1_1/convolution", "_MklNativeConv2D") == profile_step.CONV
    assert classify("gradient_tape/rdau_net_1/dilated_r32_1/convolution/SpaceToBatchND", "SpaceToBatchND") == (
        profile_step.CONV_INPUT
    )
    assert classify("gradient_tape/rdau_net_1/dec1_conv2_1/convolution/Conv2DBackpropFilter", "Conv2DBackpropFilter") == (
        profile_step.CONV_FILTER
    )
    assert classify("rdau_net_1/dec2_shortcut_bn_1/moments/mean", "Mean") == profile_step.BN
    assert classify("gradient_tape/rdau_net_1/att2_psi_1/convolution/Conv2DBackpropInput", "Conv2DBackpropInput") == (
        profile_step.ATTENTION
    )
    assert classify("rdau_net_1/up4_1/resize/ResizeBilinear", "ResizeBilinear") == profile_step.RESIZE
    assert classify("rdau_net_1/dec1_relu1_1/Relu", "Relu") == profile_step.ELEMENTWISE
    assert classify("adam/truediv_3", "RealDiv") == profile_step.OPTIMIZER
    assert classify("compile_loss/dice_bce/Sum_1", "Sum") == profile_step.LOSS


def test_a_tiny_step_splits_into_non_negative_shares_summing_to_one(profile_step):
    result = profile_step.profile_setting("float32", jit=False, steps=1, warmup=1, base_width=4, image_size=32, batch_size=2)
    categories = result["categories"]
    assert list(categories) == list(profile_step.CATEGORIES)
    shares = [c["share"] for c in categories.values()]
    assert all(share >= 0 for share in shares)
    assert math.isclose(sum(shares), 1.0, abs_tol=1e-6)
    assert math.isclose(sum(c["ms_per_step"] for c in categories.values()), result["step_ms"], rel_tol=1e-6)
    assert result["profiled_steps"] == 1 and result["images_per_second"] > 0
    for convolutions in (profile_step.CONV, profile_step.CONV_INPUT, profile_step.CONV_FILTER):
        assert categories[convolutions]["thread_ms_per_step"] > 0
