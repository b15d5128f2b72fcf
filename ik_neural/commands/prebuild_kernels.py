"""Compile the numba kernels ahead of time into the folder an install carries (``kernels/prebuilt/<key>``).

setup.py's install step (what ``colcon build`` runs) calls ``python -m ik_neural.commands.prebuild_kernels
OUT URDF NETWORK``, so that the first start of the node loads the kernels (milliseconds) instead of
compiling them (``kernels.cache.COMPILE_ALL_S``). It warms up the hybrid and the numerical solver for the
URDF's chain (base and tip from the network file) as the node does, and the goal stream's tracker, which
reaches every kernel the node runs; the kernels' types do not depend on the chain, so one robot serves them
all.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m ik_neural.commands.prebuild_kernels OUT URDF NETWORK", file=sys.stderr)
        return 2
    out, urdf, network_file = (Path(arg) for arg in argv)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["NUMBA_CACHE_DIR"] = scratch  # before ik_neural.kernels is imported: compile from nothing
        from ik_neural.chain import KinematicChain
        from ik_neural.kernels.cache import cache_dir, cache_key, kernel_files
        from ik_neural.kernels.kinematics import place_bodies
        from ik_neural.network import load_network, read_network_metadata
        from ik_neural.solver import IKSolver
        from ik_neural.tracker import Tracker

        metadata = read_network_metadata(network_file)
        chain = KinematicChain.from_urdf(urdf, metadata["base_link"], metadata["tip_link"])
        solver = IKSolver(chain, network=load_network(network_file, chain))
        solver.warm_up()
        Tracker(solver).warm_up()
        IKSolver(chain).warm_up()
        # The collision checker's placement of its bodies (its types do not depend on the robot either), for
        # read-only and writable q, which numba compiles apart.
        for q in (chain.middle, chain.middle.copy()):
            pairs = np.zeros(1, dtype=np.int64)
            place_bodies(q, chain.arrays, pairs, np.eye(4)[None], np.zeros((1, 3)), np.ones(1), pairs, pairs)
        target = out / cache_key()
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(kernel_files(cache_dir()), target)
    print(f"prebuild_kernels: {len(list(target.iterdir()))} files in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
