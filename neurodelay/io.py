"""Spike records as xarray Datasets, and atomic NetCDF files.

Layout of a Dataset written by this module (times in seconds, float64)::

    dimensions   population, trial, spike, input_spike, [sample_time, recorded]
    population          (population)   names of the network's populations (coordinate)
    population_size     (population)   number of neurons of each population
    trial               (trial)        0 .. n_trials-1 (coordinate; keeps empty trials)
    spike_trial         (spike)        trial of each emitted spike
    spike_neuron        (spike)        local neuron index within its population
    spike_population    (spike)        population code = position in ``population``
    spike_time          (spike)        s
    spike_i_minus_theta (spike)        I - theta at the spike (record datasets only)
    input_trial, input_neuron, input_population, input_time   (input_spike): the inputs
    voltage             (trial, sample_time, recorded)  sampled V, if any
    sample_time         (sample_time)  s (coordinate)
    recorded_population, recorded_neuron (recorded): code and local index of each column

Attributes: ``time_unit = "s"``, ``duration`` (s, record datasets),
``engine``, ``neurodelay_version``, ``created`` (UTC, ISO 8601), ``parameters``
(a JSON string) and ``seed`` (absent when no seed was given).

Spikes keep the order they had in the record, so a round trip through
:func:`write_netcdf` / :func:`read_netcdf` and :func:`dataset_to_spike_trains`
gives back bit-identical arrays.
"""

from __future__ import annotations

import datetime as _dt
import errno
import glob
import io
import json
import os
import sys
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

import numpy as np
import xarray as xr

from . import __version__
from .spikes import SpikeTrains

__all__ = ["record_to_dataset", "spike_trains_to_dataset", "dataset_to_spike_trains",
           "write_netcdf", "write_netcdfs", "netcdf_bytes", "read_netcdf", "atomic_output", "atomic_outputs",
           "stale_temporaries", "remove_stale_temporaries", "parameters_to_json", "to_json", "provenance",
           "NetCDFReadError", "SPIKE_GROUPS"]

#: the two spike groups of a dataset: (dimension, variable prefix)
SPIKE_GROUPS = (("spike", "spike_"), ("input_spike", "input_"))


class NetCDFReadError(OSError):
    """A file exists but is not a readable NetCDF file (corrupt, truncated or not NetCDF)."""


# ---- provenance --------------------------------------------------------------------------------

def _json_default(value):
    Quantity = ()
    if "brian2" in sys.modules:  # a Quantity exists only if the user imported brian2; never import it here
        from brian2.units.fundamentalunits import Quantity
    if isinstance(value, Quantity):
        return str(value)  # keeps the unit, e.g. "5. ms"
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"parameter value {value!r} of type {type(value).__name__} cannot be written as JSON; "
                    f"pass numbers, strings, lists, dicts, numpy arrays or Brian2 quantities")


def parameters_to_json(parameters: dict | None) -> str:
    """The parameters dict as a JSON string (sorted keys; numpy values and Brian2 quantities allowed)."""
    if parameters is None:
        return "{}"
    if not isinstance(parameters, dict):
        raise TypeError(f"parameters must be a dict, got {type(parameters).__name__}")
    return to_json(parameters)


def to_json(value) -> str:
    """`value` as a JSON string (sorted keys; numpy values, tuples, sets, paths and Brian2 quantities allowed)."""
    return json.dumps(value, sort_keys=True, default=_json_default)


def _check_seed(seed):
    if seed is None:
        return None
    arr = np.asarray(seed)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer) or arr.ndim > 1:
        raise TypeError(f"seed must be an integer or a sequence of integers, got {seed!r}")
    return arr.astype(np.int64) if arr.ndim else int(arr)


def provenance(seed, parameters, engine: str) -> dict:
    """Provenance attributes for a result: engine, version, creation time, parameters (JSON) and seed.

    ``seed`` must be None, an integer or a sequence of integers (absent from the
    attributes when None); ``parameters`` a JSON-serialisable mapping.
    """
    attrs = {
        "time_unit": "s",
        "engine": str(engine),
        "neurodelay_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": parameters_to_json(parameters),
    }
    seed = _check_seed(seed)
    if seed is not None:
        attrs["seed"] = seed
    return attrs


# ---- spikes -> Dataset ---------------------------------------------------------------------------

def _spike_group(prefix: str, dim: str, trial, neuron, population, time, extra=None) -> dict:
    """Variables of one spike group (aligned 1-d arrays along `dim`)."""
    out = {
        f"{prefix}trial": (dim, np.asarray(trial, np.int64), {"description": "trial index"}),
        f"{prefix}neuron": (dim, np.asarray(neuron, np.int64),
                            {"description": "neuron index within its population"}),
        f"{prefix}population": (dim, np.asarray(population, np.int32),
                                {"description": "population code: position in the population coordinate"}),
        f"{prefix}time": (dim, np.asarray(time, np.float64), {"units": "s", "description": "spike time"}),
    }
    out.update(extra or {})
    return out


def _base_dataset(names, sizes, n_trials: int, variables: dict, attrs: dict) -> xr.Dataset:
    return xr.Dataset(
        {**variables,
         "population_size": ("population", np.asarray(sizes, np.int64), {"description": "neurons"})},
        coords={"population": ("population", np.asarray(list(names), dtype=str)),
                "trial": ("trial", np.arange(n_trials, dtype=np.int64))},
        attrs=attrs)


def record_to_dataset(record, seed=None, parameters: dict | None = None, *,
                      engine: str | None = None) -> xr.Dataset:
    """An :class:`~neurodelay.events.EventRecord` (or any record with the same fields) as a Dataset.

    Emitted spikes go to the ``spike`` dimension (with I - theta), input spikes to
    ``input_spike``, sampled voltages to ``voltage`` (trial, sample_time, recorded).
    Times in seconds; see the module docstring for the layout and the attributes.
    """
    net = record.network
    names = list(net.names)
    sizes = [p.n for p in net.populations]
    starts = np.array([net.offsets()[name] for name in names], dtype=np.int64)

    def split(global_idx):
        global_idx = np.asarray(global_idx, np.int64)
        code = np.searchsorted(starts, global_idx, side="right") - 1
        return code, global_idx - starts[code]

    pop, local = split(record.neuron)
    variables = _spike_group("spike_", "spike", record.trial, local, pop, record.time, {
        "spike_i_minus_theta": ("spike", np.asarray(record.i_minus_theta, np.float64),
                                {"description": "I - theta at the spike (= tau_m dV/dt)"})})
    inputs = record.inputs
    in_pop, in_local = split(inputs.neuron)
    variables.update(_spike_group("input_", "input_spike", inputs.trial, in_local, in_pop, inputs.time))
    if len(record.sample_neurons):
        rec_pop, rec_local = split(record.sample_neurons)
        variables["voltage"] = (("trial", "sample_time", "recorded"), np.asarray(record.voltage, np.float64),
                                {"description": "membrane potential V at the sample times"})
        variables["recorded_population"] = ("recorded", rec_pop.astype(np.int32),
                                            {"description": "population code of each recorded column"})
        variables["recorded_neuron"] = ("recorded", rec_local,
                                        {"description": "neuron index within its population"})
    attrs = provenance(seed, parameters, engine or getattr(record, "engine", None) or type(record).__module__)
    attrs["duration"] = float(record.duration)
    ds = _base_dataset(names, sizes, record.n_trials, variables, attrs)
    if len(record.sample_neurons):
        ds = ds.assign_coords(sample_time=("sample_time", np.asarray(record.sample_times, np.float64),
                                           {"units": "s"}))
    return ds


def spike_trains_to_dataset(trains: SpikeTrains, population: str = "neurons", *, seed=None,
                            parameters: dict | None = None, engine: str = "SpikeTrains") -> xr.Dataset:
    """A :class:`~neurodelay.spikes.SpikeTrains` as a Dataset with one population (``spike`` dimension, s)."""
    if not isinstance(trains, SpikeTrains):
        raise TypeError(f"expected a SpikeTrains, got {type(trains).__name__}")
    if not isinstance(population, str) or not population:
        raise ValueError(f"population must be a non-empty name, got {population!r}")
    variables = _spike_group("spike_", "spike", trains.trial, trains.neuron,
                             np.zeros(len(trains), np.int32), trains.time)
    return _base_dataset([population], [trains.n_neurons], trains.n_trials, variables,
                         provenance(seed, parameters, engine))


def dataset_to_spike_trains(ds: xr.Dataset, population: str | None = None) -> SpikeTrains:
    """The spikes of one population (local indices, s) from a Dataset in this module's layout.

    population=None is allowed when the dataset holds a single population.
    Emitted and input spikes are both searched.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"expected an xarray Dataset, got {type(ds).__name__}")
    missing = [v for v in ("population", "population_size", "trial") if v not in ds.variables]
    if missing:
        raise ValueError(f"dataset lacks {missing}: it was not written by neurodelay.io "
                         f"(expected the layout of record_to_dataset / spike_trains_to_dataset)")
    names = [str(n) for n in ds["population"].values]
    if population is None:
        if len(names) != 1:
            raise ValueError(f"the dataset holds {len(names)} populations {names}; name one")
        population = names[0]
    if population not in names:
        raise KeyError(f"population {population!r} is not in the dataset; it has {names}")
    code = names.index(population)
    parts = []
    for dim, prefix in SPIKE_GROUPS:
        if f"{prefix}time" not in ds.variables:
            continue
        mask = ds[f"{prefix}population"].values == code
        if mask.any():
            parts.append([ds[f"{prefix}{v}"].values[mask] for v in ("trial", "neuron", "time")])
    if not parts:
        parts = [[np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)]]
    trial, neuron, time = (np.concatenate(col) for col in zip(*parts))
    return SpikeTrains(trial.astype(np.int64), neuron.astype(np.int64), time.astype(np.float64),
                       ds.sizes["trial"], int(ds["population_size"].values[code]))


# ---- files ----------------------------------------------------------------------------------------

def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:  # pragma: no cover - non-Linux
        pass
    return 0o022


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - directories cannot be opened on some systems
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - fsync of a directory is unsupported on some file systems
        if not directory:
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Write a file atomically: yields a temporary path in the target's directory (same suffix).

    When the block finishes, the temporary is flushed to disk and renamed over
    `path` (creating parent directories first); if the block raises, the
    temporary is removed and an existing `path` is left untouched.
    """
    with atomic_outputs([path]) as (tmp,):
        yield tmp


def _named(exc: OSError, path: Path) -> OSError:
    """The same kind of OSError, its message naming `path` (and the OS's reason)."""
    if str(path) in str(exc):
        return exc
    reason = exc.strerror or str(exc) or type(exc).__name__
    return type(exc)(exc.errno, f"cannot write {path}: {reason}") if exc.errno else \
        type(exc)(f"cannot write {path}: {reason}")


@contextmanager
def atomic_outputs(paths) -> Iterator[tuple[Path, ...]]:
    """Write several files as one: yields temporary paths (one per target, same directory and suffix).

    When the block finishes, every temporary is flushed to disk, then they are
    renamed over their targets in the given order, one right after the other
    (put the file that marks a state as complete last). If the block or a
    flush raises, every temporary is removed and every target is left
    untouched. OSErrors name the file they concern.
    """
    paths = [Path(p) for p in paths]
    tmps: list[Path] = []
    try:
        for path in paths:
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, f"cannot write {path}: it is a directory")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                                suffix=f".tmp{path.suffix}")
            except OSError as exc:
                raise _named(exc, path) from None
            os.close(fd)
            tmps.append(Path(tmp_name))
        yield tuple(tmps)
        for path, tmp in zip(paths, tmps):
            if not tmp.exists():
                raise FileNotFoundError(f"nothing was written to the temporary file for {path}")
            try:
                mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
                os.chmod(tmp, mode)
                _fsync_path(tmp)
            except OSError as exc:
                raise _named(exc, path) from None
        for path, tmp in zip(paths, tmps):
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise _named(exc, path) from None
    except BaseException:
        for tmp in tmps:
            with suppress(FileNotFoundError):
                tmp.unlink()
        raise
    for directory in dict.fromkeys(path.parent for path in paths):
        try:
            _fsync_path(directory, directory=True)
        except OSError as exc:  # the files are in place, their renames may not be on disk yet
            raise _named(exc, paths[-1]) from None


def stale_temporaries(path) -> list[Path]:
    """Temporaries that :func:`atomic_output` left for `path` when its process was killed (SIGKILL,
    power loss): ``.<stem>.*.tmp<suffix>`` in the same folder. Remove them only when no other
    process is writing `path`."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{glob.escape(path.stem)}.*.tmp{glob.escape(path.suffix)}"))


def remove_stale_temporaries(paths) -> list[Path]:
    """Remove :func:`stale_temporaries` of every path; returns the removed files."""
    removed = []
    for path in paths:
        for tmp in stale_temporaries(path):
            with suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _encoding(ds: xr.Dataset) -> dict:
    """Lossless zlib compression for the non-empty numeric variables."""
    enc = {}
    for name, var in ds.variables.items():
        if var.size and np.issubdtype(var.dtype, np.number):
            enc[name] = {"zlib": True, "complevel": 4, "shuffle": True}
    return enc


def write_netcdf(ds: xr.Dataset, path, *, compress: bool = True) -> Path:
    """Write `ds` to `path` (NetCDF4/HDF5 via h5netcdf) atomically; returns the path.

    A crash or error while writing leaves any previous file at `path` intact and
    no temporary behind. Parent directories are created. Numeric variables are
    compressed losslessly unless compress=False.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"write_netcdf expects an xarray Dataset, got {type(ds).__name__}")
    write_netcdfs([(ds, path)], compress=compress)
    return Path(path)


def netcdf_bytes(ds: xr.Dataset, *, compress: bool = True) -> memoryview:
    """`ds` as the bytes of a NetCDF4/HDF5 file, built in memory."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"write_netcdf expects an xarray Dataset, got {type(ds).__name__}")
    ds = _without_stale_string_dtypes(ds)
    buffer = io.BytesIO()
    with _local_scheduler():
        ds.to_netcdf(buffer, engine="h5netcdf", encoding=_encoding(ds) if compress else None)
    return buffer.getbuffer()


def _characters(dtype: np.dtype) -> int:
    """Characters of a fixed-width string dtype (0: not one, or of variable width)."""
    if dtype.kind not in "US":
        return 0
    return dtype.itemsize // (4 if dtype.kind == "U" else 1)


def _without_stale_string_dtypes(ds: xr.Dataset) -> xr.Dataset:
    """`ds` (a shallow copy where needed) without the string dtype that reading a file leaves in a
    variable's encoding where the values have grown wider: xarray would write them in that width and
    cut the longer ones (a file of task ``'digits'`` (<U6) extended by ``'mts_xor'`` wrote ``'mts_xo'``)."""
    stale = [name for name, var in ds.variables.items()
             if var.dtype.kind in "US" and "dtype" in var.encoding
             and 0 < _characters(np.dtype(var.encoding["dtype"])) < _characters(var.dtype)]
    if not stale:
        return ds
    ds = ds.copy(deep=False)
    for name in stale:
        var = ds.variables[name]
        var.encoding = {key: value for key, value in var.encoding.items() if key != "dtype"}
    return ds


def _local_scheduler():
    """A context in which xarray writes with a local lock even where a Dask client is the default.

    Under a ``dask.distributed`` client xarray guards writes with a distributed
    lock named after the target, which an in-memory buffer cannot name (the
    scheduler refuses it); the bytes are built in this process, so a local lock
    is right. Without dask imported this is a no-op.
    """
    import contextlib
    import sys

    if "dask" not in sys.modules:
        return contextlib.nullcontext()
    import dask
    return dask.config.set(scheduler="synchronous")


def write_netcdfs(items, *, compress: bool = True) -> list[Path]:
    """Write several ``(dataset, path)`` pairs as one (:func:`atomic_outputs`): either every file is
    replaced or none; the renames happen in the given order. Returns the paths.

    HDF5 builds each file in memory and plain writes put it on disk: an HDF5
    file handle on a disk that filled up (ENOSPC) cannot be closed cleanly and
    crashed the process when it was collected, long after the error was handled.
    """
    items = list(items)
    blobs = [netcdf_bytes(ds, compress=compress) for ds, _ in items]
    paths = [Path(path) for _, path in items]
    with atomic_outputs(paths) as tmps:
        for path, tmp, blob in zip(paths, tmps, blobs):
            try:
                with open(tmp, "wb") as fh:
                    fh.write(blob)
            except OSError as exc:
                raise _named(exc, path) from None
    return paths


def read_netcdf(path) -> xr.Dataset:
    """Read a NetCDF file fully into memory (the file is closed on return).

    Raises FileNotFoundError for a missing file and NetCDFReadError (an OSError)
    naming the path for a corrupt, truncated or non-NetCDF file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no NetCDF file at {path}")
    if path.is_dir():
        raise IsADirectoryError(f"expected a NetCDF file, {path} is a directory")
    try:
        with xr.open_dataset(path, engine="h5netcdf", decode_timedelta=False) as ds:
            return ds.load()
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise NetCDFReadError(f"cannot read {path}: not a valid NetCDF file, it may be truncated or corrupt "
                              f"({type(exc).__name__}: {exc})") from None
