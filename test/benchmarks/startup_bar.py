"""Benchmark (prints a table; not a test): how long an installed node takes from its start to serving.

    colcon build --packages-select ik_neural                    # in a workspace of your own
    source "$(bash env/activate_checkout.sh)" && python test/benchmarks/startup_bar.py --install install

Each start runs the installed ``lib/ik_neural/ik_node --ros-args --params-file share/ik_neural/config/panda.yaml``
(what ``ros2 run ik_neural ik_node`` starts), seeing the install only (not the checkout), from outside it. The
time is from the process's start to its "serving ..." line. The first start has an empty per-user cache
(``XDG_CACHE_HOME`` a new folder: the kernels are copied from the install's prebuilt copy, the collision pairs
computed); the next ``--warm`` starts reuse that cache, as every later start of a user's node does.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "test" / "packaging"))
from test_package_build import installed_env  # noqa: E402 (after its folder is on the path)


def node_env(install: Path, cache: Path) -> dict[str, str]:
    """The packaging test's environment of the install alone (``installed_env``), its per-user cache in ``cache``."""
    env = installed_env(install)
    env.pop("NUMBA_CACHE_DIR", None)
    env["XDG_CACHE_HOME"] = str(cache)
    return env


def time_to_serving_s(install: Path, cache: Path, timeout_s: float = 120.0) -> float:
    """Seconds from starting the installed node to its "serving" line; the node is ended at once after."""
    share = install / "ik_neural" / "share" / "ik_neural"
    command = [str(install / "ik_neural" / "lib" / "ik_neural" / "ik_node")]
    command += ["--ros-args", "--params-file", str(share / "config" / "panda.yaml")]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=tempfile.gettempdir(),
        env=node_env(install, cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        lines = []
        while time.perf_counter() - started < timeout_s:
            if not selector.select(timeout=1.0):
                continue
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "serving " in line:
                return time.perf_counter() - started
        raise RuntimeError("the node did not serve:\n" + "".join(lines[-20:]))
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", type=Path, required=True, help="colcon's install base (holding ik_neural/)")
    parser.add_argument("--warm", type=int, default=5, help="starts after the first, with its cache")
    parser.add_argument("--rounds", type=int, default=3, help="first starts, each with a new empty cache")
    args = parser.parse_args()
    install = args.install.resolve()
    print(f"installed node ({install}), Panda, from start to 'serving', s")
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as cache:
            first = time_to_serving_s(install, Path(cache))
            warm = [time_to_serving_s(install, Path(cache)) for _ in range(args.warm)]
        warm_text = ", ".join(f"{s:.2f}" for s in warm)
        print(
            f"round {round_ + 1}: first (empty cache) {first:.2f}; warm {warm_text} (median {sorted(warm)[len(warm) // 2]:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
