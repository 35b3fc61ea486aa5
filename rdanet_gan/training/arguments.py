"""``TrainConfig``'s fields as the command-line options of ``train`` and ``reproduce``.

One flag per field that a command takes (``--batch-size`` for ``batch_size``), made
from the field itself: its type (``int``, ``float``, ``str``; a ``bool`` is a switch),
its default, and its ``metadata`` (:func:`rdanet_gan.training.config.option`): help
text, choices (None spelled ``none``), metavar, whether it is required. The options a
recipe fills in (``RECIPES``) default to None, "the recipe's", and ``--recipe`` comes
before them. Nothing here loads TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from rdanet_gan.options import RECIPES
from rdanet_gan.training.config import TrainConfig

RECIPE_FILLED = tuple(dict.fromkeys(name for recipe in RECIPES.values() for name in recipe))
"""Settings a recipe fills in when the command line leaves them out."""


def flag(name: str) -> str:
    """The command-line flag of a ``TrainConfig`` field."""
    return "--" + name.replace("_", "-")


def command_fields(command: str) -> list[dataclasses.Field]:
    """The fields ``command`` takes a flag for, in the order ``--help`` lists them."""
    fields = [f for f in dataclasses.fields(TrainConfig) if command in f.metadata["commands"]]
    recipe = next((f for f in fields if f.name == "recipe"), None)
    if recipe is None:
        return fields
    fields.remove(recipe)
    first_filled = next(i for i, f in enumerate(fields) if f.name in RECIPE_FILLED)
    return [*fields[:first_filled], recipe, *fields[first_filled:]]


def add_config_arguments(parser: argparse.ArgumentParser, command: str, recipe: str = "default") -> None:
    """Add to ``parser`` the flags of ``TrainConfig`` that ``command`` takes; ``recipe``: ``--recipe``'s default."""
    types = typing.get_type_hints(TrainConfig)
    for field in command_fields(command):
        parser.add_argument(flag(field.name), **_argument(field, types[field.name], recipe))


def _argument(field: dataclasses.Field, annotation, recipe: str) -> dict:
    """``add_argument``'s keywords for ``field``."""
    meta = field.metadata
    kind = next(t for t in typing.get_args(annotation) or (annotation,) if t is not type(None))
    options = {"help": meta["help"]}
    if meta["choices"]:
        options["choices"] = tuple(_spelled(choice) for choice in meta["choices"])
    if meta["metavar"]:
        options["metavar"] = meta["metavar"]
    if meta["required"]:
        options["required"] = True
    elif field.name == "recipe":
        options["default"] = recipe
    elif field.name in RECIPE_FILLED:
        options["default"] = None  # the recipe's
    else:
        options["default"] = _spelled(field.default) if meta["choices"] and None in meta["choices"] else field.default
    if kind is bool:
        options["action"] = argparse.BooleanOptionalAction if field.name in RECIPE_FILLED else "store_true"
    else:
        options["type"] = kind
    return options


def _spelled(value):
    """A setting as the command line spells it: None is ``none``."""
    return "none" if value is None else value


def config_from_args(args: argparse.Namespace, **settings) -> TrainConfig:
    """The ``TrainConfig`` of parsed flags: the recipe's settings, the flags given on top, then ``settings``."""
    chosen = {}
    for field in dataclasses.fields(TrainConfig):
        if field.name in settings or not hasattr(args, field.name):
            continue
        value = getattr(args, field.name)
        if value is None and field.name in RECIPE_FILLED:
            continue
        if value == "none" and None in (field.metadata["choices"] or ()):
            value = None
        chosen[field.name] = value
    chosen.update(settings)
    return TrainConfig.from_recipe(chosen.pop("recipe", "default"), **chosen)


def option_ranges() -> dict[str, str]:
    """Field name → the range its flag is checked against before any work (``rdanet_gan.cli.checks.NUMBER_RANGES``)."""
    return {f.name: f.metadata["check"] for f in dataclasses.fields(TrainConfig) if f.metadata["check"]}
