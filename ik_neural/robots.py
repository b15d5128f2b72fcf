"""The robots shipped with the package, by name: ``list_robots()``, ``load_robot(name)``.

Each robot is a folder ``models/<name>/`` holding ``robot.yaml`` (description, ``base_link``, ``tip_link``,
``urdf``: the URDF's file name, ``source``; for robots defined by a DH table also ``dh``) and the URDF.
The URDF is what the chain is built from; for DH robots it is generated from the yaml's table
(models/README.md), which stays the source of truth. Lengths in metres, angles in radians; a chain's poses
are the tip link's frame in the base link's frame.

models/ is found next to the ``ik_neural`` package in a source tree (also a develop/symlink install), else
in the package's share directory of a ROS 2 install (``share/ik_neural/models``, via ament_index_python).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import yaml

from ik_neural.chain import KinematicChain

if TYPE_CHECKING:
    from ik_neural.network import IKNetwork

ROBOT_FILE = "robot.yaml"
NETWORK_FILE = "ik_network.pt"
_SOURCE_MODELS = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class Robot:
    """A shipped robot.

    ``chain`` runs from the yaml's ``base_link`` to its ``tip_link`` of the URDF at ``urdf_path``;
    ``network`` is the trained network ``models/<name>/ik_network.pt``, or None where none is shipped.
    """

    name: str
    chain: KinematicChain
    urdf_path: Path
    network: Optional["IKNetwork"]
    description: str


def _has_robots(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob(f"*/{ROBOT_FILE}"))


def models_dir() -> Path:
    """The folder holding the shipped robots: the source tree's ``models/``, else the installed share one.

    Raises FileNotFoundError if neither exists.
    """
    if _has_robots(_SOURCE_MODELS):
        return _SOURCE_MODELS
    tried = [str(_SOURCE_MODELS)]
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        pass
    else:
        try:
            share_models = Path(get_package_share_directory("ik_neural")) / "models"
        except PackageNotFoundError:
            pass
        else:
            if _has_robots(share_models):
                return share_models
            tried.append(str(share_models))
    raise FileNotFoundError(f"no shipped robots found (looked for */{ROBOT_FILE} in {', '.join(tried)})")


PACKAGE = "ik_neural"
"""This package's name, as ``package://`` URIs name it."""


def package_file(relative: str) -> Path:
    """A file of this package by its path in the package (``package://ik_neural/<relative>``): in the source
    tree, else in the installed share directory (where ``models_dir`` finds the robots)."""
    return models_dir().parent / relative


def list_robots() -> list[str]:
    """Names of the shipped robots (folders of models/ that hold a robot.yaml), sorted."""
    return sorted(path.parent.name for path in models_dir().glob(f"*/{ROBOT_FILE}"))


def _robot_config(name: str) -> tuple[Path, dict[str, Any]]:
    """(the robot's folder, its parsed robot.yaml); ValueError for an unknown name."""
    available = list_robots()
    if name not in available:
        raise ValueError(f"unknown robot {name!r}; available robots: {', '.join(available)}")
    folder = models_dir() / name
    with open(folder / ROBOT_FILE, encoding="utf-8") as stream:
        return folder, yaml.safe_load(stream)


def robot_chain(name: str) -> tuple[KinematicChain, Path]:
    """(the chain, the URDF's path) of the shipped robot ``name``, without its network (no torch)."""
    folder, config = _robot_config(name)
    urdf_path = folder / config["urdf"]
    return KinematicChain.from_urdf(urdf_path, config["base_link"], config["tip_link"]), urdf_path


def load_robot(name: str) -> Robot:
    """The shipped robot ``name``: its chain built from its URDF, and its network if one is shipped.

    ValueError for an unknown name, or a shipped network that does not load for the chain.
    """
    folder, config = _robot_config(name)
    chain, urdf_path = robot_chain(name)
    network_path = folder / NETWORK_FILE
    network = None
    if network_path.exists():
        from ik_neural.network import load_network  # torch: only for robots that ship a network

        network = load_network(network_path, chain)
    return Robot(
        name=name,
        chain=chain,
        urdf_path=urdf_path,
        network=network,
        description=" ".join(str(config["description"]).split()),
    )


def dh_chain(name: str) -> Optional[KinematicChain]:
    """The chain built directly from robot ``name``'s DH table in robot.yaml, or None if it has none.

    Standard DH (Rz(theta) Tz(d) Tx(a) Rx(alpha), theta = q + theta_offset), metres and radians; the
    shipped URDF of such a robot is ``dh_chain(name).to_urdf(name)``.
    """
    _, config = _robot_config(name)
    table = config.get("dh")
    if table is None:
        return None
    return KinematicChain.from_dh(
        table["a"],
        table["d"],
        table["alpha"],
        table.get("theta_offset"),
        lower=table["lower"],
        upper=table["upper"],
        joint_names=table.get("joint_names"),
        base_link=config["base_link"],
        tip_link=config["tip_link"],
    )
