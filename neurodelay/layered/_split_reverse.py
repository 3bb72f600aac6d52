"""The factored reverse pass of one LIF neuron split over lanes that each take a share of its synapses.

:func:`~neurodelay.layered._kernels.reverse_factored` walks a neuron's arrivals in time order, so its
arrivals must first be gathered and sorted, and one thread does all of it. On a GPU that thread is
slow: a thread per (trial, neuron) leaves most of the device idle and waits on memory (measured on an
H100 at SHD size: about 2 warps per SM, 13 cycles between instructions, 3.5 ms per trial for the
hidden layer). But the costate of a neuron reached only through its spike times is
``p_V = a F_m(t)``, ``p_I = b F_s(t) + K a F_m(t)`` with (a, b) constant between its events (spikes and
ends of refractoriness), so an arrival needs only the (a, b) of the *segment* between two events that
it falls in, and no order among the arrivals. Here the neuron's work is shared by ``n_lanes`` lanes
(the threads of a CUDA block), lane ``l`` taking synapses ``in_ptr[j] + l, + 2 n_lanes, ...`` and each
synapse's arrivals in the order of its presynaptic spikes (time order), so that no arrival is sorted:

1. :func:`split_events` (one lane): the neuron's events, in the order of
   :func:`~neurodelay.layered._kernels.factored_log`;
2. :func:`split_sums` (every lane): per segment, the sums of ``w exp(t/tau_s)`` and ``w exp(t/tau_m)``
   (factored: spike factor x synapse factor) of its arrivals, a row per lane;
3. :func:`split_reduce` (every lane, a share of the segments): the rows added in lane order;
4. :func:`split_costate` (one lane): the state at each event from those sums (``factored_log``),
   then the events backwards (:func:`~neurodelay.layered._kernels.factored_event`), giving (a, b) per
   segment, dL/dtheta and the record check;
5. :func:`split_grads` (every lane): dL/dw, dL/dd of its synapses, each written once, and the time
   sensitivities of its presynaptic spikes.

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

__all__ = ["split_events", "split_sums", "split_reduce", "split_costate", "split_grads"]


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
def split_sums(lane, n_lanes, j, in_ptr, in_pre, in_d, in_w, s_start, s_end, s_time, s_id, t_end, dm, ds, em, es,
               ne, ev_t, ev_c, part_s, part_m):
    """Lane `lane`'s share of the segment sums of neuron j: part_s[lane (ne + 1) + s] = the sum of
    w exp(t/tau_s) (w es[spike] ds[q]) over its arrivals t <= t_end in segment s, part_m the same with
    tau_m (em, dm). s_start/s_end: each neuron's spikes in s_time (time-sorted), ids s_id."""
    n_seg = ne + 1
    base = lane * n_seg
    for s in range(n_seg):
        part_s[base + s] = 0.0
        part_m[base + s] = 0.0
    for q in range(in_ptr[j] + lane, in_ptr[j + 1], n_lanes):
        p = in_pre[q]
        d = in_d[q]
        w = in_w[q]
        f_s = ds[q]
        f_m = dm[q]
        seg = 0
        for k in range(s_start[p], s_end[p]):
            t = s_time[k] + d
            if t > t_end:
                break                    # p's spikes are sorted: the later ones arrive later
            seg = _segment(seg, t, ne, ev_t, ev_c)
            if seg == ne:
                break                    # after the last event: nothing depends on it
            i = s_id[k]
            part_s[base + seg] += w * (es[i] * f_s)
            part_m[base + seg] += w * (em[i] * f_m)


@njit(cache=True, nogil=True)
def split_reduce(lane, n_lanes, ne, part_s, part_m, seg_s, seg_m):
    """Segments lane, lane + n_lanes, ...: seg_* = the lanes' rows of part_* (:func:`split_sums`) added in
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
def split_costate(ne, ev_t, ev_c, ev_s, ev_i, seg_s, seg_m, tm, ts, theta, reset, refractory, n_in, g_down,
                  sp_source, sp_i_minus_theta, spike_grad, coef_m, coef_s):
    """The neuron's events forwards (the state there from the segment sums, as
    :func:`~neurodelay.layered._kernels.factored_log`; ev_i: I at each event), then backwards
    (:func:`~neurodelay.layered._kernels.factored_event`): coef_m[s], coef_s[s] = the costate's (a, b)
    over segment s (0 after the last event), spike_grad of its spikes. g_down: the time sensitivities of
    the spikes sent back by the layers downstream (rows added by _spike_costate). Returns
    (dL/dtheta, max |V - theta| at its spikes)."""
    kk = ts / (tm - ts)
    c_s = 0.0
    b_m = 0.0
    refractory_now = False
    ref_end = -np.inf
    worst = 0.0
    for e in range(ne):
        c_s += seg_s[e]
        if not refractory_now:
            b_m += kk * seg_m[e]
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


@njit(cache=True, nogil=True)
def split_grads(lane, n_lanes, j, row, in_ptr, in_pre, in_d, in_w, s_start, s_end, s_time, s_id, t_end, dm, ds, em,
                es, tm, ts, ne, ev_t, ev_c, coef_m, coef_s, g_w, g_d, g_time):
    """Lane `lane`'s synapses of neuron j (as :func:`split_sums`): g_w[q], g_d[q] += dL/dw, dL/dd (summed
    over the synapse's arrivals in time order), g_time[row, spike] += the arrival's dL/dt, with the
    costate of its segment (:func:`split_costate`)."""
    kk = ts / (tm - ts)
    inv_ts, inv_tm = 1.0 / ts, 1.0 / tm
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
                break
            seg = _segment(seg, t, ne, ev_t, ev_c)
            if seg == ne:
                break                    # zero costate after the last event
            i = s_id[k]
            pv = coef_m[seg] * (em[i] * f_m)
            pi = coef_s[seg] * (es[i] * f_s) + kk * pv
            gw += pi
            dl_dt = w * (pi * inv_ts - pv * inv_tm)
            gd += dl_dt
            g_time[row, i] += dl_dt
        g_w[q] += gw
        g_d[q] += gd
