"""Two-neuron sequence detection (the mlGeNN delay paper's toy task).

Two input neurons fire one spike each, ``interval`` seconds apart; the class
is the order: class 0 when neuron 0 fires first (at ``onset``) and neuron 1
``interval`` later, class 1 the reverse. With fixed unit weights only the
delays can tell the two classes apart. The mlGeNN example uses spikes at 0
and 10 ms and 25 ms trials, which are the defaults here.

Optional jitter moves each spike independently by a uniform amount in
``[-jitter, +jitter]`` seconds; ``jitter < interval / 2`` keeps the order,
so the label always equals the actual firing order.
"""

from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains
from .base import TaskData, as_rng

__all__ = ["sequence"]


def sequence(n: int = 100, *, interval: float = 10e-3, onset: float = 0.0, jitter: float = 0.0,
             duration: float = 25e-3, seed=0) -> TaskData:
    """``n`` trials of the sequence task; class drawn uniformly from {0, 1} (times in seconds).

    Parameters: ``interval`` (s) between the two spikes, ``onset`` (s) of the
    first spike, ``jitter`` (s, half-width of uniform jitter, < interval / 2
    and <= onset), ``duration`` (s, >= onset + interval + jitter), ``seed``
    (int or numpy Generator). ``trial_meta['first']`` is the neuron that fired first.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if interval <= 0:
        raise ValueError(f"interval must be > 0 s, got {interval}")
    if not (0.0 <= jitter < interval / 2):
        raise ValueError(f"jitter must lie in [0, interval / 2) = [0, {interval / 2}) s to keep the order, "
                         f"got {jitter}")
    if onset < jitter:
        raise ValueError(f"onset ({onset} s) must be >= jitter ({jitter} s) so that no spike time is negative")
    if duration < onset + interval + jitter:
        raise ValueError(f"duration {duration} s is shorter than the latest possible spike at "
                         f"{onset + interval + jitter} s")
    rng = as_rng(seed)
    labels = rng.integers(0, 2, size=n)
    # time of neuron 0 and neuron 1 in each trial
    t0 = np.where(labels == 0, onset, onset + interval)
    t1 = np.where(labels == 0, onset + interval, onset)
    times = np.column_stack([t0, t1])
    if jitter > 0:
        times = times + rng.uniform(-jitter, jitter, size=times.shape)
    inputs = SpikeTrains(np.repeat(np.arange(n), 2), np.tile([0, 1], n), times.reshape(-1), n, 2).sorted()
    meta = dict(interval=interval, onset=onset, jitter=jitter)
    return TaskData(inputs, labels, 2, duration, "sequence", meta, {"first": labels.copy()})
