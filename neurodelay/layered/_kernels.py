"""Compiled per-neuron kernels of the layered engine (numba, release the GIL).

Given the spikes of the earlier layers, every neuron of a layer is independent,
so each one is handled alone, neuron by neuron:

1. **arrivals** (:func:`gather_sorted`): from the post-major synapse table
   (``in_ptr`` over postsynaptic neurons, presynaptic neuron ``in_pre``, total
   delay ``in_d``, weight ``in_w`` per synapse ``q``) and the spikes of each
   presynaptic neuron (time-sorted), the arrival times ``t_spike + d`` (the
   same floating-point sum as the event engine) are generated and sorted by a
   counting sort on time buckets followed by an insertion sort, which is
   stable: ties are broken by (time, synapse, spike), deterministically;
2. **forward scan** (:func:`scan_forward`): the arrivals in order, with the
   event engine's exact dynamics (:func:`~neurodelay.events.dynamics.state_at`,
   :func:`~neurodelay.events.dynamics.next_crossing`); the same operations on
   the same numbers as the event engine, so spikes are bit-identical. The
   exact crossing check is skipped where a bound (:func:`below_until`) shows
   that V stays below theta until the next arrival, which cannot change the
   result. :func:`scan_binned` (optional) replaces the exponentials per
   arrival by running sums of ``w exp(t/tau)`` and takes the arrivals in
   time bins (:func:`bin_arrivals`), adding most bins as a whole and sorting
   only those where V may reach theta;
3. **reverse pass** (:func:`replay_neuron`, :func:`reverse_neuron`): the
   neuron's arrivals and recorded spikes are replayed locally into a small
   event log (state just before each event), then walked backwards with the
   costate solutions of :mod:`neurodelay.events.adjoint_kernel` (see
   :mod:`neurodelay.events.adjoint` for the derivation). A LIF neuron that the
   loss reaches only through its spike times takes :func:`reverse_factored`
   instead: no exponential per arrival, and a neuron that does not spike and has only
   continuous sources (a readout of an integral loss) :func:`reverse_linear`: no replay. Gradients of the
   neuron's incoming synapses and its own parameters are written by this
   neuron alone; the time sensitivity of the presynaptic spikes is added to
   one row (its chunk) of ``g_time``, so chunks of neurons can run in parallel.

Times in seconds. Arrays are arguments and never reassigned in hot loops (see
the performance note of :mod:`neurodelay.events.kernel`).

Tried and not kept (bench/gradient.py's feedforward network, 2026-11-27): **per-bin lists instead
of the counting sort's second pass.** :func:`bin_arrivals` numbered the arrivals in generation order,
with a list per bin (head, next) in cache-resident workspace. :func:`scan_binned` collected only the
bins it sorts, and kept a segment (the number of events before) per bin. The reverse pass took each
synapse's arrivals in spike order and looked each one's segment up in that table, comparing with the
events in the bins that hold one. Nothing was kept per arrival. Spikes were bit-identical and
gradients within 2e-16. Single-thread kernel times per trial: forward 35 -> 26-28 ms, but reverse
10 -> 16-17 ms (the lookup: the arrival's bin, the table, then the coefficients, ~3 ns per arrival).
Interleaved (bench/ab_revisions.py --case feedforward; median of the per-round ratios, fastest
runs): 0.993 and 0.993 on 1 thread (16 trials, 16 rounds); 0.983 and 0.946 on 2 threads (32 trials,
32 rounds). Variants of that reverse pass, each measured at 14 ms or more:
a segment stored per arrival (15-21 ms), the bin stored per arrival, one coefficient pair per bin,
and a separate pass for the segments.

Indexing (2026-11-27): numba multiplies by a 2-d array's runtime row length at every access and tests
signed indices for negative values. The hot loops therefore take factor tables by row ((4, n)), a bin's
sums from a flat array at 4 b, unsigned loop counters, counts and packed arrivals (:func:`pack_arrival`:
(q, k) in one uint32, as the counting sort's second pass spent half its time scattering the 8 bytes of
two arrays), and the bins added whole in a loop of their own. With these, the fused feedforward pass
costs 0.81x what it did (bench/ab_revisions.py --case feedforward --trials 64 --rounds 12 --threads 2,
median of the per-round ratios), spikes and gradients bit for bit the same. Tried and not kept: a shift
by a variable in the packing (reverse pass 1.07x), a bin's count kept with its sums (no gain),
ARRIVALS_PER_BIN 3 or 6 (1.04x, 0.98x on 1 thread).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.extending import overload

from ..events.adjoint_kernel import homogeneous, particular
from ..events.dynamics import biased_crossing, free_voltage, next_crossing, peak_time, state_at, voltage_bound
from ..events.readout import exp_overlap

EV_SPIKE = -1      # ev_q code of a spike of the neuron (ev_s = the spike's index in the trial's record)
EV_REF_END = -2    # ev_q code of the end of a refractory period (ev_s = the spike that started it)


# ------------------------------------------------------------ arrivals ----

# The costate steps shared by the feedforward and the recurrent reverse passes are inlined by LLVM
# (forceinline), not by numba (inline="always"): numba's IR inlining switches SSA off for the rest of
# the caller's compilation (numba 0.68 InlineWorker sets enable_ssa=False on the caller's flags),
# which made the recurrent adjoint_group ~10 % slower. Results are bit-identical either way.
@njit(cache=True, forceinline=True)
def _spike_costate(src, pv, pv_ref, i_ref, i_at, refractory, reset, tm, n_in, g_time, sp_source,
                   sp_i_minus_theta, spike_grad):
    """At spike `src` (reverse pass): its total time sensitivity S_k (stored in spike_grad) and p_V(t_k-).

    S_k = dl/dt_k + what its arrivals downstream sent back (g_time) + the term through the reset
    (after the refractory end, else right after the spike); p_V(t_k-) = -tau_m S_k / (I - theta).
    """
    if refractory > 0.0:
        after = -pv_ref * (i_ref - reset) / tm
    else:
        after = -pv * (i_at - reset) / tm
    downstream = 0.0
    for r in range(g_time.shape[0]):
        downstream += g_time[r, n_in + src]
    total = sp_source[src] + downstream + after
    spike_grad[src] = total
    return -tm * total / sp_i_minus_theta[src]

@njit(cache=True, nogil=True)
def incoming_count(j, in_ptr, in_pre, s_start, s_end):
    """Upper bound on the arrivals at neuron j: incoming synapses times presynaptic spikes."""
    m = 0
    for q in range(in_ptr[j], in_ptr[j + 1]):
        p = in_pre[q]
        m += s_end[p] - s_start[p]
    return m


@njit(cache=True, nogil=True)
def arrival_bounds(stops, j0, in_ptr, in_pre, s_start, s_end):
    """Cumulative :func:`incoming_count` of neurons j0.. at each of `stops` (ascending neuron
    indices): entry c counts the arrivals at neurons j0..stops[c]-1 (upper bounds)."""
    out = np.zeros(stops.shape[0], np.int64)
    m = 0
    j = j0
    for c in range(stops.shape[0]):
        while j < stops[c]:
            m += incoming_count(j, in_ptr, in_pre, s_start, s_end)
            j += 1
        out[c] = m
    return out


@njit(cache=True, nogil=True)
def gather_unsorted(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, s_id, t_end, arr_t, arr_q, arr_s):
    """The arrivals of :func:`gather_sorted` in generation order (synapse q, then spike), unsorted:
    for reverse passes that take each arrival on its own (:func:`reverse_linear`)."""
    m = 0
    for q in range(in_ptr[j], in_ptr[j + 1]):
        p = in_pre[q]
        d = in_d[q]
        for k in range(s_start[p], s_end[p]):
            t = s_time[k] + d
            if t > t_end:
                break
            arr_t[m] = t
            arr_q[m] = q
            arr_s[m] = s_id[k]
            m += 1
    return m


@njit(cache=True, nogil=True)
def _bucket_starts(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, counts):
    """The count pass of a counting sort of neuron j's arrivals t_spike + d <= t_end into nb time buckets
    over [0, t_end] (bucket int(t nb / t_end), at most nb - 1): ``counts[b]`` = the start of bucket b
    (b <= nb; counts: at least nb + 1 entries); returns the number of arrivals. The bucket is monotone in
    t, so every arrival of a bucket comes at or after every arrival of the buckets before it, and equal
    times share a bucket."""
    scale = nb / t_end
    for b in range(nb + 1):
        counts[b] = 0
    m = 0
    for q in range(in_ptr[j], in_ptr[j + 1]):
        p = in_pre[q]
        d = in_d[q]
        for k in range(s_start[p], s_end[p]):
            t = s_time[k] + d
            if t > t_end:
                break                   # p's spikes are sorted: the later ones arrive later
            counts[min(max(int(t * scale), 0), nb - 1) + 1] += 1
            m += 1
    for b in range(nb):
        counts[b + 1] += counts[b]
    return m


@njit(cache=True, nogil=True)
def bucket_arrivals(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, s_id, t_end, want_src, nb,
                    counts, arr_t, arr_q, arr_s):
    """Arrivals t_spike + d <= t_end at neuron j in nb time buckets (:func:`_bucket_starts`); returns
    their number m.

    arr_* receive the arrivals bucket after bucket, in generation order (synapse q ascending, then
    spike) within a bucket; afterwards ``counts[b]`` is the end of bucket b in arr_* (b < nb).
    s_start/s_end: each neuron's spikes in s_time (sorted by time), ids s_id (copied to arr_s when
    want_src; cast to arr_s's type). counts: at least nb + 1 entries; arr_*: at least
    :func:`incoming_count` entries.
    """
    m = _bucket_starts(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, counts)
    if m == 0:
        return 0
    scale = nb / t_end
    for q in range(in_ptr[j], in_ptr[j + 1]):
        p = in_pre[q]
        d = in_d[q]
        for k in range(s_start[p], s_end[p]):
            t = s_time[k] + d
            if t > t_end:
                break
            b = min(max(int(t * scale), 0), nb - 1)
            pos = counts[b]
            counts[b] = pos + 1
            arr_t[pos] = t
            arr_q[pos] = q
            if want_src:
                arr_s[pos] = s_id[k]
    return m


#: bits of k in an arrival packed by :func:`pack_arrival`, by the dtype of the packed arrivals (the other
#: bits hold q - q0): fixed per dtype, so that the compiled kernels shift by constants (a shift by a
#: variable made the reverse pass 1.07x as costly)
K_BITS = {np.dtype(np.uint32): 18, np.dtype(np.uint64): 32}


def k_bits(arr_qk):
    """:data:`K_BITS` of the packed arrivals `arr_qk` (a constant in compiled code)."""
    return K_BITS[arr_qk.dtype]


@overload(k_bits, jit_options={"cache": True, "forceinline": True})
def _k_bits(arr_qk):
    bits = K_BITS[np.dtype(str(arr_qk.dtype))]
    return lambda arr_qk: bits


@njit(cache=True, forceinline=True)
def pack_arrival(q, k, q0, bits):
    """An arrival of synapse q (one of a neuron's, from q0 on) from the spike at position k of s_time as one
    integer: (q - q0) << bits | k (bits: :func:`k_bits` of the array that receives it)."""
    return ((q - q0) << bits) | k


@njit(cache=True, forceinline=True)
def unpack_arrival(x, q0, bits):
    """(q, k) of an arrival packed by :func:`pack_arrival`, unsigned (indexing with them then needs no
    test for negative indices, which made the reverse pass 1.14-1.29x as costly)."""
    v = np.uint64(x)
    s = np.uint64(bits)
    return np.uint64(q0) + (v >> s), v & ((np.uint64(1) << s) - np.uint64(1))


@njit(cache=True)
def packing_fits(fan_in, n_sources, bits, total_bits):
    """True where the arrivals of a layer whose neurons have at most `fan_in` synapses and whose sources
    (s_time) have `n_sources` entries fit integers of `total_bits` bits with `bits` of them for k
    (:func:`pack_arrival`); also called from compiled code."""
    return n_sources <= 2 ** bits and fan_in <= 2 ** (total_bits - bits)


def packing(fan_in: int, n_sources: int):
    """The dtype of the packed arrivals (:func:`pack_arrival`) of a layer whose neurons have at most
    `fan_in` synapses and whose sources (s_time) have `n_sources` entries: uint32 where k and q - q0 fit
    in its fields (:data:`K_BITS`, :func:`packing_fits`), else uint64."""
    for dtype in (np.uint32, np.uint64):
        if packing_fits(fan_in, n_sources, K_BITS[np.dtype(dtype)], 8 * np.dtype(dtype).itemsize):
            return dtype
    raise ValueError(f"too many arrivals to index: fan-in {fan_in}, {n_sources} spikes in a trial")


@njit(cache=True, nogil=True)
def bin_arrivals(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, counts, arr_qk,
                 in_w, syn_f, spk_f, sums, gen):
    """:func:`bucket_arrivals` for :func:`scan_binned` without the times, each arrival packed into one
    integer of arr_qk (:func:`pack_arrival`: its synapse q and the spike's position k in s_time;
    :func:`scan_binned` computes the times of the bins it sorts), also summing per bin b, in
    generation order: ``sums[4 b: 4 b + 3]`` = (sum of w exp(t/tau_s), sum of w exp(t/tau_m), sum of the
    positive w) over its arrivals, with the factors of :func:`scan_binned`. sums: 4 nb entries (a bin's
    sums in one cache line, at an address without a multiplication by a runtime row length).

    One pass over the arrivals computes their times, bins, counts and sums (:func:`count_bins`), writing
    each arrival's bin (in generation order) and each synapse's number of arrivals to `gen` (workspace:
    at least the neuron's fan-in plus :func:`incoming_count` entries); a second pass places them bin by
    bin, without computing a time again (:func:`place_packed`). Packing halves what that second pass
    scatters (uint32 where q - in_ptr[j] and k fit in 32 bits together), which was half its cost."""
    m = count_bins(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, counts, gen, in_w, syn_f, spk_f, sums)
    if m == 0:
        return 0
    place_packed(j, in_ptr, in_pre, s_start, nb, counts, gen, arr_qk)
    return m


@njit(cache=True, nogil=True)
def count_bins(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, counts, gen, in_w, syn_f, spk_f, sums):
    """The first pass of :func:`bin_arrivals` over neuron j's arrivals t_spike + d <= t_end, in generation
    order (synapse q ascending, then spike): the bin of each (int(t nb / t_end), at most nb - 1) to
    gen[fan_in:], the number of each synapse's to gen[:fan_in], the arrivals of bin b to counts[b + 1]
    (counts[0] = 0), and, unless sums is None (then in_w, syn_f and spk_f are not read either), the
    bins' sums of :func:`bin_arrivals`. Returns the number of arrivals."""
    for b in range(nb + 1):
        counts[b] = 0
    if sums is not None:
        for b in range(nb):
            sums[4 * b] = 0.0
            sums[4 * b + 1] = 0.0
            sums[4 * b + 2] = 0.0
    q0, q1 = in_ptr[j], in_ptr[j + 1]
    e0 = q1 - q0                      # gen[:e0]: arrivals per synapse; gen[e0:]: bin per arrival
    e = e0
    scale = nb / t_end
    for q in range(q0, q1):
        p = in_pre[q]
        d = in_d[q]
        if sums is not None:
            w = in_w[q]
            w_pos = max(w, 0.0)
            syn_s = syn_f[0, q]
            syn_m = syn_f[1, q]
        e_q = e
        for k in range(np.uint64(s_start[p]), np.uint64(s_end[p])):     # (unsigned: no negative-index test)
            t = s_time[k] + d
            if t > t_end:
                break                   # p's spikes are sorted: the later ones arrive later
            b = min(max(int(t * scale), 0), nb - 1)
            gen[e] = b
            e += 1
            counts[b + 1] += 1
            if sums is not None:
                sums[4 * b] += w * (spk_f[0, k] * syn_s)
                sums[4 * b + 1] += w * (spk_f[1, k] * syn_m)
                sums[4 * b + 2] += w_pos
        gen[q - q0] = e - e_q
    return e - e0


@njit(cache=True, nogil=True)
def place_packed(j, in_ptr, in_pre, s_start, nb, counts, gen, arr_qk):
    """The second pass of :func:`bin_arrivals`, after :func:`count_bins`: the bins' starts (counts, as
    a prefix sum; afterwards counts[b] is the end of bin b), then neuron j's arrivals placed bin after
    bin, in generation order within a bin, packed (:func:`pack_arrival`, with :func:`k_bits` of arr_qk)."""
    for b in range(nb):
        counts[b + 1] += counts[b]
    q0, q1 = in_ptr[j], in_ptr[j + 1]
    e = q1 - q0
    bits = k_bits(arr_qk)
    for q in range(q0, q1):
        k0 = s_start[in_pre[q]]
        for k in range(k0, k0 + gen[q - q0]):
            b = gen[e]
            e += 1
            pos = counts[b]
            counts[b] = pos + 1
            arr_qk[pos] = pack_arrival(q, k, q0, bits)


@njit(cache=True, nogil=True)
def sort_range(lo, hi, arr_t, arr_q, arr_s, want_src):
    """Stable insertion sort of arr_*[lo:hi] by time (arr_s moved along when want_src): cheap on arrivals in
    time buckets, where items move only within their bucket."""
    for a in range(lo + 1, hi):
        t = arr_t[a]
        if arr_t[a - 1] <= t:
            continue
        q = arr_q[a]
        s = arr_s[a] if want_src else 0
        b = a
        while b > lo and arr_t[b - 1] > t:
            arr_t[b] = arr_t[b - 1]
            arr_q[b] = arr_q[b - 1]
            if want_src:
                arr_s[b] = arr_s[b - 1]
            b -= 1
        arr_t[b] = t
        arr_q[b] = q
        if want_src:
            arr_s[b] = s


@njit(cache=True, nogil=True)
def gather_sorted(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, s_id, t_end, want_src,
                  counts, arr_t, arr_q, arr_s, per_arrival=1):
    """Arrivals t_spike + d <= t_end at neuron j, sorted by (time, synapse q, spike); returns their number.

    s_start/s_end: each neuron's spikes in s_time (sorted by time), ids s_id (copied
    to arr_s when want_src; cast to arr_s's type). arr_*: at least :func:`incoming_count` entries;
    counts (workspace): at least per_arrival :func:`incoming_count` + 1. per_arrival: time buckets
    per arrival (the order does not depend on it; more buckets, less insertion sort).
    """
    # a counting sort on time buckets (:func:`bucket_arrivals`, generation order, q ascending, within
    # a bucket), then a stable insertion sort, which moves items only within their bucket
    bound = incoming_count(j, in_ptr, in_pre, s_start, s_end)
    if bound == 0:
        return 0                        # (counts may then have a single entry)
    m = bucket_arrivals(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, s_id, t_end, want_src, per_arrival * bound,
                        counts, arr_t, arr_q, arr_s)
    sort_range(0, m, arr_t, arr_q, arr_s, want_src)
    return m


# -------------------------------------------------------------- forward ----
@njit(cache=True, inline="always")
def free_rise(v0, i0):
    """tau_m times a bound on the rate of rise of V in free evolution from (v0, i0), at any time:
    V(s) <= v0 + s free_rise(v0, i0) / tau_m.

    With i0 >= 0, I stays >= 0; while I > V, tau_m^2 V'' = -tau_m I / tau_s - (I - V) <= 0, and once V
    reaches I it stays above it and falls (d(V - I)/dt = I / tau_s >= 0 there): V lies below its
    tangent at 0, of slope (i0 - v0) / tau_m, or below v0 where that slope is negative. With i0 < 0, I
    stays between i0 and 0 and V above min(v0, i0, 0), so tau_m dV/dt = I - V <= -min(v0, i0, 0).
    """
    if i0 >= 0.0:
        return max(i0 - v0, 0.0)
    return -min(v0, i0, 0.0)


@njit(cache=True, inline="always")
def below_until(v0, i0, tm, ts, theta, span):
    """True if V stays below theta for `span` seconds of free evolution from (v0, i0) (a sufficient test):
    V(s) <= v0 + s :func:`free_rise` / tau_m, and, with no input ahead,
    :func:`~neurodelay.events.dynamics.voltage_bound` < theta.
    """
    if v0 >= theta:
        return False
    return v0 + span * free_rise(v0, i0) / tm < theta or voltage_bound(v0, i0, tm, ts) < theta


@njit(cache=True, nogil=True)
def scan_forward(m, arr_t, arr_q, in_w, tm, ts, theta, reset, refractory, closed, spiking, t_end,
                 sample_times, col, samples, out_t, out_g, u_start, i_start, v_off):
    """Exact forward scan of one neuron over its sorted arrivals on [0, t_end].

    With a bias b the scan runs on u = V - b (theta and reset given as theta - b and
    reset - b, the start as u_start = V(0) - b, i_start = I(0)); v_off = b is added to the
    sampled voltages, and I - (theta - b) recorded at a spike is tau_m dV/dt there.

    Writes its spikes (time, I - theta) to out_t/out_g and returns their number, or
    -1 if out_t is too small (call again with larger arrays). V at sample_times
    goes to samples[:, col] when col >= 0. Same operations, in the same order, as
    the event engine applies to this neuron: a spike due at the time of an arrival
    comes first; a sample at time t sees every event at times <= t.
    """
    v = u_start
    cur = i_start
    t_last = 0.0
    ref_end = -np.inf
    pred = np.inf
    if spiking and (u_start != 0.0 or i_start != 0.0 or v_off != 0.0):
        pred = biased_crossing(v, cur, tm, ts, theta, closed, 0.0)
    n_out = 0
    cap = out_t.shape[0]
    sp = 0
    n_samples = sample_times.shape[0] if col >= 0 else 0
    a = 0
    while True:
        t_a = arr_t[a] if a < m else np.inf
        is_spike = pred <= t_a
        t_now = pred if is_spike else t_a
        if t_now > t_end:
            break
        while sp < n_samples and sample_times[sp] < t_now:
            samples[sp, col] = state_at(v, cur, t_last, ref_end, reset, tm, ts, sample_times[sp])[0] + v_off
            sp += 1
        if is_spike:
            if n_out == cap:
                return -1
            _, cur = state_at(v, cur, t_last, ref_end, reset, tm, ts, t_now)
            t_last = t_now
            out_t[n_out] = t_now
            out_g[n_out] = cur - theta
            n_out += 1
            v = reset
            ref_end = t_now + refractory
        else:
            v, cur = state_at(v, cur, t_last, ref_end, reset, tm, ts, t_now)
            t_last = t_now
            cur += in_w[arr_q[a]]
            a += 1
            if not spiking:
                continue
        if ref_end > t_last:
            t0, v0 = ref_end, reset
            i0 = state_at(v, cur, t_last, ref_end, reset, tm, ts, t0)[1]
        else:
            t0, v0, i0 = t_last, v, cur
            t_next = min(arr_t[a] if a < m else np.inf, t_end)
            if below_until(v0, i0, tm, ts, theta, t_next - t0):
                pred = np.inf            # the engine's prediction would lie after the next event
                continue
        pred = t0 + biased_crossing(v0, i0, tm, ts, theta, closed, 0.0)
    while sp < n_samples and sample_times[sp] <= t_end:
        samples[sp, col] = state_at(v, cur, t_last, ref_end, reset, tm, ts, sample_times[sp])[0] + v_off
        sp += 1
    return n_out


@njit(cache=True, nogil=True)
def _append_spikes(res_t, res_g, total, out_t, out_g, ns):
    """res_t, res_g (filled up to total) with out_t[:ns], out_g[:ns] appended: grown (doubled at
    least) when too short; returns the arrays, new or the same."""
    if total + ns > res_t.shape[0]:
        new_t = np.empty(max(2 * res_t.shape[0], total + ns))
        new_g = np.empty(new_t.shape[0])
        new_t[:total] = res_t[:total]
        new_g[:total] = res_g[:total]
        res_t, res_g = new_t, new_g
    res_t[total: total + ns] = out_t[:ns]
    res_g[total: total + ns] = out_g[:ns]
    return res_t, res_g


@njit(cache=True, nogil=True)
def forward_range(j0, j1, kind, tau_m, tau_s, theta, reset, refractory, closed, in_ptr, in_pre, in_d, in_w,
                  s_start, s_end, s_time, t_end, sample_times, col_of, samples, max_spikes,
                  factored, syn_f, spk_f, u_init, i_init, v_off):
    """Forward scans of neurons j0..j1-1 (one layer) given the spikes of the earlier layers.

    theta and reset are in bias-shifted form (theta - b, reset - b), u_init = V(0) - b,
    i_init = I(0) and v_off = b per neuron (see :func:`scan_forward`; factored scans only
    for neurons without bias that start at rest).

    factored: use :func:`scan_binned` (a LIF layer with one tau_m and one tau_s whose
    factors stay finite, no sampled voltage) with the factors per synapse q (syn_f) and per
    entry of s_time (spk_f), as :func:`forward_keep_range` does, so that both give the same spikes.

    Returns (count per neuron, spike times, I - theta), the spikes grouped by neuron
    in order and sorted by time within a neuron; stops early (counts of the rest 0)
    once more than max_spikes spikes were emitted.
    """
    mmax = 0
    bound = 0
    for j in range(j0, j1):
        c = incoming_count(j, in_ptr, in_pre, s_start, s_end)
        bound += c
        mmax = max(mmax, c)
    nb, bnd, sums = chunk_bins(j0, j1, bound, t_end, tau_m, tau_s, factored)
    counts = np.empty(max(mmax, nb) + 2, np.int64)
    gen = _bin_workspace(j0, j1, in_ptr, mmax, factored)
    arr_t = np.empty(mmax)
    arr_q = np.empty(0 if factored else mmax, np.int64)
    arr_qk = np.empty(mmax if factored else 0, np.uint64)     # (pack_arrival)
    no_id = np.empty(0, np.int64)        # (the exact path gathers no source ids)
    n_per = np.zeros(j1 - j0, np.int64)
    res_t = np.empty(64)
    res_g = np.empty(64)
    out_t = np.empty(16)
    out_g = np.empty(16)
    ev = _event_log(2 * out_t.shape[0] if factored else 0)
    total = 0
    for j in range(j0, j1):
        if not factored:
            m = gather_sorted(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, no_id, t_end, False,
                              counts, arr_t, arr_q, no_id)
        while True:
            if factored:
                ns = _binned_scan(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, bnd, sums, counts,
                                  arr_t, arr_qk, in_w, syn_f, spk_f, tau_m, tau_s, theta, reset, refractory,
                                  closed, out_t, out_g, ev, gen)[0]
            else:
                ns = scan_forward(m, arr_t, arr_q, in_w, tau_m[j], tau_s[j], theta[j], reset[j], refractory[j],
                                  closed[j], kind[j] == 1, t_end, sample_times, col_of[j], samples, out_t, out_g,
                                  u_init[j], i_init[j], v_off[j])
            if ns >= 0:
                break
            out_t = np.empty(2 * out_t.shape[0])
            out_g = np.empty(2 * out_g.shape[0])
            if factored:
                ev = _event_log(2 * out_t.shape[0])
        res_t, res_g = _append_spikes(res_t, res_g, total, out_t, out_g, ns)
        total += ns
        n_per[j - j0] = ns
        if total > max_spikes:
            break
    return n_per, res_t[:total].copy(), res_g[:total].copy()


@njit(cache=True, nogil=True)
def chunk_bins(j0, j1, total, t_end, tau_m, tau_s, factored):
    """The time bins of :func:`scan_binned` for neurons j0..j1-1 (one tau_m, tau_s; `total`: the sum of
    their :func:`incoming_count`): (nb, boundaries (:func:`bin_bounds`), sums workspace (4 nb)), nb such
    that a neuron has :data:`ARRIVALS_PER_BIN` arrivals per bin on average; without `factored` no bins
    (nb 0)."""
    if not factored or j1 <= j0:
        return 0, np.empty((5, 0)), np.empty(0)
    nb = total // ((j1 - j0) * ARRIVALS_PER_BIN) + 1
    return nb, bin_bounds(nb, t_end, tau_m[j0], tau_s[j0]), np.empty(4 * nb)


@njit(cache=True, nogil=True)
def _bin_workspace(j0, j1, in_ptr, mmax, factored):
    """The workspace of :func:`bin_arrivals` for neurons j0..j1-1 (mmax: the most arrivals of one);
    unsigned, as its counts are, so that indexing with their entries needs no negative-index test."""
    fan_in = 0
    if factored:
        for j in range(j0, j1):
            fan_in = max(fan_in, in_ptr[j + 1] - in_ptr[j])
    return np.empty(fan_in + mmax if factored else 0, np.uint32)


@njit(cache=True, nogil=True)
def _binned_scan(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, bnd, sums, counts, arr_t, arr_qk, in_w,
                 syn_f, spk_f, tau_m, tau_s, theta, reset, refractory, closed, out_t, out_g, ev, gen):
    """Neuron j's arrivals in the nb bins of :func:`chunk_bins` (:func:`bin_arrivals`; counts: at least
    nb + 1 entries) and its :func:`scan_binned` (logging into the arrays of ev): (number of spikes or -1
    if out_t is too small, logged events, worst, arrivals). Bins afresh on every call, so a call again
    after -1 sees the same arrival order."""
    m = bin_arrivals(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, counts, arr_qk, in_w, syn_f, spk_f,
                     sums, gen)
    ns, ne, worst = scan_binned(m, nb, counts, sums, bnd, s_time, in_d, arr_t, arr_qk, in_ptr[j], in_w, syn_f,
                                spk_f, tau_m[j], tau_s[j], theta[j], reset[j], refractory[j], closed[j], t_end, out_t,
                                out_g, ev[0], ev[1], ev[2], ev[3], ev[4])
    return ns, ne, worst, m


# -------------------------------------------------------------- reverse ----
@njit(cache=True, nogil=True)
def replay_neuron(m, arr_t, arr_q, arr_s, in_w, sp_time, sp_k, tm, ts, theta, reset, refractory, t_end,
                  ev_t, ev_q, ev_s, ev_v, ev_i):
    """Forward replay of one neuron: its sorted arrivals and its recorded spikes (times sp_time,
    record indices sp_k), in time order (a spike before an arrival at the same time), into an
    event log (time, ev_q: synapse or EV_SPIKE / EV_REF_END, ev_s: source spike id or record
    index, state (V, I) just before the event). Returns (number of events, max |V - theta| at
    the recorded spikes). The log needs m + 2 len(sp_time) entries."""
    n_sp = sp_time.shape[0]
    v = 0.0
    cur = 0.0
    t_last = 0.0
    ref_end = -np.inf
    ref_spike = -1
    worst = 0.0
    e = 0
    a = 0
    p = 0
    while True:
        t_a = arr_t[a] if a < m else np.inf
        t_p = sp_time[p] if p < n_sp else np.inf
        t_now = min(t_a, t_p)
        if t_now > t_end:
            break
        if ref_spike >= 0 and t_now > ref_end:
            _, i_r = state_at(v, cur, t_last, ref_end, reset, tm, ts, ref_end)
            ev_t[e], ev_q[e], ev_s[e], ev_v[e], ev_i[e] = ref_end, EV_REF_END, ref_spike, reset, i_r
            e += 1
            v, cur, t_last = reset, i_r, ref_end
            ref_spike = -1
        vb, ib = state_at(v, cur, t_last, ref_end, reset, tm, ts, t_now)
        if t_p <= t_a:
            ev_t[e], ev_q[e], ev_s[e], ev_v[e], ev_i[e] = t_p, EV_SPIKE, sp_k[p], vb, ib
            e += 1
            worst = max(worst, abs(vb - theta))
            v, cur, t_last = reset, ib, t_p
            ref_end = t_p + refractory
            ref_spike = sp_k[p] if refractory > 0.0 else -1
            p += 1
        else:
            q = arr_q[a]
            ev_t[e], ev_q[e], ev_s[e], ev_v[e], ev_i[e] = t_a, q, arr_s[a], vb, ib
            e += 1
            v, cur, t_last = vb, ib + in_w[q], t_a
            a += 1
    if ref_spike >= 0 and ref_end <= t_end:
        _, i_r = state_at(v, cur, t_last, ref_end, reset, tm, ts, ref_end)
        ev_t[e], ev_q[e], ev_s[e], ev_v[e], ev_i[e] = ref_end, EV_REF_END, ref_spike, reset, i_r
        e += 1
    return e, worst


@njit(cache=True, nogil=True, forceinline=True)
def advance_costate(t, t_hi, v_after, i_after, pv, pi, k, clamped, ps_lo, ps_time, ps_value, cs_lo, cs_hi,
                    cs_coef, cs_rate, tm, ts, want_tau, g_tm, g_ts):
    """Carries one neuron's costate (pv, pi at t_hi) back to its event at t (state v_after, i_after
    just after it): through its point sources ps_time[k] > t (k counts down from the latest one not
    yet passed, down to ps_lo; passed over while clamped) and its continuous sources cs_lo..cs_hi-1.

    Returns (p_V, p_I, k, g_tm, g_ts): the costate just after the event, the first point source not
    passed, and g_tm, g_ts (dL/dtau_m, dL/dtau_s so far) with this stretch's terms added in order.
    The reverse passes of :func:`reverse_neuron` and of a recurrent group share it.
    """
    while True:
        t_lo = t
        has_source = k >= ps_lo and ps_time[k] > t
        if has_source:
            if clamped:
                k -= 1
                continue
            t_lo = ps_time[k]
        s = t_lo - t
        if s > 0.0:
            v0 = free_voltage(v_after, i_after, tm, ts, s)
            i0 = i_after * math.exp(-s / ts)
        else:
            v0, i0 = v_after, i_after
        length = t_hi - t_lo
        sum_a = sum_b = end_a = end_b = 0.0
        for r in range(cs_lo, cs_hi):
            alpha, beta, alpha_end, beta_end, d_tm, d_ts = particular(
                cs_coef[r], cs_rate[r], t_lo, length, v0, i0, tm, ts, want_tau)
            sum_a += alpha
            sum_b += beta
            end_a += alpha_end
            end_b += beta_end
            g_tm += d_tm
            g_ts += d_ts
        pv, pi, d_tm, d_ts = homogeneous(length, v0, i0, pv - end_a, pi - end_b, clamped, tm, ts, want_tau)
        pv += sum_a
        pi += sum_b
        g_tm += d_tm
        g_ts += d_ts
        if not has_source:
            break
        pv += ps_value[k]
        t_hi = t_lo
        k -= 1
    return pv, pi, k, g_tm, g_ts


@njit(cache=True, nogil=True, forceinline=True)
def arrival_costate(q, src, t, v_at, i_at, pv, pi, k, clamped, ps_lo, ps_time, ps_value, in_w, tm, ts,
                    g_w, g_d, g_time, row):
    """At an arrival through synapse q from source id src at t (V, I before it: v_at, i_at; costate
    pv, pi just after it; k as returned by :func:`advance_costate`): adds dL/dw to g_w[q] and the
    arrival's dL/dt to g_d[q] and g_time[row, src]."""
    g_w[q] += pi
    dl_dt = in_w[q] * (pi / ts - pv / tm)
    r = k
    while r >= ps_lo and ps_time[r] == t:      # a maximum of V at this kink moves with it
        if not clamped:
            dl_dt += ps_value[r] * (i_at - v_at) / tm
        r -= 1
    g_d[q] += dl_dt
    g_time[row, src] += dl_dt


@njit(cache=True, nogil=True)
def reverse_neuron(n_ev, ev_t, ev_q, ev_s, ev_v, ev_i, in_w, tm, ts, reset, refractory, t_end, clamped,
                   sp_i_minus_theta, sp_source, n_in, g_time, row,
                   ps_lo, ps_hi, ps_time, ps_value, cs_lo, cs_hi, cs_coef, cs_rate, want_tau,
                   g_w, g_d, spike_grad):
    """Reverse pass of one neuron over its event log (:func:`replay_neuron`).

    clamped: the neuron's last refractory period lasts beyond t_end. Point sources
    (ps_time sorted ascending, dL/dV jumps) in ps_lo..ps_hi-1, continuous sources
    coef exp(-rate t) in cs_lo..cs_hi-1. Adds dL/dw and dL/dd of the incoming synapses
    into g_w, g_d (index q), the arrivals' dL/dt to g_time[row, source id]; the total
    dL/dt of each of the neuron's spikes (its own source, the later layers' arrivals
    summed over the rows of g_time, and the reset) goes to spike_grad. Returns
    (dL/dtau_m, dL/dtau_s, dL/dtheta) of the neuron. The same steps as
    :func:`neurodelay.events.adjoint_kernel.reverse_trial` restricted to one neuron.
    """
    p_v = 0.0
    p_i = 0.0
    t_at = t_end
    pv_ref = 0.0
    i_ref = 0.0
    g_tm = 0.0
    g_ts = 0.0
    g_th = 0.0
    k = ps_hi - 1
    for e in range(n_ev - 1, -1, -1):
        c = ev_q[e]
        t = ev_t[e]
        if c >= 0:
            v_after, i_after = ev_v[e], ev_i[e] + in_w[c]
        elif c == EV_REF_END:
            v_after, i_after = reset, ev_i[e]
            clamped = False
        else:
            v_after, i_after = reset, ev_i[e]
        pv, pi, k, g_tm, g_ts = advance_costate(t, t_at, v_after, i_after, p_v, p_i, k, clamped, ps_lo, ps_time,
                                                ps_value, cs_lo, cs_hi, cs_coef, cs_rate, tm, ts, want_tau,
                                                g_tm, g_ts)
        t_at = t
        # ---- apply the event
        if c >= 0:
            arrival_costate(c, ev_s[e], t, ev_v[e], ev_i[e], pv, pi, k, clamped, ps_lo, ps_time, ps_value, in_w,
                            tm, ts, g_w, g_d, g_time, row)
        elif c == EV_REF_END:
            pv_ref = pv
            i_ref = ev_i[e]
            pv = 0.0
            clamped = True
        else:
            pv = _spike_costate(ev_s[e], pv, pv_ref, i_ref, ev_i[e], refractory, reset, tm, n_in, g_time,
                                sp_source, sp_i_minus_theta, spike_grad)
            if refractory > 0.0:
                pv_ref = 0.0
            g_th -= pv
            clamped = False
        p_v, p_i = pv, pi
    return g_tm, g_ts, g_th


@njit(cache=True, nogil=True)
def factored_log(m, arr_t, arr_q, arr_s, in_w, dm, ds, em, es, sp_time, sp_k, tm, ts, theta, reset, refractory,
                 t_end, ev_t, ev_c, ev_s, ev_i, ev_pos):
    """The forward half of :func:`reverse_factored`: running sums of ``w exp(t/tau)`` over the neuron's
    sorted arrivals give the state at its recorded spikes (times sp_time, record indices sp_k) and ends
    of refractoriness, in the order of :func:`replay_neuron`, logged in ev_* (time, EV_SPIKE or
    EV_REF_END, record index of the spike (that started it), I there, number of arrivals before it;
    2 len(sp_time) entries at most). Returns (logged events, arrivals passed, max |V - theta| at the
    recorded spikes)."""
    kk = ts / (tm - ts)
    n_sp = sp_time.shape[0]
    c_s = 0.0
    b_m = 0.0
    ref_end = -np.inf
    ref_spike = -1
    worst = 0.0
    ne = 0
    a = 0
    p = 0
    while True:
        t_a = arr_t[a] if a < m else np.inf
        t_p = sp_time[p] if p < n_sp else np.inf
        t_now = min(t_a, t_p)
        if t_now > t_end:
            break
        if ref_spike >= 0 and t_now > ref_end:
            i_r = c_s * math.exp(-ref_end / ts)
            ev_t[ne], ev_c[ne], ev_s[ne], ev_i[ne], ev_pos[ne] = ref_end, EV_REF_END, ref_spike, i_r, a
            ne += 1
            b_m = (reset + kk * i_r) * math.exp(ref_end / tm)
            ref_spike = -1
        if t_p <= t_a:
            i_b = c_s * math.exp(-t_p / ts)
            v_b = reset if ref_end >= t_p else b_m * math.exp(-t_p / tm) - kk * i_b
            worst = max(worst, abs(v_b - theta))
            ev_t[ne], ev_c[ne], ev_s[ne], ev_i[ne], ev_pos[ne] = t_p, EV_SPIKE, sp_k[p], i_b, a
            ne += 1
            ref_end = t_p + refractory
            if refractory > 0.0:
                ref_spike = sp_k[p]
            else:
                b_m = (reset + kk * i_b) * math.exp(t_p / tm)
            p += 1
        else:
            q = arr_q[a]
            k = arr_s[a]
            w = in_w[q]
            c_s += w * (es[k] * ds[q])
            if ref_spike < 0:
                b_m += kk * w * (em[k] * dm[q])
            a += 1
    if ref_spike >= 0 and ref_end <= t_end:
        ev_t[ne], ev_c[ne], ev_s[ne], ev_i[ne], ev_pos[ne] = (ref_end, EV_REF_END, ref_spike,
                                                              c_s * math.exp(-ref_end / ts), a)
        ne += 1
    return ne, a, worst


@njit(cache=True, forceinline=True)
def factored_event(t, code, src, i_at, coef_m, coef_s, pv_ref, i_ref, kk, tm, ts, reset, refractory, n_in, g_time,
                   sp_source, sp_i_minus_theta, spike_grad):
    """A spike (code EV_SPIKE, record index src) or an end of refractoriness (EV_REF_END) at t in the
    factored reverse pass (:func:`reverse_factored`; I there: i_at): the costate's coefficients
    (coef_m, coef_s) before it from those after it. Returns (coef_m, coef_s, pv_ref, i_ref, dL/dtheta
    of this event)."""
    f_m = math.exp(t / tm)
    f_s = math.exp(t / ts)
    pv = coef_m * f_m
    pi = coef_s * f_s + kk * pv
    d_th = 0.0
    if code == EV_REF_END:
        pv_ref = pv
        i_ref = i_at
        pv = 0.0
    else:
        pv = _spike_costate(src, pv, pv_ref, i_ref, i_at, refractory, reset, tm, n_in, g_time, sp_source,
                            sp_i_minus_theta, spike_grad)
        if refractory > 0.0:
            pv_ref = 0.0
        d_th = -pv
    return pv / f_m, (pi - kk * pv) / f_s, pv_ref, i_ref, d_th


@njit(cache=True, nogil=True)
def reverse_factored(m, arr_t, arr_q, arr_s, in_w, dm, ds, em, es, sp_time, sp_k, tm, ts, theta, reset,
                     refractory, t_end, sp_i_minus_theta, sp_source, n_in, g_time, row, g_w, g_d, spike_grad,
                     ev_t, ev_c, ev_s, ev_i, ev_pos):
    """Reverse pass of a LIF neuron whose loss reaches it only through its spike times, without an
    exponential per arrival; returns (dL/dtheta, max |V - theta| at its recorded spikes).

    Between the neuron's spikes (and ends of refractoriness) the costate of
    :func:`reverse_neuron` is ``p_V = a F_m(t)``, ``p_I = b F_s(t) + K a F_m(t)`` with
    F(t) = exp(t/tau), K = tau_s / (tau_m - tau_s) and a, b constant (``a = 0``
    inside a refractory clamp). At an arrival F is the product of the spike factor
    (em, es by source id arr_s) and the synapse factor (dm, ds by q), so dL/dw = p_I
    and dL/dt_a = w (p_I/tau_s - p_V/tau_m) cost a few multiplications. Only the
    spikes need the forward state (I before each spike, I at each end of
    refractoriness, V at the spikes for the record check), which a forward pass of
    running sums provides (:func:`factored_log`). The log ev_* (2 entries per
    spike) holds those events and how many arrivals precede each.
    """
    kk = ts / (tm - ts)
    inv_ts, inv_tm = 1.0 / ts, 1.0 / tm     # (multiplications in the loop: a division costs several)
    ne, a, worst = factored_log(m, arr_t, arr_q, arr_s, in_w, dm, ds, em, es, sp_time, sp_k, tm, ts, theta, reset,
                                refractory, t_end, ev_t, ev_c, ev_s, ev_i, ev_pos)
    # ---- reverse: arrivals a-1 .. 0, each spike event before the arrivals that precede it
    coef_m = 0.0                 # a
    coef_s = 0.0                 # b
    pv_ref = 0.0
    i_ref = 0.0
    g_th = 0.0
    e = ne - 1
    for a in range(a - 1, -2, -1):
        while e >= 0 and ev_pos[e] > a:
            coef_m, coef_s, pv_ref, i_ref, d_th = factored_event(
                ev_t[e], ev_c[e], ev_s[e], ev_i[e], coef_m, coef_s, pv_ref, i_ref, kk, tm, ts, reset, refractory,
                n_in, g_time, sp_source, sp_i_minus_theta, spike_grad)
            g_th += d_th
            e -= 1
        if a < 0:
            break
        q = arr_q[a]
        k = arr_s[a]
        pv = coef_m * (em[k] * dm[q])
        pi = coef_s * (es[k] * ds[q]) + kk * pv
        g_w[q] += pi
        dl_dt = in_w[q] * (pi * inv_ts - pv * inv_tm)
        g_d[q] += dl_dt
        g_time[row, k] += dl_dt
    return g_th, worst


@njit(cache=True, nogil=True)
def reverse_linear(m, arr_t, arr_q, arr_s, in_w, tm, ts, t_end, cs_lo, cs_hi, cs_coef, cs_rate, g_time, row,
                   g_w, g_d, factored, in_dm, in_ds, s_em, s_es):
    """Reverse pass of a neuron that does not spike and whose loss sources are continuous
    (``dl/dV = coef exp(-rate t)`` on [0, t_end], entries cs_lo..cs_hi-1), tau_m != tau_s.

    Its V is a linear filter of the arrivals, so the costate of :func:`reverse_neuron` does not
    depend on the state: with p(t_end) = 0, E(L, a) = integral_0^L exp(-a x) dx and
    K = tau_s / (tau_m - tau_s),
    ``p_V(t) = sum_r coef_r exp(-rate_r t) E(t_end - t, rate_r + 1/tau_m)`` and
    ``p_I(t) = K sum_r coef_r exp(-rate_r t) [E(t_end - t, rate_r + 1/tau_m) - E(t_end - t, rate_r + 1/tau_s)]``
    (the effect on V(s) of a unit perturbation of V, resp. I, at t is exp(-(s-t)/tau_m), resp.
    K (exp(-(s-t)/tau_m) - exp(-(s-t)/tau_s))). No replay: dL/dw = p_I and dL/dt_a =
    w (p_I/tau_s - p_V/tau_m) at each arrival's time, as in :func:`reverse_neuron`, source by source.
    factored: exp(-rate t) E(t_end - t, a) = (exp(-rate t) - exp(-a t_end) F(t)) / a with
    a = rate + 1/tau and F(t) = exp(t/tau) = s_em[spike] in_dm[synapse] for tau_m (s_es, in_ds for
    tau_s; the factors of :func:`reverse_factored`): one exponential per arrival instead of five,
    where exp(-a t_end) does not underflow.
    """
    kk = ts / (tm - ts)
    for r in range(cs_lo, cs_hi):
        rate = cs_rate[r]
        coef = cs_coef[r]
        a_m = rate + 1.0 / tm
        a_s = rate + 1.0 / ts
        c_m = math.exp(-a_m * t_end)
        c_s = math.exp(-a_s * t_end)
        use_f = factored and c_m > 1e-280 and c_s > 1e-280
        for a in range(m):
            t = arr_t[a]
            f = coef * math.exp(-rate * t)
            q = arr_q[a]
            if use_f:
                s = arr_s[a]
                e_m = (f - coef * c_m * (s_em[s] * in_dm[q])) / a_m
                e_s = (f - coef * c_s * (s_es[s] * in_ds[q])) / a_s
            else:
                span = t_end - t
                e_m = f * exp_overlap(span, a_m, 0.0)
                e_s = f * exp_overlap(span, a_s, 0.0)
            pv = e_m
            pi = kk * (e_m - e_s)
            g_w[q] += pi
            dl_dt = in_w[q] * (pi / ts - pv / tm)
            g_d[q] += dl_dt
            g_time[row, arr_s[a]] += dl_dt


@njit(cache=True, nogil=True)
def _reverse_one(j, m, arr_t, arr_q, arr_s, in_w, tau_m, tau_s, theta, reset, refractory, t_end, n_in, n_sp,
                 sp_t, sp_k, sp_i_minus_theta, sp_source, ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate,
                 want_tau, g_w, g_d, g_tm, g_ts, g_th, g_time, row, spike_grad, factored, in_dm, in_ds, s_em, s_es,
                 ev_t, ev_q, ev_s, ev_v, ev_i, ev_pos):
    """Reverse pass of neuron j over its m sorted arrivals (arr_*) and its n_sp spikes (sp_t, sp_k);
    the body of :func:`adjoint_range`. Returns max |V - theta| at its spikes."""
    if n_sp == 0 and ps_ptr[j] == ps_ptr[j + 1] and not want_tau and tau_m[j] != tau_s[j]:
        reverse_linear(m, arr_t, arr_q, arr_s, in_w, tau_m[j], tau_s[j], t_end, cs_ptr[j], cs_ptr[j + 1], cs_coef,
                       cs_rate, g_time, row, g_w, g_d, factored, in_dm, in_ds, s_em, s_es)
        return 0.0
    if factored and ps_ptr[j] == ps_ptr[j + 1] and cs_ptr[j] == cs_ptr[j + 1]:
        d_th, w = reverse_factored(m, arr_t, arr_q, arr_s, in_w, in_dm, in_ds, s_em, s_es, sp_t[:n_sp],
                                   sp_k[:n_sp], tau_m[j], tau_s[j], theta[j], reset[j], refractory[j], t_end,
                                   sp_i_minus_theta, sp_source, n_in, g_time, row, g_w, g_d, spike_grad,
                                   ev_t, ev_q, ev_s, ev_i, ev_pos)
        g_th[j] += d_th
        return w
    n_ev, w = replay_neuron(m, arr_t, arr_q, arr_s, in_w, sp_t[:n_sp], sp_k[:n_sp], tau_m[j], tau_s[j],
                            theta[j], reset[j], refractory[j], t_end, ev_t, ev_q, ev_s, ev_v, ev_i)
    clamped = n_sp > 0 and refractory[j] > 0.0 and sp_t[n_sp - 1] + refractory[j] > t_end
    d_tm, d_ts, d_th = reverse_neuron(
        n_ev, ev_t, ev_q, ev_s, ev_v, ev_i, in_w, tau_m[j], tau_s[j], reset[j], refractory[j], t_end,
        clamped, sp_i_minus_theta, sp_source, n_in, g_time, row,
        ps_ptr[j], ps_ptr[j + 1], ps_time, ps_value, cs_ptr[j], cs_ptr[j + 1], cs_coef, cs_rate, want_tau,
        g_w, g_d, spike_grad)
    g_tm[j] += d_tm
    g_ts[j] += d_ts
    g_th[j] += d_th
    return w


@njit(cache=True, nogil=True)
def _reverse_workspace(mmax, nsmax, factored):
    """Buffers of the reverse pass of neurons with at most mmax arrivals and nsmax spikes each: the local
    event log (ev_t, ev_q, ev_s, ev_v, ev_i: mmax + 2 nsmax entries; ev_pos: 2 nsmax if factored) and the
    neuron's spikes (sp_t, sp_k)."""
    n_log = mmax + 2 * nsmax
    return (np.empty(n_log), np.empty(n_log, np.int64), np.empty(n_log, np.int64), np.empty(n_log),
            np.empty(n_log), np.empty(2 * nsmax if factored else 0, np.int64), np.empty(nsmax),
            np.empty(nsmax, np.int64))


@njit(cache=True, nogil=True)
def adjoint_neuron(j, row, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory,
                   s_start, s_end, s_time, s_id, t_end, n_in, sp_i_minus_theta, sp_source,
                   ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate, want_tau,
                   g_w, g_d, g_tm, g_ts, g_th, g_time, spike_grad, factored, in_dm, in_ds, s_em, s_es,
                   counts, arr_t, arr_q, arr_s, ev_t, ev_q, ev_s, ev_v, ev_i, ev_pos, sp_t, sp_k):
    """Reverse pass of neuron j in one trial (the body of :func:`adjoint_range`, and of the GPU
    engine's thread): its arrivals gathered into the workspace (counts, arr_*: :func:`incoming_count`
    entries; ev_*: that plus twice its spikes; sp_t, sp_k: its spikes), then :func:`_reverse_one`.
    Returns max |V - theta| at its recorded spikes; neurons with neither spikes nor loss sources
    have a zero costate and are skipped."""
    n_sp = s_end[j] - s_start[j]
    if n_sp == 0 and ps_ptr[j] == ps_ptr[j + 1] and cs_ptr[j] == cs_ptr[j + 1]:
        return 0.0
    for r in range(n_sp):
        sp_t[r] = s_time[s_start[j] + r]
        sp_k[r] = s_id[s_start[j] + r] - n_in
    if n_sp == 0 and ps_ptr[j] == ps_ptr[j + 1] and not want_tau and tau_m[j] != tau_s[j]:
        # reverse_linear (see _reverse_one) takes each arrival on its own: no sort
        m = gather_unsorted(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, s_id, t_end, arr_t, arr_q, arr_s)
    else:
        m = gather_sorted(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, s_id, t_end, True,
                          counts, arr_t, arr_q, arr_s, 1)
    return _reverse_one(j, m, arr_t, arr_q, arr_s, in_w, tau_m, tau_s, theta, reset, refractory, t_end, n_in, n_sp,
                        sp_t, sp_k, sp_i_minus_theta, sp_source, ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate,
                        want_tau, g_w, g_d, g_tm, g_ts, g_th, g_time, row, spike_grad, factored, in_dm, in_ds, s_em,
                        s_es, ev_t, ev_q, ev_s, ev_v, ev_i, ev_pos)


@njit(cache=True, nogil=True)
def adjoint_range(j0, j1, row, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory,
                  s_start, s_end, s_time, s_id, t_end, n_in, sp_time, sp_i_minus_theta, sp_source,
                  ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate, want_tau,
                  g_w, g_d, g_tm, g_ts, g_th, g_time, spike_grad, factored, in_dm, in_ds, s_em, s_es):
    """Reverse pass of neurons j0..j1-1 (one chunk of one layer) in one trial (:func:`adjoint_neuron`
    each); returns max |V - theta| at their recorded spikes. s_*: every spike of the trial (inputs,
    then the record's spikes, id n_in + record index) grouped by neuron and sorted by time.
    factored: the layer's LIF neurons without voltage sources use :func:`reverse_factored`
    (s_em, s_es: exp(t/tau) of every spike, by id; in_dm, in_ds: exp(d/tau) per synapse)."""
    mmax = 0
    nsmax = 0
    for j in range(j0, j1):
        mmax = max(mmax, incoming_count(j, in_ptr, in_pre, s_start, s_end))
        nsmax = max(nsmax, s_end[j] - s_start[j])
    counts = np.empty(mmax + 1, np.int64)
    arr_t = np.empty(mmax)
    arr_q = np.empty(mmax, np.int64)
    arr_s = np.empty(mmax, np.int64)
    ev_t, ev_q, ev_s, ev_v, ev_i, ev_pos, sp_t, sp_k = _reverse_workspace(mmax, nsmax, factored)
    worst = 0.0
    for j in range(j0, j1):
        worst = max(worst, adjoint_neuron(
            j, row, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory, s_start, s_end, s_time,
            s_id, t_end, n_in, sp_i_minus_theta, sp_source, ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate,
            want_tau, g_w, g_d, g_tm, g_ts, g_th, g_time, spike_grad, factored, in_dm, in_ds, s_em, s_es,
            counts, arr_t, arr_q, arr_s, ev_t, ev_q, ev_s, ev_v, ev_i, ev_pos, sp_t, sp_k))
    return worst


# ------------------------------------------------ fused forward -> backward ----
#: time buckets per arrival in :func:`forward_keep_range`'s counting sort (more buckets: fewer items out of
#: order for the insertion sort that follows; 4 measured fastest at SHD size)
BUCKETS_PER_ARRIVAL = 4


#: arrivals per time bin (on average) of :func:`scan_binned`'s counting sort
ARRIVALS_PER_BIN = 4


@njit(cache=True, forceinline=True)
def _predict_factored(c_s, b_m, f_s, f_m, g_s, g_m, kk, inv_tm, tm, ts, theta, closed, t_now, t_next):
    """Delay to the crossing of a LIF neuron in factored form (running sums c_s, b_m at t_now, with
    f = exp(t_now/tau) and g = 1/f for tau_s and tau_m) if one may come before t_next, else inf.

    V is first estimated with g (no division) and tested against theta with a margin (1e-9 of the
    magnitudes involved, far above the estimate's rounding); where that cannot exclude a crossing,
    the state is computed with f and tested with :func:`below_until`, and then searched by
    :func:`crossing_within`. Returns t_now + delay, or inf."""
    i_e = c_s * g_s
    x_m = b_m * g_m
    x_s = kk * i_e
    v_e = x_m - x_s
    rise = (t_next - t_now) * free_rise(v_e, i_e) * inv_tm
    if v_e + rise < theta - 1e-9 * (abs(x_m) + abs(x_s) + rise + abs(theta)):
        return np.inf
    i0 = c_s / f_s
    v0 = b_m / f_m - kk * i0
    if below_until(v0, i0, tm, ts, theta, t_next - t_now):
        return np.inf
    return t_now + crossing_within(v0, i0, tm, ts, theta, closed, t_next - t_now)


@njit(cache=True, nogil=True)
def bin_bounds(nb, t_end, tm, ts):
    """(5, nb + 1): per bin boundary T_b = b t_end / nb (b = 0..nb, T_nb = t_end) of :func:`scan_binned`,
    rows T_b, exp(-T_b/tau_s), exp(-T_b/tau_m), exp(T_b/tau_s), exp(T_b/tau_m)."""
    bnd = np.empty((5, nb + 1))
    for b in range(nb + 1):
        t = b * (t_end / nb) if b < nb else t_end
        bnd[0, b] = t
        bnd[1, b] = math.exp(-t / ts)
        bnd[2, b] = math.exp(-t / tm)
        bnd[3, b] = math.exp(t / ts)
        bnd[4, b] = math.exp(t / tm)
    return bnd


@njit(cache=True, forceinline=True)
def after_spike(out_t, out_g, n_out, t_now, i_s, b_m, pred, kk, tm, ts, theta, reset, refractory, closed):
    """A spike of the factored scans at t_now (I = i_s there): recorded at n_out of out_t, out_g (time,
    I - theta); returns (n_out + 1, end of the refractory period, whether it is pending, b_m, pred).
    With a refractory period, b_m and pred are returned as they were (the caller predicts from its
    end); without, V restarts from reset at once."""
    out_t[n_out] = t_now
    out_g[n_out] = i_s - theta
    n_out += 1
    ref_end = t_now + refractory
    if refractory > 0.0:
        return n_out, ref_end, True, b_m, pred
    return n_out, ref_end, False, (reset + kk * i_s) * math.exp(t_now / tm), t_now + next_crossing(reset, i_s, tm,
                                                                                                    ts, theta, closed)


@njit(cache=True, nogil=True)
def scan_binned(m, nb, ends, sums, bnd, s_time, in_d, arr_t, arr_qk, q0, in_w, syn_f, spk_f, tm, ts, theta, reset,
                refractory, closed, t_end, out_t, out_g, ev_t, ev_c, ev_s, ev_i, ev_pos):
    """Forward scan of a LIF neuron at rest without bias, with factored exponentials, bin by bin:
    :func:`scan_forward`'s spikes (to rounding) without sorting or visiting most arrivals.

    Factored form: with F(t) = exp(t/tau), I(t) = C_s / F_s(t) and V(t) = B_m / F_m(t) - K I(t)
    (K = tau_s / (tau_m - tau_s)); an arrival of weight w at t = t_k + d adds w F_s(t) to C_s and
    K w F_m(t) to B_m (V is continuous), F(t) the product of a factor of the presynaptic spike
    (``spk_f[:, k]`` = exp(t_k/tau_s), exp(t_k/tau_m), exp(-t_k/tau_s), exp(-t_k/tau_m), by position
    k) and one of the synapse (``syn_f[:, q]``, the same with d, by q; tables of 4 rows, so that a
    factor's address needs no multiplication); a reset sets
    B_m = (reset + K I) F_m. No exponential per arrival. The caller ensures that F stays finite on
    [0, t_end + refractory].

    Bins: the arrivals (m) in nb time bins [T_b, T_b+1) (:func:`bin_arrivals`: ``ends[b]`` the end of
    bin b in arr_qk (arrivals (q, k) packed by :func:`pack_arrival` with q0), ``sums[4 b: 4 b + 3]`` its
    sums; boundaries and their factors ``bnd``, :func:`bin_bounds`; arr_t: the times, s_time[k] +
    in_d[q], written here for the bins that are sorted).
    Where the neuron is not refractory and no crossing is predicted, a whole bin is added at once
    (its sums) if V provably stays below theta over it: from the state (v0, i0) at T_b, with W+ the
    bin's positive weights and D = T_b+1 - T_b, V <= v0 + D (free_rise(v0, i0) + W+) / tau_m
    (free evolution plus each excitatory PSP, which rises at most at 1/tau_m per unit weight;
    inhibitory ones only lower V), tested with a margin of 1e-9 of the magnitudes involved. Otherwise
    the bin is sorted in place (:func:`sort_range`: by time, then generation order, as
    :func:`gather_sorted`) and taken arrival by arrival as the exact scan does (a spike due at the
    time of an arrival comes first), after checking for a crossing between T_b and its first arrival.
    Spike times equal the event engine's to rounding (the sums are taken in another order).

    Also logs what the reverse pass (:func:`reverse_factored_kept`) needs: the spikes and ends of
    refractoriness in order (time ev_t, ev_c EV_SPIKE or EV_REF_END, ev_s the spike's ordinal among
    the neuron's spikes (for an end: of the spike that started it), ev_i I there, ev_pos the number of
    arrivals before it: events lie in sorted bins or between bins, and the reverse pass needs the
    arrivals between two events only as a set). ev_*: at least 2 len(out_t) entries. Returns (number
    of spikes or -1 if out_t is too small, number of logged events, max |V - theta| at the spikes).
    arr_t, arr_qk are left partly sorted: bin again before scanning again.
    """
    kk = ts / (tm - ts)
    inv_tm = 1.0 / tm
    bits = k_bits(arr_qk)
    c_s = 0.0
    b_m = 0.0
    ref_end = -np.inf
    pending = False              # in a refractory period whose end has not been passed yet
    log_ref = False              # the end of the last refractory period is not logged yet
    pred = np.inf
    n_out = 0
    ne = 0
    worst = 0.0
    cap = out_t.shape[0]
    a = 0
    srt = 0                      # arrivals [0, srt) are taken or sorted: those of the bins before bi
    bi = 0
    while True:
        quiet = pred == np.inf and not pending and not log_ref     # (then no crossing before bnd[0, bi])
        if quiet and a == srt and bi < nb:
            # whole bins at once, one after the other, while V provably stays below theta over each (~96 %
            # of the arrivals at SHD size); the bin that fails the test is sorted below
            b = bi
            while b < nb:
                x_m = b_m * bnd[2, b]
                i0 = c_s * bnd[1, b]
                x_s = kk * i0
                v0 = x_m - x_s
                rise = (bnd[0, b + 1] - bnd[0, b]) * (free_rise(v0, i0) + sums[4 * b + 2]) * inv_tm
                if not v0 + rise < theta - 1e-9 * (abs(x_m) + abs(x_s) + rise + abs(theta)):
                    break
                c_s += sums[4 * b]
                b_m += kk * sums[4 * b + 1]
                b += 1
            if b > bi:
                a = ends[b - 1]
                srt = a
                bi = b
        if a == srt and bi < nb and (quiet or pred >= bnd[0, bi]):
            b = bi
            hi = ends[b]
            bi += 1
            for r in range(a, hi):
                q, k = unpack_arrival(arr_qk[r], q0, bits)
                arr_t[r] = s_time[k] + in_d[q]      # (the sum that bin_arrivals binned)
            sort_range(a, hi, arr_t, arr_qk, arr_qk, False)
            srt = hi
            if quiet:
                # a crossing between the start of the bin and its first arrival (its end if none)?
                pred = _predict_factored(c_s, b_m, bnd[3, b], bnd[4, b], bnd[1, b], bnd[2, b], kk, inv_tm, tm, ts,
                                         theta, closed, bnd[0, b], arr_t[a] if a < hi else bnd[0, b + 1])
            continue
        if quiet and a < srt:
            # arrivals of the sorted bins while no crossing is predicted and the neuron is not refractory
            while a < srt:
                t_now = arr_t[a]
                q, k = unpack_arrival(arr_qk[a], q0, bits)
                w = in_w[q]
                f_s = spk_f[0, k] * syn_f[0, q]
                f_m = spk_f[1, k] * syn_f[1, q]
                c_s += w * f_s
                b_m += kk * w * f_m
                a += 1
                pred = _predict_factored(c_s, b_m, f_s, f_m, spk_f[2, k] * syn_f[2, q], spk_f[3, k] * syn_f[3, q],
                                         kk, inv_tm, tm, ts, theta, closed, t_now,
                                         min(arr_t[a] if a < srt else bnd[0, bi], t_end))
                if pred < np.inf:
                    break
            continue
        t_a = arr_t[a] if a < srt else np.inf
        is_spike = pred <= t_a
        t_now = pred if is_spike else t_a
        if t_now > t_end:
            break
        if log_ref and t_now > ref_end:        # as reverse_factored: after the arrivals at ref_end
            ev_t[ne], ev_c[ne], ev_s[ne], ev_i[ne], ev_pos[ne] = (ref_end, EV_REF_END, n_out - 1,
                                                                  c_s * math.exp(-ref_end / ts), a)
            ne += 1
            log_ref = False
        if pending and t_now >= ref_end:
            b_m = (reset + kk * c_s * math.exp(-ref_end / ts)) * math.exp(ref_end / tm)
            pending = False
        if is_spike:
            if n_out == cap:
                return -1, 0, 0.0
            i_s = c_s * math.exp(-t_now / ts)
            v_b = reset if ref_end >= t_now else b_m * math.exp(-t_now / tm) - kk * i_s
            worst = max(worst, abs(v_b - theta))
            ev_t[ne], ev_c[ne], ev_s[ne], ev_i[ne], ev_pos[ne] = t_now, EV_SPIKE, n_out, i_s, a
            ne += 1
            n_out, ref_end, pending, b_m, pred = after_spike(out_t, out_g, n_out, t_now, i_s, b_m, pred, kk, tm, ts,
                                                             theta, reset, refractory, closed)
            if not pending:
                continue
            log_ref = True
        else:
            q, k = unpack_arrival(arr_qk[a], q0, bits)
            w = in_w[q]
            f_s = spk_f[0, k] * syn_f[0, q]
            c_s += w * f_s
            a += 1
            if not pending:
                f_m = spk_f[1, k] * syn_f[1, q]
                b_m += kk * w * f_m
                pred = _predict_factored(c_s, b_m, f_s, f_m, spk_f[2, k] * syn_f[2, q], spk_f[3, k] * syn_f[3, q],
                                         kk, inv_tm, tm, ts, theta, closed, t_now,
                                         min(arr_t[a] if a < srt else bnd[0, bi], t_end))
                continue
        # in a refractory period: V restarts from reset at its end
        pred = ref_end + next_crossing(reset, c_s * math.exp(-ref_end / ts), tm, ts, theta, closed)
    if log_ref and ref_end <= t_end:
        ev_t[ne], ev_c[ne], ev_s[ne], ev_i[ne], ev_pos[ne] = (ref_end, EV_REF_END, n_out - 1,
                                                              c_s * math.exp(-ref_end / ts), a)
        ne += 1
    return n_out, ne, worst


@njit(cache=True, nogil=True)
def reverse_factored_kept(arr_qk, q0, in_w, syn_f, spk_f, sp_k, tm, ts, reset, refractory, ev_t, ev_c, ev_s,
                          ev_i, ev_pos, sp_i_minus_theta, sp_source, n_in, g_time, row, g_w, g_d, spike_grad):
    """The reverse half of :func:`reverse_factored` on the log that :func:`scan_binned` wrote in the
    forward pass (ev_*: the neuron's events; ev_s: ordinals among its spikes, whose record indices are
    sp_k), so that the arrivals are not walked forward again: the same operations, the same gradients to
    rounding (between two events the arrivals come in bin order, not time order, which only matters to
    the order of the sums). arr_qk: the neuron's arrivals, packed (:func:`pack_arrival` with q0; all
    of them precede t_end; those after its last event have a zero costate and are skipped). Returns
    dL/dtheta of the neuron."""
    kk = ts / (tm - ts)
    inv_ts, inv_tm = 1.0 / ts, 1.0 / tm
    bits = k_bits(arr_qk)
    coef_m = 0.0                 # a
    coef_s = 0.0                 # b
    pv_ref = 0.0
    i_ref = 0.0
    g_th = 0.0
    e = ev_t.shape[0] - 1
    a_hi = ev_pos[e] if e >= 0 else 0     # the arrivals after the last event have a zero costate
    while True:
        a_lo = ev_pos[e] if e >= 0 else 0
        for a in range(a_hi - 1, a_lo - 1, -1):
            q, k = unpack_arrival(arr_qk[a], q0, bits)
            pv = coef_m * (spk_f[1, k] * syn_f[1, q])
            pi = coef_s * (spk_f[0, k] * syn_f[0, q]) + kk * pv
            g_w[q] += pi
            dl_dt = in_w[q] * (pi * inv_ts - pv * inv_tm)
            g_d[q] += dl_dt
            g_time[row, k] += dl_dt
        a_hi = a_lo
        if e < 0:
            break
        coef_m, coef_s, pv_ref, i_ref, d_th = factored_event(
            ev_t[e], ev_c[e], sp_k[ev_s[e]], ev_i[e], coef_m, coef_s, pv_ref, i_ref, kk, tm, ts, reset, refractory,
            n_in, g_time, sp_source, sp_i_minus_theta, spike_grad)
        g_th += d_th
        e -= 1
    return g_th


@njit(cache=True, inline="always")
def crossing_within(v0, i0, tm, ts, theta, closed, span):
    """:func:`~neurodelay.events.dynamics.next_crossing` where the crossing may lie within `span` s,
    else inf (the scan's next event then predicts again): the root is not searched when V reaches its
    maximum after `span` and is still below theta at `span` (it rises monotonically up to the maximum)."""
    if v0 < theta and voltage_bound(v0, i0, tm, ts) >= theta:
        s_max = peak_time(v0, i0, tm, ts)
        if s_max > span and free_voltage(v0, i0, tm, ts, span) < theta:
            return np.inf
    return next_crossing(v0, i0, tm, ts, theta, closed)


@njit(cache=True, nogil=True)
def _append_log(log, n_log, ev, ne):
    """The arrays of `log` (filled up to n_log) with the first ne entries of those of `ev` appended
    (grown, doubled at least, when too short): returns the arrays, new or the same."""
    lt, lc, ls, li, lp = log
    if n_log + ne > lt.shape[0]:
        size = max(2 * lt.shape[0], n_log + ne)
        nt, nc, ns_, ni, np_ = np.empty(size), np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size), \
            np.empty(size, np.int64)
        nt[:n_log], nc[:n_log], ns_[:n_log], ni[:n_log], np_[:n_log] = lt[:n_log], lc[:n_log], ls[:n_log], \
            li[:n_log], lp[:n_log]
        lt, lc, ls, li, lp = nt, nc, ns_, ni, np_
    et, ec, es_, ei, ep = ev
    lt[n_log: n_log + ne] = et[:ne]
    lc[n_log: n_log + ne] = ec[:ne]
    ls[n_log: n_log + ne] = es_[:ne]
    li[n_log: n_log + ne] = ei[:ne]
    lp[n_log: n_log + ne] = ep[:ne]
    return lt, lc, ls, li, lp


@njit(cache=True, nogil=True)
def _event_log(size):
    """Empty event-log arrays (time, code, spike ordinal, I, arrivals before) of `size` entries."""
    return np.empty(size), np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size), \
        np.empty(size, np.int64)


@njit(cache=True, nogil=True)
def forward_keep_range(j0, j1, tau_m, tau_s, theta, reset, refractory, closed, in_ptr, in_pre, in_d, in_w,
                       s_start, s_end, s_time, t_end, max_spikes, a_qk, factored, syn_f, spk_f):
    """:func:`forward_range` of LIF neurons j0..j1-1 at rest without bias, keeping each
    neuron's arrivals for the reverse pass (:func:`adjoint_kept_range`), so that they are
    generated and sorted once per trial.

    factored: scan with :func:`scan_binned` (syn_f: factors per synapse q, spk_f: per entry
    of s_time; see there), which also logs each neuron's spikes and ends of refractoriness for the
    reverse pass and leaves the arrivals in time bins, sorted only within some; else sort them
    (:func:`gather_sorted`) and scan with the exact :func:`scan_forward` (no log).
    a_qk (workspace, reused across trials): at least the sum of :func:`incoming_count` over the
    neurons, of the dtype that :func:`packing` gives. Returns (count per neuron, spike
    times, I - theta, a_ptr, e_ptr, log, worst): the arrivals of neuron j0 + i are
    ``a_ptr[i]:a_ptr[i + 1]`` of a_qk, each (synapse q, source k: position in s_time) packed by
    :func:`pack_arrival` (q0 = in_ptr[j]), their times not kept (4 bytes per arrival instead of 16
    where uint32): ``s_time[k] + in_d[q]`` gives them back bit for bit (the sum that
    :func:`gather_sorted` computed); its logged events are ``e_ptr[i]:e_ptr[i + 1]`` of the arrays of `log`; worst: max
    |V - theta| at the logged spikes. The same spikes as :func:`forward_range` bit for bit.
    """
    n_j = j1 - j0
    bound = 0
    mmax = 0
    for j in range(j0, j1):
        c = incoming_count(j, in_ptr, in_pre, s_start, s_end)
        bound += c
        mmax = max(mmax, c)
    if bound > a_qk.shape[0]:
        raise ValueError("forward_keep_range: arrival workspace too small")
    nb, bnd, sums = chunk_bins(j0, j1, bound, t_end, tau_m, tau_s, factored)
    counts = np.empty(max(BUCKETS_PER_ARRIVAL * mmax, nb) + 2, np.uint32)
    gen = _bin_workspace(j0, j1, in_ptr, mmax, factored)
    pos_id = np.arange(0 if factored else s_time.shape[0])   # k: positions in s_time (bin_arrivals: its own)
    arr_t = np.empty(mmax)                # times here (cache-resident); bin_arrivals packs into a_qk itself
    arr_q = np.empty(0 if factored else mmax, np.int64)      # gather_sorted's (q, k), packed after the scan
    arr_s = np.empty(0 if factored else mmax, np.int64)
    a_ptr = np.zeros(n_j + 1, np.int64)
    e_ptr = np.zeros(n_j + 1, np.int64)
    no_samples = np.empty(0)
    samples = np.empty((0, 0))
    n_per = np.zeros(n_j, np.int64)
    res_t = np.empty(64)
    res_g = np.empty(64)
    out_t = np.empty(16)
    out_g = np.empty(16)
    ev = _event_log(2 * out_t.shape[0])
    log = _event_log(128 if factored else 0)
    worst = 0.0
    total = 0
    for j in range(j0, j1):
        i = j - j0
        lo = a_ptr[i]
        m = 0
        if not factored:
            m = gather_sorted(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, pos_id, t_end, True, counts, arr_t,
                              arr_q, arr_s, BUCKETS_PER_ARRIVAL)
            for a in range(m):
                a_qk[lo + a] = pack_arrival(arr_q[a], arr_s[a], in_ptr[j], k_bits(a_qk))
        ne = 0
        while True:
            if factored:
                ns, ne, w, m = _binned_scan(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, bnd, sums,
                                            counts, arr_t, a_qk[lo:], in_w, syn_f, spk_f, tau_m, tau_s, theta,
                                            reset, refractory, closed, out_t, out_g, ev, gen)
                worst = max(worst, w)
            else:
                ns = scan_forward(m, arr_t, arr_q, in_w, tau_m[j], tau_s[j], theta[j], reset[j],
                                  refractory[j], closed[j], True, t_end, no_samples, -1, samples, out_t, out_g,
                                  0.0, 0.0, 0.0)
            if ns >= 0:
                break
            out_t = np.empty(2 * out_t.shape[0])
            out_g = np.empty(2 * out_g.shape[0])
            ev = _event_log(2 * out_t.shape[0])
        a_ptr[i + 1] = lo + m
        res_t, res_g = _append_spikes(res_t, res_g, total, out_t, out_g, ns)
        log = _append_log(log, e_ptr[i], ev, ne)
        e_ptr[i + 1] = e_ptr[i] + ne
        total += ns
        n_per[i] = ns
        if total > max_spikes:
            for r in range(i + 1, n_j):
                a_ptr[r + 1] = a_ptr[i + 1]
                e_ptr[r + 1] = e_ptr[i + 1]
            break
    n_log = e_ptr[n_j]
    return (n_per, res_t[:total].copy(), res_g[:total].copy(), a_ptr, e_ptr,
            (log[0][:n_log], log[1][:n_log], log[2][:n_log], log[3][:n_log], log[4][:n_log]), worst)


@njit(cache=True, nogil=True)
def adjoint_kept_range(j0, j1, row, a_ptr, a_qk, in_ptr, in_d, in_w, tau_m, tau_s, theta, reset, refractory,
                       s_start, s_end, s_time, t_end, n_in, sp_i_minus_theta, sp_source,
                       ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate, want_tau,
                       g_w, g_d, g_tm, g_ts, g_th, g_time, spike_grad, factored, in_dm, in_ds, s_em, s_es,
                       logged, e_ptr, log, syn_f, spk_f):
    """:func:`adjoint_range` of neurons j0..j1-1 over the arrivals kept by :func:`forward_keep_range`
    (a_ptr over j0..j1-1, a_qk packed; arrival times s_time[k] + in_d[q]), source ids = positions in s_time
    (the trial's spikes: inputs, then the network's, grouped by neuron; spike id n_in + r is entry r
    of sp_*). logged: the forward pass was factored and logged each neuron's events (e_ptr, log;
    syn_f, spk_f its factors); the neurons that take :func:`reverse_factored` (factored, no voltage
    sources) then take :func:`reverse_factored_kept` on that log instead (the same numbers to rounding,
    without walking their arrivals forward again); the others sort their arrivals first (those of a
    factored scan are only binned by time). Returns max |V - theta| at the replayed spikes."""
    mmax = 0
    nsmax = 0
    for j in range(j0, j1):
        mmax = max(mmax, a_ptr[j - j0 + 1] - a_ptr[j - j0])
        nsmax = max(nsmax, s_end[j] - s_start[j])
    arr_t = np.empty(mmax)
    arr_q = np.empty(mmax, np.int64)
    arr_s = np.empty(mmax, np.int64)
    ev_t, ev_q, ev_s, ev_v, ev_i, ev_pos, sp_t, sp_k = _reverse_workspace(mmax, nsmax, factored)
    worst = 0.0
    for j in range(j0, j1):
        n_sp = s_end[j] - s_start[j]
        if n_sp == 0 and ps_ptr[j] == ps_ptr[j + 1] and cs_ptr[j] == cs_ptr[j + 1]:
            continue
        for r in range(n_sp):
            sp_t[r] = s_time[s_start[j] + r]
            sp_k[r] = s_start[j] + r - n_in
        lo, hi = a_ptr[j - j0], a_ptr[j - j0 + 1]
        if logged and factored and ps_ptr[j] == ps_ptr[j + 1] and cs_ptr[j] == cs_ptr[j + 1]:
            e0, e1 = e_ptr[j - j0], e_ptr[j - j0 + 1]
            g_th[j] += reverse_factored_kept(a_qk[lo:hi], in_ptr[j], in_w, syn_f, spk_f, sp_k, tau_m[j],
                                             tau_s[j], reset[j], refractory[j], log[0][e0:e1], log[1][e0:e1],
                                             log[2][e0:e1], log[3][e0:e1], log[4][e0:e1], sp_i_minus_theta,
                                             sp_source, n_in, g_time, row, g_w, g_d, spike_grad)
            continue
        for a in range(hi - lo):
            q, k = unpack_arrival(a_qk[lo + a], in_ptr[j], k_bits(a_qk))
            arr_q[a], arr_s[a] = q, k
            arr_t[a] = s_time[k] + in_d[q]
        sort_range(0, hi - lo, arr_t, arr_q, arr_s, True)    # (binned by a factored scan)
        worst = max(worst, _reverse_one(
            j, hi - lo, arr_t, arr_q, arr_s, in_w, tau_m, tau_s, theta, reset, refractory, t_end,
            n_in, n_sp, sp_t, sp_k, sp_i_minus_theta, sp_source, ps_ptr, ps_time, ps_value, cs_ptr, cs_coef,
            cs_rate, want_tau, g_w, g_d, g_tm, g_ts, g_th, g_time, row, spike_grad, factored, in_dm, in_ds,
            s_em, s_es, ev_t, ev_q, ev_s, ev_v, ev_i, ev_pos))
    return worst
