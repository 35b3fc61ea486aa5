"""Selective int8 LiteRT: does keeping the layers that quantize worst in float bring int8 within 0.005 Dice?

The full int8 export of the MobileNetV2 model (``MOBILENET_MODEL``, the default when this was measured) predicts 3× faster than Keras float32 but its validation Dice under
the shipped settings differs by 0.009 (``prediction_speed.py``). This ranks the quantized tensors by their
error (root-mean-square difference from float, in units of the tensor's quantization step, from TensorFlow's
``QuantizationDebugger`` on 16 training scans), then exports the model with the worst K of them left in
float for each K asked, and scores each export on the validation scans of ``rdanet_gan/weights/split.json``
(shipped settings, and plain masks) beside Keras float32, with its batch-32 speed.

    python benchmarks/int8_sensitivity.py --data $BUSI --float-layers 0,5,10,20 --name int8-sensitivity
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prediction_speed import timed  # a sibling script

from rdanet_gan.data import load_split, prepare_data
from rdanet_gan.evaluation.evaluate import evaluate_model
from rdanet_gan.fileio import portable, write_report
from rdanet_gan.inference.litert import CALIBRATION_SCANS, LiteRTSegmenter, litert_converter
from rdanet_gan.inference.model_files import MOBILENET_MODEL, WEIGHTS_DIR, load_shipped
from rdanet_gan.inference.settings import InferenceSettings, read_inference
from rdanet_gan.machine import describe_machine

RESULTS_DIR = Path(__file__).parent / "results"
DEBUG_SCANS = 16  # scans the debugger runs to measure each tensor's error


def ranked_tensors(model, calibration: np.ndarray) -> list[dict]:
    """The quantized tensors, worst first: name, operator and error in quantization steps."""
    import tensorflow as tf

    def scans():
        return ([np.asarray(scan, np.float32)[None]] for scan in calibration[:DEBUG_SCANS])

    with litert_converter(model, "int8", calibration) as converter:
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=scans)
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        scale = float(row["scale"])
        error = float(np.sqrt(float(row["mean_squared_error"])) / scale) if scale else 0.0
        rows.append({"tensor": row["tensor_name"], "operator": row["op_name"], "error_steps": error})
    return sorted(rows, key=lambda row: -row["error_steps"])


def selective_export(model, calibration: np.ndarray, float_tensors: list[str], path: Path) -> Path:
    """``model`` as int8 LiteRT with ``float_tensors`` (tensor names) left in float."""
    import tensorflow as tf

    def scans():
        return ([np.asarray(scan, np.float32)[None]] for scan in calibration[:DEBUG_SCANS])

    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_tensors)
    with litert_converter(model, "int8", calibration) as converter:
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=scans, debug_options=options)
        path.write_bytes(debugger.get_nondebug_quantized_model())
    return path


def speed(segmenter, shape: tuple[int, ...]) -> float:
    """Batch-32 images per second (``prediction_speed.timed``: median of 5 timed batches after a warm-up)."""
    return timed(segmenter, np.random.default_rng(0).random((32, *shape), dtype=np.float32), steps=5)["images_per_second"]


def markdown(report: dict) -> str:
    lines = [
        "### Selective int8: the worst-quantized tensors left in float (default model, 128×128)",
        "",
        "| tensors in float | validation Dice, shipped settings | difference from Keras | plain masks | difference | batch-32 img/s | file MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keras_row = report["keras_float32"]
    lines.append(f"| Keras float32 | {keras_row['dice']:.4f} | 0 | {keras_row['dice_plain']:.4f} | 0 | {keras_row['images_per_second']:.1f} | – |")
    for count, row in report["rows"].items():
        lines.append(
            f"| {count} | {row['dice']:.4f} | {row['dice'] - keras_row['dice']:+.4f} | {row['dice_plain']:.4f} | "
            f"{row['dice_plain'] - keras_row['dice_plain']:+.4f} | {row['images_per_second']:.1f} | {row['megabytes']:.1f} |"
        )
    lines += [
        "",
        f"- Measured {report['date']} on {report['machine']['cpu']} ({report['machine']['cores']} cores); `{report['command']}`.",
        f"- Tensors ranked by quantization error on {DEBUG_SCANS} training scans (worst: "
        + ", ".join(f"`{row['operator']}` {row['error_steps']:.2f} steps" for row in report["ranking"][:3])
        + f"); int8 ranges from {CALIBRATION_SCANS} training scans; validation: the 50 lesion scans of "
        "`rdanet_gan/weights/split.json`. Speed measured with other work on the machine: compare within the table only.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="BUSI folder: training scans calibrate, validation scans score")
    parser.add_argument("--float-layers", default="0,5,10,20", help="counts K of worst tensors to keep in float")
    parser.add_argument("--name", default="int8-sensitivity", help="results file stem under --out")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for NAME.json and NAME.md")
    args = parser.parse_args(argv)
    counts = [int(count) for count in args.float_layers.split(",")]
    model = load_shipped(MOBILENET_MODEL)
    settings = read_inference(WEIGHTS_DIR / MOBILENET_MODEL)
    data = prepare_data(args.data, {**load_split(WEIGHTS_DIR / "split.json"), "test": []})
    calibration = data.train.images
    shape = model.input_shape[1:]
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": describe_machine()}
    report["command"] = portable(" ".join(["python benchmarks/int8_sensitivity.py", *(argv or sys.argv[1:])]), args.data)
    report["keras_float32"] = {
        "dice": float(evaluate_model(model, data.validation, settings).pooled["dice"]),
        "dice_plain": float(evaluate_model(model, data.validation, InferenceSettings()).pooled["dice"]),
        "images_per_second": speed(model.predict_on_batch, shape),
    }
    report["ranking"] = ranked_tensors(model, calibration)
    report["rows"] = {}
    with tempfile.TemporaryDirectory(prefix="int8-sensitivity-") as folder:
        for count in counts:
            names = [row["tensor"] for row in report["ranking"][:count]]
            path = selective_export(model, calibration, names, Path(folder) / f"float-{count}.tflite")
            segmenter = LiteRTSegmenter(path)
            report["rows"][count] = {
                "dice": float(evaluate_model(segmenter, data.validation, settings).pooled["dice"]),
                "dice_plain": float(evaluate_model(segmenter, data.validation, InferenceSettings()).pooled["dice"]),
                "images_per_second": speed(segmenter, shape),
                "megabytes": path.stat().st_size / 1e6,
            }
            print(count, report["rows"][count], flush=True)
    write_report(args.out, args.name, report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
