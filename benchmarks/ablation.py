"""Ablation: what moves RDAU-Net's Dice on a leakage-aware split.

Every training variant is one RDAU-Net trained with the same split, seed,
epochs and width, by its own ``rdanet-gan train`` command (recorded in the
results); only the named option differs from the ``standard`` variant (the
``default`` recipe). Each trained network (its best validation
Dice checkpoint) is then scored on the validation split under five inference
settings (plain at 0.5, flip test-time augmentation, the threshold chosen on
the validation split, post-processing, all three); the best of them, with
the presence level chosen on the validation scans plus ``--train-normal``
lesion-free scans (the package's default operating point), makes the variant's final model, which
alone reads the test split: once. BUSI's normal scans (no lesion) give the
fraction of lesion-free scans on which a lesion is predicted: the
``train-normal`` variant trains on the same ``--train-normal`` of them that
the others validate on (it has none to validate on), and every variant is
counted on the rest, which no variant saw. A second table sets the presence
level as an operating point instead (the lowest that flags at most
``--max-false-alarms`` of those validation lesion-free scans) and shows what
that costs on test and whether the false-alarm rate holds on the held-out
lesion-free scans. The
``gan-adversarial-*`` variants train RDA-NET-GAN from the ``paper``
variant's RDAU-Net with three adversarial weights: the validation split
picks the weight for the full-size GAN.

    python benchmarks/ablation.py --data BUSI_DIR --out ~/runs/ablation \\
        [--base-width 8] [--epochs 20] [--gan-epochs 10] [--variants paper,standard,...]

Variants combine with ``+``: ``--variants group-norm+train-normal`` trains
one network with the options of both (the GAN variants do not combine).

Rerunning the same command resumes: finished variants are kept, an
interrupted one continues from its last epoch. Writes ``ablation.json`` and
``ablation.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


from rdanet_gan.data import (
    ArraySet,
    DataSplits,
    add_lesion_free,
    find_records,
    load_arrays,
    load_normal_scans,
    load_split,
    prepare_data,
    save_split,
    select,
)
from rdanet_gan.data.records import NORMAL_LABEL
from rdanet_gan.errors import RdanetError
from rdanet_gan.evaluation.calibration import choose_inference, choose_presence
from rdanet_gan.evaluation.evaluate import evaluate_model, normal_scan_alarms
from rdanet_gan.evaluation.scoring import Evaluation
from rdanet_gan.fileio import portable, write_json, write_text
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.machine import describe_machine
from rdanet_gan.training.run_folder import run_finished

ENCODER = ["--encoder", "mobilenet_v2", "--jit", "off"]
EFFICIENTNET = ["--encoder", "efficientnet_lite0", "--jit", "off"]

VARIANTS = {
    "paper": ["--recipe", "paper"],  # flips only, constant learning rate: the faithful recipe
    "standard": [],  # the default recipe: flips, small affine, intensity and speckle changes
    "no-xla": ["--jit", "off"],  # float32 without XLA: the reference of the fast setting
    "strong-augmentation": ["--augmentation", "strong"],
    "deep-supervision": ["--deep-supervision"],
    "cosine": ["--lr-schedule", "cosine", "--warmup-epochs", "2"],
    "plateau": ["--lr-schedule", "plateau"],
    "group-norm": ["--norm", "group"],
    "bn-reestimate": ["--bn-reestimate"],  # BatchNorm statistics of the final weights, after training
    "train-normal": [],  # trains on a split that adds --train-normal lesion-free scans (BUSI normal/)
    # RDA-NET-GAN from the paper variant's best RDAU-Net (as the paper does), one per adversarial weight.
    **{
        f"gan-adversarial-{weight}": [
            *("--model", "rdanet-gan", "--recipe", "paper", "--init-weights", "{paper}"),
            *("--adversarial-weight", weight),
        ]
        for weight in ("0.001", "0.01", "0.1")
    },
    # An ImageNet MobileNetV2 under RDAU-Net's decoder. Without XLA: its depthwise convolutions
    # trained 4x slower with XLA on the CPU (5.0 against 20.5 images/s at width 8, batch 32).
    "mobilenet-v2": ENCODER,
    "mobilenet-v2-frozen": [*ENCODER, "--freeze-encoder-epochs", "5"],  # then trained at the full rate
    "mobilenet-v2-slow": [*ENCODER, "--encoder-lr-scale", "0.1"],  # the encoder at a tenth of the rate
    "mobilenet-v2-random": [*ENCODER, "--encoder-weights", "none"],  # the same network from scratch
    "gan-mobilenet-v2": ["--model", "rdanet-gan", "--init-weights", "{mobilenet-v2}", *ENCODER],
    # The second pretrained encoder: an ImageNet EfficientNet-Lite0 (depthwise too, so also without XLA).
    "efficientnet-lite0": EFFICIENTNET,
    "gan-efficientnet-lite0": ["--model", "rdanet-gan", "--init-weights", "{efficientnet-lite0}", *EFFICIENTNET],
    # A heavy encoder: HED's VGG16 (ImageNet VGG16 fine-tuned for edges; needs the vgg16 extra).
    "vgg16-hed": ["--encoder", "vgg16_hed"],
}
"""Variant name -> the ``rdanet-gan train`` options that set it apart from ``standard``
(``{NAME}`` stands for variant NAME's best checkpoint)."""
STARTS_FROM = {"gan-mobilenet-v2": "mobilenet-v2", "gan-efficientnet-lite0": "efficientnet-lite0"}
"""The variant each GAN variant fine-tunes (``paper`` unless named here)."""
TRAIN_NORMAL_SPLIT = "split-train-normal.json"
"""The split of the ``train-normal`` variant: ``split.json`` plus lesion-free training scans, on which
the other variants choose their presence level."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="BUSI folder, or 'phantom' for a smoke run")
    parser.add_argument("--out", required=True, help="run folder (rerun to resume)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated training variants, a+b combining two (default: all)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each RDAU-Net variant")
    parser.add_argument("--gan-epochs", type=int, default=10, help="epochs of each GAN variant, after the paper variant's")
    parser.add_argument("--base-width", type=int, default=8, help="RDAU-Net width (32 is the paper's; 8 has 1/16 of its FLOPs)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit", choices=("auto", "on", "off"), default="auto", help="XLA for every variant but no-xla")
    parser.add_argument(
        "--train-normal",
        type=int,
        default=15,
        help="lesion-free scans the train-normal variant trains on and the others validate on (default: 15, as in the committed results)",
    )
    parser.add_argument(
        "--max-false-alarms",
        type=float,
        default=0.1,
        help="the operating point of the second table: lesion-free validation scans flagged at most (default: 0.1, the issue's target)",
    )
    return parser.parse_args(argv)


def train_command(name: str, args: argparse.Namespace, run_dir: Path, resume: bool = False) -> list[str]:
    """The ``rdanet-gan train`` command of one variant (each runs in its own process: a run
    without XLA turns on op determinism, which would switch XLA off for the rest of a process)."""
    split = run_dir.parent / (TRAIN_NORMAL_SPLIT if "train-normal" in parts(name) else "split.json")
    command = ["rdanet-gan", "train", "--model", "rdau-net", "--data", args.data, "--split", str(split)]
    command += ["--epochs", str(epochs_of(name, args)), "--base-width", str(args.base_width)]
    command += ["--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    command += ["--precision", "float32", "--jit", args.jit]
    start = str(run_dir.parent / starts_from(name) / "best.keras")
    command += [option.replace(f"{{{starts_from(name)}}}", start) for part in parts(name) for option in VARIANTS[part]]
    return command + ["--out", str(run_dir)] + (["--resume"] if resume else [])


def parts(name: str) -> list[str]:
    """The variants a (``+``-combined) variant name is made of."""
    return name.split("+")


def unknown_variant(name: str) -> str | None:
    """Why ``name`` is no variant, or None."""
    unknown = [part for part in parts(name) if part not in VARIANTS]
    if unknown:
        return f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}, or join some with '+'"
    if len(parts(name)) > 1 and any(part.startswith("gan-") for part in parts(name)):
        return f"{name!r}: the GAN variants fine-tune the paper variant's network and do not combine"
    return None


def starts_from(name: str) -> str:
    """The variant whose best network a GAN variant fine-tunes."""
    return STARTS_FROM.get(name, "paper")


def epochs_of(name: str, args: argparse.Namespace) -> int:
    return args.gan_epochs if name.startswith("gan-") else args.epochs


def summarise(evaluation: Evaluation) -> dict:
    return {
        "dice": evaluation.pooled["dice"],
        "dice_per_image": evaluation.summary["dice"]["mean"],
        "precision": evaluation.pooled["precision"],
        "sensitivity": evaluation.pooled["sensitivity"],
        "hd95": evaluation.summary["hd95"]["mean"],
        "scans": len(evaluation.per_image),
    }


def assess(
    run_dir: Path,
    data: DataSplits,
    lesion_free: LesionFree | None,
    validate_lesion_free: bool,
    batch_size: int,
    max_false_alarms: float,
) -> dict:
    """Validation scores under every inference setting; the test split once with the best of them, and once
    more with the presence level of the false-alarm operating point (when lesion-free scans validate)."""
    model = load_segmenter(run_dir / "best.keras")
    validation = data.validation + lesion_free.validation if lesion_free and validate_lesion_free else data.validation
    calibration = choose_inference(model, validation, batch_size)
    settings = calibration.settings
    result = {
        "inference": calibration.chosen,
        "threshold": settings.threshold,
        "presence": settings.presence,
        "validation": {name: summarise(evaluation) for name, evaluation in calibration.evaluations.items()},
        "validation_presence": {
            "lesion_free_scans": calibration.lesion_free_scans,
            "dice_per_image": {f"{level:g}": score.dice_per_image for level, score in calibration.presence.items()},
            "lesion_free_flagged": {f"{level:g}": score.lesion_free_flagged for level, score in calibration.presence.items()},
        },
        "test": summarise(evaluate_model(model, data.test, settings, batch_size=batch_size)),
        "training": json.loads((run_dir / "summary.json").read_text()),
    }
    if lesion_free is not None:
        result["normal_scans"] = normal_scan_alarms(model, lesion_free.test, settings, batch_size)
    if lesion_free is not None and calibration.lesion_free_scans:
        level = choose_presence(calibration.presence, max_false_alarms)
        target = replace(settings, presence=level)
        result["false_alarm_target"] = {
            "max_false_alarms": max_false_alarms,
            "presence": level,
            "validation_lesion_free_flagged": calibration.presence[level].lesion_free_flagged,
            "test": result["test"] if level == settings.presence else summarise(evaluate_model(model, data.test, target, batch_size=batch_size)),
            "normal_scans": normal_scan_alarms(model, lesion_free.test, target, batch_size),
        }
    return result


def markdown(results: dict, args: argparse.Namespace) -> str:
    lines = [
        (
            f"### RDAU-Net ablation (width {args.base_width}, {args.epochs} epochs, {args.image_size}×{args.image_size}, "
            f"batch {args.batch_size}, seed {args.seed})"
        ),
        "",
        (
            "| variant | val Dice plain | val Dice final | inference (chosen on val) | presence level (chosen on val) "
            "| test Dice pooled | test Dice per image | test precision | test sensitivity | test HD95 px "
            "| held-out lesion-free scans flagged (raw / post-processed / final) "
            "| test Dice per image, with the lesion-free scans | val Dice inference / training mode | training min |"
        ),
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        test, training = r["test"], r["training"]
        lines.append(
            f"| {name} | {r['validation']['plain']['dice']:.3f} | {r['validation'][r['inference']]['dice']:.3f} "
            f"| {r['inference']} (t = {r['threshold']:.2f}) | {presence_cell(r)} | {test['dice']:.3f} | {test['dice_per_image']:.3f} "
            f"| {test['precision']:.3f} | {test['sensitivity']:.3f} | {defined(test['hd95'], '.1f')} | {flagged_cell(r)} "
            f"| {with_lesion_free_cell(r)} "
            f"| {training['val_dice_inference_mode']:.3f} / {training['val_dice_training_mode']:.3f} "
            f"| {training['seconds_total'] / 60:.0f} |"
        )
    machine = describe_machine()
    lines += [
        "",
        (
            f"- Machine: {machine['cpu']} ({machine['cores']} cores), GPUs: {', '.join(machine['gpus']) or 'none'}; "
            f"TensorFlow {machine['tensorflow']}."
        ),
        (
            "- Each variant differs from `standard` (the default recipe) in the named option only (`a+b`: in those "
            "of both); `paper` is the faithful recipe (flips only). Pooled Dice over all pixels of the split; per-image Dice is the mean over scans."
        ),
        (
            f"- `gan-adversarial-w`: RDA-NET-GAN (Algorithm 1, WGAN-GP critic, adversarial weight w) trained "
            f"{args.gan_epochs} more epochs from the `paper` variant's best RDAU-Net, as the paper initialises it: "
            "compare with the `paper` row."
        ),
        (
            "- Inference settings scored on the validation scans with a lesion (pooled Dice): plain (0.5), flip TTA, "
            "threshold chosen on validation, post-processing (largest region, holes filled), all three. Then the "
            "presence level (no lesion reported on a scan whose peak probability stays below it) on those scans "
            f"plus {args.train_normal} lesion-free ones (per-image Dice, 1 for an empty prediction on a lesion-free "
            "scan). The result alone is applied to the test split."
        ),
    ]
    if any("normal_scans" in r for r in results.values()):
        lines.append(
            "- Lesion-free scans flagged: BUSI normal scans with any lesion predicted at the variant's chosen "
            "threshold (and flip TTA): raw / post-processed / under the final settings (presence level included), "
            "of those it was scored on: the ones no variant trained or validated on (`train-normal`, the "
            f"`standard` recipe, trains on the {args.train_normal} that the others validate on). Rows scored on "
            "more, or without a presence level, were recorded before those existed and their run folders are gone."
        )
    lines += operating_point_table(results)
    return "\n".join(lines) + "\n"


def defined(value: float | None, spec: str) -> str:
    """``value`` formatted, or "–" when undefined (NaN, written to JSON as null)."""
    return "–" if value is None or math.isnan(value) else format(value, spec)


def presence_cell(result: dict) -> str:
    if "presence" not in result:  # recorded before the presence level, its run folder gone
        return "–"
    chosen_on = result["validation_presence"]["lesion_free_scans"]
    return f"{result['presence']:g} ({chosen_on} lesion-free)" if chosen_on else "none (no lesion-free val scans)"


def flagged_cell(result: dict) -> str:
    alarms = result.get("normal_scans")
    if not alarms:
        return "–"
    final = alarms.get("flagged_with_settings", "–")
    return f"{alarms['flagged']} / {alarms['flagged_postprocessed']} / {final} of {alarms['scans']}"


def with_lesion_free_cell(result: dict) -> str:
    alarms, test = result.get("normal_scans", {}), result["test"]
    if "flagged_with_settings" not in alarms or "scans" not in test:
        return "–"
    return f"{with_lesion_free(test, alarms):.3f}"


def with_lesion_free(test: dict, alarms: dict) -> float:
    """Mean per-image Dice over the test scans and the held-out lesion-free ones (1 where nothing is
    predicted on those, 0 elsewhere): the trade the presence level makes."""
    cleared = alarms["scans"] - alarms["flagged_with_settings"]
    return (test["dice_per_image"] * test["scans"] + cleared) / (test["scans"] + alarms["scans"])


def operating_point_table(results: dict) -> list[str]:
    """The presence level of the package's default operating point against the one of ``--max-false-alarms``."""
    rows = {name: r for name, r in results.items() if "false_alarm_target" in r}
    if not rows:
        return []
    target = next(iter(rows.values()))["false_alarm_target"]["max_false_alarms"]
    lines = [
        "",
        f"#### The presence level as an operating point: at most {target * 100:g} % of the lesion-free validation scans flagged",
        "",
        (
            "| variant | presence level | lesion-free validation scans flagged | held-out lesion-free scans flagged "
            "| test Dice pooled | test Dice per image | test Dice per image, with the lesion-free scans |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows.items():
        point = r["false_alarm_target"]
        chosen = {"presence": r["presence"], "test": r["test"], "normal_scans": r["normal_scans"]}
        chosen["validation_lesion_free_flagged"] = r["validation_presence"]["lesion_free_flagged"][f"{r['presence']:g}"]
        a, b = chosen, point  # the default operating point → --max-false-alarms
        lines.append(
            f"| {name} | {a['presence']:g} → {b['presence']:g} "
            f"| {a['validation_lesion_free_flagged']:.0%} → {b['validation_lesion_free_flagged']:.0%} "
            f"| {a['normal_scans']['flagged_with_settings']} → {b['normal_scans']['flagged_with_settings']} of {b['normal_scans']['scans']} "
            f"| {a['test']['dice']:.3f} → {b['test']['dice']:.3f} | {a['test']['dice_per_image']:.3f} → {b['test']['dice_per_image']:.3f} "
            f"| {with_lesion_free(a['test'], a['normal_scans']):.3f} → {with_lesion_free(b['test'], b['normal_scans']):.3f} |"
        )
    return lines


class LesionFree(NamedTuple):
    """BUSI's lesion-free scans as the ablation uses them: ``validation`` (the ``train-normal`` variant's
    training ones) choose the presence level, ``test`` (the rest) count false alarms."""

    validation: ArraySet
    test: ArraySet


def lesion_free_scans(args: argparse.Namespace, split: dict, out: Path) -> LesionFree | None:
    """Write the ``train-normal`` split (once) and decode the lesion-free scans on both sides of it;
    None when the dataset has none."""
    path = out / TRAIN_NORMAL_SPLIT
    records = [record for record in find_records(args.data, include_normal=True) if record.label == NORMAL_LABEL]
    if not records:
        return None
    if not path.exists():
        save_split(add_lesion_free(split, records, args.train_normal, seed=args.seed), path)
    with_normal = load_split(path)
    return LesionFree(
        validation=load_arrays(select(records, [c for c in with_normal["train"] if c.startswith(f"{NORMAL_LABEL}/")]), args.image_size),
        test=load_normal_scans(args.data, args.image_size, split=with_normal),
    )


def main(argv=None) -> int:  # noqa: C901 - the campaign's driver, step by step
    args = parse_args(argv)
    names = [name.strip() for name in args.variants.split(",") if name.strip()]
    problems = [problem for problem in map(unknown_variant, names) if problem]
    if problems:
        print(f"ablation: {problems[0]}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split_path = out / "split.json"
    try:
        data = prepare_data(args.data, str(split_path) if split_path.exists() else None, image_size=args.image_size, seed=args.seed)
        if not split_path.exists():
            save_split(data.split, split_path)
        lesion_free = None if args.data == "phantom" else lesion_free_scans(args, data.split, out)
        results_path = out / "ablation.json"
        results = json.loads(results_path.read_text())["variants"] if results_path.exists() else {}
        for name in names:
            run_dir = out / name
            kept = name in results and not (run_dir / "best.keras").exists()
            if not kept and name.startswith("gan-") and not run_finished(out / starts_from(name), args.epochs):
                raise RdanetError(f"variant {name} starts from the {starts_from(name)} variant's network: train '{starts_from(name)}' first")
            if not kept and "train-normal" in parts(name) and lesion_free is None:
                raise RdanetError(f"variant {name} needs lesion-free scans (a {NORMAL_LABEL}/ folder in the BUSI layout)")
            if kept:  # its run folder is gone (another machine): the recorded result stands
                print(f"== {name}: recorded result kept (no run folder {run_dir})", flush=True)
            trained = not kept and not run_finished(run_dir, epochs_of(name, args))
            if trained:
                command = train_command(name, args, run_dir, resume=(run_dir / "config.json").exists())
                print(f"== {name}: {shlex.join(command)}", flush=True)
                if subprocess.run([sys.executable, "-m", "rdanet_gan", *command[1:]], check=False).returncode:
                    raise RdanetError(f"variant {name}: training failed (see above)")
            # Results of a network trained further, assessed before the presence level or its operating point,
            # or counted on other lesion-free scans, are rescored.
            recorded = {} if trained else results.get(name, {})
            counted_elsewhere = lesion_free is not None and recorded.get("normal_scans", {}).get("scans") != len(lesion_free.test)
            validate_lesion_free = "train-normal" not in parts(name)
            other_target = (
                lesion_free is not None
                and validate_lesion_free
                and recorded.get("false_alarm_target", {}).get("max_false_alarms") != args.max_false_alarms
            )
            if not kept and ("presence" not in recorded or counted_elsewhere or other_target):
                assessment = assess(run_dir, data, lesion_free, validate_lesion_free, args.batch_size, args.max_false_alarms)
                results[name] = {**assessment, "command": portable(shlex.join(train_command(name, args, run_dir)), args.data)}
                settings = portable(vars(args), args.data)
                write_json(results_path, {"settings": settings, "machine": describe_machine(), "variants": results})
            print(f"== {name}: val Dice {results[name]['validation'][results[name]['inference']]['dice']:.3f}", flush=True)
    except RdanetError as error:
        print(f"ablation: error: {error}", file=sys.stderr)
        return 2
    order = [name for name in VARIANTS if name in results] + [name for name in results if name not in VARIANTS]
    table = markdown({name: results[name] for name in order}, args)
    write_text(out / "ablation.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
