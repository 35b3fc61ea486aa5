"""The training commands' options are made from ``TrainConfig``'s fields: one flag per field, its default,
its help text and its range, declared once (``rdanet_gan/training/config.py``)."""

from __future__ import annotations

import dataclasses

import pytest

from rdanet_gan.cli import build_parser, main
from rdanet_gan.training.arguments import RECIPE_FILLED, command_fields, config_from_args, flag, option_ranges
from rdanet_gan.training.config import TrainConfig

TRAIN_ONLY = {"model", "max_false_alarms", "init_weights", "schedule", "n_critic", "adversarial_weight"}
TRAIN_ONLY |= {"segmentation_weight", "gp_weight", "clip_value"}


def parsed(argv: list[str]):
    return build_parser().parse_args(argv)


def test_every_field_is_a_flag_of_train_and_the_shared_ones_of_reproduce():
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    train = vars(parsed(["train", "--model", "unet", "--data", "phantom"]))
    reproduce = vars(parsed(["reproduce", "--data", "phantom"]))
    assert fields <= set(train)
    assert fields & set(reproduce) == fields - TRAIN_ONLY
    assert {field.name for field in command_fields("reproduce")} == fields - TRAIN_ONLY


def test_flags_default_to_the_fields_defaults_except_what_the_recipe_fills_in():
    args = parsed(["train", "--model", "unet", "--data", "phantom"])
    for field in dataclasses.fields(TrainConfig):
        if field.name in RECIPE_FILLED:
            assert getattr(args, field.name) is None, field.name  # "the recipe's"
        elif field.name not in ("model", "data", "recipe"):
            spelled = "none" if field.default is None and None in (field.metadata["choices"] or ()) else field.default
            assert getattr(args, field.name) == spelled, field.name
    assert (args.recipe, parsed(["reproduce", "--data", "phantom"]).recipe) == ("default", "paper")
    config = config_from_args(args, model="unet")
    assert config == TrainConfig.from_recipe("default", model="unet", data="phantom")


def test_the_gan_weights_and_the_learning_rate_reach_the_settings():
    argv = ["train", "--model", "rdanet-gan", "--data", "phantom", "--segmentation-weight", "0.5", "--clip-value", "0.01"]
    config = config_from_args(parsed([*argv, "--learning-rate", "2e-4", "--encoder-weights", "none"]), model="rdanet-gan")
    assert (config.segmentation_weight, config.clip_value, config.learning_rate) == (0.5, 0.01, 2e-4)
    assert config.encoder_weights is None


def test_help_keeps_its_texts_and_shows_the_fields_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for line in (
        "--epochs EPOCHS training epochs (default: 50, the paper's)",
        "--batch-size BATCH_SIZE images per batch (default: 32)",
        "--bn-momentum BN_MOMENTUM BatchNorm momentum (default: 0.9; Keras's 0.99",
        "--encoder-lr-scale ENCODER_LR_SCALE with --encoder: its learning rate as a fraction of the decoder's (default: 1.0)",
        "--freeze-encoder-epochs N with --encoder: keep it frozen for the first N epochs (default: 0)",
        "--gp-weight GP_WEIGHT RDA-NET-GAN: gradient-penalty weight lambda (default: 10)",
        "--recipe {paper,default} named set of the options below (default: default;",
        "--encoder-weights {imagenet,none} with --encoder: its initial weights (default: imagenet;",
        "--clip-value C RDA-NET-GAN: clip the critic's weights to [-C, C]",
    ):
        assert line in text, line
    filled = [text.index(f"{flag(name)} ") for name in RECIPE_FILLED]
    assert text.index("--recipe {") < min(filled)  # "the options below"


def test_ranges_are_declared_with_the_fields():
    assert {name: option_ranges()[name] for name in ("epochs", "seed", "bn_momentum", "clip_value")} == {
        "epochs": "positive",
        "seed": "not negative",
        "bn_momentum": "fraction",
        "clip_value": "positive",
    }
