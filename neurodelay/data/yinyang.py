"""Yin-Yang classification task (Kriener et al. 2022), generated like the official generator.

Points (x, y) in the unit square inside a circle of radius ``r_big = 0.5``
around (0.5, 0.5), three classes (0 "yin", 1 "yang", 2 "dot"). Sampling
(official procedure, numpy ``RandomState(seed)``): for each sample draw a
target class with ``rng.randint(3)``, then draw ``(x, y) = rng.rand(2) * 2 * r_big``
until the point lies inside the big circle and has the target class.
Official splits: train 5000 points (seed 42), validation 1000 (seed 41),
test 1000 (seed 40). Asking for ``n`` points of a split gives the first ``n``
points of that split (the draws are sequential).

Each point becomes one trial of 5 input neurons, one spike each: neurons
0..3 encode the features ``[x, y, 1-x, 1-y]`` as latencies
``t = t_early + v (t_late - t_early)`` seconds, neuron 4 is a bias neuron
spiking at ``bias_time``. Defaults (DelGrad-like, in units of the synaptic
time constant ``tau_s = 5 ms``): ``t_early = 0.15 tau_s``, ``t_late = 2 tau_s``,
``bias_time = 0.9 tau_s``, trial duration ``4 tau_s``.
"""

from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains
from .base import TaskData

__all__ = ["yinyang", "yinyang_class", "yinyang_points", "SPLITS", "CLASS_NAMES"]

#: official split -> (number of points, RandomState seed)
SPLITS = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}
CLASS_NAMES = ("yin", "yang", "dot")


def yinyang_class(x, y, r_small: float = 0.1, r_big: float = 0.5):
    """Class (0 yin, 1 yang, 2 dot) of points (x, y); arrays broadcast, result int64 (scalar for scalars).

    d_r, d_l are the distances to the dot centres (1.5 r_big, r_big) and
    (0.5 r_big, r_big). Class 2 if d_r < r_small or d_l < r_small; else 1 if
    d_r <= r_small or r_small < d_l <= r_big / 2 or (y > r_big and
    d_r > r_big / 2); else 0. Points outside the big circle are not excluded here.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    d_r = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_l = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    yang = (d_r <= r_small) | ((d_l > r_small) & (d_l <= 0.5 * r_big)) | ((y > r_big) & (d_r > 0.5 * r_big))
    dot = (d_r < r_small) | (d_l < r_small)
    out = np.where(dot, 2, yang.astype(np.int64)).astype(np.int64)
    return out[()] if out.ndim == 0 else out


def yinyang_points(n: int, seed: int, r_small: float = 0.1, r_big: float = 0.5):
    """``n`` points by the official rejection procedure; returns (points (n, 2) float, classes (n,) int64)."""
    rng = np.random.RandomState(seed)
    points = np.empty((int(n), 2))
    classes = np.empty(int(n), dtype=np.int64)
    for k in range(int(n)):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            if yinyang_class(x, y, r_small, r_big) == goal:
                break
        points[k] = x, y
        classes[k] = goal
    return points, classes


def yinyang(split: str = "train", n: int | None = None, *, seed: int | None = None,
            tau_s: float = 5e-3, t_early: float | None = None, t_late: float | None = None,
            bias_time: float | None = None, bias: bool = True, duration: float | None = None,
            r_small: float = 0.1, r_big: float = 0.5) -> TaskData:
    """Yin-Yang split as latency-coded spikes (times in seconds).

    Parameters
    ----------
    split : 'train' | 'validation' | 'test'
        Official split (size and seed from :data:`SPLITS`).
    n : int, optional
        Number of points (default: the split's size); the first ``n`` points of the split.
    seed : int, optional
        Overrides the split's RandomState seed.
    tau_s : float
        Time unit in seconds (synaptic time constant) for the defaults below.
    t_early, t_late : float, optional
        Latency of feature value 0 and 1 in seconds (default 0.15 tau_s, 2 tau_s).
    bias_time : float, optional
        Spike time of the bias neuron (index 4) in seconds (default 0.9 tau_s).
    bias : bool
        Include the bias neuron (5 inputs) or not (4 inputs).
    duration : float, optional
        Trial duration in seconds (default 4 tau_s, at least the latest spike).

    Returns a TaskData with ``trial_meta['points']`` (n, 2) raw (x, y) and
    ``meta`` holding the encoding parameters.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown Yin-Yang split {split!r}; choose one of {sorted(SPLITS)}")
    size, split_seed = SPLITS[split]
    n = size if n is None else int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    seed = split_seed if seed is None else int(seed)
    t_early = 0.15 * tau_s if t_early is None else float(t_early)
    t_late = 2.0 * tau_s if t_late is None else float(t_late)
    bias_time = 0.9 * tau_s if bias_time is None else float(bias_time)
    if not (0.0 <= t_early < t_late):
        raise ValueError(f"need 0 <= t_early < t_late, got t_early={t_early} s, t_late={t_late} s")
    if bias and bias_time < 0:
        raise ValueError(f"bias_time must be >= 0 s, got {bias_time}")
    latest = max(t_late, bias_time if bias else 0.0)
    duration = max(4.0 * tau_s, latest) if duration is None else float(duration)
    if duration < latest:
        raise ValueError(f"duration {duration} s is shorter than the latest possible spike at {latest} s")

    points, classes = yinyang_points(n, seed, r_small, r_big)
    features = np.column_stack([points, 1.0 - points])                    # (n, 4), values in [0, 1]
    times = t_early + features * (t_late - t_early)
    if bias:
        times = np.column_stack([times, np.full(n, bias_time)])
    n_in = times.shape[1]
    inputs = SpikeTrains(np.repeat(np.arange(n), n_in), np.tile(np.arange(n_in), n), times.reshape(-1),
                         n, n_in).sorted()
    meta = dict(split=split, seed=seed, tau_s=tau_s, t_early=t_early, t_late=t_late,
                bias_time=bias_time if bias else None, r_small=r_small, r_big=r_big,
                features=("x", "y", "1-x", "1-y") + (("bias",) if bias else ()), class_names=CLASS_NAMES)
    return TaskData(inputs, classes, 3, duration, "yinyang", meta, {"points": points})
