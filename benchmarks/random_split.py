"""The paper's protocol, measured: RDAU-Net on random splits against leakage-aware ones.

The paper's 538 / 50 / 57 split of BUSI's lesion scans was almost certainly random, so
near-duplicates of its test scans (another frame of the same lesion, a re-saved crop) sat in
its training set. This trains the same network and recipe on random splits (stratified by class,
near-duplicates ignored) and on leakage-aware splits made from the same seeds, scores each best
validation checkpoint once on its own test split with Table 1's protocol (128x128, threshold 0.5,
no test-time augmentation), and divides each test split into the scans that have a near-duplicate
among its training scans ("leaked") and the others.

    python benchmarks/random_split.py --data BUSI_DIR --out ~/runs/random-split \\
        [--seeds 1,2,3] [--epochs 20] [--base-width 8]

Runs alternate between the protocols, seed by seed, so an interrupted campaign leaves pairs.
Rerunning the same command resumes: finished runs are kept, an interrupted one continues from its
last epoch. Writes ``random-split.json`` and ``random-split.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from rdanet_gan.data import (
    DUPLICATE_THRESHOLD,
    find_records,
    load_split,
    make_split,
    prepare_data,
    read_signatures,
    save_split,
)
from rdanet_gan.data.duplicates import correlations
from rdanet_gan.errors import RdanetError
from rdanet_gan.evaluation.evaluate import evaluate_model
from rdanet_gan.evaluation.scoring import Evaluation
from rdanet_gan.evaluation.statistics import dice_interval, lesion_counts
from rdanet_gan.fileio import portable, write_json, write_text
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.machine import describe_machine
from rdanet_gan.training.run_folder import run_finished

PROTOCOLS = {"random": math.inf, "leakage-aware": DUPLICATE_THRESHOLD}
"""Protocol -> the correlation above which two scans count as near-duplicates and stay on one side."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the BUSI folder")
    parser.add_argument("--out", required=True, help="run folder, outside the repository (rerun to resume)")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated split (and training) seeds (default: 1,2,3)")
    parser.add_argument("--model", default="rdau-net", help="the network trained on every split (default: rdau-net)")
    parser.add_argument(
        "--epochs", type=int, default=20, help="epochs of each run (default: 20, as the reduced-size table)"
    )
    parser.add_argument(
        "--base-width", type=int, default=8, help="network width (default: 8, as the reduced-size table)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args(argv)


def train_command(args: argparse.Namespace, split: Path, seed: int, run_dir: Path) -> list[str]:
    """The ``rdanet-gan train`` command of one run: the ``paper`` recipe in float32 with XLA, as the
    reduced-size Table 1 was trained."""
    return [
        "rdanet-gan", "train", "--model", args.model, "--recipe", "paper", "--data", args.data, "--split", str(split),
        "--epochs", str(args.epochs), "--base-width", str(args.base_width), "--batch-size", str(args.batch_size),
        "--seed", str(seed), "--precision", "float32", "--jit", "on", "--out", str(run_dir),
    ]  # fmt: skip


def pooled_dice(tp: np.ndarray, sizes: np.ndarray) -> float | None:
    """Pooled Dice of a subset of test scans (None for an empty subset)."""
    return float(2 * tp.sum() / sizes.sum()) if sizes.sum() else None


def score(run_dir: Path, args: argparse.Namespace, split_path: Path, similar: np.ndarray, position: dict) -> dict:
    """The run's best checkpoint on its test split: pooled Dice with its interval, and apart on leaked and clean scans."""
    split = load_split(split_path)
    test = prepare_data(args.data, split_path).test
    evaluation: Evaluation = evaluate_model(load_segmenter(run_dir / "best.keras"), test, batch_size=args.batch_size)
    train = [position[case_id] for case_id in split["train"]]
    leaked = np.array([similar[position[row["id"]], train].any() for row in evaluation.per_image])
    tp, sizes = lesion_counts(evaluation)
    with (run_dir / "log.csv").open(newline="") as handle:
        best_validation_dice = max(float(row["val_dice"]) for row in csv.DictReader(handle))
    return {
        "best_validation_dice": best_validation_dice,
        "test_dice": evaluation.pooled["dice"],
        "test_dice_interval": dice_interval(evaluation),
        "test_dice_per_image": evaluation.summary["dice"]["mean"],
        "test_scans": len(evaluation.per_image),
        "leaked_scans": int(leaked.sum()),
        "dice_leaked": pooled_dice(tp[leaked], sizes[leaked]),
        "dice_clean": pooled_dice(tp[~leaked], sizes[~leaked]),
    }


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def markdown(results: dict, args: argparse.Namespace) -> str:
    lines = [
        f"### {args.model}, width {args.base_width}, {args.epochs} epochs (paper recipe): random against leakage-aware splits",
        "",
        "| protocol | seed | best val Dice | test Dice, pooled [95% CI] | per image | leaked test scans | Dice on leaked | Dice on the others |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in results.values():
        low, high = row["test_dice_interval"]
        lines.append(
            f"| {row['protocol']} | {row['seed']} | {percent(row['best_validation_dice'])} "
            f"| {percent(row['test_dice'])} [{percent(low)}, {percent(high)}] | {percent(row['test_dice_per_image'])} "
            f"| {row['leaked_scans']} of {row['test_scans']} | {percent(row['dice_leaked'])} | {percent(row['dice_clean'])} |"
        )
    lines += ["", "| protocol | runs | test Dice, pooled: mean ± SD over splits |", "|---|---:|---|"]
    for protocol in PROTOCOLS:
        dice = [row["test_dice"] for row in results.values() if row["protocol"] == protocol]
        if dice:
            spread = f" ± {100 * np.std(dice, ddof=1):.2f}" if len(dice) > 1 else ""
            lines.append(f"| {protocol} | {len(dice)} | {100 * np.mean(dice):.2f}{spread} |")
    lines += [
        "",
        (
            "Leaked: a test scan with a near-duplicate (signature correlation above "
            f"{DUPLICATE_THRESHOLD}) among its split's training scans. Each row is one split and one training run; "
            "the interval resamples that split's test scans."
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    except ValueError:
        print(f"random_split: --seeds {args.seeds!r}: give whole numbers joined by commas", file=sys.stderr)
        return 2
    try:
        records = find_records(args.data)
        signatures = read_signatures(records)
        similar = correlations(signatures) > DUPLICATE_THRESHOLD
        np.fill_diagonal(similar, False)
        position = {record.case_id: index for index, record in enumerate(records)}
        results_path = out / "random-split.json"
        results = json.loads(results_path.read_text())["runs"] if results_path.exists() else {}
        for seed in seeds:
            for protocol, threshold in PROTOCOLS.items():
                name, run_dir, split_path = (
                    f"{protocol}-{seed}",
                    out / f"{protocol}-{seed}",
                    out / f"split-{protocol}-{seed}.json",
                )
                if not split_path.exists():
                    save_split(
                        make_split(records, args.data, seed=seed, duplicate_threshold=threshold, signatures=signatures),
                        split_path,
                    )
                command = train_command(args, split_path, seed, run_dir)
                if not run_finished(run_dir, args.epochs):
                    resume = ["--resume"] if (run_dir / "config.json").exists() else []
                    print(f"== {name}: {shlex.join(command + resume)}", flush=True)
                    if subprocess.run(
                        [sys.executable, "-m", "rdanet_gan", *command[1:], *resume], check=False
                    ).returncode:
                        raise RdanetError(f"run {name}: training failed (see above)")
                    results.pop(name, None)
                if name not in results:
                    scores = score(run_dir, args, split_path, similar, position)
                    results[name] = {
                        "protocol": protocol,
                        "seed": seed,
                        **scores,
                        "command": portable(shlex.join(command), args.data),
                    }
                    settings = portable(vars(args), args.data)
                    write_json(results_path, {"settings": settings, "machine": describe_machine(), "runs": results})
                print(f"== {name}: test Dice {results[name]['test_dice']:.4f}", flush=True)
    except RdanetError as error:
        print(f"random_split: error: {error}", file=sys.stderr)
        return 2
    table = markdown(results, args)
    write_text(out / "random-split.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
