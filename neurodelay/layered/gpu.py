"""The layered engine on an NVIDIA GPU: one CUDA thread per (trial, neuron) of a layer (engine ``"cuda"``).

Given the spikes of the earlier layers, every neuron of a feedforward layer is
independent in every trial (see :mod:`neurodelay.layered.engine`), so the
forward pass is one kernel launch per layer with a thread per (trial, neuron),
and the reverse pass one launch per layer, backwards. Each thread runs the CPU
engine's own per-neuron code (:mod:`neurodelay.layered._kernels`:
:func:`~neurodelay.layered._kernels.gather_sorted`,
:func:`~neurodelay.layered._kernels.scan_forward`,
:func:`~neurodelay.layered._kernels.adjoint_neuron`), compiled for the GPU from
the same Python source by :func:`device_function`, in float64. The scans are the
exact ones (not the factored scans): the same operations as the event engine, so
spike times differ from the CPU engines' only where the GPU's ``exp`` and ``log``
(CUDA's libdevice) round differently from the C library's, and gradients to
rounding.

Memory layout: every spike of a batch lives in one array. Forward: the inputs
of every trial first, then a slot of ``cap`` entries per (trial, LIF neuron),
filled by its thread (a neuron that would overflow its slot makes the host
double ``cap`` and run the batch again). Reverse: inputs, then the record's
spikes, grouped by (trial, neuron); each thread adds the time sensitivities of
its presynaptic spikes to its own row of ``g_time`` (one row per neuron of the
layer) and its synapses' gradients to its trial's row, so no two threads add to
the same number, and rows are summed afterwards in a fixed order: results do not
depend on the scheduling. Per-thread workspaces (arrivals and the local event
log) are sized from the spike counts; batches whose workspace would exceed
:data:`WORKSPACE_BYTES` run in groups of trials.

Speed (``bench/gpu_gradient.py``, H100, SHD size, 8000 unsorted input spikes per trial, measured
2026-11-27): forward + backward 6.0 / 4.1 ms per trial for 700 -> 256 -> 20 at batch 64 / 256 (an SHD
epoch in 33 s), 6.9 / 5.1 for 700 -> 256 -> 256 -> 20 (41 s); the revision before the host work below
(cad76fd) took 6.7 / 8.5 ms at batch 256 in the same call (5.7-6.8 / 7.0-8.0 in two other calls). The kernels
take about 1.6 ms of the 4.1 (the hidden layer's forward 1.0, its reverse 0.36, the readouts' reverse
0.18); the rest is host work: sorting the inputs (:meth:`neurodelay.spikes.SpikeTrains.sort_order`,
none for inputs already in order), the loss, transfers, grouping spikes by (trial, neuron)
(:func:`neurodelay._sorting.counting_sort`, O(n); two stable numpy sorts took 100 ms a call at batch 256
on a 2-core host against 17-23 ms), the record (:func:`_trial_results`; its sort by time runs on every
core) and the count of each neuron's arrivals (:func:`_incoming`, dense where small). Host memory grows
linearly with the batch (peak RSS 1.8 GiB at batch 256, 2.8 GiB at 1024, where a trial takes 4.3 ms:
no faster than at 256). Layers whose reverse pass the CPU engine runs with factored exponentials
(``plan._reverse_taus``) run it so here too (:func:`~neurodelay.layered._kernels.reverse_factored`,
:func:`~neurodelay.layered._kernels.reverse_linear`; the spike factors by the ``exp_factor`` kernel
on the device). LIF layers reached only through their spike times, with one synapse per pair of neurons,
take the split reverse pass (:data:`SPLIT_REVERSE`, :mod:`neurodelay.layered._split_reverse`): a block
of :data:`SPLIT_LANES` threads per (trial, neuron), each taking a share of its synapses, no arrival
sorted. With one thread per (trial, neuron), which gathers and sorts the neuron's ~8000 arrivals again,
that kernel took 3.5 ms per trial (Nsight Compute at batch 16: 2 warps per SM, 13 cycles between
instructions, waiting on memory; SMs busy 47 % of the time): the whole step took 9.9-10.2 ms per trial
at batch 256, 12.4-12.5 with two hidden layers, gradients 1.6e-15 apart. (Those runs had the split pass's
two walks over the arrivals as two functions, now one, ``split_arrivals``, and the states at the events
inside ``split_costate``, now ``segment_states``, shared with the recurrent groups: the same operations,
run since in numba's CUDA simulator only. Those runs also sized the groups of trials with a workspace per
arrival for every layer, which the split kernel does not use: batch 256 ran in 8 groups of launches at SHD
size; it now runs in 2, not yet timed on a GPU.)

Limits (:func:`supports` names them): feedforward networks only. Bias
currents, initial states and sampled voltages are simulated on the GPU (as on the
layered engine: scans on u = V - bias); their gradients come from the event
engine's adjoint on the CPU. Without a GPU the same kernels run in numba's
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported), which
is how the tests check them on CPU.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from .._sorting import counting_sort, grouped_lexsort
from ..events.adjoint import adjoint as events_adjoint
from ..events.adjoint import check_replay, neuron_ptr, prepare_reverse
from ..flat import KIND_LIF
from ..network import Network
from ..record import AdjointResult, EventRecord, prepare_run
from .plan import _plan_for, _reverse_taus
from .trials import _too_many

__all__ = ["CudaEngine", "supports", "simulate", "adjoint", "device_function"]

#: threads per block of every launch
THREADS_PER_BLOCK = 64
#: first guess of the spike slot of a (trial, neuron) in the forward pass (doubled when a neuron fills it)
FIRST_CAP = 64
#: GPU memory (bytes) for the per-thread workspaces of one launch: larger batches run in groups of trials
WORKSPACE_BYTES = 6 * 2 ** 30
#: reverse pass of LIF layers reached only through their spike times (factored, one synapse per pair of
#: neurons) by a block of SPLIT_LANES threads per (trial, neuron) (:mod:`neurodelay.layered._split_reverse`)
#: instead of one thread that sorts the neuron's arrivals
SPLIT_REVERSE = True
SPLIT_LANES = 32
#: blocks of the synapse-count matrix with at most this many entries are multiplied as dense matrices
#: (the count of each neuron's incoming arrivals, :func:`_incoming`)
DENSE_INCOMING = 2 ** 22


def device_function(kernel):
    """:func:`neurodelay.layered._gpu_kernels.device_function` (imports numba.cuda)."""
    from ._gpu_kernels import device_function as retarget
    return retarget(kernel)


def _kernels() -> dict:
    """The engine's CUDA kernels by name (compiled on first launch for the argument types)."""
    from ._gpu_kernels import KERNELS
    return KERNELS


# ------------------------------------------------------------------ host side ----
_KERNEL_SECONDS: dict | None = None     # when a dict: seconds per kernel name (each launch synchronised)


def _launch(name: str, n_threads: int, *args, label: str | None = None, block: int | None = None) -> None:
    """Launch kernel `name` on n_threads threads in blocks of `block` (default THREADS_PER_BLOCK)."""
    if n_threads <= 0:
        return
    kernel = _kernels()[name]
    block = block or THREADS_PER_BLOCK
    t0 = time.perf_counter()
    kernel[(int(n_threads) + block - 1) // block, block](*args)
    if _KERNEL_SECONDS is not None:
        from numba import cuda
        cuda.synchronize()
        key = label or name
        _KERNEL_SECONDS[key] = _KERNEL_SECONDS.get(key, 0.0) + time.perf_counter() - t0


def kernel_seconds(on: bool) -> dict | None:
    """Start (on: every launch is then synchronised and timed) or stop timing the kernels; returns the
    seconds per kernel name (the forward and reverse kernels per population: ``"adjoint_layer hid"``)
    measured since the last start (for benchmarks: the rest is host work and transfers)."""
    global _KERNEL_SECONDS
    done = _KERNEL_SECONDS
    _KERNEL_SECONDS = {} if on else None
    return done


class _Workspace:
    """GPU buffers reused across the launches of one call: ``get(name, size, dtype)`` returns the first `size`
    entries of the buffer `name`, reallocated (1.5 times larger) only when it is too small, so that the
    large per-thread workspaces are allocated a few times per call rather than at every launch."""

    def __init__(self):
        self._buffers: dict = {}

    def get(self, name: str, size: int, dtype=np.float64):
        from numba import cuda
        size = max(int(size), 1)
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < size:
            self._buffers[name] = buf = None                  # free the old one first
            self._buffers[name] = buf = cuda.device_array(int(size * 1.5) + 1024, dtype)
        return buf[:size]


def _gpu_reason() -> str | None:
    try:
        from numba import cuda
    except Exception as exc:   # pragma: no cover - numba without its CUDA target
        return f"numba.cuda cannot be imported ({exc})"
    if not cuda.is_available():
        return "no CUDA GPU is available (numba.cuda.is_available() is False)"
    return None


def supports(net) -> str | None:
    """None if the GPU engine runs `net`, else a one-line reason: feedforward networks (LIF and readout
    populations, any delay kinds, bias currents, initial states), on a machine where numba.cuda finds a
    GPU (or runs its simulator)."""
    if not isinstance(net, Network):
        return f"expected a Network, got {type(net).__name__}"
    if not net.is_feedforward():
        return "the network has recurrent projections (the GPU engine runs feedforward layers)"
    return _gpu_reason()


def _synapse_counts(plan, n: int):
    """(N, N) sparse: entry (post, pre) = the number of synapses pre -> post (of the post-major table)."""
    from scipy.sparse import csr_matrix
    return csr_matrix((np.ones(len(plan.in_pre)), plan.in_pre, plan.in_ptr), shape=(n, n))


def _incoming(synapses, counts: np.ndarray, off: int = 0, size: int | None = None) -> np.ndarray:
    """(T, size): per trial and postsynaptic neuron off..off+size-1 (default: all), its incoming synapses
    times their presynaptic spikes (:func:`~neurodelay.layered._kernels.incoming_count`), from
    :func:`_synapse_counts` and counts (T, N) of spikes per neuron. Where the block of the synapse matrix has
    at most :data:`DENSE_INCOMING` entries it is multiplied as a dense matrix (BLAS, on every core: at SHD
    size and batch 256 the sparse product took 27-44 ms a call on the H100's host); sums of integers, exact
    either way."""
    size = synapses.shape[0] - off if size is None else size
    block = synapses[off: off + size]
    if size * synapses.shape[1] <= DENSE_INCOMING:
        return np.rint(counts.astype(np.float64) @ block.toarray().T).astype(np.int64)
    return np.rint((block @ counts.T).T).astype(np.int64)


def _ptr(sizes: np.ndarray) -> np.ndarray:
    out = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=out[1:])
    return out


def _groups(per_trial_bytes: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive groups of trials whose workspaces together stay under WORKSPACE_BYTES (one trial at least)."""
    groups, k0, acc = [], 0, 0
    for k, b in enumerate(per_trial_bytes):
        if k > k0 and acc + b > WORKSPACE_BYTES:
            groups.append((k0, k))
            k0, acc = k, 0
        acc += int(b)
    groups.append((k0, len(per_trial_bytes)))
    return groups


def _by_trial_neuron(trial, neuron, n_trials: int, n: int):
    """Stable order grouping entries by (trial, neuron), and (T, N) start / end into the reordered entries."""
    order, ptr = counting_sort(trial.astype(np.int64) * n + neuron, n_trials * n)
    return order, ptr[:-1].reshape(n_trials, n).copy(), ptr[1:].reshape(n_trials, n).copy()


def simulate(net: Network, inputs, duration, *, record=(), sample_times=None, n_threads=None,
             max_spikes_per_trial: int = 10_000_000, initial_state=None) -> EventRecord:
    """Every trial of `inputs` on [0, duration] s on the GPU; same arguments and result as
    :func:`neurodelay.simulate` (record, sample_times: V of those populations at those times, s;
    initial_state: per-trial state at t = 0), spike times to rounding of the GPU's exponentials.
    n_threads is ignored. Raises ValueError for networks :func:`supports` refuses."""
    from numba import cuda

    reason = supports(net)
    if reason is not None:
        raise ValueError(f"net: the GPU engine cannot simulate this network: {reason}")
    prepared = prepare_run(net, inputs, duration, record, sample_times, initial_state)
    duration, flat, merged, sample_times, sample_neurons = prepared[:5]
    plan = _plan_for(net, flat)
    n, n_trials = flat.n_neurons, merged.n_trials
    col_of = np.full(n, -1, np.int64)
    col_of[sample_neurons] = np.arange(len(sample_neurons))
    # LIF layers, and readouts whose voltage is sampled (they never spike)
    layers = [ly for ly in plan.layers if ly[3] or np.any(col_of[ly[0]: ly[0] + ly[1]] >= 0)]
    lif_index = np.full(n, -1, np.int64)
    for off, size, _, is_lif in layers:
        if is_lif:
            lif_index[off: off + size] = np.arange(size) + (lif_index.max() + 1)
    n_lif = int(lif_index.max() + 1)
    order, in_start, in_end = _by_trial_neuron(merged.trial, merged.neuron, n_trials, n)
    n_inputs = len(order)
    # a bias b: the scans run on u = V - b with threshold theta - b and reset - b (as the layered engine's)
    static = tuple(cuda.to_device(np.ascontiguousarray(a)) for a in (
        flat.kind == KIND_LIF, flat.tau_m, flat.tau_s, flat.theta - flat.bias, flat.reset - flat.bias, flat.refractory,
        plan.closed, plan.in_ptr, plan.in_pre, plan.in_d, plan.in_w))
    start = np.stack([prepared.initial_state(k) for k in range(n_trials)]) if n_trials else np.zeros((0, 2, n))
    state = (cuda.to_device(np.ascontiguousarray(start[:, 0] - flat.bias)),
             cuda.to_device(np.ascontiguousarray(start[:, 1])), cuda.to_device(np.ascontiguousarray(flat.bias)))
    no_ids = cuda.to_device(np.zeros(1, np.int64))
    sampling = (cuda.to_device(sample_times), cuda.to_device(col_of))
    synapses = _synapse_counts(plan, n)
    ws = _Workspace()
    cap = FIRST_CAP
    while True:
        base = np.where(lif_index >= 0, n_inputs + (np.arange(n_trials)[:, None] * n_lif + lif_index) * cap, 0)
        s_start = np.where(lif_index >= 0, base, in_start)
        s_end = s_start.copy()
        s_end[:, lif_index < 0] = in_end[:, lif_index < 0]
        s_time_h = np.zeros(max(n_inputs + n_trials * n_lif * cap, 1))
        s_time_h[:n_inputs] = merged.time[order]
        s_time, s_g = cuda.to_device(s_time_h), cuda.device_array(len(s_time_h))
        samples = _zeros((n_trials, len(sample_times), len(sample_neurons)))
        d_start = cuda.to_device(s_start)
        full = False
        for off, size, name, _ in layers:
            inc = _incoming(synapses, s_end - s_start, off, size)
            # workspace per arrival: counts, time, synapse (8 bytes each)
            for k0, k1 in _groups(inc.sum(axis=1) * 24):
                ws_ptr = _ptr(inc[k0:k1].ravel())
                m_all = int(ws_ptr[-1])
                t = (k1 - k0) * size
                n_out = ws.get("n_out", t, np.int64)
                _launch("forward_layer", t, off, size, k0, k1 - k0, *static, d_start, cuda.to_device(s_end), s_time,
                        s_g, duration, cap, cuda.to_device(ws_ptr), ws.get("counts", m_all + t, np.int64),
                        ws.get("arr_t", m_all), ws.get("arr_q", m_all, np.int64), no_ids, *sampling, samples,
                        *state, n_out, label=f"forward_layer {name}")
                got = n_out.copy_to_host().reshape(k1 - k0, size)
                if np.any(got < 0):
                    full = True
                    break
                s_end[k0:k1, off: off + size] = s_start[k0:k1, off: off + size] + got
            if full:
                break
            per_trial = (s_end - s_start)[:, lif_index >= 0].sum(axis=1)
            if np.any(per_trial > max_spikes_per_trial):
                raise _too_many(int(np.argmax(per_trial > max_spikes_per_trial)), max_spikes_per_trial)
        if not full:
            break
        cap *= 2
    return prepared.record(net, _trial_results(s_start, s_end, lif_index, s_time.copy_to_host(),
                                               s_g.copy_to_host(), samples.copy_to_host()), engine="cuda")


def _trial_results(s_start, s_end, lif_index, s_time, s_g, samples) -> list:
    """Per trial (time, neuron, I - theta, sampled voltages), spikes sorted by (time, neuron), from the LIF
    slots."""
    n_trials = s_start.shape[0]
    lif = np.flatnonzero(lif_index >= 0)
    trial, neuron, time, g = _gather_slots(s_start, s_end, lif, s_time, s_g)
    # lexsort((neuron, time, trial)) in O(n): at batch 256 with 6000 spikes per trial 45 ms against 281 ms
    # for the two stable numpy sorts it replaced (on a loaded 2-core machine, same order)
    o = grouped_lexsort(trial, n_trials, time, neuron)
    time, neuron, g = time[o], neuron[o], g[o]     # once: reordering inside the loop cost O(trials x spikes)
    bounds = _ptr((s_end - s_start)[:, lif].sum(axis=1))
    return [(time[a:b], neuron[a:b], g[a:b], samples[k]) for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


@njit(cache=True, nogil=True)
def _gather_slots(s_start, s_end, lif, s_time, s_g):
    """(trial, neuron, time, I - theta) of the spikes in the slots s_start[k, j]..s_end[k, j] of the LIF
    neurons `lif`, trial by trial, neuron by neuron."""
    total = 0
    for k in range(s_start.shape[0]):
        for j in lif:
            total += s_end[k, j] - s_start[k, j]
    trial, neuron = np.empty(total, np.int64), np.empty(total, np.int64)
    time, g = np.empty(total), np.empty(total)
    m = 0
    for k in range(s_start.shape[0]):
        for j in lif:
            for q in range(s_start[k, j], s_end[k, j]):
                trial[m], neuron[m], time[m], g[m] = k, j, s_time[q], s_g[q]
                m += 1
    return trial, neuron, time, g


def adjoint(record: EventRecord, sources, *, time_constants: bool = False, n_threads=None,
            record_tolerance: float = 1e-6, state: bool = False) -> AdjointResult:
    """Reverse pass of EventProp with delays on the GPU over every trial of `record` (of any engine), layer by
    layer; same arguments and result as :func:`neurodelay.events.adjoint` (gradients to rounding).
    Records with a bias current or away from rest, and requests for the state gradients (`state`:
    dL/dbias, dL/dV(0), dL/dI(0)), go to :func:`neurodelay.events.adjoint` on the CPU, as on the
    layered engine. n_threads is ignored. Raises ValueError for networks :func:`supports` refuses."""
    from numba import cuda

    net, flat = record.network, record.flat
    reason = supports(net)
    if reason is not None:
        raise ValueError(f"record: the GPU engine cannot differentiate this network: {reason}")
    if state or not record.starts_at_rest or np.any(flat.bias):
        return events_adjoint(record, sources, time_constants=time_constants, record_tolerance=record_tolerance,
                              state=state)
    rp = prepare_reverse(record, sources, record_tolerance)
    plan = _plan_for(net, flat)
    n, n_trials, n_syn = flat.n_neurons, record.n_trials, len(flat.out_post)
    ins = record.inputs
    dev = cuda.to_device
    shared = (dev(plan.in_ptr), dev(plan.in_pre), dev(plan.in_d), dev(plan.in_w), dev(flat.tau_m), dev(flat.tau_s),
              dev(flat.theta), dev(flat.reset), dev(flat.refractory))
    duration = float(record.duration)
    taus = {off: _reverse_taus(flat, off, size, duration, is_lif, time_constants)
            for off, size, _, is_lif in plan.layers}
    syn_factors = (dev(plan.in_dm), dev(plan.in_ds)) if any(t is not None for t in taus.values()) else None
    jb, j_neuron, j_time, j_value = rp.jumps
    rb, r_neuron, r_rate, r_coef = rp.rates
    ps_ptr = _trial_ptr(jb, j_neuron, n_trials, n)
    cs_ptr = _trial_ptr(rb, r_neuron, n_trials, n)
    loss_terms = (dev(ps_ptr), dev(np.ascontiguousarray(j_time, float)), dev(np.ascontiguousarray(j_value, float)),
                  dev(cs_ptr), dev(np.ascontiguousarray(r_coef, float)), dev(np.ascontiguousarray(r_rate, float)))
    in_trial = np.bincount(ins.trial, minlength=n_trials)
    rec_trial = np.bincount(record.trial, minlength=n_trials)
    counts = (np.bincount(ins.trial * n + ins.neuron, minlength=n_trials * n)
              + np.bincount(record.trial * n + record.neuron, minlength=n_trials * n)).reshape(n_trials, n)
    incoming = _incoming(_synapse_counts(plan, n), counts)
    layers = plan.layers[::-1]
    rows = max(size for _, size, _, _ in layers)
    # the layers whose reverse pass takes the split kernel (for every trial: the groups of trials are
    # sized by it)
    split = {off: bool(SPLIT_REVERSE and is_lif and taus[off] is not None and _one_synapse_per_pair(plan, off, size)
                       and not _loss_terms(ps_ptr, 0, n_trials, off, size)
                       and not _loss_terms(cs_ptr, 0, n_trials, off, size))
             for off, size, _, is_lif in layers}
    # workspace bytes per trial: per arrival counts, time, synapse, source (8 bytes each) and a log entry
    # (5 x 8); per spike of the neuron two log entries and its time and index; the split kernel: no
    # workspace per arrival; per spike of the neuron 2 events and 2 segments (4 x 8 bytes each) and
    # 2 segments' sums per lane, and one more segment per neuron
    split_bytes = 2 * (32 + 32 + 16 * SPLIT_LANES)
    work = np.max([counts[:, off: off + size].sum(axis=1) * (96 + split_bytes) + size * split_bytes if split[off]
                   else incoming[:, off: off + size].sum(axis=1) * 72 + counts[:, off: off + size].sum(axis=1) * 96
                   for off, size, _, _ in layers], axis=0)
    totals = [_zeros(m) for m in (n_syn, n_syn, n, n, n)]
    spike_grad_h, input_time_h = np.zeros(len(record.time)), np.zeros(len(ins.time))
    in_ptr_t, rec_ptr_t = _ptr(in_trial), _ptr(rec_trial)
    no_f = dev(np.zeros(1))
    ws = _Workspace()
    worst = 0.0
    for k0, k1 in _groups(work + rows * 8 * (in_trial + rec_trial)):
        # the group's spikes, ids local to it: its inputs (record.inputs order), then its record spikes
        i0, i1, r0, r1 = in_ptr_t[k0], in_ptr_t[k1], rec_ptr_t[k0], rec_ptr_t[k1]
        n_in = i1 - i0
        all_t = np.concatenate([ins.time[i0:i1], record.time[r0:r1]])
        order, s_start, s_end = _by_trial_neuron(np.concatenate([ins.trial[i0:i1], record.trial[r0:r1]]) - k0,
                                                 np.concatenate([ins.neuron[i0:i1], record.neuron[r0:r1]]), k1 - k0, n)
        sp_g, sp_src = np.zeros(len(all_t)), np.zeros(len(all_t))
        sp_g[n_in:], sp_src[n_in:] = record.i_minus_theta[r0:r1], rp.spike_time_src[r0:r1]
        g_time, spike_grad = _zeros((rows, max(len(all_t), 1))), _zeros(max(len(all_t), 1))
        group = (dev(s_start), dev(s_end), dev(np.ascontiguousarray(all_t[order])), dev(order),
                 duration, dev(sp_g), dev(sp_src))
        spike_factors = _SpikeFactors(all_t, duration, ws)
        for off, size, pop, _ in layers:
            inc, ns = incoming[k0:k1, off: off + size], counts[k0:k1, off: off + size]
            ws_ptr, sp_ptr = _ptr(inc.ravel()), _ptr(ns.ravel())
            m_all, s_all, t = int(ws_ptr[-1]), int(sp_ptr[-1]), (k1 - k0) * size
            log = max(m_all + 2 * s_all, 1)
            g_rows = [_zeros((k1 - k0, m)) for m in (n_syn, n_syn, n, n, n)]
            w_thread = ws.get("worst", t)
            if split[off]:
                _split_reverse(off, size, k1 - k0, shared, group, g_rows, g_time, spike_grad, sp_ptr,
                               _reverse_factors(taus[off], syn_factors, spike_factors, no_f)[1:], ws, w_thread, pop)
            else:
                _launch("adjoint_layer", t, off, size, k1 - k0, *shared, *group, *_trial_rows(loss_terms, k0, k1),
                        bool(time_constants), *g_rows, g_time, spike_grad, dev(ws_ptr), dev(sp_ptr),
                        ws.get("counts", m_all + t, np.int64), ws.get("arr_t", m_all),
                        ws.get("arr_q", m_all, np.int64), ws.get("arr_s", m_all, np.int64), ws.get("ev_t", log),
                        ws.get("ev_q", log, np.int64), ws.get("ev_s", log, np.int64), ws.get("ev_v", log),
                        ws.get("ev_i", log), ws.get("sp_t", s_all), ws.get("sp_k", s_all, np.int64),
                        *_reverse_factors(taus[off], syn_factors, spike_factors, no_f),
                        ws.get("ev_pos", 2 * s_all, np.int64), w_thread, label=f"adjoint_layer {pop}")
            for rows_g, total in zip(g_rows, totals):
                _launch("add_rows", total.shape[0], rows_g, k1 - k0, total)
            worst = max(worst, float(np.max(w_thread.copy_to_host(), initial=0.0)))
        spike_grad_h[r0:r1] = spike_grad[n_in: n_in + r1 - r0].copy_to_host()
        if n_in:
            input_time = _zeros(n_in)                 # the rows of g_time summed over the input columns
            _launch("add_rows", n_in, g_time, rows, input_time)
            input_time_h[i0:i1] = input_time.copy_to_host()
    worst = check_replay(worst, flat, record_tolerance)
    g_w, g_d, g_tm, g_ts, g_th = (a.copy_to_host() for a in totals)
    w_flat, d_flat = np.empty(n_syn), np.empty(n_syn)
    w_flat[plan.in_c], d_flat[plan.in_c] = g_w, g_d
    return AdjointResult(w_flat, d_flat, g_tm if time_constants else None, g_ts if time_constants else None,
                         g_th + rp.theta_src, spike_grad_h, input_time_h, n_trials, float(worst))


def _split_reverse(off, size, n_k, shared, group, g_rows, g_time, spike_grad, sp_ptr, factors, ws, worst,
                   pop) -> None:
    """The reverse pass of LIF layer `off` by the split kernel (a block of SPLIT_LANES threads per (trial,
    neuron)): the rows of g_time first added up into g_down (what the layers downstream sent back to
    this layer's spikes), then the launch with its workspaces."""
    from numba import cuda
    g_down = _zeros((1, g_time.shape[1]))
    _launch("add_rows", g_time.shape[1], g_time, g_time.shape[0], g_down[0])
    t, s_all = n_k * size, int(sp_ptr[-1])
    n_seg = 2 * s_all + t + 1
    s_start, s_end, s_time, s_id, duration, sp_g, sp_src = group
    _launch("split_reverse_layer", t * SPLIT_LANES, off, size, n_k, *shared, s_start, s_end, s_time, s_id, duration,
            sp_g, sp_src, g_rows[0], g_rows[1], g_rows[4], g_time, g_down, spike_grad, cuda.to_device(sp_ptr), *factors,
            ws.get("ev_t", 2 * s_all), ws.get("ev_c", 2 * s_all, np.int64), ws.get("ev_s", 2 * s_all, np.int64),
            ws.get("ev_i", 2 * s_all), ws.get("seg_s", n_seg), ws.get("seg_m", n_seg), ws.get("coef_m", n_seg),
            ws.get("coef_s", n_seg), ws.get("part_s", SPLIT_LANES * n_seg), ws.get("part_m", SPLIT_LANES * n_seg),
            ws.get("n_ev", t, np.int64), worst, label=f"split_reverse {pop}", block=SPLIT_LANES)


def _one_synapse_per_pair(plan, off: int, size: int) -> bool:
    """Whether no neuron of layer `off` receives two synapses from the same presynaptic neuron (a sort of the
    (post, pre) pairs: 1.6 ms for SHD size's 179k synapses on a 2-core host; np.unique took 145 ms a call
    on the H100's host)."""
    lo, hi = int(plan.in_ptr[off]), int(plan.in_ptr[off + size])
    post = np.repeat(np.arange(size, dtype=np.int64), np.diff(plan.in_ptr[off: off + size + 1]))
    pair = post * (int(plan.in_pre.max(initial=0)) + 1) + plan.in_pre[lo:hi]
    return not np.any(np.diff(np.sort(pair)) == 0)


def _loss_terms(ptr: np.ndarray, k0: int, k1: int, off: int, size: int) -> bool:
    """Whether the loss has terms (pointer table `ptr`, (T, N + 1)) on neurons off..off+size-1 of trials k0..k1-1."""
    return bool(np.any(ptr[k0:k1, off + size] != ptr[k0:k1, off]))


class _SpikeFactors:
    """exp(min(t, duration) / tau) of every spike of a group (times `all_t`, by id), on the GPU, computed once
    per tau and kept for the group's layers (:func:`_reverse_factors`)."""

    def __init__(self, all_t: np.ndarray, duration: float, ws: _Workspace):
        self.all_t, self.duration, self.ws = all_t, duration, ws
        self._times = None
        self._by_tau: dict = {}

    def get(self, tau: float):
        from numba import cuda
        if tau not in self._by_tau:
            if self._times is None:
                self._times = cuda.to_device(np.ascontiguousarray(self.all_t, float))
            out = self.ws.get(f"spike_factor_{len(self._by_tau)}", len(self.all_t))
            _launch("exp_factor", len(self.all_t), self._times, self.duration, tau, out)
            self._by_tau[tau] = out
        return self._by_tau[tau]


def _reverse_factors(taus, syn_factors, spike_factors: _SpikeFactors, no_f) -> tuple:
    """The adjoint kernel's (factored, in_dm, in_ds, s_em, s_es) for a layer whose reverse pass may use factored
    exponentials (taus = (tau_m, tau_s) from the CPU engine's ``_reverse_taus``), else (False, empty arrays)."""
    if taus is None:
        return False, no_f, no_f, no_f, no_f
    return True, *syn_factors, spike_factors.get(taus[0]), spike_factors.get(taus[1])


def _zeros(shape):
    """A GPU array of zeros (set on the device; copied from the host in numba's CUDA simulator, where a
    thread per entry is slow)."""
    from numba import config, cuda
    if config.ENABLE_CUDASIM:
        return cuda.to_device(np.zeros(shape))
    size = int(np.prod(shape))
    if size == 0:
        return cuda.device_array(shape)
    flat = cuda.device_array(size)
    _launch("zero", size, flat)
    return flat.reshape(shape)


def _trial_rows(loss_terms, k0: int, k1: int) -> tuple:
    """The loss terms with the pointer tables (T, N + 1) cut to trials k0..k1-1 (the kernels index them by the
    trial within the group; the pointers stay global)."""
    ps_ptr, ps_time, ps_value, cs_ptr, cs_coef, cs_rate = loss_terms
    return ps_ptr[k0:k1], ps_time, ps_value, cs_ptr[k0:k1], cs_coef, cs_rate


def _trial_ptr(bounds, neuron, n_trials: int, n: int) -> np.ndarray:
    """(T, N + 1) pointers into loss sources sorted by (trial, neuron) (per-trial slices `bounds`)."""
    trial = np.repeat(np.arange(n_trials), np.diff(bounds))
    ptr = neuron_ptr(trial * n + np.asarray(neuron, np.int64), n_trials * n)
    return ptr[np.arange(n_trials)[:, None] * n + np.arange(n + 1)]


class CudaEngine:
    """The layered engine on an NVIDIA GPU as an :class:`~neurodelay.engines.Engine` (registered as ``"cuda"``,
    never chosen by ``engine="auto"``): see :mod:`neurodelay.layered.gpu`."""

    name = "cuda"

    def __init__(self, max_spikes_per_trial: int = 10_000_000):
        self.max_spikes_per_trial = int(max_spikes_per_trial)

    def __repr__(self) -> str:
        return f"CudaEngine(max_spikes_per_trial={self.max_spikes_per_trial})"

    def supports(self, net) -> str | None:
        return supports(net)

    def simulate(self, net, inputs, duration, *, record=(), sample_times=None, n_threads=None, initial_state=None):
        return simulate(net, inputs, duration, record=record, sample_times=sample_times,
                        max_spikes_per_trial=self.max_spikes_per_trial, initial_state=initial_state)

    def adjoint(self, record, sources, *, time_constants=False, n_threads=None, record_tolerance=1e-6,
                state=False):
        return adjoint(record, sources, time_constants=time_constants, record_tolerance=record_tolerance,
                       state=state)
