"""Property-based fuzzing of scan decoding: any bytes under a scan's name decode or give one DataError.

Random bytes (some behind a real format signature), and valid PNG, JPEG, BMP,
TIFF and DICOM files cut short or with bytes overwritten, are written under
the suffix a user would give them; :func:`read_image`, :func:`read_mask` and
:func:`read_scan` must return a proper array or raise the package's one-line
:class:`DataError` naming the file, never another exception.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdanet_gan.data import read_image, read_mask
from rdanet_gan.errors import DataError
from rdanet_gan.inference import read_scan

# Modest and reproducible: the whole module runs in a few seconds; no example database is written.
FUZZ = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SIGNATURES = (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*", b"GIF89a")
# A small limit keeps a corrupted header that claims a large image from allocating much.
SMALL_LIMIT = {"RDANET_MAX_PIXELS": "1000000"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def encode(suffix: str, seed: int) -> bytes:
    """A valid little image in the format of ``suffix``: 1 to 24 pixels a side, gray or colour, 8- or 16-bit."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 25, 2))
    channels = int(rng.choice([1, 3, 4] if suffix in (".png", ".bmp", ".tif", ".tiff") else [1, 3]))
    deep = suffix in (".png", ".tif", ".tiff") and rng.random() < 0.5
    pixels = rng.integers(0, 65536 if deep else 256, (*shape, channels)).astype(np.uint16 if deep else np.uint8)
    ok, encoded = cv2.imencode(suffix, pixels[..., 0] if channels == 1 else pixels)
    assert ok
    return encoded.tobytes()


def dicom_bytes(seed: int) -> bytes:
    """A valid little single-frame DICOM (8- or 16-bit gray), written as ``tests/test_dicom.py`` writes them."""
    pytest.importorskip("pydicom")
    from dicom_files import write_dicom

    rng = np.random.default_rng(seed)
    rows, columns = (int(n) for n in rng.integers(1, 17, 2))
    bits = int(rng.choice([8, 16]))
    buffer = io.BytesIO()
    write_dicom(buffer, rng.integers(0, 2**bits, (rows, columns)), spacing=(0.1, 0.1), bits=bits)
    return buffer.getvalue()


def corrupt(data: bytes, edits: list[tuple[float, int]]) -> bytes:
    """``data`` with the byte at each fraction of its length replaced."""
    changed = bytearray(data)
    for where, value in edits:
        changed[min(int(where * len(changed)), len(changed) - 1)] = value
    return bytes(changed)


def decodes_or_refuses(folder: Path, name: str, data: bytes, reader: Callable[[Path], np.ndarray]) -> None:
    """Write ``data`` as ``folder/name`` and read it: a 2-D array, or a one-line DataError naming the file."""
    path = folder / name
    path.write_bytes(data)
    try:
        with mock.patch.dict(os.environ, SMALL_LIMIT), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # read_mask warns about grey levels; not what is tested here
            result = reader(path)
    except DataError as error:
        message = str(error)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        return
    assert result.ndim == 2 and result.size > 0
    if result.dtype != bool:
        assert result.dtype == np.float32 and 0.0 <= result.min() <= result.max() <= 1.0


@FUZZ
@given(signature=st.sampled_from(SIGNATURES), tail=st.binary(max_size=300), suffix=st.sampled_from(IMAGE_SUFFIXES))
def test_random_bytes_decode_or_give_one_data_error(folder, signature, tail, suffix):
    decodes_or_refuses(folder, f"random{suffix}", signature + tail, read_image)


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), suffix=st.sampled_from(IMAGE_SUFFIXES), data=st.data())
def test_truncated_images_decode_or_give_one_data_error(folder, seed, suffix, data):
    encoded = encode(suffix, seed)
    cut = data.draw(st.integers(0, len(encoded) - 1), label="bytes kept")
    for reader in (read_image, read_mask):
        decodes_or_refuses(folder, f"truncated{suffix}", encoded[:cut], reader)


@FUZZ
@given(
    seed=st.integers(0, 2**32 - 1),
    suffix=st.sampled_from(IMAGE_SUFFIXES),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_corrupted_images_decode_or_give_one_data_error(folder, seed, suffix, edits):
    encoded = corrupt(encode(suffix, seed), edits)
    for reader in (read_image, read_mask):
        decodes_or_refuses(folder, f"corrupted{suffix}", encoded, reader)


@FUZZ
@given(
    seed=st.integers(0, 2**32 - 1),
    keep=st.floats(0, 1),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
)
def test_damaged_dicom_decodes_or_gives_one_data_error(folder, seed, keep, edits):
    encoded = corrupt(dicom_bytes(seed), edits)
    decodes_or_refuses(folder, "damaged.dcm", encoded[: max(1, int(keep * len(encoded)))], read_scan)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_named_dicom_give_one_data_error(folder, data):
    decodes_or_refuses(folder, "random.dcm", b"\0" * 128 + b"DICM" + data, read_scan)
