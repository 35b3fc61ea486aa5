"""Numeric precision and XLA: choose the fastest safe setting for the device.

``mixed_bfloat16`` only pays on CPUs with native bf16 arithmetic (AVX-512 BF16
or AMX); on an AVX2-only CPU oneDNN emulates it and a training step runs about
8x *slower* than float32 (measured on an AVX2 machine); there XLA
is the fast setting instead (:func:`resolve_jit`), and where bf16 is native XLA is off. GPUs get
``mixed_bfloat16`` where the hardware has bf16 (compute capability >= 8.0),
``mixed_float16`` with loss scaling on older ones.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from rdanet_gan.options import JIT_MODES, PRECISIONS


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU advertises bf16 arithmetic (``avx512_bf16`` or ``amx_bf16``)."""
    try:
        flags = Path(cpuinfo).read_text(errors="replace").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _gpu_compute_capability() -> tuple[int, int] | None:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return details.get("compute_capability", (0, 0))


def resolve_precision(precision: str = "auto") -> str:
    """Turn ``"auto"`` into a concrete Keras dtype policy name for this machine."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    capability = _gpu_compute_capability()
    if capability is not None:
        return "mixed_bfloat16" if capability >= (8, 0) else "mixed_float16"
    return "mixed_bfloat16" if cpu_has_native_bf16() else "float32"


def resolve_jit(jit: str | bool = "auto", policy: str = "float32") -> bool:
    """XLA compilation of the train and test steps under dtype ``policy``: on unless asked off,
    or unless the policy is ``mixed_bfloat16`` on a CPU.

    Measured on a 2-core AVX2 CPU (``benchmarks/results/throughput.json``), float32
    RDAU-Net training at batch 32 ran 0.60 images/s without XLA and 1.39 with it
    (2.3x); XLA is the usual choice on GPUs too. On a CPU with native bf16 (AMX),
    ``auto`` precision is ``mixed_bfloat16``, whose graphs XLA's CPU compiler refuses
    in TensorFlow 2.21 ("mixed precision is disallowed"), while oneDNN runs them
    natively: full-width RDAU-Net trained at 3.6 images/s there, against 2.3 in
    float32 with XLA (2-core Xeon with AMX, one measurement each).
    """
    if isinstance(jit, bool):
        wanted = jit
    elif jit in JIT_MODES:
        wanted = jit != "off"
    else:
        raise ValueError(f"jit must be 'auto', 'on' or 'off', got {jit!r}")
    if wanted and policy == "mixed_bfloat16" and not tf.config.list_physical_devices("GPU"):
        if jit == "auto":
            return False
        raise ValueError("XLA on the CPU cannot compile mixed_bfloat16 training (TensorFlow 2.21): use jit 'off' or precision 'float32'")
    return wanted


def set_precision(precision: str = "auto") -> str:
    """Set Keras's global dtype policy (before building models); return the policy name."""
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
