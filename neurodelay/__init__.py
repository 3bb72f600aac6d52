"""neurodelay: spiking networks with axonal, dendritic and synaptic delays."""

from importlib.metadata import PackageNotFoundError, version as _version

from ._cache import cache_root, configure_numba as _configure_numba

_configure_numba()  # before any numba function of the package is defined

try:  # the installed distribution's version (setup.cfg) is the single source of truth
    __version__ = _version("neurodelay")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["cache_root"]
