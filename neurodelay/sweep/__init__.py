"""Sweeps: a function over a grid of parameters × seeds, one NetCDF file per point, merged into one Dataset.

::

    from neurodelay.sweep import run_sweep, collect

    ds = run_sweep(func, grid={"load": [1.0, 2.0], "mode": ["weights", "delays"]}, seeds=3,
                   folder="build/sweeps/x", root_seed=0, executor="local", retries=1, progress=True)

``func`` is a module-level (picklable) function called as
``func(**point_params, seed=<int>)`` that returns a small :class:`xarray.Dataset`.
Each point's Dataset is written atomically to its own file in ``folder``, so a
finished point is never lost and never computed again: re-running the same
call resumes the sweep. :func:`collect` merges the points into one Dataset
with one dimension per grid key (in grid order) plus ``seed``.

Seeds
-----
The integer seed of seed index ``k`` is drawn from
``numpy.random.SeedSequence(root_seed).spawn(n_seeds)[k]``; it depends on
nothing else, so every grid point with the same seed index gets the same seed
(paired comparisons across the grid) and the numbers do not depend on the
executor, the number of workers or the order in which points finish.

Executors (choices passed as objects, or by name)
-------------------------------------------------
``"serial"`` / :class:`SerialExecutor`
    in this process, one point after another (debugging; exceptions keep their traceback text).
``"local"`` / :class:`LocalExecutor` (default)
    a :class:`dask.distributed.LocalCluster` of worker processes on this machine,
    one engine thread per worker so that the workers do not oversubscribe the cores.
an address ``"tcp://host:8786"`` / :class:`DaskExecutor`
    a running Dask scheduler (or an existing ``distributed.Client``).
:class:`SlurmExecutor`
    SLURM jobs started through ``dask-jobqueue``.

Dask is imported only by the Dask executors.
"""

from ._core import (ERROR_LENGTH, STATUSES, collect, derive_seeds, point_path, run_sweep, sweep_points)
from ._executors import DaskExecutor, LocalExecutor, SerialExecutor, SlurmExecutor, resolve_executor

__all__ = ["run_sweep", "collect", "derive_seeds", "sweep_points", "point_path", "SerialExecutor",
           "LocalExecutor", "DaskExecutor", "SlurmExecutor", "resolve_executor", "STATUSES", "ERROR_LENGTH"]
