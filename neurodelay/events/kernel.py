"""The compiled event loop of one trial (numba, releases the GIL).

Two priority queues drive it:

* a min-heap of *fan-outs*: one entry per spike whose arrivals are still in
  flight, keyed by its next arrival time (outgoing synapses are sorted by
  delay, so a spike's arrivals come in order and the entry is re-keyed in
  place after each arrival); input spikes enter it when they are emitted, and
  the slots of finished fan-outs are recycled, so it stays small and cached;
* an indexed min-heap over neurons of the predicted next threshold crossing
  given no further input (inf if none), recomputed after each arrival.

The earlier of the two tops is processed; ties go to the spike. Nothing is
discretised: each arrival is applied at t_spike + d exactly.

Performance note: the loop lives in a function whose arrays are all arguments
and never reassigned (growing them happens outside, after which the loop is
re-entered), and its helpers (here and in :mod:`.heap`) are plain numba
functions that LLVM inlines. Array variables reassigned inside a loop, or
helpers inlined at numba IR level with array arguments, make numba emit atomic
reference counting on every event, which cost more than all the arithmetic.

Plasticity: the loop takes one more argument, ``plast``: None for plain simulation, or the
state of the three-factor rule's eligibility traces (:mod:`.traces`), whose hooks are then
called at each arrival and spike. numba compiles the loop once per type of ``plast`` and
prunes the ``plast is not None`` branches of the plain variant before typing, so the plain
loop is the same code as without the hooks (one loop, two compiled variants).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..flat import KIND_LIF
from .dynamics import biased_crossing, biased_state_at
from .heap import heap_fix_top, heap_push, indexed_sift_down, indexed_sift_up
from .traces import finish, on_arrival, on_interval, on_spike

#: numba's on-disk cache of this file is keyed on this file alone, but the loop inlines the hooks of
#: .traces: bump this number with every change there, or cached kernels keep the old hooks
TRACES_REVISION = 2

STATUS_OK = 0
STATUS_TOO_MANY_SPIKES = 1


@njit(cache=True)
def _grow(a, n):
    b = np.empty(max(2 * a.shape[0], n), a.dtype)
    for i in range(a.shape[0]):  # a loop, not a slice assignment: no shape-error code to compile
        b[i] = a[i]
    return b


# callers pass `inclusive` as np.bool_(...): a literal True / False would compile it twice
@njit(cache=True)
def _take_samples(samples, sp, sample_times, sample_neurons, t_limit, inclusive,
                  v, cur, t_last, ref_end, reset, tau_m, tau_s, bias):
    """Fill sample rows sp.. with times before t_limit (or at it, if inclusive); returns the next row."""
    while sp < sample_times.shape[0]:
        ts = sample_times[sp]
        if ts > t_limit or (ts == t_limit and not inclusive):
            break
        for q in range(sample_neurons.shape[0]):
            j = sample_neurons[q]
            samples[sp, q] = biased_state_at(v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j], ts,
                                             bias[j])[0]
        sp += 1
    return sp


@njit(cache=True)
def _predict(j, tau_m, tau_s, theta, reset, closed_form, bias, v, cur, t_last, ref_end, pkey, pitem, ppos):
    """Recompute the predicted crossing of LIF neuron j from its state and restore the heap."""
    if ref_end[j] > t_last[j]:
        t0, v0 = ref_end[j], reset[j]
        i0 = biased_state_at(v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j], t0, bias[j])[1]
    else:
        t0, v0, i0 = t_last[j], v[j], cur[j]
    old = pkey[j]
    pkey[j] = t0 + biased_crossing(v0, i0, tau_m[j], tau_s[j], theta[j], closed_form[j], bias[j])
    if pkey[j] < old:
        indexed_sift_up(pkey, pitem, ppos, ppos[j])
    else:
        indexed_sift_down(pkey, pitem, ppos, ppos[j], pkey.shape[0])


# what _event_loop returns: finished, or it stopped (state intact) because an array is full
_DONE, _NEED_SLOTS, _NEED_RECORDS = 0, 1, 2
# positions in the int64 `counters` array that carries the loop's scalar state across re-entries
_HSIZE, _NFREE, _KIN, _NSPK, _SP, _STATUS = 0, 1, 2, 3, 4, 5


@njit(cache=True, nogil=True)
def _event_loop(kind, tau_m, tau_s, theta, reset, refractory, closed_form,
                out_ptr, out_post, out_w, out_d, bias, in_neuron, in_time, t_end, sample_times, sample_neurons,
                max_spikes, v, cur, t_last, ref_end, pkey, pitem, ppos,
                sl_t, sl_c, sl_n, free, hk, hs, r_t, r_n, r_g, samples, counters, plast):
    """Process events in time order until t_end, or until a slot or record array is full.

    plast: None, or the plastic state of :mod:`.traces` (its hooks run at every event).

    No array is reassigned here (growing them is the caller's job): numba then
    needs no reference counting inside the loop, which would otherwise dominate
    its cost. Returns _DONE, _NEED_SLOTS or _NEED_RECORDS.
    """
    hsize, n_free, k_in = counters[_HSIZE], counters[_NFREE], counters[_KIN]
    n_spk, sp, status = counters[_NSPK], counters[_SP], counters[_STATUS]
    n_in, n_samples = in_time.shape[0], sample_times.shape[0]
    code = _DONE
    while True:
        t_a = hk[0] if hsize > 0 else np.inf
        top = pitem[0]
        t_p = pkey[top]
        t_now = min(t_a, t_p)
        # admit the input spikes emitted by now; their arrivals are all later, so the
        # fan-out heap holds only spikes in flight
        while k_in < n_in and in_time[k_in] <= t_now:
            src = in_neuron[k_in]
            a = out_ptr[src]
            if a < out_ptr[src + 1]:
                if n_free == 0:
                    code = _NEED_SLOTS
                    break
                n_free -= 1
                slot = free[n_free]
                sl_t[slot], sl_c[slot], sl_n[slot] = in_time[k_in], a, src
                hsize = heap_push(hk, hs, hsize, in_time[k_in] + out_d[a], slot)
                t_a = hk[0]
                t_now = min(t_a, t_p)
            k_in += 1
        if code != _DONE or t_now > t_end:
            break
        if sp < n_samples and sample_times[sp] < t_now:
            sp = _take_samples(samples, sp, sample_times, sample_neurons, t_now, np.bool_(False),
                               v, cur, t_last, ref_end, reset, tau_m, tau_s, bias)
        if t_p <= t_a:
            j = top
            a = out_ptr[j]
            if n_spk == r_t.shape[0]:
                code = _NEED_RECORDS
                break
            if a < out_ptr[j + 1] and n_free == 0:
                code = _NEED_SLOTS
                break
            if plast is not None:
                on_interval(plast, j, v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j],
                            theta[j], t_p)
            _, cur[j] = biased_state_at(v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j], t_p,
                                        bias[j])
            t_last[j] = t_p
            r_t[n_spk], r_n[n_spk], r_g[n_spk] = t_p, j, cur[j] + bias[j] - theta[j]
            if plast is not None:
                on_spike(plast, j, t_p, cur[j] + bias[j] - theta[j], tau_m[j], tau_s[j])
            n_spk += 1
            if n_spk > max_spikes:
                status = STATUS_TOO_MANY_SPIKES
                break
            v[j] = reset[j]
            ref_end[j] = t_p + refractory[j]
            if a < out_ptr[j + 1]:
                n_free -= 1
                slot = free[n_free]
                sl_t[slot], sl_c[slot], sl_n[slot] = t_p, a, j
                hsize = heap_push(hk, hs, hsize, t_p + out_d[a], slot)
        else:
            slot = hs[0]
            c = sl_c[slot]
            j = out_post[c]
            if plast is not None:
                on_interval(plast, j, v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j],
                            theta[j], t_a)
            v[j], cur[j] = biased_state_at(v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j], t_a,
                                           bias[j])
            t_last[j] = t_a
            cur[j] += out_w[c]
            if plast is not None:
                on_arrival(plast, c, j, t_a, tau_m[j], tau_s[j])
            c += 1
            if c < out_ptr[sl_n[slot] + 1]:
                sl_c[slot] = c
                hk[0] = sl_t[slot] + out_d[c]
                heap_fix_top(hk, hs, hsize)
            else:
                free[n_free] = slot
                n_free += 1
                hsize -= 1
                if hsize > 0:
                    hk[0], hs[0] = hk[hsize], hs[hsize]
                    heap_fix_top(hk, hs, hsize)
            if kind[j] != KIND_LIF:
                continue
        # new prediction for neuron j (spiked or received input)
        _predict(j, tau_m, tau_s, theta, reset, closed_form, bias, v, cur, t_last, ref_end, pkey, pitem, ppos)
    counters[_HSIZE], counters[_NFREE], counters[_KIN] = hsize, n_free, k_in
    counters[_NSPK], counters[_SP], counters[_STATUS] = n_spk, sp, status
    return code


@njit(cache=True, nogil=True)
def _run_trial(kind, tau_m, tau_s, theta, reset, refractory, closed_form,
               out_ptr, out_post, out_w, out_d, bias,
               in_neuron, in_time, t_end, sample_times, sample_neurons, max_spikes, v_init, i_init, plast):
    """simulate_trial, or with `plast` (not None) its plastic variant (the traces are completed at t_end;
    the traces assume no bias current: the plastic callers refuse one)."""
    n = kind.shape[0]
    v = v_init.copy()
    cur = i_init.copy()
    t_last = np.zeros(n)
    ref_end = np.full(n, -np.inf)
    # indexed heap of predicted crossings (neurons at rest without bias never cross: inf)
    pkey = np.full(n, np.inf)
    pitem = np.arange(n)
    ppos = np.arange(n)
    for j in range(n):
        if kind[j] == KIND_LIF and (v[j] != 0.0 or cur[j] != 0.0 or bias[j] != 0.0):
            _predict(j, tau_m, tau_s, theta, reset, closed_form, bias, v, cur, t_last, ref_end, pkey, pitem, ppos)
    # fan-out slots of the spikes in flight, recycled through a free list, and their heap
    cap = 1024
    sl_t = np.empty(cap)
    sl_c = np.empty(cap, np.int64)
    sl_n = np.empty(cap, np.int64)
    free = np.arange(cap - 1, -1, -1)
    hk = np.empty(cap)
    hs = np.empty(cap, np.int64)
    # records
    r_t = np.empty(cap)
    r_n = np.empty(cap, np.int64)
    r_g = np.empty(cap)
    samples = np.zeros((sample_times.shape[0], sample_neurons.shape[0]))
    counters = np.zeros(6, np.int64)
    counters[_NFREE] = cap
    counters[_STATUS] = STATUS_OK
    while True:
        code = _event_loop(kind, tau_m, tau_s, theta, reset, refractory, closed_form,
                           out_ptr, out_post, out_w, out_d, bias, in_neuron, in_time, t_end, sample_times,
                           sample_neurons, max_spikes, v, cur, t_last, ref_end, pkey, pitem, ppos,
                           sl_t, sl_c, sl_n, free, hk, hs, r_t, r_n, r_g, samples, counters, plast)
        if code == _NEED_SLOTS:  # all slots in flight: double them, the new ones are free
            cap = sl_t.shape[0]
            sl_t, sl_c, sl_n, hk, hs = _grow(sl_t, 0), _grow(sl_c, 0), _grow(sl_n, 0), _grow(hk, 0), _grow(hs, 0)
            free = np.arange(2 * cap - 1, -1, -1)  # entries [0, cap) are the new slots 2cap-1 .. cap
            counters[_NFREE] = cap
        elif code == _NEED_RECORDS:
            r_t, r_n, r_g = _grow(r_t, 0), _grow(r_n, 0), _grow(r_g, 0)
        else:
            break
    n_spk, status = counters[_NSPK], counters[_STATUS]
    if status == STATUS_OK:
        _take_samples(samples, counters[_SP], sample_times, sample_neurons, t_end, np.bool_(True),
                      v, cur, t_last, ref_end, reset, tau_m, tau_s, bias)
        if plast is not None:
            finish(plast, kind, tau_m, tau_s, theta, reset, out_post, v, cur, t_last, ref_end, t_end)
    return r_t[:n_spk].copy(), r_n[:n_spk].copy(), r_g[:n_spk].copy(), samples, status


@njit(cache=True, nogil=True)
def simulate_trial(kind, tau_m, tau_s, theta, reset, refractory, closed_form,
                   out_ptr, out_post, out_w, out_d, bias,
                   in_neuron, in_time, t_end, sample_times, sample_neurons, max_spikes, v_init, i_init):
    """Simulate one trial on [0, t_end] seconds from the state (v_init, i_init) at t = 0.

    The first 12 arguments are the network (:class:`~neurodelay.flat.KernelNetwork`;
    pass ``*flat.kernel``).
    in_neuron, in_time: input spikes (global neuron index, seconds), sorted by time.
    Returns (spike_time, spike_neuron, spike_i_minus_theta, samples, status):
    the emitted spikes in time order (I - theta at each spike, i.e. tau_m dV/dt),
    V of `sample_neurons` at `sample_times` (shape (n_samples, n_sampled)), and
    STATUS_TOO_MANY_SPIKES if more than max_spikes spikes were emitted.
    """
    return _run_trial(kind, tau_m, tau_s, theta, reset, refractory, closed_form, out_ptr, out_post, out_w, out_d,
                      bias, in_neuron, in_time, t_end, sample_times, sample_neurons, max_spikes, v_init, i_init,
                      None)


@njit(cache=True, nogil=True)
def simulate_plastic_trial(kind, tau_m, tau_s, theta, reset, refractory, closed_form,
                           out_ptr, out_post, out_w, out_d, bias,
                           in_neuron, in_time, t_end, sample_times, sample_neurons, max_spikes, v_init, i_init,
                           plast):
    """:func:`simulate_trial` that also runs the three-factor rule's traces (state `plast`, see
    :mod:`.traces`, updated in place and completed at t_end). Same return value. The traces
    assume bias 0 (the callers refuse a bias current)."""
    return _run_trial(kind, tau_m, tau_s, theta, reset, refractory, closed_form, out_ptr, out_post, out_w, out_d,
                      bias, in_neuron, in_time, t_end, sample_times, sample_neurons, max_spikes, v_init, i_init,
                      plast)
