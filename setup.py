import os
import subprocess
import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.install import install

PACKAGE = "ik_neural"
SOURCE = Path(__file__).resolve().parent


def share_tree(directory: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing every file under directory to share/ik_neural/<directory>."""
    entries: dict[str, list[str]] = {}
    for path in sorted(Path(directory).rglob("*")):
        # Training checkpoints and half-written files (gitignored) are not part of the package.
        if path.is_file() and path.suffix not in (".ckpt", ".partial"):
            entries.setdefault(f"share/{PACKAGE}/{path.parent}", []).append(str(path))
    return sorted(entries.items())


class InstallWithKernels(install):
    """``install`` (what colcon build runs), then the numba kernels compiled into the installed package's
    kernels/prebuilt/, so that the first start of the node loads them (milliseconds) instead of compiling
    (~45 s on 2 cores). Where that fails (no numba at build time), the kernels compile at first use."""

    def run(self) -> None:
        super().run()
        lib = Path(self.install_lib)
        out = lib / PACKAGE / "kernels" / "prebuilt"
        panda = SOURCE / "models" / "panda"
        command = [
            sys.executable,
            "-m",
            f"{PACKAGE}.commands.prebuild_kernels",
            str(out),
            str(panda / "panda.urdf"),
            str(panda / "ik_network.pt"),
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(lib), os.environ.get("PYTHONPATH")]))}
        print(f"compiling the numba kernels into {out}", flush=True)  # how long: kernels.cache.COMPILE_ALL_S
        result = subprocess.run(command, cwd=lib, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"warning: kernels not prebuilt, they compile on first use:\n{result.stderr.strip()}", flush=True)
            return
        print(result.stdout.strip(), flush=True)
        if self.record:  # colcon reads the record to know what the install holds
            with open(self.record, "a", encoding="utf-8") as record:
                record.writelines(f"{path}\n" for path in sorted(out.rglob("*")) if path.is_file())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *share_tree("launch"),
        *share_tree("config"),
        *share_tree("models"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    cmdclass={"install": InstallWithKernels},
    maintainer="ik_neural developers",
    maintainer_email="ik-neural@example.com",
    description="Neural-network inverse kinematics for ROS 2, refined by damped least squares",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "ik_bench = ik_neural.commands.bench:main",
            "ik_client = ik_neural.ros.client:main",
            "ik_node = ik_neural.ros.node:main",
            "ik_train = ik_neural.commands.train:main",
        ]
    },
)
