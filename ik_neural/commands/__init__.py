"""The console commands' shared parts (``ik_train``, ``ik_bench``, ``ik_client``; ``ik_node`` is
``ik_neural.ros.node``)."""
