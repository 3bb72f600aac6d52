"""Running one compiled function per trial on a thread pool (the engines release the GIL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from .._threads import default_threads

__all__ = ["default_threads", "map_trials", "has_run", "mark_run"]

T = TypeVar("T")

_WARM: set = set()  # code objects of the `run` functions that map_trials has run once in this process


def has_run(run: Callable) -> bool:
    """Whether a function with the code of `run` (the same closure of an earlier call counts) was marked by
    :func:`mark_run` in this process: the numba functions it calls are then compiled or loaded, and its
    first trial need not run alone."""
    code = getattr(run, "__code__", None)
    return code is not None and code in _WARM


def mark_run(run: Callable) -> None:
    """Mark `run` (by its code) as run in this process (see :func:`has_run`)."""
    code = getattr(run, "__code__", None)
    if code is not None:
        _WARM.add(code)


def map_trials(run: Callable[[int], T], n_trials: int, n_threads: int | None = None,
               progress: bool = False, desc: str = "trials") -> list[T]:
    """``[run(k) for k in range(n_trials)]``, in order, on `n_threads` threads (default: all usable cores).

    The first time a given `run` function (by its code, so the same closure of a
    later call counts as seen) is mapped in this process, trial 0 runs alone in
    the calling thread first, so that the numba functions it calls compile, or
    load their cache, once; afterwards every trial goes to the pool from the
    start (a numba function meeting new argument types then compiles in a
    worker, under numba's compiler lock). `run` must release the GIL to gain
    from threads.
    """
    results = []
    if n_trials and not has_run(run):
        results.append(run(0))
        mark_run(run)
    todo = range(len(results), n_trials)
    threads = min(n_threads or default_threads(), len(todo))
    if progress:
        from tqdm.auto import tqdm
        todo = tqdm(todo, desc=desc, unit="trial")
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            results += list(pool.map(run, todo))
    else:
        results += [run(k) for k in todo]
    return results
