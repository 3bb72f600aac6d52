"""The layered engine on networks with recurrent layers.

The populations are grouped into the strongly connected components of the
projection graph (Tarjan), in an order where every projection between groups
goes forward. A group of one population without a self-projection is a
feedforward layer, simulated neuron by neuron by the feedforward kernels
(:func:`~neurodelay.layered._kernels.forward_range`); a group with a cycle (a
population projecting onto itself, or several populations projecting onto each
other) is a *recurrent group*. In batches of several trials, a recurrent group of
one tau_m and one tau_s that starts at rest, without bias currents, zero delays or
sampled voltages, runs window by window (:data:`WINDOWED`,
:func:`~neurodelay.layered._windowed_group.forward_windowed`: each neuron scanned
alone within a window as a feedforward neuron is, the arrivals of the group's
spikes delivered to the window they land in). Otherwise it is simulated by
:func:`~neurodelay.layered._recurrent_kernels.forward_group`: its input
arrivals presorted per neuron, its own arrivals in per-neuron time buckets as its
spikes happen, both scanned tentatively per neuron in (time, synapse) order, the
next event (a spike, or where a neuron's scan stopped) taken from an index over
its neurons; in a group of one tau_m and one tau_s, blocks of
:data:`BLOCK_ARRIVALS` input arrivals are added at once where V provably stays
below theta. Results equal the event engine's (spike times to rounding with
blocks, bit for bit without them, :data:`BLOCK_ARRIVALS` = 0 or
:data:`~neurodelay.layered.plan.FACTORED_FORWARD` off, where arrivals at one
neuron never tie in time; see the kernel's module).

Trials run in parallel. With fewer trials than threads (one trial on 2 threads), a
recurrent group of at least :data:`PARTITION_MIN_NEURONS` neurons per thread is split into
one partition per thread, and the partitions advance in lock-step windows no longer than the
smallest delay of a synapse between two partitions
(:func:`~neurodelay.layered._recurrent_kernels.forward_partitioned`, numba threads): a spike
emitted in a window reaches another partition after its end, when the partitions exchange
their spikes. The record is the one-thread run's bit for bit (arrivals at a neuron are
applied in (time, synapse) order whichever partition delivered them first). On
bench/forward.py's network (1000 neurons, smallest delay 1 ms: 1000 windows per simulated
second) see the README for what 2 threads gain.
The reverse pass (:func:`adjoint`) replays each neuron of a recurrent group
locally and walks the group's neurons back together, pausing at the group's
spikes (:func:`~neurodelay.layered._recurrent_kernels.adjoint_group`). A group of one
tau_m and one tau_s that the loss reaches only through its spike times takes the factored
reverse pass instead (:data:`~neurodelay.layered.plan.FACTORED_REVERSE`, without time-constant
gradients; :func:`~neurodelay.layered._recurrent_kernels._adjoint_group_factored`): constant
costate coefficients between each neuron's spikes, its arrivals neither sorted nor replayed, no
exponential per arrival; gradients equal to the exact steps' to rounding
(bench/gradient.py's recurrent network, 700 -> 256 recurrent -> 20, 64 trials: weight and delay
gradients within 1.6e-15 and 1.7e-14 of the largest entry of the event engine's adjoint).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

import numba
import numpy as np

from .._allocator import keep_freed_memory
from ..events.adjoint import prepare_reverse, trial_blocks
from ..events.batch import default_threads, map_trials
from ..flat import FlatNetwork, is_closed_form
from ..network import LIF, Network
from ..record import AdjointResult, AdjointSources, EventRecord, prepare_run
from . import _kernels as K
from . import _recurrent_kernels as RK
from . import _windowed_group as WG
from . import plan as layer_plan
from .plan import (_EMPTY2, _factored_taus_of, _packed_factors, _plan_for, _reverse_taus, _scan_factors,
                   _synapse_factors, post_major)
from .trials import (_adjoint_result, _by_neuron, _new_acc, _place, _reverse_trial, _sample_columns, _too_many,
                     _trial_spikes)

__all__ = ["population_groups", "simulate", "adjoint"]


#: when a batch has fewer trials than threads, a recurrent group is split into one partition per
#: thread (:func:`~neurodelay.layered._recurrent_kernels.forward_partitioned`; the trials then run one
#: after the other) where each partition gets at least this many neurons; results do not depend on
#: it (0 forces the split, as the tests do). bench/forward.py's network at 250, 500 and 1000 neurons
#: (15 Hz, 1 ms windows), one 5 s trial, fastest of 3, 1 -> 2 threads on a quiet moment of a shared
#: 2-core machine: 0.36 -> 0.45 s, 0.83 -> 0.69 s, 1.93 -> 1.33 s.
PARTITION_MIN_NEURONS = 250
#: input arrivals per block of a recurrent group's forward scans: where V provably stays below
#: theta, a neuron adds a whole block of its sorted input arrivals (and its pending recurrent
#: arrivals among them) at once, from sums with factored exponentials (groups of one tau_m and one
#: tau_s, :data:`~neurodelay.layered.plan.FACTORED_FORWARD`); spike times then differ from the
#: event engine's by rounding. 0: arrival by arrival, the event engine's operations.
#: bench/gradient.py's recurrent network, forward of 2 trials on one thread, time relative to the
#: code without blocks (runs interleaved, median of 6-8 pairs, 2026-11-27): 4, 6, 8, 12, 16, 32
#: arrivals per block: 0.83, 0.83, 0.80-0.83, 0.89, 0.88-0.92, 1.01-1.08.
BLOCK_ARRIVALS = 8
#: in batches of at least WINDOWED_MIN_TRIALS trials, a recurrent group of one tau_m and one tau_s
#: (factored, as with blocks) simulated from rest without bias, zero delays or sampled voltages runs
#: window by window (:func:`~neurodelay.layered._windowed_group.forward_windowed`: each neuron scanned
#: alone within a window with the feedforward engine's binned scan; 0.55x the event loop's cost at SHD
#: size), one trial per thread; False: always the event loop
#: (:func:`~neurodelay.layered._recurrent_kernels.forward_group`). Spike times agree with the event
#: loop's to rounding, counts are identical (tests/test_windowed_group.py). A batch of one trial takes
#: the event loop, which can split the group over threads: the choice depends on the batch, never on
#: the number of threads, so records stay the same bit for bit whatever the threads (a trial run alone
#: and in a batch may differ by rounding).
WINDOWED = True
WINDOWED_MIN_TRIALS = 2
# numba's workqueue threading layer (the fallback without OpenMP or TBB) must not be entered by two
# threads at once
_PARALLEL = threading.Lock()


def _forward_partitioned(n_parts: int, part, args):
    """:func:`~neurodelay.layered._recurrent_kernels.forward_partitioned` on min(n_parts, numba's
    threads) numba threads. numba's OpenMP layer, started while NEST (which brings its own libgomp)
    is loaded and has not run yet, makes NEST's next ResetKernel crash (NEST 3.10): numba's own
    workqueue layer (slower wake-ups) is chosen then, unless NUMBA_THREADING_LAYER says otherwise."""
    if "nest" in sys.modules and numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"     # (no effect once numba's threads are started)
    with _PARALLEL:
        before = numba.get_num_threads()
        numba.set_num_threads(min(n_parts, numba.config.NUMBA_NUM_THREADS))
        try:
            return RK.forward_partitioned(part[0], part[1], *args, part[2])
        finally:
            numba.set_num_threads(before)


def population_groups(net: Network) -> list[tuple[tuple[str, ...], bool]]:
    """The non-source populations grouped for this engine: :meth:`Network.population_groups` without
    the spike sources (every projection between groups goes forward; recurrent groups flagged)."""
    return net.population_groups(sources=False)


@dataclass(frozen=True)
class _Group:
    """A recurrent group: its neurons and its own synapses grouped by presynaptic neuron."""

    members: np.ndarray     # (n_g,) global indices, ascending
    rec_ptr: np.ndarray     # (n_g+1,) over presynaptic local index
    rec_post: np.ndarray    # postsynaptic local index
    rec_d: np.ndarray       # total delay, s
    rec_q: np.ndarray       # the synapse's index in the post-major table
    by_delay: np.ndarray    # positions of rec_* with each presynaptic neuron's synapses in order of delay

    def partitions(self, n_parts: int):
        """(bounds, window, rec_post_part) of the split of the group's local neurons into n_parts
        contiguous partitions for :func:`~neurodelay.layered._recurrent_kernels.forward_partitioned`
        (window: the smallest delay between two partitions, s; inf if none), or None where a
        synapse between two partitions has no delay."""
        n_g = len(self.members)
        bounds = (np.arange(n_parts + 1, dtype=np.int64) * n_g) // n_parts
        pre = np.repeat(np.arange(n_g, dtype=np.int64), np.diff(self.rec_ptr))
        part_pre = np.searchsorted(bounds, pre, side="right") - 1
        part_post = np.searchsorted(bounds, self.rec_post, side="right") - 1
        cross = part_pre != part_post
        window = float(self.rec_d[cross].min()) if cross.any() else np.inf
        if not window > 0.0:
            return None
        rec_post_part = np.where(cross, -1 - self.rec_post, self.rec_post - bounds[part_pre]).astype(np.int64)
        return bounds, window, rec_post_part


@dataclass(frozen=True)
class _Plan:
    steps: tuple            # (off, n, name, is LIF) of a feedforward layer, or a _Group, in order
    in_ptr: np.ndarray      # the post-major synapse table (as the feedforward plan's)
    in_pre: np.ndarray
    in_d: np.ndarray
    in_w: np.ndarray
    closed: np.ndarray
    in_c: np.ndarray        # the synapse's index in flat (pre-major) order
    in_dm: np.ndarray       # exp(d / tau_m of the postsynaptic neuron) (inf where it overflows)
    in_ds: np.ndarray       # exp(d / tau_s of the postsynaptic neuron)


def _plan(net: Network, flat: FlatNetwork) -> _Plan:
    in_ptr, in_pre, in_d, in_w, in_c, in_dm, in_ds = post_major(flat)
    n = flat.n_neurons
    in_post = np.repeat(np.arange(n, dtype=np.int64), np.diff(in_ptr))
    steps = []
    for names, recurrent in population_groups(net):
        if not recurrent:
            p = net[names[0]]
            steps.append((flat.offsets[p.name], p.n, p.name, isinstance(p, LIF)))
            continue
        members = np.concatenate([np.arange(flat.offsets[a], flat.offsets[a] + flat.sizes[a]) for a in names])
        members = np.sort(members).astype(np.int64)
        local = np.full(n, -1, np.int64)
        local[members] = np.arange(len(members))
        q = np.flatnonzero((local[in_pre] >= 0) & (local[in_post] >= 0))
        q = q[np.argsort(local[in_pre[q]], kind="stable")]
        rec_ptr = np.zeros(len(members) + 1, np.int64)
        np.cumsum(np.bincount(local[in_pre[q]], minlength=len(members)), out=rec_ptr[1:])
        pre_local = local[in_pre[q]]
        by_delay = np.lexsort((in_d[q], pre_local)).astype(np.int64)
        steps.append(_Group(members, rec_ptr, local[in_post[q]], in_d[q], q.astype(np.int64), by_delay))
    return _Plan(tuple(steps), in_ptr, in_pre, in_d, in_w, is_closed_form(flat.tau_m, flat.tau_s), in_c, in_dm,
                 in_ds)


def _block_args(taus, plan: _Plan, s_time: np.ndarray, duration: float) -> tuple:
    """The block arguments of :func:`~neurodelay.layered._recurrent_kernels.forward_group` for a group
    with taus = (tau_m, tau_s) (else no blocks): (arrivals per block, exp(t/tau_s) and exp(t/tau_m)
    of each spike of s_time, exp(d/tau_s) and exp(d/tau_m) of each synapse: :func:`_scan_factors`)."""
    factored, syn_m, syn_s, spk_m, spk_s = _scan_factors(taus, plan, s_time, duration)
    return BLOCK_ARRIVALS if factored else 0, spk_s, spk_m, syn_s, syn_m


def _windowed_tables(steps, plan: _Plan, flat: FlatNetwork, eligible) -> tuple:
    """(syn_f, syn_tab, {id(group): rec_tab}) of the groups that run window by window (`eligible`: their
    ids) for :func:`~neurodelay.layered._windowed_group.forward_windowed`."""
    if not eligible:
        return _EMPTY2, np.zeros((0, 8)), {}
    syn_f = _synapse_factors(flat, plan)
    syn_tab = np.zeros((len(plan.in_d), 8))
    syn_tab[:, 0], syn_tab[:, 1], syn_tab[:, 2:6] = plan.in_d, plan.in_w, syn_f.T
    rec_tabs = {}
    for g in steps:
        if id(g) in eligible:
            q = g.rec_q[g.by_delay]
            rec_tabs[id(g)] = np.column_stack([g.rec_d[g.by_delay], plan.in_w[q], syn_f[0, q], syn_f[1, q],
                                               q.astype(float), g.rec_post[g.by_delay].astype(float)])
    return syn_f, syn_tab, rec_tabs


def _run_windowed(group: _Group, plan: _Plan, flat: FlatNetwork, taus, s_start, s_end, s_time, duration: float,
                  max_spikes: int, syn_f, syn_tab, rec_tab):
    """:func:`~neurodelay.layered._windowed_group.forward_windowed` of `group` in one trial: (spike times,
    global neurons, I - theta, status), or None where a window did not settle (the event loop then runs)."""
    a_ptr, fan_in = WG.arrival_ptr(group.members, plan.in_ptr, plan.in_pre, s_start, s_end)
    arr_qk = np.empty(int(a_ptr[-1]), K.packing(fan_in, len(s_time)))
    spk_f = _packed_factors(taus, syn_f, s_time, duration)[2]
    t, nrn, g, status = WG.forward_windowed(group.members, plan.in_ptr, plan.in_pre, plan.in_d, plan.in_w, flat.tau_m,
                                            flat.tau_s, flat.theta, flat.reset, flat.refractory, plan.closed, s_start,
                                            s_end, s_time, duration, max_spikes, group.rec_ptr, rec_tab, syn_f,
                                            syn_tab, spk_f, a_ptr, arr_qk, WG.WINDOW, WG.MAX_ITERATIONS)
    if status == WG.STATUS_NOT_SETTLED:
        return None
    return t, nrn, g, RK.STATUS_OK if status == WG.STATUS_OK else RK.STATUS_TOO_MANY_SPIKES


def simulate(net: Network, inputs, duration, *, record=(), sample_times=None, n_threads: int | None = None,
             max_spikes_per_trial: int = 10_000_000, progress: bool = False, initial_state=None) -> EventRecord:
    """:func:`neurodelay.layered.simulate` for a network with recurrent groups (any network works:
    a feedforward one is a sequence of one-population groups). Same arguments and result."""
    keep_freed_memory()
    prepared = prepare_run(net, inputs, duration, record, sample_times, initial_state)
    duration, flat, merged, sample_times, sample_neurons = prepared[:5]
    plan = _plan_for(net, flat, _plan)
    n = flat.n_neurons
    col_of = _sample_columns(n, sample_neurons)
    # readouts never spike: scan them only when their voltage is sampled
    steps = [s for s in plan.steps if isinstance(s, _Group) or s[3] or np.any(col_of[s[0]: s[0] + s[1]] >= 0)]
    theta, reset = flat.theta - flat.bias, flat.reset - flat.bias   # the scans run on u = V - bias
    static = (flat.kind, flat.tau_m, flat.tau_s, theta, reset, flat.refractory,
              plan.closed, plan.in_ptr, plan.in_pre, plan.in_d, plan.in_w)
    bounds = merged.trial_slices()
    threads = n_threads or default_threads()
    block_taus = {id(s): _factored_taus_of(flat, s.members, duration, False)
                  if layer_plan.FACTORED_FORWARD and BLOCK_ARRIVALS > 0 else None
                  for s in steps if isinstance(s, _Group)}
    # groups that run window by window (in trials that start at rest; one trial per thread)
    eligible = {id(s) for s in steps if isinstance(s, _Group) and WINDOWED and block_taus[id(s)] is not None
                and merged.n_trials >= WINDOWED_MIN_TRIALS and not np.any(col_of[s.members] >= 0)
                and not np.any(flat.bias[s.members]) and not np.any(s.rec_d < WG.MIN_DELAY)}
    # fewer trials than threads: the large recurrent groups of the event loop take every thread
    n_parts = threads if 1 < threads and merged.n_trials < threads else 1
    least = n_parts * max(PARTITION_MIN_NEURONS, 1)
    split = {id(s): s.partitions(n_parts) if n_parts > 1 and len(s.members) >= least and id(s) not in eligible
             else None for s in steps if isinstance(s, _Group)}
    if all(part is None for part in split.values()):
        n_parts = 1                                   # the trials in parallel
    syn_f, syn_tab, rec_tabs = _windowed_tables(steps, plan, flat, eligible)

    def run_trial(k):
        sl = slice(bounds[k], bounds[k + 1])
        order, s_start, s_end = _by_neuron(merged.neuron[sl], merged.time[sl], n)
        s_time = merged.time[sl][order]
        parts_t = [s_time]
        pos = len(s_time)
        samples = np.zeros((len(sample_times), len(sample_neurons)))
        v0, i0 = prepared.initial_state(k)
        u0, bias = v0 - flat.bias, flat.bias
        out_n, out_t, out_g = [], [], []
        total = 0
        for step in steps:
            if isinstance(step, _Group):
                args = (step.members, plan.in_ptr, plan.in_pre, plan.in_d, plan.in_w, flat.tau_m, flat.tau_s, theta,
                        reset, flat.refractory, plan.closed, s_start, s_end, s_time, duration, sample_times, col_of,
                        samples, max_spikes_per_trial - total, u0, i0, bias,
                        step.rec_ptr, step.rec_post, step.rec_d, step.rec_q, *_block_args(block_taus[id(step)], plan,
                                                                                          s_time, duration))
                part = split[id(step)]
                done = None
                if id(step) in eligible and not np.any(u0[step.members]) and not np.any(i0[step.members]):
                    done = _run_windowed(step, plan, flat, block_taus[id(step)], s_start, s_end, s_time, duration,
                                         max_spikes_per_trial - total, syn_f, syn_tab, rec_tabs[id(step)])
                if done is not None:
                    t, nrn, g, status = done
                elif part is None:
                    t, nrn, g, status, _ = RK.forward_group(*args)
                else:
                    t, nrn, g, status, _ = _forward_partitioned(n_parts, part, args)
                if status != RK.STATUS_OK:
                    raise _too_many(k, max_spikes_per_trial)
                by = np.argsort(nrn, kind="stable")           # grouped by neuron, in time order within one
                times, g, nrn = t[by], g[by], nrn[by]
                counts = np.bincount(nrn, minlength=n)[step.members]
                neurons = step.members
                is_lif = True
            else:
                off, size, _, is_lif = step
                counts, times, g = K.forward_range(off, off + size, *static, s_start, s_end, s_time, duration,
                                                   sample_times, col_of, samples, max_spikes_per_trial - total,
                                                   False, _EMPTY2, _EMPTY2, u0, i0, bias)
                neurons = np.arange(off, off + size)
                nrn = np.repeat(neurons, counts)
            total += len(times)
            if total > max_spikes_per_trial:
                raise _too_many(k, max_spikes_per_trial)
            pos = _place(counts, pos, s_start, s_end, neurons)
            if len(times):
                parts_t.append(times)
                s_time = np.concatenate(parts_t)
            if is_lif:
                out_n.append(nrn.astype(np.int64))
                out_t.append(times)
                out_g.append(g)
        return _trial_spikes(out_n, out_t, out_g, samples)

    results = map_trials(run_trial, merged.n_trials, 1 if n_parts > 1 else threads, progress)
    return prepared.record(net, results, engine="layered")


def adjoint(record: EventRecord, sources: AdjointSources, *, time_constants: bool = False,
            n_threads: int | None = None, record_tolerance: float = 1e-6) -> AdjointResult:
    """:func:`neurodelay.layered.adjoint` for a network with recurrent groups, from rest without bias
    (the caller hands other runs to the event engine's adjoint). Same arguments and result.

    Steps in reverse order: a feedforward layer by
    :func:`~neurodelay.layered._kernels.adjoint_range` (with factored exponentials where
    :func:`~neurodelay.layered.plan._reverse_taus` allows them, as in the feedforward engine), a recurrent group by
    :func:`~neurodelay.layered._recurrent_kernels.adjoint_group`; the time sensitivities of
    the spikes of earlier steps are summed in one row of g_time. Gradients of the trials are
    summed per fixed block of trials in trial order, whatever the number of threads.
    """
    net, flat = record.network, record.flat
    keep_freed_memory()
    rp = prepare_reverse(record, sources, record_tolerance)
    n, n_trials, duration, n_syn = flat.n_neurons, record.n_trials, float(record.duration), len(flat.out_post)
    plan = _plan_for(net, flat, _plan)
    static = (plan.in_ptr, plan.in_pre, plan.in_d, plan.in_w, flat.tau_m, flat.tau_s, flat.theta, flat.reset,
              flat.refractory)
    steps = plan.steps[::-1]
    # the groups that take the factored reverse pass: (tau_m, tau_s), else None
    taus = {id(s): _factored_taus_of(flat, s.members, duration, False)
            if layer_plan.FACTORED_REVERSE and not time_constants else None
            for s in steps if isinstance(s, _Group)}

    def run_trial(k, acc):
        n_in, sp_time, all_t, spikes, terms = _reverse_trial(record, rp, k, n)
        g_time = np.zeros((1, len(all_t)))
        spike_grad = np.zeros(len(sp_time))
        worst = 0.0
        for step in steps:
            if isinstance(step, _Group):
                factors = _scan_factors(taus[id(step)], plan, all_t, duration)
                w = RK.adjoint_group(step.members, step.rec_ptr, step.rec_post, step.rec_d, step.rec_q, *static,
                                     *spikes, duration, n_in, *terms, time_constants, *acc, g_time, spike_grad,
                                     *factors)
            else:
                off, size, _, is_lif = step
                factors = _scan_factors(_reverse_taus(flat, off, size, duration, is_lif, time_constants), plan, all_t,
                                        duration)
                w = K.adjoint_range(off, off + size, 0, *static, *spikes, duration, n_in, sp_time, *terms,
                                    time_constants, *acc, g_time, spike_grad, *factors)
            worst = max(worst, w)
        return spike_grad, g_time[0, :n_in].copy(), worst

    blocks = trial_blocks(n_trials)

    def run_block(b):
        acc = _new_acc(n_syn, n)
        return acc, [run_trial(k, acc) for k in range(blocks[b], blocks[b + 1])]

    done = map_trials(run_block, len(blocks) - 1, n_threads or default_threads())
    return _adjoint_result(done, flat, plan.in_c, rp.theta_src, n_trials, time_constants, record_tolerance)
