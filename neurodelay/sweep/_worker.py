"""The Dask worker plugin of the sweeps (imported only by the Dask executors: it imports distributed).

Brian2 installs a SIGINT handler when it is first imported, which Python allows
only in a process's main thread; a Dask worker runs its tasks in other
threads, so a point function that is the first to import brian2 (as
neurodelay.units and the training code do) would fail there. The plugin's
``setup`` runs in the worker's event loop, the main thread, on every worker,
present and future (restarted after a crash), and imports brian2 first.
"""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["SweepWorkerSetup"]


class SweepWorkerSetup(WorkerPlugin):
    """Import brian2 in the worker's main thread."""

    name = "neurodelay-sweep-setup"

    def setup(self, worker) -> None:
        import brian2  # noqa: F401 - for its SIGINT handler, see the module docstring
