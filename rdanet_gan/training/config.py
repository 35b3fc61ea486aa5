"""``TrainConfig``: everything that defines a training run, its checks, and its command-line flags.

Each setting is declared once, here: its type, its default, and (in the field's
``metadata``, see :func:`option`) the help text of its flag, its choices, the
range the command line checks before any work, and which commands take it.
:mod:`rdanet_gan.training.arguments` turns the fields into the options of
``rdanet-gan train`` and ``rdanet-gan reproduce``, so a new field gets its flag.
This module imports nothing heavy: the command line builds its parser from it
without loading TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from rdanet_gan.options import (
    AUGMENTATION_PRESETS,
    ENCODER_WEIGHTS,
    ENCODERS,
    GAN_SCHEDULES,
    JIT_MODES,
    LR_SCHEDULES,
    MODELS,
    NORMS,
    PRECISIONS,
    RECIPES,
)

TRAINING_COMMANDS = ("train", "reproduce")
"""The commands that train, and so take ``TrainConfig``'s flags."""
GAN = "RDA-NET-GAN"


def option(
    default,
    help: str,
    *,
    choices: tuple | None = None,
    check: str | None = None,
    metavar: str | None = None,
    commands: tuple[str, ...] = TRAINING_COMMANDS,
    required: bool = False,
):
    """A ``TrainConfig`` field with its command-line flag.

    ``help`` is the flag's help text (``%(default)s`` shows the default);
    ``choices`` the values it takes (None among them is spelled ``none``);
    ``check`` the range the command line checks (a key of ``rdanet_gan.cli.checks.NUMBER_RANGES``:
    ``positive``, ``not negative``, ``fraction``); ``commands`` the commands that take the flag.
    """
    metadata = {"help": help, "choices": choices, "check": check, "metavar": metavar, "commands": commands, "required": required}
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as the run's ``config.json``.

    Defaults are the paper's (128x128, batch 32, Adam 1e-4, 50 epochs) except
    ``bn_momentum`` (0.9, not Keras's 0.99: see ``rdanet_gan.models``) and
    ``augmentation`` (the ``default`` recipe's ``standard``; the paper flips only);
    ``bn_reestimate`` replaces the BatchNorm moving statistics of ``best`` and
    ``final`` with those of their own weights on the training scans
    (:func:`~rdanet_gan.training.batchnorm.reestimate_batchnorm`).
    ``norm`` overrides the network's normalisation ("batch", "group",
    "instance", "none"; None keeps the builder's); ``lr_schedule="cosine"``
    decays the learning rate to zero after ``warmup_epochs`` of linear warm-up,
    ``"plateau"`` halves it when the validation Dice stalls (supervised models).
    ``augmentation`` is a preset or stage list of :meth:`Augmentation.parse`;
    ``deep_supervision`` adds side losses on the decoder (RDAU-Net, U-Net).
    ``presence_loss`` weighs an image-level term on each scan's peak probability,
    the signal of the presence rule (:func:`~rdanet_gan.training.losses.presence_bce`).
    ``recipe`` records the named recipe the run started from (see :meth:`from_recipe`).
    ``encoder`` puts a pretrained encoder under RDAU-Net's decoder (RDAU-Net and
    the GAN's generator; ``rdanet_gan.options.ENCODERS``) with
    ``encoder_weights`` (``"imagenet"`` or None); its learning rate is
    ``encoder_lr_scale`` × ``learning_rate``, and 0 (frozen) for the first
    ``freeze_encoder_epochs`` epochs (:mod:`rdanet_gan.training.optimizers`).
    ``max_false_alarms`` chooses the presence level of ``best`` and ``final``
    as an operating point: the lowest that flags at most this fraction of the
    lesion-free validation scans (None: 0.2 where the validation split has
    lesion-free scans, else no level; see
    :func:`~rdanet_gan.evaluation.calibration.choose_presence`).
    The fields from ``max_false_alarms`` on are flags of ``train`` only.
    """

    model: str = option("rdanet-gan", "what to train", choices=MODELS, commands=("train",), required=True)
    data: str = option(
        "phantom", "dataset folder (BUSI, images/+masks/, or UDIAT layout), or 'phantom' for generated scans", required=True
    )
    split: str | None = option(None, "split JSON file (default: a leakage-aware split made from --seed)")
    epochs: int = option(50, "training epochs (default: %(default)s, the paper's)", check="positive")
    batch_size: int = option(32, "images per batch (default: %(default)s)", check="positive")
    image_size: int = option(128, "square input size in pixels (default: %(default)s)", check="positive")
    base_width: int | None = option(
        None, "filters of the first level (default: the paper's for each network)", check="positive"
    )
    learning_rate: float = option(
        1e-4, "Adam's learning rate, of both players for the GAN (default: %(default)g, the paper's)", check="positive"
    )
    seed: int = option(0, "seed of the split, initial weights, shuffling and augmentation", check="not negative")
    precision: str = option(
        "auto", "numeric precision (auto: bf16 where the hardware has it, else float32)", choices=PRECISIONS
    )
    jit: str = option(
        "auto",
        "XLA compilation (auto: on, except mixed_bfloat16 on a CPU, which XLA cannot compile; off makes a run "
        "bit-for-bit reproducible)",
        choices=JIT_MODES,
    )
    bn_momentum: float = option(
        0.9,
        "BatchNorm momentum (default: %(default)s; Keras's 0.99 leaves stale statistics with few steps per epoch)",
        check="fraction",
    )
    bn_reestimate: bool = option(
        False,
        "after training, set the BatchNorm statistics of best.keras and final.keras to those of their own weights "
        "on the training scans",
    )
    norm: str | None = option(None, "normalisation of RDAU-Net / U-Net (default: the network's own)", choices=NORMS)
    lr_schedule: str = option(
        "constant",
        "learning-rate schedule: constant 1e-4 (the paper's), cosine decay, or halving on a validation plateau "
        "(default: the recipe's)",
        choices=LR_SCHEDULES,
    )
    warmup_epochs: int = option(
        0, "with --lr-schedule cosine: epochs of linear warm-up (default: the recipe's)", check="not negative"
    )
    augmentation: str = option(
        "standard",
        f"augmentation preset ({', '.join(AUGMENTATION_PRESETS)}) or stages joined by commas, e.g. flip,elastic "
        "(default: the recipe's)",
    )
    deep_supervision: bool = option(False, "RDAU-Net / U-Net: side losses on the decoder levels (default: the recipe's)")
    presence_loss: float = option(
        0.0,
        "weight of an image-level term of the segmentation loss: binary cross-entropy of each scan's peak probability "
        "against 'it has a lesion' (default: %(default)g, none; the paper has none)",
        check="not negative",
        metavar="W",
    )
    recipe: str | None = option(
        None,
        "named set of the options below (default: %(default)s; 'paper' is the faithful reproduction); explicit options win",
        choices=tuple(RECIPES),
    )
    encoder: str | None = option(
        None,
        "RDAU-Net / the GAN's generator: a pretrained encoder under RDAU-Net's decoder (default: none, RDAU-Net's own)",
        choices=ENCODERS,
    )
    encoder_weights: str | None = option(
        "imagenet",
        "with --encoder: its initial weights (default: %(default)s; none: random, for comparison)",
        choices=ENCODER_WEIGHTS,
    )
    encoder_lr_scale: float = option(
        1.0, "with --encoder: its learning rate as a fraction of the decoder's (default: %(default)s)", check="not negative"
    )
    freeze_encoder_epochs: int = option(
        0, "with --encoder: keep it frozen for the first N epochs (default: %(default)s)", check="not negative", metavar="N"
    )
    max_false_alarms: float | None = option(
        None,
        "choose the presence level as the lowest that flags at most fraction F of the lesion-free validation scans "
        "(from 'split --validation-normal N'; default: 0.2 when the validation split has lesion-free scans, else no level)",
        check="fraction",
        metavar="F",
        commands=("train",),
    )
    init_weights: str | None = option(
        None,
        "start the network (RDA-NET-GAN: its generator) from the weights of this .keras file of the same network and "
        "width, e.g. to fine-tune at a larger --image-size (default: the network's own initial weights)",
        commands=("train",),
        metavar="MODEL",
    )
    schedule: str = option(
        "epoch",
        f"{GAN}: sigma critic then sigma generator steps per epoch (Algorithm 1), or n-critic steps per generator step",
        choices=GAN_SCHEDULES,
        commands=("train",),
    )
    n_critic: int = option(
        5, f"{GAN}, interleaved schedule: critic steps per generator step", check="positive", commands=("train",)
    )
    adversarial_weight: float = option(
        0.01, f"{GAN}: weight of the adversarial term of the generator loss", check="not negative", commands=("train",)
    )
    segmentation_weight: float = option(
        1.0,
        f"{GAN}: weight of the segmentation term (Dice + BCE) of the generator loss (default: %(default)g)",
        check="not negative",
        commands=("train",),
    )
    gp_weight: float = option(
        10.0, f"{GAN}: gradient-penalty weight lambda (default: %(default)g)", check="not negative", commands=("train",)
    )
    clip_value: float | None = option(
        None,
        f"{GAN}: clip the critic's weights to [-C, C] after each step, the original WGAN's constraint, usually with "
        "--gp-weight 0 (default: no clipping)",
        check="positive",
        metavar="C",
        commands=("train",),
    )

    def __post_init__(self):
        from rdanet_gan.data import Augmentation  # TensorFlow: only once settings are made
        from rdanet_gan.models import check_input_size

        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lr_schedule == "plateau" and self.model == "rdanet-gan":
            raise ValueError("lr_schedule 'plateau' applies to the supervised models; use constant or cosine for the GAN")
        for network in (segmenter_name(self.model), *(("critic",) if self.model == "rdanet-gan" else ())):
            check_input_size(network, self.image_size)
        if self.norm and self.model == "segnet":
            raise ValueError("SegNet is defined with batch normalisation; norm applies to rdau-net and unet")
        if self.deep_supervision and self.model in ("rdanet-gan", "segnet"):
            raise ValueError("deep_supervision applies to rdau-net and unet (the GAN inherits it through init_weights)")
        self._check_encoder_options()
        self._check_init_weights()
        if self.recipe is not None and self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if self.max_false_alarms is not None and not 0.0 <= self.max_false_alarms < 1.0:
            raise ValueError(f"max_false_alarms must be at least 0 and below 1, got {self.max_false_alarms}")
        Augmentation.parse(self.augmentation)

    def _check_init_weights(self) -> None:
        """Refuse, before any scan is read, a starting file that cannot hold weights to start from."""
        if self.init_weights and Path(self.init_weights).suffix.lower() == ".tflite":
            raise ValueError(f"{self.init_weights}: a LiteRT export holds no trainable weights; start from its .keras file")

    def _check_encoder_options(self) -> None:
        """Refuse a pretrained encoder the model cannot take, and encoder settings out of range."""
        if self.encoder is not None:
            if segmenter_name(self.model) != "rdau-net":
                raise ValueError(f"encoder applies to rdau-net and rdanet-gan (their generator), not {self.model}")
            if self.encoder not in ENCODERS:
                raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
            if self.encoder == "vgg16_hed" and self.encoder_weights == "imagenet":
                from rdanet_gan.models.vgg16_hed import weights_path

                weights_path()  # a missing weights package is said before any scan is read
        if self.encoder_weights not in ENCODER_WEIGHTS:
            raise ValueError(f"encoder_weights must be 'imagenet' or None, got {self.encoder_weights!r}")
        if self.encoder_lr_scale < 0 or self.freeze_encoder_epochs < 0:
            raise ValueError("encoder_lr_scale and freeze_encoder_epochs must not be negative")

    @classmethod
    def from_recipe(cls, recipe: str = "default", **overrides) -> TrainConfig:
        """The settings of a named recipe (``RECIPES``), with ``overrides`` on top."""
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
        return cls(**{**RECIPES[recipe], **overrides, "recipe": recipe})

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """The settings of a run's ``config.json`` (older runs' names translated, unknown keys ignored)."""
        settings = json.loads(Path(path).read_text())["settings"]
        if "augment" in settings and "augmentation" not in settings:  # runs started before augmentation presets
            settings["augmentation"] = "standard" if settings["augment"] else "none"
        if "init_generator" in settings:  # runs started before init_weights applied to every network
            settings.setdefault("init_weights", settings["init_generator"])
        return cls(**{f.name: settings[f.name] for f in dataclasses.fields(cls) if f.name in settings})


def segmenter_name(model: str) -> str:
    """The segmentation network behind a model name (the GAN's generator is an RDAU-Net)."""
    return "rdau-net" if model == "rdanet-gan" else model
