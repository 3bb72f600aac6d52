"""Compiled forward kernel of a recurrent group of the layered engine (numba, releases the GIL).

A *recurrent group* is a set of LIF neurons whose populations form a cycle of
projections (self-recurrence pop -> pop, or a cycle between populations of one
layer). Its neurons are coupled, so they are simulated together, one trial at a
time, but each neuron keeps its own event sources:

* **input arrivals** (from the earlier layers and the spike sources, all known
  before the group runs) are generated and sorted per neuron once, with the
  feedforward kernels' bucket sort (:func:`~._kernels.gather_sorted`), and read
  with a cursor;
* **recurrent arrivals** are pushed, as the group's spikes happen, into a small
  binary heap per neuron keyed by (time, synapse) (one row of a 2-d array: a
  neuron's pending arrivals lie together in memory);
* the **next event** of the group is taken from an indexed min-heap over the
  group's neurons keyed by each neuron's next event time (its next input
  arrival, next recurrent arrival or predicted threshold crossing); only the
  neuron that had the event, and the targets of a spike, are re-keyed.

Each neuron's events are applied with the event engine's exact dynamics
(:func:`~neurodelay.events.dynamics.state_at`,
:func:`~neurodelay.events.dynamics.biased_crossing`) in the order the event
engine applies them: a spike due at the time of an arrival comes first, and
arrivals at one time are applied in synapse order (the (time, synapse id) rule
of every engine). The exact crossing search is skipped, as in
:func:`~._kernels.scan_forward`, where :func:`~._kernels.below_until` shows that
V stays below theta until the neuron's next known arrival (an earlier recurrent
arrival, pushed later, only shortens that interval, and re-predicts).

Times in seconds. The event loop's arrays are arguments and never reassigned
(see the performance note of :mod:`neurodelay.events.kernel`): when a heap row
or the spike record is full the loop returns, the caller grows the array and
re-enters it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..events.dynamics import biased_crossing, state_at
from ..events.heap import indexed_sift_down, indexed_sift_up
from ._kernels import below_until, gather_sorted, incoming_count

STATUS_OK = 0
STATUS_TOO_MANY_SPIKES = 1

_DONE, _NEED_PENDING, _NEED_RECORDS = 0, 1, 2
_NSPK, _STATUS = 0, 1


@njit(cache=True)
def _before(t1, q1, t2, q2):
    """(t1, q1) < (t2, q2) lexicographically: the tie rule of every engine."""
    return t1 < t2 or (t1 == t2 and q1 < q2)


@njit(cache=True)
def _pending_push(ht, hq, hn, j, t, q):
    """Push arrival (t, q) into neuron j's heap (row j of ht/hq, hn[j] items; room checked by the caller)."""
    k = hn[j]
    while k > 0:
        parent = (k - 1) >> 1
        if not _before(t, q, ht[j, parent], hq[j, parent]):
            break
        ht[j, k] = ht[j, parent]
        hq[j, k] = hq[j, parent]
        k = parent
    ht[j, k] = t
    hq[j, k] = q
    hn[j] += 1


@njit(cache=True)
def _pending_pop(ht, hq, hn, j):
    """Remove the first arrival of neuron j's heap."""
    size = hn[j] - 1
    hn[j] = size
    if size == 0:
        return
    t = ht[j, size]
    q = hq[j, size]
    k = 0
    while True:
        c = 2 * k + 1
        if c >= size:
            break
        if c + 1 < size and _before(ht[j, c + 1], hq[j, c + 1], ht[j, c], hq[j, c]):
            c += 1
        if not _before(ht[j, c], hq[j, c], t, q):
            break
        ht[j, k] = ht[j, c]
        hq[j, k] = hq[j, c]
        k = c
    ht[j, k] = t
    hq[j, k] = q


@njit(cache=True)
def _rekey(j, key, item, pos, new):
    """Set neuron j's key in the indexed heap and restore the heap."""
    old = key[j]
    key[j] = new
    if new < old:
        indexed_sift_up(key, item, pos, pos[j])
    elif new > old:
        indexed_sift_down(key, item, pos, pos[j], key.shape[0])


@njit(cache=True, nogil=True)
def _group_loop(members, tau_m, tau_s, theta, reset, refractory, closed, in_w, t_end, sample_times, col_of,
                samples, max_spikes, v_off, ext_ptr, ext_n, ext_t, ext_q, rec_ptr, rec_post, rec_d, rec_q,
                v, cur, t_last, ref_end, pred, apos, sp, key, item, pos, ht, hq, hn, r_t, r_n, r_g, counters):
    """Process the group's events in time order until t_end, or until a heap row or the record is full
    (then return _NEED_PENDING / _NEED_RECORDS with the state intact, else _DONE). Local neuron index l,
    global index members[l]."""
    n_spk = counters[_NSPK]
    status = counters[_STATUS]
    n_samples = sample_times.shape[0]
    cap = ht.shape[1]
    code = _DONE
    while True:
        l = item[0]
        t_now = key[l]
        if t_now > t_end:
            break
        j = members[l]
        tm, ts, th, rs = tau_m[j], tau_s[j], theta[j], reset[j]
        a = apos[l]
        t_x = ext_t[ext_ptr[l] + a] if a < ext_n[l] else np.inf
        q_x = ext_q[ext_ptr[l] + a] if a < ext_n[l] else 0
        has_r = hn[l] > 0
        t_r = ht[l, 0] if has_r else np.inf
        q_r = hq[l, 0] if has_r else 0
        is_spike = pred[l] <= t_x and pred[l] <= t_r
        if is_spike:
            if n_spk == r_t.shape[0]:
                code = _NEED_RECORDS
                break
            fan = rec_ptr[l + 1] - rec_ptr[l]
            full = False
            for c in range(rec_ptr[l], rec_ptr[l + 1]):
                if hn[rec_post[c]] + fan > cap:
                    full = True
                    break
            if full:
                code = _NEED_PENDING
                break
        col = col_of[j]
        if col >= 0:
            s = sp[l]
            while s < n_samples and sample_times[s] < t_now:
                samples[s, col] = state_at(v[l], cur[l], t_last[l], ref_end[l], rs, tm, ts, sample_times[s])[0] \
                    + v_off[j]
                s += 1
            sp[l] = s
        if is_spike:
            _, i_s = state_at(v[l], cur[l], t_last[l], ref_end[l], rs, tm, ts, t_now)
            cur[l] = i_s
            t_last[l] = t_now
            r_t[n_spk] = t_now
            r_n[n_spk] = j
            r_g[n_spk] = i_s - th
            n_spk += 1
            v[l] = rs
            ref_end[l] = t_now + refractory[j]
            for c in range(rec_ptr[l], rec_ptr[l + 1]):
                t_arr = t_now + rec_d[c]
                if t_arr > t_end:
                    continue
                post = rec_post[c]
                _pending_push(ht, hq, hn, post, t_arr, rec_q[c])
                if t_arr < key[post]:
                    key[post] = t_arr
                    indexed_sift_up(key, item, pos, pos[post])
            if n_spk > max_spikes:
                status = STATUS_TOO_MANY_SPIKES
                break
        else:
            v[l], cur[l] = state_at(v[l], cur[l], t_last[l], ref_end[l], rs, tm, ts, t_now)
            t_last[l] = t_now
            if has_r and _before(t_r, q_r, t_x, q_x):
                cur[l] += in_w[q_r]
                _pending_pop(ht, hq, hn, l)
            else:
                cur[l] += in_w[q_x]
                apos[l] = a + 1
        # the neuron's new prediction (as scan_forward) and its next event
        a = apos[l]
        t_x = ext_t[ext_ptr[l] + a] if a < ext_n[l] else np.inf
        t_r = ht[l, 0] if hn[l] > 0 else np.inf
        t_next = min(t_x, t_r)
        if ref_end[l] > t_last[l]:
            i0 = state_at(v[l], cur[l], t_last[l], ref_end[l], rs, tm, ts, ref_end[l])[1]
            pred[l] = ref_end[l] + biased_crossing(rs, i0, tm, ts, th, closed[j], 0.0)
        elif below_until(v[l], cur[l], tm, ts, th, min(t_next, t_end) - t_last[l]):
            pred[l] = np.inf
        else:
            pred[l] = t_last[l] + biased_crossing(v[l], cur[l], tm, ts, th, closed[j], 0.0)
        _rekey(l, key, item, pos, min(pred[l], t_next))
    counters[_NSPK] = n_spk
    counters[_STATUS] = status
    return code


@njit(cache=True, nogil=True)
def forward_group(members, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory, closed,
                  s_start, s_end, s_time, t_end, sample_times, col_of, samples, max_spikes, u_init, i_init, v_off,
                  rec_ptr, rec_post, rec_d, rec_q):
    """Exact forward simulation of one recurrent group (LIF neurons `members`, global indices) in one trial.

    in_*: the post-major synapse table (every incoming synapse q of neuron j in
    in_ptr[j]..in_ptr[j+1]-1: presynaptic neuron, total delay s, weight); the
    spikes of the earlier layers in s_time (grouped by neuron: s_start/s_end, the
    group's own neurons empty). rec_*: the group's own synapses, grouped by
    presynaptic local index (rec_ptr), with the postsynaptic local index, delay
    and the synapse's q. theta, reset: bias-shifted (theta - b, reset - b); u_init
    = V(0) - b, i_init = I(0), v_off = b (see :func:`~._kernels.scan_forward`).
    V of neurons with col_of >= 0 goes to samples[:, col] at sample_times.

    Returns (spike times, global neurons, I - theta, status): the spikes in time
    order, STATUS_TOO_MANY_SPIKES if more than max_spikes were emitted.
    """
    n_g = members.shape[0]
    # the input arrivals of every neuron, sorted by (time, synapse)
    ext_ptr = np.zeros(n_g + 1, np.int64)
    mmax = 0
    for l in range(n_g):
        m = incoming_count(members[l], in_ptr, in_pre, s_start, s_end)
        ext_ptr[l + 1] = ext_ptr[l] + m
        mmax = max(mmax, m)
    counts = np.empty(mmax + 1, np.int64)
    ext_t = np.empty(ext_ptr[n_g])
    ext_q = np.empty(ext_ptr[n_g], np.int64)
    ext_n = np.zeros(n_g, np.int64)
    no_id = np.empty(0, np.int64)
    for l in range(n_g):
        lo, hi = ext_ptr[l], ext_ptr[l + 1]
        if hi > lo:
            ext_n[l] = gather_sorted(members[l], in_ptr, in_pre, in_d, s_start, s_end, s_time, no_id, t_end, False,
                                     counts, ext_t[lo:hi], ext_q[lo:hi], no_id)
    # per-neuron state (u = V - b) and the index of next events
    v = np.empty(n_g)
    cur = np.empty(n_g)
    t_last = np.zeros(n_g)
    ref_end = np.full(n_g, -np.inf)
    pred = np.full(n_g, np.inf)
    apos = np.zeros(n_g, np.int64)
    sp = np.zeros(n_g, np.int64)
    key = np.full(n_g, np.inf)
    item = np.arange(n_g)
    pos = np.arange(n_g)
    for l in range(n_g):
        j = members[l]
        v[l] = u_init[j]
        cur[l] = i_init[j]
        if u_init[j] != 0.0 or i_init[j] != 0.0 or v_off[j] != 0.0:
            pred[l] = biased_crossing(v[l], cur[l], tau_m[j], tau_s[j], theta[j], closed[j], 0.0)
        first = ext_t[ext_ptr[l]] if ext_n[l] > 0 else np.inf
        _rekey(l, key, item, pos, min(pred[l], first))
    cap = 16
    ht = np.empty((n_g, cap))
    hq = np.empty((n_g, cap), np.int64)
    hn = np.zeros(n_g, np.int64)
    r_t = np.empty(1024)
    r_n = np.empty(1024, np.int64)
    r_g = np.empty(1024)
    counters = np.zeros(2, np.int64)
    while True:
        code = _group_loop(members, tau_m, tau_s, theta, reset, refractory, closed, in_w, t_end, sample_times,
                           col_of, samples, max_spikes, v_off, ext_ptr, ext_n, ext_t, ext_q, rec_ptr, rec_post,
                           rec_d, rec_q, v, cur, t_last, ref_end, pred, apos, sp, key, item, pos, ht, hq, hn,
                           r_t, r_n, r_g, counters)
        if code == _NEED_PENDING:
            grow = max(2 * cap, cap + rec_ptr[n_g] // max(n_g, 1) + 1)
            new_t = np.empty((n_g, grow))
            new_q = np.empty((n_g, grow), np.int64)
            for l in range(n_g):
                for k in range(hn[l]):
                    new_t[l, k] = ht[l, k]
                    new_q[l, k] = hq[l, k]
            ht, hq, cap = new_t, new_q, grow
        elif code == _NEED_RECORDS:
            size = 2 * r_t.shape[0]
            new_t, new_n, new_g = np.empty(size), np.empty(size, np.int64), np.empty(size)
            for k in range(r_t.shape[0]):
                new_t[k], new_n[k], new_g[k] = r_t[k], r_n[k], r_g[k]
            r_t, r_n, r_g = new_t, new_n, new_g
        else:
            break
    n_spk, status = counters[_NSPK], counters[_STATUS]
    if status == STATUS_OK:
        # samples after the last event of each neuron
        for l in range(n_g):
            j = members[l]
            col = col_of[j]
            if col < 0:
                continue
            for s in range(sp[l], sample_times.shape[0]):
                if sample_times[s] > t_end:
                    break
                samples[s, col] = state_at(v[l], cur[l], t_last[l], ref_end[l], reset[j], tau_m[j], tau_s[j],
                                           sample_times[s])[0] + v_off[j]
    return r_t[:n_spk].copy(), r_n[:n_spk].copy(), r_g[:n_spk].copy(), status
