"""Permuted sequential digits: scikit-learn's bundled 8x8 digits read in a fixed random pixel order.

Data: ``sklearn.datasets.load_digits`` (1797 images, 10 classes, pixel
values 0..16; bundled with scikit-learn, no download). Pixel values are
scaled to ``v = pixel / 16`` in [0, 1].

Sequence: the 64 pixels of every image, in one fixed random order
``permutation`` (``np.random.default_rng(permutation_seed).permutation(64)``),
are presented ``pixels_per_step`` (p, a divisor of 64) at a time in
``n_steps = 64 / p`` steps: step k (k = 0..n_steps-1), at time
``k * dt_step`` seconds, shows flat pixels ``permutation[k p : (k + 1) p]`` of
the row-major 8x8 image, pixel ``permutation[k p + s]`` in input slot s.
p = 1 is the classic pixel-by-pixel sequence (64 steps). The default
p = 8, dt_step = 8 ms (8 steps of 8 random pixels, 64 ms) is the setting in
which the recurrent network of the ``digits`` recipe learns in a few
epochs (about 60-80 % test accuracy); pixel by pixel (p = 1, dt_step = 1 ms)
it stays at about 20 % (see :mod:`neurodelay.train.recipes`).

Encoding (threshold crossing, as in the spiking sequential-MNIST literature),
per slot: ``n_levels`` thresholds ``theta_j = (j + 1) / (n_levels + 1)``,
j = 0..n_levels-1. With ``v_{-1} = 0`` and ``v_k`` the slot's pixel at step k,

* neuron ``2 n_levels s + 2 j`` (up-crossing) spikes at ``k * dt_step`` if ``v_{k-1} < theta_j <= v_k``;
* neuron ``2 n_levels s + 2 j + 1`` (down-crossing) spikes at ``k * dt_step`` if ``v_k < theta_j <= v_{k-1}``.

So the number of thresholds at or below ``v_k`` (the quantised pixel) is
the slot's running count of up- minus down-spikes. If ``cue`` is true, the
last neuron (``2 n_levels p``) spikes once at ``n_steps * dt_step`` to mark
the end of the sequence. Inputs: ``2 n_levels p (+ 1)``; trial duration:
``(n_steps + 1) * dt_step``.

Split: stratified ``train_test_split(test_size=test_fraction,
random_state=split_seed)`` over the 1797 images.
"""

from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains
from .base import TaskData

__all__ = ["digits", "digit_permutation", "N_STEPS"]

N_STEPS = 64        # pixels per image (the number of steps at one pixel per step)


def digit_permutation(permutation_seed: int) -> np.ndarray:
    """The fixed pixel order (int64, shape (64,)) for a seed."""
    return np.random.default_rng(permutation_seed).permutation(N_STEPS).astype(np.int64)


def digits(split: str = "train", n: int | None = None, *, n_levels: int = 4, dt_step: float = 8e-3,
           permutation_seed: int = 0, split_seed: int = 0, test_fraction: float = 0.25,
           cue: bool = True, pixels_per_step: int = 8) -> TaskData:
    """Permuted sequential digits as threshold-crossing spikes (times in seconds; see the module docstring).

    Parameters
    ----------
    split : 'train' | 'test' | 'all'
    n : int, optional
        Keep only the first ``n`` trials of the split.
    n_levels : number of thresholds (2 neurons each per slot).
    dt_step : duration of one step, s.
    permutation_seed : seed of the fixed pixel order.
    split_seed, test_fraction : the stratified train/test split.
    cue : add the end-of-sequence neuron.
    pixels_per_step : pixels shown per step (a divisor of 64).

    ``trial_meta['index']`` is the image index in ``load_digits()``,
    ``trial_meta['sequence']`` (n, 64) the permuted pixel values in [0, 1];
    ``meta`` holds ``permutation`` and ``thresholds``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown digits split {split!r}; choose 'train', 'test' or 'all'")
    if int(n_levels) < 1:
        raise ValueError(f"n_levels must be >= 1, got {n_levels}")
    if dt_step <= 0:
        raise ValueError(f"dt_step must be > 0 s, got {dt_step}")
    n_levels, pixels_per_step = int(n_levels), int(pixels_per_step)
    if pixels_per_step < 1 or N_STEPS % pixels_per_step:
        raise ValueError(f"pixels_per_step must divide {N_STEPS}, got {pixels_per_step}")
    bunch = load_digits()
    images, targets = bunch.data / 16.0, bunch.target.astype(np.int64)       # (1797, 64) in [0, 1]
    all_idx = np.arange(len(targets))
    if split == "all":
        idx = all_idx
    else:
        train_idx, test_idx = train_test_split(all_idx, test_size=test_fraction, random_state=split_seed,
                                               stratify=targets)
        idx = train_idx if split == "train" else test_idx
    if n is not None:
        if int(n) < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        idx = idx[:int(n)]
    idx = np.asarray(idx, dtype=np.int64)
    perm = digit_permutation(permutation_seed)
    seq = images[idx][:, perm]                                                # (n, 64)
    n_steps = N_STEPS // pixels_per_step
    slots = seq.reshape(len(idx), n_steps, pixels_per_step)                   # (n, steps, slots)
    prev = np.concatenate([np.zeros((len(idx), 1, pixels_per_step)), slots[:, :-1]], axis=1)
    thresholds = (np.arange(n_levels) + 1.0) / (n_levels + 1.0)

    trial, neuron, step = [], [], []
    for j, th in enumerate(thresholds):
        for polarity, hit in enumerate(((prev < th) & (slots >= th), (slots < th) & (prev >= th))):
            tr, k, slot = np.nonzero(hit)
            trial.append(tr)
            neuron.append(2 * n_levels * slot + 2 * j + polarity)
            step.append(k)
    n_in = 2 * n_levels * pixels_per_step + (1 if cue else 0)
    if cue:
        trial.append(np.arange(len(idx)))
        neuron.append(np.full(len(idx), n_in - 1))
        step.append(np.full(len(idx), n_steps))
    time = np.concatenate(step) * dt_step
    inputs = SpikeTrains(np.concatenate(trial), np.concatenate(neuron), time, len(idx), n_in).sorted()
    meta = dict(split=split, n_levels=n_levels, dt_step=dt_step, permutation_seed=permutation_seed,
                split_seed=split_seed, test_fraction=test_fraction, cue=cue, pixels_per_step=pixels_per_step,
                permutation=perm, thresholds=thresholds)
    return TaskData(inputs, targets[idx], 10, (n_steps + 1) * dt_step, "digits", meta,
                    {"index": idx, "sequence": seq})
