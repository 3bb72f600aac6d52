"""Permuted sequential digits: scikit-learn's bundled 8x8 digits read pixel by pixel.

Data: ``sklearn.datasets.load_digits`` (1797 images, 10 classes, pixel
values 0..16; bundled with scikit-learn, no download). Pixel values are
scaled to ``v = pixel / 16`` in [0, 1].

Sequence: the 64 pixels of every image are presented one per step, step
``k`` (k = 0..63) at time ``k * dt_step`` seconds, in one fixed random order
``permutation`` (``np.random.default_rng(permutation_seed).permutation(64)``;
step k shows flat pixel ``permutation[k]`` of the row-major 8x8 image).

Encoding (threshold crossing, as in the spiking sequential-MNIST literature):
``n_levels`` thresholds ``theta_j = (j + 1) / (n_levels + 1)``, j = 0..n_levels-1.
With ``v_{-1} = 0``, at step k

* neuron ``2 j`` (up-crossing) spikes at ``k * dt_step`` if ``v_{k-1} < theta_j <= v_k``;
* neuron ``2 j + 1`` (down-crossing) spikes at ``k * dt_step`` if ``v_k < theta_j <= v_{k-1}``.

So the number of thresholds at or below ``v_k`` (the quantised pixel) is
the running count of up- minus down-spikes. If ``cue`` is true, neuron
``2 n_levels`` spikes once at ``64 * dt_step`` to mark the end of the
sequence. Trial duration: ``65 * dt_step``.

Split: stratified ``train_test_split(test_size=test_fraction,
random_state=split_seed)`` over the 1797 images.
"""

from __future__ import annotations

import numpy as np

from ..spikes import SpikeTrains
from .base import TaskData

__all__ = ["digits", "digit_permutation", "N_STEPS"]

N_STEPS = 64


def digit_permutation(permutation_seed: int) -> np.ndarray:
    """The fixed pixel order (int64, shape (64,)) for a seed."""
    return np.random.default_rng(permutation_seed).permutation(N_STEPS).astype(np.int64)


def digits(split: str = "train", n: int | None = None, *, n_levels: int = 4, dt_step: float = 1e-3,
           permutation_seed: int = 0, split_seed: int = 0, test_fraction: float = 0.25,
           cue: bool = True) -> TaskData:
    """Permuted sequential digits as threshold-crossing spikes (times in seconds).

    Parameters
    ----------
    split : 'train' | 'test' | 'all'
    n : int, optional
        Keep only the first ``n`` trials of the split.
    n_levels : number of thresholds (2 neurons each).
    dt_step : duration of one pixel step, s.
    permutation_seed : seed of the fixed pixel order.
    split_seed, test_fraction : the stratified train/test split.
    cue : add the end-of-sequence neuron.

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
    n_levels = int(n_levels)
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
    prev = np.column_stack([np.zeros(len(idx)), seq[:, :-1]])
    thresholds = (np.arange(n_levels) + 1.0) / (n_levels + 1.0)

    trial, neuron, step = [], [], []
    for j, th in enumerate(thresholds):
        for polarity, hit in enumerate(((prev < th) & (seq >= th), (seq < th) & (prev >= th))):
            tr, k = np.nonzero(hit)
            trial.append(tr)
            neuron.append(np.full(tr.size, 2 * j + polarity))
            step.append(k)
    n_in = 2 * n_levels + (1 if cue else 0)
    if cue:
        trial.append(np.arange(len(idx)))
        neuron.append(np.full(len(idx), 2 * n_levels))
        step.append(np.full(len(idx), N_STEPS))
    time = np.concatenate(step) * dt_step
    inputs = SpikeTrains(np.concatenate(trial), np.concatenate(neuron), time, len(idx), n_in).sorted()
    meta = dict(split=split, n_levels=n_levels, dt_step=dt_step, permutation_seed=permutation_seed,
                split_seed=split_seed, test_fraction=test_fraction, cue=cue, permutation=perm,
                thresholds=thresholds)
    return TaskData(inputs, targets[idx], 10, (N_STEPS + 1) * dt_step, "digits", meta,
                    {"index": idx, "sequence": seq})
