"""`make env`'s activation script gives a plain shell the package's Python API and commands."""

import os
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
        env=clean_shell_environment(), check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    activate = result.stdout.strip().splitlines()[-1]
    assert activate.endswith("/activate.sh") and Path(activate).is_file()

    script = f"""
        source '{activate}'
        python -c 'import ik_neural, rclpy; from moveit_msgs.srv import GetPositionIK; print(ik_neural.__file__)'
        ik_bench fk --robot rrr_3dof --batch-size 8
    """
    shell = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path, env=clean_shell_environment(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    lines = shell.stdout.splitlines()
    assert Path(lines[0]) == REPO / "ik_neural" / "__init__.py"
    assert lines[1].startswith("FK timing: rrr_3dof (3 DoF)")
    assert any(line.startswith("numpy float64, one pose") for line in lines)
