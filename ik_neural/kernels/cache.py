"""Where the compiled kernels are kept: a per-user cache keyed by their sources, seeded from the install.

numba compiles every kernel on first use (about 45 s for all of them on 2 cores) and by default keeps the
machine code beside the source, which a read-only install cannot take. Here it goes to
``$NUMBA_CACHE_DIR/ik_neural-<key>`` or, with that unset, ``$XDG_CACHE_HOME/ik_neural/numba/<key>``
(default ``~/.cache/ik_neural/numba/<key>``). <key> hashes numba's and Python's versions and the sources
of this folder, so a changed kernel never loads stale code (numba checks each source's hash as well). An
install made by ``setup.py install`` (colcon) carries kernels compiled at build time in
``prebuilt/<key>/`` (``ik_neural.commands.prebuild_kernels``): the first start copies them into the
per-user cache in milliseconds instead of compiling.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numba
from numba.core import event
from numba.core.caching import UserProvidedCacheLocator

# As numba names it (os.path.abspath, symlinks kept): its cache folder hashes this path.
KERNELS_DIR = Path(os.path.abspath(__file__)).parent
PREBUILT_DIR = KERNELS_DIR / "prebuilt"
COMPILE_ALL_S = 45
"""Measured: compiling every kernel the node warms up, 2 cores (2026-12-01)."""


def cache_key() -> str:
    """16 hex digits of numba's and Python's versions and the sources of the kernels."""
    digest = hashlib.sha256(f"numba {numba.__version__} python {sys.version_info[:2]}".encode())
    for source in sorted(KERNELS_DIR.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def user_cache_dir() -> Path:
    """The package's per-user cache folder: ``$XDG_CACHE_HOME/ik_neural`` (default ``~/.cache/ik_neural``);
    the numba kernels and the collision checker's disabled pairs live below it."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "ik_neural"


def cache_dir() -> Path:
    """The per-user folder numba keeps these kernels in (see the module docstring)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / f"ik_neural-{cache_key()}"
    return user_cache_dir() / "numba" / cache_key()


def kernel_files(folder: Path) -> Path:
    """Where numba, caching into ``folder``, puts the files of the kernels of this source folder (its
    naming: the folder's name and a hash of its path)."""
    return folder / UserProvidedCacheLocator.get_suitable_cache_subpath(str(KERNELS_DIR / "__init__.py"))


@contextlib.contextmanager
def kernel_cache() -> Iterator[None]:
    """While the kernel modules are imported (their ``@njit(cache=True)`` picks its folder then): numba
    caches them in ``cache_dir()``, first seeded from ``prebuilt/<key>`` if the install has it. Where no
    such folder can be written, numba's own default applies."""
    folder = cache_dir()
    try:
        _seed(kernel_files(folder), PREBUILT_DIR / cache_key())
    except OSError:
        yield
        return
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(folder)  # only for the decorators run inside: the user's own code is untouched
    try:
        yield
    finally:
        numba.config.CACHE_DIR = saved


def _seed(files: Path, prebuilt: Path) -> None:
    """Create ``files``, a copy of ``prebuilt`` when that exists; atomic, so concurrent first starts agree."""
    if files.is_dir():
        return
    files.parent.mkdir(parents=True, exist_ok=True)
    if not prebuilt.is_dir():
        files.mkdir(exist_ok=True)
        return
    partial = Path(tempfile.mkdtemp(dir=files.parent, prefix=files.name + ".partial-"))
    try:
        shutil.copytree(prebuilt, partial, dirs_exist_ok=True)
        os.replace(partial, files)
    except OSError:
        if not files.is_dir():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


@contextlib.contextmanager
def compiling_notice(say: Callable[[str], None]) -> Iterator[None]:
    """Within: ``say`` one line when numba starts compiling anything (nothing is said when every kernel
    loads from the cache)."""
    said = False

    class _Listener(event.Listener):
        def on_start(self, _event: event.Event) -> None:
            nonlocal said
            if not said:
                said = True
                say(
                    f"compiling the numba kernels for this machine (about {COMPILE_ALL_S} s on 2 cores, once per "
                    f"install and CPU); later runs load them from {cache_dir()}"
                )

        def on_end(self, _event: event.Event) -> None:
            pass

    with event.install_listener("numba:compile", _Listener()):
        yield
