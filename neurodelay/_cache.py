"""Where neurodelay keeps compiled code: one per-user cache folder for numba and Brian2.

The cache root is

1. ``$NEURODELAY_CACHE`` when set (the repository's Makefile points it at
   ``build/cache``);
2. else ``$XDG_CACHE_HOME/neurodelay``;
3. else ``~/.cache/neurodelay``.

Below it live numba's compiled kernels (``numba/``, unless ``$NUMBA_CACHE_DIR``
is set explicitly), Brian2's Cython extensions (``cython/``), the C++ / CUDA
standalone projects (``brian/<device>/...``) and the CUDA helper libraries
(``cuda-libs/``). The rule is the same whatever the entry point (a script,
the tests, a notebook, the ``neurodelay`` command), so a kernel compiled once
is loaded from disk by every later process. Deleting the folder is always
safe: everything in it is rebuilt on demand.

:func:`configure_numba` runs when :mod:`neurodelay` is imported, before any
of its numba functions is defined; numba reads ``$NUMBA_CACHE_DIR`` when it
compiles, so this also works when numba was imported first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cache_root", "configure_numba"]


def cache_root() -> Path:
    """Root folder for compiled code: ``$NEURODELAY_CACHE``, else the per-user cache folder.

    Returns
    -------
    pathlib.Path
        ``$NEURODELAY_CACHE`` (user and relative paths resolved), else
        ``$XDG_CACHE_HOME/neurodelay``, else ``~/.cache/neurodelay``. The
        folder is not created here.
    """
    env = os.environ.get("NEURODELAY_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "neurodelay"


def configure_numba() -> str:
    """Point numba's on-disk cache at ``<cache root>/numba`` unless ``$NUMBA_CACHE_DIR`` is set.

    Returns
    -------
    str
        The numba cache folder in effect.
    """
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if not folder:
        folder = str(cache_root() / "numba")
        os.environ["NUMBA_CACHE_DIR"] = folder
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba already imported: make it read the variable again
        config.reload_config()
    return folder
