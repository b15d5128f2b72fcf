"""The node's start-up decisions without a node: which latched topics it waits for, which robot
descriptions it takes (parameter, topic, file, in the README's order), the ROS argument rcl cannot parse, and
the parameter mistakes it names (an unknown name, a value ROS read as another type)."""

import pytest

from ik_neural.ros.settings import NodeSettings, SettingsError
from ik_neural.ros.startup import (
    StartupError,
    description_waits,
    descriptions,
    empty_parameter_rule,
    refuse_unknown_parameters,
    resolve_path,
    wrong_type,
)

pytestmark = pytest.mark.unit
TOPIC = "/robot_description"


def test_the_topics_waited_for_are_those_no_parameter_or_file_gives():
    """The URDF's topic is waited for only without the parameter and urdf_path; the SRDF's only when asked."""
    assert description_waits(NodeSettings()) == {"robot_description": 2.0}
    assert description_waits(NodeSettings(urdf_path="r.urdf")) == {}
    assert description_waits(NodeSettings(robot_description_timeout_s=0.0)) == {}
    srdf_wait = NodeSettings(robot_description_semantic_timeout_s=1.0)
    assert description_waits(srdf_wait) == {"robot_description": 2.0, "robot_description_semantic": 1.0}
    with_files = dict(urdf_path="r.urdf", robot_description_semantic_timeout_s=1.0)
    assert description_waits(NodeSettings(**with_files)) == {"robot_description_semantic": 1.0}
    assert description_waits(NodeSettings(**with_files, srdf_path="r.srdf")) == {}
    assert description_waits(NodeSettings(**with_files, robot_description_semantic="<robot/>")) == {}
    assert description_waits(NodeSettings(**with_files, avoid_collisions_policy="ignore")) == {}


def test_the_urdf_is_the_parameter_then_urdf_path_then_the_topic():
    published = {"robot_description": "<robot name='t'/>", "robot_description_semantic": "<robot name='s'/>"}
    chosen = descriptions(
        NodeSettings(robot_description="<robot name='p'/>", urdf_path="/tmp/r.urdf"), published, TOPIC
    )
    assert (chosen.urdf, chosen.urdf_origin) == ("<robot name='p'/>", "parameter robot_description")
    chosen = descriptions(NodeSettings(urdf_path="/tmp/r.urdf"), published, TOPIC)
    assert (chosen.urdf, chosen.urdf_origin) == ("/tmp/r.urdf", "urdf_path '/tmp/r.urdf'")
    chosen = descriptions(NodeSettings(), published, TOPIC)
    assert (chosen.urdf, chosen.urdf_origin) == ("<robot name='t'/>", "topic robot_description")
    with pytest.raises(StartupError, match=r"no robot description: .* nothing was published on /robot_description"):
        descriptions(NodeSettings(), {}, TOPIC)


def test_the_srdf_is_the_parameter_then_srdf_path_then_the_topic_else_none():
    published = {"robot_description": "<robot/>", "robot_description_semantic": "<robot name='s'/>"}
    both = NodeSettings(robot_description_semantic="<robot name='p'/>", srdf_path="/tmp/r.srdf")
    assert descriptions(both, published, TOPIC)[2:] == ("<robot name='p'/>", "parameter robot_description_semantic")
    path = NodeSettings(srdf_path="/tmp/r.srdf")
    assert descriptions(path, published, TOPIC)[2:] == ("/tmp/r.srdf", "srdf_path '/tmp/r.srdf'")
    topic = descriptions(NodeSettings(), published, TOPIC)[2:]
    assert topic == ("<robot name='s'/>", "topic robot_description_semantic")
    assert descriptions(NodeSettings(), {"robot_description": "<robot/>"}, TOPIC)[2:] == (None, "")


def test_paths_and_parameter_rules():
    assert resolve_path("package://ik_neural/models/panda/panda.urdf").is_file()
    with pytest.raises(
        StartupError, match=r"package 'nosuch_package' is not in the ament index .*set the parameter package_paths"
    ):
        resolve_path("package://nosuch_package/x.urdf")
    assert empty_parameter_rule(["ik_node", "--ros-args", "-p", "model_path:="]) == "model_path:="
    assert empty_parameter_rule(["ik_node", "--ros-args", "-p", "model_path:=''"]) is None
    assert empty_parameter_rule(["ik_node", "-p", "model_path:="]) is None  # not a ROS argument


def test_an_unknown_parameter_is_refused_with_the_closest_declared_name():
    declared = ["model_path", "group_name", "use_sim_time"]
    refuse_unknown_parameters(["model_path", "use_sim_time"], declared)
    with pytest.raises(StartupError, match=r"^unknown parameter 'modle_path' \(did you mean 'model_path'\?\)$"):
        refuse_unknown_parameters(["modle_path", "group_name"], declared)
    with pytest.raises(StartupError) as raised:
        refuse_unknown_parameters(["use_sim_tim", "xyzzy"], declared)
    assert str(raised.value) == (
        "unknown parameters 'use_sim_tim' (did you mean 'use_sim_time'?), "
        "'xyzzy' (no parameter of the node has a similar name)"
    )


def test_dotted_parameters_are_other_components_and_returned_to_be_logged_not_refused():
    # MoveIt's launch files hand their whole configuration to every node; the node declares no dotted name.
    declared = ["model_path", "robot_description"]
    kinematics = "robot_description_kinematics.panda_arm.kinematics_solver"
    assert refuse_unknown_parameters(["model_path", kinematics], declared) == [kinematics]
    with pytest.raises(StartupError, match=r"^unknown parameter 'modle_path' \(did you mean 'model_path'\?\)$"):
        refuse_unknown_parameters(["modle_path", kinematics], declared)


@pytest.mark.parametrize(
    "name, value, expected",
    [
        (
            "avoid_collisions_policy",
            False,  # -p avoid_collisions_policy:=off
            "parameter avoid_collisions_policy must be one of 'check', 'refuse', 'ignore', got the bool false: ROS "
            "reads an unquoted true, false, on, off, yes, no or number as a bool or a number; quote a string: "
            "-p \"avoid_collisions_policy:='check'\" (avoid_collisions_policy: 'check' in a params file)",
        ),
        ("group_name", 5, "parameter group_name must be a string, got the integer 5: ROS reads"),
        ("group_name", 5, "quote a string: -p \"group_name:='5'\" (group_name: '5' in a params file)"),
        ("group_name", ["a", "b"], "parameter group_name must be a string, got the list ['a', 'b']"),
        ("default_timeout_s", 1, "parameter default_timeout_s must be a float, written with a point (1.0, not 1), got"),
        ("default_timeout_s", "0.1", "parameter default_timeout_s must be a float, got the string '0.1'"),
        ("executor_threads", 2.0, "parameter executor_threads must be an integer, got the float 2.0"),
        ("seed_first", "maybe", "parameter seed_first must be true or false, got the string 'maybe'"),
        ("model_path", True, "parameter model_path must be a string, got the bool true"),
    ],
)
def test_a_value_of_another_type_says_what_the_parameter_takes(name, value, expected):
    assert expected in wrong_type(name, value)


def test_package_uris_resolve_in_package_paths_after_the_ament_index(tmp_path):
    # A workspace's src folder holding my_description/ (a package not installed), and a folder that is a package.
    (tmp_path / "src" / "my_description" / "meshes").mkdir(parents=True)
    (tmp_path / "other_description").mkdir()
    folders = (tmp_path / "nowhere", tmp_path / "src", tmp_path / "other_description")
    uri = "package://my_description/meshes/link1.stl"
    assert resolve_path(uri, folders) == tmp_path / "src" / "my_description" / "meshes" / "link1.stl"
    assert resolve_path("package://other_description/a.stl", folders) == tmp_path / "other_description" / "a.stl"
    assert resolve_path("package://ik_neural/models/panda/panda.urdf", folders).is_file()  # its own first
    with pytest.raises(StartupError) as refused:
        resolve_path("package://missing_description/a.stl", folders)
    message = str(refused.value)
    assert "package 'missing_description' is not in the ament index" in message and str(tmp_path / "src") in message
    assert message.endswith("set the parameter package_paths to the folder that holds 'missing_description'/")


def test_package_paths_must_be_existing_folders(tmp_path):
    assert NodeSettings(package_paths=f"{tmp_path}::{tmp_path}").package_folders == (tmp_path, tmp_path)
    with pytest.raises(
        SettingsError, match=r"package_paths must be folders that exist, separated by ':' \('/nowhere' is not one\)"
    ):
        NodeSettings(package_paths=f"{tmp_path}:/nowhere")
