"""What a command costs before it works: no TensorFlow unless needed, a quiet stderr, Keras objects registered."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rdanet_gan.inference.model_files import EXPORT_SUFFIX, MOBILENET_MODEL
from rdanet_gan.native_logs import native_logs_filtered

NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796490101.797600    9343 port.cc:153] oneDNN custom operations are on. You may see ...\n",
    b"E0000 00:00:1796486098.801962    4409 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: ...\n",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.\n",
]


def python(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=cwd, check=False)


def test_native_log_lines_are_dropped_and_every_other_line_kept_in_order(capfd):
    with native_logs_filtered():
        for index, noise in enumerate(NOISE):
            os.write(2, f"line {index}\n".encode())
            os.write(2, noise)
        os.write(2, b"F0000 00:00:1.0 1 x.cc:1] fatal lines are kept\n")
    assert capfd.readouterr().err.splitlines() == [*(f"line {index}" for index in range(len(NOISE))), "F0000 00:00:1.0 1 x.cc:1] fatal lines are kept"]


def test_help_and_option_errors_load_no_tensorflow():
    code = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "from rdanet_gan.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(time.perf_counter() - start, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    for argv in (["--help"], ["train", "--help"], ["train", "--model", "gan"], ["segment", "--help"]):
        result = python(code, *argv)
        seconds, tensorflow, keras = result.stdout.split()[-3:]
        assert (tensorflow, keras) == ("False", "False"), argv
        assert float(seconds) < 1.0, argv  # the budget; about 0.2 s here


def test_the_numpy_metrics_import_without_tensorflow():
    result = python("import sys, rdanet_gan.evaluation.metrics, rdanet_gan.data, rdanet_gan\nprint('tensorflow' in sys.modules)")
    assert result.stdout.split() == ["False"]


def test_custom_keras_objects_are_registered_whether_keras_comes_first_or_second():
    code = (
        "import importlib\n"
        "first, second = {order}\n"
        "importlib.import_module(first); importlib.import_module(second)\n"
        "import keras\n"
        "names = ['rdanet_gan>PoolingSwitches', 'rdanet_gan>RDANetGAN', 'rdanet_gan>DiceBCELoss']\n"
        "print(all(keras.saving.get_registered_object(name) is not None for name in names))\n"
    )
    for order in (("keras", "rdanet_gan"), ("rdanet_gan", "keras")):
        result = python(code.format(order=order))
        assert result.stdout.split()[-1:] == ["True"], (order, result.stderr[-1500:])


def test_segment_with_the_shipped_export_loads_no_tensorflow_and_writes_nothing_on_stderr(tmp_path):
    cv2.imwrite(str(tmp_path / "scan.png"), np.random.default_rng(0).integers(0, 255, (90, 120), dtype=np.uint8))
    code = (
        "import sys\n"
        "from rdanet_gan.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(code, 'tensorflow' in sys.modules)\n"
    )
    start = time.perf_counter()
    export = Path(MOBILENET_MODEL).with_suffix(EXPORT_SUFFIX).name  # a shipped model by name: the lighter one's export
    result = python(code, "segment", "scan.png", "--out", "masks", "--model", export, cwd=tmp_path)
    assert result.stdout.split()[-2:] == ["0", "False"]
    assert result.stderr == ""
    assert time.perf_counter() - start < 10
    result = python(code, "segment", "scan.png", "missing.png", "--out", "masks2", "--backend", "keras", cwd=tmp_path)
    assert result.stdout.split()[-2:] == ["3", "True"]  # one scan skipped: partial
    assert result.stderr.splitlines() == ["rdanet-gan segment: skipped missing.png: no such file or folder"]


def test_segment_refuses_an_output_it_may_not_write_before_loading_a_model(tmp_path):
    cv2.imwrite(str(tmp_path / "scan.png"), np.random.default_rng(0).integers(0, 255, (40, 50), dtype=np.uint8))
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "scan_mask.png").write_bytes(b"the user's own file")
    code = "import sys\nfrom rdanet_gan.cli import main\ncode = main(sys.argv[1:])\nprint(code, 'tensorflow' in sys.modules)\n"
    result = python(code, "segment", "scan.png", "--out", "masks", cwd=tmp_path)  # the default model runs in Keras
    assert result.stdout.split()[-2:] == ["2", "False"]
    assert "masks/scan_mask.png: already exists (use --overwrite to replace it)" in result.stderr
    assert (tmp_path / "masks" / "scan_mask.png").read_bytes() == b"the user's own file"
