from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "ik_neural"


def share_tree(directory: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing every file under directory to share/ik_neural/<directory>."""
    entries: dict[str, list[str]] = {}
    for path in sorted(Path(directory).rglob("*")):
        # Training checkpoints and half-written files (gitignored) are not part of the package.
        if path.is_file() and path.suffix not in (".ckpt", ".partial"):
            entries.setdefault(f"share/{PACKAGE}/{path.parent}", []).append(str(path))
    return sorted(entries.items())


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
