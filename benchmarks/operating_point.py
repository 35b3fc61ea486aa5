"""Read models' validation operating points from their inference-settings files, on a chosen grid of levels.

    python benchmarks/operating_point.py RUN/best.inference.json [...] [--grid earlier|current] [--max-false-alarms F]

``train`` and ``calibrate`` record, for every presence level of the grid they ran on, the lesion per-image Dice
and the share of lesion-free validation scans flagged (``validation_by_presence``). Models calibrated on
different grids are compared on the levels they share: ``--grid earlier`` reads only the grid the package used
until 2026-12-07 (a subset of the current one, so every file holds it). Printed per file: the pooled validation
lesion Dice at its chosen setting, then the operating point (the lowest level flagging at most F of the
lesion-free validation scans), its lesion per-image Dice and flagged share, and the same with no level.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rdanet_gan.evaluation.calibration import DEFAULT_MAX_FALSE_ALARMS, PRESENCE_LEVELS

EARLIER_LEVELS = (0.0, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999, 0.999995, 0.999999)
"""The presence grid until 2026-12-07 (``benchmarks/results/presence-loss.md``, "A finer presence grid")."""

GRIDS = {"earlier": EARLIER_LEVELS, "current": PRESENCE_LEVELS}


def operating_point(record: dict, levels: tuple[float, ...], max_false_alarms: float) -> dict[str, float]:
    """The lowest of ``levels`` in the record flagging at most ``max_false_alarms``, with its scores and none's."""
    by_level = {float(level): score for level, score in record["validation_by_presence"].items()}
    missing = [level for level in levels if level > record["threshold"] and level not in by_level]
    if missing:
        raise ValueError(f"levels {missing} were not scored (the file was calibrated on another grid)")
    ok = sorted(level for level in by_level if level in levels and by_level[level]["lesion_free_flagged"] <= max_false_alarms)
    if not ok:
        raise ValueError(f"no level flags at most {max_false_alarms:.0%} of the lesion-free validation scans")
    chosen, none = by_level[ok[0]], by_level[0.0]
    return {
        "pooled": record["validation_dice"][record["chosen"]],
        "level": ok[0],
        "lesion_dice": chosen["lesion_dice_per_image"],
        "flagged": chosen["lesion_free_flagged"],
        "lesion_dice_none": none["lesion_dice_per_image"],
        "flagged_none": none["lesion_free_flagged"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="inference-settings files (NAME.inference.json)")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="current", help="levels to read (default: current)")
    parser.add_argument("--max-false-alarms", type=float, default=DEFAULT_MAX_FALSE_ALARMS, help="default: 0.2")
    args = parser.parse_args(argv)
    print("| file | val lesion Dice, pooled | level | lesion per-image Dice, at level / none | lesion-free flagged, at level / none |")
    print("|---|---:|---:|---:|---:|")
    for path in args.files:
        try:
            point = operating_point(json.loads(path.read_text(encoding="utf-8")), GRIDS[args.grid], args.max_false_alarms)
        except (OSError, ValueError, KeyError) as error:
            print(f"{path}: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
        print(
            f"| {path} | {point['pooled']:.3f} | {point['level']:g} | {point['lesion_dice']:.3f} / {point['lesion_dice_none']:.3f} "
            f"| {point['flagged']:.0%} / {point['flagged_none']:.0%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
