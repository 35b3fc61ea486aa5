"""The ``rdanet-gan`` command line: inspect, split, train, evaluate, calibrate, presence-head, segment, export,
ensemble and reproduce (:data:`COMMANDS`).

Every error the user can cause ends the command with one line on stderr and
exit code 2; ``segment`` exits 3 when some inputs were processed and others
were not ("partial"), and ``inspect`` exits 3 when it lists bad records.
Warnings are one line on stderr too. Outputs are written atomically and never
replace an existing file without ``--overwrite``, nor ever an input file.

The modules: :mod:`~rdanet_gan.cli.parser` (the commands' options, help and exit codes),
:mod:`~rdanet_gan.cli.checks` (the checks of options and outputs before any work) and the commands by group:
:mod:`~rdanet_gan.cli.data_commands`, :mod:`~rdanet_gan.cli.training_commands`,
:mod:`~rdanet_gan.cli.prediction_commands`. None imports TensorFlow until a command needs it.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

from rdanet_gan.cli.data_commands import inspect_command, split_command
from rdanet_gan.cli.parser import EXIT_ERROR, build_parser
from rdanet_gan.cli.prediction_commands import (
    calibrate_command,
    ensemble_command,
    evaluate_command,
    export_command,
    presence_head_command,
    segment_command,
)
from rdanet_gan.cli.training_commands import reproduce_command, train_command

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = {
    "inspect": inspect_command,
    "split": split_command,
    "train": train_command,
    "evaluate": evaluate_command,
    "calibrate": calibrate_command,
    "presence-head": presence_head_command,
    "segment": segment_command,
    "export": export_command,
    "ensemble": ensemble_command,
    "reproduce": reproduce_command,
}


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
