"""A node's topics on a thread of their own: subscriptions and publishers on a companion node, spun by a
single-threaded executor, so that topic traffic and the node's services never wait for each other.

Why: under rclpy's MultiThreadedExecutor (which the services need, to solve requests side by side), a
subscription with a message waiting whose callback has not started yet leaves its QoS-event waitables in
the wait set; the wait then returns at once with nothing ready, and every pass hands the same unstarted
callback to the thread pool again (rclpy 9: executors.py, the work pass and its wait). The executor's own
thread spins holding the GIL and the pool fills with copies of one callback: above about 50 goals a second
the node commanded 3 to 7 a second, and a 1 kHz flood of goals and joint states took the service's median
round trip to 558 ms. A single-threaded executor runs each callback where it finds it, so that loop
cannot form; the subscriptions' callbacks here are short (the goal thread does the goal's work).

The companion node is ``<name>_topics`` in the owner's namespace; topic names are resolved by the owner
(its ``~/`` and its remappings), so users name and remap topics as the owner's.

``ShutdownWaker``: rclpy's SIGINT handling wakes every executor's wait and shuts the context down, in
that order; an executor whose wait returns in between sees a live context, waits again and never wakes
(with two executors in the process, one SIGINT in two was ignored). A watcher wakes it again once the
context is down.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile


class TopicThread:
    """The topics of ``owner``, on a companion node spun on a thread of its own once ``start`` is called."""

    def __init__(self, owner: Node) -> None:
        self._owner = owner
        # Not the process's global arguments: a `-r __node:=...` meant for the owner must not rename this too.
        self.node = Node(
            f"{owner.get_name()}_topics",
            namespace=owner.get_namespace(),
            context=owner.context,
            use_global_arguments=False,
            start_parameter_services=False,
        )
        self._executor = SingleThreadedExecutor(context=owner.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{owner.get_name()} topics", daemon=True)

    def subscription(self, msg_type: Any, topic: str, callback: Callable[[Any], None], qos: QoSProfile | int) -> Any:
        """A subscription to the owner's ``topic`` (resolved and remapped as the owner's)."""
        return self.node.create_subscription(msg_type, self._owner.resolve_topic_name(topic), callback, qos)

    def publisher(self, msg_type: Any, topic: str, qos: QoSProfile | int) -> Any:
        """A publisher on the owner's ``topic`` (resolved and remapped as the owner's)."""
        return self.node.create_publisher(msg_type, self._owner.resolve_topic_name(topic), qos)

    def start(self) -> None:
        self._thread.start()
        self._waker = ShutdownWaker(self._owner.context, self._executor)

    def close(self) -> None:
        """Stop spinning and destroy the companion node."""
        if hasattr(self, "_waker"):  # started
            self._waker.close()
        self._executor.shutdown()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.node.destroy_node()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:  # the context was shut down under it (Ctrl-C)
            pass
        except _rclpy.RCLError:  # the same, between the executor's check of the context and its wait
            if self._owner.context.ok():
                raise


class ShutdownWaker:
    """A daemon thread that wakes ``executor`` once ``context`` is shut down (checked every ``poll_s``), so
    that its spin ends within ``poll_s`` of a SIGINT or SIGTERM whatever the order rclpy did things in.
    ``close`` ends it (and waits for it), so that no thread of ours touches rclpy while the process exits."""

    def __init__(self, context: Context, executor: Executor, poll_s: float = 0.1) -> None:
        self._closed = threading.Event()

        def watch() -> None:
            while context.ok() and not self._closed.wait(poll_s):
                pass
            if not self._closed.is_set():
                executor.wake()

        self._thread = threading.Thread(target=watch, name="wake on shutdown", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=1.0)
