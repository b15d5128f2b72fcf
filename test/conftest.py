"""Test-wide settings. ROS fixtures only; rclpy is imported lazily, so tests that do not use ROS never need it.

Every test run gets its own ROS domain and keeps DDS traffic on loopback. These variables must be set before
rclpy (and so the middleware) is first imported, which is why they are set here at import time.
"""

import os
from pathlib import Path

import pytest

# Fast DDS maps a domain id to UDP ports; 1..101 is the range that is valid there and stays clear of
# Linux's ephemeral ports. Derived from the PID, so two test runs at once (two checkouts, CI and a
# developer) rarely share a domain; subprocesses started by a test inherit it.
ROS_DOMAIN_ID = 1 + os.getpid() % 101
os.environ['ROS_DOMAIN_ID'] = str(ROS_DOMAIN_ID)
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
# Set by the environment's activate.sh; the checkout's copy otherwise (e.g. under colcon test).
_profile = str(Path(__file__).resolve().parent.parent / 'env' / 'fastdds_loopback.xml')
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', _profile)


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
