"""Exceptions whose message is one line a user can act on.

The command line prints ``str(error)`` and exits non-zero, so every message
names the file (or option) and the problem, never a TensorFlow traceback.
"""

from __future__ import annotations

import os


class RdanetError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(RdanetError):
    """A data file or folder cannot be used: ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ModelFileError(RdanetError):
    """A model file cannot be loaded safely: ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OutputExistsError(RdanetError):
    """An output would overwrite an existing file without ``overwrite=True``."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: already exists (use --overwrite to replace it)")


class MissingExtraError(RdanetError, ImportError):
    """An optional dependency is not installed: the message says which extra to install."""
