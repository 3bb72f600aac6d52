"""Spike trains as flat (trial, neuron, time) records.

This is the one format in which inputs enter every engine and in which data
loaders return their samples: three aligned 1-d arrays, times in seconds,
plus the number of trials and of neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import as_seconds

__all__ = ["SpikeTrains"]


@dataclass(frozen=True)
class SpikeTrains:
    """Flat spike record: spike k is neuron ``neuron[k]`` of trial ``trial[k]`` at ``time[k]`` seconds."""

    trial: np.ndarray
    neuron: np.ndarray
    time: np.ndarray
    n_trials: int
    n_neurons: int

    def __post_init__(self):
        for label in ("n_trials", "n_neurons"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{label} must be an integer >= 0, got {value!r}")
        trial = np.asarray(self.trial)
        neuron = np.asarray(self.neuron)
        time = as_seconds(self.time, "spike times", np.shape(self.time), minimum=0.0)
        if not (trial.ndim == neuron.ndim == time.ndim == 1) or not (len(trial) == len(neuron) == len(time)):
            raise ValueError(f"trial, neuron and time must be 1-d arrays of one length, got shapes "
                             f"{trial.shape}, {neuron.shape}, {time.shape}")
        for arr, label, n in ((trial, "trial", self.n_trials), (neuron, "neuron", self.n_neurons)):
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"{label} indices must be integers, got dtype {arr.dtype}")
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise ValueError(f"{label} index out of range [0, {n}): min {arr.min()}, max {arr.max()}")
        object.__setattr__(self, "trial", trial.astype(np.int64))
        object.__setattr__(self, "neuron", neuron.astype(np.int64))
        object.__setattr__(self, "time", time)
        object.__setattr__(self, "n_trials", int(self.n_trials))
        object.__setattr__(self, "n_neurons", int(self.n_neurons))

    @classmethod
    def from_lists(cls, trains, n_neurons: int | None = None) -> "SpikeTrains":
        """From nested lists ``trains[trial][neuron] = array of times`` (seconds or Brian2 times)."""
        trial, neuron, time = [], [], []
        width = 0
        for k, per_trial in enumerate(trains):
            width = max(width, len(per_trial))
            for i, times in enumerate(per_trial):
                t = np.atleast_1d(as_seconds(times, f"spike times of trial {k}, neuron {i}", np.shape(times)))
                trial.append(np.full(t.size, k))
                neuron.append(np.full(t.size, i))
                time.append(t)
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
        return cls(cat(trial, np.int64), cat(neuron, np.int64), cat(time, float),
                   len(trains), n_neurons if n_neurons is not None else width)

    @classmethod
    def empty(cls, n_trials: int, n_neurons: int) -> "SpikeTrains":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, np.zeros(0), n_trials, n_neurons)

    def __len__(self) -> int:
        return len(self.time)

    def sorted(self) -> "SpikeTrains":
        """Copy sorted by (trial, time, neuron) (stable: equal spikes keep their order)."""
        order = self.sort_order()
        if order is None:
            return SpikeTrains(self.trial, self.neuron, self.time, self.n_trials, self.n_neurons)   # copies them
        return SpikeTrains(self.trial[order], self.neuron[order], self.time[order], self.n_trials, self.n_neurons)

    def sort_order(self) -> np.ndarray | None:
        """The permutation that :meth:`sorted` applies: ``np.lexsort((neuron, time, trial))``, or None
        where the spikes are already in that order.

        Cheaper than the lexsort: an O(n) check first (sorted inputs, e.g. from the data loaders,
        need no sort; inputs whose trials are each contiguous and in order, e.g. a shuffled batch
        of them, need only a stable sort by trial, indices below 2**16 as uint16, which numpy sorts
        by radix), else :func:`neurodelay._sorting.grouped_lexsort` (a counting sort by trial, then
        each trial by time buckets: O(n), 3-4x faster than numpy's stable sorts on a batch of 64 SHD-sized
        trials).
        """
        trial, neuron, time = self.trial, self.neuron, self.time
        if len(time) < 2:
            return None
        dt, dtm = np.diff(trial), np.diff(time)
        in_trial = (dtm > 0) | ((dtm == 0) & (np.diff(neuron) >= 0))     # each pair in (time, neuron) order
        if np.all((dt > 0) | ((dt == 0) & in_trial)):
            return None
        small = (lambda x, n: x.astype(np.uint16) if n <= 2 ** 16 else x)
        changes = np.flatnonzero(dt)
        blocks = np.count_nonzero(np.bincount(trial, minlength=self.n_trials))
        if len(changes) == blocks - 1 and np.all(in_trial[dt == 0]):
            # every trial's spikes contiguous and in order: a stable sort by trial suffices
            return np.argsort(small(trial, self.n_trials), kind="stable")
        from ._sorting import grouped_lexsort
        return grouped_lexsort(trial, self.n_trials, time, neuron)

    def select_trials(self, trials) -> "SpikeTrains":
        """Spikes of the given trials, renumbered 0..len(trials)-1 in the given order."""
        trials = np.asarray(trials, dtype=np.int64)
        remap = np.full(self.n_trials, -1, dtype=np.int64)
        remap[trials] = np.arange(len(trials))
        keep = remap[self.trial] >= 0
        return SpikeTrains(remap[self.trial[keep]], self.neuron[keep], self.time[keep], len(trials), self.n_neurons)

    def trial_slices(self) -> np.ndarray:
        """For a record sorted by trial: start offsets, shape (n_trials + 1,)."""
        return np.searchsorted(self.trial, np.arange(self.n_trials + 1), side="left")

    def per_neuron(self, trial: int) -> list[np.ndarray]:
        """Sorted spike times of each neuron in one trial."""
        mask = self.trial == trial
        n, t = self.neuron[mask], self.time[mask]
        return [np.sort(t[n == i]) for i in range(self.n_neurons)]

    def counts(self) -> np.ndarray:
        """Spike counts, shape (n_trials, n_neurons)."""
        out = np.zeros((self.n_trials, self.n_neurons), dtype=np.int64)
        np.add.at(out, (self.trial, self.neuron), 1)
        return out
