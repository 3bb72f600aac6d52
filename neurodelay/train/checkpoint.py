"""Training checkpoints as NetCDF files (atomic, no pickle), and resuming from them.

A checkpoint holds everything needed to continue a run bit for bit:

* the whole network (:mod:`neurodelay.train.network_state` layout),
* the optimiser's raw trained values (``raw{i}``, attribute ``key``: the
  parameter key as a JSON list, attribute ``name``: its dotted name; raw
  values differ from the network's values under a sigmoid parametrisation),
  its moments (``adam_m{i}``, ``adam_v{i}``), step count and configuration,
* the state of the training random generator (numpy ``bit_generator.state``,
  as JSON: its 128-bit integers do not fit NetCDF integers),
* the number of completed epochs, the history so far (variables
  ``history_<name>`` along ``epoch``) and the run configuration (JSON).

Written with :func:`neurodelay.io.write_netcdf`, so a crash while saving
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..io import read_netcdf, to_json, write_netcdf
from ..network import Network
from .network_state import network_from_dataset, network_to_dataset
from .optim import key_name

__all__ = ["Checkpoint", "save_checkpoint", "checkpoint_to_dataset", "load_checkpoint", "history_to_prefixed",
           "history_from_prefixed"]

FORMAT = "neurodelay-checkpoint-1"
HISTORY_PREFIX = "history_"


@dataclass
class Checkpoint:
    """The state of a training run after `epoch` completed epochs."""

    network: Network
    raw: dict                      # key (tuple) -> raw trained value (optimiser space)
    constraints: dict              # key -> Constraint.to_dict()
    optimiser_config: dict
    optimiser_state: dict          # "step", "m:<key name>", "v:<key name>"
    rng_state: dict                # numpy bit_generator.state
    epoch: int
    history: xr.Dataset
    config: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)   # trainer bookkeeping (best epoch, stop reason, ...)

    def rng(self) -> np.random.Generator:
        """A Generator in the stored state."""
        name = self.rng_state["bit_generator"]
        bit_gen = getattr(np.random, name)()
        bit_gen.state = self.rng_state
        return np.random.Generator(bit_gen)


def history_to_prefixed(history: xr.Dataset) -> xr.Dataset:
    """History variables renamed ``history_<name>`` (its coordinates other than epoch too)."""
    renames = {name: HISTORY_PREFIX + str(name) for name in history.variables if name != "epoch"}
    return history.rename(renames)


def history_from_prefixed(ds: xr.Dataset) -> xr.Dataset:
    """Inverse of :func:`history_to_prefixed`, picking the history out of a larger Dataset."""
    names = [n for n in ds.variables if str(n).startswith(HISTORY_PREFIX)]
    keep = ds[names] if names else xr.Dataset()
    if "epoch" in ds.coords:
        keep = keep.assign_coords(epoch=ds["epoch"])
    out = keep.rename({n: str(n)[len(HISTORY_PREFIX):] for n in names})
    out.attrs = {}
    return out


def save_checkpoint(path, ckpt: Checkpoint) -> Path:
    """Write `ckpt` to `path` atomically (NetCDF); returns the path."""
    return write_netcdf(checkpoint_to_dataset(ckpt), path)


def checkpoint_to_dataset(ckpt: Checkpoint) -> xr.Dataset:
    """`ckpt` as the Dataset :func:`save_checkpoint` writes."""
    ds = network_to_dataset(ckpt.network)
    keys = sorted(ckpt.raw, key=key_name)
    for i, key in enumerate(keys):
        raw = np.asarray(ckpt.raw[key], float)
        dim = f"param{i}_element"
        ds[f"raw{i}"] = xr.Variable(dim, raw.reshape(-1), {
            "key": to_json(list(key)), "name": key_name(key), "shape": to_json(list(raw.shape)),
            "constraint": to_json(ckpt.constraints.get(key, {}))})
        for moment in ("m", "v"):
            value = ckpt.optimiser_state.get(f"{moment}:{key_name(key)}")
            if value is not None:
                ds[f"adam_{moment}{i}"] = xr.Variable(dim, np.asarray(value, float).reshape(-1),
                                                      {"name": key_name(key)})
    extra_state = {k: v for k, v in ckpt.optimiser_state.items()
                   if not (k.startswith("m:") or k.startswith("v:"))}
    ds = xr.merge([ds, history_to_prefixed(ckpt.history)], combine_attrs="override") \
        if len(ckpt.history.variables) else ds
    ds.attrs.update({
        "format": FORMAT,
        "epoch": int(ckpt.epoch),
        "trained_keys": to_json([list(k) for k in keys]),
        "optimiser_config": to_json(ckpt.optimiser_config),
        "optimiser_scalars": to_json(extra_state),
        "rng_state": json.dumps(ckpt.rng_state),
        "config": to_json(ckpt.config),
        "extra": to_json(ckpt.extra),
    })
    return ds


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (raises a clear error for other files)."""
    ds = read_netcdf(path)
    if ds.attrs.get("format") != FORMAT:
        raise ValueError(f"{path} is not a neurodelay training checkpoint (format attribute "
                         f"{ds.attrs.get('format')!r}, expected {FORMAT!r})")
    try:
        return _checkpoint_from_dataset(ds)
    except KeyError as exc:
        what = str(exc.args[0]).split(".")[0][:120] if exc.args else "an entry"
        raise ValueError(f"{path}: damaged checkpoint, it lacks {what}") from None
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc})") from None


def _checkpoint_from_dataset(ds: xr.Dataset) -> Checkpoint:
    keys = [tuple(k) for k in json.loads(ds.attrs["trained_keys"])]
    raw, constraints = {}, {}
    state = json.loads(ds.attrs["optimiser_scalars"])
    for i, key in enumerate(keys):
        shape = tuple(json.loads(ds[f"raw{i}"].attrs["shape"]))
        raw[key] = ds[f"raw{i}"].values.astype(float).reshape(shape)
        constraints[key] = json.loads(ds[f"raw{i}"].attrs["constraint"])
        for moment in ("m", "v"):
            if f"adam_{moment}{i}" in ds.variables:
                state[f"{moment}:{key_name(key)}"] = ds[f"adam_{moment}{i}"].values.astype(float).reshape(shape)
    return Checkpoint(network=network_from_dataset(ds), raw=raw, constraints=constraints,
                      optimiser_config=json.loads(ds.attrs["optimiser_config"]), optimiser_state=state,
                      rng_state=json.loads(ds.attrs["rng_state"]), epoch=int(ds.attrs["epoch"]),
                      history=history_from_prefixed(ds), config=json.loads(ds.attrs["config"]),
                      extra=json.loads(ds.attrs["extra"]))
