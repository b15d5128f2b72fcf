"""`make env`'s activation script gives a plain shell the package's Python API and commands; `make run`
serves the params file asked for (ROBOT, CONFIG) and hands NODE_ARGS to the node verbatim."""

import os
import signal
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def clean_shell_environment() -> dict[str, str]:
    """A login-like environment: none of this test run's venv, ROS or PYTHONPATH settings."""
    venv = os.environ.get("VIRTUAL_ENV", "\0")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(venv))
    keep = ("HOME", "IK_NEURAL_ENV_CACHE", "XDG_CACHE_HOME")
    return {"PATH": path, **{k: os.environ[k] for k in keep if k in os.environ}}


def test_make_env_prints_a_script_that_a_plain_shell_can_source(tmp_path):
    result = subprocess.run(
        ["make", "-s", "-C", str(REPO), "env"],
        env=clean_shell_environment(),
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    activate = result.stdout.strip().splitlines()[-1]
    assert activate.endswith("/activate.sh") and Path(activate).is_file()

    script = f"""
        source '{activate}'
        python -c 'import ik_neural, rclpy; from moveit_msgs.srv import GetPositionIK; print(ik_neural.__file__)'
        ik_bench fk --robot rrr_3dof --batch-size 8
    """
    shell = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=clean_shell_environment(),
        check=True,
        capture_output=True,
        text=True,
    )
    lines = shell.stdout.splitlines()
    assert Path(lines[0]) == REPO / "ik_neural" / "__init__.py"
    assert lines[1].startswith("FK timing: rrr_3dof (3 DoF)")
    assert any(line.startswith("numpy float64, one pose") for line in lines)


def make_run_environment() -> dict[str, str]:
    """This run's environment (its ROS_DOMAIN_ID and loopback settings, conftest.py, reach the node) without
    a ROBOT or CONFIG of the shell's, which make would take as its own."""
    return {k: v for k, v in os.environ.items() if k not in ("ROBOT", "CONFIG")}


def start_make_run(*variables: str) -> subprocess.Popen:
    """`make run VAR=...`, as a user starts it, in its own process group (for stop_make_run)."""
    return subprocess.Popen(
        ["make", "-s", "-C", str(REPO), "run", *variables],
        env=make_run_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop_make_run(make: subprocess.Popen) -> str:
    """Ctrl-C, as a user stops it; its log."""
    if make.poll() is None:
        os.killpg(make.pid, signal.SIGINT)
    try:
        return make.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        os.killpg(make.pid, signal.SIGKILL)
        return make.communicate()[0]


def test_make_run_passes_node_args_verbatim(rclpy_context):
    """`make run NODE_ARGS="-r ~/compute_ik:=/compute_ik ..."`: bash must not expand the `~` (it did: the remap
    then matched nothing and the node still served /ik_neural/compute_ik), and quotes group words as a shell does."""
    from moveit_msgs.srv import GetPositionFK, GetPositionIK
    from rclpy.node import Node

    namespace = f"/ik_make_run_{os.getpid()}"
    node_args = (
        f"-r __ns:={namespace} -r ~/compute_ik:=/compute_ik -r ~/compute_fk:={namespace}/compute_fk "
        f"-p robot_description_timeout_s:=0.0 -p \"group_name:='panda arm'\""
    )
    make = start_make_run(f"NODE_ARGS={node_args}")
    helper = Node("ik_make_run_test", context=rclpy_context)
    try:
        ik_client = helper.create_client(GetPositionIK, "/compute_ik")
        fk_client = helper.create_client(GetPositionFK, f"{namespace}/compute_fk")
        assert ik_client.wait_for_service(timeout_sec=120.0) and fk_client.wait_for_service(timeout_sec=30.0), (
            "the remapped services were not discovered"
        )
        served = helper.get_service_names_and_types()
        assert f"{namespace}/ik_neural/compute_ik" not in {name for name, _ in served}
    finally:
        helper.destroy_node()
        log = stop_make_run(make)
    assert f"serving /compute_ik (moveit_msgs/srv/GetPositionIK) and {namespace}/compute_fk" in log, log
    assert "for group 'panda arm'" in log and "Traceback" not in log, log


def _tip_pose_answer(rclpy_context, fk_service: str, joints: list[str]):
    """GetPositionFK of the tip tool0 with these joints at 0.1 rad: the node's answer. The request is sent
    again until answered, as ik_client does: Fast DDS can match a new client's reply path late and lose one."""
    from moveit_msgs.srv import GetPositionFK
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    helper = Node("ik_make_run_test", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(helper)
    try:
        client = helper.create_client(GetPositionFK, fk_service)
        assert client.wait_for_service(timeout_sec=120.0), f"{fk_service} was not discovered"
        request = GetPositionFK.Request(fk_link_names=["tool0"])
        request.robot_state.joint_state.name = joints
        request.robot_state.joint_state.position = [0.1] * len(joints)
        for _ in range(15):
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=2.0)
            if future.done():
                return future.result()
        raise AssertionError(f"{fk_service}: no answer in 30 s")
    finally:
        executor.shutdown()
        helper.destroy_node()


def test_make_run_serves_a_shipped_robot_or_a_params_file_of_ones_own(rclpy_context, tmp_path):
    """`make run ROBOT=rrr_3dof` serves config/rrr_3dof.yaml and `make run CONFIG=mine.yaml` that file, each
    with nothing of the Panda's underneath (NODE_ARGS="--params-file mine.yaml", the only way before, served a
    mix: the Panda's config first, then what mine.yaml set)."""
    namespace = f"/ik_make_run_{os.getpid()}"
    fast = "-p robot_description_timeout_s:=0.0"
    make = start_make_run("ROBOT=rrr_3dof", f"NODE_ARGS=-r __ns:={namespace}/shipped {fast}")
    try:
        answer = _tip_pose_answer(
            rclpy_context, f"{namespace}/shipped/ik_neural/compute_fk", ["joint_1", "joint_2", "joint_3"]
        )
    finally:
        log = stop_make_run(make)
    assert answer.error_code.val == answer.error_code.SUCCESS, log
    assert "for group 'manipulator': base_link -> tool0, 3 joints" in log, log

    models = REPO / "models" / "planar_2link"
    mine = tmp_path / "my robot.yaml"  # a space: the path reaches the node as one word
    mine.write_text(
        "/**:\n  ros__parameters:\n"
        f"    urdf_path: {models / 'planar_2link.urdf'}\n"
        f"    model_path: {models / 'ik_network.pt'}\n"
        "    group_name: my_arm\n"
    )
    make = start_make_run(f"CONFIG={mine}", f"NODE_ARGS=-r __ns:={namespace}/mine {fast}")
    try:
        answer = _tip_pose_answer(rclpy_context, f"{namespace}/mine/ik_neural/compute_fk", ["joint_1", "joint_2"])
    finally:
        log = stop_make_run(make)
    assert answer.error_code.val == answer.error_code.SUCCESS, log
    assert "for group 'my_arm': base_link -> tool0, 2 joints" in log and "panda" not in log, log


def test_make_run_names_what_is_wrong_with_robot_or_config(tmp_path):
    def refused(*variables: str) -> str:
        result = subprocess.run(
            ["make", "-s", "-C", str(REPO), "run", *variables],
            env=make_run_environment(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode != 0 and result.stdout == "", result
        return result.stderr.splitlines()[0]

    assert refused("ROBOT=ur5") == (
        "make run: ROBOT=ur5 is not a shipped robot; they are: chain10_003, chain20_003, chain7_003, "
        "dh6_experiments, dh6_slides, panda, planar_2link, rrr_3dof, so101, ur5e (or CONFIG=path/to/params.yaml)"
    )
    missing = tmp_path / "missing.yaml"
    assert refused(f"CONFIG={missing}") == f"make run: CONFIG={missing} is not a file"
    assert refused("ROBOT=ur5e", f"CONFIG={missing}") == (
        "make run: give CONFIG (a params file) or ROBOT (a shipped robot), not both"
    )
