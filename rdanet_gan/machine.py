"""The machine a run or a measurement happened on: CPU, its vector extensions, GPUs, library versions.

Speeds and training times mean little without it, so run directories and
benchmark results record :func:`describe_machine`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import keras
import tensorflow as tf

PERFORMANCE_FLAGS = ("fma", "avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
"""CPU flags that decide the arithmetic peak and whether bf16/fp16 run natively."""


def describe_machine(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """CPU model, core counts, clock, performance flags, GPU names, Python/TensorFlow/Keras versions.

    ``cores`` counts logical CPUs; ``physical_cores`` counts distinct
    (socket, core) pairs, which share the arithmetic units of SMT siblings.
    ``cpu_mhz`` is the highest clock ``cpuinfo`` reports (``None`` if it
    reports none): the current clock, not a guaranteed turbo.
    """
    processors = _processors(cpuinfo)
    first = processors[0] if processors else {}
    flags = set(first.get("flags", "").split())
    clocks = [float(p["cpu MHz"]) for p in processors if "cpu MHz" in p]
    cores = {(p.get("physical id"), p.get("core id")) for p in processors if "core id" in p}
    return {
        "cpu": first.get("model name") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "physical_cores": len(cores) or os.cpu_count(),
        "cpu_mhz": max(clocks) if clocks else None,
        "cpu_flags": [flag for flag in PERFORMANCE_FLAGS if flag in flags],
        "gpus": [
            tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")
        ],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def _processors(cpuinfo: str | Path) -> list[dict[str, str]]:
    """One ``{field: value}`` dict per processor block of a ``/proc/cpuinfo``-style file ([] if unreadable)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return []
    processors = []
    for block in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        if fields:
            processors.append(fields)
    return processors
