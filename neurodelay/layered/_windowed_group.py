"""Forward pass of a recurrent group in time windows: its neurons scanned one at a time per window, with
the feedforward engine's binned scan (numba, releases the GIL).

For a recurrent group of one tau_m and one tau_s, simulated from rest without bias and without
sampled voltages (:func:`forward_windowed`; other groups take
:func:`~neurodelay.layered._recurrent_kernels.forward_group`):

* every neuron's **input arrivals** (from the spike sources and the earlier layers) are put in
  time bins once, with their sums of factored exponentials, as in the feedforward scan
  (:func:`~neurodelay.layered._kernels.count_bins`, :func:`~neurodelay.layered._kernels.place_packed`);
* time is cut into **windows** of whole bins. In a window, each neuron is scanned alone
  (:func:`scan_window`: :func:`~neurodelay.layered._kernels.scan_binned`'s state machine, paused at
  the window's end and resumed in the next), its bins holding its input arrivals and the
  **recurrent arrivals** known to land there. A spike of an earlier window reaches later windows
  only, so those arrivals are known before the window starts (they are pushed to the window
  they land in when their spike's window is finished);
* a recurrent synapse shorter than a window may carry a spike to its target within the same
  window. The window is then **iterated**: its spikes give these *intra-window* arrivals, and
  every neuron whose intra-window arrivals (synapse, time) changed is scanned again from its
  state at the window's start (a neuron that did not spike in the window and whose new arrivals
  are all inhibitory only adds them: it cannot spike with them either). A window is finished
  when no neuron's intra-window arrivals change: its spikes are then consistent with every
  arrival they cause, which is the group's exact solution (spikes of a network with positive
  delays are determined in time order: each iteration settles at least the earliest spike that
  was still wrong). Groups with zero delays (below :data:`MIN_DELAY`) are left to the event loop;
  a window that needs more than :data:`MAX_ITERATIONS` iterations returns a status, and the
  caller runs the event loop instead.

Every neuron applies its arrivals as the binned scan does (bins added whole where V provably
stays below theta, the others sorted by (time, synapse) and taken one by one, a spike due at the
time of an arrival first), so spike times equal the event engine's to rounding, as
:func:`~neurodelay.layered._kernels.scan_binned`'s do.

Memory layout (what made it fast: each neuron is visited once per window, so its data are cold
every time): the bins' sums of all neurons are stored by bin, then neuron (a window's sums for the
whole group in one stretch; transposed from per-neuron rows a block of neurons at a time); the
synapses' and the spikes' numbers that a sorted bin reads are rows of one cache line (``syn_tab``,
``spk_tab``); the arrivals pushed to a later window are rows in a slot of a ring (one slot per window
in flight, filled in order), each carrying its terms of the bin sums, so that a window's sums are
added up in one pass over its slot.

Measured on bench/gradient.py's recurrent network (700 -> 256 recurrent -> 20, one thread, 2026-11-28,
cycle counter of a scratch instrumented copy): per trial ~85-105 ms, of which the input arrivals'
binning ~20 ms, the pushes ~17-22 ms (1M recurrent arrivals), a window's gathering of its slot ~8-10
ms, the neurons that cannot add their window whole ~30-35 ms (13k of 147k neuron-windows, 5.6k of
them scanned again for an arrival within the window; ~2.4 us each) and the others ~10 ms. Against the
event loop (:func:`~neurodelay.layered._recurrent_kernels.forward_group`), the whole forward pass of
that network costs 0.547x (``python bench/ab_revisions.py --base 9f74b70 --case recurrent-forward
--trials 8 --rounds 16 --threads 2``, median of the per-round ratios, with the changes below).
Tried and not kept: arrivals in linked lists per window with a free list, and separate arrays per
synapse and spike (~2x slower: pushes ~50 ns each, ~1.3 us per neuron-window of cache misses);
pulling each window's arrivals from the spikes in flight (a cursor per spike over its synapses in
order of delay) instead of pushing them (1.11x as costly, interleaved, 4 trials, 10 rounds); adding
the bins of a refractory period whole (1.007x, no gain); windows of 1.2, 1.5 and 3 ms instead of 2
(0.96, 0.97, 1.06x: within the noise). Kept: a neuron that did not spike in the window and receives
only inhibitory arrivals within it adds them instead of being scanned again (forward 0.944x,
interleaved, 4 trials, 12 rounds).

Times in seconds.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..events.dynamics import next_crossing
from ._kernels import (_predict_factored, after_spike, bin_bounds, count_bins, free_rise, incoming_count, k_bits,
                       place_packed, unpack_arrival)

STATUS_OK = 0
STATUS_TOO_MANY_SPIKES = 1
STATUS_NOT_SETTLED = 2

#: the most iterations of one window before :func:`forward_windowed` gives up (STATUS_NOT_SETTLED)
MAX_ITERATIONS = 64
#: groups with a recurrent synapse shorter than this (s) run the event loop: with a zero delay a spike's
#: own arrival lands at its time, and the iteration can alternate between two spike times one rounding
#: step apart (a neuron whose arrival comes first or second in turn) instead of settling
MIN_DELAY = 1e-12
#: the length of a window, s (rounded to whole bins, at least one): longer windows cost less per
#: window and neuron, shorter ones have fewer synapses whose arrivals land within the window
WINDOW = 2e-3
#: input arrivals per time bin, on average over the group's neurons
ARRIVALS_PER_BIN = 4
# neurons whose bin sums are transposed together (their rows stay in cache)
_TRANSPOSE_BLOCK = 16

# state of a neuron between windows (row of st): the running sums, the end of its refractory period,
# whether it is still to be applied, the predicted crossing
_CS, _BM, _REF_END, _PENDING, _PRED = 0, 1, 2, 3, 4
# columns of the synapse table (syn_tab, by q: one cache line each): delay, weight, exp(d/tau_s),
# exp(d/tau_m), exp(-d/tau_s), exp(-d/tau_m)
_Q_D, _Q_W, _Q_FS, _Q_FM, _Q_GS, _Q_GM = 0, 1, 2, 3, 4, 5
# columns of the spike table (spk_tab, by position k): time, exp(t/tau_s), exp(t/tau_m), exp(-t/tau_s), exp(-t/tau_m)
_K_T, _K_FS, _K_FM, _K_GS, _K_GM = 0, 1, 2, 3, 4
# columns of a pushed arrival (ent): its time, its terms of the bin sums (w exp(t/tau_s), w exp(t/tau_m),
# positive weight), its synapse q and the position k of its spike
_E_T, _E_S, _E_M, _E_P, _E_Q, _E_K = 0, 1, 2, 3, 4, 5
# columns of the group's synapses (rec_tab): delay, weight, exp(d/tau_s), exp(d/tau_m), q, local target
_R_D, _R_W, _R_FS, _R_FM, _R_Q, _R_POST = 0, 1, 2, 3, 4, 5


@njit(cache=True, inline="always")
def _whole_bin(c_s, b_m, b, s_s, s_m, s_p, bnd, kk, inv_tm, theta):
    """Bin b added at once if V provably stays below theta over it (as in
    :func:`~neurodelay.layered._kernels.scan_binned`; s_s, s_m, s_p: the bin's sums of w exp(t/tau_s),
    of w exp(t/tau_m) and of the positive weights): (added, c_s, b_m)."""
    x_m = b_m * bnd[2, b]
    i0 = c_s * bnd[1, b]
    x_s = kk * i0
    v0 = x_m - x_s
    rise = (bnd[0, b + 1] - bnd[0, b]) * (free_rise(v0, i0) + s_p) * inv_tm
    if not v0 + rise < theta - 1e-9 * (abs(x_m) + abs(x_s) + rise + abs(theta)):
        return False, c_s, b_m
    return True, c_s + s_s, b_m + kk * s_m


@njit(cache=True, nogil=True)
def _sort_by_time_key(n, t, q, k):
    """Insertion sort of t[:n], q[:n], k[:n] by (time, q) (q: a synapse, or a neuron), stable (k moves along)."""
    for i in range(1, n):
        ti, qi, ki = t[i], q[i], k[i]
        r = i - 1
        while r >= 0 and (t[r] > ti or (t[r] == ti and q[r] > qi)):
            t[r + 1], q[r + 1], k[r + 1] = t[r], q[r], k[r]
            r -= 1
        t[r + 1], q[r + 1], k[r + 1] = ti, qi, ki


@njit(cache=True, nogil=True)
def scan_window(st, b0, b1, nb, ends, sums, s_off, s_stride, bnd, arr_qk, q0, syn_tab, spk_tab, n_rec, rec_t, rec_q,
                rec_k, rec_b, rsums, tmp_t, tmp_q, tmp_k, tm, ts, theta, reset, refractory, closed, t_end, out_t, out_g,
                n_out):
    """:func:`~neurodelay.layered._kernels.scan_binned` of one neuron over bins b0..b1-1, from and to the
    state in st (c_s, b_m, ref_end, pending, pred), with its recurrent arrivals of these bins added.

    ends, sums: the neuron's input arrivals binned over all nb bins (ends[b]: end of bin b in arr_qk,
    packed with q0; sums[s_off + s_stride b + c], c = 0, 1, 2: their sums, as
    :func:`~neurodelay.layered._kernels.count_bins` gives them); bnd:
    :func:`~neurodelay.layered._kernels.bin_bounds`. rec_t, rec_q, rec_k, rec_b[:n_rec]: the recurrent
    arrivals in these bins (time s, synapse, spike's position in spk_tab, bin) sorted by (time, synapse);
    rsums[4 (b - b0): ...]: their sums per bin (the same three as sums). tmp_*: workspace as long as the
    longest bin plus n_rec. Spikes go to out_t, out_g from n_out on.

    Pauses where scan_binned would sort bin b1 next or add it whole (nothing of bin b1 or later is
    read), so that scanning the windows one after the other gives scan_binned's operations. Returns
    the number of spikes in out_t afterwards, or -1 if out_t is too small (st is then unchanged)."""
    kk = ts / (tm - ts)
    inv_tm = 1.0 / tm
    bits = k_bits(arr_qk)
    c_s = st[_CS]
    b_m = st[_BM]
    ref_end = st[_REF_END]
    pending = st[_PENDING] != 0.0
    pred = st[_PRED]
    cap = out_t.shape[0]
    a = 0
    srt = 0                       # tmp[a:srt]: the sorted bin's arrivals not taken yet
    bi = b0                       # the next bin not yet added or sorted
    r0 = 0                        # the recurrent arrivals before r0 lie in bins before bi
    finished = False
    while True:
        quiet = pred == np.inf and not pending
        if quiet and a == srt and bi < b1:
            b = bi
            while b < b1:
                r = 4 * (b - b0)
                x = s_off + s_stride * b
                added, c_s, b_m = _whole_bin(c_s, b_m, b, sums[x] + rsums[r], sums[x + 1] + rsums[r + 1],
                                             sums[x + 2] + rsums[r + 2], bnd, kk, inv_tm, theta)
                if not added:
                    break
                b += 1
            while r0 < n_rec and rec_b[r0] < b:
                r0 += 1
            bi = b
        if a == srt and bi < b1 and (quiet or pred >= bnd[0, bi]):
            # bin bi sorted: its input arrivals (times computed as bin_arrivals binned them) and its
            # recurrent ones, by (time, synapse)
            b = bi
            bi += 1
            lo = ends[b - 1] if b > 0 else 0
            m = 0
            for x in range(lo, ends[b]):
                q, k = unpack_arrival(arr_qk[x], q0, bits)
                tmp_t[m] = spk_tab[k, _K_T] + syn_tab[q, _Q_D]
                tmp_q[m] = q
                tmp_k[m] = k
                m += 1
            r_hi = r0
            while r_hi < n_rec and rec_b[r_hi] == b:
                tmp_t[m] = rec_t[r_hi]
                tmp_q[m] = rec_q[r_hi]
                tmp_k[m] = rec_k[r_hi]
                m += 1
                r_hi += 1
            r0 = r_hi
            _sort_by_time_key(m, tmp_t, tmp_q, tmp_k)
            a = 0
            srt = m
            if quiet:
                pred = _predict_factored(c_s, b_m, bnd[3, b], bnd[4, b], bnd[1, b], bnd[2, b], kk, inv_tm, tm, ts,
                                         theta, closed, bnd[0, b], tmp_t[0] if m > 0 else bnd[0, b + 1])
            continue
        if quiet and a < srt:
            while a < srt:
                t_now = tmp_t[a]
                q = tmp_q[a]
                k = tmp_k[a]
                w = syn_tab[q, _Q_W]
                f_s = spk_tab[k, _K_FS] * syn_tab[q, _Q_FS]
                f_m = spk_tab[k, _K_FM] * syn_tab[q, _Q_FM]
                c_s += w * f_s
                b_m += kk * w * f_m
                a += 1
                pred = _predict_factored(c_s, b_m, f_s, f_m, spk_tab[k, _K_GS] * syn_tab[q, _Q_GS],
                                         spk_tab[k, _K_GM] * syn_tab[q, _Q_GM],
                                         kk, inv_tm, tm, ts, theta, closed, t_now,
                                         min(tmp_t[a] if a < srt else bnd[0, bi], t_end))
                if pred < np.inf:
                    break
            continue
        if a == srt and bi == b1 and b1 < nb and (quiet or pred >= bnd[0, b1]):
            break                 # the next window goes on from here
        t_a = tmp_t[a] if a < srt else np.inf
        is_spike = pred <= t_a
        t_now = pred if is_spike else t_a
        if t_now > t_end:
            finished = True
            break
        if pending and t_now >= ref_end:
            b_m = (reset + kk * c_s * math.exp(-ref_end / ts)) * math.exp(ref_end / tm)
            pending = False
        if is_spike:
            if n_out == cap:
                return -1
            i_s = c_s * math.exp(-t_now / ts)
            n_out, ref_end, pending, b_m, pred = after_spike(out_t, out_g, n_out, t_now, i_s, b_m, pred, kk, tm, ts,
                                                             theta, reset, refractory, closed)
            if not pending:
                continue
        else:
            q = tmp_q[a]
            k = tmp_k[a]
            w = syn_tab[q, _Q_W]
            f_s = spk_tab[k, _K_FS] * syn_tab[q, _Q_FS]
            c_s += w * f_s
            a += 1
            if not pending:
                f_m = spk_tab[k, _K_FM] * syn_tab[q, _Q_FM]
                b_m += kk * w * f_m
                pred = _predict_factored(c_s, b_m, f_s, f_m, spk_tab[k, _K_GS] * syn_tab[q, _Q_GS],
                                         spk_tab[k, _K_GM] * syn_tab[q, _Q_GM],
                                         kk, inv_tm, tm, ts, theta, closed, t_now,
                                         min(tmp_t[a] if a < srt else bnd[0, bi], t_end))
                continue
        pred = ref_end + next_crossing(reset, c_s * math.exp(-ref_end / ts), tm, ts, theta, closed)
    st[_CS] = c_s
    st[_BM] = b_m
    st[_REF_END] = ref_end
    st[_PENDING] = 1.0 if pending else 0.0
    st[_PRED] = np.inf if finished else pred
    return n_out


@njit(cache=True, nogil=True)
def arrival_ptr(members, in_ptr, in_pre, s_start, s_end):
    """Cumulative numbers of input arrivals (:func:`~neurodelay.layered._kernels.incoming_count`) of the
    group's neurons: (n_g + 1,), and the largest fan-in among them."""
    n_g = members.shape[0]
    ptr = np.zeros(n_g + 1, np.int64)
    fan_in = 0
    for jl in range(n_g):
        j = members[jl]
        ptr[jl + 1] = ptr[jl] + incoming_count(j, in_ptr, in_pre, s_start, s_end)
        fan_in = max(fan_in, in_ptr[j + 1] - in_ptr[j])
    return ptr, fan_in


@njit(cache=True, nogil=True)
def _grown(a, size):
    """a copied into a new array of `size` entries (at least its own)."""
    out = np.empty(max(size, a.shape[0]), a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _grown_rows(a, rows):
    """(n, c) array a copied into a new (rows, c) array (at least n rows)."""
    out = np.empty((max(rows, a.shape[0]), a.shape[1]), a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _grown_ring(ent, ent_tgt, n_slot, n_ring, cap):
    """The ring's rows (n_ring slots of cap rows; slot s holds n_slot[s]) in slots of 2 cap rows."""
    ent2 = np.empty((2 * n_ring * cap, ent.shape[1]))
    tgt2 = np.empty(2 * n_ring * cap, np.int64)
    for s in range(n_ring):
        ent2[2 * s * cap: 2 * s * cap + n_slot[s]] = ent[s * cap: s * cap + n_slot[s]]
        tgt2[2 * s * cap: 2 * s * cap + n_slot[s]] = ent_tgt[s * cap: s * cap + n_slot[s]]
    return ent2, tgt2


@njit(cache=True, nogil=True)
def _push(r0, r1, t_s, k, f_s, f_m, rec_tab, t_end, scale, b0, b1, nb, bpw, n_ring, cap, ent, ent_tgt, n_slot,
          max_fill):
    """The arrivals after bin b1 of a spike at t_s (position k, factors f_s = exp(t_s/tau_s), f_m =
    exp(t_s/tau_m)) through synapses r0..r1-1 of rec_tab (in order of delay), each to the slot of its
    window: its row (time, terms of the bin sums, q, k) and target. Returns the most rows of a slot."""
    for r in range(r0, r1):
        t = t_s + rec_tab[r, _R_D]
        if t > t_end:
            break
        b = _bin_of(t, scale, b0, nb)
        if b < b1:
            continue
        slot = (b // bpw) % n_ring
        n = n_slot[slot]
        e = slot * cap + n
        n_slot[slot] = n + 1
        max_fill = max(max_fill, n + 1)
        wgt = rec_tab[r, _R_W]
        ent[e, _E_T] = t
        ent[e, _E_S] = wgt * (f_s * rec_tab[r, _R_FS])
        ent[e, _E_M] = wgt * (f_m * rec_tab[r, _R_FM])
        ent[e, _E_P] = max(wgt, 0.0)
        ent[e, _E_Q] = rec_tab[r, _R_Q]
        ent[e, _E_K] = k
        ent_tgt[e] = np.int64(rec_tab[r, _R_POST])
    return max_fill


@njit(cache=True, inline="always")
def _bin_of(t, scale, b0, nb):
    """The bin of an arrival at t (as count_bins bins input arrivals), at least b0."""
    return min(max(int(t * scale), b0), nb - 1)


@njit(cache=True, nogil=True)
def _scan_neuron(jl, j, st, st0, b0, b1, nb, n_g, scale, ends, sums_t, rs_t, bnd, spk_tab, syn_tab, arr_qk, a_ptr,
                 in_ptr, ent, fut_ptr, fut_ids, it_ptr, it_t, it_q, it_k, wr_t, wr_q, wr_k, wr_b, rsums,
                 tmp_t, tmp_q, tmp_k, tm, ts, theta, reset, refractory, closed, t_end, out_t, out_g):
    """Neuron jl (global j) over the window of bins b0..b1-1 from its state at the window's start (st0[jl],
    copied to st[jl]), with its recurrent arrivals pushed from earlier windows (ent rows fut_ids[fut_ptr[jl]:
    fut_ptr[jl + 1]], their sums in rs_t) and from this one (it_*): :func:`scan_window`'s result (spikes in
    out_t, out_g)."""
    for b in range(b1 - b0):
        x = 4 * (b * n_g + jl)
        rsums[4 * b] = rs_t[x]
        rsums[4 * b + 1] = rs_t[x + 1]
        rsums[4 * b + 2] = rs_t[x + 2]
    n_rec = 0
    for x in range(fut_ptr[jl], fut_ptr[jl + 1]):
        e = fut_ids[x]
        wr_t[n_rec] = ent[e, _E_T]
        wr_q[n_rec] = np.int64(ent[e, _E_Q])
        wr_k[n_rec] = np.int64(ent[e, _E_K])
        n_rec += 1
    for x in range(it_ptr[jl], it_ptr[jl + 1]):
        t, q, k = it_t[x], it_q[x], it_k[x]
        wr_t[n_rec] = t
        wr_q[n_rec] = q
        wr_k[n_rec] = k
        n_rec += 1
        w = syn_tab[q, _Q_W]
        r = 4 * (_bin_of(t, scale, b0, nb) - b0)
        rsums[r] += w * (spk_tab[k, _K_FS] * syn_tab[q, _Q_FS])
        rsums[r + 1] += w * (spk_tab[k, _K_FM] * syn_tab[q, _Q_FM])
        rsums[r + 2] += max(w, 0.0)
    _sort_by_time_key(n_rec, wr_t, wr_q, wr_k)
    for r in range(n_rec):
        wr_b[r] = _bin_of(wr_t[r], scale, b0, nb)
    for c in range(st.shape[1]):
        st[jl, c] = st0[jl, c]
    return scan_window(st[jl], b0, b1, nb, ends[jl], sums_t, 4 * jl, 4 * n_g, bnd,
                       arr_qk[a_ptr[jl]: a_ptr[jl + 1]], in_ptr[j], syn_tab, spk_tab, n_rec, wr_t, wr_q, wr_k, wr_b,
                       rsums, tmp_t, tmp_q, tmp_k, tm, ts, theta[j], reset[j], refractory[j], closed[j], t_end, out_t,
                       out_g, 0)


@njit(cache=True, nogil=True)
def _add_inhibitory(st_row, a0, a1, it_q, it_k, syn_tab, spk_tab, kk):
    """Arrivals a0..a1-1 of it_* added to the state at the end of the window (st_row) of a neuron that did
    not spike in it, was not refractory in it and has no crossing predicted, if all of them are
    inhibitory: V then stays lower than it was, so it still does not spike, and in factored form the
    arrivals add to the running sums whatever their times (no scan again). Returns whether they were
    added."""
    for x in range(a0, a1):
        if syn_tab[it_q[x], _Q_W] > 0.0:
            return False
    for x in range(a0, a1):
        q, k = it_q[x], it_k[x]
        w = syn_tab[q, _Q_W]
        st_row[_CS] += w * (spk_tab[k, _K_FS] * syn_tab[q, _Q_FS])
        st_row[_BM] += kk * (w * (spk_tab[k, _K_FM] * syn_tab[q, _Q_FM]))
    return True


@njit(cache=True, nogil=True)
def _intra_arrivals(n_ws, ws_t, ws_n, base, rec_ptr, rec_tab, scale, b0, b1, nb, t_end, it_tgt, it_t, it_q, it_k):
    """The arrivals within the window (bins before b1) of its spikes ws_*[:n_ws] (sorted by (time, neuron);
    the i-th at position base + i of spk_tab), each neuron's synapses taken in order of delay (rec_tab):
    written to it_* (grown when too short), sorted by (target, time, synapse). Returns (count, it_*)."""
    n = 0
    for i in range(n_ws):
        nl = ws_n[i]
        t_s = ws_t[i]
        for r in range(rec_ptr[nl], rec_ptr[nl + 1]):
            t = t_s + rec_tab[r, _R_D]
            if t > t_end or _bin_of(t, scale, b0, nb) >= b1:
                break
            if n == it_tgt.shape[0]:
                it_tgt, it_t, it_q, it_k = (_grown(it_tgt, 2 * n + 16), _grown(it_t, 2 * n + 16),
                                            _grown(it_q, 2 * n + 16), _grown(it_k, 2 * n + 16))
            it_tgt[n] = np.int64(rec_tab[r, _R_POST])
            it_t[n] = t
            it_q[n] = np.int64(rec_tab[r, _R_Q])
            it_k[n] = base + i
            n += 1
    for i in range(1, n):
        g, t, q, k = it_tgt[i], it_t[i], it_q[i], it_k[i]
        r = i - 1
        while r >= 0 and (it_tgt[r] > g or (it_tgt[r] == g and (it_t[r] > t or (it_t[r] == t and it_q[r] > q)))):
            it_tgt[r + 1], it_t[r + 1], it_q[r + 1], it_k[r + 1] = it_tgt[r], it_t[r], it_q[r], it_k[r]
            r -= 1
        it_tgt[r + 1], it_t[r + 1], it_q[r + 1], it_k[r + 1] = g, t, q, k
    return n, it_tgt, it_t, it_q, it_k


@njit(cache=True, nogil=True)
def _ptr_by_target(n, tgt, n_g, ptr):
    """ptr (n_g + 1,): where each target's entries start in tgt[:n] (sorted by target)."""
    for g in range(n_g + 1):
        ptr[g] = 0
    for x in range(n):
        ptr[tgt[x] + 1] += 1
    for g in range(n_g):
        ptr[g + 1] += ptr[g]


@njit(cache=True, nogil=True)
def forward_windowed(members, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory, closed, s_start,
                     s_end, s_time, t_end, max_spikes, rec_ptr, rec_tab, syn_f, syn_tab, spk_f, a_ptr, arr_qk, window,
                     max_iterations):
    """Exact forward simulation of one recurrent group (LIF neurons `members`, global indices, ascending;
    one tau_m and one tau_s; from rest, no bias) in one trial, window by window (see the module).

    in_*, s_*: as :func:`~neurodelay.layered._recurrent_kernels.forward_group` takes them (the post-major
    synapse table; the spikes of the earlier layers grouped by neuron, the group's own neurons empty).
    rec_ptr, rec_tab: the group's synapses by presynaptic local index, each neuron's in order of delay,
    rows (delay s, weight, exp(d/tau_s), exp(d/tau_m), q, postsynaptic local index). syn_f, spk_f: the
    factors of :func:`~neurodelay.layered._kernels.scan_binned` (per synapse of the table; per spike of
    s_time); syn_tab: (S, 8), per synapse q the row (in_d, in_w, syn_f[:, q], 0, 0), one cache line.
    a_ptr: :func:`arrival_ptr`; arr_qk: workspace of a_ptr[-1] entries, of the dtype that
    :func:`~neurodelay.layered._kernels.packing` gives for the largest fan-in and len(s_time).
    window: its length, s (:data:`WINDOW`; the shortest recurrent delay instead where that lies between
    a quarter of it and it); max_iterations: :data:`MAX_ITERATIONS`.

    Returns (spike times, global neurons, I - theta, status): the spikes in order of (time, neuron),
    status STATUS_OK, STATUS_TOO_MANY_SPIKES (more than max_spikes) or STATUS_NOT_SETTLED (a window
    needed more than max_iterations iterations; the spikes are then incomplete)."""
    n_g = members.shape[0]
    tm = tau_m[members[0]]
    ts = tau_s[members[0]]
    kk = ts / (tm - ts)
    inv_tm = 1.0 / tm
    n_s = s_time.shape[0]
    fan_in = 0
    mmax = 0
    for jl in range(n_g):
        fan_in = max(fan_in, in_ptr[members[jl] + 1] - in_ptr[members[jl]])
        mmax = max(mmax, a_ptr[jl + 1] - a_ptr[jl])
    # the window: `window`, or the shortest recurrent delay where that is not much shorter (then no
    # arrival lands within the window it was sent in, bar rounding); bins no longer than it
    d_min = np.inf
    for r in range(rec_tab.shape[0]):
        d_min = min(d_min, rec_tab[r, _R_D])
    if d_min >= 0.25 * window:
        window = min(window, d_min)
    nb = max(a_ptr[n_g] // (n_g * ARRIVALS_PER_BIN) + 1, int(math.ceil(t_end / window)))
    scale = nb / t_end
    bnd = bin_bounds(nb, t_end, tm, ts)
    # every neuron's input arrivals in bins; their sums by bin, then neuron (a window's in one stretch)
    ends = np.empty((n_g, nb + 1), np.uint32)
    sums_t = np.empty(4 * nb * n_g)
    rows = np.empty((_TRANSPOSE_BLOCK, 4 * nb))
    gen = np.empty(fan_in + mmax, np.uint32)
    maxbin = 0
    for jl0 in range(0, n_g, _TRANSPOSE_BLOCK):
        blk = min(_TRANSPOSE_BLOCK, n_g - jl0)
        for jj in range(blk):
            jl = jl0 + jj
            j = members[jl]
            m = count_bins(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, ends[jl], gen, in_w, syn_f,
                           spk_f, rows[jj])
            for b in range(nb):
                maxbin = max(maxbin, np.int64(ends[jl, b + 1]))
            if m > 0:
                place_packed(j, in_ptr, in_pre, s_start, nb, ends[jl], gen, arr_qk[a_ptr[jl]:])
        for b in range(nb):              # (a block of neurons at a time: both sides stay in cache)
            for jj in range(blk):
                x = 4 * (b * n_g + jl0 + jj)
                sums_t[x] = rows[jj, 4 * b]
                sums_t[x + 1] = rows[jj, 4 * b + 1]
                sums_t[x + 2] = rows[jj, 4 * b + 2]
    # the spikes' times and factors: inputs first, then the group's, window by window
    cap = max(1024, 16 * n_g)
    spk_tab = np.zeros((n_s + cap, 8))
    for k in range(n_s):
        spk_tab[k, _K_T] = s_time[k]
        spk_tab[k, _K_FS] = spk_f[0, k]
        spk_tab[k, _K_FM] = spk_f[1, k]
        spk_tab[k, _K_GS] = spk_f[2, k]
        spk_tab[k, _K_GM] = spk_f[3, k]
    base = n_s
    bpw = max(1, int(window / (t_end / nb)))
    n_win = (nb + bpw - 1) // bpw
    # arrivals pushed to later windows: rows of ent in a ring of slots, one per window in flight
    dmax = 0.0
    for r in range(rec_tab.shape[0]):
        dmax = max(dmax, rec_tab[r, _R_D])
    n_ring = int(dmax * scale / bpw) + 3
    slot_cap = 256
    ent = np.empty((n_ring * slot_cap, 6))
    ent_tgt = np.empty(n_ring * slot_cap, np.int64)
    n_slot = np.zeros(n_ring, np.int64)
    max_fill = 0                           # the most rows of a slot
    rs_t = np.empty(4 * bpw * n_g)
    st = np.zeros((n_g, 5))
    for jl in range(n_g):
        st[jl, _REF_END] = -np.inf
        st[jl, _PRED] = np.inf
    st0 = np.empty_like(st)
    fut_ptr = np.zeros(n_g + 1, np.int64)
    fut_ids = np.empty(4096, np.int64)
    it_ptr = np.zeros(n_g + 1, np.int64)
    it_tgt = np.empty(64, np.int64)
    it_t = np.empty(64)
    it_q = np.empty(64, np.int64)
    it_k = np.empty(64, np.int64)
    pv_ptr = np.zeros(n_g + 1, np.int64)
    pv_t = np.empty(64)
    pv_q = np.empty(64, np.int64)
    wr_t = np.empty(256)                   # workspace of _scan_neuron: a neuron's recurrent arrivals
    wr_q = np.empty(256, np.int64)
    wr_k = np.empty(256, np.int64)
    wr_b = np.empty(256, np.int64)
    rsums = np.empty(4 * bpw)
    tmp_t = np.empty(maxbin + 256)
    tmp_q = np.empty(maxbin + 256, np.int64)
    tmp_k = np.empty(maxbin + 256, np.int64)
    out_t = np.empty(64)
    out_g = np.empty(64)
    ws_t = np.empty(256)
    ws_n = np.empty(256, np.int64)
    ws_g = np.empty(256)
    dirty = np.zeros(n_g, np.bool_)
    n_spk = np.zeros(n_g, np.int64)          # a neuron's spikes in the window (zero between uses)
    res_t = np.empty(1024)
    res_n = np.empty(1024, np.int64)
    res_g = np.empty(1024)
    total = 0
    for w in range(n_win):
        b0 = w * bpw
        b1 = min(b0 + bpw, nb)
        # the arrivals pushed to this window: their sums by (bin, target), their rows grouped by target
        rs_t[:4 * (b1 - b0) * n_g] = 0.0
        fut_ptr[:] = 0
        slot = w % n_ring
        e0 = slot * slot_cap
        n_fut = n_slot[slot]
        for e in range(e0, e0 + n_fut):
            g = ent_tgt[e]
            x = 4 * ((_bin_of(ent[e, _E_T], scale, b0, nb) - b0) * n_g + g)
            rs_t[x] += ent[e, _E_S]
            rs_t[x + 1] += ent[e, _E_M]
            rs_t[x + 2] += ent[e, _E_P]
            fut_ptr[g + 1] += 1
        for g in range(n_g):
            fut_ptr[g + 1] += fut_ptr[g]
        if n_fut > fut_ids.shape[0]:
            fut_ids = np.empty(2 * n_fut, np.int64)
        for e in range(e0, e0 + n_fut):
            g = ent_tgt[e]
            fut_ids[fut_ptr[g]] = e
            fut_ptr[g] += 1
        for g in range(n_g, 0, -1):
            fut_ptr[g] = fut_ptr[g - 1]
        fut_ptr[0] = 0
        st0[:, :] = st
        pv_ptr[:] = 0
        it_ptr[:] = 0
        n_ws = 0
        settled = False
        for it in range(max_iterations):
            if it > 0:            # the spikes of the neurons that go again are dropped
                keep = 0
                for i in range(n_ws):
                    if not dirty[ws_n[i]]:
                        ws_t[keep], ws_n[keep], ws_g[keep] = ws_t[i], ws_n[i], ws_g[i]
                        keep += 1
                n_ws = keep
            for jl in range(n_g):
                if it == 0:
                    if st[jl, _PRED] == np.inf and st[jl, _PENDING] == 0.0:
                        # quiet: the window's bins at once where the bound holds over each (most neurons)
                        c_s = st[jl, _CS]
                        b_m = st[jl, _BM]
                        added = True
                        for b in range(b0, b1):
                            x = 4 * (b * n_g + jl)
                            r = 4 * ((b - b0) * n_g + jl)
                            added, c_s, b_m = _whole_bin(c_s, b_m, b, sums_t[x] + rs_t[r],
                                                         sums_t[x + 1] + rs_t[r + 1], sums_t[x + 2] + rs_t[r + 2],
                                                         bnd, kk, inv_tm, theta[members[jl]])
                            if not added:
                                break
                        if added:
                            st[jl, _CS] = c_s
                            st[jl, _BM] = b_m
                            continue
                elif not dirty[jl]:
                    continue
                need = fut_ptr[jl + 1] - fut_ptr[jl] + it_ptr[jl + 1] - it_ptr[jl]
                if need > wr_t.shape[0]:
                    wr_t = np.empty(2 * need)
                    wr_q = np.empty(2 * need, np.int64)
                    wr_k = np.empty(2 * need, np.int64)
                    wr_b = np.empty(2 * need, np.int64)
                if maxbin + need > tmp_t.shape[0]:
                    tmp_t = np.empty(maxbin + 2 * need)
                    tmp_q = np.empty(maxbin + 2 * need, np.int64)
                    tmp_k = np.empty(maxbin + 2 * need, np.int64)
                while True:
                    ns = _scan_neuron(jl, members[jl], st, st0, b0, b1, nb, n_g, scale, ends, sums_t, rs_t, bnd,
                                      spk_tab, syn_tab, arr_qk, a_ptr, in_ptr, ent, fut_ptr, fut_ids, it_ptr,
                                      it_t, it_q, it_k, wr_t, wr_q, wr_k, wr_b, rsums, tmp_t, tmp_q, tmp_k, tm, ts,
                                      theta, reset, refractory, closed, t_end, out_t, out_g)
                    if ns >= 0:
                        break
                    out_t = np.empty(2 * out_t.shape[0])
                    out_g = np.empty(2 * out_g.shape[0])
                if n_ws + ns > ws_t.shape[0]:
                    ws_t, ws_n, ws_g = (_grown(ws_t, 2 * (n_ws + ns)), _grown(ws_n, 2 * (n_ws + ns)),
                                        _grown(ws_g, 2 * (n_ws + ns)))
                for i in range(ns):
                    ws_t[n_ws], ws_n[n_ws], ws_g[n_ws] = out_t[i], jl, out_g[i]
                    n_ws += 1
            if n_ws == 0:
                settled = True
                break
            # the window's spikes by (time, neuron), at positions base.. of spk_tab
            _sort_by_time_key(n_ws, ws_t, ws_n, ws_g)
            if total + n_ws > max_spikes:
                return res_t[:total], res_n[:total], res_g[:total], STATUS_TOO_MANY_SPIKES
            if base + n_ws > spk_tab.shape[0]:
                spk_tab = _grown_rows(spk_tab, 2 * (base + n_ws))
            for i in range(n_ws):
                t = ws_t[i]
                spk_tab[base + i, _K_T] = t
                spk_tab[base + i, _K_FS] = math.exp(t / ts)
                spk_tab[base + i, _K_FM] = math.exp(t / tm)
                spk_tab[base + i, _K_GS] = math.exp(-t / ts)
                spk_tab[base + i, _K_GM] = math.exp(-t / tm)
            # the arrivals they cause within the window; the neurons whose set changed go again
            n_it, it_tgt, it_t, it_q, it_k = _intra_arrivals(n_ws, ws_t, ws_n, base, rec_ptr, rec_tab, scale, b0, b1,
                                                             nb, t_end, it_tgt, it_t, it_q, it_k)
            _ptr_by_target(n_it, it_tgt, n_g, it_ptr)
            for i in range(n_ws):
                n_spk[ws_n[i]] += 1
            any_dirty = False
            for g in range(n_g):
                a0, a1 = it_ptr[g], it_ptr[g + 1]
                p0, p1 = pv_ptr[g], pv_ptr[g + 1]
                same = a1 - a0 == p1 - p0
                if same:
                    for x in range(a1 - a0):
                        if it_t[a0 + x] != pv_t[p0 + x] or it_q[a0 + x] != pv_q[p0 + x]:
                            same = False
                            break
                if not same and p1 == p0 and n_spk[g] == 0 and st0[g, _PENDING] == 0.0 and st[g, _PENDING] == 0.0 \
                        and st[g, _PRED] == np.inf:
                    same = _add_inhibitory(st[g], a0, a1, it_q, it_k, syn_tab, spk_tab, kk)
                dirty[g] = not same
                any_dirty |= not same
            for i in range(n_ws):
                n_spk[ws_n[i]] = 0
            if not any_dirty:
                settled = True
                break
            if n_it > pv_t.shape[0]:
                pv_t = np.empty(2 * n_it)
                pv_q = np.empty(2 * n_it, np.int64)
            pv_t[:n_it] = it_t[:n_it]
            pv_q[:n_it] = it_q[:n_it]
            pv_ptr[:] = it_ptr
        if not settled:
            return res_t[:total], res_n[:total], res_g[:total], STATUS_NOT_SETTLED
        # settled: the rows of this window's arrivals are free again; record its spikes and push
        # their arrivals in later windows
        if total + n_ws > res_t.shape[0]:
            res_t, res_n, res_g = (_grown(res_t, 2 * (total + n_ws)), _grown(res_n, 2 * (total + n_ws)),
                                   _grown(res_g, 2 * (total + n_ws)))
        for i in range(n_ws):
            nl = ws_n[i]
            t_s = ws_t[i]
            k = base + i
            res_t[total], res_n[total], res_g[total] = t_s, members[nl], ws_g[i]
            total += 1
            if max_fill + rec_ptr[nl + 1] - rec_ptr[nl] > slot_cap:
                ent, ent_tgt = _grown_ring(ent, ent_tgt, n_slot, n_ring, slot_cap)
                slot_cap *= 2
            max_fill = _push(rec_ptr[nl], rec_ptr[nl + 1], t_s, k, spk_tab[k, _K_FS], spk_tab[k, _K_FM], rec_tab,
                             t_end, scale, b0, b1, nb, bpw, n_ring, slot_cap, ent, ent_tgt, n_slot, max_fill)
        n_slot[slot] = 0
        max_fill = 0
        for x in range(n_ring):
            max_fill = max(max_fill, n_slot[x])
        base += n_ws
    return res_t[:total], res_n[:total], res_g[:total], STATUS_OK
