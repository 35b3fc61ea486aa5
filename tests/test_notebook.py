"""The walkthrough notebook: stored without outputs, and runs end to end in QUICK mode.

One headless run costs one to two minutes, so a session runs it once: on BUSI
when ``RDANET_BUSI_DIR`` is set (as in CI), on the phantom fallback otherwise.
"""

from __future__ import annotations

import os
import re
import struct
from base64 import b64decode
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from rdanet_gan.data import find_records

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "walkthrough.ipynb"
SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "rdanet_gan" / "weights" / "rdanet_gan.npz"
CELL_TIMEOUT_S = 300
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_quick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Execute the notebook with QUICK=1 in a fresh kernel; a failing cell fails the test."""
    monkeypatch.setenv("QUICK", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's run directory and figures
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(output["text"] for output in outputs(notebook) if output["output_type"] == "stream")


def markdown_outputs(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        output["data"]["text/markdown"] for output in outputs(notebook) if "text/markdown" in output.get("data", {})
    ]


def png_sizes(notebook: nbformat.NotebookNode) -> list[tuple[int, int]]:
    """(width, height) of every PNG the notebook displayed, read from the PNG header."""
    sizes = []
    for output in outputs(notebook):
        if "image/png" in output.get("data", {}):
            png = b64decode(output["data"]["image/png"])
            assert png.startswith(PNG_SIGNATURE)
            sizes.append(struct.unpack(">II", png[16:24]))
    return sizes


def check_common_outputs(notebook: nbformat.NotebookNode, test_scans: int) -> None:
    """What every run shows: training epochs, Table 1 on the whole test split, the figures."""
    text = printed(notebook)
    tables = markdown_outputs(notebook)
    assert "Epoch 2/2" in text
    epoch_table = next(table for table in tables if table.startswith("| epoch |"))
    assert [line.split("|")[1].strip() for line in epoch_table.splitlines()[2:]] == ["1", "2"]
    table1 = next(table for table in tables if "### Table 1" in table)
    assert re.search(rf"\| RDA-NET-GAN \| ours \| {test_scans} \|", table1)
    assert "| RDA-NET-GAN | paper | 57 |" in table1
    assert any("Empty masks" in table for table in tables)
    network_table = next(table for table in tables if table.startswith("| network |"))
    assert all(name in network_table for name in ("rdau-net", "critic", "unet", "segnet"))
    if SHIPPED_WEIGHTS.exists():
        assert "scoring the shipped weights" in text
    else:
        assert "no shipped weights" in text and "scoring the generator trained above" in text
    # Scans, augmentation, three overlays, training curves, Dice distribution: all drawn.
    sizes = png_sizes(notebook)
    assert len(sizes) >= 7
    assert all(width >= 200 and height >= 200 for width, height in sizes)


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code_cells)
    assert 'QUICK = os.environ.get("QUICK") == "1"' in code_cells[0].source


def test_notebook_runs_quick_on_busi(busi_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RDANET_BUSI_DIR", str(busi_dir))
    notebook = run_quick(tmp_path, monkeypatch)
    text = printed(notebook)
    assert f"data: BUSI at {busi_dir}" in text
    assert "(busi layout)" in text
    assert "57 test" in text and "50 validation" in text
    leakage = re.search(r"pairs across two sides: (\d+) with make_split, (\d+) with a random split", text)
    assert leakage is not None
    assert int(leakage[1]) == 0 < int(leakage[2])
    # The presence level is chosen on 50 validation scans plus half the lesion-free ones; the others count alarms.
    lesion_free = sum(record.label == "normal" for record in find_records(busi_dir, include_normal=True))
    validating, held_out = lesion_free // 2, lesion_free - lesion_free // 2
    assert any(
        table.startswith(f"| presence level | validation Dice per image ({50 + validating} scans, {validating} lesion-free)")
        for table in markdown_outputs(notebook)
    )
    assert f"the other {held_out} lesion-free scans: a lesion is predicted on" in text
    assert re.search(rf"for at most 10 % false alarms on validation, presence level [0-9.]+: \d+ of {held_out} held-out", text)
    check_common_outputs(notebook, test_scans=57)


@pytest.mark.skipif(
    bool(os.environ.get("RDANET_BUSI_DIR")), reason="the BUSI run covers the notebook; one run per session"
)
def test_notebook_runs_quick_on_phantoms(tmp_path, monkeypatch):
    notebook = run_quick(tmp_path, monkeypatch)
    assert "data: 64 generated phantoms (no BUSI folder given" in printed(notebook)
    check_common_outputs(notebook, test_scans=8)
