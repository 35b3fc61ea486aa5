"""The commands that run a trained segmenter: ``evaluate``, ``calibrate``, ``presence-head``, ``segment``, ``export``.

``segment`` only predicts: it imports nothing of :mod:`rdanet_gan.training` or :mod:`rdanet_gan.evaluation`
(the imports of each command are inside it).
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from rdanet_gan.cli.checks import check_inference_options, check_numbers, check_output_folder, refuse_existing
from rdanet_gan.cli.parser import EXIT_PARTIAL


def inference_settings(args, model_path: Path):
    """The model's recorded inference settings (``MODEL.inference.json``), overridden by explicit options
    (checked before the model was loaded: :func:`rdanet_gan.cli.checks.check_inference_options`)."""
    from rdanet_gan.inference.settings import InferenceSettings, model_settings

    options = {field.name: getattr(args, field.name) for field in dataclasses.fields(InferenceSettings)}
    settings, source = model_settings(model_path, **options)
    print(f"inference: {settings.describe()} ({source})")
    return settings


def evaluate_command(args) -> int:
    from rdanet_gan.data import load_normal_scans, load_split, prepare_data
    from rdanet_gan.errors import DataError, RdanetError
    from rdanet_gan.evaluation.evaluate import (
        evaluate_model,
        lesion_free_false_positives,
        lesion_scan_scores,
        normal_scan_alarms,
    )
    from rdanet_gan.evaluation.figures import plot_dice_by_size
    from rdanet_gan.evaluation.report import table1_markdown
    from rdanet_gan.evaluation.subgroups import subgroup_markdown, subgroup_scores
    from rdanet_gan.fileio import write_json
    from rdanet_gan.inference.model_files import open_segmenter

    check_inference_options(args)
    out = Path(args.out) if args.out else None
    if out:
        check_output_folder("--out", out)
    outputs = ["per_image.csv", "summary.json", "subgroups.json", "dice_by_size.png"] + (["normal_scans.json"] if args.normal else [])
    refuse_existing([out / name for name in outputs] if out else [], args.overwrite)
    if not load_split(args.split)[args.subset]:  # before loading the model or decoding a scan
        raise DataError(args.split, f"lists no {args.subset} scans to evaluate (choose another --subset)")
    if args.native_resolution and args.data == "phantom":
        raise RdanetError("--native-resolution needs scans read from files; phantoms exist at one size only")
    model, model_path = open_segmenter(args.model)
    settings = inference_settings(args, model_path)
    size = model.input_shape[1]
    data = prepare_data(args.data, args.split, image_size=size)
    normal_scans = load_normal_scans(args.data, size, split=data.split) if args.normal else None
    evaluation = evaluate_model(model, getattr(data, args.subset), settings, native_resolution=args.native_resolution)
    print(table1_markdown({Path(args.model).stem: evaluation}, include_paper=False, inference=settings.describe()))
    normal = lesion_free_false_positives(evaluation)
    if normal["lesion_free_scans"]:
        print(f"lesion predicted on {normal['with_predicted_lesion']} of {normal['lesion_free_scans']} lesion-free scans")
        lesions = lesion_scan_scores(evaluation)
        print(
            f"the {lesions['lesion_scans']} scans with a lesion alone: pooled Dice {lesions['dice']:.4f}, precision "
            f"{lesions['precision']:.4f}, sensitivity {lesions['sensitivity']:.4f}, per-image Dice {lesions['dice_per_image']:.4f}"
        )
    subgroups = subgroup_scores(evaluation)
    if any(subgroups.values()):
        print(f"\n{subgroup_markdown(subgroups)}\n")
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
        write_json(out / "subgroups.json", subgroups, overwrite=args.overwrite)
        plot_dice_by_size(evaluation.per_image, out / "dice_by_size.png")
        if alarms is not None:
            write_json(out / "normal_scans.json", alarms)
        print(f"{out}: {', '.join(outputs)}")
    return 0


def calibrate_command(args) -> int:
    from rdanet_gan.data import prepare_data
    from rdanet_gan.errors import DataError, RdanetError
    from rdanet_gan.evaluation.calibration import choose_inference, validation_problem, write_inference
    from rdanet_gan.evaluation.figures import plot_presence_tradeoff
    from rdanet_gan.fileio import real_path
    from rdanet_gan.inference.model_files import WEIGHTS_DIR, load_segmenter
    from rdanet_gan.inference.settings import inference_file

    model_path = Path(args.model)
    check_numbers(vars(args))
    if real_path(model_path).is_relative_to(real_path(WEIGHTS_DIR)):
        raise RdanetError(f"{model_path}: a shipped model, checked against rdanet_gan/weights/manifest.json; calibrate a copy of it")
    outputs = [inference_file(model_path), model_path.with_suffix(".presence.png")]
    refuse_existing(outputs, args.overwrite)
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


def presence_head_command(args) -> int:
    from rdanet_gan.data import prepare_data
    from rdanet_gan.inference.model_files import load_segmenter

    model_path, out = Path(args.model), Path(args.out)
    check_numbers(vars(args))
    _check_new_model_file(out, [model_path], args.overwrite)
    model = _rdau_net(load_segmenter(model_path), model_path)
    train = prepare_data(args.data, args.split, image_size=model.input_shape[1]).train
    headed, has_lesion, auc = _fit_head(model, train, args)
    _save_new_model(headed, out, args.overwrite)
    print(
        f"{out}: presence head fitted on {len(has_lesion)} training scans ({int(has_lesion.sum())} with a lesion, "
        f"{int((~has_lesion).sum())} lesion-free), training AUC {auc:.3f}; choose its settings with "
        f"rdanet-gan calibrate --model {out}"
    )
    return 0


def _fit_head(model, train, args):
    """``model`` with a presence head fitted on the training scans ``train``, which of them show a lesion,
    and the head's AUC on them."""
    from rdanet_gan.models.presence import DEFAULT_L2, add_presence_head, fit_presence, pooled_features, rank_auc

    has_lesion = _has_lesion(train.masks, args)
    features = pooled_features(model, train.images, args.batch_size)
    weights, bias = fit_presence(features, has_lesion, DEFAULT_L2 if args.l2 is None else args.l2)
    return add_presence_head(model, weights, bias), has_lesion, rank_auc(features @ weights + bias, has_lesion)


def _rdau_net(model, model_path: Path):
    """``model`` when a presence head can be fitted on it; else a one-line error naming its file."""
    from rdanet_gan.errors import ModelFileError
    from rdanet_gan.models.presence import has_presence_head, presence_features

    if not hasattr(model, "layers"):
        raise ModelFileError(model_path, "a LiteRT export; fit the head on the .keras model it came from")
    if has_presence_head(model):
        raise ModelFileError(model_path, "already has a presence head; fit one on the model without it")
    try:
        presence_features(model)
    except ValueError:
        why = "no dilated module: the presence head applies to RDAU-Net (and its pretrained-encoder variants)"
        raise ModelFileError(model_path, why) from None
    return model


def _has_lesion(masks, args):
    """Whether each training scan shows a lesion; a one-line error unless both kinds are there."""
    from rdanet_gan.errors import DataError

    has_lesion = masks.reshape(len(masks), -1).any(axis=1)
    if not has_lesion.any():
        raise DataError(args.split, "the training list holds no scan with a lesion, which the presence head needs")
    if has_lesion.all():
        raise DataError(
            args.split,
            "the training list holds no lesion-free scans, which the presence head needs; make a split with some: "
            f"rdanet-gan split --data {args.data} --from {args.split} --train-normal N --out NEW.json",
        )
    return has_lesion


def segment_command(args) -> int:
    from rdanet_gan import register_segmenter_objects_only
    from rdanet_gan.errors import RdanetError
    from rdanet_gan.inference import (
        find_scans,
        open_segmenter,
        protected_files,
        segment_files,
        write_segmentation_table,
    )

    if args.model and args.backend:
        raise RdanetError("--backend chooses how the shipped model runs; --model FILE runs as its suffix says (.keras or .tflite)")
    out = Path(args.out)
    check_output_folder("--out", out)
    check_inference_options(args)
    files, problems = find_scans(args.inputs, out)
    protected = protected_files(files, args.inputs, out)
    _check_table_file(args, protected)
    files = [path for path in files if not _refused_output(path, args, protected, problems)]
    if not files:  # nothing to segment: said before the model is loaded
        return _end_segment(problems, done=0)
    register_segmenter_objects_only()  # this process only predicts: nothing of training is imported
    model, model_path = open_segmenter(args.model or None, args.backend)
    settings = inference_settings(args, model_path)
    segmented = []
    results = segment_files(model, files, out, settings, overlay=args.overlay, overwrite=args.overwrite, protected=protected)
    for path, result in results:
        if isinstance(result, str):  # the problem that skipped it
            problems.append(result)
        else:
            segmented.append((path, result))
            print(f"{path}: {_described(result, settings.presence)}")
    if args.csv and segmented:
        write_segmentation_table(args.csv, segmented, settings.presence, overwrite=args.overwrite)
        print(f"{args.csv}: one row per segmented scan")
    return _end_segment(problems, len(segmented))


def _described(result, presence: float) -> str:
    """One scan's outcome in words: the lesion's share of the scan or no lesion, and the peak probability."""
    peak = f"peak probability {result.peak:.6f}"
    if result.mask.any():
        return f"lesion in {100 * float(result.mask.mean()):.1f}% of the scan ({peak})"
    return f"no lesion ({peak}" + (f", below the presence level {presence:g})" if result.peak < presence else ")")


def _check_table_file(args, protected: set[Path]) -> None:
    """Stop before the model loads when ``--csv`` may not be written: below a file, an input, or an existing file
    without --overwrite."""
    from rdanet_gan.errors import DataError
    from rdanet_gan.fileio import real_path

    if not args.csv:
        return
    table = Path(args.csv)
    check_output_folder("--csv", table.parent)
    if real_path(table) in protected:
        raise DataError(table, "is an input or was in the input folder, and is never replaced; choose another --csv")
    refuse_existing([table], args.overwrite)


def _refused_output(path: Path, args, protected: set[Path], problems: list[str]) -> bool:
    """Whether a scan's mask or overlay may not be written (an input, or an existing file without --overwrite):
    checked before the model loads, its problem added to ``problems``."""
    from rdanet_gan.errors import RdanetError
    from rdanet_gan.inference.outputs import output_paths

    try:
        output_paths(path, args.out, args.overlay, args.overwrite, protected)
    except RdanetError as error:
        problems.append(str(error))
        return True
    return False


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


def export_command(args) -> int:
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
    refuse_existing([out] + ([inference_file(out)] if settings else []), args.overwrite)
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


def ensemble_command(args) -> int:
    from rdanet_gan.errors import DataError, RdanetError
    from rdanet_gan.inference.ensemble_file import ENSEMBLE_SUFFIX, check_members, write_ensemble_file
    from rdanet_gan.inference.model_files import load_segmenter
    from rdanet_gan.models import build_ensemble

    paths, out = [Path(path) for path in args.models], Path(args.out)
    if len(paths) < 2:
        raise RdanetError(f"an ensemble needs at least two models, got {len(paths)}")
    for path in paths:
        if path.suffix.lower() == ".tflite":
            raise DataError(path, "a LiteRT export cannot be a member; give the .keras file it was exported from")
    by_reference = out.suffix.lower() == ENSEMBLE_SUFFIX
    _check_new_model_file(out, paths, args.overwrite, also=ENSEMBLE_SUFFIX)
    if by_reference:
        check_members(paths)
    members = [load_segmenter(path) for path in paths]
    for path, member in zip(paths, members, strict=True):
        if member.input_shape != members[0].input_shape:
            raise DataError(path, f"takes {member.input_shape[1:3]} scans, {paths[0]} takes {members[0].input_shape[1:3]}")
    ensemble = build_ensemble(members, presence=args.presence)
    if by_reference:
        write_ensemble_file(out, paths, args.presence, overwrite=args.overwrite)
        _warn_earlier_settings(out)
    else:
        _save_new_model(ensemble, out, args.overwrite)
    print(
        f"{out}: ensemble of {len(members)} models ({args.presence} presence), {ensemble.count_params():,} parameters"
        f"{', named, not copied: keep the member files where they are' if by_reference else ''}; choose its settings with "
        f"rdanet-gan calibrate --model {out}"
    )
    return 0


def _check_new_model_file(out: Path, inputs: Sequence[Path], overwrite: bool, also: str | None = None) -> None:
    """Refuse, before any work, an ``--out`` model file that is not ``.keras`` (nor ``also``), is one of ``inputs``, or exists."""
    from rdanet_gan.errors import RdanetError
    from rdanet_gan.fileio import real_path

    if out.suffix.lower() not in (".keras", also):
        kinds = f"a .keras file{f' or a {also} ensemble file' if also else ''}"
        raise RdanetError(f"--out {out}: the new model is written as {kinds}")
    if real_path(out) in {real_path(path) for path in inputs}:
        raise RdanetError(f"--out {out}: an input model; write the new model to another file")
    refuse_existing([out], overwrite)


def _save_new_model(model, out: Path, overwrite: bool) -> None:
    """Write ``model`` to ``out`` atomically; warn when settings chosen for an earlier model lie beside it."""
    from rdanet_gan.fileio import atomic_path

    with atomic_path(out, overwrite) as tmp:
        model.save(tmp)
    _warn_earlier_settings(out)


def _warn_earlier_settings(out: Path) -> None:
    """Warn when settings chosen for an earlier model lie beside the new model file ``out``."""
    from rdanet_gan.inference.settings import inference_file

    if inference_file(out).exists():
        warnings.warn(f"{inference_file(out)} holds the settings of an earlier model: run calibrate --overwrite")
