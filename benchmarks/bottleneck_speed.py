"""Full-width RDAU-Net speed before and after ``DilatedConv2D`` (issue 21), side by side in one run.

RDAU-Net's bottleneck runs 3×3 convolutions at dilations 1 to 32 on a 4×4 map; from dilation 4 on, every
tap but the centre lands in the padding. ``rdanet_gan.models.blocks.DilatedConv2D`` computes those as
their centre 1×1 convolution (same outputs and gradients, ``tests/test_models.py``). This script builds
the network both ways (the "before" row swaps in Keras's ``Conv2D``) and times, in a fresh process for
each row, training steps and inference at batch 32 under float32, float32 + XLA and mixed bfloat16, and
RDA-NET-GAN's mean step (a critic step and a generator step, as ``throughput.py`` times them).
Stop other work while it runs.

    python benchmarks/bottleneck_speed.py [--steps 3] [--out benchmarks/results] [--name bottleneck_speed]

Writes OUT/NAME.json and OUT/NAME.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"
SETTINGS = (("float32", True), ("float32", False), ("mixed_bfloat16", False))
"""(precision, XLA) rows; XLA cannot compile mixed bfloat16 training on a CPU (``training/precision.py``)."""
BATCH = 32


def measure(precision: str, jit: bool, before: bool, steps: int) -> dict:
    """Training and inference images/s of one build (run in its own process: the dtype policy is global)."""
    import keras
    import numpy as np

    keras.mixed_precision.set_global_policy(precision)
    from rdanet_gan.models import blocks, build_rdau_net

    if before:
        blocks.DilatedConv2D = keras.layers.Conv2D
    model = build_rdau_net(input_shape=(128, 128, 1), base_width=32)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy", jit_compile=jit)
    images = np.random.default_rng(0).random((BATCH, 128, 128, 1), dtype=np.float32)
    masks = (images > 0.5).astype(np.float32)
    for _ in range(2):  # tracing and compilation, then one warm step
        model.train_on_batch(images, masks)
        model.predict_on_batch(images)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, masks)
    training = BATCH * steps / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(steps):
        model.predict_on_batch(images)
    inference = BATCH * steps / (time.perf_counter() - start)
    return {"training": training, "inference": inference, "gan_step": gan_step_rate(jit, steps)}


def gan_step_rate(jit: bool, steps: int) -> float:
    """Images/s of RDA-NET-GAN's mean step (critic step and generator step), timed by ``throughput.py``'s code."""
    sys.path.insert(0, str(Path(__file__).parent))
    import throughput

    config = {"image_size": 128, "base_width": 32, "jit": jit, "warmup": 1, "steps": steps, "max_seconds": 600.0}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        throughput.measure_gan(config)
    records = [json.loads(line[len(throughput.RESULT_TAG) :]) for line in printed.getvalue().splitlines()
               if line.startswith(throughput.RESULT_TAG)]  # fmt: skip
    seconds = [BATCH / record["images_per_second"] for record in records if "measurement" in record]
    return BATCH * len(seconds) / sum(seconds)


def gan(row: dict) -> str:
    return f"{row['gan_step']:.2f}" if "gan_step" in row else "–"  # reports made before the GAN column have none


def gan_ratio(before: dict, after: dict) -> str:
    return f"×{after['gan_step'] / before['gan_step']:.2f}" if "gan_step" in before else "–"


def markdown(report: dict) -> str:
    lines = [
        "### Full-width RDAU-Net (width 32, 128×128, batch 32): the dilated bottleneck before and after `DilatedConv2D`",
        "",
        (
            "| setting | training img/s before | after | × | inference img/s before | after | × "
            "| GAN mean step img/s before | after | × |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["rows"]:
        before, after = row["before"], row["after"]
        lines.append(
            f"| {row['setting']} | {before['training']:.2f} | {after['training']:.2f} | "
            f"×{after['training'] / before['training']:.2f} | {before['inference']:.1f} | {after['inference']:.1f} | "
            f"×{after['inference'] / before['inference']:.2f} | {gan(before)} | {gan(after)} | "
            f"{gan_ratio(before, after)} |"
        )
    lines += [
        "",
        (f"- Measured {report['date']} on {report['machine']}; `{report['command']}`; {report['steps']} timed "
         "steps after two untimed ones, each row a fresh process, other work paused."),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps and inference batches per row")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the report")
    parser.add_argument("--name", default="bottleneck_speed", help="file name of the report, without .json / .md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(**json.loads(args.worker))))
        return 0
    from rdanet_gan.fileio import write_report
    from rdanet_gan.machine import describe_machine

    machine = describe_machine()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{machine['cpu']} ({machine['cores']} cores), TensorFlow {machine['tensorflow']}",
        "command": " ".join(["python benchmarks/bottleneck_speed.py", *(argv or sys.argv[1:])]),
        "steps": args.steps,
        "rows": [],
    }
    for precision, jit in SETTINGS:
        row = {"setting": f"{precision} + XLA" if jit else precision}
        for label, before in (("before", True), ("after", False)):
            worker = json.dumps({"precision": precision, "jit": jit, "before": before, "steps": args.steps})
            result = subprocess.run(
                [sys.executable, __file__, "--worker", worker], capture_output=True, text=True, check=True
            )
            row[label] = json.loads(result.stdout.strip().splitlines()[-1])
            print(row["setting"], label, row[label], flush=True)
        report["rows"].append(row)
    write_report(args.out, args.name, report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
