"""Where the time of a full-width RDAU-Net training step goes, by kind of work (issue 21).

Builds RDAU-Net (base width 32, 128x128x1, batch 32) compiled as the trainer compiles the ``paper``
recipe (``build_trainable``: Adam 1e-4, Dice + BCE, the training metrics) under one precision and XLA
setting, runs --warmup steps, traces --steps more with ``tf.profiler.experimental`` and reads the
trace's ``.xplane.pb``: TensorFlow ops (``name:Type``) without XLA, HLO thunks with XLA (mapped to
their TensorFlow ops by the HLO proto the trace carries). Each op's self time goes to a category by
its type and the RDAU-Net layer in its name (``enc3_conv1``, ``att2_psi``, ``up4``, ``dec1_bn1``).
Op time is summed over threads, which overlap: the wall-clock step is split in its proportions, and
the time no op covers (Python, dispatch, waits between ops) is added to "other".

Writes OUT/profile.json and OUT/profile.md; a run replaces its own setting there and keeps the others,
so the table compares every setting profiled so far.

    python benchmarks/profile_step.py --precision float32 --jit on --steps 3 --out benchmarks/results/profile
    python benchmarks/profile_step.py --precision mixed_bfloat16 --jit off --steps 3 --out benchmarks/results/profile
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from tensorflow.compiler.xla.service import hlo_pb2
from tensorflow.tsl.profiler.protobuf import xplane_pb2
from throughput import setting_name

from rdanet_gan.fileio import write_json, write_text
from rdanet_gan.machine import describe_machine
from rdanet_gan.training import set_precision
from rdanet_gan.training.build import build_trainable
from rdanet_gan.training.config import TrainConfig

CATEGORIES = (
    "convolution forward",
    "convolution backward: input gradient",
    "convolution backward: filter gradient",
    "BatchNorm (fwd + bwd)",
    "attention gates (fwd + bwd)",
    "bilinear upsampling (fwd + bwd)",
    "element-wise / activation",
    "XLA layout copies (no TF op)",
    "loss + metrics",
    "optimizer update (Adam)",
    "data / other (executor, gaps between ops)",
)
CONV, CONV_INPUT, CONV_FILTER, BN, ATTENTION, RESIZE, ELEMENTWISE, LAYOUT, LOSS, OPTIMIZER, OTHER = CATEGORIES
LAYOUT_OPCODES = {"fusion", "parameter", "copy", "transpose", "reverse", "bitcast", "reshape"}
EXECUTORS = ("ExecutorState::Process", "ThunkExecutor::Execute")  # their self time is scheduling overhead
LAYER = re.compile(r"\brdau_net[^/]*/([^/]+?)(?:_\d+)?/")  # Keras 3 appends _1 to a layer's name scope
TF_OP = re.compile(r"^([^ :]+):(\w+)$")
CONV_TYPES = re.compile(r"Conv2D|SpaceToBatchND|BatchToSpaceND")  # dilated convolutions go through space-to-batch
METHOD = (
    "a `tf.profiler.experimental` trace of the profiled steps, read from its `.xplane.pb`: the self time of each "
    "TensorFlow op (executor, no XLA) or HLO thunk (XLA; mapped to its TF op by the HLO proto in the trace, a fusion "
    "by its root), put in a category by op type and RDAU-Net layer name. Op time summed over threads (they overlap: "
    "`thread_ms_per_step` in profile.json) splits the wall-clock step; executor overhead and the time no op covers "
    "(Python, dispatch, waits between ops) are *other*; the inputs are tensors in memory (no input pipeline). "
    "Attention gates include their 1×1 convolutions, except under XLA, whose CPU compiler drops the metadata of the "
    "filter-gradient convolutions: there all of those are filter gradients. Bias adds, ReLUs, sigmoids, casts, "
    "additions, concatenations and gradient sums are element-wise; Keras's metric updates (unscoped) count as loss."
)


def classify(op_name: str, op_type: str) -> str:
    """The category of a TensorFlow op, from its type and the RDAU-Net layer its name is under."""
    match = LAYER.search(op_name)
    if match is None:
        first = op_name.split("/")[0]
        if first.lower() == "adam":
            return OPTIMIZER
        if op_type == "AddN" or first == "ArithmeticOptimizer":
            return ELEMENTWISE  # sums of the gradients of a tensor used twice
        return LOSS  # compile_loss/..., and the metric updates, which Keras leaves unscoped
    layer = match.group(1)
    if re.match(r"att\d", layer):
        return ATTENTION
    if re.match(r"up\d", layer):
        return RESIZE
    if CONV_TYPES.search(op_type):
        if "BackpropFilter" in op_type:
            return CONV_FILTER
        return CONV_INPUT if op_name.startswith("gradient_tape/") else CONV
    return BN if re.search(r"_bn\d*$", layer) else ELEMENTWISE


def hlo_ops(space: xplane_pb2.XSpace) -> dict[tuple[str, str], tuple[str, str]]:
    """(HLO module, instruction) -> (category, label), from the HLO protos of the trace's metadata plane."""
    ops = {}
    for plane in (p for p in space.planes if p.name == "/host:metadata"):
        for stat in (s for event in plane.event_metadata.values() for s in event.stats):
            if plane.stat_metadata[stat.metadata_id].name == "Hlo Proto":
                module = hlo_pb2.HloProto.FromString(stat.bytes_value).hlo_module
                ops.update({(module.name, name): value for name, value in module_ops(module).items()})
    return ops


def module_ops(module: hlo_pb2.HloModuleProto) -> dict[str, tuple[str, str]]:
    """Instruction -> (category, label) of one HLO module.

    An instruction takes its own TensorFlow metadata, else its fused computation's (root first), else, if it
    computes (the first half of a large reduction, a ``reduce-window``), its user's. XLA's CPU compiler drops the
    metadata of the filter-gradient convolutions (54 of RDAU-Net's 55; all 55 forward and 53 input-gradient ones
    keep theirs): a convolution or dot without any is a filter gradient, a copy or transpose a layout change.
    """
    computations = {c.id: c for c in module.computations}

    def source(op: hlo_pb2.HloInstructionProto) -> tuple[hlo_pb2.OpMetadata | None, set[str]]:
        tagged = [op] + [i for c in op.called_computation_ids for i in computations[c].instructions[::-1]]
        return next((i.metadata for i in tagged if i.metadata.op_name), None), {i.opcode for i in tagged}

    ops = {}
    for computation in computations.values():
        users = defaultdict(list)
        for op in computation.instructions:
            for operand in op.operand_ids:
                users[operand].append(op)
        for op in computation.instructions:
            metadata, opcodes = source(op)
            computes = opcodes - LAYOUT_OPCODES
            if metadata is None and computes - {"convolution", "dot"}:
                metadata = next((m for m, _ in map(source, users[op.id]) if m is not None), None)
            if metadata is not None:
                category = classify(metadata.op_name, metadata.op_type)
            else:
                category = CONV_FILTER if computes & {"convolution", "dot"} else OTHER if computes else LAYOUT
            ops[op.name] = (category, f"{op.name} ({metadata.op_name})" if metadata else op.name)
    return ops


def line_events(plane: xplane_pb2.XPlane, line: xplane_pb2.XLine, hlo: dict) -> tuple[list, list]:
    """The step windows on ``line``, and its ops and executors as (start ps, end ps, category, label)."""
    windows, timed = [], []
    names = plane.stat_metadata
    for event in line.events:
        name = plane.event_metadata[event.metadata_id].name
        start = line.timestamp_ns * 1000 + event.offset_ps
        end = start + event.duration_ps
        stats = {
            names[s.metadata_id].name: names[s.ref_value].name if s.ref_value else s.str_value for s in event.stats
        }
        tf_op = TF_OP.match(name)
        if "step_num" in stats:
            windows.append((start, end))
        elif "hlo_op" in stats:
            timed.append((start, end, *hlo.get((stats.get("hlo_module"), stats["hlo_op"]), (OTHER, stats["hlo_op"]))))
        elif name in EXECUTORS:
            timed.append((start, end, OTHER, name))
        elif tf_op and not name.startswith("__inference"):
            timed.append((start, end, classify(*tf_op.groups()), name))
    return windows, timed


def self_times(timed: list[tuple[int, int, str, str]]) -> Counter:
    """Self time of each (category, label) on one thread: its duration less the events nested in it."""
    times: Counter = Counter()
    stack: list[list] = []  # [end, self time, category, label] of the enclosing events
    for start, end, category, label in sorted(timed, key=lambda e: (e[0], -e[1])):
        while stack and stack[-1][0] <= start:
            done = stack.pop()
            times[(done[2], done[3])] += max(done[1], 0)
        if stack:
            stack[-1][1] -= end - start
        stack.append([end, end - start, category, label])
    for done in stack:
        times[(done[2], done[3])] += max(done[1], 0)
    return times


def read_trace(logdir: str) -> dict:
    """Self time per (category, label) summed over threads, the step windows, and the time ops cover in them (ps)."""
    (path,) = Path(logdir).rglob("*.xplane.pb")
    space = xplane_pb2.XSpace.FromString(path.read_bytes())
    hlo = hlo_ops(space)
    host = next(p for p in space.planes if p.name == "/host:CPU")
    per_line = [line_events(host, line, hlo) for line in host.lines]
    windows = sorted(w for line_windows, _ in per_line for w in line_windows)
    ops: Counter = Counter()
    merged: list[list[int]] = []  # the union of the op intervals
    inside = [[e for e in timed if any(lo <= e[0] < hi for lo, hi in windows)] for _, timed in per_line]
    for timed in inside:
        ops.update(self_times(timed))
    for start, end, _, _ in sorted(e for timed in inside for e in timed):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    covered = sum(max(0, min(end, hi) - max(start, lo)) for start, end in merged for lo, hi in windows)
    return {"windows": windows, "ops": ops, "covered": covered}


def profile_setting(
    precision: str, jit: bool, steps: int = 3, warmup: int = 2, base_width: int = 32, image_size: int = 128,
    batch_size: int = 32,
) -> dict:  # fmt: skip
    """Build, warm up and profile the training step of one setting; its breakdown per category."""
    previous = keras.mixed_precision.global_policy().name
    set_precision(precision)
    keras.utils.set_random_seed(0)
    config = TrainConfig.from_recipe(
        "paper", model="rdau-net", base_width=base_width, image_size=image_size, batch_size=batch_size,
        precision=precision, jit="on" if jit else "off",
    )  # fmt: skip
    model, _ = build_trainable(config, jit_compile=jit)
    keras.mixed_precision.set_global_policy(previous)  # the model keeps the policy it was built under
    shape = (batch_size, image_size, image_size, 1)
    images = tf.random.uniform(shape, seed=1)
    masks = tf.cast(tf.random.uniform(shape, seed=2) > 0.5, tf.float32)
    warmup_s = []
    for _ in range(warmup):
        start = time.perf_counter()
        model.train_on_batch(images, masks)  # returns numbers: the step has finished
        warmup_s.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for step in range(steps):
            with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                model.train_on_batch(images, masks)
        tf.profiler.experimental.stop()
        trace = read_trace(logdir)
    per_step = 1e9 * len(trace["windows"])  # ps per ms, times the steps
    step_ms = sum(hi - lo for lo, hi in trace["windows"]) / per_step
    untraced_ms = step_ms - trace["covered"] / per_step
    thread_ms, layers = Counter(), Counter()
    for (category, label), ps in trace["ops"].items():
        thread_ms[category] += ps / per_step
        layer = LAYER.search(label)
        layers[layer.group(1) if layer else category] += ps / per_step
    categories = {}
    for category in CATEGORIES:  # the covered time split as the op time summed over threads
        ms = (step_ms - untraced_ms) * thread_ms[category] / thread_ms.total() + (category == OTHER) * untraced_ms
        categories[category] = {"ms_per_step": ms, "share": ms / step_ms, "thread_ms_per_step": thread_ms[category]}
    return {
        "precision": precision, "jit": jit, "base_width": base_width, "image_size": image_size,
        "batch_size": batch_size, "warmup_steps": warmup, "profiled_steps": len(trace["windows"]),
        "step_ms": step_ms, "images_per_second": 1e3 * batch_size / step_ms,
        "unprofiled_images_per_second": batch_size / float(np.median(warmup_s[1:])) if warmup > 1 else None,
        "first_step_s": warmup_s[0] if warmup_s else None, "untraced_ms_per_step": untraced_ms,
        "thread_ms_per_step": thread_ms.total(), "categories": categories,
        "layers_thread_ms_per_step": dict(layers.most_common(12)),
        "top_ops": [
            {"op": label, "category": category, "thread_ms_per_step": ps / per_step}
            for (category, label), ps in trace["ops"].most_common(10)
        ],
    }  # fmt: skip


def markdown(report: dict) -> str:
    """The combined table (categories as rows, a column pair per setting) and how it was measured."""
    runs, machine = report["settings"], report["machine"]
    rows = {c: [(f"{r['categories'][c]['ms_per_step']:,.0f}", f"{100 * r['categories'][c]['share']:.1f} %")
                for r in runs.values()] for c in CATEGORIES}  # fmt: skip
    rows["**step (wall clock)**"] = [(f"**{r['step_ms']:,.0f}**", "100 %") for r in runs.values()]
    rows["images / s, profiled steps"] = [(f"{r['images_per_second']:.2f}", "") for r in runs.values()]
    rows["images / s, last warm-up step (no profiler)"] = [
        (f"{r['unprofiled_images_per_second']:.2f}" if r["unprofiled_images_per_second"] else "–", "")
        for r in runs.values()
    ]
    header = ["category", *(f"{name}: {unit}" for name in runs for unit in ("ms / step", "share"))]
    first = next(iter(runs.values()))
    lines = [
        f"### RDAU-Net training step (base width {first['base_width']}, {first['image_size']}² × 1, batch "
        + f"{first['batch_size']}; paper recipe: Adam 1e-4, Dice + BCE, training metrics)",
        "",
        "| " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * (len(header) - 1),
        *("| " + " | ".join([name, *(v for pair in cells for v in pair)]) + " |" for name, cells in rows.items()),
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, flags {', '.join(machine['cpu_flags'])}; no GPU; "
        + f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}.",
        f"- Method: {METHOD}",
    ]
    for name, r in runs.items():
        layers = ", ".join(f"{layer} {ms:,.0f}" for layer, ms in list(r["layers_thread_ms_per_step"].items())[:6])
        top = "; ".join(f"`{t['op']}` {t['thread_ms_per_step']:,.0f}" for t in r["top_ops"][:4])
        lines.append(
            f"- {name}: {r['warmup_steps']} warm-up steps (the first {r['first_step_s']:.0f} s, with compilation), "
            f"{r['profiled_steps']} profiled, {r['date']}; load average {r['load_average'][0]:.2f} at the start, "
            f"{r['load_average'][1]:.2f} at the end. Thread ms / step by layer: {layers}; largest ops: {top}."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32")
    parser.add_argument("--jit", choices=("on", "off"), default="off", help="XLA compilation of the step")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (default: 3)")
    parser.add_argument("--warmup", type=int, default=2, help="steps before profiling, the first compiles (default: 2)")
    parser.add_argument("--base-width", type=int, default=32, help="RDAU-Net base width (default: 32, the paper's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "profile")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be positive and --warmup not negative")
    load_start = os.getloadavg()[0]
    result = profile_setting(args.precision, args.jit == "on", args.steps, args.warmup, args.base_width)
    result["load_average"] = [load_start, os.getloadavg()[0]]
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    path = args.out / "profile.json"
    report = json.loads(path.read_text()) if path.exists() else {"settings": {}}
    report["machine"] = describe_machine()
    report["settings"][setting_name(args.precision, args.jit == "on")] = result
    write_json(path, report)
    write_text(args.out / "profile.md", markdown(report))
    print(markdown(report) + f"\n{path}\n{args.out / 'profile.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
