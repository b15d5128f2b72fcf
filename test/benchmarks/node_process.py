"""The node as the benchmarks start it: ``ik_node --ros-args --params-file <file>`` from the checkout, in a
process group of its own (so that it, and only it, is ended), its output discarded (an unread pipe would
stall it once full)."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def started_node(params_file: Path = ROOT / "config" / "panda.yaml") -> Iterator[subprocess.Popen]:
    """The node running with ``params_file`` while the block runs; SIGINT to its group afterwards."""
    process = subprocess.Popen(
        ["ik_node", "--ros-args", "--params-file", str(params_file)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=20)
