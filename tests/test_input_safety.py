"""Bad input to ``segment``, ``inspect``, ``evaluate`` and the loaders: one test per kind of file.

The decoding of each file kind on its own is tested in ``test_data_records``;
here every kind goes through the command line, where a bad file must be
listed in one line while the good ones are still processed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import warnings
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import keras
import numpy as np
import pytest
from PIL import Image

from rdanet_gan.cli import main
from rdanet_gan.data import load_record, read_image, read_mask, scan_dataset
from rdanet_gan.data.records import Record
from rdanet_gan.errors import DataError, RdanetError

SHAPE = (20, 30)  # height, width of the ordinary test scans


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """Encode ``pixels`` in the format of the suffix of ``path`` (any path, non-ASCII included)."""
    ok, encoded = cv2.imencode(path.suffix, pixels)
    assert ok
    encoded.tofile(path)
    return path


def write_black_png(path: Path, height: int, width: int) -> Path:
    """A valid 8-bit gray PNG of any size, compressed row by row so that it never sits in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj()
    rows = bytes(1000 * (width + 1))  # 1000 rows: a filter byte and the pixels of each
    body = b"".join(compressor.compress(rows) for _ in range(height // 1000))
    body += compressor.compress(bytes((height % 1000) * (width + 1))) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def save_brightness_model(path: Path, size: int = 32) -> Path:
    """A one-pixel-kernel segmenter: lesion exactly where the scan is brighter than one half."""
    inputs = keras.Input((size, size, 1))
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs)
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([np.full((1, 1, 1, 1), 40.0, np.float32), np.array([-20.0], np.float32)])
    model.save(path)
    return path


def gray(value: int, shape: tuple[int, int] = SHAPE, dtype=np.uint8) -> np.ndarray:
    return np.full(shape, value, dtype)


def textured(value: int, shape: tuple[int, int] = SHAPE, dtype=np.uint8) -> np.ndarray:
    """``gray(value)`` with one pixel a level higher: a scan, where ``segment`` skips one whose pixels are all equal."""
    pixels = gray(value, shape, dtype)
    pixels.flat[-1] += 1
    return pixels


def truncated_png(path: Path) -> None:
    write_image(path, (np.random.default_rng(0).random(SHAPE) * 255).astype(np.uint8))
    path.write_bytes(path.read_bytes()[:-60])


def palette_png(path: Path, level: int) -> None:
    image = Image.fromarray(textured(0), mode="P")  # colours 0 and 1 of the palette: levels ``level`` and one above
    image.putpalette([level, level, level] + [level + 1] * 3 * 255)
    image.save(path)


# Each row: file name, how to make it, and what segment does with it: the value of
# every pixel of the written mask and its shape, or the problem it is skipped for.
SEGMENT_INPUTS = [
    ("zero bytes.png", lambda p: p.touch(), "empty file (0 bytes)"),
    ("truncated.png", truncated_png, "not a readable image"),
    ("text.png", lambda p: p.write_text("not a PNG at all"), "not a readable image"),
    ("sixteen-bit.png", lambda p: write_image(p, textured(60000, dtype=np.uint16)), (255, SHAPE)),
    ("rgba.png", lambda p: write_image(p, np.dstack([textured(230)] * 3 + [gray(0)])), (255, SHAPE)),  # alpha ignored
    ("palette.png", lambda p: palette_png(p, level=40), (0, SHAPE)),
    ("one pixel.png", lambda p: write_image(p, gray(200, shape=(1, 1))), "degenerate image (all pixels equal)"),
    ("one row.png", lambda p: write_image(p, textured(200, shape=(1, 2))), (255, (1, 2))),
    ("uniform.png", lambda p: write_image(p, gray(220)), "degenerate image (all pixels equal)"),
    ("huge.png", lambda p: write_black_png(p, 10000, 10000), "image is 10000x10000 (height x width), more than 50,000,000"),
    ("scan ü é (1).png", lambda p: write_image(p, textured(220)), (255, SHAPE)),
    ("loop.png", lambda p: os.symlink(p.name, p), "broken symbolic link or symlink loop"),
]
GOOD_INPUTS = [name for name, _, outcome in SEGMENT_INPUTS if not isinstance(outcome, str)]


def run_cli(argv: list[str]) -> SimpleNamespace:
    """``main(argv)`` with its exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return SimpleNamespace(code=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return save_brightness_model(tmp_path_factory.mktemp("model") / "brightness.keras")


@pytest.fixture(scope="module")
def segmented(tmp_path_factory, model_file) -> SimpleNamespace:
    """One ``segment`` run over a folder holding every kind of input."""
    scans = tmp_path_factory.mktemp("inputs") / "scans"
    scans.mkdir()
    for name, make, _ in SEGMENT_INPUTS:
        make(scans / name)
    out = scans.parent / "masks"
    result = run_cli(["segment", str(scans), "--model", str(model_file), "--out", str(out)])
    return SimpleNamespace(**vars(result), scans=scans, out=out)


@pytest.mark.parametrize("name, outcome", [(name, outcome) for name, _, outcome in SEGMENT_INPUTS])
def test_segment_handles_each_kind_of_input(segmented, name, outcome):
    mask_path = segmented.out / f"{Path(name).stem}_mask.png"
    lines = [line for line in segmented.stderr.splitlines() if f"{name}:" in line]
    if isinstance(outcome, str):
        assert not mask_path.exists()
        assert len(lines) == 1
        assert lines[0].startswith(f"rdanet-gan segment: skipped {segmented.scans / name}: {outcome}")
    else:
        value, shape = outcome
        mask = cv2.imdecode(np.fromfile(mask_path, np.uint8), cv2.IMREAD_UNCHANGED)
        assert mask.shape == shape
        assert np.all(mask == value)
        assert lines == []


def test_segment_of_good_and_bad_files_is_partial(segmented):
    assert segmented.code == 3
    assert sorted(p.name for p in segmented.out.iterdir()) == sorted(f"{Path(n).stem}_mask.png" for n in GOOD_INPUTS)
    header, *per_scan = segmented.stdout.splitlines()  # the inference settings, then one line per scan
    assert header.startswith("inference: ") and len(per_scan) == len(GOOD_INPUTS)
    bad = len(SEGMENT_INPUTS) - len(GOOD_INPUTS)
    assert len(segmented.stderr.splitlines()) == bad
    assert all(line.startswith("rdanet-gan segment: skipped ") for line in segmented.stderr.splitlines())


def test_segment_with_nothing_usable_exits_2(tmp_path, model_file):
    (tmp_path / "empty.png").touch()
    result = run_cli(["segment", str(tmp_path / "empty.png"), "--model", str(model_file), "--out", str(tmp_path / "m")])
    assert result.code == 2
    assert result.stderr.splitlines() == [f"rdanet-gan segment: error: {tmp_path / 'empty.png'}: empty file (0 bytes)"]
    write_image(tmp_path / "flat.png", gray(90))
    inputs = [str(tmp_path / "empty.png"), str(tmp_path / "flat.png")]
    result = run_cli(["segment", *inputs, "--model", str(model_file), "--out", str(tmp_path / "m")])
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"rdanet-gan segment: skipped {tmp_path / 'empty.png'}: empty file (0 bytes)",
        f"rdanet-gan segment: skipped {tmp_path / 'flat.png'}: degenerate image (all pixels equal)",
        "rdanet-gan segment: error: no input could be segmented",
    ]
    assert not (tmp_path / "m").exists()


def test_a_huge_image_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    path = write_black_png(tmp_path / "huge.png", 10000, 10000)
    assert path.stat().st_size < 1_000_000  # small on disk, 100 million pixels once decoded

    def refuse_decoding(*_):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(cv2, "imdecode", refuse_decoding)
    with pytest.raises(DataError, match=r"10000x10000 \(height x width\).*set RDANET_MAX_PIXELS") as caught:
        read_image(path)
    assert caught.value.path == str(path)


def test_a_jpeg_cannot_hide_its_size_behind_bytes_the_decoder_skips(tmp_path, monkeypatch):
    data = bytearray(cv2.imencode(".jpg", textured(128, shape=(16, 16)))[1].tobytes())
    frame = data.find(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", 9000, 9000)  # 81 million pixels declared
    after_app0 = 4 + struct.unpack_from(">H", data, 4)[0]
    path = tmp_path / "scan.jpg"
    path.write_bytes(data[:after_app0] + b"\x00\x11extraneous" + data[after_app0:])  # libjpeg skips these, then decodes

    def refuse_decoding(*_):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(cv2, "imdecode", refuse_decoding)
    with pytest.raises(DataError, match=r"image is 9000x9000 \(height x width\), more than 50,000,000 pixels"):
        read_image(path)


def test_content_of_another_format_is_not_decoded_whatever_its_suffix(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    Image.fromarray(textured(128)).save(buffer, format="GIF")
    path = tmp_path / "scan.png"
    path.write_bytes(buffer.getvalue())
    assert cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED) is not None  # OpenCV would read it

    def refuse_decoding(*_):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(cv2, "imdecode", refuse_decoding)
    with pytest.raises(DataError, match="not a readable image"):
        read_image(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_the_pixel_limit_reads_the_size_of_every_format(tmp_path, monkeypatch, suffix):
    path = write_image(tmp_path / f"scan{suffix}", gray(128))
    monkeypatch.setenv("RDANET_MAX_PIXELS", str(SHAPE[0] * SHAPE[1]))
    assert read_image(path).shape == SHAPE
    monkeypatch.setenv("RDANET_MAX_PIXELS", str(SHAPE[0] * SHAPE[1] - 1))
    with pytest.raises(DataError, match=r"image is 20x30 \(height x width\), more than 599 pixels"):
        read_image(path)


def test_a_file_too_large_for_any_allowed_image_is_not_read(tmp_path, monkeypatch):
    path = tmp_path / "scan.png"
    path.write_bytes(bytes(100))
    monkeypatch.setenv("RDANET_MAX_PIXELS", "10")  # at most 8 bytes a pixel: 80 bytes

    def refuse_reading(*_, **__):
        raise AssertionError("the file was read")

    monkeypatch.setattr(np, "fromfile", refuse_reading)
    with pytest.raises(DataError, match="file too large for an image of at most 10 pixels"):
        read_image(path)


@pytest.mark.parametrize("value", ["many", "0", "-5"])
def test_a_bad_pixel_limit_setting_is_one_clear_error(tmp_path, monkeypatch, value):
    monkeypatch.setenv("RDANET_MAX_PIXELS", value)
    with pytest.raises(RdanetError, match=f"RDANET_MAX_PIXELS='{value}': expected a positive whole number"):
        read_image(write_image(tmp_path / "scan.png", gray(128)))


def test_a_non_binary_mask_is_thresholded_above_zero_with_a_warning(tmp_path):
    pixels = np.array([[0, 1, 128], [255, 0, 3]], np.uint8)  # anti-aliased edge
    path = write_image(tmp_path / "soft mask.png", pixels)
    with pytest.warns(UserWarning, match=r"soft mask\.png: mask is not binary \(3 pixels between 0 and 255\)"):
        mask = read_mask(path)
    np.testing.assert_array_equal(mask, [[False, True, True], [True, False, True]])


@pytest.mark.parametrize("top", [1, 255])
def test_a_binary_mask_reads_without_a_warning(tmp_path, top):
    path = write_image(tmp_path / "mask.png", np.array([[0, top], [top, 0]], np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_mask(path), [[False, True], [True, False]])


def test_a_one_pixel_scan_loads_at_any_size(tmp_path):
    record = Record(
        image=write_image(tmp_path / "a.png", gray(51, shape=(1, 1))),
        masks=(write_image(tmp_path / "a_mask.png", gray(255, shape=(1, 1))),),
        label="",
        case_id="a.png",
    )
    image, mask = load_record(record, image_size=8)
    np.testing.assert_allclose(image, 0.2, atol=1e-6)
    np.testing.assert_array_equal(mask, 1.0)


def test_symlink_loops_in_a_dataset_folder_are_listed_not_followed(tmp_path):
    (tmp_path / "benign").mkdir()
    write_image(tmp_path / "benign" / "benign (1).png", gray(80))
    write_image(tmp_path / "benign" / "benign (1)_mask.png", gray(255))
    loop = tmp_path / "benign" / "benign (2).png"
    os.symlink(loop.name, loop)
    os.symlink("..", tmp_path / "benign" / "parent")  # a folder loop: never descended into
    scan = scan_dataset(tmp_path)
    assert [record.case_id for record in scan.records] == ["benign/benign (1).png"]
    assert [str(problem) for problem in scan.problems] == [f"{loop}: broken symbolic link or symlink loop"]


def test_inspect_lists_every_bad_record_warns_in_one_line_and_exits_3(tmp_path, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    soft_mask = gray(0)
    soft_mask[:, :10] = 128
    soft_mask[:, 10:15] = 64  # 100 grey pixels
    write_image(images / "good.png", gray(90))
    write_image(masks / "good.png", soft_mask)
    (images / "empty.png").touch()
    write_image(masks / "empty.png", gray(0))
    truncated_png(images / "cut.png")
    write_image(masks / "cut.png", gray(0))
    write_image(images / "wide.png", gray(90))
    write_image(masks / "wide.png", gray(0, shape=(20, 20)))

    code = main(["inspect", "--data", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 3
    assert "scans: 4" in captured.out
    assert "bad records: 3" in captured.out
    for problem in (
        f"{images / 'empty.png'}: empty file (0 bytes)",
        f"{images / 'cut.png'}: not a readable image",
        f"{masks / 'wide.png'}: mask is 20x20 but its image wide.png is 20x30",
    ):
        assert problem in captured.out
    warning = (
        f"rdanet-gan inspect: warning: {masks / 'good.png'}: mask is not binary "
        "(100 pixels between 0 and 128); every pixel above 0 counts as lesion"
    )
    assert captured.err.splitlines() == [warning]


def test_a_split_without_test_scans_trains_but_evaluating_its_test_set_names_the_split(tmp_path, model_file):
    data = tmp_path / "data"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(4):  # unrelated scans: no near-duplicates
        write_image(data / "images" / f"case{index}.png", rng.integers(0, 256, SHAPE, dtype=np.uint8))
        write_image(data / "masks" / f"case{index}.png", gray(255))
    split = tmp_path / "split.json"
    made = run_cli(["split", "--data", str(data), "--out", str(split), "--test", "0", "--validation", "1"])
    assert made.code == 0 and made.stdout == f"{split}: 3 train, 1 validation, 0 test\n"

    evaluate = ["evaluate", "--model", str(model_file), "--data", str(data), "--split", str(split)]
    refused = run_cli(evaluate)
    assert refused.code == 2
    assert refused.stderr.splitlines() == [
        f"rdanet-gan evaluate: error: {split}: lists no test scans to evaluate (choose another --subset)"
    ]
    assert run_cli(evaluate + ["--subset", "validation"]).code == 0


def test_a_split_naming_a_scan_the_dataset_lacks_is_one_line_naming_the_split(tmp_path, model_file):
    for folder in ("images", "masks"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        write_image(tmp_path / "data" / folder / "case0.png", gray(200))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "validation": [], "test": ["images/case0.png", "images/case9.png"]}))
    result = run_cli(["evaluate", "--model", str(model_file), "--data", str(tmp_path / "data"), "--split", str(split)])
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"rdanet-gan evaluate: error: {split}: names 'images/case9.png', which is not a scan of the dataset"
    ]


def test_evaluate_refuses_a_split_with_a_bad_scan_in_one_line(tmp_path, model_file, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    names = [f"case{index}" for index in range(4)]
    for name in names:
        write_image(tmp_path / "images" / f"{name}.png", gray(200))
        write_image(tmp_path / "masks" / f"{name}.png", gray(255))
    (tmp_path / "images" / "case3.png").write_bytes(b"")
    split = tmp_path / "split.json"
    case_ids = [f"images/{name}.png" for name in names]
    split.write_text(json.dumps({"train": case_ids[:2], "validation": case_ids[2:3], "test": case_ids[3:]}))

    code = main(["evaluate", "--model", str(model_file), "--data", str(tmp_path), "--split", str(split)])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"rdanet-gan evaluate: error: {tmp_path / 'images' / 'case3.png'}: empty file (0 bytes)"
    ]
