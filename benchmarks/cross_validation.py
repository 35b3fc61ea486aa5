"""k-fold cross-validation of a training recipe on BUSI: every lesion scan tested once, by a model that never saw it.

One test split of 57 scans gives a pooled Dice with a 95 % interval about 0.18 wide, and one split can be
easier or harder than BUSI at large. Here the lesion scans are partitioned into K leakage-aware folds
(``rdanet-gan split --folds K --fold I``: near-duplicates kept together, class proportions kept); for each
fold a model is trained on the rest (50 of them, plus 44 lesion-free scans, held back for validation, which
chooses the checkpoint and the inference settings as ever), then scored on its fold with its own settings.
The folds' per-image rows pool into one estimate over all of BUSI's lesion scans: the protocol of the
stricter published BUSI numbers (4-fold cross-validation on deduplicated BUSI, Aumente-Maestro et al. 2025).

    python benchmarks/cross_validation.py run --data $BUSI --out RUNS/cv -- --model rdau-net --encoder mobilenet_v2 ...
    python benchmarks/cross_validation.py progress --out RUNS/cv
    python benchmarks/cross_validation.py report --out RUNS/cv

``run`` does what is not done yet, fold by fold (rerun the same command to resume a killed run; a fold's
training resumes from its last epoch); the options after ``--`` are ``rdanet-gan train``'s, without
``--data``, ``--split``, ``--out``. ``progress`` writes where each fold stands and the command that resumes
the run to ``benchmarks/results/cross-validation-progress.md``, for the repository. ``report`` prints each
fold's scores and the pooled estimate with its bootstrap interval and subgroup breakdown, and writes them as
``OUT/cross_validation.{json,md}``; ``report --scored test-no-level`` does the same for the evaluations with
no presence level.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from rdanet_gan.errors import RdanetError
from rdanet_gan.evaluation.evaluate import lesion_row_scores
from rdanet_gan.evaluation.report import markdown_table
from rdanet_gan.evaluation.scoring import Evaluation
from rdanet_gan.evaluation.statistics import dice_interval
from rdanet_gan.evaluation.subgroups import subgroup_markdown, subgroup_scores
from rdanet_gan.fileio import write_json, write_report, write_text

PROGRESS = Path(__file__).resolve().parent / "results" / "cross-validation-progress.md"

VALIDATION, VALIDATION_NORMAL, TRAIN_NORMAL = 50, 44, 44
"""Per fold: validation lesion scans, and lesion-free scans to validate and train on (the default model's counts)."""
SCORINGS = {"test": ["--normal"], "test-no-level": ["--presence", "0"]}
"""Each fold's evaluations of its test fold (folder: ``evaluate`` options): under the settings chosen on its
validation scans, lesion-free scans counted; and with no presence level, which shows the segmentation alone."""


def fold_commands(data: str, out: Path, folds: int, seed: int, train_options: list[str]) -> list[list[list[str]]]:
    """Per fold, the commands still to run: its split, its training (resumed when begun), its test evaluations."""
    plan = []
    for number in range(1, folds + 1):
        folder, split = out / f"fold{number}", out / f"fold{number}.json"
        steps = []
        if not split.exists():
            steps.append([
                "rdanet-gan", "split", "--data", data, "--folds", str(folds), "--fold", str(number), "--seed", str(seed),
                "--validation", str(VALIDATION), "--validation-normal", str(VALIDATION_NORMAL),
                "--train-normal", str(TRAIN_NORMAL), "--out", str(split),
            ])  # fmt: skip
        if not all((folder / f"{name}.inference.json").exists() for name in ("best", "final")):  # train's last writes
            resume = ["--resume"] if (folder / "config.json").exists() else []
            steps.append(["rdanet-gan", "train", *train_options, "--data", data, "--split", str(split), "--out", str(folder), *resume])
        for scored, options in SCORINGS.items():
            if not (folder / scored / "summary.json").exists():
                steps.append([
                    "rdanet-gan", "evaluate", "--model", str(folder / "best.keras"), "--data", data, "--split", str(split),
                    *options, "--out", str(folder / scored), "--overwrite",
                ])  # fmt: skip
        plan.append(steps)
    return plan


def progress_markdown(out: Path) -> str:
    """Where each fold of the run in ``out`` stands (from its ``run.json``, log and best checkpoint) and the
    command that resumes the run, with this machine's paths as placeholders."""
    run = json.loads((out / "run.json").read_text())
    where = _placeholder(out)
    lines = [
        "# Cross-validation: progress",
        "",
        f"Updated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the run folder `{where}` (outside the repository).",
        "",
        "| fold | epochs done | best validation Dice (epoch) | scored on its test fold |",
        "|---|---:|---:|---|",
    ]
    epochs = run["train_options"][run["train_options"].index("--epochs") + 1] if "--epochs" in run["train_options"] else "?"
    for number in range(1, run["folds"] + 1):
        folder = out / f"fold{number}"
        done = len((folder / "log.csv").read_text().splitlines()) - 1 if (folder / "log.csv").exists() else 0  # less the header
        best = json.loads((folder / "best.json").read_text()) if (folder / "best.json").exists() else None
        best_cell = f"{best['best']:.4f} ({best['epoch']})" if best else "–"
        scored = "yes" if (folder / "test" / "summary.json").exists() else "no"
        lines.append(f"| {number} | {done} of {epochs} | {best_cell} | {scored} |")
    command = ["python", "benchmarks/cross_validation.py", "run", "--data", "$BUSI", "--out", where,
               "--folds", str(run["folds"]), "--seed", str(run["seed"]), "--", *run["train_options"]]  # fmt: skip
    lines += [
        "",
        "Validation Dice: pooled over the fold's validation scans (lesion-free ones included), inference mode.",
        "",
        "Resume (from the repository root, under `nice -n 19`; the same command starts a lost run folder again):",
        "",
        "```bash",
        " ".join(command),
        "```",
        "",
    ]
    return "\n".join(lines)


def _placeholder(out: Path) -> str:
    """``out`` as ``~/…`` when under the home folder, else ``$RUNS/NAME``: committed files hold no path of this machine."""
    try:
        return f"~/{out.resolve().relative_to(Path.home().resolve())}"
    except ValueError:
        return f"$RUNS/{out.name}"


def report(out: Path, folds: int, scored: str = "test") -> tuple[dict, str]:
    """Each finished fold's lesion scores (and lesion-free alarms where counted) in its ``scored`` evaluation
    (a :data:`SCORINGS` folder), and the pooled estimate over their test scans."""
    rows, table, per_fold = [], [], {}
    for number in range(1, folds + 1):
        test = out / f"fold{number}" / scored
        if not (test / "summary.json").exists():
            continue
        fold_rows = Evaluation.read_json(test / "summary.json").per_image
        alarms = json.loads((test / "normal_scans.json").read_text()) if (test / "normal_scans.json").exists() else None
        scores = lesion_row_scores(fold_rows)
        per_fold[number] = {**scores, **({"lesion_free_flagged": alarms["flagged_with_settings"], "lesion_free_scans": alarms["scans"]} if alarms else {})}
        rows += fold_rows
        table.append([str(number), *_cells(scores), f"{alarms['flagged_with_settings']} of {alarms['scans']}" if alarms else "–"])
    if not rows:
        raise RdanetError(f"{out}: no fold evaluated yet (run 'cross_validation.py run' first)")
    pooled = lesion_row_scores(rows)
    every_fold = Evaluation(per_image=rows, pooled={}, summary={})  # the interval and the breakdown read the rows alone
    low, high = dice_interval(every_fold)
    breakdown = subgroup_scores(every_fold)
    table.append([f"**all {len(per_fold)}**", *_cells(pooled), "–"])
    headers = ["fold", "lesion scans", "pooled Dice", "precision", "sensitivity", "per-image Dice", "reported empty", "lesion-free flagged"]
    summary = (
        f"{len(per_fold)} of {folds} folds evaluated (`{out.name}`, `{scored}`); pooled Dice over their {pooled['lesion_scans']} test scans "
        f"{pooled['dice']:.3f} [95 % bootstrap interval {low:.3f}, {high:.3f}]."
    )
    text = "\n\n".join([summary, markdown_table(headers, table), subgroup_markdown(breakdown)])
    return {"folds": per_fold, "pooled": pooled, "interval": [low, high], "subgroups": breakdown}, text


def _cells(scores: dict) -> list[str]:
    metrics = ("dice", "precision", "sensitivity", "dice_per_image")
    return [str(scores["lesion_scans"]), *(f"{scores[name]:.3f}" for name in metrics), str(scores["reported_empty"])]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, train_options = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("run", "progress", "report"))
    parser.add_argument("--out", type=Path, required=True, help="folder of the folds' splits, runs and evaluations")
    parser.add_argument("--data", help="dataset folder (run)")
    parser.add_argument("--folds", type=int, default=4, help="number of folds (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds (default: 0)")
    parser.add_argument("--scored", choices=tuple(SCORINGS), default="test", help="report: which evaluation (default: test)")
    args = parser.parse_args(own)
    if args.action == "run":
        if not args.data or not train_options:
            parser.error("run needs --data and the training options after --")
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "run.json", {"folds": args.folds, "seed": args.seed, "train_options": train_options})
        for steps in fold_commands(args.data, args.out, args.folds, args.seed, train_options):
            for command in steps:
                print("+", " ".join(command), flush=True)
                if subprocess.run(command, check=False).returncode:
                    return 1
        return 0
    if args.action == "progress":
        write_text(PROGRESS, progress_markdown(args.out))
        print(f"{PROGRESS}: updated")
        return 0
    try:
        results, text = report(args.out, args.folds, args.scored)
    except RdanetError as error:
        print(f"cross_validation: error: {error}", file=sys.stderr)
        return 2
    write_report(args.out, "cross_validation" if args.scored == "test" else f"cross_validation-{args.scored}", results, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
