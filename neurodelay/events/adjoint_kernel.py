"""Compiled EventProp-with-delays reverse pass for one trial (numba, releases the GIL).

Conventions (derivation in :mod:`neurodelay.events.adjoint`). The adjoint of
neuron j is kept as the *costate* ``p_V(t) = dL/dV_j(t)``, ``p_I(t) = dL/dI_j(t)``
(the derivative of the loss with respect to a perturbation of the state at t).
It relates to the lambda of Wunderlich & Pehle by ``lambda_V = -p_V / tau_m``,
``lambda_I = -p_I / tau_s``. Between events, backwards in time,

    dp_V/dt = p_V / tau_m - dl_V/dV        dp_I/dt = -p_V / tau_m + p_I / tau_s

which is exponential (plus the particular solution of exponential loss
sources), so p is advanced from event to event in closed form.

Two passes per trial:

1. :func:`replay_trial` replays the recorded trial forward (the recorded spike
   times are given, so no threshold search): all arrivals ``t_k + d`` merged in
   time order with a heap of fan-outs, exactly like the forward engine, and
   writes an *event log* (arrival: synapse and source spike; spike; end of a
   refractory period) with the target's state (V, I) just before each event.
2. :func:`reverse_trial` walks the log backwards. Each event first advances
   the costate of its neuron from that neuron's previous (later) event down to
   the event time, accumulating the time-constant integrals, and then applies
   the event. The log order guarantees that all arrivals of a spike (at
   ``t_k + d >= t_k``) come before the spike itself in reverse, so the spike's
   total time sensitivity is complete when its costate jump is applied.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..flat import KIND_SOURCE
from .dynamics import biased_state_at, free_voltage, psp_kernel
from .heap import heap_fix_top, heap_push
from .readout import exp_overlap

EV_SPIKE = -1      # ev_syn code of a spike event (ev_src = recorded spike index)
EV_REF_END = -2    # ev_syn code of the end of a refractory period (ev_src = the spike that started it)


# ---------------------------------------------------------------- replay ----
@njit(cache=True)
def _arrivals_in_window(out_d, a, b, t_spike, t_end):
    """Number of synapses a..b-1 (sorted by delay) whose arrival t_spike + d is <= t_end."""
    lo, hi = a, b
    while lo < hi:
        mid = (lo + hi) >> 1
        if t_spike + out_d[mid] <= t_end:
            lo = mid + 1
        else:
            hi = mid
    return lo - a


@njit(cache=True, nogil=True)
def replay_trial(kind, tau_m, tau_s, theta, reset, refractory, closed_form, out_ptr, out_post, out_w, out_d, bias,
                 in_neuron, in_time, sp_neuron, sp_time, t_end, v_init, i_init):
    """Forward replay of one recorded trial on [0, t_end] s from the state (v_init, i_init) at t = 0.

    The first 12 arguments are the network (:class:`~neurodelay.flat.KernelNetwork`,
    pass ``*flat.kernel``; kind and closed_form are not needed here).
    in_neuron/in_time: input spikes sorted by time; sp_neuron/sp_time: the
    recorded spikes sorted by time. Spike ids: inputs 0..n_in-1, recorded
    spikes n_in + k. Returns (ev_syn, ev_src, ev_v, ev_i, worst_v) where ev_*
    is the event log in forward order (ev_syn: synapse of an arrival, or
    EV_SPIKE / EV_REF_END) with the state (V, I) of the event's neuron just
    before it, and worst_v = ``max |V - theta|`` at the recorded spikes (a check
    that the record fits the network).
    """
    n_in = in_time.shape[0]
    n_sp = sp_time.shape[0]
    n = tau_m.shape[0]
    # exact size of the log: arrivals within the window, spikes, at most one end of refractoriness per spike
    n_ev = 2 * n_sp
    for k in range(n_in):
        src = in_neuron[k]
        n_ev += _arrivals_in_window(out_d, out_ptr[src], out_ptr[src + 1], in_time[k], t_end)
    for k in range(n_sp):
        src = sp_neuron[k]
        n_ev += _arrivals_in_window(out_d, out_ptr[src], out_ptr[src + 1], sp_time[k], t_end)
    ev_syn = np.empty(n_ev, np.int32)
    ev_src = np.empty(n_ev, np.int32)
    ev_v = np.empty(n_ev)
    ev_i = np.empty(n_ev)
    e = 0
    v = v_init.copy()
    cur = i_init.copy()
    t_last = np.zeros(n)
    ref_end = np.full(n, -np.inf)
    ref_spike = np.full(n, -1, np.int64)   # recorded spike whose refractory end is still to be logged
    # fan-out slots of the spikes in flight (recycled through a free list) and their heap,
    # keyed by each spike's next arrival; inputs enter when they are emitted, so the heap
    # holds only spikes whose arrivals are still pending
    cap = n_in + n_sp + 1
    sl_c = np.empty(cap, np.int64)
    sl_end = np.empty(cap, np.int64)
    sl_id = np.empty(cap, np.int64)
    free = np.arange(cap - 1, -1, -1)
    n_free = cap
    hk = np.empty(cap)
    hs = np.empty(cap, np.int64)
    hsize = 0
    all_t = np.empty(n_in + n_sp)
    for k in range(n_in):  # loops, not slice assignments: no shape-error code to compile
        all_t[k] = in_time[k]
    for k in range(n_sp):
        all_t[n_in + k] = sp_time[k]
    worst_v = 0.0
    p = 0
    k_in = 0
    while True:
        t_a = hk[0] if hsize > 0 else np.inf
        t_p = sp_time[p] if p < n_sp else np.inf
        t_now = min(t_a, t_p)
        while k_in < n_in and in_time[k_in] <= t_now:
            src = in_neuron[k_in]
            a = out_ptr[src]
            if a < out_ptr[src + 1]:
                n_free -= 1
                slot = free[n_free]
                sl_c[slot], sl_end[slot], sl_id[slot] = a, out_ptr[src + 1], k_in
                hsize = heap_push(hk, hs, hsize, in_time[k_in] + out_d[a], slot)
            k_in += 1
        t_a = hk[0] if hsize > 0 else np.inf
        t_now = min(t_a, t_p)
        if t_now > t_end:
            break
        if t_p <= t_a:          # ties: the spike first, as in the forward engine
            j = sp_neuron[p]
        else:
            j = out_post[sl_c[hs[0]]]
        if ref_spike[j] >= 0 and t_now > ref_end[j]:
            # the refractory period of j ended before this event: log it with I at its end
            r = ref_end[j]
            _, i_r = biased_state_at(v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j], r, bias[j])
            ev_syn[e], ev_src[e], ev_v[e], ev_i[e] = EV_REF_END, ref_spike[j], reset[j], i_r
            e += 1
            v[j], cur[j], t_last[j] = reset[j], i_r, r
            ref_spike[j] = -1
        vb, ib = biased_state_at(v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j], t_now, bias[j])
        if t_p <= t_a:
            ev_syn[e], ev_src[e], ev_v[e], ev_i[e] = EV_SPIKE, p, vb, ib
            e += 1
            worst_v = max(worst_v, abs(vb - theta[j]))
            v[j], cur[j], t_last[j] = reset[j], ib, t_p
            ref_end[j] = t_p + refractory[j]
            ref_spike[j] = p if refractory[j] > 0.0 else -1
            a = out_ptr[j]
            if a < out_ptr[j + 1]:
                n_free -= 1
                slot = free[n_free]
                sl_c[slot], sl_end[slot], sl_id[slot] = a, out_ptr[j + 1], n_in + p
                hsize = heap_push(hk, hs, hsize, t_p + out_d[a], slot)
            p += 1
        else:
            slot = hs[0]
            c = sl_c[slot]
            ev_syn[e], ev_src[e], ev_v[e], ev_i[e] = c, sl_id[slot], vb, ib
            e += 1
            v[j], cur[j], t_last[j] = vb, ib + out_w[c], t_a
            c += 1
            if c < sl_end[slot]:
                sl_c[slot] = c
                hk[0] = all_t[sl_id[slot]] + out_d[c]
                heap_fix_top(hk, hs, hsize)
            else:
                free[n_free] = slot
                n_free += 1
                hsize -= 1
                if hsize > 0:
                    hk[0], hs[0] = hk[hsize], hs[hsize]
                    heap_fix_top(hk, hs, hsize)
    for j in range(n):          # refractory periods that end inside the window after the last event
        if ref_spike[j] >= 0 and ref_end[j] <= t_end:
            _, i_r = biased_state_at(v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j], ref_end[j],
                                     bias[j])
            ev_syn[e], ev_src[e], ev_v[e], ev_i[e] = EV_REF_END, ref_spike[j], reset[j], i_r
            e += 1
    return ev_syn[:e], ev_src[:e], ev_v[:e], ev_i[:e], worst_v


# --------------------------------------------------------------- reverse ----
@njit(cache=True)
def homogeneous(length, v0, i0, P, Q, clamped, tm, ts, want_tau):
    """Source-free costate at the start of an event-free interval of `length` s, from (P, Q) at its end.

    (v0, i0): forward state just after the start. Returns (p_V, p_I, dL/dtau_m, dL/dtau_s):
    the costate at the start and the interval's share of ``int p_V (V - I)/tau_m^2 dt`` and
    ``int p_I I / tau_s^2 dt`` (0 unless want_tau). While clamped (refractory) V is held:
    p_V = 0 and only I evolves.
    """
    es = math.exp(-length / ts)
    if clamped:
        d_ts = i0 * Q * exp_overlap(length, 1.0 / ts, 1.0 / ts) / (ts * ts) if want_tau else 0.0
        return 0.0, Q * es, 0.0, d_ts
    kr = ts / (tm - ts)
    p_v = P * math.exp(-length / tm)
    p_i = Q * es + P * kr * psp_kernel(tm, ts, length)
    if not want_tau:
        return p_v, p_i, 0.0, 0.0
    # x = t - start: V - I = a1 exp(-x/tm) + a2 exp(-x/ts), I = i0 exp(-x/ts),
    # p_V = P exp(-(L-x)/tm), p_I = (Q - P kr) exp(-(L-x)/ts) + P kr exp(-(L-x)/tm)
    rm, rs = 1.0 / tm, 1.0 / ts
    a1 = v0 + i0 * kr
    a2 = -i0 * (kr + 1.0)
    e_ss = exp_overlap(length, rs, rs)
    e_sm = exp_overlap(length, rs, rm)
    j_m = P * (a1 * exp_overlap(length, rm, rm) + a2 * e_sm)
    j_s = Q * e_ss + P * kr * (e_sm - e_ss)
    return p_v, p_i, j_m / (tm * tm), i0 * j_s / (ts * ts)


@njit(cache=True)
def particular(coef, rate, t0, length, v0, i0, tm, ts, want_tau):
    """Particular solution for a continuous source dL/dV = coef exp(-rate t) on an interval
    [t0, t0 + length]: its values at the start (alpha -> p_V, beta -> p_I), the same at the
    end (to subtract from the boundary values of the homogeneous part), and its share of the
    time-constant integrals (see :func:`homogeneous`)."""
    alpha = coef * math.exp(-rate * t0) / (1.0 / tm + rate)
    beta = alpha / (tm * (1.0 / ts + rate))
    decay = math.exp(-rate * length)
    d_tm = d_ts = 0.0
    if want_tau:
        kr = ts / (tm - ts)
        a1 = v0 + i0 * kr
        a2 = -i0 * (kr + 1.0)
        d_tm = alpha * (a1 * exp_overlap(length, rate + 1.0 / tm, 0.0)
                        + a2 * exp_overlap(length, rate + 1.0 / ts, 0.0)) / (tm * tm)
        d_ts = i0 * beta * exp_overlap(length, rate + 1.0 / ts, 0.0) / (ts * ts)
    return alpha, beta, alpha * decay, beta * decay, d_tm, d_ts


@njit(cache=True)
def _advance(j, t, u_after, i_after, t_hi, pv, pi, k, clamped_j, tm, ts, ps_ptr, ps_time, ps_value,
             cs_ptr, cs_coef, cs_rate, want_tau, want_bias, g_tau_m, g_tau_s, g_bias):
    """Advance the costate (pv, pi) of neuron j from t_hi down to t (< = t_hi), given the forward state
    just after t in bias-shifted form (u = V - bias, I); point sources in (t, t_hi] are added on the
    way (cursor k, descending), dropped while clamped. Accumulates the time-constant integrals and,
    if want_bias, ``int p_V / tau_m dt`` (dL/dbias) over unclamped time. Returns (pv, pi, k)."""
    while True:
        t_lo = t
        has_source = k >= ps_ptr[j] and ps_time[k] > t
        if has_source:
            if clamped_j:
                k -= 1
                continue
            t_lo = ps_time[k]
        s = t_lo - t
        v0 = free_voltage(u_after, i_after, tm, ts, s) if s > 0.0 else u_after
        i0 = i_after * math.exp(-s / ts) if s > 0.0 else i_after
        length = t_hi - t_lo
        sum_a = sum_b = end_a = end_b = int_a = 0.0
        for q in range(cs_ptr[j], cs_ptr[j + 1]):
            alpha, beta, alpha_end, beta_end, d_tm, d_ts = particular(
                cs_coef[q], cs_rate[q], t_lo, length, v0, i0, tm, ts, want_tau)
            sum_a += alpha
            sum_b += beta
            end_a += alpha_end
            end_b += beta_end
            g_tau_m[j] += d_tm
            g_tau_s[j] += d_ts
            if want_bias:
                int_a += alpha * exp_overlap(length, cs_rate[q], 0.0)
        if want_bias and not clamped_j:
            # p_V = (P - end_a) exp(-(L - x)/tau_m) + particular part on [0, L]
            g_bias[j] += ((pv - end_a) * exp_overlap(length, 0.0, 1.0 / tm) + int_a) / tm
        pv, pi, d_tm, d_ts = homogeneous(length, v0, i0, pv - end_a, pi - end_b, clamped_j,
                                          tm, ts, want_tau)
        pv += sum_a
        pi += sum_b
        g_tau_m[j] += d_tm
        g_tau_s[j] += d_ts
        if not has_source:
            break
        pv += ps_value[k]
        t_hi = t_lo
        k -= 1
    return pv, pi, k


@njit(cache=True, nogil=True)
def reverse_trial(kind, tau_m, tau_s, theta, reset, refractory, closed_form, out_ptr, out_post, out_w, out_d, bias,
                  in_time, sp_neuron, sp_time, sp_i_minus_theta, sp_source,
                  ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate,
                  ev_syn, ev_src, ev_v, ev_i, t_end, want_tau, want_bias, want_start, v_init, i_init,
                  g_w, g_d, g_tau_m, g_tau_s, g_theta, g_bias):
    """Reverse pass over the event log of :func:`replay_trial`.

    The first 12 arguments are the network (:class:`~neurodelay.flat.KernelNetwork`,
    pass ``*flat.kernel``; kind, closed_form and out_ptr are not needed here).
    Loss sources: sp_source[k] = dl/dt_k of recorded spike k; point sources
    dL/dV (jumps of p_V) per neuron in CSR (ps_ptr over neurons, ps_time sorted
    ascending within a neuron, ps_value); continuous sources dL/dV(t) =
    coef exp(-rate t) on [0, t_end] in CSR (cs_ptr, cs_coef, cs_rate).
    Adds the trial's gradients into g_w, g_d (per flat synapse: weight, total
    delay), g_tau_m, g_tau_s, g_theta, g_bias (per neuron; g_bias only if want_bias).
    With want_start, every neuron's costate is carried down to t = 0 from the
    state (v_init, i_init) there (needed for dL/dbias, the time-constant integrals
    before a neuron's first event when it does not start at rest, and the
    initial-state gradients). Returns (dL/dt of each recorded spike, dL/dt of each
    input spike, p_V(0), p_I(0) per neuron = dL/dV(0), dL/dI(0); zeros unless want_start).

    Every event first advances the costate of its neuron j from t_at[j] (its
    previous, later event) down to the event time t, given the forward state
    just after t; point sources in (t, t_at[j]] are added on the way (a source
    at t itself acts on times before t, so it waits), and sources inside a
    refractory clamp are dropped (V is held there). Then the event is applied.
    With a bias b, ``tau_m dV/dt = I + b - V``: the record's ``sp_i_minus_theta``
    is ``I + b - theta``, and every other dV/dt below gains b.
    """
    n = tau_m.shape[0]
    n_in = in_time.shape[0]
    n_sp = sp_time.shape[0]
    all_t = np.empty(n_in + n_sp)
    for k in range(n_in):  # loops, not slice assignments: no shape-error code to compile
        all_t[k] = in_time[k]
    for k in range(n_sp):
        all_t[n_in + k] = sp_time[k]
    g_time = np.zeros(n_in + n_sp)      # dL/dt_k through the arrivals of spike k
    t_at = np.full(n, t_end)
    p_v = np.zeros(n)
    p_i = np.zeros(n)
    clamped = np.zeros(n, np.bool_)
    pv_ref = np.zeros(n)                # p_V just after the end of the pending refractory period
    i_ref = np.zeros(n)                 # I at that end
    for k in range(n_sp):               # clamps that last beyond t_end (the last spike of each neuron wins)
        j = sp_neuron[k]
        clamped[j] = refractory[j] > 0.0 and sp_time[k] + refractory[j] > t_end
    ps_cursor = np.empty(n, np.int64)
    for j in range(n):
        ps_cursor[j] = ps_ptr[j + 1] - 1
    spike_grad = np.zeros(n_sp)
    for e in range(ev_syn.shape[0] - 1, -1, -1):
        c = ev_syn[e]
        src = ev_src[e]
        # the event's neuron, time and the forward state just after it
        if c >= 0:                       # arrival of spike src at out_post[c]
            j = out_post[c]
            t = all_t[src] + out_d[c]
            v_after, i_after = ev_v[e], ev_i[e] + out_w[c]
        elif c == EV_REF_END:            # end of the refractory period that spike src started
            j = sp_neuron[src]
            t = sp_time[src] + refractory[j]
            v_after, i_after = reset[j], ev_i[e]
            clamped[j] = False           # (t, t_at[j]] follows the clamp
        else:                            # recorded spike src of neuron j
            j = sp_neuron[src]
            t = sp_time[src]
            v_after, i_after = reset[j], ev_i[e]
        tm, ts, bj = tau_m[j], tau_s[j], bias[j]
        # ---- advance the costate of j from t_at[j] down to t
        pv, pi, k = _advance(j, t, v_after - bj, i_after, t_at[j], p_v[j], p_i[j], ps_cursor[j], clamped[j],
                             tm, ts, ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate, want_tau, want_bias,
                             g_tau_m, g_tau_s, g_bias)
        ps_cursor[j] = k
        t_at[j] = t
        # ---- apply the event
        if c >= 0:
            w = out_w[c]
            g_w[c] += pi
            dl_dt = w * (pi / ts - pv / tm)
            # a point source at exactly this arrival (a maximum of V at a kink) moves with it
            q = k
            while q >= ps_ptr[j] and ps_time[q] == t:
                if not clamped[j]:
                    dl_dt += ps_value[q] * (ev_i[e] + bj - ev_v[e]) / tm
                q -= 1
            g_d[c] += dl_dt
            g_time[src] += dl_dt
        elif c == EV_REF_END:
            pv_ref[j] = pv
            i_ref[j] = ev_i[e]
            pv = 0.0
            clamped[j] = True
        else:
            # dL/dt_k through what follows the reset: V restarts from reset at t_k (no refractory
            # period) or at t_k + t_ref (the clamp ends later when the spike is later)
            if refractory[j] > 0.0:
                after = -pv_ref[j] * (i_ref[j] + bj - reset[j]) / tm
                pv_ref[j] = 0.0
            else:
                after = -pv * (ev_i[e] + bj - reset[j]) / tm
            total = sp_source[src] + g_time[n_in + src] + after
            spike_grad[src] = total
            # t_k moves by -dV/(dV/dt) = -tau_m dV / (I + b - theta) when V is perturbed before the spike
            pv = -tm * total / sp_i_minus_theta[src]
            g_theta[j] -= pv
            clamped[j] = False
        p_v[j], p_i[j] = pv, pi
    p_v0 = np.zeros(n)
    p_i0 = np.zeros(n)
    if want_start:
        for j in range(n):
            if kind[j] == KIND_SOURCE:   # spike sources have no state
                continue
            pv, pi, k = _advance(j, 0.0, v_init[j] - bias[j], i_init[j], t_at[j], p_v[j], p_i[j], ps_cursor[j],
                                 clamped[j], tau_m[j], tau_s[j], ps_ptr, ps_time, ps_value, cs_ptr, cs_coef,
                                 cs_rate, want_tau, want_bias, g_tau_m, g_tau_s, g_bias)
            while k >= ps_ptr[j]:        # point sources at t = 0 read V(0) = v_init itself
                pv += ps_value[k]
                k -= 1
            p_v0[j], p_i0[j] = pv, pi
    return spike_grad, g_time[:n_in].copy(), p_v0, p_i0
