"""Sorting entries by (group, primary, secondary) in O(n): spikes by (trial, time, neuron), synapses by
(presynaptic neuron, delay, postsynaptic neuron).

:func:`grouped_lexsort` returns exactly ``np.lexsort((secondary, primary, group))`` (ties in all three
keys keep their original order). It groups the entries by a counting sort on the group, then sorts each
group on its own: its primary keys (floats) into about one bucket per entry by value, then each bucket
by insertion (by (primary, secondary), keeping the original order of equal entries). Groups already in
order are left as they are. A bucket with more than :data:`LARGE_BUCKET` entries (many equal or
clustered keys) and a group whose keys are all equal or not finite are sorted by two stable
mergesorts instead, so no input is quadratic.

Measured on a loaded 2-core machine (load ~5), 512k input spikes in 64 trials of 700 channels
(``bench/gradient.py``'s batch, unsorted within trials), fastest of 5 calls: 23-27 ms against 91-94 ms
for the three stable numpy sorts it replaces in :meth:`neurodelay.spikes.SpikeTrains.sort_order`; in
:func:`neurodelay.flat.flatten` (184k synapses) 13-15 ms against 48-51 ms for the whole call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["grouped_lexsort", "LARGE_BUCKET"]

#: buckets with more entries than this are sorted by mergesort instead of insertion
LARGE_BUCKET = 32


@njit(cache=True, nogil=True)
def _lexsort_group(p, s, m, out):
    """out[:m] = the stable order of local entries 0..m-1 by (p, s) (two stable mergesorts)."""
    o1 = np.argsort(s[:m], kind="mergesort")
    o2 = np.argsort(p[:m][o1], kind="mergesort")
    for k in range(m):
        out[k] = o1[o2[k]]


@njit(cache=True, nogil=True)
def _grouped_lexsort(group, n_groups, primary, secondary):
    n = len(group)
    ptr = np.zeros(n_groups + 1, np.int64)
    for i in range(n):
        ptr[group[i] + 1] += 1
    for g in range(n_groups):
        ptr[g + 1] += ptr[g]
    fill = ptr[:-1].copy()
    idx = np.empty(n, np.int64)
    for i in range(n):                       # counting sort by group: original order within each group
        g = group[i]
        idx[fill[g]] = i
        fill[g] += 1
    largest = 0
    for g in range(n_groups):
        largest = max(largest, ptr[g + 1] - ptr[g])
    p = np.empty(largest)                    # the group's keys, contiguous
    s = np.empty(largest, secondary.dtype)
    bucket = np.empty(largest, np.int64)
    start = np.zeros(largest + 1, np.int64)
    local = np.empty(largest, np.int64)      # local positions 0..m-1 in sorted order
    part = np.empty(largest, np.int64)
    for g in range(n_groups):
        a, b = ptr[g], ptr[g + 1]
        m = b - a
        if m < 2:
            continue
        for k in range(m):
            p[k] = primary[idx[a + k]]
            s[k] = secondary[idx[a + k]]
        ordered = True
        lo, hi = p[0], p[0]
        for k in range(1, m):
            if p[k] < p[k - 1] or (p[k] == p[k - 1] and s[k] < s[k - 1]):
                ordered = False
            lo = min(lo, p[k])
            hi = max(hi, p[k])
        if ordered:
            continue
        if not (hi > lo and np.isfinite(hi - lo)):
            _lexsort_group(p, s, m, local)
        else:
            scale = m / (hi - lo)
            start[: m + 1] = 0
            for k in range(m):
                q = min(int((p[k] - lo) * scale), m - 1)
                bucket[k] = q
                start[q + 1] += 1
            for q in range(m):
                start[q + 1] += start[q]
            for k in range(m):               # scatter into buckets; then start[q] is the end of bucket q
                q = bucket[k]
                local[start[q]] = k
                start[q] += 1
            lo_q = 0
            for q in range(m):
                hi_q = start[q]
                size = hi_q - lo_q
                if size > LARGE_BUCKET:
                    for k in range(size):
                        part[k] = local[lo_q + k]
                    bp, bs = p[part[:size]], s[part[:size]]
                    o = np.empty(size, np.int64)
                    _lexsort_group(bp, bs, size, o)
                    for k in range(size):
                        local[lo_q + k] = part[o[k]]
                elif size > 1:
                    for k in range(lo_q + 1, hi_q):      # insertion sort, strict: equal keys keep order
                        x = local[k]
                        px, sx = p[x], s[x]
                        j = k - 1
                        while j >= lo_q and (px < p[local[j]] or (px == p[local[j]] and sx < s[local[j]])):
                            local[j + 1] = local[j]
                            j -= 1
                        local[j + 1] = x
                lo_q = hi_q
        for k in range(m):
            part[k] = idx[a + local[k]]
        for k in range(m):
            idx[a + k] = part[k]
    return idx


def grouped_lexsort(group, n_groups: int, primary, secondary) -> np.ndarray:
    """``np.lexsort((secondary, primary, group))`` in O(n) expected time (see the module docstring).

    Parameters
    ----------
    group : int array (n,)
        Group of each entry, in [0, n_groups) (e.g. the trial of a spike).
    n_groups : int
        Number of groups.
    primary : float array (n,)
        First key within a group (e.g. the spike time, s).
    secondary : int array (n,)
        Second key (e.g. the neuron).

    Returns
    -------
    np.ndarray
        int64 permutation (n,).

    Raises
    ------
    ValueError
        A group outside [0, n_groups), or keys of different lengths.
    """
    group = np.ascontiguousarray(group, np.int64)
    if len(group) == 0:
        return np.zeros(0, np.int64)
    if group.min() < 0 or group.max() >= n_groups:     # the kernel indexes by group without bounds checks
        raise ValueError(f"group index out of range [0, {n_groups}): min {group.min()}, max {group.max()}")
    if not (len(primary) == len(secondary) == len(group)):
        raise ValueError(f"group, primary and secondary must have one length, got {len(group)}, {len(primary)}, "
                         f"{len(secondary)}")
    return _grouped_lexsort(group, int(n_groups), np.ascontiguousarray(primary, np.float64),
                            np.ascontiguousarray(secondary, np.int64))
