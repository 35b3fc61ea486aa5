"""Little single-frame DICOM files for the tests (needs pydicom, the dicom extra)."""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def write_dicom(path, pixels: np.ndarray, spacing: tuple[float, float] | None, bits: int = 16, photometric: str = "MONOCHROME2") -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"  # ultrasound image storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    dataset.Rows, dataset.Columns = pixels.shape[:2]
    colour = pixels.ndim == 3
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = (3, "RGB") if colour else (1, photometric)
    if colour:
        dataset.PlanarConfiguration = 0
    allocated = 8 if colour else 16
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = allocated, bits, bits - 1, 0
    if spacing:
        dataset.PixelSpacing = list(spacing)
    dataset.PixelData = pixels.astype(np.uint8 if colour else np.uint16).tobytes()
    dataset.save_as(path, enforce_file_format=True)
