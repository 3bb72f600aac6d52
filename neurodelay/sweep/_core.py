"""Planning, running, storing and merging the points of a sweep (see :mod:`neurodelay.sweep`).

Folder layout::

    FOLDER/sweep.json                  the sweep: grid, number of seeds, root seed, derived seeds, function
    FOLDER/<point>.nc                  a finished point: func's Dataset + sweep_* attributes (atomic write)
    FOLDER/<point>.failed.json         a point that still failed after its retries (error text, traceback)

``<point>`` is ``k1=v1,k2=v2,seed=K-HASH`` (values made file-name safe and
shortened; HASH is the first 12 hex digits of the SHA-1 of the point's
parameters, seed index and integer seed as JSON), so a point is found again
from its parameters whatever the grid around it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import re
import sys
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import xarray as xr

from ..io import NetCDFReadError, atomic_output, provenance, read_netcdf, to_json, write_netcdf
from ._point import ERROR_LENGTH, RESERVED

__all__ = ["run_sweep", "collect", "derive_seeds", "sweep_points", "point_path", "STATUSES", "ERROR_LENGTH"]

SPEC = "sweep.json"
#: the states of a point in a merged result
STATUSES = ("ok", "failed", "missing", "corrupt")
_ATTR = "sweep_"


# ---- the plan ----------------------------------------------------------------------------------------

def _check_grid(grid) -> dict:
    if grid is None:
        return {}
    if not isinstance(grid, dict):
        raise ValueError(f"grid must be a dict of parameter name -> list of values, got {type(grid).__name__}")
    out = {}
    for key, values in grid.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"grid key {key!r} must be a Python identifier (it becomes a keyword argument)")
        if key in RESERVED:
            raise ValueError(f"grid key {key!r} is reserved by the sweep; rename it")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"grid[{key!r}] must be a list of values, got {values!r}")
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        if not values:
            raise ValueError(f"grid[{key!r}] is empty")
        for v in values:
            if not isinstance(v, (bool, int, float, str)) or (isinstance(v, float) and not math.isfinite(v)):
                raise ValueError(f"grid[{key!r}] holds {v!r}: values must be finite numbers, strings or booleans")
        kinds = {str if isinstance(v, str) else bool if isinstance(v, bool) else float for v in values}
        if len(kinds) > 1:
            raise ValueError(f"grid[{key!r}] mixes value types {sorted(k.__name__ for k in kinds)}; use one type")
        if len(set(values)) != len(values):
            raise ValueError(f"grid[{key!r}] repeats a value: {values}")
        out[key] = values
    return out


def _check_seeds(seeds, root_seed) -> tuple[int, int]:
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer (the number of seeds), got {seeds!r}")
    if isinstance(root_seed, bool) or not isinstance(root_seed, (int, np.integer)) or root_seed < 0:
        raise ValueError(f"root_seed must be a non-negative integer, got {root_seed!r}")
    return int(seeds), int(root_seed)


def derive_seeds(root_seed: int, n: int) -> list[int]:
    """The integer seeds of seed indices 0 .. n-1: ``SeedSequence(root_seed).spawn(n)[k]`` as a 32-bit int.

    Seed k depends only on `root_seed` and k (not on n), so adding seeds to a
    sweep keeps the earlier ones.
    """
    n, root_seed = _check_seeds(n, root_seed)
    return [int(child.generate_state(1, dtype=np.uint32)[0])
            for child in np.random.SeedSequence(root_seed).spawn(n)]


@dataclass(frozen=True)
class Point:
    """One point of a sweep: grid position, parameters, seed index and integer seed."""

    index: tuple
    params: dict
    seed_index: int
    seed: int

    @property
    def name(self) -> str:
        """File stem: readable parameters plus a hash of (parameters, seed index, seed)."""
        ident = to_json({"params": self.params, "seed_index": self.seed_index, "seed": self.seed})
        digest = hashlib.sha1(ident.encode()).hexdigest()[:12]
        text = ",".join(f"{k}={v}" for k, v in self.params.items())
        text = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", text)[:80]
        return f"{text + ',' if text else ''}seed={self.seed_index}-{digest}"

    def kwargs(self) -> dict:
        return dict(self.params, seed=self.seed)


def sweep_points(grid: dict, seeds: int, root_seed: int = 0) -> list[Point]:
    """All points of a sweep, grid in C order (last key fastest), then seeds."""
    grid = _check_grid(grid)
    seed_values = derive_seeds(root_seed, seeds)
    keys = list(grid)
    points = []
    for index in product(*(range(len(grid[k])) for k in keys)):
        params = {k: grid[k][i] for k, i in zip(keys, index)}
        for k, s in enumerate(seed_values):
            points.append(Point(index, params, k, s))
    return points


def point_path(folder, point: Point) -> Path:
    """The NetCDF file of a point in a sweep folder."""
    return Path(folder) / f"{point.name}.nc"


def _failure_path(folder, point: Point) -> Path:
    return Path(folder) / f"{point.name}.failed.json"


def _function_name(func) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', type(func).__name__)}"


# ---- storing and reading points ------------------------------------------------------------------------

def _store(folder: Path, point: Point, result: dict) -> None:
    """Write a point's result: its Dataset (ok) or a failure record; drop the stale other kind."""
    failure = _failure_path(folder, point)
    if result["status"] == "ok":
        ds = result["dataset"].copy()
        ds.attrs.update({f"{_ATTR}point": to_json(point.params), f"{_ATTR}seed_index": point.seed_index,
                         f"{_ATTR}seed": point.seed, f"{_ATTR}wall_time": float(result["wall_time"]),
                         f"{_ATTR}host": str(result["host"]), f"{_ATTR}attempts": int(result["attempts"])})
        write_netcdf(ds, point_path(folder, point))
        failure.unlink(missing_ok=True)
    else:
        record = {k: result.get(k) for k in ("error", "traceback", "wall_time", "host", "pid", "attempts")}
        record.update(point=point.params, seed_index=point.seed_index, seed=point.seed)
        with atomic_output(failure) as tmp:
            tmp.write_text(to_json(record) + "\n")


def _read_point(folder: Path, point: Point):
    """(status, Dataset or None, info dict) of a point as it is on disk."""
    path = point_path(folder, point)
    corrupt = None
    if path.exists():
        try:
            ds = read_netcdf(path)
            if (ds.attrs.get(f"{_ATTR}point") != to_json(point.params)
                    or int(ds.attrs.get(f"{_ATTR}seed", -1)) != point.seed):
                raise NetCDFReadError(f"{path} holds another point ({ds.attrs.get(f'{_ATTR}point')})")
            info = dict(wall_time=float(ds.attrs[f"{_ATTR}wall_time"]), host=str(ds.attrs[f"{_ATTR}host"]),
                        attempts=int(ds.attrs[f"{_ATTR}attempts"]), error="")
            ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith(_ATTR)}
            return "ok", ds, info
        except (NetCDFReadError, KeyError, ValueError) as exc:
            corrupt = f"corrupt point file: {exc}"
    failure = _failure_path(folder, point)
    if failure.exists():
        try:
            record = json.loads(failure.read_text())
            return "failed", None, dict(wall_time=float(record.get("wall_time") or np.nan),
                                        host=str(record.get("host") or ""), attempts=int(record.get("attempts") or 0),
                                        error=str(record.get("error") or ""))
        except (OSError, ValueError) as exc:
            corrupt = corrupt or f"unreadable failure record {failure.name}: {exc}"
    if corrupt:
        return "corrupt", None, dict(wall_time=np.nan, host="", attempts=0, error=corrupt[:ERROR_LENGTH])
    return "missing", None, dict(wall_time=np.nan, host="", attempts=0, error="")


# ---- the sweep ---------------------------------------------------------------------------------------

def _write_spec(folder: Path, spec: dict) -> None:
    with atomic_output(folder / SPEC) as tmp:
        tmp.write_text(to_json(spec) + "\n")


def _read_spec(folder: Path) -> dict:
    path = folder / SPEC
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a sweep folder: it has no {SPEC}")
    try:
        spec = json.loads(path.read_text())
        # JSON objects are written with sorted keys: the grid's order is kept in grid_keys
        spec["grid"] = _check_grid({k: spec["grid"][k] for k in spec.get("grid_keys", spec["grid"])})
        _check_seeds(spec["seeds"], spec["root_seed"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a valid sweep description ({type(exc).__name__}: {exc})") from None
    return spec


def run_sweep(func, grid: dict, seeds: int = 1, folder=None, root_seed: int = 0, executor="local",
              retries: int = 1, progress: bool = True, fixed: dict | None = None) -> xr.Dataset:
    """Run ``func`` at every grid point × seed that is not yet finished in `folder`; return the merged Dataset.

    Parameters
    ----------
    func : callable
        A module-level (picklable) function called as ``func(**fixed, **point_params, seed=<int>)``;
        it returns a small :class:`xarray.Dataset` (SI values, ``units`` attributes). Its variables and
        dimensions must not be named like a grid key, ``seed``, ``seed_value`` or one of
        ``status, error, wall_time, host, attempts``.
    grid : dict
        Parameter name -> list of values (finite numbers, strings or booleans, one type per key).
        An empty dict sweeps the seeds only.
    seeds : int
        Number of seeds per grid point.
    folder : str or Path
        The sweep's folder: ``sweep.json`` and one NetCDF file per finished point. Points already
        finished there are not run again (re-running resumes); failed, missing and corrupt ones are.
    root_seed : int
        Seed index k gets the integer seed ``SeedSequence(root_seed).spawn(seeds)[k]`` (32 bits):
        the same for every grid point, whatever the executor, worker count or order of completion.
    executor : {"local", "serial"}, str or executor object
        ``"local"`` (default): a :class:`~neurodelay.sweep.LocalExecutor` (local Dask cluster, one
        engine thread per worker process); ``"serial"``: in this process; any other string: the address
        of a Dask scheduler; or an executor object (:class:`~neurodelay.sweep.SerialExecutor`,
        :class:`~neurodelay.sweep.LocalExecutor`, :class:`~neurodelay.sweep.DaskExecutor`,
        :class:`~neurodelay.sweep.SlurmExecutor`).
    retries : int
        Further attempts for a point whose call raised (or whose worker was lost); a point that still
        fails is recorded with its error (status ``"failed"``) and the sweep goes on.
    progress : bool
        Show a progress bar (tqdm) over the points.
    fixed : dict, optional
        Keyword arguments passed unchanged to every call (recorded in the provenance; JSON-serialisable).
        They are not part of a point's identity: a folder's finished points are kept when they change,
        so use a new folder for new fixed arguments (or a new function).

    Returns
    -------
    xarray.Dataset
        ``collect(folder)``: see :func:`collect`.

    Notes
    -----
    Results travel back to this process, which writes every point's file as soon as it arrives
    (the workers need no access to `folder`). A worker lost in the middle of a sweep loses at
    most the points it was computing, or had computed but not yet sent back; the scheduler runs
    them again elsewhere, and no point already on disk runs again.

    Examples
    --------
    >>> ds = run_sweep(my_point, grid={"rate": [5.0, 10.0]}, seeds=3, folder="build/sweeps/rates",
    ...                executor="serial")                                             # doctest: +SKIP
    >>> ds["spike_count"].mean("seed")                                                 # doctest: +SKIP
    """
    from ._executors import resolve_executor

    if not callable(func):
        raise ValueError(f"func must be callable, got {type(func).__name__}")
    if folder is None:
        raise ValueError("folder is required: the sweep keeps one file per point there")
    grid = _check_grid(grid)
    seeds, root_seed = _check_seeds(seeds, root_seed)
    if isinstance(retries, bool) or not isinstance(retries, (int, np.integer)) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
    fixed = dict(fixed or {})
    clash = sorted(set(fixed) & (set(grid) | {"seed"}))
    if clash:
        raise ValueError(f"fixed arguments {clash} are also swept (grid keys or seed)")
    folder = Path(folder)
    executor = resolve_executor(executor)
    folder.mkdir(parents=True, exist_ok=True)
    spec = dict(grid=grid, grid_keys=list(grid), seeds=seeds, root_seed=root_seed, seed_values=derive_seeds(root_seed, seeds),
                function=_function_name(func), fixed=fixed, retries=int(retries))
    _write_spec(folder, spec)

    points = sweep_points(grid, seeds, root_seed)
    todo = [p for p in points if _read_point(folder, p)[0] != "ok"]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(points), initial=len(points) - len(todo), desc=f"sweep {folder.name}", unit="point")
    counts = {"ok": 0, "failed": 0}

    def done(point: Point, result: dict) -> None:
        _store(folder, point, result)
        counts[result["status"]] += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=counts["failed"], refresh=False)

    try:
        if todo:
            executor.run(func, todo, done, fixed=fixed, retries=int(retries), point_dims=tuple(grid))
    finally:
        if bar is not None:
            bar.close()
    return collect(folder)


# ---- merging --------------------------------------------------------------------------------------------

def _versions() -> str:
    out = {"python": sys.version.split()[0]}
    for dist in ("neurodelay", "numpy", "xarray", "dask", "distributed", "dask-jobqueue"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return to_json(out)


def _strings_filled(ds: xr.Dataset) -> xr.Dataset:
    """Object variables (strings with NaN where points are missing) as fixed strings, NaN -> ""."""
    for name, var in list(ds.variables.items()):
        if var.dtype == object:
            values = np.array(["" if isinstance(v, float) and np.isnan(v) else str(v) for v in var.values.ravel()],
                              dtype=str).reshape(var.shape)
            ds[name] = var.copy(data=values)
    return ds


def _merge_points(grid: dict, n_seeds: int, found: list) -> xr.Dataset:
    keys = list(grid)
    pieces = []
    for point, ds in found:
        ds = ds.expand_dims("_point")
        coords = {k: ("_point", [point.params[k]]) for k in keys}
        coords["seed"] = ("_point", [point.seed_index])
        pieces.append(ds.assign_coords(coords))
    try:
        merged = xr.concat(pieces, dim="_point", data_vars="all", coords="different", compat="equals",
                           join="outer", fill_value=np.nan, combine_attrs="drop_conflicts")
    except ValueError as exc:
        raise ValueError(f"the points' Datasets cannot be merged ({exc}); give every dimension whose size "
                         f"differs between points a coordinate (it is then padded with NaN)") from None
    levels = keys + ["seed"]
    if len(levels) > 1:
        merged = merged.set_index(_point=levels).unstack("_point")
    else:
        merged = merged.swap_dims({"_point": "seed"})
    merged = merged.reindex({**{k: grid[k] for k in keys}, "seed": np.arange(n_seeds)})
    return _strings_filled(merged.transpose(*levels, ...))


def collect(folder) -> xr.Dataset:
    """Merge the points of a sweep folder into one Dataset (points not finished: NaN and a status).

    Parameters
    ----------
    folder : str or Path
        A folder written by :func:`run_sweep` (it holds ``sweep.json``).

    Returns
    -------
    xarray.Dataset
        Dimensions: one per grid key, in grid order (coordinate: the grid values), then ``seed``
        (coordinate 0 .. n-1), then the dimensions of the points' own Datasets. Variables: those
        of the points (NaN where a point is not finished; integer variables become floats then;
        point dimensions with coordinates are padded with NaN to their union), ``seed_value``
        (seed: the integer seed given to func), and per point ``status`` (``"ok"``, ``"failed"``,
        ``"missing"`` or ``"corrupt"``: a file that cannot be read or holds another point; it is
        never merged), ``error`` (text, "" if none), ``wall_time`` (s, of the call that produced
        the result or the last failed attempt), ``host`` and ``attempts``. Attributes: the
        provenance (``parameters`` = the grid as JSON, ``seed`` = root seed, versions, creation
        time) and ``sweep_function``, ``sweep_n_seeds``, ``sweep_fixed``, ``sweep_counts``.
    """
    folder = Path(folder)
    spec = _read_spec(folder)
    grid, n_seeds, root_seed = spec["grid"], int(spec["seeds"]), int(spec["root_seed"])
    keys = list(grid)
    shape = tuple(len(grid[k]) for k in keys) + (n_seeds,)
    status = np.full(shape, "missing", dtype=object)
    error = np.full(shape, "", dtype=object)
    host = np.full(shape, "", dtype=object)
    wall = np.full(shape, np.nan)
    attempts = np.zeros(shape, np.int64)
    found = []
    for point in sweep_points(grid, n_seeds, root_seed):
        state, ds, info = _read_point(folder, point)
        at = point.index + (point.seed_index,)
        status[at], error[at], host[at], wall[at], attempts[at] = (state, info["error"], info["host"],
                                                                    info["wall_time"], info["attempts"])
        if ds is not None:
            found.append((point, ds))
    dims = keys + ["seed"]
    coords = {**{k: (k, np.asarray(grid[k])) for k in keys}, "seed": ("seed", np.arange(n_seeds))}
    merged = _merge_points(grid, n_seeds, found) if found else xr.Dataset(coords=coords)
    seed_values = derive_seeds(root_seed, n_seeds)
    merged["seed_value"] = ("seed", np.asarray(seed_values, np.int64),
                            {"description": "integer seed passed to the function: SeedSequence(root_seed)"
                                            ".spawn(n)[seed]"})
    merged["status"] = (dims, status.astype(str), {"description": "ok, failed, missing or corrupt"})
    merged["error"] = (dims, error.astype(str), {"description": "error of a failed or corrupt point"})
    merged["wall_time"] = (dims, wall, {"units": "s", "description": "wall time of the point's call"})
    merged["host"] = (dims, host.astype(str), {"description": "machine that ran the point"})
    merged["attempts"] = (dims, attempts, {"description": "calls made for the point (0: never run)"})
    counts = {s: int((status == s).sum()) for s in STATUSES}
    attrs = {k: v for k, v in merged.attrs.items() if not k.startswith(_ATTR)}
    attrs.update(provenance(root_seed, grid, engine="sweep"))
    attrs.update({f"{_ATTR}dims": to_json(dims), f"{_ATTR}function": str(spec.get("function", "")), f"{_ATTR}n_seeds": n_seeds,
                  f"{_ATTR}seed_values": np.asarray(seed_values, np.int64),
                  f"{_ATTR}fixed": to_json(spec.get("fixed", {})), f"{_ATTR}counts": to_json(counts),
                  f"{_ATTR}folder": folder.name, "versions": _versions()})
    merged.attrs = attrs
    return merged
