"""Single-frame DICOM scans (the ``dicom`` extra): pixels and pixel spacing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rdanet_gan.data.decode import MAX_PIXELS_VARIABLE, max_pixels
from rdanet_gan.errors import DataError

LUMINANCE = np.array([0.299, 0.587, 0.114], np.float32)
"""RGB → gray weights (ITU-R BT.601), those of OpenCV's conversion for the other image formats."""


def read_dicom(path: str | Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    """A single-frame DICOM as float32 gray in [0, 1], and its pixel spacing in mm (row, column) if known.

    Pixels are scaled by the full range of their stored bits, as 8- and 16-bit
    PNGs are by 255 and 65535, so a scan reaches the network with the same
    intensities whichever format it came in; colour becomes gray by luminance.
    """
    try:
        import pydicom
    except ImportError:
        raise DataError(path, "reading DICOM needs the dicom extra: pip install 'rdanet_gan[dicom]'") from None
    try:
        dataset = pydicom.dcmread(path)
        rows, columns, frames = (int(dataset.get(tag) or 1) for tag in ("Rows", "Columns", "NumberOfFrames"))
    except Exception as error:  # noqa: BLE001 - pydicom raises many types for bad files
        raise DataError(path, f"not a readable DICOM file ({type(error).__name__})") from None
    limit = max_pixels()
    if rows * columns * frames > limit:  # checked from the header, before the pixels are decoded
        raise DataError(
            path,
            f"image is {rows}x{columns} (height x width) x {frames} frames, more than {limit:,} pixels; "
            f"set {MAX_PIXELS_VARIABLE} to allow it",
        )
    try:
        pixels = dataset.pixel_array.astype(np.float32)
    except Exception as error:  # noqa: BLE001 - pydicom raises many types for bad files
        raise DataError(path, f"not a readable DICOM file ({type(error).__name__})") from None
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        pixels = pixels[..., :3] @ LUMINANCE
    if pixels.ndim != 2:
        raise DataError(path, f"only single-frame DICOM is supported (pixel array of shape {pixels.shape})")
    try:
        bits = int(dataset.get("BitsStored") or 8)
        spacing = _pixel_spacing(dataset)
    except Exception as error:  # noqa: BLE001 - damaged header values raise many types
        raise DataError(path, f"unreadable DICOM header value ({type(error).__name__})") from None
    if not 1 <= bits <= 32:
        raise DataError(path, f"BitsStored is {bits}, not between 1 and 32")
    image = np.clip(pixels / float(2**bits - 1), 0.0, 1.0).astype(np.float32)
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1":  # 0 is white
        image = 1.0 - image
    return image, spacing


def _pixel_spacing(dataset) -> tuple[float, float] | None:
    """Pixel spacing in mm (row, column): the pixel-spacing tags, else the first ultrasound region; None if absent."""
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        if tag in dataset:
            return tuple(float(v) for v in dataset.get(tag))[:2]
    if "SequenceOfUltrasoundRegions" in dataset:
        region = dataset.SequenceOfUltrasoundRegions[0]
        if "PhysicalDeltaY" in region and "PhysicalDeltaX" in region:  # in cm
            return (10.0 * float(region.PhysicalDeltaY), 10.0 * float(region.PhysicalDeltaX))
    return None
