"""The training commands: ``train`` (one model into a resumable run folder) and ``reproduce`` (Table 1, Fig. 4).

Their options are TrainConfig's fields; only these commands import the training package, after the options
were checked (:func:`rdanet_gan.cli.checks.check_numbers`), so that a bad option costs no TensorFlow import.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from rdanet_gan.cli.checks import check_numbers, check_output_folder


def training_config(args, model: str, **settings):
    """The ``TrainConfig`` of a training command's flags, for ``model``."""
    from rdanet_gan.errors import RdanetError

    check_numbers(vars(args))  # before TensorFlow is imported
    from rdanet_gan.training.arguments import config_from_args

    try:
        return config_from_args(args, model=model, **settings)
    except ValueError as error:  # an option the settings refuse, e.g. an unknown augmentation stage
        raise RdanetError(str(error)) from None


def train_command(args) -> int:
    out = Path(args.out or Path("runs") / args.model)
    check_output_folder("--out", out)
    config = training_config(args, args.model)
    from rdanet_gan.training import train

    result = train(config, out, resume=args.resume)
    print(f"{result.run_dir}: finished; segmenter saved as {result.final_model}")
    return 0


def reproduce_command(args) -> int:
    from rdanet_gan.errors import RdanetError

    check_output_folder("--out", Path(args.out))
    check_numbers(vars(args))  # before TensorFlow is imported
    from rdanet_gan.reproduce import check_models, check_settings, reproduce

    models = [name.strip() for name in args.models.split(",") if name.strip()]
    try:
        check_models(models)
    except ValueError as error:
        raise RdanetError(f"--models: {error}") from None
    base = training_config(args, "rdau-net")
    try:
        check_settings(base, models)
    except ValueError as error:
        raise RdanetError(str(error)) from None
    command = shlex.join(["rdanet-gan", *args.argv])
    print(reproduce(base, Path(args.out), models=models, command=command))
    return 0
