"""Decode scans and masks into arrays the models take.

Images become 2-D float32 gray in [0, 1] whatever their file format (8/16-bit
gray, RGB, RGBA, palette; PNG, JPEG, BMP, TIFF); masks become the union of
their files, binarised at ``> 0`` (with a warning when a mask holds grey
levels). Files are read with ``np.fromfile`` and ``cv2.imdecode`` so that
non-ASCII paths work on every platform.

Memory stays bounded: an image of more than :func:`max_pixels` pixels
(``RDANET_MAX_PIXELS``, default 50 million) is refused from its header,
before any pixel is decoded, and so is a file too large to hold one. Only
PNG, JPEG, BMP and TIFF content whose header gives its size is decoded,
whatever the file's suffix: a file of another format (GIF, WebP…) or with a
damaged header is not a readable image, so no decoder runs without the limit.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from rdanet_gan.data.records import Record, warn_skipped
from rdanet_gan.errors import DataError, RdanetError

DEFAULT_MAX_PIXELS = 50_000_000  # about 7000 x 7000; BUSI scans are below 0.8 million
MAX_PIXELS_VARIABLE = "RDANET_MAX_PIXELS"
# Bytes per pixel of the largest uncompressed layout (16-bit RGBA), bounding a file's size.
_MAX_BYTES_PER_PIXEL = 8
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# A JPEG marker: 0xFF then a byte other than 0x00 (a stuffed 0xFF) and 0xFF (fill).
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xff]")

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class ArraySet:
    """Decoded scans: ``images`` and ``masks`` are ``[N, S, S, 1]`` float32.

    ``records[i]`` is the scan of ``images[i]`` and ``native_shapes[i]`` its
    size (height, width) before resizing, which predictions are resized back
    to; both are empty for generated phantoms, which name no file.
    """

    images: np.ndarray
    masks: np.ndarray
    records: list[Record]
    native_shapes: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.images)

    def __add__(self, other: ArraySet) -> ArraySet:
        """The scans of both sets, this one's first (e.g. validation scans with and without a lesion)."""
        return ArraySet(
            np.concatenate([self.images, other.images]),
            np.concatenate([self.masks, other.masks]),
            self.records + other.records,
            self.native_shapes + other.native_shapes,
        )


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` at its native size as 2-D float32 gray in [0, 1]."""
    pixels = _decode(path)
    if pixels.dtype == np.uint8:
        pixels = pixels.astype(np.float32) / 255.0
    elif pixels.dtype == np.uint16:
        pixels = pixels.astype(np.float32) / 65535.0
    else:
        raise DataError(path, f"unsupported pixel type {pixels.dtype} (expected 8- or 16-bit)")
    if pixels.ndim == 3:
        channels = pixels.shape[2]
        if channels in (3, 4):  # BGR or BGRA; the alpha channel is ignored
            pixels = cv2.cvtColor(pixels[..., :3], cv2.COLOR_BGR2GRAY)
        else:
            pixels = pixels[..., 0]
    return pixels


def read_mask(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> np.ndarray:
    """Decode one or several mask files into their union: a 2-D bool array (``> 0``)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ValueError("read_mask needs at least one mask file")
    first, *others = paths
    union = _read_binary(first)
    for path in others:
        mask = _read_binary(path)
        if mask.shape != union.shape:
            raise DataError(
                path, f"mask is {_size(mask)} but {Path(first).name} is {_size(union)} (height x width)"
            )
        union |= mask
    return union


def read_record(record: Record) -> tuple[np.ndarray, np.ndarray]:
    """A record's native-size image (float32) and mask (bool), checked to be the same size."""
    if not record.masks:
        raise DataError(record.image, "no mask file")
    image = read_image(record.image)
    mask = read_mask(record.masks)
    if mask.shape != image.shape:
        raise DataError(
            record.masks[0],
            f"mask is {_size(mask)} but its image {record.image.name} is {_size(image)} (height x width)",
        )
    return image, mask


def load_record(record: Record, image_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A record resized to ``[S, S, 1]`` float32: area-averaged image, binary mask.

    The mask is area-averaged too and thresholded at 0.5, so its boundary
    stays where the lesion covers half of an output pixel.
    """
    image, mask = read_record(record)
    return _resize(image, mask, image_size)


def load_arrays(
    records: Sequence[Record], image_size: int = 128, skip_bad: bool = False, verbose: bool = False
) -> ArraySet:
    """Decode and resize ``records`` (in parallel threads) into an :class:`ArraySet`.

    A bad record raises its :class:`DataError`, or with ``skip_bad`` is left
    out with a warning. ``verbose`` shows a progress bar.
    """
    images, masks, kept, native_shapes, problems = [], [], [], [], []
    progress = None
    if verbose:
        import keras  # for its progress bar only: decoding needs no TensorFlow

        progress = keras.utils.Progbar(len(records), unit_name="scan")
    load = partial(_load_or_error, image_size=image_size)
    with contextlib.closing(map_in_threads(load, records)) as loaded_records:
        for record, loaded in zip(records, loaded_records):
            if isinstance(loaded, DataError):
                if not skip_bad:
                    raise loaded
                problems.append(loaded)
            else:
                images.append(loaded[0])
                masks.append(loaded[1])
                native_shapes.append(loaded[2])
                kept.append(record)
            if progress is not None:
                progress.add(1)
    if problems:
        warn_skipped(problems)
    empty = np.zeros((0, image_size, image_size, 1), np.float32)
    return ArraySet(
        images=np.stack(images) if images else empty,
        masks=np.stack(masks) if masks else empty.copy(),
        records=kept,
        native_shapes=native_shapes,
    )


def max_pixels() -> int:
    """The most pixels an image may have: ``RDANET_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    value = os.environ.get(MAX_PIXELS_VARIABLE, "")
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise RdanetError(f"{MAX_PIXELS_VARIABLE}={value!r}: expected a positive whole number of pixels")
    return limit


def map_in_threads(function: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
    """``function(item)`` for each item, in order, computed by a pool of threads.

    OpenCV releases the GIL while decoding, so decoding threads use every
    core. Closing the iterator early cancels the work not yet started.
    """
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        yield from pool.map(function, items)
    finally:
        pool.shutdown(cancel_futures=True)


def _load_or_error(
    record: Record, image_size: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]] | DataError:
    """The resized image and mask and the native shape of ``record``, or its problem."""
    try:
        image, mask = read_record(record)
    except DataError as error:
        return error
    return *_resize(image, mask, image_size), image.shape


def _decode(path: str | os.PathLike) -> np.ndarray:
    """Raw pixels of an image file, as stored (any depth and channel count), within :func:`max_pixels`."""
    limit = max_pixels()
    try:
        if os.path.getsize(path) > _MAX_BYTES_PER_PIXEL * limit:
            raise DataError(path, f"file too large for an image of at most {limit:,} pixels ({MAX_PIXELS_VARIABLE})")
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DataError(path, f"cannot read ({error.strerror or error})") from None
    if data.size == 0:
        raise DataError(path, "empty file (0 bytes)")
    size = _header_size(data)
    if size is None:  # another format, or a header cut short or damaged: no decoder runs unchecked
        raise DataError(path, "not a readable image (corrupt, truncated or unsupported format)")
    if size[0] * size[1] > limit:
        raise DataError(
            path,
            f"image is {size[0]}x{size[1]} (height x width), more than {limit:,} pixels; "
            f"set {MAX_PIXELS_VARIABLE} to allow it",
        )
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise DataError(path, "not a readable image (corrupt, truncated or unsupported format)")
    return pixels


def _header_size(data: np.ndarray) -> tuple[int, int] | None:
    """(height, width) from a PNG, JPEG, BMP or TIFF header; None for other or damaged headers.

    Hand-written because OpenCV, which decodes, has no header-only call, and the size must be the one
    OpenCV's decoders will see: Pillow's parsers differ on damaged files (junk before a JPEG frame).
    """
    signature = data[:8].tobytes()
    try:
        if signature == b"\x89PNG\r\n\x1a\n":
            width, height = struct.unpack_from(">II", data, 16)
            return height, width
        if signature.startswith(b"BM"):
            if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2 header: 16-bit sizes
                width, height = struct.unpack_from("<HH", data, 18)
            else:
                width, height = struct.unpack_from("<ii", data, 18)
            return abs(height), abs(width)
        if signature.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if signature[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data, "<" if signature.startswith(b"II") else ">")
    except struct.error:  # a header cut short
        return None
    return None


def _jpeg_size(data: np.ndarray) -> tuple[int, int] | None:
    """(height, width) of the first JPEG frame, found by walking the marker segments as libjpeg does.

    Bytes between segments are skipped up to the next marker, as libjpeg
    skips them (with a warning) on its way to the frame header it decodes.
    """
    position = 2
    while found := _JPEG_MARKER.search(data, position):
        position, marker = found.start(), data[found.start() + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD9:  # markers without a length
            position += 2
        elif marker == 0xDA:  # scan data before any frame header: nothing libjpeg decodes
            return None
        elif marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack_from(">HH", data, position + 5)
            return height, width
        else:
            position += 2 + struct.unpack_from(">H", data, position + 2)[0]
    return None


def _tiff_size(data: np.ndarray, order: str) -> tuple[int, int] | None:
    """(height, width) from the first image directory of a TIFF file of byte ``order``."""
    directory = struct.unpack_from(f"{order}I", data, 4)[0]
    sizes = {}
    for index in range(struct.unpack_from(f"{order}H", data, directory)[0]):
        entry = directory + 2 + 12 * index
        tag, kind = struct.unpack_from(f"{order}HH", data, entry)
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            sizes[tag] = struct.unpack_from(f"{order}H" if kind == 3 else f"{order}I", data, entry + 8)[0]
    return (sizes[257], sizes[256]) if len(sizes) == 2 else None


def _read_binary(path: str | os.PathLike) -> np.ndarray:
    """A mask file as 2-D bool: any non-zero colour channel marks the lesion.

    A mask with grey levels (anti-aliased, or saved as JPEG) is thresholded
    the same way, with a warning: its lesion may come out larger than drawn.
    """
    pixels = _decode(path)
    levels = pixels[..., :3].max(axis=2) if pixels.ndim == 3 else pixels
    top = levels.max()
    grey = np.count_nonzero((levels > 0) & (levels < top))
    if grey:
        warnings.warn(
            f"{os.fspath(path)}: mask is not binary ({grey} pixels between 0 and {top}); "
            "every pixel above 0 counts as lesion",
            stacklevel=2,
        )
    return levels > 0


def _resize(image: np.ndarray, mask: np.ndarray, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    size = (image_size, image_size)
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    return np.clip(image, 0.0, 1.0)[..., None], mask.astype(np.float32)[..., None]


def _size(array: np.ndarray) -> str:
    return f"{array.shape[0]}x{array.shape[1]}"
