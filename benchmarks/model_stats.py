"""Parameter counts and forward GFLOPs of the four networks at the paper's setting, and of RDAU-Net on each
pretrained encoder at the default model's width (8).

Prints a Markdown table (the one in the README) and, with ``--json PATH``,
writes the same numbers as JSON. Building the networks is enough: nothing runs.

    python benchmarks/model_stats.py [--json model_stats.json]
"""

from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from rdanet_gan.fileio import write_json
from rdanet_gan.models import build_model, count_flops
from rdanet_gan.options import ENCODERS

PAPER_SETTINGS = {
    "rdau-net": {"input_shape": (128, 128, 1), "base_width": 32},
    "unet": {"input_shape": (128, 128, 1), "base_width": 64},
    "segnet": {"input_shape": (128, 128, 1), "base_width": 64},
    "critic": {"input_shape": (128, 128, 2), "base_width": 32},
}
ENCODER_SETTINGS = {
    f"rdau-net + {encoder}": {"input_shape": (128, 128, 1), "base_width": 8, "encoder": encoder, "encoder_weights": None}
    for encoder in ENCODERS
}
"""The pretrained-encoder generators as the default model is built (counts do not depend on the weights)."""


def model_stats() -> list[dict]:
    """One row per network: name, input shape, base width, parameters and GFLOPs per image."""
    rows = []
    for name, options in {**PAPER_SETTINGS, **ENCODER_SETTINGS}.items():
        model = build_model(name.split(" + ")[0], **options)
        trainable = sum(math.prod(weight.shape) for weight in model.trainable_weights)
        rows.append({
            "model": name,
            "input_shape": list(options["input_shape"]),
            "base_width": options["base_width"],
            "parameters": model.count_params(),
            "trainable_parameters": trainable,
            "gflops": round(count_flops(model) / 1e9, 3),
        })
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table, parameters in millions."""
    lines = [
        "| network | input | base width | parameters (M) | trainable (M) | GFLOPs / image |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        shape = "×".join(map(str, row["input_shape"]))
        lines.append(
            f"| {row['model']} | {shape} | {row['base_width']} | {row['parameters'] / 1e6:.2f} "
            f"| {row['trainable_parameters'] / 1e6:.2f} | {row['gflops']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    rows = model_stats()
    print(markdown_table(rows))
    print("\nGFLOPs: convolutions and dense layers, a multiply-add counted as 2 (rdanet_gan.models.count_flops).")
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
