"""Running one compiled function per trial on a thread pool (the engines release the GIL)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

__all__ = ["default_threads", "map_trials"]

T = TypeVar("T")


def default_threads() -> int:
    """Worker threads for batched trials: $NEURODELAY_THREADS or the number of usable cores."""
    env = os.environ.get("NEURODELAY_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def map_trials(run: Callable[[int], T], n_trials: int, n_threads: int | None = None,
               progress: bool = False, desc: str = "trials") -> list[T]:
    """``[run(k) for k in range(n_trials)]``, in order.

    Trial 0 runs first in the calling thread (so a numba function compiles, or
    loads its cache, once); the others run on `n_threads` threads (default:
    :func:`default_threads`). `run` must release the GIL to gain from threads.
    """
    results = [run(0)] if n_trials else []
    threads = min(n_threads or default_threads(), max(n_trials - 1, 1))
    rest = range(1, n_trials)
    if progress:
        from tqdm.auto import tqdm
        rest = tqdm(rest, total=n_trials - 1, desc=desc, unit="trial")
    if threads > 1 and n_trials > 2:
        with ThreadPoolExecutor(threads) as pool:
            results += list(pool.map(run, rest))
    else:
        results += [run(k) for k in rest]
    return results
