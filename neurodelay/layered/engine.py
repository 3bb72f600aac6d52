"""The layered exact engine: forward simulation and EventProp reverse pass, one neuron at a time.

For networks whose projections form layers (no cycle between populations),
a neuron's input is known once the earlier layers have run, so each layer is
simulated neuron by neuron (see :mod:`neurodelay.layered._kernels`): the
neuron's arrivals are generated from a post-major synapse table and sorted by
a bucket sort, then scanned with the event engine's exact dynamics. The
reverse pass goes through the layers backwards and replays each neuron locally
instead of merging every spike in flight again. Networks with recurrent
layers (a population projecting onto itself, or a cycle between populations)
go to :mod:`neurodelay.layered.recurrent`, which runs each recurrent group of
populations as a whole and the other layers as here. Results equal those of
:mod:`neurodelay.events` to rounding. LIF layers with one tau_m and one tau_s
are scanned by default with factored exponentials (:data:`~neurodelay.layered.plan.FACTORED_FORWARD`:
running sums of w exp(t/tau), no exponential per arrival, arrivals in time bins
most of which are added whole, see :func:`~neurodelay.layered._kernels.scan_binned`):
spike times then differ from the event engine's by rounding (at most 1.2e-13 s
measured by bench/gradient.py at SHD size: 700 -> 256 -> 20, 64 trials, 388k
hidden spikes, identical counts) and gradients by 1.3e-10 of their largest entry there;
on three other batches of 16 trials (bench/exactness.py) by 1.0e-10 to 4.8e-10 with one
hidden layer and 9.6e-11 to 1.1e-9 with two, spike times by up to 2e-14 s. Near-grazing
crossings amplify any rounding: moving every input time of the same trials by one float64
step moves the event engine's own gradients by 3.7e-11 to 4.5e-10, and the factored
forward's differences are at most 2.5 times that. With
FACTORED_FORWARD off every neuron performs the event engine's floating-point
operations: spike times bit for bit, gradients to rounding (sums are taken in
another order).

:func:`fused_loss_and_grad` (what :func:`neurodelay.loss_and_grad` runs on
this engine when the loss is ``separable``) goes forward, through the loss and
backward one trial at a time, keeping each LIF neuron's arrivals (sorted, or
binned by time) from the forward scan for the reverse pass, so nothing is
generated and sorted twice and only one trial's arrivals (8 bytes each: synapse and source spike) are held per worker;
factored layers also keep each neuron's spikes and ends of refractoriness with the
state there (the forward half of the factored reverse pass), so that the reverse
pass walks each neuron's arrivals once, backwards.

Parallelism: over trials when the batch has at least as many trials as
threads, otherwise over fixed chunks of neurons within each layer. The chunks
and the blocks of trials whose gradients are summed together are the same
whatever the number of threads, so the results do not depend on it.
"""

from __future__ import annotations

import numpy as np

from .._allocator import keep_freed_memory
from ..events import adjoint as _events_adjoint
from ..events.adjoint import check_replay, neuron_ptr, prepare_reverse
from ..events.batch import default_threads, map_trials
from ..record import AdjointResult, AdjointSources, EventRecord, prepare_run
from ..network import Network
from ..spikes import SpikeTrains
from . import _kernels as K
from . import plan as layer_plan
from .plan import (_EMPTY2, _factored_taus, _kept_factors, _packed_factors, _plan, _plan_for, _reverse_taus,
                   _scan_factors, _synapse_factors)
from .trials import (N_CHUNKS, _adjoint_result, _block_gradients, _by_neuron, _chunks, _layer_spikes, _map,
                     _parallel, _place, _run_blocks, _sample_columns, _trial_spikes, _reverse_trial)

__all__ = ["supports", "simulate", "adjoint", "fused_loss_and_grad"]

def supports(net) -> str | None:
    """None if the layered engine handles `net` (feedforward layers, and recurrent groups of populations:
    see :mod:`neurodelay.layered.recurrent`; every Network), else a one-line reason."""
    if not isinstance(net, Network):
        return f"expected a Network, got {type(net).__name__}"
    return None


# ---------------------------------------------------------------- forward ----
def simulate(net: Network, inputs, duration, *, record=(), sample_times=None, n_threads: int | None = None,
             max_spikes_per_trial: int = 10_000_000, progress: bool = False, initial_state=None) -> EventRecord:
    """Simulate every trial of `inputs` exactly on [0, duration] with the layered engine.

    Same arguments and result as :func:`neurodelay.simulate` (inputs: a
    SpikeTrains or a dict source name -> SpikeTrains, times in s; duration: s or
    a Brian2 time; record: LIF/readout populations whose V is sampled at
    `sample_times`, s). Raises ValueError if :func:`supports` gives a reason.
    Spikes of one trial are sorted by (time, neuron).
    """
    reason = supports(net)
    if reason is not None:
        raise ValueError(f"net: the layered engine cannot simulate this network: {reason}")
    if not net.is_feedforward():
        from .recurrent import simulate as simulate_recurrent
        return simulate_recurrent(net, inputs, duration, record=record, sample_times=sample_times,
                                  n_threads=n_threads, max_spikes_per_trial=max_spikes_per_trial,
                                  progress=progress, initial_state=initial_state)
    keep_freed_memory()
    prepared = prepare_run(net, inputs, duration, record, sample_times, initial_state)
    duration, flat, merged, sample_times, sample_neurons = prepared[:5]
    plan = _plan_for(net, flat)
    n = flat.n_neurons
    col_of = _sample_columns(n, sample_neurons)
    # readouts never spike: scan them only when their voltage is sampled
    layers = [ly for ly in plan.layers if ly[3] or np.any(col_of[ly[0]: ly[0] + ly[1]] >= 0)]
    # a bias b: the scans run on u = V - b with threshold theta - b and reset - b
    static = (flat.kind, flat.tau_m, flat.tau_s, flat.theta - flat.bias, flat.reset - flat.bias, flat.refractory,
              plan.closed, plan.in_ptr, plan.in_pre, plan.in_d, plan.in_w)
    moved = np.zeros(n, bool) if prepared.v_init is None and not flat.has_initial_state else np.ones(n, bool)
    moved |= flat.bias != 0.0                                # neurons that may not take the factored scan
    taus = {off: _factored_taus(flat, off, size, duration, np.any(col_of[off: off + size] >= 0))
            for off, size, _, is_lif in layers
            if is_lif and layer_plan.FACTORED_FORWARD and not np.any(moved[off: off + size])}
    syn_f = _synapse_factors(flat, plan) if any(t is not None for t in taus.values()) else _EMPTY2
    bounds = merged.trial_slices()

    def run_trial(k, pool):
        sl = slice(bounds[k], bounds[k + 1])
        order, s_start, s_end = _by_neuron(merged.neuron[sl], merged.time[sl], n)
        parts_t = [merged.time[sl][order]]
        s_time = parts_t[0]
        pos = len(s_time)
        samples = np.zeros((len(sample_times), len(sample_neurons)))
        v0, i0 = prepared.initial_state(k)
        start = (v0 - flat.bias, i0, flat.bias)
        out_n, out_t, out_g = [], [], []
        total = 0
        for off, size, _, is_lif in layers:
            factors = _packed_factors(taus.get(off), syn_f, s_time, duration)

            def work(chunk, s_time=s_time, factors=factors):
                c0, c1, _ = chunk
                return K.forward_range(c0, c1, *static, s_start, s_end, s_time, duration, sample_times, col_of,
                                       samples, max_spikes_per_trial - total, *factors, *start)
            res = _map(pool, work, _chunks(off, size))
            counts, times, total = _layer_spikes(res, k, total, max_spikes_per_trial)
            pos = _place(counts, pos, s_start, s_end, slice(off, off + size))
            parts_t.append(times)
            s_time = np.concatenate(parts_t) if len(times) else s_time
            if is_lif:
                out_n.append(np.repeat(np.arange(off, off + size, dtype=np.int64), counts))
                out_t.append(times)
                out_g.append(np.concatenate([r[2] for r in res]))
        return _trial_spikes(out_n, out_t, out_g, samples)

    threads = n_threads or default_threads()
    n_trials = merged.n_trials
    pool = _parallel(threads, n_trials)
    if pool is None:
        results = map_trials(lambda k: run_trial(k, None), n_trials, threads, progress)
    else:
        with pool:
            results = [run_trial(k, pool if k else None) for k in range(n_trials)]  # trial 0 compiles
    return prepared.record(net, results, engine="layered")


# ---------------------------------------------------------------- adjoint ----
def adjoint(record: EventRecord, sources: AdjointSources, *, time_constants: bool = False,
            n_threads: int | None = None, record_tolerance: float = 1e-6, state: bool = False) -> AdjointResult:
    """Reverse pass of EventProp with delays over every trial of `record`, layer by layer.

    Same arguments and result as :func:`neurodelay.events.adjoint` and the same
    numbers to rounding, for a record of any engine (networks with recurrent groups:
    :func:`neurodelay.layered.recurrent.adjoint`). Networks that
    :func:`supports` refuses, networks with a bias current, records that do not start at rest,
    and requests for the state gradients (`state`: dL/dbias, dL/dV(0), dL/dI(0)) are handed to
    :func:`neurodelay.events.adjoint`.
    Raises :class:`~neurodelay.events.adjoint.RecordMismatchError` when the
    record's spikes are not threshold crossings of its network.
    """
    net, flat = record.network, record.flat
    if supports(net) is not None or state or not record.starts_at_rest or np.any(flat.bias):
        return _events_adjoint(record, sources, time_constants=time_constants, n_threads=n_threads,
                               record_tolerance=record_tolerance, state=state)
    if not net.is_feedforward():
        from .recurrent import adjoint as adjoint_recurrent
        return adjoint_recurrent(record, sources, time_constants=time_constants, n_threads=n_threads,
                                 record_tolerance=record_tolerance)
    keep_freed_memory()
    rp = prepare_reverse(record, sources, record_tolerance)
    n, n_trials, duration, n_syn = flat.n_neurons, record.n_trials, float(record.duration), len(flat.out_post)
    plan = _plan_for(net, flat)
    static = (plan.in_ptr, plan.in_pre, plan.in_d, plan.in_w, flat.tau_m, flat.tau_s, flat.theta, flat.reset,
              flat.refractory)
    layers = plan.layers[::-1]

    def run_trial(k, acc, pool, ws):
        n_in, sp_time, all_t, spikes, terms = _reverse_trial(record, rp, k, n)
        trial_args = (*spikes, duration, n_in, sp_time, *terms, time_constants)
        g_time = np.zeros((N_CHUNKS, len(all_t)))
        spike_grad = np.zeros(len(sp_time))
        worst = 0.0
        for off, size, _, is_lif in layers:
            factors = _scan_factors(_reverse_taus(flat, off, size, duration, is_lif, time_constants), plan, all_t,
                                    duration)

            def work(chunk, factors=factors):
                c0, c1, row = chunk
                return K.adjoint_range(c0, c1, row, *static, *trial_args, *acc, g_time, spike_grad, *factors)
            worst = max([worst] + _map(pool, work, _chunks(off, size)))
        return spike_grad, g_time[:, :n_in].sum(axis=0), worst

    done = _run_blocks(run_trial, n_trials, n_threads, n_syn, n)
    return _adjoint_result(done, flat, plan.in_c, rp.theta_src, n_trials, time_constants, record_tolerance)


# ------------------------------------------------- fused forward -> loss -> backward ----
def fused_loss_and_grad(net: Network, inputs, duration, loss, labels=None, *, time_constants: bool = False,
                        n_threads: int | None = None, record_tolerance: float = 1e-6,
                        max_spikes_per_trial: int = 10_000_000):
    """Forward pass, loss and reverse pass fused per trial: (values (n_trials,), AdjointResult, EventRecord),
    or None where this path does not apply (then run :func:`simulate`, the loss and :func:`adjoint`).

    Applies to feedforward networks (recurrent groups take the unfused path) without bias currents
    or initial states, and to losses whose ``separable`` attribute is true (each trial's value and
    sources depend only on that trial). Each trial is simulated (the LIF layers' arrivals are generated,
    sorted (factored scans: binned by time) and kept, per neuron), its one-trial record goes through
    ``loss.value_and_sources`` with its labels, and the reverse pass walks the kept arrivals backwards
    instead of generating and sorting them again; only one trial's arrivals are held per worker.
    Results: the same spikes as :func:`simulate` (bit for bit), the loss values of the batch record,
    and the gradients of :func:`adjoint` (to rounding: the per-trial sources are the same numbers; the
    factored reverse pass takes each neuron's arrivals in bin order, :func:`adjoint` in time order). Arguments as for :func:`neurodelay.loss_and_grad` (inputs:
    SpikeTrains or a dict source name -> SpikeTrains; duration: s).
    """
    if supports(net) is not None or not net.is_feedforward() or not getattr(loss, "separable", False):
        return None
    keep_freed_memory()
    prepared = prepare_run(net, inputs, duration, (), None, None)
    duration, flat, merged = prepared[:3]
    n_trials = merged.n_trials
    if n_trials == 0 or flat.has_initial_state or np.any(flat.bias):
        return None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == 0 or labels.shape[0] != n_trials:
            return None                    # the loss's own check raises on the unfused path
    plan = _plan(net, flat)     # not cached: nothing else reuses it, and the record it returns keeps flat alive
    lif_layers = [ly for ly in plan.layers if ly[3]]
    factored = layer_plan.FACTORED_FORWARD and any(_factored_taus(flat, off, size, duration, False) is not None
                                        for off, size, _, _ in lif_layers)
    syn_f = _synapse_factors(flat, plan) if factored else _EMPTY2
    n, n_syn = flat.n_neurons, len(flat.out_post)
    static_f = (flat.tau_m, flat.tau_s, flat.theta, flat.reset, flat.refractory, plan.closed, plan.in_ptr,
                plan.in_pre, plan.in_d, plan.in_w)
    static_b = (flat.tau_m, flat.tau_s, flat.theta, flat.reset, flat.refractory)
    bounds = merged.trial_slices()
    no_samples = np.zeros((0, 0))

    fan_in = {off: int(np.diff(plan.in_ptr[off: off + size + 1]).max(initial=0)) for off, size, _, _ in lif_layers}

    def workspace(ws, off, chunks, s_start, s_end, n_sources):
        """Slices of this worker's packed arrivals for layer `off` (grown when needed, reused by its
        next trials), one per chunk, each as long as the chunk's arrivals can be (packed:
        :func:`~neurodelay.layered._kernels.packing`)."""
        ends = K.arrival_bounds(np.array([c1 for _, c1, _ in chunks], np.int64), chunks[0][0], plan.in_ptr,
                                plan.in_pre, s_start, s_end)
        starts = np.concatenate([[0], ends[:-1]])
        dtype = K.packing(fan_in[off], n_sources)
        if off not in ws or len(ws[off]) < ends[-1] or ws[off].dtype != dtype:
            ws[off] = np.empty(int(ends[-1] * 1.05) + 1024, dtype)
        return [ws[off][a:b] for a, b in zip(starts, ends)]

    def run_trial(k, acc, pool, ws):
        sl = slice(bounds[k], bounds[k + 1])
        in_n, in_t = merged.neuron[sl], merged.time[sl]
        n_in = len(in_t)
        in_order, s_start, s_end = _by_neuron(in_n, in_t, n)
        parts_t, parts_n, parts_g = [in_t[in_order]], [], []
        s_time = parts_t[0]
        pos, total, kept, fwd_worst = n_in, 0, {}, 0.0
        # ---- forward, keeping every LIF neuron's sorted arrivals
        for off, size, _, _ in lif_layers:
            factors = _kept_factors(flat, syn_f, off, size, s_time, duration)
            chunks = _chunks(off, size)
            arrays = workspace(ws, off, chunks, s_start, s_end, len(s_time))

            def work(item, s_time=s_time, total=total, factors=factors):
                (c0, c1, _), a_qk = item
                return K.forward_keep_range(c0, c1, *static_f, s_start, s_end, s_time, duration,
                                            max_spikes_per_trial - total, a_qk, *factors)
            res = _map(pool, work, list(zip(chunks, arrays)))
            counts, times, total = _layer_spikes(res, k, total, max_spikes_per_trial)
            pos = _place(counts, pos, s_start, s_end, slice(off, off + size))
            parts_t.append(times)
            parts_n.append(np.repeat(np.arange(off, off + size, dtype=np.int64), counts))
            parts_g.append(np.concatenate([r[2] for r in res]))
            s_time = np.concatenate(parts_t) if len(times) else s_time
            kept[off] = ([(c, r[3], x, r[4], r[5]) for c, r, x in zip(chunks, res, arrays)], factors)
            fwd_worst = max([fwd_worst] + [r[6] for r in res])
        # the trial's spikes by position (grouped by neuron) and in record order (time, neuron)
        sp_n = np.concatenate(parts_n) if parts_n else np.zeros(0, np.int64)
        sp_t = s_time[n_in:]
        sp_g = np.concatenate(parts_g) if parts_g else np.zeros(0)
        rec_order = np.lexsort((sp_n, sp_t))
        rec = (sp_t[rec_order], sp_n[rec_order], sp_g[rec_order], no_samples)
        # ---- the loss on this trial's record
        one = EventRecord(net, flat, SpikeTrains(np.zeros(n_in, np.int64), in_n, in_t, 1, merged.n_neurons),
                          np.zeros(len(sp_t), np.int64), rec[1], rec[0], rec[2], duration,
                          voltage=np.zeros((1, 0, 0)), engine="layered")
        values, sources = loss.value_and_sources(one, None if labels is None else labels[k: k + 1])
        rp = prepare_reverse(one, sources, record_tolerance)
        _, j_neuron, j_time, j_value = rp.jumps
        _, r_neuron, r_rate, r_coef = rp.rates
        sp_source = np.empty(len(sp_t))
        sp_source[rec_order] = rp.spike_time_src
        ps_ptr, cs_ptr = neuron_ptr(j_neuron, n), neuron_ptr(r_neuron, n)
        # ---- reverse pass, layers backwards
        g_time = np.zeros((N_CHUNKS, len(s_time)))
        spike_grad = np.zeros(len(sp_t))
        s_id = np.arange(len(s_time), dtype=np.int64)
        worst = fwd_worst
        for off, size, _, is_lif in plan.layers[::-1]:
            factors = _scan_factors(_reverse_taus(flat, off, size, duration, is_lif, time_constants), plan, s_time,
                                    duration)
            if is_lif:
                items, (logged, _, spk_f) = kept.pop(off)

                def work(item, factors=factors, logged=logged, spk_f=spk_f):
                    (c0, c1, row), a_ptr, a_qk, e_ptr, log = item
                    return K.adjoint_kept_range(c0, c1, row, a_ptr, a_qk, plan.in_ptr, plan.in_d, plan.in_w,
                                                *static_b, s_start, s_end, s_time, duration, n_in, sp_g, sp_source,
                                                ps_ptr, j_time, j_value, cs_ptr, r_coef, r_rate, time_constants,
                                                *acc, g_time, spike_grad, *factors, logged, e_ptr, log, syn_f, spk_f)
                worst = max([worst] + _map(pool, work, items))
            else:
                def work(chunk, factors=factors):
                    c0, c1, row = chunk
                    return K.adjoint_range(c0, c1, row, plan.in_ptr, plan.in_pre, plan.in_d, plan.in_w, *static_b,
                                           s_start, s_end, s_time, s_id, duration, n_in, sp_t, sp_g, sp_source,
                                           ps_ptr, j_time, j_value, cs_ptr, r_coef, r_rate, time_constants,
                                           *acc, g_time, spike_grad, *factors)
                worst = max([worst] + _map(pool, work, _chunks(off, size)))
        acc[4][:] += rp.theta_src
        input_time = np.empty(n_in)
        input_time[in_order] = g_time[:, :n_in].sum(axis=0)
        return rec, values, spike_grad[rec_order], input_time, worst

    done = _run_blocks(run_trial, n_trials, n_threads, n_syn, n)
    results = [r for _, per_trial in done for r in per_trial]
    worst = check_replay(max((r[4] for r in results), default=0.0), flat, record_tolerance)
    w_flat, d_flat, g_tm, g_ts, g_th = _block_gradients(done, flat, plan.in_c)
    record = prepared.record(net, [r[0] for r in results], engine="layered")
    values = np.concatenate([np.asarray(r[1], dtype=float).ravel() for r in results])
    result = AdjointResult(w_flat, d_flat, g_tm if time_constants else None, g_ts if time_constants else None,
                           g_th, np.concatenate([r[2] for r in results]), np.concatenate([r[3] for r in results]),
                           n_trials, float(worst))
    return values, result, record


class LayeredEngine:
    """The layered engine as an :class:`~neurodelay.engines.Engine` (registered as ``"layered"``).

    Runs feedforward and recurrent networks (any delay kinds, refractoriness, readouts, bias
    currents and initial states: the scans run on u = V - bias) with
    the event engine's results at a fraction of its cost (the gradients of runs
    with a bias or away from rest are the event engine's adjoint's); :meth:`supports` gives
    the reason for objects it does not run, which ``engine="auto"`` then offers to the
    next engine.
    """

    name = "layered"

    def __init__(self, max_spikes_per_trial: int = 10_000_000, progress: bool = False, fused: bool = True):
        self.max_spikes_per_trial = int(max_spikes_per_trial)
        self.progress = bool(progress)
        self.fused = bool(fused)

    def __repr__(self) -> str:
        return (f"LayeredEngine(max_spikes_per_trial={self.max_spikes_per_trial}, progress={self.progress}, "
                f"fused={self.fused})")

    def supports(self, net) -> str | None:
        return supports(net)

    def simulate(self, net, inputs, duration, *, record=(), sample_times=None, n_threads=None,
                 initial_state=None):
        return simulate(net, inputs, duration, record=record, sample_times=sample_times, n_threads=n_threads,
                        max_spikes_per_trial=self.max_spikes_per_trial, progress=self.progress,
                        initial_state=initial_state)

    def adjoint(self, record, sources, *, time_constants=False, n_threads=None, record_tolerance=1e-6,
                state=False):
        return adjoint(record, sources, time_constants=time_constants, n_threads=n_threads,
                       record_tolerance=record_tolerance, state=state)

    def fused_loss_and_grad(self, net, inputs, duration, loss, labels=None, *, time_constants=False, n_threads=None,
                            record_tolerance=1e-6):
        """:func:`fused_loss_and_grad` (None when this engine was built with ``fused=False`` or the
        path does not apply); :func:`neurodelay.loss_and_grad` tries it first."""
        if not self.fused:
            return None
        return fused_loss_and_grad(net, inputs, duration, loss, labels, time_constants=time_constants,
                                   n_threads=n_threads, record_tolerance=record_tolerance,
                                   max_spikes_per_trial=self.max_spikes_per_trial)
