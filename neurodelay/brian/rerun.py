"""New values for a built network without recompiling: run_args (standalone) or assignment (runtime).

In C++ standalone and brian2cuda a compiled binary is relaunched with
``device.run(run_args={...})``: every writable state array (neuron
parameters, synaptic weights and delays) and the TimedArray input tables get
new values of the same shape. The traps of Brian2 2.10.1 handled here:

* new delays are applied only because ``device.apply_run_args()`` was called
  after ``connect()`` and before ``run()`` when the project was built (see
  :mod:`.simulator`);
* the key of a synaptic delay is the pathway variable's addressable value
  (``run_args={S.delay: ...}`` would name a non-existent array);
* array lengths are not checked by Brian2: they are checked here;
* the value files written for run_args accumulate in the project's
  ``static_arrays`` folder: they are removed after each run.

In runtime mode the same values are assigned to the objects directly (after
``Network.restore``) and the input tables (:class:`.tables.RuntimeTable`)
are overwritten in place.
"""

from __future__ import annotations

import os

import numpy as np

from ..network import Network
from .builder import BrianObjects, parameter_values

__all__ = ["run_arg_key", "standalone_run_args", "assign_values", "remove_run_arg_files"]


def run_arg_key(owner, variable: str):
    """The run_args key of one variable of a Brian2 group or Synapses object."""
    if variable == "delay":
        return owner.pre.variables["delay"].get_addressable_value_with_unit("delay", owner)
    return getattr(owner, variable)


def _check_size(owner, variable: str, value, n_expected: int) -> None:
    size = np.size(value)
    if size not in (1, n_expected):
        raise ValueError(f"{owner.name}.{variable}: {size} values for {n_expected} elements "
                         f"(Brian2 does not check run_args sizes; refusing to pass a wrong length)")


def standalone_run_args(objects: BrianObjects, net: Network, tables: dict, sizes: dict, state=None) -> dict:
    """run_args for one standalone run: every parameter of `net`, the state at t = 0 and every input table.

    tables: source name -> (rows, n) array of spike times (s); sizes: Brian2
    object name -> number of elements (neurons or synapses), from the build;
    state: (V, I) at t = 0 per global neuron (default the description's).
    """
    from brian2 import second

    args = {}
    for owner, variable, value in parameter_values(objects, net, state):
        _check_size(owner, variable, value, sizes[owner.name])
        args[run_arg_key(owner, variable)] = value
    for name, table in objects.tables.items():
        values = np.asarray(tables[name], dtype=float)
        if values.shape != table.values.shape:
            raise ValueError(f"input table of {name!r} has shape {values.shape}, the build has "
                             f"{table.values.shape}")
        args[table] = values * second
    return args


def assign_values(objects: BrianObjects, net: Network, tables: dict, state=None) -> None:
    """Runtime device: set every parameter of `net` and the state at t = 0 (state: (V, I) per
    global neuron, default the description's), and overwrite the input tables in place
    (tables: source name -> (rows, n) array of spike times, s)."""
    for owner, variable, value in parameter_values(objects, net, state):
        setattr(owner, variable, value)
    for name, table in objects.tables.items():
        values = np.asarray(tables[name], dtype=float)
        if values.shape != table.values.shape:
            raise ValueError(f"input table of {name!r} has shape {values.shape}, the build has "
                             f"{table.values.shape}")
        # the compiled lookup reads this very buffer (a C-contiguous float64 array)
        table.values[...] = values


def remove_run_arg_files(device) -> None:
    """Delete the value files the last device.run wrote for its run_args."""
    folder = os.path.join(device.project_dir, "static_arrays")
    for name in list(device.run_args_arrays):
        for path in (os.path.join(folder, name), os.path.join(folder, name + ".lock")):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
