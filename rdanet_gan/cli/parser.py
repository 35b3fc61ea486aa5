"""The grammar of the ``rdanet-gan`` command line: its nine commands, their options and help, and its exit codes.

Building the parser imports no TensorFlow: ``--help`` and option errors answer at once. The options of the
training commands come from TrainConfig's fields, in the training package, which only those commands import.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from rdanet_gan.inference.scans import REFUSED_IMAGE_SUFFIXES, SEGMENT_SUFFIXES
from rdanet_gan.options import ENSEMBLE_PRESENCE

EXIT_ERROR = 2
EXIT_PARTIAL = 3
SHIPPED_BY_NAME = "or a shipped model by its file name, such as rdanet_gan_full.npz (the model card, weights/README.md, lists them)"
SEGMENT_EPILOG = (
    "Scans are read by their suffix: " + " ".join(SEGMENT_SUFFIXES) + " (DICOM needs the dicom extra). "
    "GIF and other image formats (" + " ".join(REFUSED_IMAGE_SUFFIXES[1:]) + ") are refused, whether named or "
    "found in a folder, and listed as skipped: convert them to PNG (a GIF is often an animated cine loop, of which "
    "one frame would be read). Other files in a folder are ignored, as are hidden files and *_mask* and *_overlay "
    "files. A scan whose pixels are all equal (a blank frame, a 1x1 image) shows nothing to segment: it is skipped "
    "as a degenerate image, not reported lesion-free. Exit status: 0 every scan segmented, 3 some skipped, "
    "2 none segmented or a bad option."
)


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the command line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``rdanet-gan`` parser with its nine commands.

    The training options of ``train`` and ``reproduce`` come from TrainConfig's fields, in the training
    package; with ``command`` another command, they are left out, so that prediction never imports training.
    """
    parser = OneLineErrorParser(
        prog="rdanet-gan",
        description="Breast-ultrasound lesion segmentation with RDA-NET-GAN (RDAU-Net + Wasserstein critic) and its baselines.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_inspect(commands)
    _add_split(commands)
    _add_train(commands, command)
    _add_evaluate(commands)
    _add_calibrate(commands)
    _add_presence_head(commands)
    _add_segment(commands)
    _add_export(commands)
    _add_ensemble(commands)
    _add_reproduce(commands, command)
    return parser


def _add_training_options(parser: argparse.ArgumentParser, name: str, command: str | None, **options) -> None:
    """A flag per TrainConfig field, from the field; only when ``command`` is ``name`` or not known yet."""
    if command in (None, name):
        from rdanet_gan.training.arguments import add_config_arguments

        add_config_arguments(parser, name, **options)


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


def _add_inspect(commands) -> None:
    inspect = commands.add_parser("inspect", help="report what a dataset folder holds before training")
    inspect.add_argument("--data", required=True, help="dataset folder")
    inspect.add_argument("--layout", default="auto", choices=("auto", "busi", "paired", "udiat"), help="folder layout (default: detect)")
    inspect.add_argument("--json", help="also write the report as JSON to this file")


def _add_split(commands) -> None:
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
    split.add_argument("--test", type=int, help="test images (default: 57, the paper's)")
    split.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="k-fold cross-validation: the test images are one of K folds that partition the scans (with --fold)",
    )
    split.add_argument("--fold", type=int, metavar="I", help="with --folds: which fold is the test set, 1 to K")
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


def _add_train(commands, command: str | None) -> None:
    train = commands.add_parser("train", help="train one model into a resumable run directory")
    _add_training_options(train, "train", command)
    train.add_argument("--out", help="run directory (default: runs/MODEL)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="score a model on a split's test images; print the table")
    evaluate.add_argument("--model", required=True, help=f"segmenter: a .keras file, a packed model (.npz), an ensemble file (.json) or a LiteRT export (.tflite); {SHIPPED_BY_NAME}")
    evaluate.add_argument("--data", required=True, help="dataset folder")
    evaluate.add_argument("--split", required=True, help="split JSON file")
    evaluate.add_argument("--subset", default="test", choices=("train", "validation", "test"), help="which part of the split (default: test)")
    evaluate.add_argument("--native-resolution", action="store_true", help="score masks resized back to each scan's original size")
    _add_inference_options(evaluate)
    evaluate.add_argument("--normal", action="store_true", help="also count lesions predicted on the dataset's lesion-free scans (BUSI normal/) that the split does not list")
    evaluate.add_argument("--out", help="folder for per_image.csv and summary.json (and normal_scans.json)")
    evaluate.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _add_calibrate(commands) -> None:
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
        help="presence level: the lowest flagging at most fraction F of the lesion-free validation scans (default: 0.2)",
    )
    calibrate.add_argument("--batch-size", type=int, default=32, help="scans per prediction batch (default: 32)")
    calibrate.add_argument("--overwrite", action="store_true", help="replace the model's existing settings file and figure")


def _add_presence_head(commands) -> None:
    presence = commands.add_parser(
        "presence-head",
        help="fit an image-level lesion-presence head on an RDAU-Net's training scans; write the model with it",
        description="Fit a class-balanced logistic regression on the deepest encoder features of an RDAU-Net "
        "(or one on a pretrained encoder), pooled over each training scan of the split, to tell scans with a "
        "lesion from lesion-free ones, and write the model with that head: its mask is capped by the head's "
        "probability, so the presence level reports a lesion only where both the mask's peak and the head reach "
        "it. The split's training list must hold lesion-free scans (rdanet-gan split --from SPLIT --train-normal "
        "N). Then choose the new model's settings as usual: rdanet-gan calibrate --model OUT --data DATA --split "
        "SPLIT.",
    )
    presence.add_argument("--model", required=True, help="RDAU-Net segmenter: a .keras file or a packed model (.npz)")
    presence.add_argument("--data", required=True, help="dataset folder")
    presence.add_argument("--split", required=True, help="split JSON file whose training list to fit on")
    presence.add_argument("--out", required=True, help="the .keras file to write: the model with its presence head")
    presence.add_argument(
        "--l2",
        type=float,
        metavar="L",
        help="L2 penalty of the head's standardised weights against its mean class-balanced log loss "
        "(default: 1 / (0.1 x 584) = 0.0171, scikit-learn's C=0.1 on the shipped models' 584 training scans)",
    )
    presence.add_argument("--batch-size", type=int, default=32, help="scans per prediction batch (default: 32)")
    presence.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _add_segment(commands) -> None:
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
        help=f"segmenter: a .keras file, a packed model (.npz), an ensemble file (.json) or a LiteRT export (.tflite); {SHIPPED_BY_NAME} (default: the shipped ensemble of RDAU-Net on VGG16-HED and on MobileNetV2, in Keras; the lighter rdau_net_mobilenet_v2.tflite runs fastest)",
    )
    segment.add_argument(
        "--backend",
        choices=("litert", "keras"),
        help="run the shipped default model by its LiteRT export where one ships (the default model has none: it runs in Keras) or by TensorFlow",
    )
    segment.add_argument("--out", default="masks", help="output folder (default: ./masks)")
    segment.add_argument("--overlay", action="store_true", help="also write the scan with the lesion contour")
    segment.add_argument(
        "--csv",
        metavar="FILE",
        help="also write a table, one row per segmented scan: lesion reported, its share of the scan, the peak lesion "
        "probability (to apply another presence level afterwards) and the presence level used",
    )
    _add_inference_options(segment)
    segment.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _add_export(commands) -> None:
    from rdanet_gan.inference.litert import QUANTIZATIONS

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


def _add_ensemble(commands) -> None:
    ensemble = commands.add_parser(
        "ensemble",
        help="average several segmenters into one .keras model",
        description="Write one segmenter whose lesion probability is the sigmoid of the mean of its members' logits: "
        "networks trained with other seeds, widths or encoders, on the same input size. It is used like any model; "
        "choose its settings with rdanet-gan calibrate --model OUT.",
    )
    ensemble.add_argument("models", nargs="+", metavar="MODEL", help="member segmenters: .keras files or packed models (.npz)")
    ensemble.add_argument(
        "--presence",
        default="mean",
        choices=ENSEMBLE_PRESENCE,
        help="when a scan holds a lesion: where the mean map's peak reaches the presence level (mean, the default), "
        "or only where every member's own peak does too (all: a false lesion of one member is not carried over)",
    )
    ensemble.add_argument(
        "--out",
        required=True,
        help="the model file to write: .keras (self-contained, every member's weights copied) or .json (names the "
        "member files and their SHA-256; members .keras or .npz, kept where they are)",
    )
    ensemble.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _add_reproduce(commands, command: str | None) -> None:
    reproduce = commands.add_parser("reproduce", help="train and evaluate the four models; write Table 1 and Fig. 4")
    _add_training_options(reproduce, "reproduce", command, recipe="paper")  # Table 1 is the faithful recipe
    reproduce.add_argument("--out", default="reproduction", help="output folder; rerun to resume (default: ./reproduction)")
    reproduce.add_argument(
        "--models",
        default="rdau-net,rdanet-gan,unet,segnet",
        help="comma-separated rows of Table 1 to train and evaluate (default: all four; rdanet-gan needs rdau-net)",
    )
