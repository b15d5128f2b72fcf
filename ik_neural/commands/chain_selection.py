"""How a command is told which chain to work on: ``--robot NAME`` (a shipped robot), or ``--urdf FILE``
with ``--base LINK`` and ``--tip LINK``. One parser group and one check for every command."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ik_neural.chain import KinematicChain
from ik_neural.robots import list_robots, load_robot, robot_chain

if TYPE_CHECKING:
    from ik_neural.network import IKNetwork


@dataclass(frozen=True)
class ChosenChain:
    """The chain a command works on: a display name, the chain, the URDF it came from, and the robot's
    shipped network (None for a URDF, or a robot that ships none)."""

    name: str
    chain: KinematicChain
    urdf_path: Path
    network: Optional["IKNetwork"]
    robot: Optional[str]  # the shipped robot's name, None for --urdf


def add_chain_arguments(parser: argparse.ArgumentParser, default_robot: Optional[str]) -> None:
    """--robot, --urdf, --base, --tip; ``default_robot`` is used when neither --robot nor --urdf is given."""
    group = parser.add_argument_group("chain (a shipped robot, or a URDF with its base and tip links)")
    default = f" (default: {default_robot})" if default_robot else ""
    group.add_argument("--robot", help=f"a shipped robot: {', '.join(list_robots())}{default}")
    group.add_argument("--urdf", type=Path, help="a URDF file instead of --robot (with --base and --tip)")
    group.add_argument("--base", help="base link of the --urdf chain")
    group.add_argument("--tip", help="tip link of the --urdf chain")
    parser.set_defaults(default_robot=default_robot)


def chosen_chain(args: argparse.Namespace, load_network: bool = True) -> ChosenChain:
    """The chain the arguments name. ValueError with one line naming the problem: both or neither of
    --robot and --urdf, --base/--tip missing or without --urdf, an unknown robot, an unreadable URDF, a
    link it lacks. ``load_network`` False leaves a robot's network unloaded (no torch)."""
    if args.robot and args.urdf:
        raise ValueError("give either --robot or --urdf, not both")
    if args.urdf is None:
        if args.base is not None or args.tip is not None:
            raise ValueError("--base and --tip go with --urdf")
        name = args.robot or args.default_robot
        if not name:
            raise ValueError("give --robot NAME, or --urdf FILE with --base LINK and --tip LINK")
        if load_network:
            robot = load_robot(name)
            return ChosenChain(robot.name, robot.chain, robot.urdf_path, robot.network, robot.name)
        chain, urdf_path = robot_chain(name)
        return ChosenChain(name, chain, urdf_path, None, name)
    if args.base is None or args.tip is None:
        raise ValueError("--urdf needs --base LINK and --tip LINK")
    return ChosenChain(str(args.urdf), KinematicChain.from_urdf(args.urdf, args.base, args.tip), args.urdf, None, None)
