"""Quality-of-service profiles shared by the node and its clients."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# ROS's default service QoS keeps the last 10 samples. All clients of a service share its request topic and
# its response topic (each client takes every response and keeps its own), so with several busy clients on
# a loaded machine a request or a response could be pushed out of a reader's history before it was taken:
# measured here, 1 to 3 responses lost in 4000 from 4 clients. The node and ik_client keep 1000; other
# clients under such load should too. Reliable and volatile, as the default.
SERVICE_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)

# Goal poses: only the newest matters. The reader keeps one; the node's goal thread takes the newest when
# it is free (goal_stream.LatestGoal), so a stale goal is dropped, never commanded later.
GOAL_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)

# Joint commands and their status: every one matters to a robot following them (two commands one step
# apart each, never a lost one between). A history of 100, so a subscriber that falls behind for a moment
# on a loaded machine still gets them all; reliable, as ROS's default.
COMMAND_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)

# The robot description as robot_state_publisher latches it.
DESCRIPTION_QOS = QoSProfile(
    depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
)
