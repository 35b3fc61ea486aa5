"""Training and inference throughput of the networks and the GAN step, float32 against faster settings.

For each network (RDAU-Net, U-Net and SegNet on 128x128x1 images, the critic
on 128x128x2) it measures training images/s at batch 32, inference images/s
at batch 32, and batch-1 inference with its latency (median and p90); for the
GAN (RDANetGAN) it measures a critic step, a generator step and their mean.
Every measurement is taken under float32 (the baseline) and under each faster
setting (by default mixed_bfloat16, and float32 with XLA), with the ratio to
float32. Inputs are random tensors already on the device, so the input
pipeline cannot limit these numbers; its own throughput is measured apart
(BUSI when --data or $RDANET_BUSI_DIR gives it, phantoms otherwise).

Timing: the first call (tracing, XLA compilation, one step) is reported on
its own; then --warmup untimed steps; then up to --steps timed steps, fewer
once --max-seconds have passed (at least one). Each (network, setting) runs
in a fresh subprocess, so its peak memory is its own and the global dtype
policy starts clean: resident set size (ru_maxrss, TensorFlow runtime
included) on CPU, the allocator's peak on a GPU.

Achieved FLOP/s = images/s x work per image, counting forward GFLOPs
(rdanet_gan.models.count_flops) x1 for inference and x3 for training
(forward + backward, the backward costing twice the forward); the GAN
conventions are stated in the output. Its fraction of the machine's peak uses
an estimate whose assumptions are also written out (or --peak-gflops).

Writes OUT_DIR/throughput.json and OUT_DIR/throughput.md (a Markdown table).

    python benchmarks/throughput.py [--quick] [--data BUSI_DIR] [--precisions ...] [--jit ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from pipeline_throughput import QUICK_IMAGES, images_per_second
from pipeline_throughput import measure as measure_busi_pipeline

from rdanet_gan.data import Augmentation, make_dataset, make_phantoms
from rdanet_gan.errors import RdanetError
from rdanet_gan.fileio import write_json, write_text
from rdanet_gan.machine import describe_machine
from rdanet_gan.models import build_model, count_flops
from rdanet_gan.training import RDANetGAN, resolve_jit, resolve_precision, set_precision
from rdanet_gan.training.losses import DiceBCELoss

RESULTS_DIR = Path(__file__).parent / "results"
SEGMENTERS = ("rdau-net", "unet", "segnet")
GAN = "rdanet-gan"
NETWORKS = (*SEGMENTERS, "critic", GAN)
QUICK_NETWORKS = ("rdau-net", GAN)
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
BASELINE = "float32"
BATCH_SIZE = 32
BUSI_LESION_IMAGES = 647
RESULT_TAG = "throughput-result: "

DEFAULTS = {"steps": 20, "warmup": 2, "latency_steps": 50, "max_seconds": 60.0, "networks": list(NETWORKS)}
QUICK_DEFAULTS = {"steps": 3, "warmup": 0, "latency_steps": 10, "max_seconds": 10.0, "networks": list(QUICK_NETWORKS)}

TRAINING_WORK = 3
"""Training FLOPs per image in forward passes: the forward, and a backward costing two (activations and weights)."""

GAN_WORK = {  # (generator forward passes, critic forward passes) per image
    "critic_step": (1, 12),
    "generator_step": (3, 2),
}
FLOP_CONVENTION = (
    "FLOPs are forward FLOPs per image (convolutions and dense layers, a multiply-add counted as 2) times the passes: "
    f"inference x1, training x{TRAINING_WORK} (forward + backward = 2 forwards). GAN steps, G and C the forward FLOPs "
    "of generator and critic: critic step G + 12 C (generator inference; critic forward and backward on real and fake "
    "masks, 6 C; gradient penalty about 6 C: forward, input gradient and its backward), generator step 3 G + 2 C "
    "(generator forward and backward; critic forward and its input gradient); the mean step is their average. "
    "Rough conventions, for orders of magnitude."
)

COMPUTE_TYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
GPU_PEAK_TFLOPS = (  # dense (no sparsity) datasheet peaks: (FP32, TF32 tensor, BF16/FP16 tensor); first match wins
    ("H100 PCIe", (51.2, 378.0, 756.0)),
    ("H100 NVL", (60.0, 417.5, 835.0)),
    ("H100", (67.0, 494.7, 989.4)),
    ("H200", (67.0, 494.7, 989.4)),
    ("A100", (19.5, 156.0, 312.0)),
)


# ---------------------------------------------------------------------------- one configuration (subprocess)
def run_configuration(config: dict) -> None:
    """Measure one (network, precision, jit) configuration, printing each result as a tagged JSON line.

    Lines are printed as soon as they are measured, so a configuration cut
    short by the parent's timeout still reports what it finished.
    """
    set_precision(config["precision"])
    keras.utils.set_random_seed(0)
    gpus = tf.config.list_logical_devices("GPU")
    emit({"device": gpus[0].name if gpus else "CPU", "memory_before_mib": peak_memory_mib()})
    if config["network"] == GAN:
        measure_gan(config)
    else:
        measure_network(config)


def emit(record: dict) -> None:
    print(RESULT_TAG + json.dumps(record), flush=True)


def peak_memory_mib() -> float:
    """Peak memory of this process so far: the GPU allocator's peak, or the resident set size on CPU."""
    if tf.config.list_logical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return max_rss / (2**20 if sys.platform == "darwin" else 2**10)


def network_options(network: str, config: dict) -> dict:
    channels = 2 if network == "critic" else 1
    options = {"input_shape": (config["image_size"], config["image_size"], channels)}
    if config["base_width"]:
        options["base_width"] = config["base_width"]
    return options


def random_batch(network: str, config: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Random inputs and targets of one batch, on the default device (the GPU when there is one)."""
    size = config["image_size"]
    channels = 2 if network == "critic" else 1
    images = tf.random.uniform((BATCH_SIZE, size, size, channels), seed=1)
    if network == "critic":
        return images, tf.zeros((BATCH_SIZE, 1))
    return images, tf.cast(tf.random.uniform((BATCH_SIZE, size, size, 1), seed=2) > 0.5, tf.float32)


def measure_network(config: dict) -> None:
    """Batch-1 and batch-32 inference, then batch-32 training, of one network.

    Inference is ``predict_on_batch``: its time includes copying the
    predictions to host memory, as a user gets them. The critic, trained
    alone, gets a mean-squared loss: that measures its forward and backward
    cost; its real training step is in the GAN's rows.
    """
    network = config["network"]
    model = build_model(network, **network_options(network, config))
    loss = "mean_squared_error" if network == "critic" else DiceBCELoss()
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss, jit_compile=config["jit"])
    emit({"forward_gflops_per_image": count_flops(model) / 1e9})
    images, targets = random_batch(network, config)
    single = images[:1]
    emit(timed("inference_b1", lambda: model.predict_on_batch(single), 1, config, config["latency_steps"]))
    emit(timed("inference_b32", lambda: model.predict_on_batch(images), BATCH_SIZE, config))
    emit(timed("training", lambda: model.train_on_batch(images, targets), BATCH_SIZE, config))


def measure_gan(config: dict) -> None:
    """A critic step, then a generator step, of RDANetGAN (the phase is forced through its step counts).

    The steps run through Keras's compiled train function on the ``(images,
    masks)`` pairs ``fit`` gives it: ``train_on_batch`` would pass
    ``(x, y, sample_weight)``, which the GAN's train step does not unpack.
    """
    generator = build_model("rdau-net", **network_options("rdau-net", config))
    critic = build_model("critic", **network_options("critic", config))
    gan = RDANetGAN(generator, critic)
    gan.compile(
        g_optimizer=keras.optimizers.Adam(1e-4), d_optimizer=keras.optimizers.Adam(1e-4), jit_compile=config["jit"]
    )
    emit({"forward_gflops_per_image": {"generator": count_flops(generator) / 1e9, "critic": count_flops(critic) / 1e9}})
    gan.make_train_function()
    batch = [random_batch("rdau-net", config)]

    def train_step() -> None:
        logs = gan.train_function(batch)
        tf.nest.map_structure(lambda value: value.numpy(), logs)  # wait for the step to finish

    for phase, critic_steps, generator_steps in (("critic_step", 1, 0), ("generator_step", 0, 1)):
        gan.critic_steps.assign(critic_steps)  # a cycle of one step of this phase only
        gan.generator_steps.assign(generator_steps)
        if bool(gan.is_critic_step()) != (phase == "critic_step"):
            raise RuntimeError(f"could not force RDANetGAN into its {phase.replace('_', ' ')}")
        emit(timed(phase, train_step, BATCH_SIZE, config))


def timed(name: str, step: Callable[[], object], batch_size: int, config: dict, steps: int | None = None) -> dict:
    """Time ``step`` (which must block until its result is ready) after its first call and the warm-up."""
    start = time.perf_counter()
    step()
    first_call = time.perf_counter() - start
    for _ in range(config["warmup"]):
        step()
    steps = steps or config["steps"]
    durations: list[float] = []
    deadline = time.perf_counter() + config["max_seconds"]
    while len(durations) < steps and (not durations or time.perf_counter() < deadline):
        start = time.perf_counter()
        step()
        durations.append(time.perf_counter() - start)
    median = float(np.median(durations))
    return {
        "measurement": name,
        "batch_size": batch_size,
        "timed_steps": len(durations),
        "images_per_second": batch_size * len(durations) / sum(durations),
        "step_ms_median": 1e3 * median,
        "step_ms_p90": 1e3 * float(np.percentile(durations, 90)),
        "first_call_seconds": first_call,
        "compile_seconds": max(first_call - median, 0.0),
        "peak_memory_mib": peak_memory_mib(),
    }


# ---------------------------------------------------------------------------- the whole run (parent)
def compared_settings(precisions: list[str], jit: str) -> list[tuple[str, bool]]:
    """(precision, jit) pairs: float32 first (the baseline), each precision, then the XLA variants ``jit`` asks for."""
    ordered = [BASELINE, *(p for p in dict.fromkeys(precisions) if p != BASELINE)]
    with_xla = {"off": [], "float32": [BASELINE], "all": ordered}[jit]
    return [(p, False) for p in ordered] + [(p, True) for p in with_xla]


def setting_name(precision: str, jit: bool) -> str:
    return f"{precision} + XLA" if jit else precision


def run_in_subprocess(config: dict, timeout: float | None) -> dict:
    """Run :func:`run_configuration` in a fresh Python; gather its lines, and the error if it failed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)]
    try:
        finished = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout)
        stdout, error = finished.stdout, None
        if finished.returncode != 0:
            lines = finished.stderr.strip().splitlines() or [f"exit status {finished.returncode}"]
            error = lines[-1]
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout or b""  # bytes on POSIX, whatever text=True asked for
        stdout = output.decode(errors="replace") if isinstance(output, bytes) else output
        error = f"timed out after {timeout:g} s"
    result: dict = {"measurements": {}, "error": error}
    for line in stdout.splitlines():
        if line.startswith(RESULT_TAG):
            record = json.loads(line[len(RESULT_TAG) :])
            if "measurement" in record:
                result["measurements"][record.pop("measurement")] = record
            else:
                result.update(record)
    peaks = [m["peak_memory_mib"] for m in result["measurements"].values()]
    result["peak_memory_mib"] = max(peaks, default=None)
    return result


def estimate_peak(machine: dict, override_gflops: float | None) -> dict:
    """Peak GFLOP/s per compute type (float32, bfloat16, float16), with the assumptions behind them."""
    if override_gflops:
        peak = dict.fromkeys(("float32", "bfloat16", "float16"), override_gflops)
        return {"gflops": peak, "assumptions": "peak given with --peak-gflops, used for every precision"}
    if machine["gpus"]:
        return gpu_peak(machine["gpus"][0])
    return cpu_peak(machine)


def gpu_peak(name: str) -> dict:
    """Datasheet peaks of a known GPU; float32 at the TF32 tensor-core rate when TensorFlow uses TF32."""
    known = next((peaks for key, peaks in GPU_PEAK_TFLOPS if key in name), None)
    if known is None:
        return {"gflops": None, "assumptions": f"no known peak for GPU {name!r}: pass --peak-gflops"}
    fp32, tf32, half = known
    tensor_float = tf.config.experimental.tensor_float_32_execution_enabled()
    float32 = tf32 if tensor_float else fp32
    return {
        "gflops": {"float32": 1e3 * float32, "bfloat16": 1e3 * half, "float16": 1e3 * half},
        "assumptions": (
            f"{name}: NVIDIA datasheet dense peaks; float32 at the {'TF32 tensor-core' if tensor_float else 'FP32'} "
            f"peak ({float32:g} TFLOP/s; TensorFlow's TF32 execution is {'on' if tensor_float else 'off'}), "
            f"bfloat16/float16 at the tensor-core peak ({half:g} TFLOP/s)"
        ),
    }


def cpu_peak(machine: dict) -> dict:
    """cores x clock x FLOPs per cycle per core, from the CPU's vector extensions."""
    if not machine["cpu_mhz"]:
        return {"gflops": None, "assumptions": "no CPU clock in /proc/cpuinfo: pass --peak-gflops"}
    flags = set(machine["cpu_flags"])
    if "avx512f" in flags:
        per_cycle, unit = 64, "AVX-512: 2 FMA units x 16 float32 lanes x 2"
    elif {"avx2", "fma"} <= flags:
        per_cycle, unit = 32, "AVX2 + FMA: 2 FMA units x 8 float32 lanes x 2"
    else:
        per_cycle, unit = 16, "no FMA: 8 float32 lanes, one add and one multiply"
    if "amx_bf16" in flags:
        bf16_per_cycle, bf16_unit = 1024, "AMX tiles: 1024 bf16 FLOPs per cycle"
    elif "avx512_bf16" in flags:
        bf16_per_cycle, bf16_unit = 2 * per_cycle, "AVX512_BF16: twice float32"
    else:
        bf16_per_cycle, bf16_unit = per_cycle, "no native bf16: emulated, at best the float32 peak"
    fp16_per_cycle = 2 * per_cycle if "avx512_fp16" in flags else per_cycle
    cycles = machine["physical_cores"] * machine["cpu_mhz"] / 1e3  # Gcycles/s
    return {
        "gflops": {
            "float32": cycles * per_cycle,
            "bfloat16": cycles * bf16_per_cycle,
            "float16": cycles * fp16_per_cycle,
        },
        "assumptions": (
            f"{machine['physical_cores']} cores x {machine['cpu_mhz']:.0f} MHz (/proc/cpuinfo, current clock) x "
            f"{per_cycle} float32 FLOPs/cycle ({unit}); bfloat16: {bf16_unit}; float16: "
            f"{'AVX512_FP16, twice float32' if 'avx512_fp16' in flags else 'no native fp16, the float32 peak'}; "
            "every core busy at that clock all the time"
        ),
    }


def add_derived(results: list[dict], peak: dict) -> None:
    """Add the GAN's mean step, work and fraction of peak, and the ratio to the float32 baseline, in place."""
    baselines = {r["network"]: r for r in results if r["precision"] == BASELINE and not r["jit"]}
    for result in results:
        measurements = result["measurements"]
        if {"critic_step", "generator_step"} <= measurements.keys():
            rates = [measurements[phase]["images_per_second"] for phase in ("critic_step", "generator_step")]
            measurements["gan_step_mean"] = {
                "batch_size": BATCH_SIZE,
                "images_per_second": 2 / sum(1 / r for r in rates),
            }
        for name, measurement in measurements.items():
            work = work_gflops_per_image(result.get("forward_gflops_per_image"), name)
            if work is not None:
                measurement["work_gflops_per_image"] = work
                measurement["achieved_gflops"] = achieved = work * measurement["images_per_second"]
                if peak["gflops"]:
                    measurement["fraction_of_peak"] = achieved / peak["gflops"][COMPUTE_TYPE[result["precision"]]]
            baseline = baselines.get(result["network"], {}).get("measurements", {}).get(name)
            if baseline and result is not baselines[result["network"]]:
                measurement["ratio_to_float32"] = measurement["images_per_second"] / baseline["images_per_second"]


def work_gflops_per_image(forward: float | dict | None, measurement: str) -> float | None:
    """GFLOPs one image costs in ``measurement``, by the conventions of :data:`FLOP_CONVENTION`."""
    if forward is None:
        return None
    if isinstance(forward, dict):  # the GAN: generator and critic
        works = [g * forward["generator"] + c * forward["critic"] for g, c in GAN_WORK.values()]
        return sum(works) / len(works) if measurement == "gan_step_mean" else works[list(GAN_WORK).index(measurement)]
    return forward * (TRAINING_WORK if measurement == "training" else 1)


def measure_pipeline(data: Path | None, image_size: int, quick: bool) -> dict:
    """Input pipeline images/s: BUSI through ``pipeline_throughput.measure``, else phantoms the same way."""
    if data is not None:
        result = measure_busi_pipeline(data, quick)
        result.pop("machine", None)  # recorded once, at the top
        return {"source": f"BUSI lesion scans ({data})", **result}
    count = QUICK_IMAGES if quick else BUSI_LESION_IMAGES
    start = time.perf_counter()
    images, masks = make_phantoms(count, image_size=image_size)
    generation = count / (time.perf_counter() - start)
    dataset = make_dataset(images, masks, BATCH_SIZE, training=True, augmentation=Augmentation())
    return {
        "source": "phantoms (no --data nor $RDANET_BUSI_DIR)",
        "images": count,
        "image_size": image_size,
        "batch_size": BATCH_SIZE,
        "images_per_second": {
            "phantom generation (first pass)": generation,
            "tf.data, augmentation on": images_per_second(dataset, 1 if quick else 3),
        },
    }


# ---------------------------------------------------------------------------- report
def _rate(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _with_ratio(measurement: dict | None) -> str:
    if not measurement:
        return "–"
    ratio = measurement.get("ratio_to_float32")
    return _rate(measurement["images_per_second"]) + (f" (×{ratio:.2f})" if ratio is not None else "")


def _percent(measurement: dict | None) -> str:
    fraction = (measurement or {}).get("fraction_of_peak")
    return "–" if fraction is None else f"{100 * fraction:.1f} %"


def _seconds(measurement: dict | None) -> str:
    return "–" if not measurement else f"{measurement['first_call_seconds']:.1f}"


def _memory(result: dict) -> str:
    return "–" if result["peak_memory_mib"] is None else f"{result['peak_memory_mib']:,.0f}"


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> list[str]:
    """Markdown table lines; the first ``text_columns`` columns left-aligned, numbers right-aligned."""
    rule = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    return ["| " + " | ".join(cells) + " |" for cells in (header, rule, *rows)]


def _network_rows(results: list[dict]) -> list[list[str]]:
    rows = []
    for result in results:
        m = result["measurements"].get
        single = m("inference_b1")
        rows.append(
            [
                result["network"],
                result["setting"],
                _with_ratio(m("training")),
                _with_ratio(m("inference_b32")),
                _with_ratio(single),
                f"{single['step_ms_median']:.1f} / {single['step_ms_p90']:.1f}" if single else "–",
                f"{_seconds(m('training'))} / {_seconds(m('inference_b32'))}",
                f"{_percent(m('training'))} / {_percent(m('inference_b32'))}",
                _memory(result),
            ]
        )
    return rows


def _gan_rows(results: list[dict]) -> list[list[str]]:
    rows = []
    for result in results:
        m = result["measurements"].get
        rows.append(
            [
                result["setting"],
                _with_ratio(m("critic_step")),
                _with_ratio(m("generator_step")),
                _with_ratio(m("gan_step_mean")),
                _percent(m("gan_step_mean")),
                f"{_seconds(m('critic_step'))} / {_seconds(m('generator_step'))}",
                _memory(result),
            ]
        )
    return rows


def _notes(report: dict) -> list[str]:
    """How, where and when the numbers were measured."""
    machine, settings, load = report["machine"], report["settings"], report["load_average"]
    cpu = (
        f"CPU {machine['cpu']} ({machine['cores']} logical / {machine['physical_cores']} physical cores, "
        f"flags: {', '.join(machine['cpu_flags']) or 'none'})"
    )
    libraries = f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}"
    timing = (
        f"{settings['warmup']} warm-up steps, then up to {settings['steps']} timed steps "
        f"({settings['latency_steps']} at batch 1), fewer after {settings['max_seconds']:g} s"
    )
    auto = report["auto_choice"]
    return [
        (
            f"Measured {report['date']} on {report['device']}: {cpu}; GPUs: {', '.join(machine['gpus']) or 'none'}; "
            f"{libraries}."
        ),
        (
            f"Load average (1 min): {load['start']:.2f} at the start, {load['end']:.2f} at the end; well above 0, "
            "other work shared the machine and the numbers are low."
        ),
        f'`precision="auto"` picks {auto["precision"]} on this machine, `jit="auto"` {"on" if auto["jit"] else "off"}.',
        (
            f"Timing{' (--quick)' if settings['quick'] else ''}: the first call (tracing, compilation, one step) apart; "
            f"{timing}."
        ),
        f"Peak memory: {report['memory_measure']}, one fresh process per row.",
        f"Peak FLOP/s: {report['peak']['assumptions']}.",
        report["flop_convention"],
    ]


def markdown(report: dict) -> str:
    """The report as Markdown: networks, GAN step, input pipeline, then how it was measured."""
    size, results, pipeline = report["settings"]["image_size"], report["results"], report["pipeline"]
    network_header = [
        "network",
        "setting",
        "training img/s",
        "inference img/s",
        "batch-1 img/s",
        "batch-1 latency ms (median / p90)",
        "first call s (train / infer)",
        "% of peak (train / infer)",
        "peak memory MiB",
    ]
    gan_header = [
        "setting",
        "critic step img/s",
        "generator step img/s",
        "mean img/s",
        "% of peak (mean)",
        "first call s (critic / generator)",
        "peak memory MiB",
    ]
    stages = [[stage, f"{rate:,.0f}"] for stage, rate in pipeline["images_per_second"].items()]
    lines = [
        f"### Networks ({size}×{size}, batch {BATCH_SIZE} unless noted; ×: images/s relative to float32)",
        "",
        *_table(network_header, _network_rows([r for r in results if r["network"] != GAN]), text_columns=2),
        "",
        f"### GAN training step (RDANetGAN, batch {BATCH_SIZE})",
        "",
        *_table(gan_header, _gan_rows([r for r in results if r["network"] == GAN])),
    ]
    failed = [r for r in results if r["error"]]
    if failed:
        lines += ["", "Incomplete rows (what they show was measured before the failure):"]
        lines += [f"- {r['network']}, {r['setting']}: {r['error']}" for r in failed]
    size = pipeline["image_size"]
    lines += [
        "",
        (
            f"### Input pipeline ({pipeline['source']}: {pipeline['images']} images, {size}×{size}, "
            f"batch {pipeline['batch_size']})"
        ),
        "",
        *_table(["stage", "images / s"], stages),
        "",
        *(f"- {note}" for note in _notes(report)),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- command line
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer steps ({QUICK_DEFAULTS['steps']} timed, {QUICK_DEFAULTS['warmup']} warm-up after the first call, "
        f"{QUICK_DEFAULTS['latency_steps']} at batch 1, {QUICK_DEFAULTS['max_seconds']:g} s each) "
        f"and only {' and '.join(QUICK_NETWORKS)}; batch sizes are kept",
    )
    parser.add_argument(
        "--networks",
        nargs="+",
        choices=NETWORKS,
        help=f"what to measure (default: all; with --quick: {' '.join(QUICK_NETWORKS)})",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=["float32", "mixed_bfloat16"],
        help="Keras dtype policies to compare; float32, the baseline, is always measured "
        "(default: float32 mixed_bfloat16)",
    )
    parser.add_argument(
        "--jit",
        choices=("off", "float32", "all"),
        default="float32",
        help="also measure with XLA (jit_compile=True): off, float32 only (default), or every precision",
    )
    parser.add_argument(
        "--image-size", type=int, default=128, help="image height and width (default: 128, the paper's)"
    )
    parser.add_argument(
        "--base-width",
        type=int,
        help="base width of every network (default: each builder's, the paper's: "
        "32 RDAU-Net and critic, 64 U-Net and SegNet)",
    )
    parser.add_argument("--steps", type=int, help=f"most timed steps per measurement (default: {DEFAULTS['steps']})")
    parser.add_argument(
        "--latency-steps", type=int, help=f"most timed batch-1 inferences (default: {DEFAULTS['latency_steps']})"
    )
    parser.add_argument(
        "--warmup", type=int, help=f"untimed steps after the first call (default: {DEFAULTS['warmup']})"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        help="stop timing a measurement after this many seconds, once one step is timed "
        f"(default: {DEFAULTS['max_seconds']:g})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds allowed to each configuration's process; one that runs over is recorded "
        "as timed out, with what it had measured (default: no limit)",
    )
    parser.add_argument(
        "--peak-gflops",
        type=float,
        help="the machine's peak GFLOP/s, used for every precision instead of the estimate "
        "(cores x clock x FLOPs per cycle on a CPU, a table of datasheet peaks on a GPU)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("RDANET_BUSI_DIR"),
        help="BUSI folder for the input-pipeline measurement, always at 128x128 (default: $RDANET_BUSI_DIR; "
        "phantoms at --image-size when neither is set)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"where to write throughput.json and throughput.md (default: {RESULTS_DIR})",
    )
    parser.add_argument(
        "--worker",
        metavar="CONFIG_JSON",
        help="internal: measure one configuration in this process and print its results as "
        "tagged JSON lines (the main run starts one such process per configuration)",
    )
    args = parser.parse_args(argv)
    for key, value in (QUICK_DEFAULTS if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("steps", "latency_steps", "image_size"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be positive")
    if args.warmup < 0 or args.max_seconds < 0:
        parser.error("--warmup and --max-seconds cannot be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_configuration(json.loads(args.worker))
        return 0
    # This process only runs the host-side input pipeline: the GPU's memory stays with the measuring subprocesses.
    tf.config.set_visible_devices([], "GPU")
    machine = describe_machine()
    load_start = os.getloadavg()[0]
    try:
        pipeline = measure_pipeline(args.data, args.image_size, args.quick)
    except RdanetError as error:
        print(f"throughput: error: {error}", file=sys.stderr)
        return 1

    settings = compared_settings(args.precisions, args.jit)
    networks = [n for n in NETWORKS if n in args.networks]
    common = {
        key: getattr(args, key)
        for key in ("image_size", "base_width", "steps", "warmup", "latency_steps", "max_seconds")
    }
    results = []
    for index, (network, (precision, jit)) in enumerate(((n, s) for n in networks for s in settings), start=1):
        name = setting_name(precision, jit)
        print(f"[{index}/{len(networks) * len(settings)}] {network}, {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        config = {"network": network, "precision": precision, "jit": jit, **common}
        result = {
            "network": network,
            "setting": name,
            "precision": precision,
            "jit": jit,
            **run_in_subprocess(config, args.timeout),
        }
        print(
            f"    {time.perf_counter() - started:.0f} s" + (f", {result['error']}" if result["error"] else ""),
            file=sys.stderr,
            flush=True,
        )
        results.append(result)

    peak = estimate_peak(machine, args.peak_gflops)
    add_derived(results, peak)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": f"GPU {machine['gpus'][0]}" if machine["gpus"] else "CPU",
        "machine": machine,
        "load_average": {"start": load_start, "end": os.getloadavg()[0]},
        "auto_choice": {"precision": resolve_precision("auto"), "jit": resolve_jit("auto")},
        "settings": {**common, "batch_size": BATCH_SIZE, "quick": args.quick},
        "memory_measure": "GPU allocator peak (get_memory_info)"
        if machine["gpus"]
        else "peak resident set size (ru_maxrss, TensorFlow runtime included)",
        "peak": peak,
        "flop_convention": FLOP_CONVENTION,
        "results": results,
        "pipeline": pipeline,
    }
    text = markdown(report)
    write_json(args.out_dir / "throughput.json", report)
    write_text(args.out_dir / "throughput.md", text)
    print(text)
    print(f"{args.out_dir / 'throughput.json'}\n{args.out_dir / 'throughput.md'}")
    failed = [f"{r['network']}, {r['setting']}: {r['error']}" for r in results if r["error"]]
    for line in failed:
        print(f"throughput: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
