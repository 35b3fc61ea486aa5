"""Precision and XLA choices, and training under ``mixed_bfloat16``."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from rdanet_gan.data import make_phantoms
from rdanet_gan.models import build_model
from rdanet_gan.training import precision
from rdanet_gan.training.losses import DiceBCELoss

SIZE = 32
AVX2_FLAGS = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni vaes"
"""The flags line of an AVX2-only CPU (this project's CI machine, shortened)."""


@pytest.fixture(autouse=True)
def float32_policy():
    """Every test starts and ends under the float32 policy, whatever it sets."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


def fake_cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    processor = f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n"
    path.write_text(processor + "\n" + processor.replace(": 0", ": 1"))
    return path


@pytest.mark.parametrize("name", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_explicit_precisions_are_kept(name):
    assert precision.resolve_precision(name) == name


@pytest.mark.parametrize(
    ("capability", "native_bf16", "expected"),
    [
        ((9, 0), False, "mixed_bfloat16"),  # H100
        ((8, 0), False, "mixed_bfloat16"),  # A100: the first with bf16
        ((7, 5), True, "mixed_float16"),  # T4: no bf16, float16 with loss scaling
        (None, True, "mixed_bfloat16"),  # CPU with AVX512_BF16 or AMX
        (None, False, "float32"),  # AVX2-only CPU: emulated bf16 is 8x slower
    ],
)
def test_auto_precision_follows_the_hardware(monkeypatch, capability, native_bf16, expected):
    monkeypatch.setattr(precision, "_gpu_compute_capability", lambda: capability)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native_bf16)
    assert precision.resolve_precision("auto") == expected
    assert precision.resolve_precision() == expected


@pytest.mark.parametrize("name", ["bfloat16", "float16", "fp32", "AUTO", ""])
def test_unknown_precision_is_refused(name):
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_precision(name)


@pytest.mark.parametrize(
    ("extra_flags", "native"),
    [
        ("", False),
        ("avx512f avx512bw avx512vl", False),  # AVX-512 without its bf16 extension
        ("avx512f avx512_fp16", False),  # float16, not bfloat16
        ("avx512f avx512_bf16", True),
        ("amx_tile amx_bf16 amx_int8", True),
    ],
)
def test_native_bf16_is_read_from_cpu_flags(tmp_path, extra_flags, native):
    assert precision.cpu_has_native_bf16(fake_cpuinfo(tmp_path, f"{AVX2_FLAGS} {extra_flags}")) is native


def test_missing_cpuinfo_means_no_native_bf16(tmp_path):
    assert precision.cpu_has_native_bf16(tmp_path / "absent") is False
    assert precision.cpu_has_avx512(tmp_path / "absent") is False


@pytest.mark.parametrize(("extra_flags", "avx512"), [("", False), ("avx512f avx512bw", True), ("avx512_bf16", False)])
def test_avx512_is_read_from_cpu_flags(tmp_path, extra_flags, avx512):
    assert precision.cpu_has_avx512(fake_cpuinfo(tmp_path, f"{AVX2_FLAGS} {extra_flags}")) is avx512


@pytest.mark.parametrize(("jit", "expected"), [(True, True), (False, False), ("on", True), ("off", False)])
def test_explicit_jit(jit, expected):
    assert precision.resolve_jit(jit) is expected


@pytest.mark.parametrize(
    ("gpus", "avx512", "expected"),
    [([], False, True), ([], True, False), (["GPU:0"], False, True), (["GPU:0"], True, True)],
)
def test_auto_jit_is_on_for_gpus_and_for_cpus_without_avx512(monkeypatch, gpus, avx512, expected):
    # Measured: XLA 2.3x faster on an AVX2 CPU, slower than oneDNN alone on two AVX-512 CPUs.
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(precision, "cpu_has_avx512", lambda: avx512)
    assert precision.resolve_jit("auto") is expected
    assert precision.resolve_jit() is expected
    assert precision.resolve_jit("auto", "float32") is expected


@pytest.mark.parametrize(("gpus", "expected"), [([], False), (["GPU:0"], True)])
def test_auto_jit_is_off_for_bf16_on_the_cpu(monkeypatch, gpus, expected):
    # XLA's CPU compiler refuses mixed bf16 training graphs in TensorFlow 2.21.
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    assert precision.resolve_jit("auto", "mixed_bfloat16") is expected
    assert precision.resolve_jit("off", "mixed_bfloat16") is False


def test_explicit_jit_with_bf16_on_the_cpu_is_refused(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    with pytest.raises(ValueError, match="XLA on the CPU cannot compile mixed_bfloat16"):
        precision.resolve_jit("on", "mixed_bfloat16")


@pytest.mark.parametrize("jit", ["yes", "true", "", "ON"])
def test_unknown_jit_is_refused(jit):
    with pytest.raises(ValueError, match="jit must be"):
        precision.resolve_jit(jit)


def test_set_precision_sets_the_global_policy():
    assert precision.set_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"


def test_tiny_rdau_net_trains_under_mixed_bfloat16_and_transfers_to_float32():
    """One bf16 training step is finite; a float32 copy of its weights predicts what it predicts, to bf16 accuracy."""
    images, masks = make_phantoms(8, image_size=SIZE, seed=2)
    precision.set_precision("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    model = build_model("rdau-net", input_shape=(SIZE, SIZE, 1), base_width=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=DiceBCELoss(), run_eagerly=True)  # no tracing: fast
    assert {layer.compute_dtype for layer in model.layers if layer.weights} >= {"bfloat16"}
    assert all(weight.dtype == "float32" for weight in model.weights)  # variables stay float32

    loss = model.train_on_batch(images, masks)
    assert np.isfinite(loss)
    mixed = model(images, training=False)
    assert mixed.dtype == "float32"  # the output layer computes in float32

    precision.set_precision("float32")
    copy = build_model("rdau-net", input_shape=(SIZE, SIZE, 1), base_width=4)
    copy.set_weights(model.get_weights())
    full = copy(images, training=False)
    difference = np.abs(keras.ops.convert_to_numpy(mixed) - keras.ops.convert_to_numpy(full))
    # bf16 keeps 8 significant bits (relative error 2**-8 per rounding); through ~30 layers the
    # probabilities move by a few hundredths at most. Not zero: the copy really computed in float32.
    assert 0 < difference.max() < 0.05
    assert difference.mean() < 0.01
