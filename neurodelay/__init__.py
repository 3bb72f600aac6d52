"""neurodelay: spiking networks with axonal, dendritic and synaptic delays."""

from importlib.metadata import PackageNotFoundError, version as _version

from ._cache import cache_root, configure_numba as _configure_numba

_configure_numba()  # before any numba function of the package is defined

try:  # the installed distribution's version (setup.cfg) is the single source of truth
    __version__ = _version("neurodelay")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__", "cache_root", "simulate"]


def simulate(net, inputs, duration, **options):
    """Simulate `net` on `inputs` for `duration` s on an engine (:mod:`neurodelay.engines`, default "auto").

    :func:`neurodelay.simulation.simulate` (see there for the options), imported on first call so
    that ``import neurodelay`` stays light. Returns an :class:`~neurodelay.record.EventRecord`.
    """
    from .simulation import simulate as _simulate

    return _simulate(net, inputs, duration, **options)
