"""Exact voltage trajectories of neurons that do not spike (readouts, silent LIF neurons).

A neuron that never spikes is a linear filter of its arrivals (plus its
initial state and bias): between two arrivals
``V = bias + A exp(-t/tau_m) + B exp(-t/tau_s)`` has at most one extremum
(:func:`~neurodelay.events.dynamics.peak_time`), so its maximum over
[0, duration] and its exponentially weighted integral follow in closed form
from the arrivals alone. The arrivals are rebuilt from an
:class:`~neurodelay.events.EventRecord` (presynaptic spikes + delays), with the
same floating-point operations as the engines, so a maximum located at an
arrival time is bit-identical to that arrival time.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
from numba import njit

from ..network import SpikeSource
from .batch import map_trials
from .dynamics import free_voltage, peak_time

__all__ = ["exp_overlap", "incoming_arrivals", "max_voltage", "window_max_voltage", "weighted_voltage_integral"]

_TRIALS_PER_CHUNK = 8


@njit(cache=True, inline="always")
def exp_overlap(length, a, b):
    """Integral over x in [0, length] of exp(-a x) exp(-b (length - x)), without overflow or cancellation."""
    if a == b:
        return length * math.exp(-a * length)
    lo, hi = (a, b) if a < b else (b, a)
    part = -math.expm1(-(hi - lo) * length) / (hi - lo)
    if lo == 0.0 and math.isfinite(length):
        return part                 # exp(-0 length) = 1 exactly: the same number without an exp
    return math.exp(-lo * length) * part


@njit(cache=True, nogil=True)
def _gather(sp_trial, sp_neuron, sp_time, sub_ptr, sub_syn, target_of_syn, out_d, out_w, t_end, n_targets, n_trials):
    """Arrivals t_spike + d <= t_end through the synapses sub_syn (CSR sub_ptr over presynaptic
    neurons) of target ``target_of_syn[c]``, grouped per (trial, target) and sorted by time."""
    n_groups = n_trials * n_targets
    ptr = np.zeros(n_groups + 1, np.int64)
    for k in range(sp_time.shape[0]):
        n = sp_neuron[k]
        for q in range(sub_ptr[n], sub_ptr[n + 1]):
            c = sub_syn[q]
            if sp_time[k] + out_d[c] <= t_end:
                ptr[sp_trial[k] * n_targets + target_of_syn[c] + 1] += 1
    for g in range(n_groups):
        ptr[g + 1] += ptr[g]
    fill = ptr[:-1].copy()
    time = np.empty(ptr[n_groups])
    weight = np.empty(ptr[n_groups])
    for k in range(sp_time.shape[0]):
        n = sp_neuron[k]
        for q in range(sub_ptr[n], sub_ptr[n + 1]):
            c = sub_syn[q]
            t = sp_time[k] + out_d[c]          # the engines' t_spike + d, bit for bit
            if t <= t_end:
                g = sp_trial[k] * n_targets + target_of_syn[c]
                time[fill[g]], weight[fill[g]] = t, out_w[c]
                fill[g] += 1
    # each group sorted by time, stably (ties keep the generation order: spike, then synapse), by a
    # counting sort on time buckets over [0, t_end] (as many buckets as arrivals) and an insertion sort
    # within buckets: linear in the arrivals for spread-out times
    n_max = 0
    for g in range(n_groups):
        n_max = max(n_max, ptr[g + 1] - ptr[g])
    counts = np.empty(n_max + 1, np.int64)
    tmp_t = np.empty(n_max)
    tmp_w = np.empty(n_max)
    for g in range(n_groups):
        a, m = ptr[g], ptr[g + 1] - ptr[g]
        if m < 2:
            continue
        scale = m / t_end if t_end > 0.0 else 0.0
        for c in range(m + 1):
            counts[c] = 0
        for q in range(m):
            counts[min(max(int(time[a + q] * scale), 0), m - 1) + 1] += 1
        for c in range(m):
            counts[c + 1] += counts[c]
        for q in range(m):
            c = min(max(int(time[a + q] * scale), 0), m - 1)
            tmp_t[counts[c]], tmp_w[counts[c]] = time[a + q], weight[a + q]
            counts[c] += 1
        for q in range(m):
            t, w = tmp_t[q], tmp_w[q]
            r = q
            while r > 0 and tmp_t[r - 1] > t:
                tmp_t[r], tmp_w[r] = tmp_t[r - 1], tmp_w[r - 1]
                r -= 1
            tmp_t[r], tmp_w[r] = t, w
        for q in range(m):
            time[a + q], weight[a + q] = tmp_t[q], tmp_w[q]
    return ptr, time, weight


_SYNAPSES: dict = {}   # (id(flat), neurons) -> (weak reference to flat, _incoming_synapses' result)


def _incoming_synapses(flat, neurons: np.ndarray):
    """The synapses into `neurons` (sorted global indices): (sub_ptr (CSR over presynaptic neurons), their
    flat indices, target number per flat synapse (-1: another neuron)); kept while `flat` lives, as
    a loss calls this once per batch (or trial) with the same network."""
    key = (id(flat), neurons.tobytes())
    hit = _SYNAPSES.get(key)
    if hit is not None and hit[0]() is flat:
        return hit[1]
    n = flat.n_neurons
    local = np.full(n, -1, np.int64)
    local[neurons] = np.arange(len(neurons))
    target_of_syn = local[flat.out_post]
    selected = np.flatnonzero(target_of_syn >= 0)               # synapses into the targets, grouped by pre
    pre_of_syn = np.repeat(np.arange(n), np.diff(flat.out_ptr))
    sub_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(pre_of_syn[selected], minlength=n), out=sub_ptr[1:])
    out = (sub_ptr, selected, target_of_syn)
    for stale in [k for k, v in _SYNAPSES.items() if v[0]() is None]:
        del _SYNAPSES[stale]
    _SYNAPSES[key] = (weakref.ref(flat), out)
    return out


def incoming_arrivals(record, neurons, trials: tuple[int, int] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrivals at the given global neurons (a sorted array), grouped per (trial, neuron).

    trials: a range (first, stop) of trials (default: all). Returns (group_ptr,
    time s, weight): the arrivals of neuron ``neurons[q]`` in trial first + b are
    ``group_ptr[b * len(neurons) + q]`` up to the next pointer, sorted by time.
    Arrivals after the record's duration are dropped (the engines never apply them).
    """
    return _gather(*_incoming_spikes(record, neurons, trials))


def _incoming_spikes(record, neurons, trials: tuple[int, int] | None = None) -> tuple:
    """:func:`_gather`'s arguments for the arrivals at `neurons` in the trials first..stop-1."""
    flat = record.flat
    first, stop = (0, record.n_trials) if trials is None else trials
    neurons = np.asarray(neurons, np.int64)
    sub_ptr, selected, target_of_syn = _incoming_synapses(flat, neurons)
    ins = slice(*np.searchsorted(record.inputs.trial, [first, stop]))
    own = slice(*np.searchsorted(record.trial, [first, stop]))
    return (np.concatenate([record.inputs.trial[ins], record.trial[own]]) - first,
            np.concatenate([record.inputs.neuron[ins], record.neuron[own]]),
            np.concatenate([record.inputs.time[ins], record.time[own]]),
            sub_ptr, selected, target_of_syn, flat.out_d, flat.out_w, float(record.duration),
            len(neurons), stop - first)


@njit(cache=True, nogil=True)
def _arrival_integrals(sp_trial, sp_neuron, sp_time, sub_ptr, sub_syn, target_of_syn, out_d, out_w, t_end,
                       n_targets, n_trials, targets, tau_m, tau_s, rate):
    """Per (trial, target) group (as :func:`_gather`'s): the integral over [0, t_end] of
    exp(-rate t) V(t) dt of the arrivals alone (V from rest, no bias). V is then a sum of PSPs, so
    the integral is a sum over the arrivals t = t_spike + d <= t_end, each on its own, unsorted:
    ``w K exp(-rate t) (E(t_end - t, rate + 1/tau_m) - E(t_end - t, rate + 1/tau_s))`` with
    K = tau_s / (tau_m - tau_s) and E(L, a) = integral_0^L exp(-a x) dx (:func:`exp_overlap`).

    Where every target has the same tau_m and tau_s and no exponential below over- or underflows,
    ``exp(-rate t) E(t_end - t, a) = (exp(-rate t) - exp(-a t_end) exp(t/tau)) / a`` (a = rate + 1/tau)
    is computed from factors of the spike (exp(-rate t_spike), exp(t_spike/tau)) and of the synapse
    (the same with d): no exponential per arrival."""
    out = np.zeros(n_trials * n_targets)
    kk = np.empty(n_targets)                # per target: K, rate + 1/tau_m, rate + 1/tau_s
    a_m = np.empty(n_targets)
    a_s = np.empty(n_targets)
    uniform = True
    for g in range(n_targets):
        tm, ts = tau_m[targets[g]], tau_s[targets[g]]
        kk[g] = ts / (tm - ts)
        a_m[g] = rate + 1.0 / tm
        a_s[g] = rate + 1.0 / ts
        uniform = uniform and tm == tau_m[targets[0]] and ts == tau_s[targets[0]]
    factored = False
    if uniform and n_targets > 0:
        tm, ts = tau_m[targets[0]], tau_s[targets[0]]
        c_m = math.exp(-a_m[0] * t_end)
        c_s = math.exp(-a_s[0] * t_end)
        factored = max(t_end / tm, t_end / ts) < 600.0 and min(c_m, c_s) > 1e-280
    if factored:
        # per synapse (position in sub_syn): exp(-rate d), exp(d/tau_m), exp(d/tau_s)
        syn = np.empty((sub_syn.shape[0], 3))
        for q in range(sub_syn.shape[0]):
            d = out_d[sub_syn[q]]
            syn[q, 0] = math.exp(-rate * d)
            syn[q, 1] = math.exp(min(d, t_end) / tm)
            syn[q, 2] = math.exp(min(d, t_end) / ts)
        w_x = kk[0] * (1.0 / a_m[0] - 1.0 / a_s[0])      # per unit w: the exp(-rate t) part, ...
        w_m = kk[0] * c_m / a_m[0]                        # ... the exp(t/tau_m) and exp(t/tau_s) parts
        w_s = kk[0] * c_s / a_s[0]
        for k in range(sp_time.shape[0]):
            n = sp_neuron[k]
            if sub_ptr[n] == sub_ptr[n + 1] or sp_time[k] > t_end:
                continue
            x_k = math.exp(-rate * sp_time[k])
            m_k = math.exp(sp_time[k] / tm)
            s_k = math.exp(sp_time[k] / ts)
            row = sp_trial[k] * n_targets
            for q in range(sub_ptr[n], sub_ptr[n + 1]):
                c = sub_syn[q]
                if sp_time[k] + out_d[c] <= t_end:
                    out[row + target_of_syn[c]] += out_w[c] * (w_x * (x_k * syn[q, 0]) - w_m * (m_k * syn[q, 1])
                                                              + w_s * (s_k * syn[q, 2]))
        return out
    for k in range(sp_time.shape[0]):
        n = sp_neuron[k]
        for q in range(sub_ptr[n], sub_ptr[n + 1]):
            c = sub_syn[q]
            t = sp_time[k] + out_d[c]
            if t <= t_end:
                g = target_of_syn[c]
                span = t_end - t
                out[sp_trial[k] * n_targets + g] += out_w[c] * kk[g] * math.exp(-rate * t) * (
                    exp_overlap(span, a_m[g], 0.0) - exp_overlap(span, a_s[g], 0.0))
    return out


@njit(cache=True, nogil=True)
def _trajectory_stats(group_ptr, group_neuron, time, weight, tau_m, tau_s, t_end, rate, bias, v_start, i_start):
    """Per group (one neuron in one trial, arrivals sorted by time, state (v_start, i_start) at t = 0):
    max of V on [0, t_end], its time, and the integral of exp(-rate t) V(t) dt over [0, t_end].
    With a bias b, u = V - b follows the bias-free dynamics."""
    n_groups = group_ptr.shape[0] - 1
    v_max = np.zeros(n_groups)
    t_max = np.zeros(n_groups)
    integral = np.zeros(n_groups)
    for g in range(n_groups):
        j = group_neuron[g]
        tm, ts = tau_m[j], tau_s[j]
        k_ratio = ts / (tm - ts)
        b = bias[j]
        v, i, t_last = v_start[g] - b, i_start[g], 0.0     # v: u = V - b
        best, best_t, acc = v, 0.0, 0.0
        for q in range(group_ptr[g], group_ptr[g + 1] + 1):
            t_next = time[q] if q < group_ptr[g + 1] else t_end
            span = t_next - t_last
            s_peak = peak_time(v, i, tm, ts)
            if 0.0 < s_peak < span:
                vp = free_voltage(v, i, tm, ts, s_peak)
                if vp > best:
                    best, best_t = vp, t_last + s_peak
            v_next = free_voltage(v, i, tm, ts, span)
            if v_next > best:
                best, best_t = v_next, t_next
            e_m = exp_overlap(span, rate + 1.0 / tm, 0.0)
            acc += math.exp(-rate * t_last) * (
                v * e_m + i * k_ratio * (e_m - exp_overlap(span, rate + 1.0 / ts, 0.0)))
            if q < group_ptr[g + 1]:
                i = i * math.exp(-span / ts) + weight[q]
                v = v_next
                t_last = t_next
        v_max[g], t_max[g], integral[g] = best + b, best_t, acc + b * exp_overlap(t_end, rate, 0.0)
    return v_max, t_max, integral


@njit(cache=True, nogil=True)
def _window_maxima(group_ptr, group_neuron, time, weight, tau_m, tau_s, starts, stops, bias, v_start, i_start):
    """Per group (one neuron in one trial, arrivals sorted by time, state (v_start, i_start) at t = 0)
    and window k: max of V on [starts[k], stops[k]] and its time. Candidates: V at both ends of the
    window, at every arrival inside it (V is continuous there) and at every interior peak between two
    arrivals. With a bias b, u = V - b follows the bias-free dynamics."""
    n_groups = group_ptr.shape[0] - 1
    n_win = starts.shape[0]
    t_end = 0.0
    for k in range(n_win):
        t_end = max(t_end, stops[k])
    v_max = np.full((n_groups, n_win), -np.inf)
    t_max = np.zeros((n_groups, n_win))
    for g in range(n_groups):
        j = group_neuron[g]
        tm, ts = tau_m[j], tau_s[j]
        b = bias[j]
        v, i, t_last = v_start[g] - b, i_start[g], 0.0     # v: u = V - b
        for q in range(group_ptr[g], group_ptr[g + 1] + 1):
            t_next = time[q] if q < group_ptr[g + 1] else t_end
            if t_next > t_end:
                t_next = t_end
            span = t_next - t_last
            s_peak = peak_time(v, i, tm, ts)
            for k in range(n_win):
                lo = max(t_last, starts[k])
                hi = min(t_next, stops[k])
                if lo > hi:
                    continue
                if lo == t_last:
                    v_lo = v
                else:
                    v_lo = free_voltage(v, i, tm, ts, lo - t_last)
                if v_lo > v_max[g, k]:
                    v_max[g, k], t_max[g, k] = v_lo, lo
                v_hi = free_voltage(v, i, tm, ts, hi - t_last)
                if v_hi > v_max[g, k]:
                    v_max[g, k], t_max[g, k] = v_hi, hi
                if s_peak > 0.0 and lo < t_last + s_peak < hi:
                    vp = free_voltage(v, i, tm, ts, s_peak)
                    if vp > v_max[g, k]:
                        v_max[g, k], t_max[g, k] = vp, t_last + s_peak
            if q < group_ptr[g + 1]:
                v = free_voltage(v, i, tm, ts, span)
                i = i * math.exp(-span / ts) + weight[q]
                t_last = t_next
            if t_last >= t_end:
                break
        for k in range(n_win):
            v_max[g, k] += b
    return v_max, t_max


def _windows(windows, duration: float) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(windows, dtype=float)
    if w.ndim != 2 or w.shape[1] != 2 or w.shape[0] < 1:
        raise ValueError(f"windows must be a sequence of (start, stop) pairs in s, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w[:, 0] < 0) or np.any(w[:, 1] < w[:, 0]) or np.any(w[:, 1] > duration):
        raise ValueError(f"windows must satisfy 0 <= start <= stop <= duration ({duration} s), got {w.tolist()}")
    return np.ascontiguousarray(w[:, 0]), np.ascontiguousarray(w[:, 1])


def window_max_voltage(record, population: str, windows) -> tuple[np.ndarray, np.ndarray]:
    """Exact maximum of a readout's V over each time window and its time (s).

    windows: a sequence of (start, stop) pairs in s with 0 <= start <= stop <= duration. Returns
    (v_max, t_max), each of shape (n_trials, n, n_windows). The readout's bias and initial state count
    (V = bias + a bias-free trajectory from V(0) - bias). Candidates are V at both ends of the window,
    at the arrivals inside it and at the peaks between arrivals, so a maximum at a window boundary is
    reported at exactly that boundary. For populations that never spike (readouts): a spiking LIF neuron
    raises ValueError (its voltage is not a linear filter of its inputs).
    """
    flat = record.flat
    off, n = flat.offsets[population], flat.sizes[population]
    if isinstance(record.network[population], SpikeSource):
        raise ValueError(f"{population!r} is a spike source; it has no voltage")
    if record.spikes(population).counts().sum():
        raise ValueError(f"{population!r} spiked; window_max_voltage needs a population that never spikes")
    starts, stops = _windows(windows, float(record.duration))
    n_trials = record.n_trials
    v_out = np.empty((n_trials, n, len(starts)))
    t_out = np.empty((n_trials, n, len(starts)))
    for first in range(0, n_trials, _TRIALS_PER_CHUNK):
        stop = min(first + _TRIALS_PER_CHUNK, n_trials)
        group_ptr, time, weight = incoming_arrivals(record, np.arange(off, off + n), (first, stop))
        group_neuron = np.tile(np.arange(off, off + n), stop - first).astype(np.int64)
        starts_state = [record.initial_state(k) for k in range(first, stop)]
        v_start = np.concatenate([v[off:off + n] for v, _ in starts_state]).astype(float)
        i_start = np.concatenate([i[off:off + n] for _, i in starts_state]).astype(float)
        v, t = _window_maxima(group_ptr, group_neuron, time, weight, flat.tau_m, flat.tau_s, starts, stops,
                              flat.bias, v_start, i_start)
        v_out[first:stop] = v.reshape(stop - first, n, len(starts))
        t_out[first:stop] = t.reshape(stop - first, n, len(starts))
    return v_out, t_out


def _stats(record, population: str, rate: float, mask=None, want_max: bool = True):
    """(v_max, t_max, integral), each (n_trials, n), NaN where mask is False or the neuron spiked
    (want_max False: v_max and t_max are not computed (0), and the integral is summed over the
    arrivals one by one, unsorted: :func:`_arrival_integrals`)."""
    flat = record.flat
    off, n = flat.offsets[population], flat.sizes[population]
    if isinstance(record.network[population], SpikeSource):
        raise ValueError(f"{population!r} is a spike source; it has no voltage")
    n_trials = record.n_trials
    silent = record.spikes(population).counts() == 0
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != (n_trials, n):
            raise ValueError(f"mask has shape {mask.shape}, expected (n_trials, n) = {(n_trials, n)}")
        silent &= mask
    out = [np.empty((n_trials, n)) for _ in range(3)]
    targets = np.arange(off, off + n)
    # bounded memory for large batches: chunks of trials, on a thread pool (the kernels release the GIL)
    chunks = [(first, min(first + _TRIALS_PER_CHUNK, n_trials)) for first in range(0, n_trials, _TRIALS_PER_CHUNK)]
    if not want_max:
        # the integral alone: V is linear in the arrivals, which need no sort (the initial state
        # and the bias add their own terms)
        out[0][:], out[1][:] = 0.0, 0.0
        tm, ts, b = flat.tau_m[off:off + n], flat.tau_s[off:off + n], flat.bias[off:off + n]
        t_end = float(record.duration)
        e_m = np.array([exp_overlap(t_end, rate + 1.0 / x, 0.0) for x in tm])
        e_s = np.array([exp_overlap(t_end, rate + 1.0 / x, 0.0) for x in ts])
        e_b = exp_overlap(t_end, rate, 0.0)
        for k in range(n_trials):
            v0, i0 = record.initial_state(k)
            out[2][k] = ((v0[off:off + n] - b) * e_m + i0[off:off + n] * (ts / (tm - ts)) * (e_m - e_s)
                         + b * e_b)

        def integrals(c):
            first, stop = chunks[c]
            return _arrival_integrals(*_incoming_spikes(record, targets, (first, stop)), targets,
                                      flat.tau_m, flat.tau_s, float(rate)).reshape(stop - first, n)

        for (first, stop), value in zip(chunks, map_trials(integrals, len(chunks))):
            out[2][first:stop] += value
    else:
        def trajectories(c):
            first, stop = chunks[c]
            group_ptr, time, weight = incoming_arrivals(record, targets, (first, stop))
            group_neuron = np.tile(targets, stop - first).astype(np.int64)
            starts = [record.initial_state(k) for k in range(first, stop)]
            v_start = np.concatenate([v[off:off + n] for v, _ in starts]).astype(float)
            i_start = np.concatenate([i[off:off + n] for _, i in starts]).astype(float)
            return _trajectory_stats(group_ptr, group_neuron, time, weight, flat.tau_m, flat.tau_s,
                                     float(record.duration), float(rate), flat.bias, v_start, i_start)

        for (first, stop), stats in zip(chunks, map_trials(trajectories, len(chunks))):
            for x, y in zip(out, stats):
                x[first:stop] = y.reshape(stop - first, n)
    for x in out:
        x[~silent] = np.nan
    return out


def max_voltage(record, population: str, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact maximum of V over [0, duration] and its time (s), each of shape (n_trials, n).

    For readouts, and for LIF neurons in trials where they do not spike (NaN
    where they spike, or where `mask` (n_trials, n) is False). V(0) (0 from rest, else
    the initial potential) counts as a candidate, so the maximum is >= V(0). A maximum at an arrival
    time (a kink, after an inhibitory arrival) is reported at exactly that time.
    """
    v_max, t_max, _ = _stats(record, population, 0.0, mask)
    return v_max, t_max


def weighted_voltage_integral(record, population: str, tau_weight: float | None = None) -> np.ndarray:
    """Score per (trial, neuron): ``integral_0^D exp(-t/tau_weight) V dt / tau_weight`` (D = duration),
    or the plain time average ``integral_0^D V dt / D`` when tau_weight is None. Shape (n_trials, n)."""
    duration = float(record.duration)
    if tau_weight is None:
        return _stats(record, population, 0.0, want_max=False)[2] / duration
    tau_weight = float(tau_weight)
    if not tau_weight > 0:
        raise ValueError(f"tau_weight must be > 0 seconds, got {tau_weight}")
    return _stats(record, population, 1.0 / tau_weight, want_max=False)[2] / tau_weight
