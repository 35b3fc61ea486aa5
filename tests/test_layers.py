"""The layers of the package: prediction (``rdanet_gan.inference``) stands on its own; evaluation and
training build on it, never the other way round."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rdanet_gan"
ABOVE_PREDICTION = ("rdanet_gan.evaluation", "rdanet_gan.training")

SEGMENT_AND_LIST_MODULES = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('MODULES', *sorted(m for m in sys.modules if m.startswith('rdanet_gan'))))\n"
    "from rdanet_gan.cli import main\n"
    "print('EXIT', main(sys.argv[1:]))\n"
)


def imported_names(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_prediction_module_imports_evaluation_or_training():
    offenders = {
        f"{path.relative_to(PACKAGE.parent)}: {name}"
        for path in sorted((PACKAGE / "inference").glob("*.py"))
        for name in imported_names(path)
        if name.startswith(ABOVE_PREDICTION)
    }
    assert not offenders, sorted(offenders)


@pytest.mark.parametrize(
    "options", [[], ["--backend", "keras", "--overlay"]], ids=["litert", "keras-with-overlay"]
)
def test_segment_imports_nothing_of_evaluation_or_training(tmp_path, options):
    cv2.imwrite(str(tmp_path / "scan.png"), np.random.default_rng(0).integers(0, 255, (90, 120), dtype=np.uint8))
    result = subprocess.run(
        [sys.executable, "-c", SEGMENT_AND_LIST_MODULES, "segment", "scan.png", "--out", "masks", *options],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith(("EXIT", "MODULES"))}
    assert lines.get("EXIT") == ["0"], result.stderr[-2000:]
    modules = lines["MODULES"]
    assert "rdanet_gan.inference.segment" in modules  # the run went through the inference layer
    assert [name for name in modules if name.startswith(ABOVE_PREDICTION)] == []
    assert (tmp_path / "masks" / "scan_mask.png").is_file()
