"""Test-wide settings. ROS fixtures only; rclpy is imported lazily, so tests that do not use ROS never need it.

Every test run gets its own ROS domain and keeps DDS traffic on loopback. These variables must be set before
rclpy (and so the middleware) is first imported, which is why they are set here at import time.
"""

import os
import sys
from pathlib import Path

import pytest

# The tests are grouped in folders (unit, ros, packaging); the references they share live here.
TEST_ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(TEST_ROOT))

# Fast DDS maps a domain id to UDP ports; 1..101 is the range that is valid there and stays clear of
# Linux's ephemeral ports. Derived from the PID, so two test runs at once (two checkouts, CI and a
# developer) rarely share a domain; subprocesses started by a test inherit it.
ROS_DOMAIN_ID = 1 + os.getpid() % 101
os.environ["ROS_DOMAIN_ID"] = str(ROS_DOMAIN_ID)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
# Set by the environment's activate.sh; the checkout's copy otherwise (e.g. under colcon test).
_profile = str(Path(__file__).resolve().parent.parent / "env" / "fastdds_loopback.xml")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", _profile)


@pytest.fixture(scope="module")
def module_context():
    """An initialised rclpy Context shared by one test module's nodes, shut down after the module."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


@pytest.fixture
def rclpy_context():
    """A fresh, initialised rclpy Context for one test, shut down afterwards."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


TEST_GROUPS = {
    "unit": "no ROS graph: kinematics, solver, network, training, benchmarks, request handling (seconds)",
    "ros": "real rclpy nodes over a loopback ROS graph, in one process and across processes",
    "packaging": "colcon builds of the package and the environment's activation",
}


def pytest_configure(config):
    for group, what in TEST_GROUPS.items():
        config.addinivalue_line("markers", f"{group}: {what}")


def pytest_collection_modifyitems(config, items):
    """Mark every test by its folder (unit, ros, packaging): ``-m unit`` runs the fast part alone."""
    for item in items:
        group = Path(str(item.fspath)).resolve().relative_to(TEST_ROOT).parts[0]
        item.add_marker(getattr(pytest.mark, group))
