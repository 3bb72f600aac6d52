"""Per-trial input spikes as lookup tables (the values of a Brian2 TimedArray).

A spike source of n neurons is driven from a table of shape (rows, n): column
i lists neuron i's spike times of one trial in increasing order (seconds),
padded with :data:`PAD_TIME`. The source neuron keeps a counter of the spikes
it has emitted and fires when the time in its current row is reached. The
table has a fixed shape for a build, so a new trial is a new value for the
same TimedArray (a ``run_args`` entry in standalone mode): off-grid input
times change without recompiling.

Under the runtime device the table is a :class:`RuntimeTable` instead: a
Brian2 function ``name(row, column)`` whose Cython code reads the values from
its namespace, so the compiled code does not depend on the table's shape or on
dt (one Cython compilation serves every network and step size); its values are
overwritten in place for each trial.
"""

from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains

__all__ = ["PAD_TIME", "rows_needed", "spike_table", "max_spikes_in_window", "RuntimeTable"]

#: time (s) of the padding rows: never reached
PAD_TIME = 1e9


def rows_needed(trains: SpikeTrains) -> int:
    """Rows a table needs for these trains: the most spikes of one neuron in one trial, plus a pad row."""
    if len(trains) == 0:
        return 1
    counts = trains.counts()
    return int(counts.max()) + 1


def spike_table(trains: SpikeTrains, trial: int, rows: int) -> np.ndarray:
    """Table (rows, n_neurons) of one trial's spike times in seconds, padded with PAD_TIME.

    Raises ValueError if a neuron has more spikes than rows - 1 (the last row is
    always padding, so a neuron that used all its spikes stays silent).
    """
    mask = trains.trial == trial
    neuron, time = trains.neuron[mask], trains.time[mask]
    table = np.full((rows, trains.n_neurons), PAD_TIME)
    if len(time) == 0:
        return table
    order = np.lexsort((time, neuron))
    neuron, time = neuron[order], time[order]
    first = np.searchsorted(neuron, np.arange(trains.n_neurons))
    rank = np.arange(len(neuron)) - first[neuron]
    if rank.max() >= rows - 1:
        worst = int(np.bincount(neuron).max())
        raise ValueError(f"trial {trial}: a neuron has {worst} input spikes but the input table has room for "
                         f"{rows - 1} per neuron; build with max_input_spikes >= {worst} "
                         f"(build_objects: input_rows >= {worst + 1})")
    table[rank, neuron] = time
    return table


def max_spikes_in_window(trains: SpikeTrains, window: float) -> int:
    """Most spikes of one neuron within any interval of length `window` (s), over all trials."""
    if len(trains) == 0:
        return 0
    # one increasing axis: each (trial, neuron) train shifted into its own interval
    stride = float(trains.time.max()) + window + 1.0
    key = (trains.trial * trains.n_neurons + trains.neuron).astype(float) * stride + trains.time
    key = np.sort(key)
    first = np.searchsorted(key, key - window, side="left")
    return int(np.max(np.arange(len(key)) - first + 1))


class RuntimeTable:
    """A spike-time table as a Brian2 function ``name(row, column)`` (seconds), for the runtime device.

    ``values`` is the (rows, n) array read by the compiled code; assign into it
    (``table.values[...] = new``) to change the inputs of the next run. Rows
    beyond the last repeat the last one (padding).
    """

    def __init__(self, name: str, rows: int, n: int):
        from brian2 import Function, second

        self.name = name
        self.values = np.full((rows, n), PAD_TIME)
        flat = self.values.reshape(-1)  # a view: the compiled code reads this buffer
        values = self.values

        def lookup(row, column):  # numpy target
            row = np.clip(np.asarray(row), 0, values.shape[0] - 1)
            return values[row, np.asarray(column)] * second

        self.function = Function(lookup, arg_units=[1, 1], return_unit=second,
                                 arg_types=["integer", "integer"], return_type="float")
        code = f"""
        cdef double {name}(int row, int column):
            global _namespace{name}_values, _namespace_num{name}_values, _namespace{name}_columns
            cdef int columns = _namespace{name}_columns[0]
            cdef int rows = _namespace_num{name}_values // columns
            if row >= rows:
                row = rows - 1
            if row < 0:
                row = 0
            return _namespace{name}_values[row*columns + column]
        """
        self.function.implementations.add_implementation(
            "cython", code, name=name,
            namespace={f"{name}_values": flat, f"{name}_columns": np.array([n], dtype=np.int32)})
