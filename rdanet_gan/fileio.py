"""Atomic output files: a killed process never leaves a half-written file.

The data is written to a hidden temporary file beside the target
(``.NAME.XXXX.tmp.SUFFIX``), then renamed onto it in one step. A failed write
removes the temporary file and leaves an existing target as it was; only a
hard kill (SIGKILL, power loss) can leave the hidden file behind, which the
dataset readers and ``segment`` ignore.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rdanet_gan.errors import DataError, OutputExistsError

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once, at import: os.umask can only be read by setting it


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file keeps the suffix of ``path`` so that writers that pick
    a format from the suffix (OpenCV, matplotlib, Keras) still work.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise OutputExistsError(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as error:
        raise DataError(path, f"cannot write ({error.strerror or error})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes the file private (0600); outputs get the usual mode
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, path)
        except OSError as error:
            raise DataError(path, f"cannot write ({error.strerror or error})") from None
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any, overwrite: bool = True) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically; NaN (undefined, which JSON lacks) as null."""
    write_text(path, json.dumps(nan_to_none(data), indent=2, sort_keys=False, allow_nan=False) + "\n", overwrite)


def write_report(folder: str | os.PathLike, name: str, report: Any, text: str) -> None:
    """A benchmark's results: ``report`` as ``folder/name.json`` and its Markdown ``text`` as ``folder/name.md``
    (the folder made if need be), and the text printed."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_json(Path(folder) / f"{name}.json", report)
    write_text(Path(folder) / f"{name}.md", text)
    print(text)


def portable(value: Any, data: str | os.PathLike | None = None) -> Any:
    """``value`` (a string, or nested dicts and lists of them) without this machine's absolute paths.

    Records meant for a repository (commands, settings) name the dataset folder ``data`` as
    ``$BUSI``, the current folder's contents by relative paths, and the home folder as ``~``.
    """
    if isinstance(value, dict):
        return {key: portable(item, data) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item, data) for item in value]
    if not isinstance(value, str):
        return value
    if data is not None and Path(data).is_dir():  # as given (when absolute) and resolved
        for spelling in {str(data), str(Path(data).resolve())}:
            if Path(spelling).is_absolute():
                value = value.replace(spelling, "$BUSI")
    value = value.replace(f"{Path.cwd()}{os.sep}", "")
    return value.replace(str(Path.home()), "~")


def nan_to_none(value: Any) -> Any:
    """``value`` with every float NaN (in nested dicts, lists and tuples) replaced by None."""
    if isinstance(value, dict):
        return {key: nan_to_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def real_path(path: str | os.PathLike) -> Path:
    """``path`` with every symbolic link resolved; unlike ``Path.resolve``, never raises on a symlink loop."""
    return Path(os.path.realpath(path))
