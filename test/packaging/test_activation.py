"""`make env`'s activation script gives a plain shell the package's Python API and commands; `make run`
hands NODE_ARGS to the node verbatim."""

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
    # This run's environment: its ROS_DOMAIN_ID and loopback settings (conftest.py) reach the node.
    make = subprocess.Popen(
        ["make", "-s", "-C", str(REPO), "run", f"NODE_ARGS={node_args}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
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
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)
        try:
            log = make.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            log = make.communicate()[0]
    assert f"serving /compute_ik (moveit_msgs/srv/GetPositionIK) and {namespace}/compute_fk" in log, log
    assert "for group 'panda arm'" in log and "Traceback" not in log, log
