"""Compiled kernels of a recurrent group of the layered engine, forward and reverse (numba, release the GIL).

(In batches of several trials, groups of one tau_m and one tau_s from rest without bias, zero delays or
sampled voltages take :mod:`neurodelay.layered._windowed_group` forward instead of :func:`forward_group`,
at 0.55x its cost at SHD size; see :data:`neurodelay.layered.recurrent.WINDOWED`.)

A *recurrent group* is a set of LIF neurons whose populations form a cycle of
projections (self-recurrence pop -> pop, or a cycle between populations of one
layer). Its neurons are coupled, so they are simulated together, one trial at a
time, but each neuron keeps its own event sources:

* **input arrivals** (from the earlier layers and the spike sources, all known
  before the group runs) are generated and sorted per neuron once, by a bucket
  sort (:func:`_sorted_arrivals`, in the order of :func:`~._kernels.gather_sorted`),
  and read with a cursor;
* **recurrent arrivals** are pushed, as the group's spikes happen, into
  per-neuron time buckets (a ring over the largest recurrent delay; the bucket
  in front is kept sorted by (time, synapse));
* the **next event** of the group is taken from an indexed min-heap over the
  group's neurons keyed by where each neuron's *tentative* scan stopped: from
  its committed state, each neuron scans its input arrivals and the pending
  recurrent arrivals of its front bucket, merged in (time, synapse) order, up
  to its next threshold crossing, the first recurrent arrival of a later
  bucket, SCAN_LIMIT arrivals or a guard time (then the scan resumes as an
  event of the index); a recurrent arrival pushed before the end of a
  neuron's scan sends it back to its committed state. So most recurrent
  arrivals are scanned like input arrivals, without an event of the index
  (when each was an event of the index: ~1M per trial at SHD size, 700 -> 256
  recurrent -> 20, 95 % of them recurrent arrivals).

Each neuron's events are applied with the event engine's exact dynamics
(:func:`~neurodelay.events.dynamics.state_at`,
:func:`~neurodelay.events.dynamics.biased_crossing`) in the order the event
engine applies them: a spike due at the time of an arrival comes first, and
arrivals at one time are applied in synapse order (the (time, synapse id) rule
of every engine). The exact crossing search is skipped, as in
:func:`~._kernels.scan_forward`, where :func:`~._kernels.below_until` shows that
V stays below theta until the neuron's next known arrival (an earlier recurrent
arrival, pushed later, only shortens that interval, and re-predicts).

**Blocks** (groups of one tau_m and one tau_s, ``block`` > 0): a neuron's sorted
input arrivals are cut into blocks of ``block`` (from its first), each with the
sums over its arrivals of w exp(-(t_L - t)/tau_s), w exp(-(t_L - t)/tau_m) (t_L
its last arrival; factored, exp(t/tau) = spike's factor x synapse's factor, so
no exponential per arrival) and of its positive weights (:func:`_block_sums`).
Where a scan reaches the start of a block with no crossing predicted, outside a
refractory period, no sample and no later bucket's arrival before t_L, it adds
the block and the pending recurrent arrivals of its front bucket before t_L at
once (two exponentials each) if V provably stays below theta until t_L: V <= v
+ (t_L - t) (free_rise + W+) / tau_m (:func:`~._kernels.free_rise`; each
excitatory arrival rises at most at 1/tau_m per unit weight, inhibitory ones
only lower V; a margin of 1e-9 of the magnitudes), as
:func:`~._kernels.scan_binned` adds bins. The sums are taken in another order
than arrival by arrival: spike times differ from the event engine's by
rounding.

One trial of a group can run on several threads (:func:`forward_partitioned`): the
group's neurons split into partitions, each run by the same event loop
(:func:`_group_loop`) on its own neurons, in lock-step windows no longer than the
smallest delay between two partitions, exchanging their spikes at the end of each.

The reverse pass (:func:`adjoint_group`) replays each neuron locally and walks
the neurons' logs back together, pausing where they are coupled (the group's
spikes). A group of one tau_m and one tau_s that the loss reaches only through
its spike times takes :func:`_adjoint_group_factored` instead: no sort, no
replay, no exponential per arrival.

Where the time goes (bench/gradient.py's recurrent network, 700 -> 256 recurrent -> 20, one
thread, cycle counts of a temporarily instrumented copy, 2026-11-27). Before blocks: per trial ~280
ms for the forward, of which the input arrivals' gather and sort (:func:`_group_setup`, ~16 ns per
arrival) ~35 ms, the tentative scans ~140 ms (3.26M arrival steps, ~40 ns each, 7 % of them redone
after a push), the index events' commits ~30 ms (over half of it sorting buckets that became the
front) and re-keying ~12 ms (105k events), the pushes of the recurrent arrivals ~27 ms (0.95M, ~1
cache miss each). With blocks of 8 and the counting sort of buckets (the cycle counter's clock,
2.1 GHz, converted to ms): setup ~45 ms (the sort plus the block sums), the scans ~115 ms (282k
blocks, ~155 ns each with ~3 recurrent arrivals and their 6 exponentials; 0.60M arrival steps,
~115 ns each; 22 % of the arrivals scanned are redone after a push, as a scan with blocks reaches
further), commits ~19 ms (76k index events), pushes ~27 ms. Counted later that day (2 trials):
of 588k steps per trial 280k are recurrent arrivals and 274k input arrivals at positions that
are not a block's start, reached after one of the 33k failed blocks (22k with the first pending
arrival of a later bucket inside the block, 11k where the bound does not hold), each followed by
up to 7 single steps; only ~4k predictions per trial need more than the tangent bound, and the
49k made in refractory periods take ~6 ms. Tried and not kept (one process, the code before and
after each change interleaved, 2 trials, 2026-11-27): time bins of ~8 input arrivals with sums,
sorted only when a scan steps into one, instead of sorted blocks (setup 40 -> 54 ms: a bin's row
updated per arrival costs more than the sort; forward 1.3x slower); blocks starting at any
arrival, from running sums (24 bytes per arrival) and cut short before a later bucket's arrival
(blocks 278k -> 320k, setup +20 ms, forward 1.07x slower); and, gaining 3 % or less (within
the noise of the medians): a bound weighting each excitatory arrival by the time from it to the
block's end (1.5 % more blocks, forward 0.985x), one exponential instead of two where tau_m is an
integer multiple of tau_s (0.976x), blocks that start at a pending recurrent arrival (0.5 % more
blocks, 0.986x), skipping the prediction in a refractory period while the next arrival comes
before its end (1.003x). Earlier: factored exponentials in the steps (exp(t/tau) of each input
arrival precomputed; spikes within 3e-15 s) gained 4-8 %; a SCAN_LIMIT of
128 or 512 makes a step 10-15 % cheaper but doubles the steps, and 16, 24 or 48 with blocks gain
nothing measurable; going on from the tentative state when a push lands after its last arrival
(instead of from the committed state) saved under 1 % of the steps (a push almost always lands
before it: the tentative state is the last arrival before where the scan stopped) and was slower;
bucket entries of 4 values (time, q, and the factors exp(t/tau) from the spike's and the synapse's,
so that a block's recurrent arrivals need no exponential) made the forward 1.13x slower (paired):
pushes and sorts move twice the bytes.

Counted again on 2026-11-28 (2 trials, one thread, cycle counter of a temporarily instrumented
copy, 2.1 GHz): per trial 90k tentative scans, 609k single steps (292k recurrent arrivals; of the
317k input arrivals 245k in the middle of a block, after an index event or a failed block, 39k in
a refractory period), 314k block attempts of which 281k succeed, 984k pushes, 76k index events,
3.8k spikes. Setup (the input arrivals' sort and the block sums) ~40 ms, of which the sums ~9 ms;
the scans ~100 ms; commits ~18 ms; pushes ~26 ms (page faults included: counted before the
allocator's change below). Tried and not kept that day: half blocks (sums
over each half of a block too; a scan in the middle of a block, or after a whole block failed its
bound, tried a half): single steps 609k -> 370k, blocks 281k -> 325k, but the forward 1.09x and
1.13x as costly (interleaved in one process, 4 trials, 16 rounds), so the single steps are not
where the time goes. Page faults: each trial's arrays came from memory that the allocator had
handed back to the kernel, 18k faults per trial on one thread (71 MiB of pages), 10-14k and 25-31
ms of system time per trial on 2 threads, until :func:`neurodelay._allocator.keep_freed_memory`.

Times in seconds. The event loop's arrays are arguments and never reassigned
(see the performance note of :mod:`neurodelay.events.kernel`): when a time
bucket or the spike record is full the loop returns, the caller grows the array
and re-enters it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..events.dynamics import biased_crossing, state_at
from ._kernels import (EV_REF_END, EV_SPIKE, _spike_costate, advance_costate, arrival_costate, below_until,
                       count_bins, crossing_within, free_rise, factored_event, gather_sorted, incoming_count,
                       k_bits, packing_fits, place_packed, replay_neuron, sort_range, unpack_arrival, K_BITS)
from ._split_reverse import segment_states, split_events

STATUS_OK = 0
STATUS_TOO_MANY_SPIKES = 1

_DONE, _NEED_PENDING, _NEED_RECORDS, _NEED_OUTBOX = 0, 1, 2, 3
# counters of one run of the event loop: spikes recorded, status, arrivals in the outbox, where the
# pull of the inbox stands (source partition, entry), the most arrivals a bucket has held, and the
# blocks of input arrivals added at once
_NSPK, _STATUS, _NOB, _PULL_S, _PULL_E, _FILL, _BLOCKS = 0, 1, 2, 3, 4, 5, 6
_N_COUNTERS = 7


@njit(cache=True)
def _before(t1, q1, t2, q2):
    """(t1, q1) < (t2, q2) lexicographically: the tie rule of every engine."""
    return t1 < t2 or (t1 == t2 and q1 < q2)


@njit(cache=True, forceinline=True)
def _sift_into(bk, row, sl, h0, k, t, q):
    """Write the pending arrival (t, q) into bucket slot sl of neuron row at position k or below: the
    entries above position h0 that come after it in (time, q) order move up one (an insertion-sort
    step; h0 = k appends)."""
    while k > h0 and _before(t, q, bk[row, sl, 2 * k - 2], bk[row, sl, 2 * k - 1]):
        bk[row, sl, 2 * k] = bk[row, sl, 2 * k - 2]
        bk[row, sl, 2 * k + 1] = bk[row, sl, 2 * k - 1]
        k -= 1
    bk[row, sl, 2 * k] = t
    bk[row, sl, 2 * k + 1] = q


@njit(cache=True)
def _sort_bucket(bk, row, sl, h0, hi, b, inv_width, tmp, cnt):
    """Sort entries h0..hi-1 of bucket slot sl of neuron row (bucket b) by (time, q): more than 8 first by a
    counting sort on hi - h0 equal parts of the bucket's time range (the part, int((t inv_width - b)
    (hi - h0)), does not decrease with t), then by insertion, which then moves entries only within a
    part. tmp, cnt: workspaces of 2 (hi - h0) and hi - h0 + 1 entries."""
    m = hi - h0
    if m > 8:
        for c in range(m + 1):
            cnt[c] = 0
        for e in range(h0, hi):
            cnt[min(max(np.int64((bk[row, sl, 2 * e] * inv_width - b) * m), 0), m - 1) + 1] += 1
        for c in range(m):
            cnt[c + 1] += cnt[c]
        for e in range(h0, hi):
            t = bk[row, sl, 2 * e]
            k = min(max(np.int64((t * inv_width - b) * m), 0), m - 1)
            at = cnt[k]
            cnt[k] = at + 1
            tmp[2 * at] = t
            tmp[2 * at + 1] = bk[row, sl, 2 * e + 1]
        for at in range(m):
            bk[row, sl, 2 * (h0 + at)] = tmp[2 * at]
            bk[row, sl, 2 * (h0 + at) + 1] = tmp[2 * at + 1]
    for e in range(h0 + 1, hi):
        _sift_into(bk, row, sl, h0, e, bk[row, sl, 2 * e], bk[row, sl, 2 * e + 1])


#: Pending recurrent arrivals of local neuron l: row l of bk holds N_BUCKETS time buckets (a ring:
#: bucket b = int(t inv_width) in slot b % N_BUCKETS), each a list of (time, q) pairs, with
#: bm[l, slot] = (count, consumed). The bucket of the earliest pending arrival (the front,
#: bm[l, _FRONT] = (its bucket, number pending)) is kept sorted by (time, q) from its first
#: unconsumed entry on (a push into it is inserted in place); another bucket is sorted when it
#: becomes the front (:func:`_sort_bucket`: ~34 entries per bucket at SHD size, where the
#: insertion sort alone took ~10 % of the forward pass; the counting sort first made the forward
#: ~8 % faster, records identical bit for bit). A neuron's pending arrivals lie in [now, now + largest delay], which the
#: ring covers with room to spare, so slots never alias. occ[l] has bit s set while slot s is
#: occupied, so the next front is found without looking at empty slots. (Pushes and pops are
#: written inline in the event loop: calls with array arguments would cost numba reference
#: counts per event.)
N_BUCKETS = 64   # the bits of one uint64
_FRONT = N_BUCKETS


@njit(cache=True)
def _predict(v, cur, t_last, ref_end, reset, tm, ts, theta, closed, t_next):
    """The predicted crossing after an event at t_last (as :func:`~._kernels.scan_forward`): inf where
    :func:`~._kernels.below_until` shows V stays below theta until t_next (the next known arrival)."""
    if ref_end > t_last:
        i0 = state_at(v, cur, t_last, ref_end, reset, tm, ts, ref_end)[1]
        return ref_end + biased_crossing(reset, i0, tm, ts, theta, closed, 0.0)
    if below_until(v, cur, tm, ts, theta, t_next - t_last):
        return np.inf
    if theta >= 0.0:     # (biased_crossing is then next_crossing) no root search past t_next
        return t_last + crossing_within(v, cur, tm, ts, theta, closed, t_next - t_last)
    return t_last + biased_crossing(v, cur, tm, ts, theta, closed, 0.0)


# columns of the state rows: V (u = V - bias), I, t_last, ref_end, predicted crossing
_V, _I, _TL, _RE, _PRED = 0, 1, 2, 3, 4
# columns of the position rows: next input arrival, next sample, and (tentative rows) what the scan stopped at
_A, _SP, _KIND, _TC = 0, 1, 2, 3
_AT_SPIKE, _AT_RECURRENT, _AT_LIMIT = 0, 1, 2
#: arrivals one tentative scan takes at most before it stops (and is resumed as an event of the
#: index): a neuron would otherwise scan to its next crossing, maybe the end of the trial, and scan
#: all that again after each arrival pushed before it. forward_group's CPU ms per trial for 8, 16,
#: 32, 64 (fastest of 3, one run each, shared machine): 265, 235, 213, 227 at SHD size
#: (bench/gradient.py's recurrent network) and 449, 410, 422, 449 on bench/forward.py's sparse
#: 1000-neuron network.
SCAN_LIMIT = 32
#: the steps a block of input arrivals counts for in a tentative scan (besides its recurrent arrivals)
BLOCK_STEPS = 4
#: a tentative scan stops GUARD_BUCKETS time buckets after its front bucket's, so that the
#: pending arrivals (front bucket to now + the largest delay) stay within the ring of N_BUCKETS
GUARD_BUCKETS = 29
#: time buckets over the largest recurrent delay (at most N_BUCKETS - 3 - GUARD_BUCKETS, so that the
#: ring holds the pending arrivals). Results do not depend on it; each bucket a neuron's scan reaches
#: is an event of the index (its first arrival), each bucket that becomes a neuron's front is sorted.
#: forward_group's CPU ms on SHD-size trials (bench/gradient.py's recurrent network; 3 trials, fastest
#: of 10, paired, load 3.5-3.9) with 32 -> 16: 242 -> 230, 246 -> 233, 232 -> 227; 16 -> 8: 0.994x
#: (bench/ab_revisions.py recurrent-forward, 8 trials, 16 rounds, 1 thread, 2026-11-27), so 16 stays.
BUCKETS_PER_DELAY = 16
#: time buckets per input arrival in the counting sort of a neuron's input arrivals (:func:`_group_setup`;
#: the order does not depend on it). bench/gradient.py's recurrent network, 2 trials on one thread, in one
#: process with the code of 1 (interleaved, 16 runs each, 2026-11-27): forward 0.985x with 2, 0.95-0.98x
#: with 4 (a counting array of 4 entries per arrival); 2 kept.
SETUP_BUCKETS = 2
#: the bits of k in an arrival packed into 32 bits (:data:`~._kernels.K_BITS`)
NARROW_K_BITS = K_BITS[np.dtype(np.uint32)]


@njit(cache=True, nogil=True)
def _group_loop(members, tau_m, tau_s, theta, reset, refractory, closed, in_w, t_end, sample_times, col_of,
                samples, max_spikes, v_off, ext_ptr, ext_n, ext_t, ext_q, block, blk, rec_ptr, rec_post, rec_d, rec_q,
                mult, cst, tst, cpos, tpos, end_t, end_q, key, item, pos, todo, bk, bm, occ, inv_width,
                r_t, r_n, r_g, counters, t_win, l0, rec_post_part, inbox, inbox_n, outbox):
    """Process the group's events in time order until t_end, or until a bucket or the record is full
    (then return _NEED_PENDING / _NEED_RECORDS with the state intact, else _DONE).

    The group may be one partition of a larger one (:func:`forward_partitioned`: the arrays of its
    neurons, local indices 0.., are views of the whole group's, l0 being the whole group's local
    index of its first neuron; rec_ptr, rec_post, rec_d, rec_q are the whole group's, rec_post_part
    is rec_post in the partition's local indices, negative for a target in another partition). It
    then first pushes into its buckets the arrivals at its neurons of the spikes of the other
    partitions' last window (inbox[s, :inbox_n[s]] of partition s: (time, whole-group local index)),
    stops before its first event at t_win or later, and writes its spikes to outbox (_NEED_OUTBOX
    when full). A whole group: l0 = 0, rec_post_part = rec_post, no inbox (shape (0, 0, 2)) and no
    outbox (shape (0, 0)), t_win = inf.

    Local neuron l (global members[l]) has a committed state (cst, cpos, and the head of its
    front bucket: after its last index event) and a tentative one (tst, tpos): the committed
    state carried through its input arrivals and the pending recurrent arrivals of its front
    bucket (tpos[l, _TC] of them) up to the first of: its first crossing, the first pending
    recurrent arrival of a later bucket, SCAN_LIMIT arrivals, or GUARD_BUCKETS buckets past the
    front (the key of l in the indexed heap key/item/pos, where it resumes). The tentative state
    holds until (end_t, end_q), before which a newly pushed recurrent arrival sends l back to its
    committed state (a rescan). Neurons to (re)scan are listed in todo (todo[n_g]: their number).
    Every helper called here takes at most two arrays, so that numba's reference counting stays
    out of the loop's cost.
    """
    n_g = members.shape[0]
    n_spk = counters[_NSPK]
    status = counters[_STATUS]
    n_ob = counters[_NOB]
    cap = bk.shape[2] // 2
    n_samples = sample_times.shape[0]
    n_src = inbox_n.shape[0]
    pull_s, pull_e = counters[_PULL_S], counters[_PULL_E]   # the next spike of the inbox to push
    fill = counters[_FILL]
    n_blocks = counters[_BLOCKS]
    srt_t = np.empty(2 * cap)                # workspaces of _sort_bucket
    srt_n = np.empty(cap + 1, np.int64)
    code = _DONE
    while True:
        # ---- (re)scan the neurons in todo, tentatively, and re-key them (once the inbox is pushed)
        n_scan = todo[n_g] if pull_s == n_src else 0
        for k in range(n_scan):
            u = todo[k]
            j = members[u]
            tm, ts, th, rs, cl, col = tau_m[j], tau_s[j], theta[j], reset[j], closed[j], col_of[j]
            # the front bucket's pending arrivals from its head on (sorted), then the first of a later one
            nb = bm[u, _FRONT, 1]
            bt = np.inf
            bq = 0.0
            f_sl = 0
            f_hd = 0
            f_n = 0                           # pending arrivals of the front bucket
            guard = np.inf
            if nb > 0:
                fb = bm[u, _FRONT, 0]
                f_sl = fb % N_BUCKETS
                f_hd = bm[u, f_sl, 1]
                f_n = bm[u, f_sl, 0] - f_hd
                guard = (fb + GUARD_BUCKETS) / inv_width
            later = nb > f_n                  # pending arrivals in later buckets
            tc = 0
            if tc < f_n:
                bt, bq = bk[u, f_sl, 2 * f_hd], bk[u, f_sl, 2 * f_hd + 1]
            elif later:
                bt, bq = _bucket_min(bk, bm, occ, u, f_sl)
            v, cur, t_last, ref_end, pred = cst[u, _V], cst[u, _I], cst[u, _TL], cst[u, _RE], cst[u, _PRED]
            a, sp = cpos[u, _A], cpos[u, _SP]
            lo = ext_ptr[u]
            n = ext_n[u]
            ns = n_samples if col >= 0 else 0
            steps = 0
            kind = _AT_SPIKE
            while True:
                t_a = np.inf
                q_a = 0
                if a < n:
                    t_a = ext_t[lo + a]
                    q_a = np.int64(ext_q[lo + a])
                is_rec = _before(bt, bq, t_a, float(q_a))
                t_n = bt if is_rec else t_a
                if min(pred, t_n) > guard:    # resume at the guard (the front bucket is used up)
                    bt, bq = guard, -2.0
                    kind = _AT_LIMIT
                    break
                if pred <= t_n:
                    break                     # a spike at pred comes first
                if t_n > t_end:
                    bt, bq = t_n, 0.0         # nothing more before the end (unless a push comes)
                    kind = _AT_LIMIT
                    break
                if is_rec and tc == f_n:      # the first arrival of a later bucket: an event of the index
                    kind = _AT_RECURRENT
                    break
                if steps >= SCAN_LIMIT:       # resume at this arrival later (pred lies after it)
                    if not is_rec:
                        bt, bq = t_a, float(q_a)
                    kind = _AT_LIMIT
                    break
                if block > 0 and not is_rec and a % block == 0 and a + block <= n and pred == np.inf \
                        and ref_end <= t_last:
                    # a block of input arrivals (and the pending recurrent ones among them) at once, if V
                    # provably stays below theta until its last arrival (t_l, q_l): V <= v + span (free
                    # rise + each excitatory arrival's, at most 1/tau_m per unit weight), as scan_binned's
                    # bins; not past the front bucket (unless no later arrival comes first), nor a sample
                    b_last = lo + a + block - 1
                    b_row = b_last // block
                    t_l = ext_t[b_last]
                    q_l = float(ext_q[b_last])
                    span = (t_l - t_last) / tm
                    free = free_rise(v, cur)
                    w_pos = blk[b_row, 2]
                    n_rec = 0                  # the pending recurrent arrivals before (t_l, q_l)
                    ok = t_l <= guard and (sp == ns or sample_times[sp] >= t_l)
                    while ok and tc + n_rec < f_n:
                        r_at = f_hd + tc + n_rec
                        if not _before(bk[u, f_sl, 2 * r_at], bk[u, f_sl, 2 * r_at + 1], t_l, q_l):
                            break
                        w_pos += max(in_w[np.int64(bk[u, f_sl, 2 * r_at + 1])], 0.0)
                        n_rec += 1
                    rise = span * (free + w_pos)
                    ok = ok and v + rise < th - 1e-9 * (abs(v) + rise + abs(th))
                    nxt_t, nxt_q = bt, bq      # the first pending recurrent arrival after the block
                    if ok and tc + n_rec < f_n:
                        r_at = f_hd + tc + n_rec
                        nxt_t, nxt_q = bk[u, f_sl, 2 * r_at], bk[u, f_sl, 2 * r_at + 1]
                    elif ok and tc < f_n:
                        nxt_t, nxt_q = np.inf, 0.0
                        if later:
                            nxt_t, nxt_q = _bucket_min(bk, bm, occ, u, f_sl)
                    if ok and _before(t_l, q_l, nxt_t, nxt_q):
                        v, cur = state_at(v, cur, t_last, ref_end, rs, tm, ts, t_l)
                        kk = ts / (tm - ts)
                        cur += blk[b_row, 0]
                        v += kk * (blk[b_row, 1] - blk[b_row, 0])
                        for r_k in range(n_rec):
                            r_at = f_hd + tc + r_k
                            r_dt = bk[u, f_sl, 2 * r_at] - t_l
                            r_w = in_w[np.int64(bk[u, f_sl, 2 * r_at + 1])]
                            e_s = math.exp(r_dt / ts)
                            cur += r_w * e_s
                            v += kk * r_w * (math.exp(r_dt / tm) - e_s)
                        t_last = t_l
                        a += block
                        tc += n_rec
                        steps += BLOCK_STEPS + n_rec
                        n_blocks += 1
                        bt, bq = nxt_t, nxt_q
                        t_next = min(ext_t[lo + a] if a < n else np.inf, bt, t_end)
                        pred = _predict(v, cur, t_last, ref_end, rs, tm, ts, th, cl, t_next)
                        continue
                steps += 1
                while sp < ns and sample_times[sp] < t_n:
                    samples[sp, col] = state_at(v, cur, t_last, ref_end, rs, tm, ts, sample_times[sp])[0] + v_off[j]
                    sp += 1
                v, cur = state_at(v, cur, t_last, ref_end, rs, tm, ts, t_n)
                t_last = t_n
                if is_rec:
                    cur += in_w[np.int64(bq)]
                    tc += 1
                    if tc < f_n:
                        bt, bq = bk[u, f_sl, 2 * (f_hd + tc)], bk[u, f_sl, 2 * (f_hd + tc) + 1]
                    elif later:
                        bt, bq = _bucket_min(bk, bm, occ, u, f_sl)
                    else:
                        bt, bq = np.inf, 0.0
                else:
                    cur += in_w[q_a]
                    a += 1
                t_next = min(ext_t[lo + a] if a < n else np.inf, bt, t_end)
                pred = _predict(v, cur, t_last, ref_end, rs, tm, ts, th, cl, t_next)
            tst[u, _V], tst[u, _I], tst[u, _TL], tst[u, _RE], tst[u, _PRED] = v, cur, t_last, ref_end, pred
            tpos[u, _A], tpos[u, _SP], tpos[u, _KIND], tpos[u, _TC] = a, sp, kind, tc
            if kind == _AT_SPIKE:
                end_t[u], end_q[u] = pred, -1.0
                new = pred
            else:
                end_t[u], end_q[u] = bt, bq
                new = bt
            # re-key u in the indexed heap (the sifts of events.heap, written out here: calling
            # indexed_sift_up / indexed_sift_down instead gave the same bits but was 6-9 % slower on
            # bench/gradient.py's recurrent network, 16 trials, 2 threads, measured 2026-11-27)
            old = key[u]
            key[u] = new
            c = pos[u]
            if new < old:
                while c > 0:
                    parent = (c - 1) >> 1
                    ip = item[parent]
                    if key[ip] <= new:
                        break
                    item[c] = ip
                    pos[ip] = c
                    c = parent
            else:
                while True:
                    child = 2 * c + 1
                    if child >= n_g:
                        break
                    ic = item[child]
                    if child + 1 < n_g and key[item[child + 1]] < key[ic]:
                        child += 1
                        ic = item[child]
                    if new <= key[ic]:
                        break
                    item[c] = ic
                    pos[ic] = c
                    c = child
            item[c] = u
            pos[u] = c
        todo[n_g] -= n_scan
        # ---- the next thing to do: push the arrivals of the next spike of the inbox, else the next
        # event of the group: a spike or a recurrent arrival of neuron l, or where its scan stopped
        pulling = pull_s < n_src
        if pulling:
            if pull_e == inbox_n[pull_s]:
                pull_s += 1
                pull_e = 0
                continue
            t_now = inbox[pull_s, pull_e, 0]
            src = np.int64(inbox[pull_s, pull_e, 1])
            l = -1
            is_spike = False
            if l0 <= src < l0 + n_g:          # its own spike (pushed already)
                pull_e += 1
                continue
        else:
            l = item[0]
            t_now = key[l]
            if t_now > t_end or t_now >= t_win:
                break
            src = l0 + l
            j = members[l]
            tm, ts, th, rs = tau_m[j], tau_s[j], theta[j], reset[j]
            kind = tpos[l, _KIND]
            is_spike = kind == _AT_SPIKE
            if is_spike:
                if n_spk == r_t.shape[0]:
                    code = _NEED_RECORDS
                    break
                if outbox.shape[1] > 0 and n_ob == outbox.shape[0]:
                    code = _NEED_OUTBOX
                    break
        if (pulling or is_spike) and fill + mult > cap:
            # room for the spike's arrivals in every bucket (at most mult in one): checked against the
            # most any bucket has held, not bucket by bucket (a pass over the spike's synapses)
            code = _NEED_PENDING
            break
        if not pulling:
            # commit the tentative scan up to t_now (its recurrent arrivals leave the front bucket), then the event
            v, cur, t_last, ref_end = tst[l, _V], tst[l, _I], tst[l, _TL], tst[l, _RE]
            a = tpos[l, _A]
            sp = tpos[l, _SP]
            col = col_of[j]
            if col >= 0:
                while sp < n_samples and sample_times[sp] < t_now:
                    samples[sp, col] = state_at(v, cur, t_last, ref_end, rs, tm, ts, sample_times[sp])[0] + v_off[j]
                    sp += 1
            for rep in range(2):
                if rep == 0:
                    take = tpos[l, _TC]
                else:
                    take = 1 if kind == _AT_RECURRENT else 0
                    if take:                      # the first arrival of the next bucket, now the front
                        v, cur = state_at(v, cur, t_last, ref_end, rs, tm, ts, t_now)
                        t_last = t_now
                        sl = bm[l, _FRONT, 0] % N_BUCKETS
                        cur += in_w[np.int64(bk[l, sl, 2 * bm[l, sl, 1] + 1])]
                if take == 0:
                    continue
                # remove them from the front bucket (as _pending_pop, inline)
                sl = bm[l, _FRONT, 0] % N_BUCKETS
                bm[l, sl, 1] += take
                bm[l, _FRONT, 1] -= take
                if bm[l, sl, 1] == bm[l, sl, 0]:
                    bm[l, sl, 0] = 0
                    bm[l, sl, 1] = 0
                    occ[l] &= ~(np.uint64(1) << np.uint64(sl))
                    if bm[l, _FRONT, 1] > 0:
                        # the next occupied slot in ring order: the lowest set bit above sl, else the lowest
                        nxt = _next_slot(occ[l], sl)
                        b = bm[l, _FRONT, 0] + (nxt - sl) % N_BUCKETS
                        bm[l, _FRONT, 0] = b
                        sl = b % N_BUCKETS
                        _sort_bucket(bk, l, sl, bm[l, sl, 1], bm[l, sl, 0], b, inv_width, srt_t, srt_n)
            if is_spike:
                _, cur = state_at(v, cur, t_last, ref_end, rs, tm, ts, t_now)
                t_last = t_now
                r_t[n_spk] = t_now
                r_n[n_spk] = j
                r_g[n_spk] = cur - th
                n_spk += 1
                v = rs
                ref_end = t_now + refractory[j]
                if outbox.shape[1] > 0:        # for the other partitions, after the window
                    outbox[n_ob, 0] = t_now
                    outbox[n_ob, 1] = src
                    n_ob += 1
        if pulling or is_spike:
            # the spike's arrivals at this group's (partition's) neurons: sorted into the front
            # bucket, appended to others
            for c in range(rec_ptr[src], rec_ptr[src + 1]):
                t_arr = t_now + rec_d[c]
                if t_arr > t_end:
                    continue
                post = rec_post_part[c] if l >= 0 else rec_post[c] - l0
                if post < 0 or post >= n_g:
                    continue
                q = rec_q[c]
                fq = float(q)
                b = np.int64(t_arr * inv_width)
                sl = b % N_BUCKETS
                if bm[post, _FRONT, 1] == 0 or b < bm[post, _FRONT, 0]:
                    bm[post, _FRONT, 0] = b
                    bk[post, sl, 0] = t_arr
                    bk[post, sl, 1] = fq
                    bm[post, sl, 0] = 1
                    bm[post, sl, 1] = 0
                    occ[post] |= np.uint64(1) << np.uint64(sl)
                    fill = max(fill, 1)
                else:
                    k = bm[post, sl, 0]
                    if k == 0:
                        occ[post] |= np.uint64(1) << np.uint64(sl)
                    _sift_into(bk, post, sl, bm[post, sl, 1] if b == bm[post, _FRONT, 0] else k, k, t_arr, fq)
                    bm[post, sl, 0] = k + 1
                    fill = max(fill, k + 1)
                bm[post, _FRONT, 1] += 1
                if post != l and _before(t_arr, fq, end_t[post], end_q[post]):
                    end_t[post] = -np.inf            # queued for a rescan (once)
                    todo[todo[n_g]] = post
                    todo[n_g] += 1
        if pulling:
            pull_e += 1
            continue
        t_x = ext_t[ext_ptr[l] + a] if a < ext_n[l] else np.inf
        t_r = np.inf
        if bm[l, _FRONT, 1] > 0:
            sl = bm[l, _FRONT, 0] % N_BUCKETS
            t_r = bk[l, sl, 2 * bm[l, sl, 1]]
        cst[l, _V], cst[l, _I], cst[l, _TL], cst[l, _RE] = v, cur, t_last, ref_end
        cst[l, _PRED] = _predict(v, cur, t_last, ref_end, rs, tm, ts, th, closed[j], min(t_x, t_r, t_end))
        cpos[l, _A], cpos[l, _SP] = a, sp
        todo[todo[n_g]] = l
        todo[n_g] += 1
        if n_spk > max_spikes:
            status = STATUS_TOO_MANY_SPIKES
            break
    counters[_NSPK] = n_spk
    counters[_STATUS] = status
    counters[_NOB] = n_ob
    counters[_PULL_S] = pull_s
    counters[_PULL_E] = pull_e
    counters[_FILL] = fill
    counters[_BLOCKS] = n_blocks
    return code


@njit(cache=True, inline="always")
def _next_slot(bits, sl):
    """The next occupied slot after sl in ring order (bits: the occupied slots; one other than sl is set)."""
    x = bits >> np.uint64(sl + 1) if sl + 1 < N_BUCKETS else np.uint64(0)
    if x != 0:
        return sl + 1 + np.int64(math.log2(float(x & (~x + np.uint64(1)))))
    return np.int64(math.log2(float(bits & (~bits + np.uint64(1)))))


@njit(cache=True)
def _bucket_min(bk, bm, occ, u, f_sl):
    """The first pending arrival (time, q) of neuron u after its front bucket (slot f_sl): the least
    entry of the next occupied bucket (unsorted until it becomes the front)."""
    sl = _next_slot(occ[u] & ~(np.uint64(1) << np.uint64(f_sl)), f_sl)
    bt, bq = bk[u, sl, 0], bk[u, sl, 1]
    for e in range(1, bm[u, sl, 0]):
        if _before(bk[u, sl, 2 * e], bk[u, sl, 2 * e + 1], bt, bq):
            bt, bq = bk[u, sl, 2 * e], bk[u, sl, 2 * e + 1]
    return bt, bq


@njit(cache=True, nogil=True)
def _group_setup(bounds, members, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, closed, s_start, s_end, s_time,
                 t_end, u_init, i_init, v_off, rec_ptr, rec_post, rec_d, block, spk_fs, spk_fm, syn_fs, syn_fm):
    """The state of a recurrent group before its first event, for :func:`_group_loop` on its
    partitions (local neurons bounds[p]..bounds[p+1]-1; [0, n_g] for the whole group): its input
    arrivals sorted per neuron (ext_ptr, ext_n, ext_t, ext_q), the bucket width (inv_width: buckets
    per second), mult (the most synapses from one neuron of the group onto another: the arrivals
    one spike adds to one bucket), the committed and tentative states (cst, tst, cpos, tpos,
    end_t, end_q), each partition's index of next events over its own local indices (key, item,
    pos) and list of neurons to scan (todo: rows bounds[p] + p.., its count after them), and the
    empty buckets (bk, bm, occ)."""
    n_g = members.shape[0]
    # the input arrivals of every neuron, sorted by (time, synapse); with blocks, each neuron's from a
    # multiple of `block` on
    ext_ptr = np.zeros(n_g + 1, np.int64)
    bound = np.empty(n_g, np.int64)            # the most input arrivals of each neuron
    fan_in = 0
    for l in range(n_g):
        m = incoming_count(members[l], in_ptr, in_pre, s_start, s_end)
        fan_in = max(fan_in, in_ptr[members[l] + 1] - in_ptr[members[l]])
        bound[l] = m
        ext_ptr[l + 1] = ext_ptr[l] + (m if block == 0 else -(-m // block) * block)
    mmax = bound.max() if n_g > 0 else 0
    counts = np.empty(SETUP_BUCKETS * mmax + 1, np.uint32)
    gen = np.empty(fan_in + mmax, np.uint32)
    ext_t = np.empty(ext_ptr[n_g])
    ext_q = np.empty(ext_ptr[n_g], np.uint32)   # 12 bytes per arrival with its time: the scans are memory-bound
    ext_n = np.zeros(n_g, np.int64)
    blk = np.empty((ext_ptr[n_g] // block if block > 0 else 0, 3))
    spk = np.empty(mmax, np.uint32)             # the spike (position in s_time) of each arrival
    # the arrivals packed while they are placed (_sorted_arrivals): in 32 bits where they fit
    narrow = packing_fits(fan_in, s_time.shape[0], NARROW_K_BITS, 32)
    packed32 = np.empty(mmax if narrow else 0, np.uint32)
    packed64 = np.empty(0 if narrow else mmax, np.uint64)
    for l in range(n_g):
        lo, hi = ext_ptr[l], ext_ptr[l] + bound[l]
        if hi > lo:
            nb = SETUP_BUCKETS * bound[l]
            if narrow:
                ext_n[l] = _sorted_arrivals(members[l], in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb,
                                            counts, gen, packed32, ext_t[lo:hi], ext_q[lo:hi], spk)
            else:
                ext_n[l] = _sorted_arrivals(members[l], in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb,
                                            counts, gen, packed64, ext_t[lo:hi], ext_q[lo:hi], spk)
            if block > 0:
                _block_sums(block, ext_n[l], lo, ext_q, spk, in_w, spk_fs, spk_fm, syn_fs, syn_fm, blk)
    # committed state per neuron
    cst = np.zeros((n_g, 5))
    for l in range(n_g):
        j = members[l]
        cst[l, _V] = u_init[j]
        cst[l, _I] = i_init[j]
        cst[l, _RE] = -np.inf
        cst[l, _PRED] = np.inf
        if u_init[j] != 0.0 or i_init[j] != 0.0 or v_off[j] != 0.0:
            cst[l, _PRED] = biased_crossing(u_init[j], i_init[j], tau_m[j], tau_s[j], theta[j], closed[j], 0.0)
    # pending recurrent arrivals: time buckets per neuron over the largest recurrent delay (with margin)
    d_max = 0.0
    for c in range(rec_ptr[n_g]):
        d_max = max(d_max, rec_d[c])
    inv_width = BUCKETS_PER_DELAY / d_max if d_max > 0.0 else 1.0
    mult = 1
    seen = np.zeros(n_g, np.int64)
    for l in range(n_g):
        for c in range(rec_ptr[l], rec_ptr[l + 1]):
            seen[rec_post[c]] += 1
            mult = max(mult, seen[rec_post[c]])
        for c in range(rec_ptr[l], rec_ptr[l + 1]):
            seen[rec_post[c]] = 0
    tst = cst.copy()
    cpos = np.zeros((n_g, 2), np.int64)
    tpos = np.zeros((n_g, 4), np.int64)
    end_t = np.full(n_g, np.inf)
    end_q = np.zeros(n_g)
    key = np.full(n_g, np.inf)
    n_p = bounds.shape[0] - 1
    item = np.empty(n_g, np.int64)
    todo = np.empty(n_g + n_p, np.int64)
    for p in range(n_p):
        for l in range(bounds[p], bounds[p + 1]):
            item[l] = l - bounds[p]
            todo[l + p] = l - bounds[p]
        todo[bounds[p + 1] + p] = bounds[p + 1] - bounds[p]
    pos = item.copy()
    cap = 8
    bk = np.empty((n_g, N_BUCKETS, 2 * cap))
    bm = np.zeros((n_g, N_BUCKETS + 1, 2), np.int64)
    occ = np.zeros(n_g, np.uint64)           # bit s: slot s holds pending arrivals
    return (ext_ptr, ext_n, ext_t, ext_q, blk, inv_width, mult, cst, tst, cpos, tpos, end_t, end_q, key, item, pos,
            todo, bk, bm, occ)


@njit(cache=True, nogil=True)
def _sorted_arrivals(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, counts, gen, packed, arr_t, arr_q,
                     arr_k):
    """Neuron j's arrivals t_spike + d <= t_end sorted by (time, synapse q, spike), as
    :func:`~._kernels.gather_sorted` sorts them (a stable counting sort on nb time buckets over [0,
    t_end], generation order within a bucket, then a stable insertion sort): times to arr_t, synapses
    to arr_q, the spikes' positions in s_time to arr_k; returns their number.

    The counting sort is :func:`~._kernels.bin_arrivals`' without the sums: one pass computes each
    arrival's bucket and the counts (:func:`~._kernels.count_bins`), a second places the arrivals,
    packed (:func:`~._kernels.pack_arrival`) into `packed` (uint32 or uint64, as
    :func:`~._kernels.packing` chooses), without a bucket's computation
    (:func:`~._kernels.place_packed`); a third unpacks them in order, with their times, into arr_*.
    Scattering one 4-byte integer per arrival instead of 20 bytes in three arrays: 0.77-0.79x the
    cost of gather_sorted (the 256 neurons of bench/gradient.py's recurrent group in one trial, 15
    runs of each alternating, three runs, 2026-11-28; the same order bit for bit). counts (uint32): nb
    + 1 entries; gen (uint32): fan-in plus the arrivals; packed: the arrivals."""
    m = count_bins(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, nb, counts, gen, None, None, None, None)
    place_packed(j, in_ptr, in_pre, s_start, nb, counts, gen, packed)
    q0 = in_ptr[j]
    bits = k_bits(packed)
    for a in range(m):
        q, k = unpack_arrival(packed[a], q0, bits)
        arr_t[a] = s_time[k] + in_d[q]
        arr_q[a] = q
        arr_k[a] = k
    sort_range(0, m, arr_t, arr_q, arr_k, True)
    return m


@njit(cache=True, nogil=True)
def _block_sums(block, n, lo, ext_q, spk, in_w, spk_fs, spk_fm, syn_fs, syn_fm, blk):
    """The sums of each full block of `block` sorted input arrivals of a neuron (its n arrivals from
    ext_*[lo] on, lo a multiple of block; spk: their spikes' positions, from 0): row (lo + a) // block
    of blk for the block a.. holds sum w exp(-(t_L - t)/tau_s), sum w exp(-(t_L - t)/tau_m) (t_L: the
    block's last arrival) and the sum of its positive weights. The exponentials are factored,
    exp(t/tau) = (spike's factor) (synapse's factor), so no exponential is evaluated here."""
    for a0 in range(0, n - block + 1, block):
        c_s = 0.0
        c_m = 0.0
        w_pos = 0.0
        f_s = 1.0
        f_m = 1.0
        for a in range(a0, a0 + block):
            q = ext_q[lo + a]
            k = spk[a]
            w = in_w[q]
            f_s = spk_fs[k] * syn_fs[q]
            f_m = spk_fm[k] * syn_fm[q]
            c_s += w * f_s
            c_m += w * f_m
            w_pos += max(w, 0.0)
        g = (lo + a0) // block
        blk[g, 0] = c_s / f_s
        blk[g, 1] = c_m / f_m
        blk[g, 2] = w_pos


@njit(cache=True, nogil=True)
def _grown_buckets(bk, bm, cap, mult):
    """bk with room for 2 cap + mult arrivals per bucket (the pending ones copied); returns it and its capacity."""
    cap = 2 * cap + mult
    new_bk = np.empty((bk.shape[0], N_BUCKETS, 2 * cap))
    for l in range(bk.shape[0]):
        for b in range(N_BUCKETS):
            for c in range(2 * bm[l, b, 0]):
                new_bk[l, b, c] = bk[l, b, c]
    return new_bk, cap


@njit(cache=True, nogil=True)
def _final_samples(members, tst, tpos, reset, tau_m, tau_s, t_end, sample_times, col_of, samples, v_off):
    """The samples after the last event of each neuron (its tentative scan has reached t_end)."""
    for l in range(members.shape[0]):
        j = members[l]
        col = col_of[j]
        if col < 0:
            continue
        for s in range(tpos[l, _SP], sample_times.shape[0]):
            if sample_times[s] > t_end:
                break
            samples[s, col] = state_at(tst[l, _V], tst[l, _I], tst[l, _TL], tst[l, _RE], reset[j], tau_m[j],
                                       tau_s[j], sample_times[s])[0] + v_off[j]


@njit(cache=True, nogil=True)
def forward_group(members, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory, closed,
                  s_start, s_end, s_time, t_end, sample_times, col_of, samples, max_spikes, u_init, i_init, v_off,
                  rec_ptr, rec_post, rec_d, rec_q, block, spk_fs, spk_fm, syn_fs, syn_fm):
    """Exact forward simulation of one recurrent group (LIF neurons `members`, global indices) in one trial.

    in_*: the post-major synapse table (every incoming synapse q of neuron j in
    in_ptr[j]..in_ptr[j+1]-1: presynaptic neuron, total delay s, weight); the
    spikes of the earlier layers in s_time (grouped by neuron: s_start/s_end, the
    group's own neurons empty). rec_*: the group's own synapses, grouped by
    presynaptic local index (rec_ptr), with the postsynaptic local index, delay
    and the synapse's q. theta, reset: bias-shifted (theta - b, reset - b); u_init
    = V(0) - b, i_init = I(0), v_off = b (see :func:`~._kernels.scan_forward`).
    V of neurons with col_of >= 0 goes to samples[:, col] at sample_times.
    block > 0 (the group's neurons of one tau_m and one tau_s): input arrivals in
    blocks of `block` that a scan adds at once where V provably stays below theta
    (see the module's docstring), with exp(t/tau_s), exp(t/tau_m) of each spike of
    s_time in spk_fs, spk_fm and exp(d/tau_s), exp(d/tau_m) of each synapse in
    syn_fs, syn_fm; 0: none (the factors are not read).

    Returns (spike times, global neurons, I - theta, status, blocks): the spikes in
    time order, STATUS_TOO_MANY_SPIKES if more than max_spikes were emitted, and the
    number of blocks added at once (a diagnostic).
    """
    whole = np.array([0, members.shape[0]])
    (ext_ptr, ext_n, ext_t, ext_q, blk, inv_width, mult, cst, tst, cpos, tpos, end_t, end_q, key, item, pos, todo,
     bk, bm, occ) = _group_setup(whole, members, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, closed, s_start,
                                 s_end, s_time, t_end, u_init, i_init, v_off, rec_ptr, rec_post, rec_d, block, spk_fs,
                                 spk_fm, syn_fs, syn_fm)
    cap = bk.shape[2] // 2
    r_t = np.empty(1024)
    r_n = np.empty(1024, np.int64)
    r_g = np.empty(1024)
    counters = np.zeros(_N_COUNTERS, np.int64)
    no_inbox = np.empty((0, 0, 2))
    no_inbox_n = np.empty(0, np.int64)
    no_outbox = np.empty((0, 0))
    while True:
        code = _group_loop(members, tau_m, tau_s, theta, reset, refractory, closed, in_w, t_end, sample_times,
                           col_of, samples, max_spikes, v_off, ext_ptr, ext_n, ext_t, ext_q, block, blk, rec_ptr,
                           rec_post, rec_d, rec_q, mult, cst, tst, cpos, tpos, end_t, end_q, key, item, pos, todo,
                           bk, bm, occ, inv_width, r_t, r_n, r_g, counters, np.inf, 0, rec_post, no_inbox, no_inbox_n,
                           no_outbox)
        if code == _NEED_PENDING:
            bk, cap = _grown_buckets(bk, bm, cap, mult)
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
        _final_samples(members, tst, tpos, reset, tau_m, tau_s, t_end, sample_times, col_of, samples, v_off)
    return r_t[:n_spk].copy(), r_n[:n_spk].copy(), r_g[:n_spk].copy(), status, counters[_BLOCKS]


@njit(cache=True, nogil=True)
def _partition_window(p, bounds, members, tau_m, tau_s, theta, reset, refractory, closed, in_w, t_end,
                      sample_times, col_of, samples, max_spikes, v_off, ext_ptr, ext_n, ext_t, ext_q, block, blk,
                      rec_ptr, rec_post, rec_d, rec_q, mult, cst, tst, cpos, tpos, end_t, end_q, key, item, pos,
                      todo, bk, bm, occ, inv_width, r_t, r_n, r_g, counters, t_win, rec_post_part, inbox, inbox_n,
                      outbox):
    """:func:`_group_loop` on partition p (local neurons bounds[p]..bounds[p+1]-1) of a group: the
    views of its rows of the whole group's arrays (todo: rows l0 + p .. l1 + p, its count last)."""
    l0, l1 = bounds[p], bounds[p + 1]
    return _group_loop(members[l0:l1], tau_m, tau_s, theta, reset, refractory, closed, in_w, t_end, sample_times,
                       col_of, samples, max_spikes, v_off, ext_ptr[l0:l1 + 1], ext_n[l0:l1], ext_t, ext_q, block,
                       blk, rec_ptr, rec_post, rec_d, rec_q, mult, cst[l0:l1], tst[l0:l1], cpos[l0:l1],
                       tpos[l0:l1], end_t[l0:l1], end_q[l0:l1], key[l0:l1], item[l0:l1], pos[l0:l1],
                       todo[l0 + p:l1 + p + 1], bk[l0:l1], bm[l0:l1], occ[l0:l1], inv_width, r_t[p], r_n[p], r_g[p],
                       counters[p], t_win, l0, rec_post_part, inbox, inbox_n, outbox[p])


@njit(cache=True, nogil=True, parallel=True)
def forward_partitioned(bounds, d_win, members, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory,
                        closed, s_start, s_end, s_time, t_end, sample_times, col_of, samples, max_spikes, u_init,
                        i_init, v_off, rec_ptr, rec_post, rec_d, rec_q, block, spk_fs, spk_fm, syn_fs, syn_fm,
                        rec_post_part):
    """:func:`forward_group` with the group's local neurons split into partitions (bounds: P + 1
    ascending local indices) simulated in parallel (numba threads), in lock-step windows.

    A window starts at T, the time of the group's next event (no partition has an event before it),
    and ends at T + d_win, d_win > 0 being at most the smallest delay of a synapse between two
    partitions: a spike emitted in the window arrives at another partition at T + d_win or later,
    so each partition processes its events before the window's end alone (:func:`_group_loop`,
    writing its spikes to its outbox), and pushes the arrivals of the other partitions' spikes at
    its neurons into its buckets at the start of the next window. rec_post_part: rec_post where pre
    and post lie in one partition (as the partition's local index: post - its first), else -1 - post.
    Each neuron's pending arrivals, and what is known of them when it is scanned, then differ from
    :func:`forward_group`'s only in when arrivals are pushed, not in which arrivals it applies or in
    the order and arithmetic of its events (a scan that went past a pushed arrival is redone from
    the committed state; a crossing predicted with fewer arrivals known lies after the next one):
    its spikes and samples are the same bit for bit (up to the rounding of an exact root search at
    the end of a below-threshold bound; whether a block of input arrivals is added at once depends only on
    the state and the arrivals before its end, all known by then). Returns forward_group's result, its
    spikes grouped by partition (in time order within one).
    """
    n_p = bounds.shape[0] - 1
    (ext_ptr, ext_n, ext_t, ext_q, blk, inv_width, mult, cst, tst, cpos, tpos, end_t, end_q, key, item, pos, todo,
     bk, bm, occ) = _group_setup(bounds, members, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, closed, s_start,
                                 s_end, s_time, t_end, u_init, i_init, v_off, rec_ptr, rec_post, rec_d, block, spk_fs,
                                 spk_fm, syn_fs, syn_fm)
    cap = bk.shape[2] // 2
    r_t = np.empty((n_p, 1024))
    r_n = np.empty((n_p, 1024), np.int64)
    r_g = np.empty((n_p, 1024))
    counters = np.zeros((n_p, _N_COUNTERS), np.int64)
    # outboxes, the spikes (time, whole-group local index) of each partition in the window being
    # run (side par) and in the last one (1 - par)
    ob = np.empty((2, n_p, 16, 2))
    ob_n = np.zeros((2, n_p), np.int64)
    codes = np.zeros(n_p, np.int64)
    done = np.zeros(n_p, np.bool_)
    par = 0
    t_win = 0.0
    started = False
    status = STATUS_OK
    while True:
        # ---- one window: from the group's next event (the partitions' next events, and the arrivals
        # of the spikes in the outboxes, at d_win after them or later; all at t_win or later) for d_win
        t0 = np.inf if started else 0.0
        started = True
        for p in range(n_p):
            if bounds[p + 1] > bounds[p]:
                t0 = min(t0, key[bounds[p] + item[bounds[p]]])
            for e in range(ob_n[1 - par, p]):
                t0 = min(t0, ob[1 - par, p, e, 0] + d_win)
        if t0 > t_end:
            break
        t_win = t0 + d_win
        if t_win > t_end:
            t_win = np.inf
        for p in range(n_p):
            done[p] = False
            counters[p, _NOB] = 0
            counters[p, _PULL_S] = 0
            counters[p, _PULL_E] = 0
        while True:
            for p in prange(n_p):
                if not done[p]:
                    codes[p] = _partition_window(p, bounds, members, tau_m, tau_s, theta, reset, refractory, closed,
                                                 in_w, t_end, sample_times, col_of, samples, max_spikes, v_off,
                                                 ext_ptr, ext_n, ext_t, ext_q, block, blk, rec_ptr, rec_post,
                                                 rec_d, rec_q, mult, cst, tst, cpos, tpos, end_t, end_q, key,
                                                 item, pos, todo, bk, bm, occ, inv_width, r_t, r_n, r_g, counters,
                                                 t_win, rec_post_part, ob[1 - par], ob_n[1 - par], ob[par])
            grow_bk = False
            grow_r = False
            grow_ob = False
            for p in range(n_p):
                if codes[p] == _DONE:
                    done[p] = True
                grow_bk |= codes[p] == _NEED_PENDING
                grow_r |= codes[p] == _NEED_RECORDS
                grow_ob |= codes[p] == _NEED_OUTBOX
            if grow_bk:
                bk, cap = _grown_buckets(bk, bm, cap, mult)
            if grow_r:
                size = 2 * r_t.shape[1]
                new_t, new_n, new_g = np.empty((n_p, size)), np.empty((n_p, size), np.int64), np.empty((n_p, size))
                for p in range(n_p):
                    for k in range(counters[p, _NSPK]):
                        new_t[p, k], new_n[p, k], new_g[p, k] = r_t[p, k], r_n[p, k], r_g[p, k]
                r_t, r_n, r_g = new_t, new_n, new_g
            if grow_ob:
                new_ob = np.empty((2, n_p, 2 * ob.shape[2], 2))
                for p in range(n_p):
                    for e in range(ob_n[1 - par, p]):
                        new_ob[1 - par, p, e, 0], new_ob[1 - par, p, e, 1] = ob[1 - par, p, e, 0], ob[1 - par, p, e, 1]
                    for e in range(counters[p, _NOB]):
                        new_ob[par, p, e, 0], new_ob[par, p, e, 1] = ob[par, p, e, 0], ob[par, p, e, 1]
                ob = new_ob
            if not (grow_bk or grow_r or grow_ob):
                break
        n_spk = 0
        for p in range(n_p):
            n_spk += counters[p, _NSPK]
            ob_n[par, p] = counters[p, _NOB]
            if counters[p, _STATUS] != STATUS_OK:
                status = counters[p, _STATUS]
        if n_spk > max_spikes:
            status = STATUS_TOO_MANY_SPIKES
        if status != STATUS_OK:
            break
        par = 1 - par
    n_spk = 0
    n_blocks = 0
    for p in range(n_p):
        n_spk += counters[p, _NSPK]
        n_blocks += counters[p, _BLOCKS]
    out_t, out_n, out_g = np.empty(n_spk), np.empty(n_spk, np.int64), np.empty(n_spk)
    k = 0
    for p in range(n_p):
        for e in range(counters[p, _NSPK]):
            out_t[k], out_n[k], out_g[k] = r_t[p, e], r_n[p, e], r_g[p, e]
            k += 1
    if status == STATUS_OK:
        _final_samples(members, tst, tpos, reset, tau_m, tau_s, t_end, sample_times, col_of, samples, v_off)
    return out_t, out_n, out_g, status, n_blocks


# ---------------------------------------------------------------- reverse ----
@njit(cache=True, nogil=True)
def adjoint_group(members, rec_ptr, rec_post, rec_d, rec_q, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset,
                  refractory, s_start, s_end, s_time, s_id, t_end, n_in, sp_i_minus_theta, sp_source,
                  ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate, want_tau,
                  g_w, g_d, g_tm, g_ts, g_th, g_time, spike_grad, factored, in_dm, in_ds, s_em, s_es):
    """Reverse pass of one recurrent group in one trial; returns max |V - theta| at its recorded spikes.

    Arguments as :func:`~._kernels.adjoint_range` (one row of g_time; s_*: every spike of the
    trial, the group's included, grouped by neuron). Each neuron's arrivals (input and
    recurrent) and recorded spikes are replayed locally into its event log
    (:func:`~._kernels.replay_neuron`), then the logs are walked backwards with the steps of
    :func:`~._kernels.reverse_neuron`, neuron by neuron, pausing only where the neurons are
    coupled: a spike's total time sensitivity needs the sensitivities of all its arrivals, which
    lie at its time or later. So the group's spikes are taken latest first; before spike k of
    neuron i at time T, each target of i whose walk has not yet passed the arrival of k (at
    T + d) walks back through its events down to that arrival, then i through its events after
    T, and then spike k. Most arrivals lie behind their target's walk already, so each neuron
    walks long stretches of its log at a time. (The walk is written once, inline, for numba: a
    call with the logs as arguments would cost reference counts per step.)

    factored (the group's neurons share tau_m and tau_s; in_dm, in_ds: exp(d/tau) per synapse,
    s_em, s_es: exp(t/tau) per spike id; ignored where a neuron of the group has a loss source
    or want_tau): :func:`_adjoint_group_factored` instead.
    """
    n_g = members.shape[0]
    fac = factored and not want_tau
    for l in range(n_g):
        j = members[l]
        if ps_ptr[j] != ps_ptr[j + 1] or cs_ptr[j] != cs_ptr[j + 1]:
            fac = False
    if fac:
        return _adjoint_group_factored(members, rec_ptr, rec_post, rec_d, rec_q, in_ptr, in_pre, in_w, tau_m, tau_s,
                                       theta, reset, refractory, s_start, s_end, s_time, s_id, in_d, t_end, n_in,
                                       sp_i_minus_theta, sp_source, g_w, g_d, g_th, g_time, spike_grad, in_dm,
                                       in_ds, s_em, s_es)
    # ---- replay every neuron into its part of the logs
    log_ptr = np.zeros(n_g + 1, np.int64)
    mmax = 0
    nsmax = 0
    for l in range(n_g):
        j = members[l]
        m = incoming_count(j, in_ptr, in_pre, s_start, s_end)
        ns = s_end[j] - s_start[j]
        log_ptr[l + 1] = log_ptr[l] + m + 2 * ns
        mmax = max(mmax, m)
        nsmax = max(nsmax, ns)
    n_log = log_ptr[n_g]
    n_one = mmax + 2 * nsmax                 # one neuron's log, replayed here, then interleaved into ev
    ev_t = np.empty(n_one)
    ev_q = np.empty(n_one, np.int64)
    ev_s = np.empty(n_one, np.int64)
    ev_v = np.empty(n_one)
    ev_i = np.empty(n_one)
    ev = np.empty((n_log, 5))
    counts = np.empty(mmax + 1, np.int64)
    arr_t = np.empty(mmax)
    arr_q = np.empty(mmax, np.int64)
    arr_s = np.empty(mmax, np.int64)
    sp_t = np.empty(nsmax)
    sp_k = np.empty(nsmax, np.int64)
    cursor = np.empty(n_g, np.int64)          # the next log entry to walk back (absolute), -1 below the start
    worst = 0.0
    n_spk = 0
    for l in range(n_g):
        j = members[l]
        ns = s_end[j] - s_start[j]
        n_spk += ns
        for r in range(ns):
            sp_t[r] = s_time[s_start[j] + r]
            sp_k[r] = s_id[s_start[j] + r] - n_in
        m = gather_sorted(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, s_id, t_end, True,
                          counts, arr_t, arr_q, arr_s)
        lo = log_ptr[l]
        n_ev, w = replay_neuron(m, arr_t, arr_q, arr_s, in_w, sp_t[:ns], sp_k[:ns], tau_m[j], tau_s[j], theta[j],
                                reset[j], refractory[j], t_end, ev_t, ev_q, ev_s, ev_v, ev_i)
        worst = max(worst, w)
        cursor[l] = lo + n_ev - 1
        # the log interleaved, one row per event (t, q, s, V, I): the walk below moves between
        # neurons, and one cache line per event then serves all five fields
        for e in range(n_ev):
            ev[lo + e, 0], ev[lo + e, 1], ev[lo + e, 2], ev[lo + e, 3], ev[lo + e, 4] = (
                ev_t[e], ev_q[e], ev_s[e], ev_v[e], ev_i[e])
    # ---- the group's spikes, latest first
    g_t = np.empty(n_spk)
    g_l = np.empty(n_spk, np.int64)
    g_k = np.empty(n_spk, np.int64)
    c = 0
    for l in range(n_g):
        j = members[l]
        for r in range(s_start[j], s_end[j]):
            g_t[c], g_l[c], g_k[c] = s_time[r], l, s_id[r] - n_in
            c += 1
    order = np.argsort(-g_t, kind="mergesort")
    # ---- per-neuron costate walk state (reverse_neuron's locals)
    p_v = np.zeros(n_g)
    p_i = np.zeros(n_g)
    t_at = np.full(n_g, t_end)
    pv_ref = np.zeros(n_g)
    i_ref = np.zeros(n_g)
    acc = np.zeros((n_g, 3))                 # dL/dtau_m, dL/dtau_s, dL/dtheta
    clamped = np.zeros(n_g, np.bool_)
    src = np.empty(n_g, np.int64)            # the next point source (walking down), per neuron
    for l in range(n_g):
        j = members[l]
        ns = s_end[j] - s_start[j]
        clamped[l] = ns > 0 and refractory[j] > 0.0 and s_time[s_end[j] - 1] + refractory[j] > t_end
        src[l] = ps_ptr[j + 1] - 1
    # work list: (neuron, walk down to time, the own spike to include at that time, or -9)
    # the time of the event each neuron's walk reaches next (-inf when done): an arrival of a spike
    # that lies later than it has been walked through already
    next_t = np.empty(n_g)
    for l in range(n_g):
        next_t[l] = ev[cursor[l], 0] if cursor[l] >= log_ptr[l] else -np.inf
    todo_l = np.empty(max(n_g, rec_ptr[n_g]) + 1, np.int64)
    todo_t = np.empty(max(n_g, rec_ptr[n_g]) + 1)
    o = 0
    for step in range(n_spk + 1):
        n_todo = 0
        if step < n_spk:
            o = order[step]
            i = g_l[o]
            t_spk = g_t[o]
            for cc in range(rec_ptr[i], rec_ptr[i + 1]):
                t_arr = t_spk + rec_d[cc]
                post = rec_post[cc]
                if t_arr <= t_end and next_t[post] >= t_arr:
                    todo_l[n_todo] = post
                    todo_t[n_todo] = t_arr
                    n_todo += 1
            todo_l[n_todo] = i
            todo_t[n_todo] = t_spk
            n_todo += 1
        else:
            for l in range(n_g):
                todo_l[l] = l
                todo_t[l] = -np.inf
            n_todo = n_g
        for w_ in range(n_todo):
            l = todo_l[w_]
            t_stop = todo_t[w_]
            own = g_k[o] if (step < n_spk and w_ == n_todo - 1) else -9
            j = members[l]
            tm, ts, rs, refr = tau_m[j], tau_s[j], reset[j], refractory[j]
            ps_lo = ps_ptr[j]
            cs_lo, cs_hi = cs_ptr[j], cs_ptr[j + 1]
            lo = log_ptr[l]
            e = cursor[l]
            pv, pi, tat, cl, k = p_v[l], p_i[l], t_at[l], clamped[l], src[l]
            pvr, ir = pv_ref[l], i_ref[l]
            d_tm = 0.0
            d_ts = 0.0
            d_th = 0.0
            while e >= lo:
                t = ev[e, 0]
                cq = np.int64(ev[e, 1])
                es = np.int64(ev[e, 2])
                e_v = ev[e, 3]
                e_i = ev[e, 4]
                if not (t > t_stop or (t == t_stop and (cq != EV_SPIKE or es == own))):
                    break
                # ---- the steps of reverse_neuron for event e
                if cq >= 0:
                    v_after, i_after = e_v, e_i + in_w[cq]
                elif cq == EV_REF_END:
                    v_after, i_after = rs, e_i
                    cl = False
                else:
                    v_after, i_after = rs, e_i
                pv, pi, k, d_tm, d_ts = advance_costate(t, tat, v_after, i_after, pv, pi, k, cl, ps_lo, ps_time,
                                                        ps_value, cs_lo, cs_hi, cs_coef, cs_rate, tm, ts, want_tau,
                                                        d_tm, d_ts)
                tat = t
                if cq >= 0:
                    arrival_costate(cq, es, t, e_v, e_i, pv, pi, k, cl, ps_lo, ps_time, ps_value, in_w, tm, ts,
                                    g_w, g_d, g_time, 0)
                elif cq == EV_REF_END:
                    pvr = pv
                    ir = e_i
                    pv = 0.0
                    cl = True
                else:
                    pv = _spike_costate(es, pv, pvr, ir, e_i, refr, rs, tm, n_in, g_time, sp_source,
                                        sp_i_minus_theta, spike_grad)
                    if refr > 0.0:
                        pvr = 0.0
                    d_th -= pv
                    cl = False
                e -= 1
            cursor[l] = e
            next_t[l] = ev[e, 0] if e >= lo else -np.inf
            p_v[l], p_i[l], t_at[l], clamped[l], src[l] = pv, pi, tat, cl, k
            pv_ref[l], i_ref[l] = pvr, ir
            acc[l, 0] += d_tm
            acc[l, 1] += d_ts
            acc[l, 2] += d_th
    # ---- what is left of each costate down to t = 0 (as reverse_neuron's caller: nothing; its
    # last event's costate is the initial one, whose sensitivities are the state gradients, not asked here)
    for l in range(n_g):
        j = members[l]
        g_tm[j] += acc[l, 0]
        g_ts[j] += acc[l, 1]
        g_th[j] += acc[l, 2]
    return worst


#: time cells per neuron in which :func:`_stretch_sums` and the walk of the group's spikes in
#: :func:`_adjoint_group_factored` look up an arrival's first candidate stretch
STRETCH_CELLS = 256


@njit(cache=True, nogil=True)
def _event_cells(ev_t, ne, scale, cells):
    """cells[c] = the number of the ne events ev_t (in time order) in the time cells before c (cell
    int(t scale), clipped to 0..len(cells) - 1): all of them come before any time in cell c, so the
    stretch of an arrival in cell c is searched from event cells[c] on."""
    n_cells = cells.shape[0] - 1
    e = 0
    for c in range(n_cells + 1):
        while e < ne and min(max(int(ev_t[e] * scale), 0), n_cells) < c:
            e += 1
        cells[c] = e


@njit(cache=True, nogil=True)
def _stretch_sums(j, ne, in_ptr, in_pre, in_d, in_w, in_ds, in_dm, s_start, s_end, by_pos, t_end, ev_t, ev_c, kk,
                  cells, per_s, per_m, st_of, n_of):
    """The arrivals at neuron j in generation order (synapse, then spike), each in its stretch (the
    neuron's ne events ev_*; stretch k ends at event k): the sums per stretch of w F_s and K w F_m into
    per_s, per_m, and the stretch of each arrival to st_of in that order (n_of[q]: the arrivals of
    synapse q written), for :func:`_stretch_grads`. by_pos: rows of the spikes' time, exp(t/tau_s),
    exp(t/tau_m), by position in s_time (rows, so that an entry's address needs no multiplication by a
    runtime row length); in_ds, in_dm: exp(d/tau) per synapse.

    An arrival's stretch is searched from the first event of its time cell on (cells: the neuron's
    :func:`_event_cells` over [0, t_end]), not from the synapse's previous arrival: a synapse then costs
    its arrivals, not the neuron's events. Arrivals after the neuron's last event are left out: their
    stretch's sums are never used, and its coefficients are zero (no loss source reaches the neuron but
    through its spikes), so they would add zeros."""
    n_cells = cells.shape[0] - 1
    scale = n_cells / t_end if t_end > 0.0 else 0.0
    e = 0
    for q in range(in_ptr[j], in_ptr[j + 1]):
        p = in_pre[q]
        d = in_d[q]
        w = in_w[q]
        f_ds, f_dm = in_ds[q], in_dm[q]
        e_q = e
        for k in range(np.uint64(s_start[p]), np.uint64(s_end[p])):     # (unsigned: no negative-index test)
            t = by_pos[0, k] + d
            if t > t_end:
                break
            st = cells[min(max(int(t * scale), 0), n_cells)]
            while st < ne and (ev_t[st] < t or (ev_t[st] == t and ev_c[st] == EV_SPIKE)):
                st += 1                      # the arrival's stretch (a spike at t comes first)
            if st == ne:
                break                        # in the last stretch (as this synapse's later arrivals): no use
            st_of[e] = st
            e += 1
            per_s[st] += w * (by_pos[1, k] * f_ds)
            per_m[st] += kk * w * (by_pos[2, k] * f_dm)
        n_of[q] = e - e_q


@njit(cache=True, nogil=True)
def _stretch_grads(j, skip, in_ptr, in_pre, in_w, in_ds, in_dm, s_start, by_pos, kk, inv_ts, inv_tm, per_s, per_m,
                   st_of, n_of, g_pos, g_w, g_d):
    """The sensitivities of the arrivals at neuron j from the presynaptic neurons not in `skip`, with the
    coefficients of their stretches (per_s, per_m: b and a of :func:`~._kernels.reverse_factored`; the
    stretches as :func:`_stretch_sums` wrote them, st_of and n_of), into g_w, g_d and g_pos (by position
    in s_time)."""
    e = 0
    for q in range(in_ptr[j], in_ptr[j + 1]):
        p = in_pre[q]
        nq = n_of[q]
        if skip[p]:
            e += nq
            continue
        w = in_w[q]
        f_ds, f_dm = in_ds[q], in_dm[q]
        gw = 0.0
        gd = 0.0
        for k in range(np.uint64(s_start[p]), np.uint64(s_start[p] + nq)):     # (unsigned: no negative-index test)
            st = st_of[e]
            e += 1
            pv = per_m[st] * (by_pos[2, k] * f_dm)
            pi = per_s[st] * (by_pos[1, k] * f_ds) + kk * pv
            gw += pi
            dl_dt = w * (pi * inv_ts - pv * inv_tm)
            gd += dl_dt
            g_pos[k] += dl_dt
        g_w[q] += gw
        g_d[q] += gd


@njit(cache=True, nogil=True)
def _adjoint_group_factored(members, rec_ptr, rec_post, rec_d, rec_q, in_ptr, in_pre, in_w, tau_m, tau_s, theta,
                            reset, refractory, s_start, s_end, s_time, s_id, in_d, t_end, n_in, sp_i_minus_theta,
                            sp_source, g_w, g_d, g_th, g_time, spike_grad, in_dm, in_ds, s_em, s_es):
    """:func:`adjoint_group` of a group of one tau_m and one tau_s that the loss reaches only through
    its spike times, with the steps of :func:`~._kernels.reverse_factored` and no sort.

    Between a neuron's events (its spikes and ends of refractoriness: the boundaries of its
    *stretches*) its costate is a constant pair of coefficients (p_V = a F_m, p_I = b F_s + K a F_m),
    so an arrival's sensitivities need only the coefficients of its stretch, whatever the order
    of the arrivals within it. Hence: (0) each neuron's arrivals, in generation order (synapse, then
    spike: the stretch looked up by time, :func:`_stretch_sums`, and kept), summed per stretch give
    I at its events and V at its spikes (the forward half of reverse_factored); (1) the group's
    events are taken latest first (at one time, ends of refractoriness first): before spike k of
    neuron i at T, its recurrent arrivals at T + d are evaluated with the coefficients of their
    target's stretch (searched from the first event of the arrival's time cell, or the target's
    latest stretch so far, whichever is later), final by then (the stretch ends at an event later
    than T, or at an end of refractoriness at T), which completes k's time sensitivity (the group's
    synapses read, and their gradients summed, in a copy grouped by presynaptic neuron); each event
    gives its neuron's coefficients before it (:func:`~._kernels.factored_event`); (2) the other
    arrivals (from the inputs and the earlier layers) with the final coefficients of the stretches
    kept in (0), neuron by neuron (:func:`_stretch_grads`). Gradients equal those of the exact steps
    to rounding (sums taken in another order).

    bench/gradient.py's recurrent network, 2 trials on one thread, in one process with the code that
    searched every stretch from the target's latest (in (1)) and looked the stretches up again in (2)
    (interleaved, 30 runs each, 2026-11-27): adjoint 0.80x, gradients bit for bit the same.
    """
    n_g = members.shape[0]
    kk = 0.0
    tm = ts = 1.0
    if n_g > 0:
        tm, ts = tau_m[members[0]], tau_s[members[0]]
        kk = ts / (tm - ts)
    in_group = np.zeros(s_start.shape[0], np.bool_)
    for l in range(n_g):
        in_group[members[l]] = True
    # the spikes by position in s_time (grouped by neuron, as the arrivals are generated): time and
    # factors side by side, and the time sensitivities of the spikes from outside the group
    n_s = s_time.shape[0]
    by_pos = np.empty((3, n_s))
    for k in range(n_s):
        by_pos[0, k], by_pos[1, k], by_pos[2, k] = s_time[k], s_es[s_id[k]], s_em[s_id[k]]
    g_pos = np.zeros(n_s)
    # ---- each neuron's events (order of factored_log), at most 2 per spike
    lg_ptr = np.zeros(n_g + 1, np.int64)
    for l in range(n_g):
        j = members[l]
        lg_ptr[l + 1] = lg_ptr[l] + 2 * (s_end[j] - s_start[j])
    n_lg = lg_ptr[n_g]
    ev_t = np.empty(n_lg)
    ev_c = np.empty(n_lg, np.int64)
    ev_s = np.empty(n_lg, np.int64)
    ev_i = np.empty(n_lg)
    ne_of = np.zeros(n_g, np.int64)
    for l in range(n_g):
        j = members[l]
        e = lg_ptr[l]
        ne_of[l] = split_events(s_start[j], s_end[j], s_time, s_id, n_in, refractory[j], t_end, ev_t[e:], ev_c[e:],
                                ev_s[e:])
    # ---- (0) sums per stretch of w F_s (all arrivals) and K w F_m, then I at the events, V at the spikes
    st_ptr = np.zeros(n_g + 1, np.int64)        # stretches: ne + 1 per neuron
    for l in range(n_g):
        st_ptr[l + 1] = st_ptr[l] + ne_of[l] + 1
    sum_s = np.zeros(st_ptr[n_g])
    sum_m = np.zeros(st_ptr[n_g])
    # each neuron's events in time cells (:func:`_event_cells`), where the search of an arrival's stretch starts
    c_scale = STRETCH_CELLS / t_end if t_end > 0.0 else 0.0
    first = np.empty((n_g, STRETCH_CELLS + 1), np.int64)
    # each arrival's stretch, in generation order per neuron (rows ar_ptr[l]..), for the pass (2)
    ar_ptr = np.zeros(n_g + 1, np.int64)
    for l in range(n_g):
        _event_cells(ev_t[lg_ptr[l]:], ne_of[l], c_scale, first[l])
        ar_ptr[l + 1] = ar_ptr[l] + incoming_count(members[l], in_ptr, in_pre, s_start, s_end)
    st_of = np.empty(ar_ptr[n_g], np.uint32)    # (unsigned: indexing with its entries needs no negative-index test)
    n_of = np.zeros(in_pre.shape[0], np.int64)
    worst = 0.0
    for l in range(n_g):
        j = members[l]
        e0, ne, s0 = lg_ptr[l], ne_of[l], st_ptr[l]
        _stretch_sums(j, ne, in_ptr, in_pre, in_d, in_w, in_ds, in_dm, s_start, s_end, by_pos, t_end, ev_t[e0:],
                      ev_c[e0:], kk, first[l], sum_s[s0:], sum_m[s0:], st_of[ar_ptr[l]:ar_ptr[l + 1]], n_of)
        # (sum_m holds K w F_m already: scaled by 1)
        worst = max(worst, segment_states(ne, ev_t[e0:], ev_c[e0:], ev_i[e0:], sum_s[s0:], sum_m[s0:], 1.0, tm, ts,
                                          theta[j], reset[j], refractory[j]))
    # ---- (1) the group's events, latest first (ends of refractoriness before spikes at one time)
    n_all = 0
    for l in range(n_g):
        n_all += ne_of[l]
    all_t = np.empty(n_all)
    all_c = np.empty(n_all, np.int64)
    all_l = np.empty(n_all, np.int64)
    all_e = np.empty(n_all, np.int64)
    c = 0
    for l in range(n_g):
        for e in range(lg_ptr[l], lg_ptr[l] + ne_of[l]):
            all_t[c], all_c[c], all_l[c], all_e[c] = ev_t[e], ev_c[e], l, e
            c += 1
    by_code = np.argsort(all_c, kind="mergesort")             # EV_REF_END (-2) before EV_SPIKE (-1)
    order = by_code[np.argsort(-all_t[by_code], kind="mergesort")]
    coef_m = np.zeros(st_ptr[n_g])
    coef_s = np.zeros(st_ptr[n_g])
    cur = np.empty(n_g, np.int64)              # the stretch whose coefficients came last (final from it on)
    pv_ref = np.zeros(n_g)
    i_ref = np.zeros(n_g)
    d_th = np.zeros(n_g)
    for l in range(n_g):
        cur[l] = ne_of[l]
    inv_ts, inv_tm = 1.0 / ts, 1.0 / tm
    # the group's own synapses in their order (grouped by presynaptic neuron: one spike's arrivals read
    # consecutive rows, not one row of the post-major table per target): w, exp(d/tau_m), exp(d/tau_s),
    # and g_w, g_d, accumulated here in the same order and written back after the walk
    n_rec = rec_ptr[n_g]
    rec_syn = np.empty((n_rec, 5))
    for cc in range(n_rec):
        q = rec_q[cc]
        rec_syn[cc, 0], rec_syn[cc, 1], rec_syn[cc, 2] = in_w[q], in_dm[q], in_ds[q]
        rec_syn[cc, 3], rec_syn[cc, 4] = g_w[q], g_d[q]
    for o in range(n_all):
        c = order[o]
        i = all_l[c]
        e = all_e[c]
        t_ev = all_t[c]
        if all_c[c] == EV_SPIKE:
            sid = n_in + ev_s[e]
            f_es, f_em = s_es[sid], s_em[sid]
            for cc in range(rec_ptr[i], rec_ptr[i + 1]):
                t_arr = t_ev + rec_d[cc]
                if t_arr > t_end:
                    continue
                post = rec_post[cc]
                e0 = lg_ptr[post]
                st = max(cur[post], first[post, min(max(int(t_arr * c_scale), 0), STRETCH_CELLS)])
                ne = ne_of[post]
                while st < ne and (ev_t[e0 + st] < t_arr or (ev_t[e0 + st] == t_arr and ev_c[e0 + st] == EV_SPIKE)):
                    st += 1
                if st == ne:
                    continue                 # after post's last event: zero coefficients
                pv = coef_m[st_ptr[post] + st] * (f_em * rec_syn[cc, 1])
                pi = coef_s[st_ptr[post] + st] * (f_es * rec_syn[cc, 2]) + kk * pv
                rec_syn[cc, 3] += pi
                dl_dt = rec_syn[cc, 0] * (pi * inv_ts - pv * inv_tm)
                rec_syn[cc, 4] += dl_dt
                g_time[0, sid] += dl_dt
        j = members[i]
        sc = st_ptr[i] + e - lg_ptr[i]          # the stretch after this event
        cm, cs_, pvr, ir, dd = factored_event(t_ev, ev_c[e], ev_s[e], ev_i[e], coef_m[sc + 1], coef_s[sc + 1],
                                              pv_ref[i], i_ref[i], kk, tm, ts, reset[j], refractory[j], n_in,
                                              g_time, sp_source, sp_i_minus_theta, spike_grad)
        coef_m[sc], coef_s[sc] = cm, cs_
        pv_ref[i], i_ref[i] = pvr, ir
        d_th[i] += dd
        cur[i] = e - lg_ptr[i]
    for cc in range(n_rec):
        g_w[rec_q[cc]], g_d[rec_q[cc]] = rec_syn[cc, 3], rec_syn[cc, 4]
    # ---- (2) the arrivals from outside the group, with the final coefficients
    for l in range(n_g):
        j = members[l]
        g_th[j] += d_th[l]
        s0 = st_ptr[l]
        _stretch_grads(j, in_group, in_ptr, in_pre, in_w, in_ds, in_dm, s_start, by_pos, kk, inv_ts, inv_tm,
                       coef_s[s0:], coef_m[s0:], st_of[ar_ptr[l]:ar_ptr[l + 1]], n_of, g_pos, g_w, g_d)
    for k in range(n_s):
        if g_pos[k] != 0.0:
            g_time[0, s_id[k]] += g_pos[k]
    return worst
