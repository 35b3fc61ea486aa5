"""The ``rdanet-gan`` command line: inspect, split, train, evaluate, calibrate, segment, export, reproduce.

Every error the user can cause ends the command with one line on stderr and
exit code 2; ``segment`` exits 3 when some inputs were processed and others
were not ("partial"), and ``inspect`` exits 3 when it lists bad records.
Warnings are one line on stderr too. Outputs are written atomically and never
replace an existing file without ``--overwrite``, nor ever an input file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rdanet_gan.inference.scans import REFUSED_IMAGE_SUFFIXES, SEGMENT_SUFFIXES

EXIT_ERROR = 2
EXIT_PARTIAL = 3
# Ranges of the numeric options, checked before any work: option name -> (in range, why not).
NUMBER_RANGES = {
    "positive": (lambda value: value > 0, "must be positive"),
    "not negative": (lambda value: value >= 0, "must not be negative"),
    "fraction": (lambda value: 0 <= value < 1, "must be at least 0 and below 1"),
}
OPTION_RANGES = {
    **dict.fromkeys(("seed", "test", "validation", "train_normal", "validation_normal"), "not negative"),
    "batch_size": "positive",
    "max_false_alarms": "fraction",
}
"""The ranges of the options declared here; the training commands' come with TrainConfig's fields
(:func:`rdanet_gan.training.arguments.option_ranges`)."""
TRAINING_COMMANDS = ("train", "reproduce")
"""The commands whose options are TrainConfig's fields: only they import the training package."""
SEGMENT_EPILOG = (
    "Scans are read by their suffix: " + " ".join(SEGMENT_SUFFIXES) + " (DICOM needs the dicom extra). "
    "GIF and other image formats (" + " ".join(REFUSED_IMAGE_SUFFIXES[1:]) + ") are refused, whether named or "
    "found in a folder, and listed as skipped: convert them to PNG (a GIF is often an animated cine loop, of which "
    "one frame would be read). Other files in a folder are ignored, as are hidden files and *_mask* and *_overlay "
    "files. A scan whose pixels are all equal (a blank frame, a 1x1 image) shows nothing to segment: it is skipped "
    "as a degenerate image, not reported lesion-free. Exit status: 0 every scan segmented, 3 some skipped, "
    "2 none segmented or a bad option."
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the command line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    recorded = "(default: as recorded in MODEL.inference.json beside the model, chosen on the validation split; else %s)"
    parser.add_argument("--threshold", type=float, help=f"probability at or above which a pixel is lesion {recorded % 0.5}")
    parser.add_argument(
        "--flip-tta",
        action=argparse.BooleanOptionalAction,
        help=f"average the prediction with that of the mirrored scan {recorded % 'off'}",
    )
    parser.add_argument(
        "--postprocess",
        action=argparse.BooleanOptionalAction,
        help=f"keep the largest lesion region and fill its holes; drop it when under 0.1%% of the scan {recorded % 'off'}",
    )
    parser.add_argument(
        "--presence",
        type=float,
        metavar="P",
        help=f"report no lesion on a scan whose peak lesion probability stays below P; 0 never does {recorded % 0}",
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:  # noqa: PLR0915 - one add_argument per option
    """The ``rdanet-gan`` parser with its eight commands.

    The training options of ``train`` and ``reproduce`` come from TrainConfig's fields, in the training
    package; with ``command`` another command, they are left out, so that prediction never imports training.
    """
    from rdanet_gan.inference.litert import QUANTIZATIONS

    def add_config_arguments(parser: argparse.ArgumentParser, name: str, **options) -> None:
        if command in (None, name):
            from rdanet_gan.training.arguments import add_config_arguments as add

            add(parser, name, **options)

    parser = _Parser(
        prog="rdanet-gan",
        description="Breast-ultrasound lesion segmentation with RDA-Net-GAN (RDAU-Net + Wasserstein critic) and its baselines.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="report what a dataset folder holds before training")
    inspect.add_argument("--data", required=True, help="dataset folder")
    inspect.add_argument("--layout", default="auto", choices=("auto", "busi", "paired", "udiat"), help="folder layout (default: detect)")
    inspect.add_argument("--json", help="also write the report as JSON to this file")

    split = commands.add_parser("split", help="write a leakage-aware train/validation/test split file")
    split.add_argument("--data", required=True, help="dataset folder")
    split.add_argument("--out", required=True, help="split JSON file to write")
    split.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    split.add_argument(
        "--from",
        dest="base",
        metavar="SPLIT",
        help="keep this split file's lists and only add lesion-free scans to them (--train-normal, --validation-normal)",
    )
    split.add_argument("--test", type=int, default=57, help="test images (default: 57, the paper's)")
    split.add_argument("--validation", type=int, default=50, help="validation images (default: 50, the paper's)")
    split.add_argument(
        "--train-normal",
        type=int,
        default=0,
        metavar="N",
        help="also train on N lesion-free scans (BUSI normal/); the others stay out of the split, to count false alarms on (default: 0)",
    )
    split.add_argument(
        "--validation-normal",
        type=int,
        default=0,
        metavar="N",
        help="also validate on N other lesion-free scans, on which training chooses when to report no lesion (the presence level; default: 0)",
    )
    split.add_argument("--overwrite", action="store_true", help="replace an existing split file")

    train = commands.add_parser("train", help="train one model into a resumable run directory")
    add_config_arguments(train, "train")  # a flag per TrainConfig field, from the field
    train.add_argument("--out", help="run directory (default: runs/MODEL)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")

    evaluate = commands.add_parser("evaluate", help="score a model on a split's test images; print the table")
    evaluate.add_argument("--model", required=True, help="segmenter: a .keras file or a LiteRT export (.tflite)")
    evaluate.add_argument("--data", required=True, help="dataset folder")
    evaluate.add_argument("--split", required=True, help="split JSON file")
    evaluate.add_argument("--subset", default="test", choices=("train", "validation", "test"), help="which part of the split (default: test)")
    evaluate.add_argument("--native-resolution", action="store_true", help="score masks resized back to each scan's original size")
    _add_inference_options(evaluate)
    evaluate.add_argument("--normal", action="store_true", help="also count lesions predicted on the dataset's lesion-free scans (BUSI normal/) that the split does not list")
    evaluate.add_argument("--out", help="folder for per_image.csv and summary.json (and normal_scans.json)")
    evaluate.add_argument("--overwrite", action="store_true", help="replace existing output files")

    calibrate = commands.add_parser(
        "calibrate", help="choose a model's inference settings on a split's validation scans; write MODEL.inference.json"
    )
    calibrate.add_argument("--model", required=True, help="segmenter .keras file; the settings are written beside it")
    calibrate.add_argument("--data", required=True, help="dataset folder")
    calibrate.add_argument("--split", required=True, help="split JSON file whose validation list to calibrate on")
    calibrate.add_argument(
        "--max-false-alarms",
        type=float,
        metavar="F",
        help="presence level: the lowest flagging at most fraction F of the lesion-free validation scans (default: the best per-image Dice)",
    )
    calibrate.add_argument("--batch-size", type=int, default=32, help="scans per prediction batch (default: 32)")
    calibrate.add_argument("--overwrite", action="store_true", help="replace the model's existing settings file and figure")

    segment = commands.add_parser(
        "segment", help="write a lesion mask (and an overlay) for each scan", epilog=SEGMENT_EPILOG
    )
    segment.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="scan files or folders of them (PNG, JPEG, BMP, TIFF, DICOM; not GIF)",
    )
    segment.add_argument(
        "--model",
        help="segmenter: a .keras file or a LiteRT export (.tflite) (default: the shipped RDA-NET-GAN on MobileNetV2, run as --backend says)",
    )
    segment.add_argument(
        "--backend",
        choices=("litert", "keras"),
        help="run the shipped model by its LiteRT export (faster on a CPU; the default) or by TensorFlow (the .keras file)",
    )
    segment.add_argument("--out", default="masks", help="output folder (default: ./masks)")
    segment.add_argument("--overlay", action="store_true", help="also write the scan with the lesion contour")
    _add_inference_options(segment)
    segment.add_argument("--overwrite", action="store_true", help="replace existing output files")

    export = commands.add_parser("export", help="write a segmenter as a LiteRT (.tflite) file, for faster prediction on a CPU")
    export.add_argument("model", metavar="MODEL", help="segmenter .keras file")
    export.add_argument("--out", help="the LiteRT file to write (default: MODEL with the suffix .tflite)")
    export.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        default="float32",
        help="float32 (the default: the network as it is), float16 (weights in half precision: half the file), "
        "int8 (8-bit arithmetic, calibrated on the training scans of --data/--split; check its Dice before use)",
    )
    export.add_argument("--data", help="with --quantization int8: dataset folder whose training scans calibrate it")
    export.add_argument("--split", help="with --quantization int8: split file naming those training scans")
    export.add_argument("--overwrite", action="store_true", help="replace existing output files")

    reproduce = commands.add_parser("reproduce", help="train and evaluate the four models; write Table 1 and Fig. 4")
    add_config_arguments(reproduce, "reproduce", recipe="paper")  # Table 1 is the faithful recipe
    reproduce.add_argument("--out", default="reproduction", help="output folder; rerun to resume (default: ./reproduction)")
    reproduce.add_argument(
        "--models",
        default="rdau-net,rdanet-gan,unet,segnet",
        help="comma-separated rows of Table 1 to train and evaluate (default: all four; rdanet-gan needs rdau-net)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else "").parse_args(argv)
    args.argv = argv  # reproduce records the command that made its results
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rdanet_gan.errors import RdanetError
    from rdanet_gan.native_logs import native_logs_filtered

    prefix = f"rdanet-gan {args.command}"

    def show_warning(message, *_, **__) -> None:
        print(f"{prefix}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings(), native_logs_filtered():
        warnings.showwarning = show_warning
        try:
            return COMMANDS[args.command](args)
        except (RdanetError, OSError) as error:  # OSError: a file-system problem (disk full, permissions)
            print(f"{prefix}: error: {error}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print(f"{prefix}: interrupted", file=sys.stderr)
            return 130


def _refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """Stop before any work when an output exists and ``--overwrite`` was not given, or is a folder."""
    from rdanet_gan.errors import DataError, OutputExistsError

    for path in paths:
        if path.is_dir():  # --overwrite could not replace it either
            raise DataError(path, "an existing folder; give the name of a file to write")
        if not overwrite and path.exists():
            raise OutputExistsError(path)


def _check_output_folder(option: str, folder: Path) -> None:
    """Stop before any work when ``folder`` cannot be made a folder: it, or one above it, is a file."""
    from rdanet_gan.errors import RdanetError

    for path in (folder, *folder.parents):
        if path.is_dir():
            return
        if path.exists() or path.is_symlink():
            what = "an existing file, not a folder" if path.exists() else "a broken symbolic link"
            raise RdanetError(f"{option} {folder}: " + (what if path == folder else f"{path} is {what}"))


def _check_numbers(values: dict[str, object]) -> None:
    """Stop on a numeric option out of its range (:data:`OPTION_RANGES`), naming the option and the value."""
    from rdanet_gan.errors import RdanetError

    ranges = OPTION_RANGES
    if values.get("command") in TRAINING_COMMANDS:
        from rdanet_gan.training.arguments import option_ranges

        ranges = {**OPTION_RANGES, **option_ranges()}
    for name, value in values.items():
        if name in ranges and value is not None:
            in_range, why = NUMBER_RANGES[ranges[name]]
            if not in_range(value):  # NaN is in no range
                raise RdanetError(f"--{name.replace('_', '-')} {value}: {why}")


def _check_inference_options(args) -> None:
    """Stop on a ``--threshold`` or ``--presence`` out of range before a model is loaded."""
    from rdanet_gan.errors import RdanetError
    from rdanet_gan.inference.settings import InferenceSettings, settings_problem

    chosen = {name: getattr(args, name) for name in ("threshold", "presence") if getattr(args, name) is not None}
    problem = settings_problem(dataclasses.replace(InferenceSettings(), **chosen))
    if problem:
        raise RdanetError(f"--{problem[0]} {chosen[problem[0]]}: {problem[1]}")


def _inspect(args) -> int:
    from rdanet_gan.data import format_inspection, inspect_dataset
    from rdanet_gan.fileio import write_json

    report = inspect_dataset(args.data, layout=args.layout)
    print(format_inspection(report))
    if args.json:
        write_json(args.json, report)
    return EXIT_PARTIAL if report["bad_records"] else 0


def _split(args) -> int:
    from rdanet_gan.data import add_lesion_free, find_records, load_split, make_split, save_split
    from rdanet_gan.data.records import NORMAL_LABEL
    from rdanet_gan.errors import DataError

    _check_numbers(vars(args))
    _refuse_existing([Path(args.out)], args.overwrite)
    wanted = {"train": args.train_normal, "validation": args.validation_normal}
    records = find_records(args.data, include_normal=any(wanted.values()))
    lesion_free = [record for record in records if record.label == NORMAL_LABEL]
    if any(wanted.values()) and not lesion_free:
        raise DataError(args.data, f"holds no lesion-free scans (a {NORMAL_LABEL}/ folder in the BUSI layout)")
    records = [record for record in records if record.label != NORMAL_LABEL]
    if args.base:
        split = load_split(args.base)
    else:
        split = make_split(records, args.data, n_test=args.test, n_validation=args.validation, seed=args.seed)
    for side, count in reversed(wanted.items()):  # validation first: adding training scans leaves its picks alone
        if count:
            split = add_lesion_free(split, lesion_free, count, side=side, seed=args.seed)
    save_split(split, args.out, overwrite=args.overwrite)
    print(f"{args.out}: " + ", ".join(f"{len(v)} {k}" for k, v in split.items()))
    return 0


def _config(args, model: str, **settings):
    """The ``TrainConfig`` of a training command's flags, for ``model``."""
    from rdanet_gan.errors import RdanetError

    _check_numbers(vars(args))  # before TensorFlow is imported
    from rdanet_gan.training.arguments import config_from_args

    try:
        return config_from_args(args, model=model, **settings)
    except ValueError as error:  # an option the settings refuse, e.g. an unknown augmentation stage
        raise RdanetError(str(error)) from None


def _train(args) -> int:
    out = Path(args.out or Path("runs") / args.model)
    _check_output_folder("--out", out)
    config = _config(args, args.model)
    from rdanet_gan.training import train

    result = train(config, out, resume=args.resume)
    print(f"{result.run_dir}: finished; segmenter saved as {result.final_model}")
    return 0


def _inference_settings(args, model_path: Path):
    """The model's recorded inference settings (``MODEL.inference.json``), overridden by explicit options
    (checked before the model was loaded: :func:`_check_inference_options`)."""
    from rdanet_gan.inference.settings import InferenceSettings, model_settings

    options = {field.name: getattr(args, field.name) for field in dataclasses.fields(InferenceSettings)}
    settings, source = model_settings(model_path, **options)
    print(f"inference: {settings.describe()} ({source})")
    return settings


def _evaluate(args) -> int:
    from rdanet_gan.data import load_normal_scans, load_split, prepare_data
    from rdanet_gan.errors import DataError, RdanetError
    from rdanet_gan.evaluation.evaluate import evaluate_model, lesion_free_false_positives, normal_scan_alarms
    from rdanet_gan.evaluation.report import table1_markdown
    from rdanet_gan.fileio import write_json
    from rdanet_gan.inference.model_files import load_segmenter

    _check_inference_options(args)
    out = Path(args.out) if args.out else None
    if out:
        _check_output_folder("--out", out)
    outputs = ["per_image.csv", "summary.json"] + (["normal_scans.json"] if args.normal else [])
    _refuse_existing([out / name for name in outputs] if out else [], args.overwrite)
    if not load_split(args.split)[args.subset]:  # before loading the model or decoding a scan
        raise DataError(args.split, f"lists no {args.subset} scans to evaluate (choose another --subset)")
    if args.native_resolution and args.data == "phantom":
        raise RdanetError("--native-resolution needs scans read from files; phantoms exist at one size only")
    model = load_segmenter(args.model)
    settings = _inference_settings(args, Path(args.model))
    size = model.input_shape[1]
    data = prepare_data(args.data, args.split, image_size=size)
    normal_scans = load_normal_scans(args.data, size, split=data.split) if args.normal else None
    evaluation = evaluate_model(model, getattr(data, args.subset), settings, native_resolution=args.native_resolution)
    print(table1_markdown({Path(args.model).stem: evaluation}, include_paper=False, inference=settings.describe()))
    normal = lesion_free_false_positives(evaluation)
    if normal["lesion_free_scans"]:
        print(f"lesion predicted on {normal['with_predicted_lesion']} of {normal['lesion_free_scans']} lesion-free scans")
    alarms = None
    if normal_scans is not None:
        alarms = normal_scan_alarms(model, normal_scans, settings)
        print(
            f"lesion-free scans: a lesion is predicted on {alarms['flagged']} of {alarms['scans']}, "
            f"{alarms['flagged_postprocessed']} after post-processing, {alarms['flagged_with_settings']} with the settings above"
        )
    if out:
        evaluation.write_csv(out / "per_image.csv", overwrite=args.overwrite)
        evaluation.write_json(out / "summary.json", overwrite=args.overwrite)
        if alarms is not None:
            write_json(out / "normal_scans.json", alarms)
        print(f"{out}: {', '.join(outputs)}")
    return 0


def _calibrate(args) -> int:
    from rdanet_gan.data import prepare_data
    from rdanet_gan.errors import DataError, RdanetError
    from rdanet_gan.evaluation.calibration import choose_inference, validation_problem, write_inference
    from rdanet_gan.evaluation.figures import plot_presence_tradeoff
    from rdanet_gan.fileio import real_path
    from rdanet_gan.inference.model_files import WEIGHTS_DIR, load_segmenter
    from rdanet_gan.inference.settings import inference_file

    model_path = Path(args.model)
    _check_numbers(vars(args))
    if real_path(model_path).is_relative_to(real_path(WEIGHTS_DIR)):
        raise RdanetError(f"{model_path}: a shipped model, checked against rdanet_gan/weights/manifest.json; calibrate a copy of it")
    outputs = [inference_file(model_path), model_path.with_suffix(".presence.png")]
    _refuse_existing(outputs, args.overwrite)
    model = load_segmenter(model_path)
    data = prepare_data(args.data, args.split, image_size=model.input_shape[1])
    problem = validation_problem(data.validation, args.max_false_alarms)
    if problem:
        raise DataError(args.split, problem)
    calibration = choose_inference(model, data.validation, args.batch_size, args.max_false_alarms)
    written = write_inference(model_path, calibration, overwrite=args.overwrite)
    if calibration.lesion_free_scans:
        plot_presence_tradeoff(calibration.presence, calibration.settings.presence, outputs[1])
    dice = calibration.validation_dice()
    print(
        f"{written}: {calibration.settings.describe()} (validation Dice {dice[calibration.chosen]:.3f}, plain "
        f"{dice['plain']:.3f}; presence level: {calibration.presence_rule()}, on {calibration.validation_scans} "
        f"validation scans, {calibration.lesion_free_scans} lesion-free)"
    )
    return 0


def _segment(args) -> int:
    from rdanet_gan import register_segmenter_objects_only
    from rdanet_gan.errors import RdanetError
    from rdanet_gan.inference import find_scans, open_segmenter, protected_files, segment_files

    if args.model and args.backend:
        raise RdanetError("--backend chooses how the shipped model runs; --model FILE runs as its suffix says (.keras or .tflite)")
    out = Path(args.out)
    _check_output_folder("--out", out)
    _check_inference_options(args)
    files, problems = find_scans(args.inputs, out)
    if not files:  # nothing to segment: said before the model is loaded
        return _end_segment(problems, done=0)
    register_segmenter_objects_only()  # this process only predicts: nothing of training is imported
    model, model_path = open_segmenter(args.model or None, args.backend)
    settings = _inference_settings(args, model_path)
    protected = protected_files(files, args.inputs, out)
    done = 0
    results = segment_files(model, files, out, settings, overlay=args.overlay, overwrite=args.overwrite, protected=protected)
    for path, result in results:
        if isinstance(result, str):  # the problem that skipped it
            problems.append(result)
        else:
            done += 1
            print(f"{path}: lesion in {100 * float(result.mean()):.1f}% of the scan")
    return _end_segment(problems, done)


def _end_segment(problems: Sequence[str], done: int) -> int:
    """List the skipped inputs; the exit code: 0, or 3 when some were skipped; an error when none was segmented.

    When the one input tried failed, its problem is the error: one line.
    """
    from rdanet_gan.errors import RdanetError

    if not done and len(problems) == 1:
        raise RdanetError(problems[0])
    for problem in problems:
        print(f"rdanet-gan segment: skipped {problem}", file=sys.stderr)
    if not done:
        raise RdanetError("no input could be segmented")
    return EXIT_PARTIAL if problems else 0


def _export(args) -> int:
    import shutil

    from rdanet_gan.data import prepare_data
    from rdanet_gan.errors import ModelFileError, RdanetError
    from rdanet_gan.fileio import real_path
    from rdanet_gan.inference.litert import export_agreement, export_litert
    from rdanet_gan.inference.model_files import EXPORT_SUFFIX, load_segmenter
    from rdanet_gan.inference.settings import inference_file

    model_path = Path(args.model)
    out = Path(args.out) if args.out else model_path.with_suffix(EXPORT_SUFFIX)
    if out.suffix.lower() != EXPORT_SUFFIX:
        raise RdanetError(f"--out {out}: a LiteRT file ends in {EXPORT_SUFFIX}")
    if args.quantization == "int8" and not (args.data and args.split):
        raise RdanetError("--quantization int8: needs --data and --split, whose training scans calibrate it")
    if (args.data or args.split) and args.quantization != "int8":
        raise RdanetError("--data and --split calibrate --quantization int8 only")
    settings = inference_file(model_path)  # copied beside the export, unless the export shares it (same folder and name)
    settings = settings if settings.is_file() and real_path(settings) != real_path(inference_file(out)) else None
    _refuse_existing([out] + ([inference_file(out)] if settings else []), args.overwrite)
    model = load_segmenter(model_path)
    if not hasattr(model, "layers"):
        raise RdanetError(f"{model_path}: already a LiteRT export; export the .keras model it came from")
    scans = prepare_data(args.data, args.split, image_size=model.input_shape[1]).train.images if args.data else None
    try:
        export_litert(model, out, args.quantization, calibration=scans, overwrite=args.overwrite)
    except ModelFileError as error:  # it names the network; the user knows the file
        raise ModelFileError(model_path, error.problem) from None
    if settings:
        shutil.copyfile(settings, inference_file(out))
    difference = export_agreement(model, load_segmenter(out), scans)
    copied = f"; its inference settings copied to {inference_file(out)}" if settings else ""
    print(
        f"{out}: LiteRT, {args.quantization}, {out.stat().st_size / 1e6:.1f} MB; "
        f"largest probability difference from Keras {difference:.2g}{copied}"
    )
    return 0


def _reproduce(args) -> int:
    from rdanet_gan.errors import RdanetError

    _check_output_folder("--out", Path(args.out))
    _check_numbers(vars(args))  # before TensorFlow is imported
    from rdanet_gan.reproduce import check_models, check_settings, reproduce

    models = [name.strip() for name in args.models.split(",") if name.strip()]
    try:
        check_models(models)
    except ValueError as error:
        raise RdanetError(f"--models: {error}") from None
    base = _config(args, "rdau-net")
    try:
        check_settings(base, models)
    except ValueError as error:
        raise RdanetError(str(error)) from None
    command = shlex.join(["rdanet-gan", *args.argv])
    print(reproduce(base, Path(args.out), models=models, command=command))
    return 0


COMMANDS = {
    "inspect": _inspect,
    "split": _split,
    "train": _train,
    "evaluate": _evaluate,
    "calibrate": _calibrate,
    "segment": _segment,
    "export": _export,
    "reproduce": _reproduce,
}


if __name__ == "__main__":
    raise SystemExit(main())
