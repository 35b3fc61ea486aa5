"""Dataset layouts, decoding of every supported file kind, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from rdanet_gan.data import (
    ArraySet,
    Record,
    detect_layout,
    find_records,
    format_inspection,
    inspect_dataset,
    load_arrays,
    load_record,
    make_phantoms,
    read_image,
    read_mask,
    scan_dataset,
    select,
)
from rdanet_gan.errors import DataError

SIZE = 16


def write(path: Path, pixels: np.ndarray) -> Path:
    """Write an image with OpenCV (through imencode, so that any path works)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(path.suffix, pixels)
    assert ok
    encoded.tofile(path)
    return path


def gray(value: int = 100, shape: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


def square_mask(top: int, left: int, side: int = 4, shape: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[top : top + side, left : left + side] = 255
    return mask


def make_busi(root: Path) -> Path:
    """A tiny BUSI folder: two benign (one with two mask files), one malignant, one normal."""
    write(root / "benign" / "benign (2).png", gray(50))
    write(root / "benign" / "benign (2)_mask.png", square_mask(0, 0))
    write(root / "benign" / "benign (10).png", gray(60))
    write(root / "benign" / "benign (10)_mask.png", square_mask(2, 2))
    write(root / "benign" / "benign (10)_mask_1.png", square_mask(10, 10))
    write(root / "malignant" / "malignant (1).png", gray(70))
    write(root / "malignant" / "malignant (1)_mask.png", square_mask(4, 4))
    write(root / "normal" / "normal (1).png", gray(80))
    write(root / "normal" / "normal (1)_mask.png", gray(0))
    return root


def test_busi_layout_lists_lesion_scans_in_natural_order(tmp_path):
    root = make_busi(tmp_path)
    assert detect_layout(root) == "busi"
    records = find_records(root)
    assert [record.case_id for record in records] == [
        "benign/benign (2).png",
        "benign/benign (10).png",
        "malignant/malignant (1).png",
    ]
    assert [record.label for record in records] == ["benign", "benign", "malignant"]
    assert records[1].masks == (
        root / "benign" / "benign (10)_mask.png",
        root / "benign" / "benign (10)_mask_1.png",
    )
    assert all(record.image.is_absolute() for record in records)


def test_busi_normal_scans_only_on_request(tmp_path):
    records = find_records(make_busi(tmp_path), include_normal=True)
    assert [record.label for record in records].count("normal") == 1
    normal = next(record for record in records if record.label == "normal")
    _, mask = load_record(normal, image_size=8)
    assert mask.sum() == 0


def test_mask_is_the_union_of_all_mask_files(tmp_path):
    record = find_records(make_busi(tmp_path))[1]
    mask = read_mask(record.masks)
    expected = (square_mask(2, 2) > 0) | (square_mask(10, 10) > 0)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, expected)


def test_paired_layout_matches_stems_with_or_without_a_mask_suffix(tmp_path):
    write(tmp_path / "images" / "case1.png", gray())
    write(tmp_path / "images" / "case2.jpg", gray())
    write(tmp_path / "masks" / "case1_mask.png", square_mask(1, 1))
    write(tmp_path / "masks" / "case2.png", square_mask(5, 5))
    assert detect_layout(tmp_path) == "paired"
    records = find_records(tmp_path)
    assert [(record.case_id, record.masks[0].name, record.label) for record in records] == [
        ("images/case1.png", "case1_mask.png", ""),
        ("images/case2.jpg", "case2.png", ""),
    ]


def test_udiat_layout_matches_equal_names(tmp_path):
    write(tmp_path / "original" / "000001.png", gray())
    write(tmp_path / "GT" / "000001.png", square_mask(3, 3))
    assert detect_layout(tmp_path) == "udiat"
    (record,) = find_records(tmp_path)
    assert record.case_id == "original/000001.png"
    assert record.masks == (tmp_path / "GT" / "000001.png",)


@pytest.mark.parametrize(
    "suffix, pixels, expected",
    [
        (".png", np.full((4, 5), 51, np.uint8), 0.2),
        (".png", np.full((4, 5), 13107, np.uint16), 0.2),  # 16-bit gray
        (".png", np.dstack([np.full((4, 5), 51, np.uint8)] * 3), 0.2),  # RGB with R = G = B
        (".png", np.dstack([np.full((4, 5), 51, np.uint8)] * 3 + [np.zeros((4, 5), np.uint8)]), 0.2),  # RGBA
        (".bmp", np.full((4, 5), 51, np.uint8), 0.2),
        (".tif", np.full((4, 5), 13107, np.uint16), 0.2),
        (".jpg", np.full((4, 5), 51, np.uint8), 0.2),
    ],
)
def test_read_image_gives_2d_float_gray_in_unit_range(tmp_path, suffix, pixels, expected):
    image = read_image(write(tmp_path / f"scan{suffix}", pixels))
    assert image.shape == (4, 5)
    assert image.dtype == np.float32
    np.testing.assert_allclose(image, expected, atol=2 / 255)


def test_read_image_weights_colour_channels_like_luminance(tmp_path):
    blue_green_red = np.zeros((3, 3, 3), np.uint8)
    blue_green_red[..., 2] = 255  # pure red
    np.testing.assert_allclose(read_image(write(tmp_path / "red.png", blue_green_red)), 0.299, atol=1e-3)


def test_read_image_palette_png_and_non_ascii_path(tmp_path):
    indices = np.array([[0, 1], [2, 3]], np.uint8)
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([value for level in (0, 85, 170, 255) for value in (level, level, level)])
    path = tmp_path / "échographie" / "sein ü.png"
    path.parent.mkdir()
    palette.save(path)
    np.testing.assert_allclose(read_image(path), [[0, 1 / 3], [2 / 3, 1]], atol=1e-3)


def test_load_record_resizes_with_area_averaging_and_thresholds_the_mask(tmp_path):
    checker = np.indices((32, 32)).sum(axis=0) % 2 * 255  # fine checkerboard: averages to one half
    left_half = np.zeros((32, 32), np.uint8)
    left_half[:, :16] = 255
    record = Record(
        image=write(tmp_path / "a.png", checker.astype(np.uint8)),
        masks=(write(tmp_path / "a_mask.png", left_half),),
        label="",
        case_id="a.png",
    )
    image, mask = load_record(record, image_size=8)
    assert image.shape == mask.shape == (8, 8, 1)
    assert image.dtype == mask.dtype == np.float32
    np.testing.assert_allclose(image, 0.5, atol=1e-6)
    np.testing.assert_array_equal(mask[..., 0], np.repeat([[1] * 4 + [0] * 4], 8, axis=0))


def test_load_arrays_stacks_records_and_keeps_native_shapes(tmp_path):
    records = find_records(make_busi(tmp_path))
    arrays = load_arrays(records, image_size=8)
    assert isinstance(arrays, ArraySet)
    assert arrays.images.shape == arrays.masks.shape == (3, 8, 8, 1)
    assert arrays.records == records
    assert arrays.native_shapes == [(SIZE, SIZE)] * 3
    assert set(np.unique(arrays.masks)) <= {0.0, 1.0}
    np.testing.assert_allclose(arrays.images[:, 0, 0, 0], [50 / 255, 60 / 255, 70 / 255], atol=1e-6)


def test_select_follows_the_split_order_and_names_unknown_entries(tmp_path):
    records = find_records(make_busi(tmp_path))
    chosen = select(records, ["malignant/malignant (1).png", "benign/benign (2).png"])
    assert [record.label for record in chosen] == ["malignant", "benign"]
    with pytest.raises(DataError, match=r"benign/benign \(99\)\.png"):
        select(records, ["benign/benign (99).png"])
    with pytest.raises(DataError, match=r"names 'benign/benign \(99\)\.png', which is not a scan") as caught:
        select(records, ["benign/benign (99).png"], split_file=tmp_path / "split.json")
    assert caught.value.path == str(tmp_path / "split.json")


# Bad input: every problem is a DataError whose message names the file.


def test_empty_directory(tmp_path):
    with pytest.raises(DataError, match="empty directory") as caught:
        find_records(tmp_path)
    assert caught.value.path == str(tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        find_records(tmp_path / "absent")


def test_unknown_layout(tmp_path):
    (tmp_path / "scans").mkdir()
    with pytest.raises(DataError, match="unknown dataset layout") as caught:
        detect_layout(tmp_path)
    assert caught.value.path == str(tmp_path)
    assert "scans/" in str(caught.value)


def test_image_without_mask(tmp_path):
    root = make_busi(tmp_path)
    lonely = write(root / "benign" / "benign (3).png", gray())
    with pytest.raises(DataError, match="no mask file") as caught:
        find_records(root)
    assert caught.value.path == str(lonely)


def test_mask_without_image(tmp_path):
    root = make_busi(tmp_path)
    orphan = write(root / "malignant" / "malignant (7)_mask.png", square_mask(0, 0))
    with pytest.raises(DataError, match="mask without an image") as caught:
        find_records(root)
    assert caught.value.path == str(orphan)


def test_paired_mask_without_image(tmp_path):
    write(tmp_path / "images" / "a.png", gray())
    write(tmp_path / "masks" / "a.png", gray())
    orphan = write(tmp_path / "masks" / "b_mask.png", gray())
    scan = scan_dataset(tmp_path)
    assert [problem.path for problem in scan.problems] == [str(orphan)]
    assert len(scan.records) == 1


def test_zero_byte_image(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(DataError, match=r"empty file \(0 bytes\)") as caught:
        read_image(path)
    assert caught.value.path == str(path)


def test_truncated_image(tmp_path):
    path = write(tmp_path / "cut.png", (np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="not a readable image") as caught:
        read_image(path)
    assert caught.value.path == str(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is text, not a PNG")
    with pytest.raises(DataError, match="not a readable image") as caught:
        read_image(path)
    assert caught.value.path == str(path)


def test_mask_size_differs_from_image(tmp_path):
    record = Record(
        image=write(tmp_path / "a.png", gray(shape=(16, 16))),
        masks=(write(tmp_path / "a_mask.png", gray(shape=(16, 12))),),
        label="",
        case_id="a.png",
    )
    with pytest.raises(DataError, match=r"mask is 16x12 but its image a\.png is 16x16") as caught:
        load_record(record)
    assert caught.value.path == str(record.masks[0])


def test_mask_files_of_one_scan_disagree_in_size(tmp_path):
    first = write(tmp_path / "a_mask.png", square_mask(0, 0))
    second = write(tmp_path / "a_mask_1.png", gray(shape=(8, 8)))
    with pytest.raises(DataError, match="mask is 8x8 but a_mask.png is 16x16") as caught:
        read_mask([first, second])
    assert caught.value.path == str(second)


def test_skip_bad_warns_in_one_line_and_keeps_the_good_records(tmp_path):
    root = make_busi(tmp_path)
    write(root / "benign" / "benign (3).png", gray())  # no mask
    with pytest.warns(UserWarning) as caught:
        records = find_records(root, skip_bad=True)
    problem = "no mask file (expected 'benign (3)_mask.png')"
    assert [str(warning.message) for warning in caught] == [
        f"skipped 1 bad record in {root / 'benign'}: benign (3).png ({problem}) (rdanet-gan inspect lists them all)"
    ]
    assert len(records) == 3

    (root / "benign" / "benign (2).png").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        load_arrays(records, image_size=8)
    with pytest.warns(UserWarning, match=r"^skipped 1 bad record in .*benign: benign \(2\)\.png \(empty file"):
        arrays = load_arrays(records, image_size=8, skip_bad=True)
    assert [record.case_id for record in arrays.records] == [records[1].case_id, records[2].case_id]
    assert len(arrays.images) == 2


def test_many_skipped_records_are_counted_in_one_line_naming_the_first_few(tmp_path):
    root = make_busi(tmp_path)
    for index in range(3, 7):
        write(root / "benign" / f"benign ({index}).png", gray())  # no mask
    write(root / "malignant" / "malignant (2)_mask.png", gray(0))  # no image
    with pytest.warns(UserWarning) as caught:
        find_records(root, skip_bad=True)
    (message,) = [str(warning.message) for warning in caught]
    assert "\n" not in message
    assert message.startswith(f"skipped 5 bad records in {root}: benign/benign (3).png (no mask file")
    assert message.endswith("; and 2 more (rdanet-gan inspect lists them all)")
    assert message.count(".png (") == 3


def test_inspection_reports_counts_masks_duplicates_sizes_and_problems(tmp_path):
    root = make_busi(tmp_path)
    phantoms, _ = make_phantoms(2, image_size=64, seed=0)
    scan = (phantoms[0, ..., 0] * 255).astype(np.uint8)
    write(root / "malignant" / "malignant (2).png", scan)
    write(root / "malignant" / "malignant (2)_mask.png", square_mask(0, 0, side=32, shape=(64, 64)))
    write(root / "benign" / "benign (3).png", scan[1:, 1:])  # the same scan, cropped, filed as benign
    write(root / "benign" / "benign (3)_mask.png", gray(0, shape=(63, 63)))
    (root / "benign" / "benign (2).png").write_bytes(b"")  # unreadable

    report = inspect_dataset(root)
    assert report["layout"] == "busi"
    assert report["counts"] == {"benign": 3, "malignant": 2, "normal": 1}
    assert report["multi_mask_images"] == {"count": 1, "examples": ["benign/benign (10).png"]}
    assert report["near_duplicates"]["groups"] == 1
    assert report["near_duplicates"]["mixed_labels"] == 1
    assert report["near_duplicates"]["examples"] == [["benign/benign (3).png", "malignant/malignant (2).png"]]
    assert report["bad_records"] == [f"{root / 'benign' / 'benign (2).png'}: empty file (0 bytes)"]
    assert report["image_size"] == {"height": [SIZE, 64], "width": [SIZE, 64]}
    fraction = report["lesion_fraction"]
    assert fraction["min"] == pytest.approx(16 / SIZE**2)  # a 4x4 square
    assert fraction["max"] == pytest.approx(0.25)  # a 32x32 square in 64x64
    assert fraction["empty_masks"] == 2  # the normal scan and the cropped copy
    json.dumps(report)  # ready for --json

    text = format_inspection(report)
    assert "scans: 6 (3 benign, 2 malignant, 1 normal)" in text
    assert "benign/benign (3).png ~ malignant/malignant (2).png" in text
    assert "benign (2).png: empty file (0 bytes)" in text
