"""Sorting entries by (group, primary, secondary) in O(n): spikes by (trial, time, neuron), synapses by
(presynaptic neuron, delay, postsynaptic neuron).

:func:`grouped_lexsort` returns exactly ``np.lexsort((secondary, primary, group))`` (ties in all three
keys keep their original order). It groups the entries by a counting sort on the group, then sorts each
group on its own: its primary keys (floats) into about one bucket per entry by value, then each bucket
by insertion (by (primary, secondary), keeping the original order of equal entries). Groups already in
order are left as they are. A bucket with more than :data:`LARGE_BUCKET` entries (many equal or
clustered keys) and a group whose keys are all equal or not finite are sorted by two stable
mergesorts instead, so no input is quadratic. :func:`counting_sort` is the first step alone (a stable
argsort of small integer keys, with where each key's entries start).

Measured on a loaded 2-core machine (load ~5), 512k input spikes in 64 trials of 700 channels
(``bench/gradient.py``'s batch, unsorted within trials), fastest of 5 calls: 23-27 ms against 91-94 ms
for the three stable numpy sorts it replaces in :meth:`neurodelay.spikes.SpikeTrains.sort_order`; in
:func:`neurodelay.flat.flatten` (184k synapses) 13-15 ms against 48-51 ms for the whole call.

Inputs of :data:`THREADED_ENTRIES` entries or more have their groups sorted by several threads, each
taking a range of groups (``bench/sorting.py`` on 2 quiet cores, two runs each: the 512k input spikes
15.0-20.6 ms on one thread, 12.1-12.4 on two; the GPU engine's record, 1.5M spikes in 256 trials,
39.7-51.2 against 27.9-31.6 ms).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from ._threads import default_threads

__all__ = ["grouped_lexsort", "counting_sort", "LARGE_BUCKET", "THREADED_ENTRIES"]

#: buckets with more entries than this are sorted by mergesort instead of insertion
LARGE_BUCKET = 32
#: inputs with at least this many entries are sorted by several threads (ranges of groups)
THREADED_ENTRIES = 2 ** 17


@njit(cache=True, nogil=True)
def _lexsort_group(p, s, m, out):
    """out[:m] = the stable order of local entries 0..m-1 by (p, s) (two stable mergesorts)."""
    o1 = np.argsort(s[:m], kind="mergesort")
    o2 = np.argsort(p[:m][o1], kind="mergesort")
    for k in range(m):
        out[k] = o1[o2[k]]


@njit(cache=True, nogil=True)
def _counting_sort(group, n_groups):
    """(idx, ptr): the entries by group, original order within each group; group g is idx[ptr[g]:ptr[g + 1]]."""
    n = len(group)
    ptr = np.zeros(n_groups + 1, np.int64)
    for i in range(n):
        ptr[group[i] + 1] += 1
    for g in range(n_groups):
        ptr[g + 1] += ptr[g]
    fill = ptr[:-1].copy()
    idx = np.empty(n, np.int64)
    for i in range(n):
        g = group[i]
        idx[fill[g]] = i
        fill[g] += 1
    return idx, ptr


@njit(cache=True, nogil=True)
def _sort_groups(idx, ptr, g0, g1, primary, secondary):
    """Sort the entries idx[ptr[g]:ptr[g + 1]] of each group g in [g0, g1) by (primary, secondary), in place
    (stable); groups are disjoint slices, so ranges of groups can be sorted by threads at once."""
    largest = 0
    for g in range(g0, g1):
        largest = max(largest, ptr[g + 1] - ptr[g])
    p = np.empty(largest)                    # the group's keys, contiguous
    s = np.empty(largest, secondary.dtype)
    bucket = np.empty(largest, np.int64)
    start = np.zeros(largest + 1, np.int64)
    local = np.empty(largest, np.int64)      # local positions 0..m-1 in sorted order
    part = np.empty(largest, np.int64)
    for g in range(g0, g1):
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


def grouped_lexsort(group, n_groups: int, primary, secondary, n_threads: int | None = None) -> np.ndarray:
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
    n_threads : int, optional
        Threads sorting ranges of groups at once (default: all usable cores,
        :func:`neurodelay._threads.default_threads`); inputs of fewer than :data:`THREADED_ENTRIES` entries
        are sorted in the calling thread. The result does not depend on it.

    Returns
    -------
    np.ndarray
        int64 permutation (n,).

    Raises
    ------
    ValueError
        A group outside [0, n_groups), keys of different lengths, or n_threads below 1.
    """
    group = _checked_groups(group, n_groups)
    if len(group) == 0:
        return np.zeros(0, np.int64)
    if not (len(primary) == len(secondary) == len(group)):
        raise ValueError(f"group, primary and secondary must have one length, got {len(group)}, {len(primary)}, "
                         f"{len(secondary)}")
    if n_threads is not None and n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads}")
    primary, secondary = np.ascontiguousarray(primary, np.float64), np.ascontiguousarray(secondary, np.int64)
    idx, ptr = _counting_sort(group, int(n_groups))
    threads = min(n_threads or default_threads(), n_groups) if len(group) >= THREADED_ENTRIES else 1
    # ranges of groups holding about equal numbers of entries
    cuts = np.searchsorted(ptr, np.linspace(0, len(group), threads + 1)[1:-1], side="left")
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 0, n_groups), [n_groups]]))
    ranges = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
    if len(ranges) == 1:
        _sort_groups(idx, ptr, 0, n_groups, primary, secondary)
    else:
        with ThreadPoolExecutor(len(ranges)) as pool:
            list(pool.map(lambda r: _sort_groups(idx, ptr, r[0], r[1], primary, secondary), ranges))
    return idx


def counting_sort(group, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.argsort(group, kind="stable")`` in O(n + n_groups), and where each group starts.

    Parameters
    ----------
    group : int array (n,)
        Group of each entry, in [0, n_groups) (e.g. trial x neurons + neuron).
    n_groups : int
        Number of groups.

    Returns
    -------
    order : np.ndarray
        int64 permutation (n,): the entries by group, in their original order within each group.
    ptr : np.ndarray
        int64 (n_groups + 1,): group g is ``order[ptr[g]:ptr[g + 1]]``.

    Raises
    ------
    ValueError
        A group outside [0, n_groups).
    """
    group = _checked_groups(group, n_groups)
    return _counting_sort(group, int(n_groups))


def _checked_groups(group, n_groups: int) -> np.ndarray:
    """`group` as contiguous int64, checked to lie in [0, n_groups) (the kernels index by group without bounds
    checks)."""
    group = np.ascontiguousarray(group, np.int64)
    if len(group) and (group.min() < 0 or group.max() >= n_groups):
        raise ValueError(f"group index out of range [0, {n_groups}): min {group.min()}, max {group.max()}")
    return group
