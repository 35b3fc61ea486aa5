"""Two models' test scores side by side: pooled Dice with its bootstrap interval, and their paired difference.

Each input is the ``summary.json`` that ``rdanet-gan evaluate --out`` writes (per-image rows included),
for the same scans in the same order:

    rdanet-gan evaluate --model A.keras --data BUSI --split SPLIT --out eval-a
    rdanet-gan evaluate --model B.keras --data BUSI --split SPLIT --out eval-b
    python benchmarks/compare.py eval-a/summary.json eval-b/summary.json [--names A,B]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rdanet_gan.errors import RdanetError
from rdanet_gan.evaluation.scoring import Evaluation
from rdanet_gan.evaluation.statistics import dice_interval, paired_dice_difference


def compare(first: Evaluation, second: Evaluation, names: tuple[str, str]) -> str:
    """Markdown lines: each model's pooled and per-image Dice with the pooled interval, then first minus second."""
    lines = ["| model | Dice pooled [95% CI] | Dice per image | precision | sensitivity |", "|---|---|---:|---:|---:|"]
    for name, evaluation in zip(names, (first, second)):
        low, high = dice_interval(evaluation)
        pooled = evaluation.pooled
        lines.append(
            f"| {name} | {pooled['dice']:.3f} [{low:.3f}, {high:.3f}] | {evaluation.summary['dice']['mean']:.3f} "
            f"| {pooled['precision']:.3f} | {pooled['sensitivity']:.3f} |"
        )
    paired = paired_dice_difference(first, second)
    lines += [
        "",
        (f"{names[0]} minus {names[1]}, pooled Dice: {paired['difference']:+.3f} [{paired['low']:+.3f}, {paired['high']:+.3f}]; "
        f"{names[0]} higher in {100 * paired['share_first_better']:.0f} % of 10,000 paired resamples of the scans."),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="summary.json of the first model")
    parser.add_argument("second", type=Path, help="summary.json of the second model, on the same scans")
    parser.add_argument("--names", default="first,second", help="the two models' names, comma-separated")
    args = parser.parse_args(argv)
    names = tuple(args.names.split(",", 1)) if "," in args.names else ("first", "second")
    try:
        print(compare(Evaluation.read_json(args.first), Evaluation.read_json(args.second), names))
    except (RdanetError, ValueError, OSError) as error:
        print(f"compare: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
