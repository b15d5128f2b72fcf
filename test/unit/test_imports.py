"""What importing a module costs: only what it uses (design.md §2; issue 10 item 8)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "modules",
    [
        "ik_neural",
        "ik_neural.geometry, ik_neural.joint_bounds, ik_neural.urdf_model",
        "ik_neural.chain, ik_neural.sampling, ik_neural.solver, ik_neural.robots",
        "ik_neural.ros.messages",
    ],
)
def test_no_torch_where_no_network_is_loaded(modules):
    code = (
        f"import sys, {modules}; from ik_neural.robots import robot_chain; robot_chain('panda');"
        "print(sorted(m for m in ('torch', 'rclpy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_the_public_api_is_there_on_first_use():
    code = (
        "import sys, ik_neural; assert 'torch' not in sys.modules;"
        "from ik_neural import KinematicChain, IKSolver, IKResult, BatchResult, load_network, load_robot, list_robots;"
        "assert 'torch' not in sys.modules; print(sorted(ik_neural.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "IKSolver" in out and "load_network" in out


def test_predicting_and_solving_with_a_shipped_network_never_imports_torch():
    """The node's path (issue 14): a format-3 model file runs from its weights entry; torch is ~220 MB."""
    code = (
        "import sys, numpy as np; import ik_neural.ros.node; from ik_neural import IKSolver, load_robot;"
        "robot = load_robot('panda'); solver = IKSolver(robot.chain, network=robot.network); solver.warm_up();"
        "T = robot.chain.forward(robot.chain.middle + 0.3);"
        "assert solver.solve(T).success and robot.network.predict(np.stack([T] * 100)).shape == (100, 7);"
        "print(sorted(m for m in ('torch', 'matplotlib', 'ik_neural.training', 'ik_neural.torch_network') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
