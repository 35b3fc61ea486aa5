"""Prediction speed and accuracy: TensorFlow (Keras ``predict_on_batch``, float32 and mixed bfloat16) against LiteRT exports.

For each network, in one process and one after the other on the same inputs:
Keras float32 (what ``segment --backend keras`` runs), then its LiteRT exports
(``rdanet_gan.inference.litert``: float32, float16 weights, int8 calibrated on scans).
Each gets batch-32 images/s and batch-1 latency (median and p90), with the
ratio to Keras, and the largest probability difference from Keras on the
timed batch. With ``--data`` (BUSI) the shipped default model's exports are
calibrated on its training scans and scored on the validation scans (pooled
Dice under its shipped inference settings, and with plain masks, threshold
0.5 alone): an export is accurate when that Dice is within 0.005 of Keras's. Networks: the shipped default model
(``rdau_net_mobilenet_v2``) and the shipped paper models at width 8 and at
the paper's width 32. Keras also runs the network in mixed bfloat16 (float32
weights and output layer): fast where the CPU has bf16 arithmetic (AMX).

Exports are written (and timed apart) before any prediction is timed. Stop
other work on the machine while this runs: it is timing.

    python benchmarks/prediction_speed.py [--data BUSI_DIR] [--quick] [--out benchmarks/results]

Writes OUT/prediction.json and OUT/prediction.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from rdanet_gan.data import load_split, make_phantoms, prepare_data
from rdanet_gan.evaluation.evaluate import evaluate_model
from rdanet_gan.fileio import portable, write_json, write_text
from rdanet_gan.inference.litert import QUANTIZATIONS, LiteRTSegmenter, export_litert
from rdanet_gan.inference.model_files import (
    DEFAULT_MODEL,
    FULL_SIZE_MODEL,
    MOBILENET_MODEL,
    PAPER_MODEL,
    WEIGHTS_DIR,
    load_shipped,
)
from rdanet_gan.inference.settings import InferenceSettings, read_inference
from rdanet_gan.machine import describe_machine

RESULTS_DIR = Path(__file__).parent / "results"
BATCH = 32
ACCURATE = 0.005
"""Largest validation-Dice change from Keras float32 for an export to count as accurate."""


def networks() -> dict:
    """Name -> (a function building the Keras network, the shipped file whose settings it has, or None)."""
    return {
        "default (VGG16-HED + RDAU-Net decoder, width 8)": (lambda: load_shipped(DEFAULT_MODEL), DEFAULT_MODEL),
        "MobileNetV2 + RDAU-Net decoder, width 8": (lambda: load_shipped(MOBILENET_MODEL), MOBILENET_MODEL),
        "paper model, width 8": (lambda: load_shipped(PAPER_MODEL), PAPER_MODEL),
        "paper model, full size (width 32)": (lambda: load_shipped(FULL_SIZE_MODEL), FULL_SIZE_MODEL),
    }


def bfloat16_copy(model):
    """The same network computing in bfloat16 (float32 weights and output layer), as mixed precision trains."""

    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer" and layer["config"].get("name") != model.layers[-1].name:
            layer["config"]["dtype"] = "mixed_bfloat16"
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def timed(predict, images: np.ndarray, steps: int) -> dict:
    """Batch-32 images/s (best of ``steps`` after a warm-up) and batch-1 latency (median, p90)."""
    predict(images)
    batch = []
    for _ in range(steps):
        start = time.perf_counter()
        predict(images)
        batch.append(time.perf_counter() - start)
    predict(images[:1])
    single = []
    for _ in range(steps * 8):
        start = time.perf_counter()
        predict(images[:1])
        single.append(time.perf_counter() - start)
    return {
        "images_per_second": len(images) / float(np.median(batch)),
        "latency_ms_median": 1e3 * float(np.median(single)),
        "latency_ms_p90": 1e3 * float(np.percentile(single, 90)),
    }


def measure(name: str, model, calibration: np.ndarray, validation, settings, steps: int, folder: Path) -> dict:
    """Every backend of one network: export times, speed, agreement with Keras and (for shipped models) Dice."""
    images = np.random.default_rng(0).random((BATCH, *model.input_shape[1:]), dtype=np.float32)
    backends = {"keras float32": model, "keras mixed_bfloat16": bfloat16_copy(model)}
    exports = {}
    for quantization in QUANTIZATIONS:
        start = time.perf_counter()
        path = export_litert(model, folder / f"{len(os.listdir(folder))}.tflite", quantization, calibration=calibration)
        exports[quantization] = {"export_seconds": time.perf_counter() - start, "megabytes": path.stat().st_size / 1e6}
        backends[f"litert {quantization}"] = LiteRTSegmenter(path)
    reference = np.asarray(model.predict_on_batch(images))
    rows = {}
    for backend, segmenter in backends.items():
        predict = segmenter.predict_on_batch if backend.startswith("keras") else segmenter
        row = {**timed(predict, images, steps), **exports.get(backend.removeprefix("litert "), {})}
        row["largest_difference"] = float(np.abs(np.asarray(predict(images)) - reference).max())
        if validation is not None and settings is not None:
            row["validation_dice"] = float(evaluate_model(segmenter, validation, settings).pooled["dice"])
            row["validation_dice_plain"] = float(evaluate_model(segmenter, validation, InferenceSettings()).pooled["dice"])
        rows[backend] = row
        print(f"{name} | {backend}: {row['images_per_second']:.1f} img/s, {row['latency_ms_median']:.1f} ms", flush=True)
    return rows


def markdown(report: dict) -> str:
    lines = [
        "### Prediction: TensorFlow against LiteRT (128×128; ×: relative to Keras float32)",
        "",
        (
            "| network | backend | batch-32 img/s | batch-1 latency ms (median / p90) | file MB "
            "| largest probability difference | validation Dice | plain masks |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for network, rows in report["networks"].items():
        keras_row = rows["keras float32"]
        for backend, row in rows.items():
            speed = row["images_per_second"] / keras_row["images_per_second"]
            latency = row["latency_ms_median"] / keras_row["latency_ms_median"]
            dice = " | ".join(
                f"{row[key]:.4f}" if key in row else "–" for key in ("validation_dice", "validation_dice_plain")
            )
            size = f"{row['megabytes']:.1f}" if "megabytes" in row else "–"
            lines.append(
                f"| {network} | {backend} | {row['images_per_second']:.1f} (×{speed:.2f}) | "
                f"{row['latency_ms_median']:.1f} / {row['latency_ms_p90']:.1f} (×{latency:.2f}) | {size} | "
                f"{row['largest_difference']:.1g} | {dice} |"
            )
    machine = report["machine"]
    lines += [
        "",
        (f"- Measured {report['date']} on {machine['cpu']} ({machine['cores']} cores), TensorFlow {machine['tensorflow']}; "
        f"`{report['command']}`."),
        ("- Keras: `predict_on_batch` in float32 (what `segment --backend keras` runs); LiteRT: the export's interpreter "
        f"({report['interpreter']}) with XNNPACK, as many threads as cores; batch-32 speed is the median of the timed "
        "batches, batch-1 latency over eight times as many single scans."),
        (f"- Validation Dice: pooled over the validation scans of `rdanet_gan/weights/split.json` under the shipped "
        f"settings (plain masks: threshold 0.5 alone); an export is accurate within {ACCURATE} of Keras. int8 ranges come from training scans "
        "(phantoms without --data); mixed bfloat16 keeps float32 weights and output layer."),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="BUSI folder: calibrate int8 on training scans and score validation Dice")
    parser.add_argument("--steps", type=int, default=10, help="timed batch-32 batches (and 8x as many single scans)")
    parser.add_argument("--quick", action="store_true", help="the default model only, 2 steps: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for prediction.json and .md")
    args = parser.parse_args(argv)
    steps = 2 if args.quick else args.steps
    chosen = dict(list(networks().items())[:1]) if args.quick else networks()
    phantoms = make_phantoms(64, image_size=128, seed=0)[0]
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": describe_machine(), "networks": {}}
    report["command"] = portable(" ".join(["python benchmarks/prediction_speed.py", *(argv or sys.argv[1:])]), args.data)
    try:
        import ai_edge_litert

        interpreter = f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '')}".strip()
    except ImportError:
        interpreter = "tf.lite.Interpreter (TensorFlow)"
    report["interpreter"] = interpreter
    data = None
    if args.data:  # decoded once: the shipped networks calibrate on its training scans and score its validation
        data = prepare_data(args.data, {**load_split(WEIGHTS_DIR / "split.json"), "test": []})
    with tempfile.TemporaryDirectory(prefix="prediction-speed-") as folder:
        for name, (build, shipped) in chosen.items():
            scored = data is not None and shipped is not None
            settings = read_inference(WEIGHTS_DIR / shipped) if scored else None
            calibration = data.train.images if scored else phantoms
            validation = data.validation if scored else None
            report["networks"][name] = measure(name, build(), calibration, validation, settings, steps, Path(folder))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "prediction.json", report)
    write_text(args.out / "prediction.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
