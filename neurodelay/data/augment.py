"""Training-set augmentations for channel-ordered spike data such as SHD (pure functions, seeded).

Both follow the EventProp/mlGeNN SHD experiments (Nowotny et al.; the
mlGeNN delay-learning code), with times in seconds instead of microseconds:

* :func:`channel_shift`: each trial is shifted across channels by its own
  random integer in ``[-max_shift, max_shift]`` (inclusive; the mlGeNN code
  draws ``randint(-s, s)``, which excludes ``+s``); spikes that leave
  ``[0, n_inputs)`` are dropped.
* :func:`blend`: new trials mixing two trials of the same class. For a
  random trial i and a random trial j of the same class (j may equal i),
  both are moved to their common centre: i is shifted by
  ``trunc((mc_j - mc_i) / 2)`` channels and ``(mt_j - mt_i) / 2`` seconds,
  j by the opposite amounts, where mc, mt are the mean channel and mean
  spike time of a trial. Spikes outside ``[0, n_inputs)`` or
  ``[0, duration]`` are dropped, then each remaining spike of either trial is
  kept independently with probability ``p_blend``; the union is the new
  trial, labelled with the common class. mlGeNN appends 7644 such trials
  to the 8156 SHD training trials with ``p_blend = 0.5``.
"""

from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains
from .base import TaskData, as_rng, concatenate

__all__ = ["channel_shift", "blend"]


def channel_shift(data: TaskData, max_shift: int, seed=0) -> TaskData:
    """Shift each trial's channels by a random integer in [-max_shift, max_shift]; drop out-of-range spikes.

    Labels, trial order and metadata are unchanged; ``trial_meta['channel_shift']``
    records the shift of each trial.
    """
    if int(max_shift) < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    rng = as_rng(seed)
    shifts = rng.integers(-int(max_shift), int(max_shift) + 1, size=len(data))
    x = data.inputs
    neuron = x.neuron + shifts[x.trial]
    keep = (neuron >= 0) & (neuron < x.n_neurons)
    inputs = SpikeTrains(x.trial[keep], neuron[keep], x.time[keep], x.n_trials, x.n_neurons)
    trial_meta = dict(data.trial_meta, channel_shift=shifts)
    return TaskData(inputs, data.labels, data.n_classes, data.duration, data.name, data.meta, trial_meta)


def _trial_spikes(x: SpikeTrains, slices: np.ndarray, k: int):
    return x.neuron[slices[k]:slices[k + 1]], x.time[slices[k]:slices[k + 1]]


def blend(data: TaskData, n_blend: int | None = None, *, p_blend: float = 0.5, seed=0,
          append: bool = True) -> TaskData:
    """``n_blend`` blended trials (default ``len(data)``), appended to ``data`` (or alone if not ``append``).

    See the module docstring for the procedure. ``trial_meta['blend_source']``
    (n, 2) gives, per output trial, the two source trials (i, j); an
    original trial k has (k, -1). Other per-trial metadata of a blended
    trial are copied from trial i.
    """
    if not (0.0 <= p_blend <= 1.0):
        raise ValueError(f"p_blend must lie in [0, 1], got {p_blend}")
    n = len(data)
    n_blend = n if n_blend is None else int(n_blend)
    if n_blend < 0:
        raise ValueError(f"n_blend must be >= 0, got {n_blend}")
    if n == 0 and n_blend > 0:
        raise ValueError("cannot blend trials of an empty TaskData")
    rng = as_rng(seed)
    x = data.inputs.sorted()
    slices = x.trial_slices()
    by_class = [np.flatnonzero(data.labels == c) for c in range(data.n_classes)]
    first = rng.integers(0, n, size=n_blend) if n_blend else np.zeros(0, np.int64)
    second = np.array([by_class[data.labels[i]][rng.integers(0, len(by_class[data.labels[i]]))]
                       for i in first], dtype=np.int64)

    trial, neuron, time = [], [], []
    for b, (i, j) in enumerate(zip(first, second)):
        (ci, ti), (cj, tj) = _trial_spikes(x, slices, i), _trial_spikes(x, slices, j)
        if ci.size and cj.size:
            dc, dt = np.trunc((cj.mean() - ci.mean()) / 2), (tj.mean() - ti.mean()) / 2
        else:
            dc, dt = 0.0, 0.0
        c = np.concatenate([ci + int(dc), cj - int(dc)])
        t = np.concatenate([ti + dt, tj - dt])
        keep = (c >= 0) & (c < x.n_neurons) & (t >= 0) & (t <= data.duration)
        keep &= rng.random(c.size) < p_blend
        order = np.argsort(t[keep], kind="stable")
        neuron.append(c[keep][order])
        time.append(t[keep][order])
        trial.append(np.full(order.size, b, dtype=np.int64))
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    inputs = SpikeTrains(cat(trial, np.int64), cat(neuron, np.int64), cat(time, float), n_blend, x.n_neurons)
    trial_meta = {k: v[first] for k, v in data.trial_meta.items()}
    trial_meta["blend_source"] = np.column_stack([first, second]).astype(np.int64)
    blended = TaskData(inputs, data.labels[first], data.n_classes, data.duration, data.name,
                       dict(data.meta, p_blend=p_blend), trial_meta)
    if not append:
        return blended
    originals = TaskData(data.inputs, data.labels, data.n_classes, data.duration, data.name,
                         dict(data.meta, p_blend=p_blend),
                         dict(data.trial_meta,
                              blend_source=np.column_stack([np.arange(n), np.full(n, -1)]).astype(np.int64)))
    return concatenate([originals, blended])
