"""Loading model files safely, and the shipped weights checked against their manifest."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import keras

from rdanet_gan.errors import ModelFileError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
DEFAULT_MODEL = "rdanet_gan.keras"


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_segmenter(path: str | Path) -> keras.Model:
    """Load a ``.keras`` model in safe mode (no Lambda layers, no unknown classes).

    Every failure is one line naming the file: missing, not a ``.keras``
    archive (truncated or corrupted), or refused by safe mode.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(path, "not a .keras model archive (truncated or corrupted?)")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - Keras raises many types; the user needs one line
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(path, f"cannot be loaded safely: {detail}") from None


def verify_shipped(path: str | Path, manifest: str | Path = MANIFEST) -> None:
    """Check a shipped model file against the SHA-256 recorded in ``weights/manifest.json``."""
    path = Path(path)
    try:
        entries = json.loads(Path(manifest).read_text())["files"]
    except (OSError, ValueError, KeyError) as error:
        raise ModelFileError(manifest, f"cannot read the weights manifest ({error})") from None
    expected = entries.get(path.name, {}).get("sha256")
    if expected is None:
        raise ModelFileError(path, "not listed in the weights manifest")
    if not path.is_file():
        raise ModelFileError(path, "shipped model file is missing")
    if sha256(path) != expected:
        raise ModelFileError(path, "SHA-256 differs from weights/manifest.json (modified or corrupted file)")


def load_shipped(name: str = DEFAULT_MODEL) -> keras.Model:
    """Load a model shipped in ``weights/`` after checking its hash."""
    path = WEIGHTS_DIR / name
    if not path.is_file():
        raise ModelFileError(path, "no shipped model of that name; train one or pass --model FILE")
    verify_shipped(path)
    return load_segmenter(path)
