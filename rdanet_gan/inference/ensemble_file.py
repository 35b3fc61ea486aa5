"""Ensemble files: a segmenter that names its member model files instead of copying their weights.

``rdanet-gan ensemble A B --out X.keras`` writes one self-contained archive, every member's weights inside.
``--out X.json`` writes a few lines instead: the members' paths (relative to the file), their SHA-256 and
the presence rule; loading it loads the members and builds the same ensemble
(:func:`rdanet_gan.models.build_ensemble`). The package's default model is one: the two shipped packed
networks, kept once each under the 64 MiB bound. A member changed after the file was written is refused,
so settings calibrated for an ensemble never silently apply to other networks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rdanet_gan.errors import ModelFileError
from rdanet_gan.fileio import write_json
from rdanet_gan.options import ENSEMBLE_PRESENCE

if TYPE_CHECKING:
    import keras

ENSEMBLE_SUFFIX = ".json"
"""The suffix of an ensemble file (a model file; its settings, ``NAME.inference.json``, sit beside it)."""
FORMAT = "rdanet-gan ensemble"
MEMBER_SUFFIXES = (".keras", ".npz")
"""What a member may be: a ``.keras`` archive or a packed model (not a LiteRT export, not another ensemble file)."""


def check_members(members: Sequence[str | os.PathLike]) -> None:
    """Refuse, naming it, a member that is not a ``.keras`` or ``.npz`` model file (before any is loaded)."""
    for member in map(Path, members):
        if member.suffix.lower() not in MEMBER_SUFFIXES:
            raise ModelFileError(member, f"a member of a {ENSEMBLE_SUFFIX} ensemble file must be a {' or '.join(MEMBER_SUFFIXES)} model file")


def write_ensemble_file(path: str | os.PathLike, members: Sequence[str | os.PathLike], presence: str = "mean", overwrite: bool = False) -> Path:
    """Write the ensemble file ``path`` naming ``members`` (paths relative to it where they can be) and their SHA-256."""
    from rdanet_gan.inference.model_files import sha256

    path = Path(path)
    if presence not in ENSEMBLE_PRESENCE:
        raise ValueError(f"presence must be one of {', '.join(ENSEMBLE_PRESENCE)}, got {presence!r}")
    check_members(members)
    entries = []
    for member in map(Path, members):
        try:
            name = Path(os.path.relpath(member.resolve(), path.parent.resolve())).as_posix()
        except ValueError:  # another drive (Windows): no relative path
            name = member.resolve().as_posix()
        entries.append({"file": name, "sha256": sha256(member)})
    write_json(path, {"format": FORMAT, "presence": presence, "members": entries}, overwrite=overwrite)
    return path


def load_ensemble_file(path: str | os.PathLike) -> keras.Model:
    """The ensemble an ensemble file describes, each member hash-checked; every failure one line naming a file."""
    from rdanet_gan.inference.model_files import load_segmenter, sha256
    from rdanet_gan.models import build_ensemble

    path = Path(path)
    record = _read(path)
    members = []
    for entry in record["members"]:
        member = path.parent / entry["file"]
        if not member.is_file():
            raise ModelFileError(path, f"member {entry['file']} is missing")
        if member.suffix.lower() not in MEMBER_SUFFIXES:
            raise ModelFileError(path, f"member {entry['file']} is not a {' or '.join(MEMBER_SUFFIXES)} model file")
        if sha256(member) != entry["sha256"]:
            raise ModelFileError(path, f"member {entry['file']} changed since the ensemble file was written (SHA-256 differs)")
        members.append(load_segmenter(member))
    try:
        return build_ensemble(members, name=path.stem, presence=record["presence"])
    except ValueError as error:
        raise ModelFileError(path, str(error)) from None


def _read(path: Path) -> dict:
    """The checked record of an ensemble file."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelFileError(path, f"not a readable ensemble file ({error})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ModelFileError(path, f"not an ensemble file (a {ENSEMBLE_SUFFIX} model names its members; write one with rdanet-gan ensemble)")
    members = record.get("members")
    well_formed = isinstance(members, list) and all(
        isinstance(entry, dict) and isinstance(entry.get("file"), str) and isinstance(entry.get("sha256"), str) for entry in members
    )
    if not well_formed or len(members) < 2 or record.get("presence") not in ENSEMBLE_PRESENCE:
        raise ModelFileError(path, "damaged ensemble file: it needs two or more members, each a file and its sha256, and a presence rule")
    return record
