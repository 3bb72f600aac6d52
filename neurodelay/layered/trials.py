"""Running a batch through the layered engine's kernels, trial by trial: fixed chunks of neurons and blocks of
trials over threads (the same sums whatever the number of threads), a trial's spikes grouped by neuron,
and the records and gradients assembled from the kernels' results. Shared by the feedforward engine
(:mod:`neurodelay.layered.engine`) and its recurrent groups (:mod:`neurodelay.layered.recurrent`)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..events.adjoint import check_replay, neuron_ptr, sum_blocks, trial_blocks
from ..events.batch import default_threads, has_run, mark_run
from ..flat import FlatNetwork
from ..record import AdjointResult, EventRecord

__all__ = ["N_CHUNKS"]

#: chunks of neurons per layer: the unit of parallel work within a trial (fixed, so that sums
#: of the presynaptic spikes' time sensitivities do not depend on the number of threads)
N_CHUNKS = 8


def _chunks(off: int, n: int) -> list[tuple[int, int, int]]:
    """(first, stop, chunk number) of the fixed chunks of a layer, empty ones left out."""
    bounds = [off + (n * c) // N_CHUNKS for c in range(N_CHUNKS + 1)]
    return [(bounds[c], bounds[c + 1], c) for c in range(N_CHUNKS) if bounds[c + 1] > bounds[c]]


def _by_neuron(neuron: np.ndarray, time: np.ndarray, n: int):
    """Spikes grouped by neuron (stable: each neuron's spikes keep their time order):
    (order, start, end) with start/end per neuron into the reordered spikes."""
    order = np.argsort(neuron.astype(np.uint16) if n <= 2 ** 16 else neuron, kind="stable")  # uint16: radix sort
    counts = np.bincount(neuron, minlength=n)
    end = np.cumsum(counts)
    return order, end - counts, end


def _parallel(threads: int, n_trials: int):
    """Pool for chunks within a trial (None: parallel over trials or serial)."""
    return ThreadPoolExecutor(threads) if 1 < threads and n_trials < threads else None


def _map(pool, fn, tasks):
    return list(pool.map(fn, tasks)) if pool is not None and len(tasks) > 1 else [fn(t) for t in tasks]


def _sample_columns(n: int, sample_neurons: np.ndarray) -> np.ndarray:
    """Per neuron, its column in the sampled voltages (-1: not sampled)."""
    col_of = np.full(n, -1, np.int64)
    col_of[sample_neurons] = np.arange(len(sample_neurons))
    return col_of


def _too_many(k: int, limit: int) -> RuntimeError:
    return RuntimeError(f"trial {k}: the network emitted more than max_spikes_per_trial={limit} spikes "
                        f"(runaway activity?); raise the limit if this is intended")


def _layer_spikes(res, k: int, total: int, limit: int):
    """One layer's spikes from its chunks' results `res` (each starting with counts per neuron,
    spike times): (counts, times, the trial's spike total with them); RuntimeError past `limit`."""
    counts = np.concatenate([r[0] for r in res])
    times = np.concatenate([r[1] for r in res])
    total += len(times)
    if total > limit:
        raise _too_many(k, limit)
    return counts, times, total


def _place(counts: np.ndarray, pos: int, s_start: np.ndarray, s_end: np.ndarray, neurons) -> int:
    """Sets s_start, s_end of `neurons` (their spikes counts, stored from position pos on, grouped
    by neuron); returns the position after them."""
    end = pos + np.cumsum(counts)
    s_start[neurons], s_end[neurons] = end - counts, end
    return pos + int(counts.sum())


def _trial_spikes(out_n: list, out_t: list, out_g: list, samples: np.ndarray):
    """A trial's result for ``prepared.record`` from its LIF layers' neuron ids, spike times and
    I - theta: (time, neuron, I - theta) sorted by (time, neuron), and the sampled voltages."""
    neuron = np.concatenate(out_n) if out_n else np.zeros(0, np.int64)
    time = np.concatenate(out_t) if out_t else np.zeros(0)
    g = np.concatenate(out_g) if out_g else np.zeros(0)
    order = np.lexsort((neuron, time))
    return time[order], neuron[order], g[order], samples


def _reverse_trial(record: EventRecord, rp, k: int, n: int):
    """Trial k of `record` for a reverse pass (rp: :func:`prepare_reverse`'s): (number of input spikes,
    the record's spike times, the times of the trial's spikes by source id (inputs first), those
    spikes grouped by neuron as (s_start, s_end, s_time, s_id), and the loss terms per spike and per
    neuron (I - theta, dL/dt_k, point sources (ptr, time, value), continuous sources (ptr, coef,
    rate)) in the order the kernels take them)."""
    rs, ins = slice(rp.rec_bounds[k], rp.rec_bounds[k + 1]), slice(rp.in_bounds[k], rp.in_bounds[k + 1])
    sp_time = record.time[rs]
    all_n = np.concatenate([record.inputs.neuron[ins], record.neuron[rs]])
    all_t = np.concatenate([record.inputs.time[ins], sp_time])
    order, s_start, s_end = _by_neuron(all_n, all_t, n)
    jb, j_neuron, j_time, j_value = rp.jumps
    rb, r_neuron, r_rate, r_coef = rp.rates
    js, rsl = slice(jb[k], jb[k + 1]), slice(rb[k], rb[k + 1])
    spikes = (s_start, s_end, all_t[order], order.astype(np.int64))
    terms = (np.ascontiguousarray(record.i_minus_theta[rs]), np.ascontiguousarray(rp.spike_time_src[rs]),
             neuron_ptr(j_neuron[js], n), j_time[js], j_value[js],
             neuron_ptr(r_neuron[rsl], n), r_coef[rsl], r_rate[rsl])
    return ins.stop - ins.start, sp_time, all_t, spikes, terms


def _new_acc(n_syn: int, n: int):
    """Gradient accumulators of one block of trials: (dL/dw, dL/dd by synapse q, dL/dtau_m, dL/dtau_s,
    dL/dtheta by neuron)."""
    return np.zeros(n_syn), np.zeros(n_syn), np.zeros(n), np.zeros(n), np.zeros(n)


def _run_blocks(run_trial, n_trials: int, n_threads: int | None, n_syn: int, n: int) -> list:
    """``run_trial(k, acc, pool, ws)`` for every trial k, per fixed block of trials in trial order
    (:func:`trial_blocks`; acc: the block's :func:`_new_acc`, ws: a dict that a worker keeps across
    its trials): the blocks in parallel (the first one, trial 0, alone before the others the first
    time this run_trial runs in the process: it compiles or loads the kernels), or, with fewer blocks
    than threads, one after the other with a pool for chunks of neurons (``pool``, None on the first
    trial). Returns [(acc, [result per trial])]: one entry whose acc is the blocks' accumulators summed
    in block order (as :func:`sum_blocks` sums them: the same numbers whatever the threads), folded in
    as the blocks finish, so that only the blocks in flight hold accumulators."""
    blocks = trial_blocks(n_trials)
    n_blocks = len(blocks) - 1
    threads = n_threads or default_threads()
    pool = _parallel(threads, n_blocks)
    total, results = None, []

    def fold(done_block):
        nonlocal total
        acc, res = done_block
        if total is None:
            total = acc
        else:
            for t, a in zip(total, acc):
                np.add(t, a, out=t)
        results.extend(res)

    if pool is None:
        local = threading.local()            # each worker thread keeps its workspace across its blocks

        def run_block(b):
            acc = _new_acc(n_syn, n)
            if not hasattr(local, "ws"):
                local.ws = {}
            return acc, [run_trial(k, acc, None, local.ws) for k in range(blocks[b], blocks[b + 1])]
        first = 0
        if not has_run(run_trial):
            fold(run_block(0))              # trial 0 alone: it compiles (or loads) the kernels
            first = 1
        if threads > 1 and n_blocks - first > 1:
            with ThreadPoolExecutor(min(threads, n_blocks - first)) as workers:
                for done_block in workers.map(run_block, range(first, n_blocks)):
                    fold(done_block)
        else:
            for b in range(first, n_blocks):
                fold(run_block(b))
        mark_run(run_trial)
        return [(total, results)]
    ws = {}
    with pool:
        for b in range(n_blocks):
            acc = _new_acc(n_syn, n)
            fold((acc, [run_trial(k, acc, pool if k else None, ws) for k in range(blocks[b], blocks[b + 1])]))
    return [(total, results)]


def _block_gradients(done, flat: FlatNetwork, in_c: np.ndarray):
    """Gradients summed over the blocks of trials `done` (:func:`sum_blocks`), dL/dw and dL/dd by
    flat synapse: (g_w, g_d, g_tm, g_ts, g_th)."""
    n_syn = len(flat.out_post)
    g_w, g_d, g_tm, g_ts, g_th = sum_blocks(done, n_syn, flat.n_neurons)
    w_flat, d_flat = np.empty(n_syn), np.empty(n_syn)
    w_flat[in_c], d_flat[in_c] = g_w, g_d
    return w_flat, d_flat, g_tm, g_ts, g_th


def _adjoint_result(done, flat: FlatNetwork, in_c: np.ndarray, theta_src: np.ndarray, n_trials: int,
                    time_constants: bool, record_tolerance: float) -> AdjointResult:
    """The AdjointResult of blocks `done` ((gradient accumulators, per trial (dL/dt of the record's
    spikes, dL/dt of the inputs, worst |V - theta|))); theta_src: the loss's own dL/dtheta."""
    results = [r for _, per_trial in done for r in per_trial]
    worst = check_replay(max((r[2] for r in results), default=0.0), flat, record_tolerance)
    w_flat, d_flat, g_tm, g_ts, g_th = _block_gradients(done, flat, in_c)
    cat = (lambda i: np.concatenate([r[i] for r in results]) if results else np.zeros(0))
    return AdjointResult(w_flat, d_flat, g_tm if time_constants else None, g_ts if time_constants else None,
                         g_th + theta_src, cat(0), cat(1), n_trials, float(worst))
