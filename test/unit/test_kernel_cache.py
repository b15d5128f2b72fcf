"""Where compiled kernels are kept (issue 14): a per-user cache keyed by the kernels' sources, seeded from
an install's prebuilt copy, and one line said when anything compiles."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# FK of one pose through the compiled kernel, inside the compiling notice; prints the cache folder last.
FK_ONCE = """
from ik_neural.kernels.cache import cache_dir, compiling_notice
from ik_neural.robots import robot_chain
chain = robot_chain('rrr_3dof')[0]
with compiling_notice(lambda line: print('NOTICE', line)):
    chain.forward(chain.middle.copy())
print('CACHE', cache_dir())
"""


def _run(code: str, env: dict[str, str], pythonpath: Path = REPO) -> str:
    env = {**env, "PYTHONPATH": os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])}
    # Run from the package's parent folder: python -c puts the working directory first on sys.path.
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=pythonpath, check=True, capture_output=True, text=True
    ).stdout


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return env


def test_kernels_compile_once_into_the_per_user_cache_and_say_so(tmp_path):
    env = _clean_env(tmp_path)
    first = _run(FK_ONCE, env)
    notices = [line for line in first.splitlines() if line.startswith("NOTICE")]
    assert len(notices) == 1 and "compiling the numba kernels" in notices[0], first
    folder = Path(first.splitlines()[-1].split(" ", 1)[1])
    assert folder.parent == tmp_path / "xdg" / "ik_neural" / "numba"
    assert any(folder.rglob("kinematics.fk_jacobian-*.nbi"))
    # The second process loads what the first compiled: nothing is said.
    second = _run(FK_ONCE, env)
    assert "NOTICE" not in second and second.splitlines()[-1] == first.splitlines()[-1]
    # NUMBA_CACHE_DIR, numba's own setting, takes precedence.
    third = _run(FK_ONCE, {**env, "NUMBA_CACHE_DIR": str(tmp_path / "numba")})
    assert Path(third.splitlines()[-1].split(" ", 1)[1]).parent == tmp_path / "numba"


def test_a_prebuilt_copy_seeds_the_cache_and_a_changed_kernel_gets_a_new_key(tmp_path):
    """An install's kernels/prebuilt/<key> (what prebuild_kernels writes) is copied into the empty per-user
    cache, so nothing compiles; a package whose kernel sources differ has another key and ignores it."""
    package = tmp_path / "site" / "ik_neural"
    shutil.copytree(REPO / "ik_neural", package, ignore=shutil.ignore_patterns("__pycache__", "prebuilt"))
    shutil.copytree(REPO / "models", tmp_path / "site" / "models")  # robots are found beside the package
    build_env = _clean_env(tmp_path / "build")
    compiled = _run(FK_ONCE, build_env, tmp_path / "site")
    assert "NOTICE" in compiled
    key_folder = Path(compiled.splitlines()[-1].split(" ", 1)[1])
    (files,) = key_folder.iterdir()
    shutil.copytree(files, package / "kernels" / "prebuilt" / key_folder.name)

    user_env = _clean_env(tmp_path / "user")
    seeded = _run(FK_ONCE, user_env, tmp_path / "site")
    assert "NOTICE" not in seeded
    user_folder = Path(seeded.splitlines()[-1].split(" ", 1)[1])
    assert (
        user_folder.name == key_folder.name and user_folder.parent == tmp_path / "user" / "xdg" / "ik_neural" / "numba"
    )

    with open(package / "kernels" / "kinematics.py", "a", encoding="utf-8") as source:
        source.write("\n# a changed kernel source\n")
    changed = _run(FK_ONCE, _clean_env(tmp_path / "changed"), tmp_path / "site")
    assert Path(changed.splitlines()[-1].split(" ", 1)[1]).name != key_folder.name
    assert "NOTICE" in changed  # the prebuilt copy of other sources is not used
