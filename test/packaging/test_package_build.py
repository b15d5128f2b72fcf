"""The package builds with colcon as a ROS 2 ament_python package, and works from its install space."""

import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def colcon(workspace: Path, verb: str, *args: str) -> None:
    subprocess.run(
        [
            "colcon",
            "--log-base",
            str(workspace / "log"),
            verb,
            "--base-paths",
            str(REPO),
            "--packages-select",
            "ik_neural",
            "--build-base",
            str(workspace / "build"),
            "--install-base",
            str(workspace / "install"),
            *args,
        ],
        cwd=workspace,
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("colcon_ws")
    colcon(workspace, "build")
    return workspace


@pytest.fixture(scope="module")
def install_space(workspace) -> Path:
    return workspace / "install"


def installed_env(install: Path) -> dict[str, str]:
    """The environment of a command that sees the installed package only, not the checkout."""
    site_packages = next((install / "ik_neural" / "lib").glob("python3*/site-packages"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(site_packages)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p) != REPO]
    )
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([str(install / "ik_neural"), env.get("AMENT_PREFIX_PATH", "")])
    return env


def run_installed(install: Path, *command: str) -> str:
    """Run a command seeing the installed package only, from outside the checkout."""
    result = subprocess.run(
        command, cwd=install, env=installed_env(install), check=True, capture_output=True, text=True
    )
    return result.stdout


def test_install_space_has_the_ros_package_files(install_space):
    share = install_space / "ik_neural" / "share"
    assert (share / "ament_index" / "resource_index" / "packages" / "ik_neural").is_file()
    assert (share / "ik_neural" / "package.xml").read_text() == (REPO / "package.xml").read_text()
    shipped = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "models").rglob("*") if p.is_file())
    installed = sorted(
        p.relative_to(share / "ik_neural").as_posix()
        for p in (share / "ik_neural" / "models").rglob("*")
        if p.is_file()
    )
    assert installed == shipped
    for folder in ("launch", "config"):
        shipped = sorted(p.name for p in (REPO / folder).iterdir() if p.is_file())
        assert shipped and sorted(p.name for p in (share / "ik_neural" / folder).iterdir()) == shipped


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root: (size, mtime in ns)."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_installed_node_serves_the_installed_client(install_space, tmp_path):
    """`ros2 run ik_neural ik_node --ros-args --params-file <share>/config/panda.yaml`, and ik_client.

    With an empty per-user cache the node compiles nothing (issue 14): the build prebuilt its kernels,
    the first start copies them into the cache, and the requests that follow need no other; nothing is
    written into the install (so a read-only one starts as fast)."""
    lib, share = install_space / "ik_neural" / "lib" / "ik_neural", install_space / "ik_neural" / "share" / "ik_neural"
    site_packages = next((install_space / "ik_neural" / "lib").glob("python3*/site-packages"))
    (prebuilt,) = (site_packages / "ik_neural" / "kernels" / "prebuilt").iterdir()
    namespace = f"/ik_build_test_{os.getpid()}"
    env = {k: v for k, v in installed_env(install_space).items() if k != "NUMBA_CACHE_DIR"}
    node_cache, client_cache = tmp_path / "node_cache", tmp_path / "client_cache"
    install_before = _tree(install_space)
    node = subprocess.Popen(
        [
            str(lib / "ik_node"),
            "--ros-args",
            "--params-file",
            str(share / "config" / "panda.yaml"),
            "-r",
            f"__ns:={namespace}",
            "-p",
            "robot_description_timeout_s:=0.0",
        ],
        cwd=tmp_path,
        env={**env, "XDG_CACHE_HOME": str(node_cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        client = subprocess.run(
            [
                str(lib / "ik_client"),
                "--service",
                f"{namespace}/ik_neural/compute_ik",
                "--count",
                "20",
                "--group",
                "panda_arm",
                "--wait-s",
                "60",
            ],
            cwd=tmp_path,
            env={**env, "XDG_CACHE_HOME": str(client_cache)},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.killpg(node.pid, signal.SIGINT)
        log = node.communicate(timeout=30)[0]
    assert client.returncode == 0, client.stdout + client.stderr
    assert "20 answered (SUCCESS 20), 0 lost, 0 wrong" in client.stdout
    # The model and URDF came from the install space's share directory (package:// URIs).
    assert "network package://ik_neural/models/panda/ik_network.pt" in log and node.returncode == 0, log
    assert "compiling the numba kernels" not in log, log
    (key_folder,) = (node_cache / "ik_neural" / "numba").iterdir()
    assert key_folder.name == prebuilt.name
    (cached,) = key_folder.iterdir()
    assert sorted(p.name for p in cached.iterdir()) == sorted(p.name for p in prebuilt.iterdir())
    assert _tree(install_space) == install_before


def test_installed_package_loads_robots_from_its_share_directory(install_space):
    out = run_installed(
        install_space,
        sys.executable,
        "-c",
        "import ik_neural; from ik_neural import load_robot, list_robots;"
        "print(ik_neural.__file__); print(load_robot('panda').urdf_path); print(load_robot('panda').network.path);"
        "print(len(list_robots()))",
    )
    module_file, urdf_path, network_path, count = out.split()
    assert Path(module_file).is_relative_to(install_space)
    assert Path(urdf_path) == install_space / "ik_neural/share/ik_neural/models/panda/panda.urdf"
    assert Path(network_path) == install_space / "ik_neural/share/ik_neural/models/panda/ik_network.pt"
    assert int(count) == len([p for p in (REPO / "models").glob("*/robot.yaml")])


def test_console_script_is_where_ros2_run_looks(install_space):
    # `ros2 run ik_neural ik_bench` runs <prefix>/lib/ik_neural/ik_bench.
    bench = install_space / "ik_neural" / "lib" / "ik_neural" / "ik_bench"
    out = run_installed(install_space, str(bench), "fk", "--robot", "planar_2link", "--batch-size", "16")
    assert "FK timing: planar_2link (2 DoF)" in out
    assert "numpy float64, one pose" in out
    train = install_space / "ik_neural" / "lib" / "ik_neural" / "ik_train"
    assert "--urdf URDF" in run_installed(install_space, str(train), "--help")


def test_colcon_test_runs_the_pytest_suite(workspace):
    # One selected test keeps this quick; what matters is that colcon runs pytest (not unittest,
    # its fallback when it cannot tell the package uses pytest) and records the result.
    colcon(workspace, "test", "--pytest-args", "-p", "no:cacheprovider", "-k", "test_chain_contents")
    suite = ET.parse(workspace / "build" / "ik_neural" / "pytest.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "0")
    assert suite.find("testcase").get("name") == "test_chain_contents"
