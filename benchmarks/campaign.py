"""The full-size Table 1 campaign: one resumable ``rdanet-gan reproduce`` run, and its progress file.

Full size (the paper's widths, 50 epochs) takes about 20 CPU hours on a 2-core machine, longer
than a working session, so the campaign is the same ``reproduce`` command rerun until it ends:
every rerun resumes from the last finished epoch. ``progress`` writes a small Markdown file for
the repository (stage, epoch, best validation Dice, the exact resume command), so the next
session knows where the campaign stands even when the run folder did not survive.

    python benchmarks/campaign.py start --data Dataset_BUSI_with_GT --out ~/runs/table1-full
    python benchmarks/campaign.py progress --out ~/runs/table1-full
    python benchmarks/campaign.py collect --out ~/runs/table1-full

``collect`` copies each finished stage's log and test evaluation into ``benchmarks/results/table1-full/``
and rewrites Table 1 there from every stage committed so far. ``start`` launches the command detached, at the lowest CPU priority (``nice -n 19``, and the same
for its session's autogroup: it takes the CPU other work leaves idle), logging to ``OUT/campaign.log``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRESS = ROOT / "benchmarks" / "results" / "campaign-progress.md"
STAGES = ("rdau-net", "rdanet-gan", "unet", "segnet")
"""Table 1's rows in the order the campaign trains them (the GAN starts from RDAU-Net's best)."""
EPOCHS = 50


COMMITTED = ROOT / "benchmarks" / "results" / "table1-full"
"""Where a finished stage's log is committed; read when the run folder no longer holds the stage."""


def reproduce_command(data: str, out: str, models: str, base_width: int | None = None) -> list[str]:
    """The campaign's ``reproduce`` command; the same line starts and resumes it."""
    width = ["--base-width", str(base_width)] if base_width else []
    return [
        "rdanet-gan", "reproduce", "--data", data, "--split", "rdanet_gan/weights/split.json",
        "--out", out, "--models", models, "--epochs", str(EPOCHS), *width,
    ]  # fmt: skip


def stage_rows(out: Path) -> list[dict]:
    """Each stage's epochs done, best validation Dice (and its epoch) and seconds per epoch."""
    rows = []
    for stage in STAGES:
        log = out / stage / "log.csv"
        if not log.exists():
            log = COMMITTED / stage / "log.csv"
        if not log.exists():
            rows.append({"stage": stage, "epochs": 0})
            continue
        with log.open(newline="") as handle:
            epochs = list(csv.DictReader(handle))
        if not epochs:
            rows.append({"stage": stage, "epochs": 0})
            continue
        best = max(epochs, key=lambda row: float(row["val_dice"]))
        seconds = [float(row["seconds"]) for row in epochs[1:]] or [float(epochs[0]["seconds"])]
        rows.append({
            "stage": stage, "epochs": len(epochs), "best_val_dice": float(best["val_dice"]),
            "best_epoch": int(best["epoch"]), "last_val_dice": float(epochs[-1]["val_dice"]),
            "seconds_per_epoch": sorted(seconds)[len(seconds) // 2],
        })  # fmt: skip
    return rows


def progress_markdown(out: Path, command: list[str]) -> str:
    """The committed progress file: where each stage stands and the command that resumes it."""
    lines = [
        "# Full-size Table 1 campaign: progress",
        "",
        (
            f"Updated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the run folder `{out.name}` (kept outside the "
            "repository; rerunning the command below resumes it, or restarts a stage whose folder is gone)."
        ),
        "",
        "| stage | epochs done | best validation Dice (epoch) | last validation Dice | seconds / epoch (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in stage_rows(out):
        if not row["epochs"]:
            lines.append(f"| {row['stage']} | 0 of {EPOCHS} | – | – | – |")
            continue
        lines.append(
            f"| {row['stage']} | {row['epochs']} of {EPOCHS} | {row['best_val_dice']:.4f} ({row['best_epoch']}) "
            f"| {row['last_val_dice']:.4f} | {row['seconds_per_epoch']:.0f} |"
        )
    lines += [
        "",
        "Validation Dice is pooled over the 50 validation scans, inference mode, at 128×128.",
        "",
        "Resume (from the repository root, `DATA` the BUSI folder, `RUNS` a folder outside the repository):",
        "",
        "```bash",
        'python benchmarks/campaign.py start --data "$DATA" --out "$RUNS/table1-full" '
        + " ".join(
            part
            for flag in ("--models", "--base-width")
            if flag in command
            for part in (flag, command[command.index(flag) + 1])
        ),
        f"# which runs, under nice -n 19: {' '.join(command)}",
        "```",
        "",
    ]
    return "\n".join(lines)


def anonymised(command: list[str], data: str, out: str) -> list[str]:
    """The command with this machine's paths replaced by placeholders (committed files hold none)."""
    return ["$DATA" if part == data else "$RUNS/table1-full" if part == out else part for part in command]


def collect(out: Path) -> list[str]:
    """Commit-ready results: each finished stage's ``log.csv`` and ``evaluation.json``, then Table 1 of all
    stages committed so far (paired with RDA-NET-GAN when it is there); returns the stages copied now."""
    from rdanet_gan.evaluation.report import table1_csv, table1_markdown
    from rdanet_gan.evaluation.scoring import Evaluation
    from rdanet_gan.fileio import write_text
    from rdanet_gan.reproduce import GAN_ROW, TABLE1_MODELS

    copied = []
    for stage in STAGES:
        summary = out / stage / "evaluation" / "summary.json"
        if summary.exists():
            for source, target in ((summary, "evaluation.json"), (out / stage / "log.csv", "log.csv")):
                write_text(COMMITTED / stage / target, source.read_text())
            copied.append(stage)
    results = {
        TABLE1_MODELS[stage]: Evaluation.read_json(COMMITTED / stage / "evaluation.json")
        for stage in STAGES
        if (COMMITTED / stage / "evaluation.json").exists()
    }
    if results:
        write_text(COMMITTED / "table1.md", table1_markdown(results, reference=GAN_ROW if GAN_ROW in results else None))
        write_text(COMMITTED / "table1.csv", table1_csv(results))
    return copied


def lower_session_priority(pid: int) -> None:
    """Give the campaign's new session the lowest weight as well: with autogroup scheduling (Linux's
    default) ``nice`` only ranks processes within their session, and a detached run would otherwise
    take a full share of the CPU from interactive work."""
    autogroup = Path(f"/proc/{pid}/autogroup")
    try:
        autogroup.write_text("19")
    except OSError:  # no autogroup scheduling here: nice alone ranks it
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "progress", "collect"))
    parser.add_argument(
        "--data", default=os.environ.get("RDANET_BUSI_DIR"), help="the BUSI folder (default: $RDANET_BUSI_DIR)"
    )
    parser.add_argument("--out", required=True, help="the run folder, outside the repository")
    parser.add_argument("--models", default="rdau-net,rdanet-gan", help="Table 1 rows, in training order")
    parser.add_argument("--base-width", type=int, help="first-level filters (default: each network's paper width)")
    args = parser.parse_args(argv)
    out = Path(args.out).expanduser().resolve()
    data = str(Path(args.data).resolve()) if args.data else "$DATA"
    command = reproduce_command(data, str(out), args.models, args.base_width)
    if args.action == "start":
        if not args.data:
            parser.error("--data (or RDANET_BUSI_DIR) is required to start")
        out.mkdir(parents=True, exist_ok=True)
        with (out / "campaign.log").open("a") as log:
            process = subprocess.Popen(
                ["nice", "-n", "19", *command], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        (out / "campaign.pid").write_text(f"{process.pid}\n")
        lower_session_priority(process.pid)
        print(f"started (pid {process.pid}): nice -n 19 {shlex.join(command)}")
    if args.action == "collect":
        print(f"copied the finished stages {', '.join(collect(out)) or '(none)'}; Table 1 rewritten in {COMMITTED}")
    PROGRESS.write_text(progress_markdown(out, anonymised(command, command[3], str(out))))
    print(f"wrote {PROGRESS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
