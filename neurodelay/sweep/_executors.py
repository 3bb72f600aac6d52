"""Where the points of a sweep run: this process, a local Dask cluster, a Dask scheduler, SLURM.

Every executor has ``run(func, points, done, *, fixed, retries, point_dims)``:
it calls :func:`~neurodelay.sweep._point.execute_point` for each point (where
it likes) and ``done(point, result)`` in the calling process as each point
finishes, in any order. ``done`` writes the point's file, so a result reaches
the disk as soon as it reaches the client, and the Dask executors drop their
reference to a finished task at once: a worker lost later never makes the
scheduler compute a finished point again.

Dask (``distributed``, ``dask_jobqueue``) is imported inside these classes only.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from functools import partial

from ._point import execute_point

__all__ = ["SerialExecutor", "LocalExecutor", "DaskExecutor", "SlurmExecutor", "resolve_executor"]


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _check_positive(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class SerialExecutor:
    """Run the points one after another in this process (debugging: breakpoints and prints work).

    Parameters
    ----------
    engine_threads : int, optional
        Threads of the engines during each call ($NEURODELAY_THREADS); default: unchanged.
    """

    def __init__(self, engine_threads: int | None = None):
        self.engine_threads = _check_positive("engine_threads", engine_threads, allow_none=True)

    def __repr__(self) -> str:
        return f"SerialExecutor(engine_threads={self.engine_threads})"

    def run(self, func, points, done, *, fixed, retries, point_dims=()) -> None:
        for point in points:
            done(point, execute_point(func, point.kwargs(), fixed, retries, self.engine_threads, point_dims))


def _picklable(func) -> None:
    """Let cloudpickle send `func` by value when the workers could not import its module by name
    (a script loaded from a path); functions of importable modules go by reference as usual."""
    module = getattr(func, "__module__", None)
    if module in (None, "__main__") or module not in sys.modules:
        return
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        import cloudpickle
        cloudpickle.register_pickle_by_value(sys.modules[module])


class DaskExecutor:
    """Run the points on a Dask cluster: a scheduler address or an existing ``distributed.Client``.

    Parameters
    ----------
    address : str, optional
        Scheduler address, e.g. ``"tcp://scheduler.example.org:8786"`` (start one with ``dask scheduler`` and
        workers with ``dask worker ADDRESS --nthreads 1``).
    client : distributed.Client, optional
        An existing client instead of an address (left open afterwards).
    engine_threads : int, optional
        Threads of the engines during each call ($NEURODELAY_THREADS on the worker); default: the
        workers' own setting (all their cores: start workers with ``--nthreads 1`` and one process per
        group of cores, or pass 1 here for one-thread workers).

    Notes
    -----
    The workers receive each point's result back to this process, which writes the files: the
    sweep folder needs to exist only here. The function must be importable on the workers (its
    module installed there) unless it comes from a script, which is sent by value.
    """

    def __init__(self, address: str | None = None, *, client=None, engine_threads: int | None = None):
        if (address is None) == (client is None):
            raise ValueError("DaskExecutor needs exactly one of address (a scheduler address) or client")
        if address is not None and (not isinstance(address, str) or not address):
            raise ValueError(f"address must be a scheduler address like 'tcp://host:8786', got {address!r}")
        self.address = address
        self.client = client
        self.engine_threads = _check_positive("engine_threads", engine_threads, allow_none=True)

    def __repr__(self) -> str:
        where = self.address if self.address is not None else repr(self.client)
        return f"DaskExecutor({where!r}, engine_threads={self.engine_threads})"

    def run(self, func, points, done, *, fixed, retries, point_dims=()) -> None:
        if self.client is not None:
            _run_on_client(self.client, func, points, done, fixed, retries, self.engine_threads, point_dims)
            return
        from distributed import Client
        with Client(self.address) as client:
            _run_on_client(client, func, points, done, fixed, retries, self.engine_threads, point_dims)


def _run_on_client(client, func, points, done, fixed, retries, engine_threads, point_dims) -> None:
    """Submit every point, write each result as it arrives; a task lost with its worker more often than
    the scheduler allows (distributed's KilledWorker) or failing outside func is submitted again up to
    `retries` times and then recorded as failed."""
    from distributed import as_completed

    from ._worker import SweepWorkerSetup

    client.register_plugin(SweepWorkerSetup())
    _picklable(func)
    call = partial(execute_point, func, fixed=fixed, retries=retries, engine_threads=engine_threads,
                   point_dims=tuple(point_dims))

    def submit(point):
        return client.submit(call, point.kwargs(), pure=False, key=f"sweep-point-{point.name}-{os.urandom(4).hex()}")

    pending = {}
    for point in points:
        pending[submit(point)] = (point, 0)
    queue = as_completed(list(pending))
    for future in queue:
        point, lost = pending.pop(future)
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - the worker or the transport failed, not func
            if lost < retries:
                again = submit(point)
                pending[again] = (point, lost + 1)
                queue.add(again)
                del future
                continue
            result = dict(status="failed", error=f"{type(exc).__name__}: {exc}", traceback="", wall_time=float("nan"),
                          host="", pid=None, attempts=1)
        future.release()
        del future
        result["attempts"] += lost   # calls lost with their worker count as attempts
        done(point, result)


class LocalExecutor:
    """Run the points on a :class:`distributed.LocalCluster` of worker processes on this machine.

    Parameters
    ----------
    workers : int, optional
        Worker processes (default: the usable cores).
    engine_threads : int
        Threads of the engines in each worker (default 1, so that the workers do not oversubscribe
        the cores); each worker runs one point at a time.
    memory_limit : str or float
        Per-worker memory limit passed to Dask (default ``"auto"``: the machine's memory / workers).
    dashboard : bool
        Serve Dask's dashboard (default off).
    """

    def __init__(self, workers: int | None = None, *, engine_threads: int = 1, memory_limit="auto",
                 dashboard: bool = False):
        self.workers = _check_positive("workers", workers, allow_none=True)
        self.engine_threads = _check_positive("engine_threads", engine_threads)
        self.memory_limit = memory_limit
        self.dashboard = bool(dashboard)

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers}, engine_threads={self.engine_threads})"

    def cluster(self):
        """A new LocalCluster with these settings (processes, one task thread per worker)."""
        import dask
        from distributed import LocalCluster

        threads = str(self.engine_threads)
        env = {"NEURODELAY_THREADS": threads, "NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
               "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        # No heartbeat time-out on this machine's own workers: a point that runs compiled code for minutes on
        # an overloaded machine can miss heartbeats, and the scheduler would then drop a healthy worker and its
        # point (seen at load 19). A worker process that really dies is still noticed by its nanny.
        with dask.config.set({"distributed.scheduler.worker-ttl": None}):
            return LocalCluster(n_workers=self.workers or _usable_cores(), threads_per_worker=1, processes=True,
                                memory_limit=self.memory_limit, dashboard_address=":0" if self.dashboard else None,
                                silence_logs=logging.ERROR, env=env)

    def run(self, func, points, done, *, fixed, retries, point_dims=()) -> None:
        from distributed import Client

        with self.cluster() as cluster, Client(cluster) as client:
            _run_on_client(client, func, points, done, fixed, retries, self.engine_threads, point_dims)


class SlurmExecutor:
    """Run the points in SLURM jobs started through ``dask-jobqueue`` (one Dask worker per job by default).

    Parameters
    ----------
    cores : int
        Cores per job.
    memory : str
        Memory per job, e.g. ``"8GB"``.
    walltime : str
        Time limit per job, ``"HH:MM:SS"``.
    queue, account : str, optional
        SLURM partition (``-p``) and account (``-A``).
    jobs : int
        Jobs (worker groups) to start.
    processes : int
        Dask worker processes per job (default: `cores`). Each worker runs cores / processes points
        at a time, each point with one engine thread.
    job_extra_directives : list of str
        Further ``#SBATCH`` lines, e.g. ``["--qos=normal"]``.
    job_script_prologue : list of str
        Shell lines run before the worker starts (e.g. ``["source .venv/bin/activate"]``).
    **cluster_kwargs
        Passed to ``dask_jobqueue.SLURMCluster`` (e.g. ``interface="ib0"``, ``local_directory``).

    Notes
    -----
    The workers must run the same neurodelay (and the function's module) as this process. The
    job script is :meth:`job_script`; dask-jobqueue's ``jobqueue.slurm`` section of the Dask
    configuration (``~/.config/dask/jobqueue.yaml``) supplies defaults for whatever is not given.
    """

    def __init__(self, cores: int = 1, memory: str = "4GB", walltime: str = "01:00:00", *, queue: str | None = None,
                 account: str | None = None, jobs: int = 1, processes: int | None = None,
                 job_extra_directives=(), job_script_prologue=(), **cluster_kwargs):
        self.cores = _check_positive("cores", cores)
        self.jobs = _check_positive("jobs", jobs)
        self.processes = _check_positive("processes", processes, allow_none=True) or self.cores
        if self.cores % self.processes:
            raise ValueError(f"processes ({self.processes}) must divide cores ({self.cores})")
        if not isinstance(memory, str) or not memory:
            raise ValueError(f"memory must be a size like '8GB', got {memory!r}")
        parts = walltime.split(":") if isinstance(walltime, str) else []
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"walltime must look like 'HH:MM:SS', got {walltime!r}")
        self.memory, self.walltime, self.queue, self.account = memory, walltime, queue, account
        self.job_extra_directives = list(job_extra_directives)
        self.job_script_prologue = list(job_script_prologue)
        self.cluster_kwargs = cluster_kwargs
        self.engine_threads = 1

    def __repr__(self) -> str:
        return (f"SlurmExecutor(cores={self.cores}, memory={self.memory!r}, walltime={self.walltime!r}, "
                f"queue={self.queue!r}, account={self.account!r}, jobs={self.jobs}, processes={self.processes})")

    def cluster(self, **overrides):
        """The ``dask_jobqueue.SLURMCluster`` (no job is submitted until it is scaled); `overrides` replace
        the cluster arguments."""
        from dask_jobqueue import SLURMCluster

        prologue = ["export NEURODELAY_THREADS=1", "export NUMBA_NUM_THREADS=1",
                    "export OMP_NUM_THREADS=1"] + self.job_script_prologue
        return SLURMCluster(cores=self.cores, processes=self.processes, memory=self.memory,
                            walltime=self.walltime, queue=self.queue, account=self.account,
                            job_extra_directives=self.job_extra_directives, job_script_prologue=prologue,
                            **{**self.cluster_kwargs, **overrides})

    def job_script(self) -> str:
        """The batch script each SLURM job would run (nothing is submitted)."""
        options = dict(self.cluster_kwargs.get("scheduler_options") or {})
        options.setdefault("dashboard_address", ":0")  # any free port: rendering the script must not clash
        with self.cluster(scheduler_options=options) as cluster:
            return cluster.job_script()

    def run(self, func, points, done, *, fixed, retries, point_dims=()) -> None:
        from distributed import Client

        with self.cluster() as cluster:
            cluster.scale(jobs=self.jobs)
            with Client(cluster) as client:
                _run_on_client(client, func, points, done, fixed, retries, self.engine_threads, point_dims)


def resolve_executor(executor):
    """An executor object from ``"serial"``, ``"local"``, a scheduler address or an executor object."""
    if isinstance(executor, str):
        if executor == "serial":
            return SerialExecutor()
        if executor == "local":
            return LocalExecutor()
        if "://" in executor or ":" in executor:
            return DaskExecutor(executor)
        raise ValueError(f"executor must be 'serial', 'local', a scheduler address like 'tcp://host:8786' "
                         f"or an executor object, got {executor!r}")
    if callable(getattr(executor, "run", None)):
        return executor
    raise ValueError(f"executor must be 'serial', 'local', a scheduler address or an object with a run() method, "
                     f"got {type(executor).__name__}")
