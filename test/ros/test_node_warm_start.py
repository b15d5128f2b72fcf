"""The node's start-up leaves nothing to compile: after it serves, a goal stream (with its collision check)
and compute_ik / compute_fk requests reach no numba kernel for a type it has not compiled (or loaded).

Run in a fresh process, as a user's node is: numba's compiled signatures are per process, and a test process
that ran other tests first may hold some of them already. On a cold kernel cache a missed signature costs
seconds of compiling inside the first goal's step (a 100 Hz stream then falls far behind).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

TEST_ROOT = Path(__file__).resolve().parents[1]

# Starts the Panda node in a graph (collision checking on, as default), records every kernel's compiled
# signatures, follows 40 goals at 100 Hz with a robot echoing the commands, answers one compute_ik and one
# compute_fk, and prints the kernels that gained a signature, with how many commands and answers came.
CHILD = """
import json, time
import numba, rclpy
from rclpy.context import Context
from sensor_msgs.msg import JointState
import test_node as t
from ik_neural.kernels import dls, geometry, kinematics, mlp, tracking

def signatures():
    return {
        f"{module.__name__}.{name}": len(kernel.signatures)
        for module in (dls, geometry, kinematics, mlp, tracking)
        for name, kernel in vars(module).items()
        if isinstance(kernel, numba.core.registry.CPUDispatcher)
    }

context = Context()
rclpy.init(context=context)
graph = t._Graph(context, t._namespace("warm"), robot_description=t._panda_description_with_world(), urdf_path="")
before = signatures()
try:
    panda = graph.node.chain
    path = t._sine_path(t._centre(panda), 40, 0.01)
    outputs = t._Outputs(graph, echo=True)
    graph.publisher(JointState, "joint_states").publish(JointState(name=panda.joint_names, position=path[0].tolist()))
    time.sleep(0.2)
    t._stream_goals(graph, panda.forward(path), rate_hz=100.0)
    outputs.wait_quiet()
    outputs.close()
    request = t._request(panda.forward(path[-1]))
    request.ik_request.avoid_collisions = True
    ik = graph.call(request).error_code.val
    fk = graph.call_fk(t._fk_request(["panda_link8"], path[0])).error_code.val
finally:
    graph.close()
    rclpy.shutdown(context=context)
after = signatures()
print(json.dumps({
    "compiled_after_start": sorted(name for name, count in after.items() if count != before.get(name)),
    "commands": len(outputs.commands),
    "ik": ik,
    "fk": fk,
}))
"""


def test_nothing_compiles_after_start_up_for_goals_or_requests():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TEST_ROOT / "ros"), str(TEST_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=TEST_ROOT.parent, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["commands"] > 0 and result["ik"] == 1 and result["fk"] == 1, result
    assert result["compiled_after_start"] == [], result
