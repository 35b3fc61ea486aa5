"""Interrupted training: a real ``rdanet-gan train`` killed with SIGKILL in mid-epoch, then resumed.

The resumed run must continue from the last finished epoch and end with
exactly the weights and optimizer state of an uninterrupted run of the same
seed. U-Net keeps the test short (its graph traces three times faster than
RDAU-Net's); the resume machinery is the same for every model, and
``test_trainer`` checks the GAN's two optimizers in-process.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from rdanet_gan.cli import main
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.training import TrainingDivergedError

TRAIN = [sys.executable, "-m", "rdanet_gan", "train", "--model", "unet", "--data", "phantom", "--image-size", "32"]
TRAIN += ["--base-width", "4", "--batch-size", "8", "--epochs", "3", "--seed", "1", "--jit", "off"]
STEPS = 6  # 48 phantom training scans in batches of 8
TIMEOUT = 300
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def kill_in_epoch(command: list[str], epoch: int) -> str:
    """Run ``command`` and SIGKILL it as soon as its progress bar shows a step of ``epoch`` before the last."""
    mid_epoch = re.compile(rb"Epoch %d/\d+\s.*?(?<!\d)(\d+)/%d(?!\d)" % (epoch, STEPS), re.DOTALL)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    output = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            if select.select([process.stdout], [], [], 1.0)[0]:
                chunk = os.read(process.stdout.fileno(), 1 << 16)
                if not chunk:
                    break  # the run ended before the kill
                output += chunk
                step = mid_epoch.search(output)
                if step and int(step[1]) < STEPS:
                    process.send_signal(signal.SIGKILL)
                    assert process.wait() == -signal.SIGKILL
                    return output.decode(errors="replace")
    finally:
        process.kill()
        process.wait()
    pytest.fail(f"the run was not killed in epoch {epoch}:\n{output.decode(errors='replace')[-3000:]}")


def epochs_logged(run: Path) -> list[dict]:
    return json.loads((run / "log.json").read_text())


def backup_contents(run: Path) -> dict[str, np.ndarray]:
    """Every array of the BackupAndRestore checkpoint: model weights and optimizer state."""
    arrays = {}

    def collect(name: str, item) -> None:
        if isinstance(item, h5py.Dataset):
            arrays[name] = item[()]

    with h5py.File(run / "backup" / "latest.weights.h5", "r") as checkpoint:
        checkpoint.visititems(collect)
    return arrays


def test_a_run_killed_in_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    with open(tmp_path / "straight.log", "wb") as log:  # the reference runs beside the other two
        reference = subprocess.Popen([*TRAIN, "--out", str(straight)], stdout=log, stderr=subprocess.STDOUT, env=ENV)
        try:
            kill_in_epoch([*TRAIN, "--out", str(resumed)], epoch=2)

            # Killed in epoch 2 (or, on a slow reader, in epoch 3): the finished epochs are on disk,
            # intact, and nothing of the end of the run exists.
            before = epochs_logged(resumed)
            finished = len(before)
            assert [row["epoch"] for row in before] == list(range(1, finished + 1)) and finished in (1, 2)
            assert not (resumed / "final.keras").exists()
            assert load_segmenter(resumed / "best.keras").output_shape == (None, 32, 32, 1)

            command = [*TRAIN, "--out", str(resumed), "--resume"]
            result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=TIMEOUT, env=ENV)
            assert reference.wait(timeout=TIMEOUT) == 0, (tmp_path / "straight.log").read_text()[-3000:]
        finally:
            reference.kill()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Epoch {finished}/3" not in result.stdout  # the finished epochs are not trained again
    assert f"Epoch {finished + 1}/3" in result.stdout

    after = epochs_logged(resumed)
    assert [row["epoch"] for row in after] == [1, 2, 3]
    assert after[:finished] == before
    final_straight = load_segmenter(straight / "final.keras").get_weights()
    final_resumed = load_segmenter(resumed / "final.keras").get_weights()
    assert len(final_straight) == len(final_resumed) > 0
    for expected, actual in zip(final_straight, final_resumed):
        np.testing.assert_array_equal(actual, expected)
    state_straight, state_resumed = backup_contents(straight), backup_contents(resumed)
    assert any("optimizer" in name for name in state_straight)
    assert state_straight.keys() == state_resumed.keys()
    for name, expected in state_straight.items():
        np.testing.assert_array_equal(state_resumed[name], expected, err_msg=name)


def test_a_diverged_run_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    message = "epoch 2, step 3: loss term 'loss' became nan; stopped, the last good checkpoint is kept"

    def diverge(*_, **__):
        raise TrainingDivergedError(message)

    monkeypatch.setattr("rdanet_gan.training.train", diverge)
    assert main(["train", "--model", "unet", "--data", "phantom", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"rdanet-gan train: error: {message}"]
