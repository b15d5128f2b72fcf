"""The ROS side of the environment: moveit_msgs' GetPositionIK and GetPositionFK are importable and are the
same types as MoveIt's (same RIHS01 type hashes), and GetPositionIK travels between rclpy nodes over loopback,
in one process and across two.
"""

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# RIHS01 hash of moveit_msgs/srv/GetPositionIK as the real moveit_msgs 2.6.0 defines it. Measured by
# building the unmodified moveit_msgs 2.6.0 sources (with object_recognition_msgs 2.0.0 and octomap_msgs
# 2.0.0, their ros2 branches) with colcon against the same ROS 2 Kilted wheels as this environment, and
# reading type_hashes[0] of rosidl_generator_type_description/moveit_msgs/srv/GetPositionIK.json.
# The compat copy's generated GetPositionIK.json was identical to the real one, byte for byte after
# JSON normalisation (every referenced type's description and hash).
MOVEIT_MSGS_2_6_GET_POSITION_IK_HASH = "RIHS01_054ed6f6f71a09b01b5246c5d80beb4dacc6f444f58df039849c76292933e9e3"
# From the same file: the hashes of the request and response messages, which DDS discovery carries.
MOVEIT_MSGS_2_6_REQUEST_HASH = "RIHS01_2fc6ac96ee9a8523466c443f06e7c76c47bd3e6b8698edc517ea82cf0b56e747"
MOVEIT_MSGS_2_6_RESPONSE_HASH = "RIHS01_e80acd352080518d3498cc09f4dd84e0303e31128237de11d4019c8a5937b19f"

# RIHS01 hashes of moveit_msgs/srv/GetPositionFK, its request and its response, as moveit_msgs 2.6.0
# defines them. A RIHS01 hash depends only on the interface definitions, so these were measured without a
# full build: the unmodified 2.6.0 srv/GetPositionFK.srv and every moveit_msgs type it uses (git show
# 2.6.0:..., with object_recognition_msgs 2.0.0's ObjectType.msg) converted to .idl by rosidl_adapter, then
# rosidl_generator_type_description.generate_type_hash over them, against the type descriptions of this
# environment's std_msgs, geometry_msgs, sensor_msgs, shape_msgs, trajectory_msgs, builtin_interfaces and
# service_msgs (the Kilted wheels). The same procedure gives exactly the three GetPositionIK hashes above,
# which came from the full colcon build.
MOVEIT_MSGS_2_6_GET_POSITION_FK_HASH = "RIHS01_2f16ec361a135d84b85a29385abeb9eeb025e39c09038bd6b2826645edc7edad"
MOVEIT_MSGS_2_6_FK_REQUEST_HASH = "RIHS01_03282430a957ca7dd7e8a84b4f13225c39c467ec79efb77d9554e7b8d4cd6055"
MOVEIT_MSGS_2_6_FK_RESPONSE_HASH = "RIHS01_a1b88541679d04b392399fb4633adb55afaea22d3d5c38c79ad65f7cae6f4f2c"

# service -> (its hash, its request's, its response's), moveit_msgs 2.6.0.
MOVEIT_MSGS_2_6_HASHES = {
    "GetPositionIK": (
        MOVEIT_MSGS_2_6_GET_POSITION_IK_HASH,
        MOVEIT_MSGS_2_6_REQUEST_HASH,
        MOVEIT_MSGS_2_6_RESPONSE_HASH,
    ),
    "GetPositionFK": (
        MOVEIT_MSGS_2_6_GET_POSITION_FK_HASH,
        MOVEIT_MSGS_2_6_FK_REQUEST_HASH,
        MOVEIT_MSGS_2_6_FK_RESPONSE_HASH,
    ),
}

SECONDS_TO_DISCOVER = 30.0
SECONDS_TO_ANSWER = 30.0


def _service_name(tag):
    # Unique per process and test, so parallel runs sharing a domain by chance never answer each other.
    return f"/ik_neural_env_test_{os.getpid()}_{tag}/compute_ik"


def _moveit_msgs_share():
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("moveit_msgs"))


def _is_compat_copy(share):
    description = ET.parse(share / "package.xml").getroot().findtext("description") or ""
    return description.startswith("Subset of moveit_msgs")


def _expect_moveit_2_6(share):
    """True where the installed moveit_msgs must be 2.6.0's types: the compat copy, or a real 2.6.0."""
    version = ET.parse(share / "package.xml").getroot().findtext("version")
    return _is_compat_copy(share) or version == "2.6.0"


def _fill_response(response):
    """What every server in these tests answers."""
    response.error_code.val = response.error_code.SUCCESS
    response.error_code.message = "solved by the test server"
    response.error_code.source = "test_ros_env"
    response.solution.joint_state.name = ["joint_a", "joint_b", "joint_c"]
    response.solution.joint_state.position = [0.25, -1.5, 3.0]
    return response


def _make_request(GetPositionIK):
    request = GetPositionIK.Request()
    request.ik_request.group_name = "arm"
    request.ik_request.ik_link_name = "tool0"
    request.ik_request.pose_stamped.header.frame_id = "base_link"
    request.ik_request.pose_stamped.pose.position.x = 0.4
    request.ik_request.pose_stamped.pose.orientation.w = 1.0
    request.ik_request.timeout.sec = 0
    request.ik_request.timeout.nanosec = 5_000_000
    return request


def _check_response(error_code_val, message, source, names, positions):
    from moveit_msgs.msg import MoveItErrorCodes

    assert error_code_val == MoveItErrorCodes.SUCCESS == 1
    assert message == "solved by the test server"
    assert source == "test_ros_env"
    assert list(names) == ["joint_a", "joint_b", "joint_c"]
    assert list(positions) == [0.25, -1.5, 3.0]


def test_get_position_ik_imports_with_moveit_2_6_fields():
    from moveit_msgs.msg import MoveItErrorCodes
    from moveit_msgs.srv import GetPositionIK

    request_fields = GetPositionIK.Request().ik_request.get_fields_and_field_types()
    assert request_fields["timeout"] == "builtin_interfaces/Duration"
    assert request_fields["robot_state"] == "moveit_msgs/RobotState"
    response = GetPositionIK.Response()
    assert response.solution.joint_state.name == []
    assert {"val", "message", "source"} <= set(response.error_code.get_fields_and_field_types())
    assert (MoveItErrorCodes.NO_IK_SOLUTION, MoveItErrorCodes.INVALID_GROUP_NAME) == (-31, -15)


@pytest.mark.parametrize("service", sorted(MOVEIT_MSGS_2_6_HASHES))
def test_type_hashes_are_moveit_2_6(service):
    share = _moveit_msgs_share()
    description = json.loads((share / "srv" / f"{service}.json").read_text())
    hashes = {entry["type_name"]: entry["hash_string"] for entry in description["type_hashes"]}
    installed = hashes[f"moveit_msgs/srv/{service}"]
    if _expect_moveit_2_6(share):
        expected = MOVEIT_MSGS_2_6_HASHES[service]
        assert (
            installed,
            hashes[f"moveit_msgs/srv/{service}_Request"],
            hashes[f"moveit_msgs/srv/{service}_Response"],
        ) == expected
    else:
        # Another real moveit_msgs release: a different type by design; it only has to be a type hash.
        assert installed.startswith("RIHS01_")


def test_get_position_fk_imports_with_moveit_2_6_fields():
    from moveit_msgs.srv import GetPositionFK

    request_fields = GetPositionFK.Request.get_fields_and_field_types()
    assert request_fields == {
        "header": "std_msgs/Header",
        "fk_link_names": "sequence<string>",
        "robot_state": "moveit_msgs/RobotState",
    }
    response_fields = GetPositionFK.Response.get_fields_and_field_types()
    assert response_fields == {
        "pose_stamped": "sequence<geometry_msgs/PoseStamped>",
        "fk_link_names": "sequence<string>",
        "error_code": "moveit_msgs/MoveItErrorCodes",
    }


def test_round_trip_in_one_process(rclpy_context):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from moveit_msgs.srv import GetPositionIK

    received = []

    def serve(request, response):
        received.append(request)
        return _fill_response(response)

    name = _service_name("in_process")
    server_node = Node("ik_env_test_server", context=rclpy_context)
    client_node = Node("ik_env_test_client", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    try:
        server_node.create_service(GetPositionIK, name, serve)
        client = client_node.create_client(GetPositionIK, name)
        executor.add_node(server_node)
        executor.add_node(client_node)
        assert client.wait_for_service(timeout_sec=SECONDS_TO_DISCOVER), "service not discovered"

        # What discovery advertises: the request and response types' hashes, on rq/...Request and
        # rr/...Reply (the DDS topics of the service).
        wire = {}
        for topic in (f"rq{name}Request", f"rr{name}Reply"):
            endpoints = client_node.get_publishers_info_by_topic(
                topic, no_mangle=True
            ) + client_node.get_subscriptions_info_by_topic(topic, no_mangle=True)
            wire[topic[:2]] = {str(endpoint.topic_type_hash) for endpoint in endpoints}

        future = client.call_async(_make_request(GetPositionIK))
        executor.spin_until_future_complete(future, timeout_sec=SECONDS_TO_ANSWER)
        assert future.done(), "no answer in time"
        response = future.result()
    finally:
        executor.shutdown()
        client_node.destroy_node()
        server_node.destroy_node()

    _check_response(
        response.error_code.val,
        response.error_code.message,
        response.error_code.source,
        response.solution.joint_state.name,
        response.solution.joint_state.position,
    )
    assert len(received) == 1
    ik = received[0].ik_request
    assert (ik.group_name, ik.ik_link_name, ik.pose_stamped.header.frame_id) == ("arm", "tool0", "base_link")
    assert (ik.pose_stamped.pose.position.x, ik.pose_stamped.pose.orientation.w) == (0.4, 1.0)
    assert (ik.timeout.sec, ik.timeout.nanosec) == (0, 5_000_000)
    if _expect_moveit_2_6(_moveit_msgs_share()):
        assert wire == {"rq": {MOVEIT_MSGS_2_6_REQUEST_HASH}, "rr": {MOVEIT_MSGS_2_6_RESPONSE_HASH}}
    else:
        assert all(wire.values())


# Runs in a separate Python process: calls the service once, prints the answer as JSON.
_CLIENT_SCRIPT = r"""
import json, sys
import rclpy
from rclpy.node import Node
from moveit_msgs.srv import GetPositionIK

service, discover_s, answer_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rclpy.init()
node = Node('ik_env_test_subprocess_client')
client = node.create_client(GetPositionIK, service)
if not client.wait_for_service(timeout_sec=discover_s):
    sys.exit('service not discovered')
request = GetPositionIK.Request()
request.ik_request.group_name = 'arm'
future = client.call_async(request)
rclpy.spin_until_future_complete(node, future, timeout_sec=answer_s)
if not future.done():
    sys.exit('no answer in time')
r = future.result()
print(json.dumps({
    'val': r.error_code.val, 'message': r.error_code.message, 'source': r.error_code.source,
    'names': list(r.solution.joint_state.name), 'positions': list(r.solution.joint_state.position),
}))
node.destroy_node()
rclpy.shutdown()
"""


def test_round_trip_across_processes(rclpy_context):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from moveit_msgs.srv import GetPositionIK

    groups = []

    def serve(request, response):
        groups.append(request.ik_request.group_name)
        return _fill_response(response)

    name = _service_name("subprocess")
    server_node = Node("ik_env_test_server", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    client = None
    try:
        server_node.create_service(GetPositionIK, name, serve)
        executor.add_node(server_node)
        # The child inherits this run's ROS_DOMAIN_ID and loopback settings (conftest.py).
        client = subprocess.Popen(
            [sys.executable, "-c", _CLIENT_SCRIPT, name, str(SECONDS_TO_DISCOVER), str(SECONDS_TO_ANSWER)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + SECONDS_TO_DISCOVER + SECONDS_TO_ANSWER + 30.0
        # Serve until the client has its answer and exits.
        while client.poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        if client.poll() is None:
            client.kill()
        out, err = client.communicate(timeout=30)
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait(timeout=30)
        executor.shutdown()
        server_node.destroy_node()

    assert client.returncode == 0, f"client process failed ({client.returncode}): {err}"
    answer = json.loads(out.strip().splitlines()[-1])
    _check_response(answer["val"], answer["message"], answer["source"], answer["names"], answer["positions"])
    assert groups == ["arm"]
