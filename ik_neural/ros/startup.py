"""The node's start-up logic, pure: where the robot descriptions come from (``description_waits``,
``descriptions``), how a ``package://`` path resolves (``resolve_path``), the one line it logs once serving
(``summary``), its collision checker (``collision_checker``), the ROS argument rcl cannot parse
(``empty_parameter_rule``) and the parameter mistakes rclpy would let through or report unclearly
(``refuse_unknown_parameters``, ``wrong_type``). ``StartupError`` is the node's one-line refusal to start.

No node: the caller waits for the topics and resolves names; these functions only decide.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, NamedTuple, Optional, Sequence

from ik_neural.chain import KinematicChain
from ik_neural.collision import CollisionChecker
from ik_neural.echo import echo
from ik_neural.robots import PACKAGE, package_file
from ik_neural.ros.settings import NodeSettings, choices, defaults, one_of
from ik_neural.urdf_model import UrdfModel

NODE_NAME = "ik_neural"


class StartupError(RuntimeError):
    """The node cannot start; the message is one line naming the cause."""


def resolve_path(path: str, package_folders: Sequence[Path] = ()) -> Path:
    """A file path, or a ``package://<package>/<path>`` URI resolved in that package's share directory (for
    ik_neural also its source tree), else in ``package_folders`` (the package_paths parameter): the first
    folder holding ``<package>/``, or named ``<package>`` itself. StartupError naming the package and how to
    point at it when none has it."""
    prefix = "package://"
    if not path.startswith(prefix):
        return Path(path).expanduser()
    package, _, relative = path[len(prefix) :].partition("/")
    if package == PACKAGE:
        return package_file(relative)
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(package)) / relative
    except PackageNotFoundError:
        pass
    for folder in package_folders:
        root = folder if folder.name == package else folder / package
        if root.is_dir():
            return root / relative
    # package_paths whole: the user's own setting, not request input, and the folder that matters may be last.
    searched = f" nor in package_paths {':'.join(map(str, package_folders))!r}" if package_folders else ""
    raise StartupError(
        f"{echo(path)}: package {echo(package)} is not in the ament index (installed or sourced packages){searched}; "
        f"install or source it, or set the parameter package_paths to the folder that holds {echo(package)}/"
    )


class Descriptions(NamedTuple):
    """The robot descriptions the node starts from, each with where it came from (for messages)."""

    urdf: str  # URDF XML or a file path
    urdf_origin: str
    srdf: Optional[str]  # SRDF XML or a file path; None: the disabled pairs are computed
    srdf_origin: str


def description_waits(settings: NodeSettings) -> dict[str, float]:
    """The latched topics to wait for before serving (topic -> longest wait, s): robot_description when no
    parameter or file gives the URDF; robot_description_semantic when collisions are checked, no parameter or
    file gives the SRDF and robot_description_semantic_timeout_s asks for a wait."""
    waits = {}
    if not settings.robot_description and not settings.urdf_path and settings.robot_description_timeout_s > 0:
        waits["robot_description"] = settings.robot_description_timeout_s
    if (
        settings.avoid_collisions_policy == "check"
        and not settings.robot_description_semantic
        and not settings.srdf_path
        and settings.robot_description_semantic_timeout_s > 0
    ):
        waits["robot_description_semantic"] = settings.robot_description_semantic_timeout_s
    return waits


def descriptions(settings: NodeSettings, published: Mapping[str, str], description_topic: str) -> Descriptions:
    """Each description as the parameter gives it, else the file, else the topic (``published``: topic ->
    what was heard): the URDF from robot_description, urdf_path or the robot_description topic; the SRDF (for
    collision checking) from robot_description_semantic, srdf_path or its topic, else None (computed pairs).
    StartupError without a URDF, naming ``description_topic`` (robot_description, resolved)."""
    if settings.robot_description:
        urdf = settings.robot_description, "parameter robot_description"
    elif settings.urdf_path:
        path = resolve_path(settings.urdf_path, settings.package_folders)
        urdf = str(path), f"urdf_path {echo(str(path))}"
    elif "robot_description" in published:
        urdf = published["robot_description"], "topic robot_description"
    else:
        raise StartupError(
            f"no robot description: parameter robot_description and urdf_path are empty and nothing was published "
            f"on {description_topic} within {settings.robot_description_timeout_s} s"
        )
    if settings.robot_description_semantic:
        srdf = settings.robot_description_semantic, "parameter robot_description_semantic"
    elif settings.srdf_path:
        path = resolve_path(settings.srdf_path, settings.package_folders)
        srdf = str(path), f"srdf_path {echo(str(path))}"
    elif "robot_description_semantic" in published:
        srdf = published["robot_description_semantic"], "topic robot_description_semantic"
    else:
        srdf = None, ""
    return Descriptions(*urdf, *srdf)


def summary(
    settings: NodeSettings,
    chain: KinematicChain,
    network_loaded: bool,
    checker: Optional[CollisionChecker],
    srdf_origin: str,
    names: Mapping[str, str],
) -> str:
    """What the node serves, in one line; ``names``: '~/compute_ik', '~/compute_fk', '~/goal_pose' and
    '~/joint_commands' resolved."""
    mode = f"network {settings.model_path}" if network_loaded else "numerical only (no model)"
    if checker is not None:
        pairs = f"the SRDF of {srdf_origin}" if checker.disabled_source == "srdf" else checker.disabled_source
        mode += (
            f"; avoid_collisions checks self-collision of {len(checker.link_names)} links, "
            f"{len(checker.enabled_pairs)} pairs (disabled pairs: {pairs})"
        )
    return (
        f"serving {names['~/compute_ik']} (moveit_msgs/srv/GetPositionIK) and "
        f"{names['~/compute_fk']} (moveit_msgs/srv/GetPositionFK) for group "
        f"{settings.group_name!r}: {chain.base_link} -> {chain.tip_link}, {chain.dof} joints "
        f"{chain.joint_names}, {mode}; goals on {names['~/goal_pose']} -> commands on "
        f"{names['~/joint_commands']}"
    )


def collision_checker(
    settings: NodeSettings,
    model: UrdfModel,
    chain: KinematicChain,
    srdf: Optional[str],
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> Optional[CollisionChecker]:
    """The self-collision checker of requests with avoid_collisions (policy 'check'), its disabled pairs
    from ``srdf`` (XML or a file path; None: computed): None where the policy is another or the chain's
    links have no collision geometry. ``say``: a line before each concave mesh is decomposed, and one when
    collision meshes were made convex pieces now (not read from the cache); ``warn``: one line per mesh skipped (``skip_unreadable_meshes``)."""
    if settings.avoid_collisions_policy != "check" or not model.collisions():
        return None
    resolve = functools.partial(resolve_path, package_folders=settings.package_folders)
    checker = CollisionChecker.from_urdf(
        model,
        chain,
        srdf=srdf,
        resolve=resolve,
        skip_unreadable_meshes=settings.skip_unreadable_meshes,
        announce=say,
    )
    report = checker.pieces_report
    for link, filename, why in report.skipped:
        warn(f"collision mesh {filename!r} of link {link!r} skipped (skip_unreadable_meshes): {why}")
    if report.built:
        say(report.line())
    if not checker.link_names:
        return None
    checker.warm_up()
    return checker


def empty_parameter_rule(argv: list[str]) -> Optional[str]:
    """The first ``-p name:=`` without a value among the ROS arguments, else None. rcl cannot parse one (it
    logs its own line and raises); an empty string is written ``-p "name:=''"``."""
    in_ros_args = False
    for i, token in enumerate(argv):
        if token == "--ros-args":
            in_ros_args = True
        elif token == "--":
            in_ros_args = False
        elif in_ros_args and token in ("-p", "--param") and i + 1 < len(argv) and argv[i + 1].endswith(":="):
            return argv[i + 1]
    return None


def refuse_unknown_parameters(given: Iterable[str], declared: Collection[str]) -> list[str]:
    """StartupError naming each parameter of ``given`` (the values ROS holds for the node: ``-p`` rules,
    params-file sections for its name or ``/**``) that is not ``declared``, with the closest declared name:
    rclpy would ignore it silently, and a misspelt ``model_path`` would quietly serve without the network.
    A dotted name (``robot_description_kinematics.panda_arm.kinematics_solver``) is another component's:
    the node declares none, and MoveIt's launch files hand their whole configuration to every node, so
    those are returned (to be logged as ignored), not refused."""
    unknown = [name for name in given if name not in declared]
    others = [name for name in unknown if "." in name]
    mistaken = [name for name in unknown if "." not in name]
    if not mistaken:
        return others
    named = []
    for name in mistaken:
        close = difflib.get_close_matches(name, declared, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "no parameter of the node has a similar name"
        named.append(f"{echo(name)} ({hint})")
    raise StartupError(f"unknown parameter{'s' if len(mistaken) > 1 else ''} {', '.join(named)}")


_TYPE_NAMES = {bool: "bool", int: "integer", float: "float", str: "string"}  # anything else ROS reads is a list


def wrong_type(name: str, value: Any) -> str:
    """Why parameter ``name`` cannot take ``value``, which ROS read as another type than its default's,
    in one line: what it must be and, for a string read as a bool or a number, how to quote it (ROS reads an
    unquoted off, yes or 5 as a bool or a number, on the command line and in params files alike)."""
    default = defaults()[name]
    shown = ("true" if value else "false") if isinstance(value, bool) else echo(value)
    given = f"got the {_TYPE_NAMES.get(type(value), 'list')} {shown}"
    if isinstance(default, bool):
        return f"parameter {name} must be true or false, {given}"
    if isinstance(default, float):
        point = ", written with a point (1.0, not 1)" if isinstance(value, int) and not isinstance(value, bool) else ""
        return f"parameter {name} must be a float{point}, {given}"
    if isinstance(default, int):
        return f"parameter {name} must be an integer, {given}"
    allowed = choices(name)
    must = one_of(allowed) if allowed else "a string"
    if not isinstance(value, (bool, int, float)):  # a list: the quoting advice is for what ROS read as one value
        return f"parameter {name} must be {must}, {given}"
    example = allowed[0] if allowed else shown
    return (
        f"parameter {name} must be {must}, {given}: ROS reads an unquoted true, false, on, off, yes, no or number "
        f"as a bool or a number; quote a string: -p \"{name}:='{example}'\" ({name}: '{example}' in a params file)"
    )
