"""Multi-time-scale XOR (after Moro et al., "The role of temporal hierarchy in spiking neural networks").

Input neurons (in this order):

* channel A: ``n_per_channel`` neurons, Poisson during coding window 1,
  ``[0, window)`` seconds, at ``rate_high`` Hz if bit A is 1, else ``rate_low`` Hz;
  silent otherwise;
* channel B: ``n_per_channel`` neurons, Poisson during coding window 2,
  ``[window + gap, 2 window + gap)`` seconds, at the rate of bit B; silent otherwise;
* noise: ``n_noise`` neurons firing Poisson at ``rate_noise`` Hz for the whole trial.

The label is ``bit_A XOR bit_B``; the bits are drawn independently and
uniformly. The network has to keep bit A for ``window + gap`` seconds until B
arrives, hence the multiple time scales. Trial duration:
``2 window + gap + tail`` seconds (``tail`` leaves time for the readout).

``variant="moro"`` gives instead the task exactly as Moro et al. 2024 define it
(after Zheng et al. 2024, Nat Commun), see :func:`mts_xor_moro`: 100 steps of
10 ms, two channels of 20 Bernoulli neurons, background noise, and 6 segments
each with its own XOR label.
"""

from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains
from .base import TaskData, as_rng

__all__ = ["mts_xor", "mts_xor_moro"]


def _poisson_block(rng, rates_hz: np.ndarray, start: float, length: float):
    """Poisson spikes for a (n_trials, n_neurons) rate array on [start, start + length) s.

    Returns (trial, local neuron, time) flat arrays.
    """
    counts = rng.poisson(rates_hz * length)
    trial_idx, neuron_idx = np.nonzero(np.ones_like(counts, dtype=bool))
    c = counts.reshape(-1)
    trial = np.repeat(trial_idx, c)
    neuron = np.repeat(neuron_idx, c)
    time = start + rng.uniform(0.0, length, size=trial.size)
    return trial, neuron, time


def mts_xor(n: int = 1000, *, n_per_channel: int = 10, n_noise: int = 10, rate_low: float = 5.0,
            rate_high: float = 50.0, rate_noise: float = 5.0, window: float = 0.05, gap: float = 0.1,
            tail: float = 0.05, seed=0, variant: str = "ours", **moro_options) -> TaskData:
    """``n`` trials of the multi-time-scale XOR task (rates in Hz, times in seconds).

    Parameters
    ----------
    variant : ``"ours"`` (the task of this module's docstring, the other parameters below) or
        ``"moro"`` (Moro et al.'s task: ``mts_xor_moro(n, seed=seed, **moro_options)``; the
        parameters of ``"ours"`` are then ignored).
    n_per_channel : neurons per input channel (A and B).
    n_noise : background noise neurons (may be 0).
    rate_low, rate_high : channel rate coding bit 0 / bit 1, Hz (rate_high > rate_low >= 0).
    rate_noise : rate of the noise neurons, Hz.
    window : length of each coding window, s.
    gap : silent gap between window 1 and window 2, s.
    tail : time after window 2 until the trial ends, s.
    seed : int or numpy Generator.

    ``trial_meta['bits']`` (n, 2) int64 holds (bit A, bit B); ``meta`` holds the
    neuron ranges of channel A, channel B and noise and the window bounds.
    """
    if variant == "moro":
        return mts_xor_moro(n, seed=seed, **moro_options)
    if variant != "ours":
        raise ValueError(f"variant must be 'ours' or 'moro', got {variant!r}")
    if moro_options:
        raise TypeError(f"unexpected argument(s) {sorted(moro_options)} for variant 'ours'")
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n_per_channel < 1 or n_noise < 0:
        raise ValueError(f"need n_per_channel >= 1 and n_noise >= 0, got {n_per_channel}, {n_noise}")
    if not (0.0 <= rate_low < rate_high) or rate_noise < 0:
        raise ValueError(f"need 0 <= rate_low < rate_high and rate_noise >= 0 (Hz), got "
                         f"{rate_low}, {rate_high}, {rate_noise}")
    if window <= 0 or gap < 0 or tail < 0:
        raise ValueError(f"need window > 0, gap >= 0, tail >= 0 (s), got {window}, {gap}, {tail}")
    rng = as_rng(seed)
    bits = rng.integers(0, 2, size=(n, 2))
    labels = bits[:, 0] ^ bits[:, 1]
    rates = np.where(bits == 1, rate_high, rate_low).astype(float)          # (n, 2) Hz
    duration = 2 * window + gap + tail
    windows = ((0.0, window), (window + gap, 2 * window + gap))

    parts = []
    for ch, (start, stop) in enumerate(windows):
        r = np.repeat(rates[:, ch:ch + 1], n_per_channel, axis=1)
        tr, ne, ti = _poisson_block(rng, r, start, stop - start)
        parts.append((tr, ne + ch * n_per_channel, ti))
    if n_noise:
        tr, ne, ti = _poisson_block(rng, np.full((n, n_noise), float(rate_noise)), 0.0, duration)
        parts.append((tr, ne + 2 * n_per_channel, ti))
    n_in = 2 * n_per_channel + n_noise
    trial, neuron, time = (np.concatenate([p[i] for p in parts]) for i in range(3))
    # uniform(0, length) excludes length, but keep the record safely inside [0, duration]
    time = np.minimum(time, duration)
    inputs = SpikeTrains(trial, neuron, time, n, n_in).sorted()
    meta = dict(n_per_channel=n_per_channel, n_noise=n_noise, rate_low=rate_low, rate_high=rate_high,
                rate_noise=rate_noise, window=window, gap=gap, tail=tail, windows=windows,
                channel_a=(0, n_per_channel), channel_b=(n_per_channel, 2 * n_per_channel),
                noise=(2 * n_per_channel, n_in))
    return TaskData(inputs, labels, 2, duration, "mts_xor", meta, {"bits": bits})


def mts_xor_moro(n: int = 1000, *, n_per_channel: int = 20, dt: float = 0.01, p_noise: float = 0.01,
                 p_low: float = 0.2, p_high: float = 0.6, first_steps: int = 10, n_segments: int = 6,
                 segment_steps: int = 15, active_steps: int = 10, jitter: bool = True, seed=0) -> TaskData:
    """``n`` trials of Moro et al.'s MTS-XOR (after Zheng et al. 2024), on a grid of ``dt`` s steps.

    Inputs: channel 1 = neurons ``[0, n_per_channel)``, channel 2 = ``[n_per_channel, 2 n_per_channel)``.
    Each trial draws bit 1 and one bit 2 per segment, independently and uniformly. In every step every
    neuron fires (at most once) with probability ``p_noise`` (background); in addition channel 1 fires
    with probability ``p_high`` (bit 1) or ``p_low`` (bit 0) per neuron and step in the first
    ``first_steps`` steps, and in segment k (steps ``first_steps + k segment_steps`` onwards, length
    ``segment_steps``) channel 2 fires likewise with its bit k during the last ``active_steps`` steps
    (after a silent gap of ``segment_steps - active_steps`` steps). A neuron fires at most one spike
    per step (the noise and the channel events are OR-ed). Defaults: 100 steps of 10 ms = 1 s.

    Spike times: a spike of step i lies at ``(i + u) dt`` with u ~ U[0, 1) if ``jitter`` (off-grid times
    for the exact engine), else exactly at ``i dt`` (the step's start, as on a clock-driven simulator).

    Returns
    -------
    TaskData
        ``labels``: the target of the *last* segment (a one-label-per-trial view);
        ``trial_meta['segment_labels']`` (n, n_segments) int64: XOR(bit 1, bit 2 of segment k), the
        per-segment targets of Moro et al.; ``trial_meta['bits']`` (n, 1 + n_segments): bit 1 then the
        bits 2. ``meta['segment_windows']``: (start, stop) s of each segment; ``meta['active_windows']``:
        (start, stop) s where channel 2 codes its bit; ``meta['first_window']``: channel 1's window.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for name, value in (("n_per_channel", n_per_channel), ("first_steps", first_steps),
                        ("n_segments", n_segments), ("segment_steps", segment_steps),
                        ("active_steps", active_steps)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if active_steps > segment_steps:
        raise ValueError(f"active_steps must be <= segment_steps, got {active_steps} > {segment_steps}")
    for name, value in (("p_noise", p_noise), ("p_low", p_low), ("p_high", p_high)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    if not float(dt) > 0:
        raise ValueError(f"dt must be > 0 s, got {dt}")
    rng = as_rng(seed)
    n_steps = first_steps + n_segments * segment_steps
    n_in = 2 * n_per_channel
    bits = rng.integers(0, 2, size=(n, 1 + n_segments))
    seg_labels = (bits[:, :1] ^ bits[:, 1:]).astype(np.int64)
    # per (trial, step, neuron) firing probability of the coding events
    p = np.zeros((n, n_steps, n_in))
    level = np.where(bits == 1, p_high, p_low)
    p[:, :first_steps, :n_per_channel] = level[:, 0, None, None]
    active = []
    for k in range(n_segments):
        start = first_steps + k * segment_steps + (segment_steps - active_steps)
        stop = first_steps + (k + 1) * segment_steps
        p[:, start:stop, n_per_channel:] = level[:, 1 + k, None, None]
        active.append((start * dt, stop * dt))
    fires = (rng.random(p.shape) < p) | (rng.random(p.shape) < p_noise)
    trial, step, neuron = np.nonzero(fires)
    offset = rng.random(trial.size) if jitter else np.zeros(trial.size)
    duration = n_steps * dt
    time = np.minimum((step + offset) * dt, duration)
    inputs = SpikeTrains(trial, neuron, time, n, n_in).sorted()
    meta = dict(variant="moro", n_per_channel=n_per_channel, dt=dt, p_noise=p_noise, p_low=p_low,
                p_high=p_high, first_steps=first_steps, n_segments=n_segments, segment_steps=segment_steps,
                active_steps=active_steps, n_steps=n_steps, jitter=jitter,
                channel_1=(0, n_per_channel), channel_2=(n_per_channel, n_in),
                first_window=(0.0, first_steps * dt),
                segment_windows=tuple(((first_steps + k * segment_steps) * dt,
                                       (first_steps + (k + 1) * segment_steps) * dt) for k in range(n_segments)),
                active_windows=tuple(active))
    return TaskData(inputs, seg_labels[:, -1] if n_segments else np.zeros(n, np.int64), 2, duration,
                    "mts_xor_moro", meta, {"segment_labels": seg_labels, "bits": bits})
