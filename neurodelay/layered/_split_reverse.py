"""The factored reverse pass of one LIF neuron split over lanes that each take a share of its synapses.

:func:`~neurodelay.layered._kernels.reverse_factored` walks a neuron's arrivals in time order, so its
arrivals must first be gathered and sorted, and one thread does all of it. On a GPU that thread is
slow: a thread per (trial, neuron) leaves most of the device idle and waits on memory (measured on an
H100 at SHD size: about 2 warps per SM, 13 cycles between instructions, 3.5 ms per trial for the
hidden layer). But the costate of a neuron reached only through its spike times is
``p_V = a F_m(t)``, ``p_I = b F_s(t) + K a F_m(t)`` with (a, b) constant between its events (spikes and
ends of refractoriness), so an arrival needs only the (a, b) of the *segment* between two events that
it falls in, and no order among the arrivals. Here the neuron's work is shared by ``n_lanes`` lanes
(the threads of a CUDA block), lane ``l`` taking synapses ``in_ptr[j] + l``, ``in_ptr[j] + l + n_lanes``,
... and each synapse's arrivals in the order of its presynaptic spikes (time order), so that no arrival
is sorted:

1. :func:`split_events` (one lane): the neuron's events, in the order of
   :func:`~neurodelay.layered._kernels.factored_log`;
2. :func:`split_arrivals` without ``grad`` (every lane): per segment, the sums of ``w exp(t/tau_s)``
   and ``w exp(t/tau_m)`` (factored: spike factor x synapse factor) of its arrivals, a row per lane;
3. :func:`split_reduce` (every lane, a share of the segments): the rows added in lane order;
4. :func:`split_costate` (one lane): the state at each event from those sums (:func:`segment_states`),
   then the events backwards (:func:`~neurodelay.layered._kernels.factored_event`), giving (a, b) per
   segment, dL/dtheta and the record check;
5. :func:`split_arrivals` with ``grad`` (every lane): dL/dw, dL/dd of its synapses, each written once,
   and the time sensitivities of its presynaptic spikes.

The recurrent groups' factored reverse pass
(:func:`~neurodelay.layered._recurrent_kernels._adjoint_group_factored`) rests on the same segments
(its *stretches*), on one thread, with :func:`split_events` and :func:`segment_states`, and finds an
arrival's stretch from a table of time cells. Here
each synapse searches from its previous arrival's segment, which walks up to all of the neuron's
events per synapse: on the CPU (one lane, a neuron of 700 synapses, ~8000 arrivals and 46 events) 39
ns per arrival in step 5 against 11 with a table of 256 cells (a micro benchmark, 2026-11-27). The
table is not used here yet: this code was measured on a GPU without it. Run serially on the CPU this
pass is slower than :func:`~neurodelay.layered._kernels.reverse_factored_kept` over kept arrivals
(tried in the fused feedforward path: 3x slower with the linear search, and 6.6 against ~5 ns per
arrival for a stripped-down loop with a table), so the CPU engines do not use it.

An arrival precedes an event if it comes before it in ``factored_log``'s order: a spike at t_p when
t_a >= t_p (a spike due at the time of an arrival is taken first), an end of refractoriness at t_r
when t_a > t_r. The sums are taken in another order than the serial pass, so results equal it to
rounding; they do not depend on the scheduling (each lane adds in a fixed order, rows are added in lane
order), only on ``n_lanes``. Requires that no presynaptic neuron has two synapses onto the neuron (two
lanes would add to the same ``g_time`` entry): the caller checks it.

Times in seconds. On the CPU these functions run lane after lane (how the tests check them); the GPU
engine compiles them for the device (:mod:`neurodelay.layered._gpu_kernels`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._kernels import EV_REF_END, EV_SPIKE, factored_event

__all__ = ["split_events", "split_arrivals", "split_reduce", "segment_states", "split_costate"]


@njit(cache=True, nogil=True)
def split_events(s_lo, s_hi, s_time, s_id, n_in, refractory, t_end, ev_t, ev_c, ev_s):
    """The events of a neuron whose spikes are s_time[s_lo:s_hi] (record indices s_id - n_in): spikes
    (EV_SPIKE) and ends of refractoriness (EV_REF_END, ev_s = the spike that started it), in the order of
    :func:`~neurodelay.layered._kernels.factored_log`, into ev_* (2 (s_hi - s_lo) entries at most);
    returns their number."""
    ref_end = -np.inf
    ref_spike = -1
    ne = 0
    for r in range(s_lo, s_hi):
        t_p = s_time[r]
        if t_p > t_end:
            break
        if ref_spike >= 0 and t_p > ref_end:
            ev_t[ne], ev_c[ne], ev_s[ne] = ref_end, EV_REF_END, ref_spike
            ne += 1
            ref_spike = -1
        k = s_id[r] - n_in
        ev_t[ne], ev_c[ne], ev_s[ne] = t_p, EV_SPIKE, k
        ne += 1
        ref_end = t_p + refractory
        if refractory > 0.0:
            ref_spike = k
    if ref_spike >= 0 and ref_end <= t_end:
        ev_t[ne], ev_c[ne], ev_s[ne] = ref_end, EV_REF_END, ref_spike
        ne += 1
    return ne


@njit(cache=True, inline="always")
def _segment(seg, t, ne, ev_t, ev_c):
    """The segment of an arrival at t (the number of events before it), from `seg`, a segment at or
    before it."""
    while seg < ne and (ev_t[seg] < t or (ev_t[seg] == t and ev_c[seg] == EV_SPIKE)):
        seg += 1
    return seg


@njit(cache=True, nogil=True)
def split_arrivals(grad, lane, n_lanes, j, row, in_ptr, in_pre, in_d, in_w, s_start, s_end, s_time, s_id, t_end, dm,
                   ds, em, es, tm, ts, ne, ev_t, ev_c, per_s, per_m, g_w, g_d, g_time):
    """Lane `lane`'s share of neuron j's arrivals t <= t_end: synapses in_ptr[j] + lane + i n_lanes, each
    synapse's arrivals in the order of its presynaptic spikes (s_start/s_end: each neuron's spikes in
    s_time, time-sorted; ids s_id), each in its segment (the events ev_*[:ne] before it).

    Without grad (step 2): the segment sums, per_s[lane (ne + 1) + s] = the sum of w exp(t/tau_s)
    (w es[spike] ds[q]) over the lane's arrivals in segment s, per_m the same with tau_m (em, dm).
    With grad (step 5): per_m[s], per_s[s] are the costate's (a, b) over segment s
    (:func:`split_costate`): g_w[q], g_d[q] += dL/dw, dL/dd of each synapse (summed over its arrivals in
    time order), g_time[row, spike] += each arrival's dL/dt. Arrivals after the last event are
    left out: their sums are never used and their costate is zero."""
    kk = ts / (tm - ts)
    inv_ts, inv_tm = 1.0 / ts, 1.0 / tm
    base = 0
    if not grad:
        base = lane * (ne + 1)
        for s in range(ne + 1):
            per_s[base + s] = 0.0
            per_m[base + s] = 0.0
    for q in range(in_ptr[j] + lane, in_ptr[j + 1], n_lanes):
        p = in_pre[q]
        d = in_d[q]
        w = in_w[q]
        f_s = ds[q]
        f_m = dm[q]
        seg = 0
        gw = 0.0
        gd = 0.0
        for k in range(s_start[p], s_end[p]):
            t = s_time[k] + d
            if t > t_end:
                break                    # p's spikes are sorted: the later ones arrive later
            seg = _segment(seg, t, ne, ev_t, ev_c)
            if seg == ne:
                break
            i = s_id[k]
            if grad:
                pv = per_m[seg] * (em[i] * f_m)
                pi = per_s[seg] * (es[i] * f_s) + kk * pv
                gw += pi
                dl_dt = w * (pi * inv_ts - pv * inv_tm)
                gd += dl_dt
                g_time[row, i] += dl_dt
            else:
                per_s[base + seg] += w * (es[i] * f_s)
                per_m[base + seg] += w * (em[i] * f_m)
        if grad:
            g_w[q] += gw
            g_d[q] += gd


@njit(cache=True, nogil=True)
def split_reduce(lane, n_lanes, ne, part_s, part_m, seg_s, seg_m):
    """Segments lane, lane + n_lanes, ...: seg_* = the lanes' rows of part_* (:func:`split_arrivals`) added in
    lane order."""
    n_seg = ne + 1
    for s in range(lane, n_seg, n_lanes):
        a = 0.0
        b = 0.0
        for r in range(n_lanes):
            a += part_s[r * n_seg + s]
            b += part_m[r * n_seg + s]
        seg_s[s] = a
        seg_m[s] = b


@njit(cache=True, nogil=True)
def segment_states(ne, ev_t, ev_c, ev_i, seg_s, seg_m, m_scale, tm, ts, theta, reset, refractory):
    """The state at a neuron's ne events (ev_t, ev_c) from its segment sums (seg_s[s]: the sum of
    w exp(t/tau_s) over the arrivals of segment s; m_scale seg_m[s]: of K w exp(t/tau_m), K = tau_s /
    (tau_m - tau_s)), as :func:`~neurodelay.layered._kernels.factored_log` (V integrates a segment's
    arrivals unless it follows a spike with a refractory period): ev_i = I at each event; returns
    max |V - theta| at its spikes."""
    kk = ts / (tm - ts)
    c_s = 0.0
    b_m = 0.0
    refractory_now = False
    ref_end = -np.inf
    worst = 0.0
    for e in range(ne):
        c_s += seg_s[e]
        if not refractory_now:
            b_m += m_scale * seg_m[e]
        t = ev_t[e]
        i_at = c_s * math.exp(-t / ts)
        ev_i[e] = i_at
        if ev_c[e] == EV_REF_END:
            b_m = (reset + kk * i_at) * math.exp(t / tm)
            refractory_now = False
        else:
            v_b = reset if ref_end >= t else b_m * math.exp(-t / tm) - kk * i_at
            worst = max(worst, abs(v_b - theta))
            ref_end = t + refractory
            if refractory > 0.0:
                refractory_now = True
            else:
                b_m = (reset + kk * i_at) * math.exp(t / tm)
    return worst


@njit(cache=True, nogil=True)
def split_costate(ne, ev_t, ev_c, ev_s, ev_i, seg_s, seg_m, tm, ts, theta, reset, refractory, n_in, g_down,
                  sp_source, sp_i_minus_theta, spike_grad, coef_m, coef_s):
    """The neuron's events forwards (the state there from the segment sums, as
    :func:`~neurodelay.layered._kernels.factored_log`; ev_i: I at each event), then backwards
    (:func:`~neurodelay.layered._kernels.factored_event`): coef_m[s], coef_s[s] = the costate's (a, b)
    over segment s (0 after the last event), spike_grad of its spikes. g_down: the time sensitivities of
    the spikes sent back by the layers downstream (rows added by _spike_costate). Returns
    (dL/dtheta, max |V - theta| at its spikes)."""
    kk = ts / (tm - ts)
    worst = segment_states(ne, ev_t, ev_c, ev_i, seg_s, seg_m, kk, tm, ts, theta, reset, refractory)
    a = 0.0
    b = 0.0
    pv_ref = 0.0
    i_ref = 0.0
    g_th = 0.0
    coef_m[ne] = 0.0
    coef_s[ne] = 0.0
    for e in range(ne - 1, -1, -1):
        a, b, pv_ref, i_ref, d_th = factored_event(ev_t[e], ev_c[e], ev_s[e], ev_i[e], a, b, pv_ref, i_ref, kk, tm,
                                                   ts, reset, refractory, n_in, g_down, sp_source,
                                                   sp_i_minus_theta, spike_grad)
        g_th += d_th
        coef_m[e] = a
        coef_s[e] = b
    return g_th, worst
