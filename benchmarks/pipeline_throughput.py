"""Throughput of the input pipeline on BUSI at 128x128.

Measures (1) decoding + resizing the lesion scans from PNG (the first pass,
done once per run) and (2) iterating the in-memory ``tf.data`` training
pipeline, batch 32, with augmentation on and off (every epoch). Prints a
Markdown table and the machine, and writes
``benchmarks/results/pipeline_throughput.json``.

    python benchmarks/pipeline_throughput.py [--data BUSI_DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

from rdanet_gan.data import Augmentation, find_records, load_arrays, make_dataset
from rdanet_gan.errors import RdanetError
from rdanet_gan.fileio import write_json
from rdanet_gan.machine import describe_machine

RESULTS = Path(__file__).parent / "results" / "pipeline_throughput.json"
IMAGE_SIZE, BATCH_SIZE = 128, 32
QUICK_IMAGES = 96


def images_per_second(dataset: tf.data.Dataset, epochs: int) -> float:
    """Iterate ``epochs`` epochs after a warm-up epoch (tracing, thread pools)."""
    for _ in dataset:
        pass
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for images, _ in dataset:
            count += int(images.shape[0])
    return count / (time.perf_counter() - start)


def measure(data: Path, quick: bool) -> dict:
    """Decode the lesion scans of ``data`` once, then time the training pipeline with and without augmentation."""
    records = find_records(data)
    if quick:
        records = records[:QUICK_IMAGES]
    start = time.perf_counter()
    arrays = load_arrays(records, IMAGE_SIZE)
    decode_rate = len(records) / (time.perf_counter() - start)
    epochs = 1 if quick else 3
    rates = {}
    for name, augmentation in (
        ("augmentation on", Augmentation()),
        ("augmentation off", Augmentation(False, False, False, False)),
    ):
        dataset = make_dataset(
            arrays.images, arrays.masks, BATCH_SIZE, training=True, augmentation=augmentation
        )
        rates[name] = images_per_second(dataset, epochs)
    return {
        "images": len(records),
        "image_size": IMAGE_SIZE,
        "batch_size": BATCH_SIZE,
        "images_per_second": {
            "decode + resize (first pass)": decode_rate,
            **{f"tf.data, {k}": v for k, v in rates.items()},
        },
        "machine": describe_machine(),
    }


def markdown(result: dict) -> str:
    """The rates as a Markdown table, then the data and the machine they were measured on."""
    lines = ["| stage | images / s |", "|---|---:|"]
    lines += [f"| {stage} | {rate:,.0f} |" for stage, rate in result["images_per_second"].items()]
    info, size = result["machine"], result["image_size"]
    lines.append(
        f"\n{result['images']} BUSI lesion scans at {size}x{size}, batch {result['batch_size']}; "
        f"{info['cpu']}, {info['cores']} cores, TensorFlow {info['tensorflow']}."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("RDANET_BUSI_DIR"),
        help="BUSI folder (default: $RDANET_BUSI_DIR)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"the first {QUICK_IMAGES} scans, one timed epoch"
    )
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data BUSI_DIR or set RDANET_BUSI_DIR")
    try:
        result = measure(Path(args.data), args.quick)
    except RdanetError as error:
        print(f"pipeline_throughput: error: {error}", file=sys.stderr)
        return 1
    print(markdown(result))
    write_json(RESULTS, result)
    print(f"\n{RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
