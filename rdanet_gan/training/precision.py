"""Numeric precision and XLA: choose the fastest safe setting for the device.

``mixed_bfloat16`` only pays on CPUs with native bf16 arithmetic (AVX-512 BF16
or AMX); on an AVX2-only CPU oneDNN emulates it and a training step runs about
8x *slower* than float32 (measured on this project's CI machine); there XLA
is the fast setting instead (:func:`resolve_jit`). GPUs get
``mixed_bfloat16`` where the hardware has bf16 (compute capability >= 8.0),
``mixed_float16`` with loss scaling on older ones.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


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


def resolve_jit(jit: str | bool = "auto") -> bool:
    """XLA compilation of the train and test steps: on unless asked off.

    Measured on the 2-core AVX2 CPU machine (``benchmarks/results/throughput.json``),
    float32 RDAU-Net training at batch 32 ran 0.60 images/s without XLA and
    1.39 with it (2.3x, about 53 s and 23 s a step); XLA is the usual choice on GPUs too.
    """
    if isinstance(jit, bool):
        return jit
    if jit not in ("auto", "on", "off"):
        raise ValueError(f"jit must be 'auto', 'on' or 'off', got {jit!r}")
    return jit != "off"


def set_precision(precision: str = "auto") -> str:
    """Set Keras's global dtype policy (before building models); return the policy name."""
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
