"""Where the MobileNetV2 model's prediction time goes, against the fastest convolution arithmetic of this CPU.

"The default model" below is ``rdau_net_mobilenet_v2`` (``MOBILENET_MODEL``), the package's default when this was
measured and still the shipped model with a LiteRT export.

Prediction speed is arithmetic per scan divided by arithmetic per second. This measures, in one process
and one after the other, on the same machine:

- a compute-bound probe (six 3×3 convolutions of 128 channels at 32×32, batch 32: the densest work a CPU
  convolution does) in LiteRT float32 and int8, whose FLOP/s is the most XNNPACK reaches here in each type;
- the shipped default model in Keras float32 and LiteRT float32 and int8, with its FLOP/s (FLOPs counted by
  ``rdanet_gan.models.complexity.count_flops``: convolutions only, a multiply-add as two);
- where its LiteRT float32 time goes: the model cut after the encoder, the dilated module and each decoder level
  (each cut ends in a 1×1 convolution to one channel and a sigmoid, so it exports alike), timed the same way;
  each stage's time is the difference between consecutive cuts.

If every operation of the default model ran at the probe's float32 rate, it would predict
``probe FLOP/s ÷ model FLOPs`` scans per second: the ceiling of a float32 export, and the stages far below
the probe's rate are where a float export loses its time.

    python benchmarks/prediction_profile.py [--steps 10] [--name prediction-profile] [--as-saved]

``--as-saved`` loads the default model as its file holds it (``load_packed``), with the plain dilated
``Conv2D`` layers it was saved with, instead of through ``load_segmenter`` (which makes them ``DilatedConv2D``).

Writes ``benchmarks/results/NAME.{json,md}``. Stop other work on the machine while it runs: it is timing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prediction_speed import timed  # a sibling script

from rdanet_gan.data import make_phantoms
from rdanet_gan.fileio import write_report
from rdanet_gan.inference.litert import LiteRTSegmenter, export_litert
from rdanet_gan.inference.model_files import MOBILENET_MODEL, WEIGHTS_DIR, load_shipped
from rdanet_gan.machine import describe_machine
from rdanet_gan.models.complexity import count_flops

RESULTS_DIR = Path(__file__).parent / "results"
PROBE_SIZE, PROBE_CHANNELS, PROBE_LAYERS = 32, 128, 6
CUTS = {"encoder": "dilated_r1", "dilated module": "dilated_sum", **{f"decoder level {k}": f"dec{k}_add" for k in (5, 4, 3, 2, 1)}}
"""Stage → the layer after which the default model is cut (``dilated_r1``: its input, the encoder's last map)."""


def probe_model():
    """Six 3×3 convolutions of ``PROBE_CHANNELS`` channels, ending in a one-channel sigmoid ``mask`` (exportable)."""
    import keras
    from keras import layers

    image = keras.Input((PROBE_SIZE, PROBE_SIZE, 1))
    x = layers.Conv2D(PROBE_CHANNELS, 1)(image)
    for _ in range(PROBE_LAYERS):
        x = layers.Conv2D(PROBE_CHANNELS, 3, padding="same", activation="relu")(x)
    logits = layers.Conv2D(1, 1)(x)
    return keras.Model(image, layers.Activation("sigmoid", name="mask")(logits), name="probe")


def cut(model, stage: str, layer: str):
    """``model`` up to ``layer`` (its input for the encoder), ending in a one-channel sigmoid ``mask``."""
    import keras
    from keras import layers

    features = model.get_layer(layer).input if stage == "encoder" else model.get_layer(layer).output
    logits = layers.Conv2D(1, 1, name="cut_logits")(features)
    return keras.Model(model.input, layers.Activation("sigmoid", name="mask")(logits), name=f"cut-{layer}")


def stage_times(model, folder: Path, steps: int) -> dict:
    """Seconds per batch-32 of LiteRT float32 and GFLOPs per scan of each stage of ``model`` (cuts differenced)."""
    images = np.random.default_rng(0).random((32, *model.input_shape[1:]), dtype=np.float32)
    cuts = {stage: cut(model, stage, layer) for stage, layer in CUTS.items()}
    cuts["output (logits, sigmoid)"] = model
    rows, previous = {}, (0.0, 0.0)
    for stage, part in cuts.items():
        runner = LiteRTSegmenter(export_litert(part, folder / f"{part.name}.tflite"))
        seconds = len(images) / timed(runner, images, steps)["images_per_second"]
        gflops = count_flops(part) / 1e9
        rows[stage] = {"seconds_per_batch": seconds - previous[0], "gflops_per_image": gflops - previous[1]}
        previous = (seconds, gflops)
        print(f"stage {stage}: {rows[stage]['seconds_per_batch'] * 1e3:.1f} ms per batch", flush=True)
    return rows


def measure(model, calibration: np.ndarray, folder: Path, steps: int, keras_too: bool) -> dict:
    """Images/s and GFLOP/s of ``model`` in LiteRT float32 and int8 (and Keras float32 when asked)."""
    gflops = count_flops(model) / 1e9
    images = np.random.default_rng(0).random((32, *model.input_shape[1:]), dtype=np.float32)
    runners = {"keras float32": model.predict_on_batch} if keras_too else {}
    for quantization in ("float32", "int8"):
        path = export_litert(model, folder / f"{model.name}-{quantization}.tflite", quantization, calibration)
        runners[f"litert {quantization}"] = LiteRTSegmenter(path)
    rows = {"gflops_per_image": gflops}
    for backend, predict in runners.items():
        speed = timed(predict, images, steps)
        rows[backend] = {"images_per_second": speed["images_per_second"], "gflop_per_second": speed["images_per_second"] * gflops}
        print(f"{model.name} | {backend}: {speed['images_per_second']:.1f} img/s", flush=True)
    return rows


def markdown(report: dict) -> str:
    probe, default, machine = report["probe"], report["default"], report["machine"]
    keras_speed = default["keras float32"]["images_per_second"]
    lines = [
        "### Where prediction time goes (default model, 128×128, batch 32)",
        "",
        "| work | backend | images/s | GFLOP/s | × Keras float32 (default model) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, rows in (("probe: six 3×3 convolutions, 128 channels, 32×32", probe), ("default model", default)):
        for backend, row in rows.items():
            if backend == "gflops_per_image":
                continue
            ratio = f"×{row['images_per_second'] / keras_speed:.2f}" if rows is default else "–"
            lines.append(f"| {name} | {backend} | {row['images_per_second']:.1f} | {row['gflop_per_second']:.1f} | {ratio} |")
    ceiling = report["float32_ceiling_images_per_second"]
    total = sum(row["seconds_per_batch"] for row in report["stages"].values())
    lines += [
        "",
        "Where the default model's LiteRT float32 time goes (cuts after each stage, differenced; batch 32):",
        "",
        "| stage | ms per batch | share of time | share of FLOPs | GFLOP/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for stage, row in report["stages"].items():
        rate = 32 * row["gflops_per_image"] / row["seconds_per_batch"] if row["seconds_per_batch"] > 0 else float("nan")
        lines.append(
            f"| {stage} | {1e3 * row['seconds_per_batch']:.1f} | {row['seconds_per_batch'] / total:.0%} "
            f"| {row['gflops_per_image'] / default['gflops_per_image']:.0%} | {rate:.1f} |"
        )
    probe_rate = probe["litert float32"]["gflop_per_second"]
    lines += [
        "",
        (
            f"- The default model: {default['gflops_per_image']:.3f} GFLOPs per scan. At the probe's LiteRT float32 "
            f"rate ({probe_rate:.1f} GFLOP/s) it would predict at most {ceiling:.0f} scans/s, "
            f"×{ceiling / keras_speed:.2f} Keras float32 (the target: ×2)."
        ),
        f"- Measured {report['date']} on {machine['cpu']} ({machine['cores']} cores); `{report['command']}`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed batch-32 batches (and 8x as many single scans)")
    parser.add_argument("--name", default="prediction-profile", help="results file name (without suffix)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument("--as-saved", action="store_true", help="the default model's layers as saved, no DilatedConv2D")
    args = parser.parse_args(argv)
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": describe_machine()}
    report["command"] = " ".join(["python benchmarks/prediction_profile.py", *(argv if argv is not None else sys.argv[1:])])
    calibration = make_phantoms(64, image_size=128, seed=0)[0]  # int8 ranges: speed only, no Dice here
    with tempfile.TemporaryDirectory(prefix="prediction-profile-") as folder:
        probe_scans = calibration[:, : PROBE_SIZE, : PROBE_SIZE]
        report["probe"] = measure(probe_model(), probe_scans, Path(folder), args.steps, keras_too=False)
        default = load_shipped(MOBILENET_MODEL)
        if args.as_saved:
            from rdanet_gan.models.packed import load_packed

            default = load_packed(WEIGHTS_DIR / MOBILENET_MODEL)  # checked by load_shipped; no DilatedConv2D
        report["default"] = measure(default, calibration, Path(folder), args.steps, keras_too=True)
        report["stages"] = stage_times(default, Path(folder), args.steps)
    report["float32_ceiling_images_per_second"] = (
        report["probe"]["litert float32"]["gflop_per_second"] / report["default"]["gflops_per_image"]
    )
    write_report(args.out, args.name, report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
