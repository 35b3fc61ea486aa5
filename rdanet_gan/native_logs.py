"""Keep TensorFlow's native log lines off the command line's stderr.

TensorFlow 2.21 and LiteRT write lines from C++ as they load (``I0000 … port.cc:153] oneDNN
custom operations are on``, ``INFO: Created TensorFlow Lite XNNPACK delegate``), whatever
``TF_CPP_MIN_LOG_LEVEL`` says, so a command's one-line error would not be one line. The filter sits
on file descriptor 2, where C++ writes too, and drops those lines only: every other line (this
package's errors and warnings, a traceback, a fatal ``F`` log line) passes unchanged and in order.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator

NATIVE_LOG = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]+\] "  # absl: severity, date, time, thread, file:line]
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU"
    rb"|To enable the following instructions: .* rebuild TensorFlow)"
)
"""Lines that TensorFlow and LiteRT write from C++ and that say nothing the user can act on."""


_FILTER = """
import re, sys
native = re.compile(sys.argv[1].encode("latin-1"))
for line in sys.stdin.buffer:
    if not native.match(line):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""
"""The filter, run as its own process: a thread of this one would need the GIL to drain the pipe, which C++
code writing to stderr while holding it (TensorFlow's bindings do) would wait on for ever once the pipe filled."""


@contextlib.contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Within the block, drop :data:`NATIVE_LOG` lines from file descriptor 2 (stderr)."""
    sys.stderr.flush()
    original = os.dup(2)
    command = [sys.executable, "-I", "-S", "-c", _FILTER, NATIVE_LOG.pattern.decode("latin-1")]
    # Its own session: Ctrl-C interrupts the command, which still reports it through the filter.
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=original, stderr=original, start_new_session=True)
    os.dup2(child.stdin.fileno(), 2)
    child.stdin.close()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end here: the filter reads to the end and exits
        os.close(original)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a process the block started still holds the pipe:
            child.wait(timeout=10)  # the filter then ends with that process


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Within the block, discard everything written to file descriptor 2: for a call whose diagnostics (pages of
    MLIR from the LiteRT converter) also reach the caller in the exception it raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
