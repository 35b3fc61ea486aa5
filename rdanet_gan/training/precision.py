"""Numeric precision and XLA: choose the fastest safe setting for the device.

``mixed_bfloat16`` only pays on CPUs with native bf16 arithmetic (AVX-512 BF16
or AMX); on an AVX2-only CPU oneDNN emulates it and a training step runs about
8x *slower* than float32 (measured on an AVX2 machine); there XLA
is the fast setting instead (:func:`resolve_jit`), and on AVX-512 CPUs XLA is off. GPUs get
``mixed_bfloat16`` where the hardware has bf16 (compute capability >= 8.0),
``mixed_float16`` with loss scaling on older ones.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from rdanet_gan.options import JIT_MODES, PRECISIONS


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as the kernel lists them (empty when unreadable, e.g. not Linux)."""
    try:
        return set(Path(cpuinfo).read_text(errors="replace").split())
    except OSError:
        return set()


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU advertises bf16 arithmetic (``avx512_bf16`` or ``amx_bf16``)."""
    return bool(cpu_flags(cpuinfo) & {"avx512_bf16", "amx_bf16"})


def cpu_has_avx512(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU has AVX-512 (``avx512f``), where oneDNN's kernels beat XLA's (see :func:`resolve_jit`)."""
    return "avx512f" in cpu_flags(cpuinfo)


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
    """XLA compilation of the train and test steps under dtype ``policy``.

    ``auto`` is on for GPUs, and on CPUs only for float32 on a CPU without AVX-512. Full-width
    RDAU-Net training at batch 32 (``benchmarks/results/``): on a 2-core AVX2 EPYC float32 ran 0.60
    images/s without XLA and 1.39 with it (``throughput.json``); on AVX-512 CPUs oneDNN alone is
    faster, float32 5.71 against 3.96 with XLA on a 2-core AMD EPYC with AVX-512 BF16
    (``bottleneck_speed-zen4.md``) and 7.46 against 3.87 on a 2-core Xeon with AMX
    (``bottleneck_speed.md``). ``mixed_bfloat16`` graphs XLA's CPU compiler refuses in TensorFlow
    2.21 ("mixed precision is disallowed"): asking for both on a CPU is an error.
    """
    if isinstance(jit, bool):
        wanted = jit
    elif jit in JIT_MODES:
        wanted = jit != "off"
    else:
        raise ValueError(f"jit must be 'auto', 'on' or 'off', got {jit!r}")
    on_cpu = not tf.config.list_physical_devices("GPU")
    if wanted and jit == "auto" and on_cpu:
        return policy != "mixed_bfloat16" and not cpu_has_avx512()
    if wanted and policy == "mixed_bfloat16" and on_cpu:
        raise ValueError(
            "XLA on the CPU cannot compile mixed_bfloat16 training (TensorFlow 2.21): use jit 'off' or precision 'float32'"
        )
    return wanted


def set_precision(precision: str = "auto") -> str:
    """Set Keras's global dtype policy (before building models); return the policy name."""
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
