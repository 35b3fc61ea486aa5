"""The repository itself: no tracked text file names a path of the machine that made it; the tree stays small."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MACHINE_PATH = re.compile(r"(?<![\w.$~])/(?:root|home|Users|work|tmp|private/var)/")
"""An absolute path under a home, work or temporary folder (``~/``, ``$BUSI/`` and URLs do not match)."""


MAX_TREE_BYTES = 64 * 2**20
"""The tracked tree travels whole to a lent accelerator, which carries 64 MiB at most."""


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    return [ROOT / name.decode() for name in filter(None, names)]


def test_the_tracked_tree_stays_under_64_mib():
    assert sum(path.stat().st_size for path in tracked_files() if path.is_file()) < MAX_TREE_BYTES


def tracked_text_files() -> list[Path]:
    files = []
    for path in tracked_files():
        head = path.read_bytes()[:8192] if path.is_file() else b"\0"
        if b"\0" not in head:  # text, not a model, array archive or picture
            files.append(path)
    return files


def test_no_tracked_file_holds_a_machine_path():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {match.group(0)}"
        for path in tracked_text_files()
        if path != Path(__file__)
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        for match in [MACHINE_PATH.search(line)]
        if match
    ]
    assert not offenders, "absolute machine paths in tracked files:\n" + "\n".join(offenders[:20])


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("rdanet-gan reproduce --data /work/shared/datasets/BUSI", True),
        ('"split": "/root/runs/table1/split.json"', True),
        ("see /home/user/x", True),
        ("--out ~/runs/ablation --data $BUSI/", False),
        ("https://example.org/work/page", False),
        ("benchmarks/results/throughput.json", False),
    ],
)
def test_machine_path_pattern(line, found):
    assert bool(MACHINE_PATH.search(line)) is found
