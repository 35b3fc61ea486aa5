"""Bad input on the command line: a table of command lines, each with the files it needs.

Every case runs ``rdanet-gan`` in a fresh folder and must end with the exit
status given (2: refused, 3: partial), one line on stderr (no traceback),
and every file that was there before left as it was; a refused command
creates nothing. No case loads a model: argument errors are found before
TensorFlow is imported, and ``segment`` refuses unreadable scans and outputs it
may not write before it loads one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from rdanet_gan.cli import main
from rdanet_gan.inference.scans import SEGMENT_SUFFIXES

SUPPORTED = ", ".join(SEGMENT_SUFFIXES)
UNSUPPORTED = f"segment reads {SUPPORTED} (convert it to PNG)"
NOT_READABLE = "not a readable image (corrupt, truncated or unsupported format)"
TOO_MANY_PIXELS = "(height x width), more than 50,000,000 pixels; set RDANET_MAX_PIXELS to allow it"
DEGENERATE = "degenerate image (all pixels equal)"


def png(pixels: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", pixels)
    assert ok
    return encoded.tobytes()


def textured(shape: tuple[int, int] = (20, 30)) -> bytes:
    return png(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))


def gif() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8)).save(buffer, format="GIF")
    return buffer.getvalue()


def png_header(height: int, width: int) -> bytes:
    """A PNG signature and header declaring ``height`` x ``width`` pixels, and no pixels."""
    header = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + header + struct.pack(">I", zlib.crc32(header))


def jpeg_hiding_its_size(height: int, width: int) -> bytes:
    """A little JPEG whose frame header declares ``height`` x ``width``, behind bytes libjpeg skips."""
    data = bytearray(
        cv2.imencode(".jpg", np.random.default_rng(2).integers(0, 256, (16, 16), dtype=np.uint8))[1].tobytes()
    )
    frame = data.find(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    after_app0 = 4 + struct.unpack_from(">H", data, 4)[0]
    return bytes(data[:after_app0] + b"\x00\x11extraneous" + data[after_app0:])


# What a case's files are made of: bytes, or a function making the file (a folder for a name ending in /).
FILES: dict[str, bytes | Callable[[Path], object]] = {
    "good.png": textured(),
    "other.png": textured((12, 16)),
    "const.png": png(np.full((20, 30), 128, np.uint8)),
    "black.png": png(np.zeros((20, 30), np.uint8)),
    "one.png": png(np.full((1, 1), 200, np.uint8)),
    "empty.png": b"",
    "text.png": b"not a PNG at all",
    "cut.png": textured()[:-60],
    "scan.gif": gif(),
    "gif-inside.png": gif(),
    "scan.webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    "notes.txt": b"a note",
    "noname": textured(),
    "huge.png": png_header(10000, 10000),
    "sneaky.jpg": jpeg_hiding_its_size(9000, 9000),
    "loop.png": lambda path: os.symlink(path.name, path),
    "taken": b"a file where a folder is expected",
    "blank/": lambda path: path.mkdir(),
    "folder.tflite/": lambda path: path.mkdir(),
    "scans/good.png": textured(),
    "scans/other.png": textured((12, 16)),
    "mixed/good.png": textured(),
    "mixed/scan.gif": gif(),
    "mixed/notes.txt": b"ignored in a folder",
    "mixed/const.png": png(np.full((20, 30), 7, np.uint8)),
    "only-masks/a_mask.png": textured(),
    "only-masks/a_overlay.png": textured(),
    "only-text/notes.txt": b"a note",
    "only-gifs/scan.gif": gif(),
    "masks/good_mask.png": b"an earlier mask",
    "split.json": json.dumps({"train": [], "validation": [], "test": []}).encode(),
    "model.keras": b"never loaded: the command stops before",
}


@dataclass(frozen=True)
class Case:
    """A command line (after ``rdanet-gan``), the files it needs, and what it must end with.

    ``message`` is the stderr line after ``rdanet-gan COMMAND: error: `` (or
    ``skipped `` when ``code`` is 3), ``{here}`` standing for the folder the
    command runs in; for the parser's refusals (not ``exact``) a part of the line.
    """

    argv: str
    files: tuple[str, ...] = ()
    code: int = 2
    message: str = ""
    exact: bool = True


def argparse_case(argv: str, message: str, files: tuple[str, ...] = ()) -> Case:
    return Case(argv, files, 2, message, exact=False)


CASES = [
    # Options the parser refuses: one line naming the option, and where to read about it.
    argparse_case("", "the following arguments are required: COMMAND"),
    argparse_case("frobnicate", "argument COMMAND: invalid choice: 'frobnicate'"),
    argparse_case("segment", "the following arguments are required: INPUT"),
    argparse_case("segment good.png --threshold abc", "argument --threshold: invalid float value: 'abc'"),
    argparse_case("segment good.png --presence 1/2", "argument --presence: invalid float value: '1/2'"),
    argparse_case("segment good.png --backend gpu", "argument --backend: invalid choice: 'gpu'"),
    argparse_case("segment good.png --bogus", "unrecognized arguments: --bogus"),
    argparse_case("train --model gan --data phantom", "argument --model: invalid choice: 'gan'"),
    argparse_case("train --model unet", "the following arguments are required: --data"),
    argparse_case("train --model unet --data phantom --epochs 1.5", "argument --epochs: invalid int value: '1.5'"),
    argparse_case("evaluate --model model.keras", "the following arguments are required: --data, --split"),
    argparse_case(
        "calibrate --model m --data d --split s --batch-size x", "argument --batch-size: invalid int value: 'x'"
    ),
    argparse_case("export", "the following arguments are required: MODEL"),
    argparse_case("export model.keras --quantization int4", "argument --quantization: invalid choice: 'int4'"),
    argparse_case("presence-head --model m --data d --split s", "the following arguments are required: --out"),
    argparse_case(
        "presence-head --model m --data d --split s --out o.keras --l2 abc", "argument --l2: invalid float value: 'abc'"
    ),
    argparse_case("split --data d --out s.json --test many", "argument --test: invalid int value: 'many'"),
    argparse_case("inspect --data d --layout weird", "argument --layout: invalid choice: 'weird'"),
    # Numbers out of range: the option and the value.
    Case("segment good.png --threshold 1.5", ("good.png",), 2, "--threshold 1.5: must be between 0 and 1"),
    Case("segment good.png --threshold 0", ("good.png",), 2, "--threshold 0.0: must be between 0 and 1"),
    Case("segment good.png --threshold nan", ("good.png",), 2, "--threshold nan: must be between 0 and 1"),
    Case("segment good.png --presence 1", ("good.png",), 2, "--presence 1.0: must be at least 0 and below 1"),
    Case("segment good.png --presence -0.1", ("good.png",), 2, "--presence -0.1: must be at least 0 and below 1"),
    Case(
        "evaluate --model model.keras --data d --split split.json --threshold 2",
        ("model.keras", "split.json"),
        2,
        "--threshold 2.0: must be between 0 and 1",
    ),
    Case(
        "evaluate --model model.keras --data d --split split.json --presence inf",
        ("model.keras", "split.json"),
        2,
        "--presence inf: must be at least 0 and below 1",
    ),
    Case(
        "calibrate --model model.keras --data d --split split.json --batch-size 0",
        ("model.keras", "split.json"),
        2,
        "--batch-size 0: must be positive",
    ),
    Case(
        "calibrate --model model.keras --data d --split split.json --max-false-alarms 1.5",
        ("model.keras",),
        2,
        "--max-false-alarms 1.5: must be at least 0 and below 1",
    ),
    Case(
        "calibrate --model model.keras --data d --split split.json --max-false-alarms -0.1",
        ("model.keras",),
        2,
        "--max-false-alarms -0.1: must be at least 0 and below 1",
    ),
    Case(
        "presence-head --model model.keras --data d --split split.json --out head.keras --l2 0",
        ("model.keras", "split.json"),
        2,
        "--l2 0.0: must be positive",
    ),
    Case(
        "presence-head --model model.keras --data d --split split.json --out head.keras --batch-size 0",
        ("model.keras", "split.json"),
        2,
        "--batch-size 0: must be positive",
    ),
    Case("train --model rdau-net --data phantom --epochs 0 --out run", (), 2, "--epochs 0: must be positive"),
    Case("train --model rdau-net --data phantom --batch-size -2 --out run", (), 2, "--batch-size -2: must be positive"),
    Case("train --model rdau-net --data phantom --image-size 0 --out run", (), 2, "--image-size 0: must be positive"),
    Case("train --model rdau-net --data phantom --base-width 0 --out run", (), 2, "--base-width 0: must be positive"),
    Case(
        "train --model rdau-net --data phantom --freeze-encoder-epochs -1 --out run",
        (),
        2,
        "--freeze-encoder-epochs -1: must not be negative",
    ),
    Case(
        "train --model rdau-net --data phantom --encoder-lr-scale -0.5 --out run",
        (),
        2,
        "--encoder-lr-scale -0.5: must not be negative",
    ),
    Case("train --model rdau-net --data phantom --seed -1 --out run", (), 2, "--seed -1: must not be negative"),
    Case(
        "train --model rdau-net --data phantom --warmup-epochs -3 --out run",
        (),
        2,
        "--warmup-epochs -3: must not be negative",
    ),
    Case(
        "train --model rdau-net --data phantom --bn-momentum 1 --out run",
        (),
        2,
        "--bn-momentum 1.0: must be at least 0 and below 1",
    ),
    Case(
        "train --model rdau-net --data phantom --max-false-alarms 1.5 --out run",
        (),
        2,
        "--max-false-alarms 1.5: must be at least 0 and below 1",
    ),
    Case("train --model rdanet-gan --data phantom --n-critic 0 --out run", (), 2, "--n-critic 0: must be positive"),
    Case(
        "train --model rdanet-gan --data phantom --gp-weight -1 --out run",
        (),
        2,
        "--gp-weight -1.0: must not be negative",
    ),
    Case(
        "train --model rdanet-gan --data phantom --adversarial-weight nan --out run",
        (),
        2,
        "--adversarial-weight nan: must not be negative",
    ),
    Case(
        "train --model rdanet-gan --data phantom --segmentation-weight -1 --out run",
        (),
        2,
        "--segmentation-weight -1.0: must not be negative",
    ),
    Case("train --model rdanet-gan --data phantom --clip-value 0 --out run", (), 2, "--clip-value 0.0: must be positive"),
    Case("train --model unet --data phantom --learning-rate 0 --out run", (), 2, "--learning-rate 0.0: must be positive"),
    Case("reproduce --data phantom --epochs 0 --out out", (), 2, "--epochs 0: must be positive"),
    Case("split --data d --out s.json --seed -1", (), 2, "--seed -1: must not be negative"),
    Case("split --data d --out s.json --test -1", (), 2, "--test -1: must not be negative"),
    Case("split --data d --out s.json --validation -1", (), 2, "--validation -1: must not be negative"),
    Case("split --data d --out s.json --train-normal -1", (), 2, "--train-normal -1: must not be negative"),
    Case("split --data d --out s.json --validation-normal -2", (), 2, "--validation-normal -2: must not be negative"),
    # Options that do not go together.
    Case(
        "segment good.png --model model.keras --backend keras",
        ("good.png", "model.keras"),
        2,
        "--backend chooses how the shipped model runs; --model FILE runs as its suffix says (.keras or .tflite)",
    ),
    Case("export model.keras --out model.onnx", ("model.keras",), 2, "--out model.onnx: a LiteRT file ends in .tflite"),
    Case(
        "export model.keras --quantization int8",
        ("model.keras",),
        2,
        "--quantization int8: needs --data and --split, whose training scans calibrate it",
    ),
    Case("export model.keras --data d", ("model.keras",), 2, "--data and --split calibrate --quantization int8 only"),
    # Outputs that cannot be written: said once, before any work.
    Case("segment good.png --out taken", ("good.png", "taken"), 2, "--out taken: an existing file, not a folder"),
    Case(
        "segment scans --out taken",
        ("scans/good.png", "scans/other.png", "taken"),
        2,
        "--out taken: an existing file, not a folder",
    ),
    Case(
        "segment good.png --out taken/masks",
        ("good.png", "taken"),
        2,
        "--out taken/masks: taken is an existing file, not a folder",
    ),
    Case("segment good.png --out good.png", ("good.png",), 2, "--out good.png: an existing file, not a folder"),
    Case(
        "segment good.png --out masks",
        ("good.png", "masks/good_mask.png"),
        2,
        "masks/good_mask.png: already exists (use --overwrite to replace it)",
    ),
    Case("train --model unet --data phantom --out taken", ("taken",), 2, "--out taken: an existing file, not a folder"),
    Case(
        "train --model unet --data phantom --out taken/run",
        ("taken",),
        2,
        "--out taken/run: taken is an existing file, not a folder",
    ),
    Case("reproduce --data phantom --out taken", ("taken",), 2, "--out taken: an existing file, not a folder"),
    Case(
        "evaluate --model model.keras --data d --split split.json --out taken",
        ("model.keras", "split.json", "taken"),
        2,
        "--out taken: an existing file, not a folder",
    ),
    Case("split --data d --out taken", ("taken",), 2, "taken: already exists (use --overwrite to replace it)"),
    Case(
        "split --data d --out blank --overwrite",
        ("blank/",),
        2,
        "blank: an existing folder; give the name of a file to write",
    ),
    Case(
        "export model.keras --out folder.tflite",
        ("model.keras", "folder.tflite/"),
        2,
        "folder.tflite: an existing folder; give the name of a file to write",
    ),
    Case(
        "export model.keras",
        ("model.keras",),
        2,
        "model.keras: not a readable .keras model archive (truncated or corrupted?)",
    ),
    Case(
        "presence-head --model model.keras --data d --split split.json --out head.h5",
        ("model.keras",),
        2,
        "--out head.h5: the new model is written as a .keras file",
    ),
    Case(
        "presence-head --model model.keras --data d --split split.json --out model.keras --overwrite",
        ("model.keras",),
        2,
        "--out model.keras: an input model; write the new model to another file",
    ),
    Case(
        "presence-head --model other.keras --data d --split split.json --out model.keras",
        ("model.keras",),
        2,
        "model.keras: already exists (use --overwrite to replace it)",
    ),
    Case(
        "presence-head --model model.keras --data d --split split.json --out head.keras",
        ("model.keras",),
        2,
        "model.keras: not a readable .keras model archive (truncated or corrupted?)",
    ),
    # Inputs that name nothing to segment.
    Case("segment missing.png", (), 2, "missing.png: no such file or folder"),
    Case("segment blank", ("blank/",), 2, f"blank: holds no supported scan ({SUPPORTED})"),
    Case("segment only-text", ("only-text/notes.txt",), 2, f"only-text: holds no supported scan ({SUPPORTED})"),
    Case(
        "segment only-masks",
        ("only-masks/a_mask.png", "only-masks/a_overlay.png"),
        2,
        f"only-masks: holds no supported scan ({SUPPORTED})",
    ),
    Case("segment only-gifs", ("only-gifs/scan.gif",), 2, f"only-gifs/scan.gif: unsupported GIF file; {UNSUPPORTED}"),
    Case("segment scan.gif", ("scan.gif",), 2, f"scan.gif: unsupported GIF file; {UNSUPPORTED}"),
    Case("segment scan.webp", ("scan.webp",), 2, f"scan.webp: unsupported WEBP file; {UNSUPPORTED}"),
    Case("segment notes.txt", ("notes.txt",), 2, f"notes.txt: unsupported TXT file; {UNSUPPORTED}"),
    Case("segment noname", ("noname",), 2, f"noname: unsupported file without a suffix; {UNSUPPORTED}"),
    Case("segment loop.png", ("loop.png",), 2, "loop.png: broken symbolic link or symlink loop"),
    # Scans that cannot be segmented (the shipped model is loaded, then the scan refused).
    Case("segment empty.png", ("empty.png",), 2, "empty.png: empty file (0 bytes)"),
    Case("segment text.png", ("text.png",), 2, f"text.png: {NOT_READABLE}"),
    Case("segment cut.png", ("cut.png",), 2, f"cut.png: {NOT_READABLE}"),
    Case("segment gif-inside.png", ("gif-inside.png",), 2, f"gif-inside.png: {NOT_READABLE}"),
    Case("segment huge.png", ("huge.png",), 2, f"huge.png: image is 10000x10000 {TOO_MANY_PIXELS}"),
    Case("segment sneaky.jpg", ("sneaky.jpg",), 2, f"sneaky.jpg: image is 9000x9000 {TOO_MANY_PIXELS}"),
    Case("segment const.png", ("const.png",), 2, f"const.png: {DEGENERATE}"),
    Case("segment black.png", ("black.png",), 2, f"black.png: {DEGENERATE}"),
    Case("segment one.png", ("one.png",), 2, f"one.png: {DEGENERATE}"),
    # Good and bad together: the good ones segmented, each bad one listed (exit 3).
    Case("segment good.png missing.png", ("good.png",), 3, "missing.png: no such file or folder"),
    Case("segment good.png const.png", ("good.png", "const.png"), 3, f"const.png: {DEGENERATE}"),
    Case("segment good.png scan.gif", ("good.png", "scan.gif"), 3, f"scan.gif: unsupported GIF file; {UNSUPPORTED}"),
    Case("segment good.png blank", ("good.png", "blank/"), 3, f"blank: holds no supported scan ({SUPPORTED})"),
    Case("segment good.png text.png", ("good.png", "text.png"), 3, f"text.png: {NOT_READABLE}"),
    Case(
        "segment mixed --out masks",
        ("mixed/good.png", "mixed/scan.gif", "mixed/notes.txt"),
        3,
        f"mixed/scan.gif: unsupported GIF file; {UNSUPPORTED}",
    ),
    Case(
        "segment good.png other.png --out masks",
        ("good.png", "other.png", "masks/good_mask.png"),
        3,
        "masks/good_mask.png: already exists (use --overwrite to replace it)",
    ),
    # Datasets that cannot be read.
    Case("inspect --data missing", (), 2, "missing: no such directory"),
    Case("inspect --data notes.txt", ("notes.txt",), 2, "notes.txt: not a directory"),
    Case("inspect --data blank", ("blank/",), 2, "{here}/blank: empty directory"),
    Case("split --data blank --out s.json", ("blank/",), 2, "{here}/blank: empty directory"),
]


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (a symbolic link: its target's name), by relative path."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[path.relative_to(folder).as_posix()] = "-> " + os.readlink(path)
        elif path.is_file():
            found[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def make_files(folder: Path, names: tuple[str, ...]) -> None:
    for name in names:
        path = folder / name.rstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        content = FILES[name]
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)


def test_the_table_holds_at_least_sixty_distinct_cases():
    assert len(CASES) >= 60
    assert len({case.argv for case in CASES}) == len(CASES)
    assert {name for case in CASES for name in case.files} <= set(FILES)


@pytest.mark.parametrize("case", CASES, ids=[case.argv or "(nothing)" for case in CASES])
def test_bad_input_is_one_line_and_leaves_the_files_as_they_were(case, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RDANET_MAX_PIXELS", raising=False)
    make_files(tmp_path, case.files)
    before = digests(tmp_path)
    paths_before = sorted(tmp_path.rglob("*"))

    try:
        code = main(shlex.split(case.argv))
    except SystemExit as exit_info:  # the parser's refusals
        code = exit_info.code
    err = capfd.readouterr().err

    assert code == case.code, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    if case.exact:
        command = case.argv.split()[0]
        kind = "skipped" if case.code == 3 else "error:"
        assert lines[0] == f"rdanet-gan {command}: {kind} {case.message.format(here=tmp_path)}"
    else:  # the parser names the command whose options it read
        assert lines[0].startswith("rdanet-gan") and ": error: " in lines[0] and case.message in lines[0]
        assert lines[0].endswith(" --help)")
    after = digests(tmp_path)
    assert {name: after.get(name) for name in before} == before  # no input or earlier output changed or removed
    if case.code == 2:
        assert sorted(tmp_path.rglob("*")) == paths_before  # a refused command creates nothing
