"""Single-frame DICOM scans: pixels to [0, 1] gray and the pixel spacing in millimetres."""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from dicom_files import write_dicom

from rdanet_gan.data.dicom import read_dicom
from rdanet_gan.errors import DataError
from rdanet_gan.inference import read_scan


def test_dicom_pixels_are_scaled_to_unit_range_with_their_spacing(tmp_path):
    pixels = np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 100
    write_dicom(tmp_path / "scan.dcm", pixels, spacing=(0.1, 0.2))
    image, spacing = read_dicom(tmp_path / "scan.dcm")
    assert image.shape == (12, 16) and image.dtype == np.float32
    np.testing.assert_allclose(image, pixels / 65535, atol=1e-6)  # as a 16-bit PNG: by the full range
    assert spacing == pytest.approx((0.1, 0.2))
    np.testing.assert_array_equal(read_scan(tmp_path / "scan.dcm"), image)


def test_dicom_intensities_follow_stored_bits_photometry_and_luminance(tmp_path):
    import cv2

    pixels = np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 20
    write_dicom(tmp_path / "12bit.dcm", pixels, None, bits=12)
    np.testing.assert_allclose(read_dicom(tmp_path / "12bit.dcm")[0], pixels / 4095, atol=1e-6)
    write_dicom(tmp_path / "inverted.dcm", pixels, None, bits=12, photometric="MONOCHROME1")
    np.testing.assert_allclose(read_dicom(tmp_path / "inverted.dcm")[0], 1 - pixels / 4095, atol=1e-6)
    rgb = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    write_dicom(tmp_path / "colour.dcm", rgb, None, bits=8)
    cv2.imwrite(str(tmp_path / "colour.png"), rgb[..., ::-1])  # OpenCV writes BGR
    np.testing.assert_allclose(read_dicom(tmp_path / "colour.dcm")[0], read_scan(tmp_path / "colour.png"), atol=1 / 255)


def test_dicom_without_spacing_and_a_bad_dicom(tmp_path):
    write_dicom(tmp_path / "plain.dcm", np.ones((4, 4), np.uint16), spacing=None)
    assert read_dicom(tmp_path / "plain.dcm")[1] is None
    (tmp_path / "bad.dcm").write_bytes(b"not a dicom file")
    with pytest.raises(DataError, match="bad.dcm: not a readable DICOM file"):
        read_dicom(tmp_path / "bad.dcm")


def test_dicom_larger_than_the_pixel_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    write_dicom(tmp_path / "big.dcm", np.ones((40, 50), np.uint16), spacing=None)
    monkeypatch.setenv("RDANET_MAX_PIXELS", "1999")
    with pytest.raises(DataError, match="big.dcm: image is 40x50 .* more than 1,999 pixels; set RDANET_MAX_PIXELS"):
        read_dicom(tmp_path / "big.dcm")
    monkeypatch.setenv("RDANET_MAX_PIXELS", "2000")
    assert read_dicom(tmp_path / "big.dcm")[0].shape == (40, 50)
