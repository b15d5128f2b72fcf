"""What importing a module costs: only what it uses (issue 10 item 8)."""

import ast
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

import ik_neural


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


# The one import against the direction of the layers, inside a function: the public convenience
# ``KinematicChain.from_urdf`` calls the URDF parser, which builds chains (design: parser -> chain).
DEFERRED_UPWARD_IMPORTS = {("ik_neural.chain", "ik_neural.urdf_model")}


def _imports(node: ast.AST, in_function: bool = False) -> Iterator[tuple[str, bool]]:
    """(module, whether it is imported inside a function) for each import a module's code makes, but those
    under ``if TYPE_CHECKING:`` (never run); ``from a.b import c`` names both a.b and a.b.c."""
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        yield from (found for child in node.orelse for found in _imports(child, in_function))
        return
    in_function = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    if isinstance(node, ast.Import):
        yield from ((alias.name, in_function) for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        yield from ((name, in_function) for name in names)
    for child in ast.iter_child_nodes(node):
        yield from _imports(child, in_function)


def _package_imports() -> dict[str, set[str]]:
    """Each module of ik_neural -> the package's modules it imports, at module level or inside a function,
    but for ``DEFERRED_UPWARD_IMPORTS`` made inside a function."""
    root = Path(ik_neural.__file__).parent.parent
    modules = {
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (root / "ik_neural").rglob("*.py")
    }
    graph = {}
    for name, path in modules.items():
        graph[name] = set()
        for module, in_function in _imports(ast.parse(path.read_text())):
            while module and module not in modules:  # `from package.module import name` -> package.module
                module = module.rpartition(".")[0]
            deferred = in_function and (name, module) in DEFERRED_UPWARD_IMPORTS
            if module not in ("", "ik_neural", name) and not deferred:
                graph[name].add(module)
    return graph


def test_no_import_cycle_in_the_package():
    """Dependencies point down: no module of ik_neural imports itself, directly or through others, even
    inside a function, but for the one deferred upward import named above."""
    graph = _package_imports()
    assert "ik_neural.network" in graph["ik_neural.torch_network"]  # the graph sees real imports

    def on_a_cycle(start: str) -> bool:
        seen, stack = set(), list(graph[start])
        while stack:
            module = stack.pop()
            if module == start:
                return True
            if module not in seen:
                seen.add(module)
                stack.extend(graph[module])
        return False

    cycles = sorted(name for name in graph if on_a_cycle(name))
    assert cycles == [], f"modules on an import cycle: {cycles}"
