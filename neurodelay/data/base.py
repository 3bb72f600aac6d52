"""The labelled spike-train container that every task generator and loader returns.

A :class:`TaskData` is one set of trials: the input spikes of every trial as a
:class:`~neurodelay.spikes.SpikeTrains` (times in seconds), one integer class
label per trial, the number of classes and the trial duration in seconds.
Per-trial side information (for example the raw Yin-Yang points or the SHD
speaker of each sample) lives in ``trial_meta``; everything else (encoding
parameters, class names, seeds) in ``meta``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..spikes import SpikeTrains

__all__ = ["TaskData", "concatenate", "as_rng"]


def as_rng(seed) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator (returned as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


@dataclass(frozen=True)
class TaskData:
    """Labelled spike trains of one task split.

    Attributes
    ----------
    inputs : SpikeTrains
        Input spikes; ``inputs.n_trials`` trials of ``inputs.n_neurons`` input
        neurons, times in seconds measured from the trial start.
    labels : ndarray of int64, shape (n_trials,)
        Class of each trial, in ``[0, n_classes)``.
    n_classes : int
        Number of classes of the task.
    duration : float
        Trial length in seconds; every spike time lies in ``[0, duration]``.
    name : str
        Task name (e.g. ``"yinyang"``, ``"shd"``).
    meta : dict
        Global information (encoding parameters in seconds, seeds, class names).
    trial_meta : dict of ndarray
        Per-trial arrays whose first axis has length ``n_trials``; subset and
        reordered together with the trials by :meth:`select`.
    """

    inputs: SpikeTrains
    labels: np.ndarray
    n_classes: int
    duration: float
    name: str
    meta: dict = field(default_factory=dict)
    trial_meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.inputs, SpikeTrains):
            raise TypeError(f"{self.name}: inputs must be a SpikeTrains, got {type(self.inputs).__name__}")
        labels = np.asarray(self.labels)
        n = self.inputs.n_trials
        if labels.shape != (n,):
            raise ValueError(f"{self.name}: labels must have shape ({n},) (one per trial), got {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{self.name}: labels must be integers, got dtype {labels.dtype}")
        n_classes = int(self.n_classes)
        if n_classes < 1:
            raise ValueError(f"{self.name}: n_classes must be >= 1, got {n_classes}")
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"{self.name}: labels out of range [0, {n_classes}): "
                             f"min {labels.min()}, max {labels.max()}")
        duration = float(self.duration)
        if not np.isfinite(duration) or duration < 0:
            raise ValueError(f"{self.name}: duration must be a finite number of seconds >= 0, got {duration}")
        if len(self.inputs) and self.inputs.time.max() > duration:
            raise ValueError(f"{self.name}: a spike at {self.inputs.time.max()} s lies after the trial "
                             f"duration {duration} s")
        trial_meta = {}
        for key, value in dict(self.trial_meta).items():
            arr = np.asarray(value)
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ValueError(f"{self.name}: trial_meta[{key!r}] must have first axis of length {n} "
                                 f"(one entry per trial), got shape {arr.shape}")
            trial_meta[key] = arr
        object.__setattr__(self, "labels", labels.astype(np.int64))
        object.__setattr__(self, "n_classes", n_classes)
        object.__setattr__(self, "duration", duration)
        object.__setattr__(self, "meta", dict(self.meta))
        object.__setattr__(self, "trial_meta", trial_meta)

    def __len__(self) -> int:
        """Number of trials."""
        return self.inputs.n_trials

    @property
    def n_inputs(self) -> int:
        """Number of input neurons."""
        return self.inputs.n_neurons

    def select(self, idx) -> "TaskData":
        """Trials ``idx`` (integer indices, unique, or a boolean mask), renumbered 0..len(idx)-1 in that order."""
        idx = np.asarray(idx)
        n = len(self)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise ValueError(f"{self.name}: boolean mask must have shape ({n},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"{self.name}: trial index out of range for {n} trials: "
                             f"min {idx.min()}, max {idx.max()}")
        idx = idx % max(n, 1)
        if np.unique(idx).size != idx.size:
            raise ValueError(f"{self.name}: select() needs unique trial indices")
        return TaskData(self.inputs.select_trials(idx), self.labels[idx], self.n_classes, self.duration,
                        self.name, self.meta, {k: v[idx] for k, v in self.trial_meta.items()})

    def batches(self, batch_size: int, rng=None, *, shuffle: bool = True,
                drop_last: bool = False) -> Iterator["TaskData"]:
        """Minibatches of ``batch_size`` trials each (the last one may be smaller unless ``drop_last``).

        ``rng`` (int seed, numpy Generator or None) draws the shuffled order;
        with ``shuffle=False`` the trials come in their stored order.
        """
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        batch_size = int(batch_size)
        order = as_rng(rng).permutation(len(self)) if shuffle else np.arange(len(self))
        for start in range(0, len(self), batch_size):
            chunk = order[start:start + batch_size]
            if drop_last and len(chunk) < batch_size:
                break
            yield self.select(chunk)

    def class_counts(self) -> np.ndarray:
        """Number of trials of each class, shape (n_classes,)."""
        return np.bincount(self.labels, minlength=self.n_classes)


def concatenate(parts, *, name: str | None = None) -> TaskData:
    """Trials of several TaskData one after the other (same n_inputs and n_classes).

    The duration is the largest one; ``meta`` is the first part's; a
    ``trial_meta`` key is kept only if every part has it.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("concatenate() needs at least one TaskData")
    first = parts[0]
    for p in parts[1:]:
        if p.n_inputs != first.n_inputs or p.n_classes != first.n_classes:
            raise ValueError(f"cannot concatenate {p.name!r} ({p.n_inputs} inputs, {p.n_classes} classes) "
                             f"with {first.name!r} ({first.n_inputs} inputs, {first.n_classes} classes)")
    offsets = np.cumsum([0] + [len(p) for p in parts])
    trial = np.concatenate([p.inputs.trial + off for p, off in zip(parts, offsets)])
    neuron = np.concatenate([p.inputs.neuron for p in parts])
    time = np.concatenate([p.inputs.time for p in parts])
    inputs = SpikeTrains(trial, neuron, time, int(offsets[-1]), first.n_inputs)
    keys = [k for k in first.trial_meta if all(k in p.trial_meta for p in parts)]
    trial_meta = {k: np.concatenate([p.trial_meta[k] for p in parts]) for k in keys}
    return TaskData(inputs, np.concatenate([p.labels for p in parts]), first.n_classes,
                    max(p.duration for p in parts), name or first.name, first.meta, trial_meta)
