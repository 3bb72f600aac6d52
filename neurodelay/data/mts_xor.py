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
"""

from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains
from .base import TaskData, as_rng

__all__ = ["mts_xor"]


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
            tail: float = 0.05, seed=0) -> TaskData:
    """``n`` trials of the multi-time-scale XOR task (rates in Hz, times in seconds).

    Parameters
    ----------
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
