"""One point of a sweep where it runs (a worker process): call the function, check its Dataset, record a
failure instead of raising (:func:`execute_point`); shared by the sweep loop and every executor."""

from __future__ import annotations

import os
import socket
import time
import traceback

import xarray as xr

__all__ = ["execute_point", "ERROR_LENGTH", "POINT_VARIABLES", "RESERVED"]

#: longest error text kept per point in the merged result (characters; the failure file keeps the traceback)
ERROR_LENGTH = 2000
#: variables the merged result adds per point (a point's Dataset must not use these names)
POINT_VARIABLES = ("status", "error", "wall_time", "host", "attempts")
RESERVED = set(POINT_VARIABLES) | {"seed", "seed_value"}


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 3] + "..."


def _check_result(ds, point_dims) -> None:
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"the sweep function returned {type(ds).__name__}, expected an xarray Dataset")
    clash = sorted((set(ds.variables) | set(ds.dims)) & (RESERVED | set(point_dims)))
    if clash:
        raise ValueError(f"the sweep function's Dataset uses the names {clash}, which the sweep reserves "
                         f"(grid keys, seed, {', '.join(POINT_VARIABLES)})")


def execute_point(func, kwargs: dict, fixed: dict, retries: int, engine_threads: int | None,
                  point_dims: tuple = ()) -> dict:
    """Call ``func(**fixed, **kwargs)`` up to 1 + `retries` times; never raises for an exception of func.

    Runs where the executor puts it (a worker process). Returns a dict: status
    ("ok" / "failed"), dataset (ok) or error and traceback (failed), wall_time
    (s, of the last attempt), host, pid and attempts. With `engine_threads`, the
    engines' thread count ($NEURODELAY_THREADS) is set for the call.
    """
    previous = os.environ.get("NEURODELAY_THREADS")
    if engine_threads is not None:
        os.environ["NEURODELAY_THREADS"] = str(int(engine_threads))
    try:
        out = {}
        for attempt in range(1, retries + 2):
            start = time.perf_counter()
            try:
                ds = func(**fixed, **kwargs)
                _check_result(ds, point_dims)
                out = dict(status="ok", dataset=ds)
            except Exception as exc:  # noqa: BLE001 - a failing point is recorded, not raised
                out = dict(status="failed", error=_error_text(exc), traceback=traceback.format_exc())
            out.update(wall_time=time.perf_counter() - start, host=socket.gethostname(), pid=os.getpid(),
                       attempts=attempt)
            if out["status"] == "ok":
                break
        return out
    finally:
        if engine_threads is not None:
            if previous is None:
                os.environ.pop("NEURODELAY_THREADS", None)
            else:
                os.environ["NEURODELAY_THREADS"] = previous
