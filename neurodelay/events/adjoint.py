"""Exact gradients by EventProp with delays, from an :class:`~neurodelay.events.EventRecord`.

The reverse pass needs only the record (spike times, neurons, ``I - theta`` at
each spike), the inputs and the network, so any engine's record can be
differentiated. Forward quantities that the record lacks (the state at every
event) are recomputed by replaying the record: arrivals are ``t_k + d_ji``
and the dynamics between events are those of :mod:`neurodelay.events.dynamics`.

Derivation (costate form; times in s)
-------------------------------------
Model of neuron j: ``tau_m dV/dt = -V + I``, ``tau_s dI/dt = -I``; an arrival
makes I jump by w; V reaching theta (with ``dV/dt = (I - theta)/tau_m > 0``)
is a spike: V -> reset, held there for t_ref. The loss is
``L = sum_k l_p(t_k) + int l_V(V, t) dt`` (spike-time terms and voltage terms).

Let ``p_V(t) = dL/dV(t)`` and ``p_I(t) = dL/dI(t)`` be the derivatives of the
loss with respect to a perturbation of the state at time t (``lambda_V =
-p_V/tau_m`` and ``lambda_I = -p_I/tau_s`` in the notation of Wunderlich &
Pehle). Between events, backwards in time,

    dp_V/dt = p_V/tau_m - dl_V/dV,          dp_I/dt = -p_V/tau_m + p_I/tau_s,

exponentials (plus particular solutions for exponential l_V), evaluated in
closed form from event to event. At events:

* **Arrival** of spike k of i at j, at ``t_a = t_k + d_ji``: p is continuous.
  Adding dw to the jump changes L by ``p_I,j(t_a) dw``; moving the jump later by
  dt changes the state after it by ``-w (1/tau_m, -1/tau_s) dt``. So
  ``dL/dw_ji += p_I,j(t_a)`` and ``dL/dt_a = w (p_I,j/tau_s - p_V,j/tau_m)(t_a)``,
  which is added to ``dL/dd_ji`` and to the time sensitivity G_k of spike k.
  Because ``t_a >= t_k``, G_k is complete when the reverse pass reaches t_k.
* **Spike** of j at t_k: a perturbation dV just before it moves the spike by
  ``dt_k = -tau_m dV / (I - theta)``, and p_I is continuous. With
  ``S_k = dl_p/dt_k + G_k + A_k`` the total derivative of L with respect to t_k
  (A_k: through what follows the reset),
  ``p_V(t_k-) = -tau_m S_k / (I - theta)``. Without a refractory period the
  trajectory after the reset starts from V = reset at t_k, so a later spike
  shifts it: ``A_k = -p_V(t_k+) (I(t_k) - reset)/tau_m``.
  (With reset = 0 this is the jump of Wunderlich & Pehle:
  ``lambda_V- = lambda_V+ + [theta lambda_V+ + dl_p/dt + sum w (lambda_V - lambda_I)] / (I - theta)``.)
* **Refractory period** [t_k, r], r = t_k + t_ref: V is held, so p_V = 0 inside
  the clamp (no perturbation of V survives it) and only p_I evolves. The end r
  moves with t_k, and V restarts from reset at r, so
  ``A_k = -p_V(r+) (I(r) - reset)/tau_m``; no term at t_k itself. If r is after
  the end of the trial, ``A_k = 0``.
* **Threshold**: the crossing condition V = theta moves the spike by
  ``dtheta / (dV/dt)``, so ``dL/dtheta_j = -sum_k p_V,j(t_k-)``.
* **Time constants**: they enter only the right-hand sides f, so
  ``dL/dtau = int p . df/dtau dt`` with ``df_V/dtau_m = (V - I)/tau_m^2`` (zero
  inside a clamp) and ``df_I/dtau_s = I/tau_s^2``; between events all factors
  are exponentials, so each interval's integral is closed form. No extra
  spike-time terms appear in this form: the threshold and reset maps do not
  depend on tau, and their effect is already in the jumps of p.
* **Voltage sources** of readout losses: a point term c V(t_m) makes p_V jump by
  c at t_m. When t_m is a kink of V at an arrival (a maximum right at an
  inhibitory arrival), t_m moves with the arrival, which adds
  ``c dV/dt(t_a-)`` to dL/dt_a. A continuous term with density
  ``dl_V/dV = c exp(-rate t)`` enters the costate through its particular solution.

Each finding above is checked against central finite differences of the exact
forward engine in ``tests/test_gradients.py`` and ``tests/conformance/test_conformance_gradients.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..flat import KIND_LIF, KIND_READOUT, FlatNetwork
from ..memory import check_memory
from ..record import AdjointResult, AdjointSources, RecordMismatchError
from .adjoint_kernel import replay_trial, reverse_trial
from .batch import map_trials

# AdjointSources, AdjointResult, RecordMismatchError live in neurodelay.record (shared by every engine)
# csr, neuron_ptr, trial_blocks and check_sources are shared with the layered engine's reverse pass
__all__ = ["AdjointSources", "AdjointResult", "adjoint", "RecordMismatchError", "check_sources", "csr",
           "neuron_ptr", "trial_blocks", "prepare_reverse", "ReversePlan", "check_replay", "sum_blocks"]


def csr(trial, neuron, n_trials, n, *values):
    """Sort entries by (trial, neuron, first value) and give per-trial slices and per-neuron pointers."""
    order = np.lexsort(((values[0],) if values else ()) + (neuron, trial))
    trial, neuron = trial[order], neuron[order]
    values = [np.ascontiguousarray(v[order], dtype=float) for v in values]
    bounds = np.searchsorted(trial, np.arange(n_trials + 1), side="left")
    return bounds, neuron, values


def neuron_ptr(neuron, n):
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(neuron, minlength=n), out=ptr[1:])
    return ptr


def trial_blocks(n_trials: int, n_blocks: int = 16) -> np.ndarray:
    """Block boundaries: trial 0 alone (the first time a pass runs in the process, it runs before the
    others, compiling or loading the kernels: :func:`~neurodelay.events.batch.map_trials`), then the
    other trials in up to n_blocks contiguous blocks."""
    if n_trials <= 1:
        return np.array([0, n_trials])
    rest = np.linspace(1, n_trials, min(n_blocks, n_trials - 1) + 1).round().astype(int)
    return np.concatenate([[0], rest])


def check_sources(record, sources: AdjointSources):
    flat = record.flat
    n, n_trials = flat.n_neurons, record.n_trials
    spike_time = (np.zeros(len(record.time)) if sources.spike_time is None
                  else np.asarray(sources.spike_time, dtype=float))
    if spike_time.shape != record.time.shape:
        raise ValueError(f"sources.spike_time has shape {spike_time.shape}, expected one value per "
                         f"recorded spike {record.time.shape}")
    for prefix, names in (("jump", ("trial", "neuron", "time", "value")),
                          ("rate", ("trial", "neuron", "coef", "rate"))):
        arrays = [np.asarray(getattr(sources, f"{prefix}_{f}")) for f in names]
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
            raise ValueError(f"sources.{prefix}_* must be 1-d arrays of one length")
        trial, neuron = arrays[0], arrays[1]
        if trial.size and (trial.min() < 0 or trial.max() >= n_trials):
            raise ValueError(f"sources.{prefix}_trial out of range [0, {n_trials})")
        if neuron.size and (neuron.min() < 0 or neuron.max() >= n):
            raise ValueError(f"sources.{prefix}_neuron out of range [0, {n})")
        allowed = (KIND_LIF, KIND_READOUT) if prefix == "jump" else (KIND_READOUT,)
        if neuron.size and not np.all(np.isin(flat.kind[neuron], allowed)):
            what = "LIF or readout" if prefix == "jump" else "readout"
            raise ValueError(f"voltage sources ({prefix}_*) may only act on {what} neurons")
        if not all(np.all(np.isfinite(a)) for a in arrays[2:]):
            raise ValueError(f"sources.{prefix}_* contain non-finite values")
    jt = np.asarray(sources.jump_time, float)
    if jt.size and (jt.min() < 0 or jt.max() > record.duration):
        raise ValueError(f"sources.jump_time must lie in [0, duration = {record.duration}] s")
    if np.any(np.asarray(sources.rate_rate, float) < 0):
        raise ValueError("sources.rate_rate must be >= 0 (1/s)")
    if not np.all(np.isfinite(spike_time)):
        raise ValueError("sources.spike_time contains non-finite values")
    theta = np.zeros(n) if sources.theta is None else np.asarray(sources.theta, float)
    if theta.shape != (n,):
        raise ValueError(f"sources.theta has shape {theta.shape}, expected ({n},)")
    return spike_time, theta



class ReversePlan(NamedTuple):
    """A checked record and the loss's sources, arranged per trial for a reverse pass (any engine)."""

    flat: FlatNetwork
    spike_time_src: np.ndarray   # dL/dt_k per recorded spike (zeros where the loss has none)
    theta_src: np.ndarray        # explicit dL/dtheta per neuron
    rec_bounds: np.ndarray       # (n_trials + 1,) slices of the record's spikes
    in_bounds: np.ndarray        # (n_trials + 1,) slices of the record's inputs
    jumps: tuple                 # (trial ptr, neuron, time, value) of point voltage sources, sorted (csr)
    rates: tuple                 # (trial ptr, neuron, rate, coef) of continuous voltage sources (csr)


def prepare_reverse(record, sources: AdjointSources, record_tolerance: float = 1e-6) -> ReversePlan:
    """Check a record and the loss's sources for a reverse pass and arrange them per trial.

    Raises ValueError naming what is wrong (bad ``record_tolerance``, records
    too large, spikes of non-LIF neurons, unsorted spikes or inputs, sources of
    the wrong shape).
    """
    if (isinstance(record_tolerance, bool) or not isinstance(record_tolerance, (int, float, np.number))
            or np.isnan(record_tolerance) or record_tolerance < 0):   # inf: no check (inexact engines)
        raise ValueError(f"record_tolerance must be a number >= 0 (inf: no check), got {record_tolerance!r}")
    flat = record.flat
    n, n_trials = flat.n_neurons, record.n_trials
    n_syn = len(flat.out_post)
    if n_syn >= 2 ** 31 or len(record.time) >= 2 ** 31:
        raise ValueError("more than 2**31 synapses or spikes per batch is not supported")
    if np.any(flat.kind[record.neuron] != KIND_LIF):
        raise ValueError("the record contains spikes of neurons that are not LIF neurons")
    spike_time_src, theta_src = check_sources(record, sources)
    if np.any(np.diff(record.trial) < 0) or np.any((np.diff(record.trial) == 0) & (np.diff(record.time) < 0)):
        raise ValueError("record spikes must be sorted by (trial, time)")
    inputs = record.inputs
    if np.any(np.diff(inputs.trial) < 0) or np.any((np.diff(inputs.trial) == 0) & (np.diff(inputs.time) < 0)):
        raise ValueError("record inputs must be sorted by (trial, time); use SpikeTrains.sorted()")
    rec_bounds = np.searchsorted(record.trial, np.arange(n_trials + 1), side="left")
    in_bounds = inputs.trial_slices()
    jb, j_neuron, (j_time, j_value) = csr(np.asarray(sources.jump_trial, np.int64),
                                            np.asarray(sources.jump_neuron, np.int64), n_trials, n,
                                            np.asarray(sources.jump_time, float),
                                            np.asarray(sources.jump_value, float))
    rb, r_neuron, (r_rate, r_coef) = csr(np.asarray(sources.rate_trial, np.int64),
                                           np.asarray(sources.rate_neuron, np.int64), n_trials, n,
                                           np.asarray(sources.rate_rate, float),
                                           np.asarray(sources.rate_coef, float))
    return ReversePlan(flat, spike_time_src, theta_src, rec_bounds, in_bounds, (jb, j_neuron, j_time, j_value),
                       (rb, r_neuron, r_rate, r_coef))



def check_replay(worst: float, flat: FlatNetwork, record_tolerance: float) -> float:
    """Raise RecordMismatchError if replaying a record missed theta at a spike by more than the tolerance.

    worst: the largest ``|V - theta|`` found at a recorded spike; the tolerance
    is relative to ``max(1, |theta|)``. Returns `worst`.
    """
    scale = max(1.0, float(np.max(np.abs(flat.theta[np.isfinite(flat.theta)]), initial=0.0)))
    if worst > record_tolerance * scale:
        raise RecordMismatchError(
            f"replaying the record, V differs from theta by up to {worst:.3g} at a recorded spike "
            f"(tolerance {record_tolerance * scale:.3g}): the record does not come from this network "
            f"and these inputs")
    return worst


def sum_blocks(done, n_syn: int, n: int) -> tuple:
    """The five accumulators (weight, delay, tau_m, tau_s, theta) summed over blocks in block order."""
    return tuple(sum((acc[i] for acc, _ in done[1:]), done[0][0][i]) if done
                 else np.zeros(n_syn if i < 2 else n) for i in range(5))

def adjoint(record, sources: AdjointSources, *, time_constants: bool = False,
            n_threads: int | None = None, record_tolerance: float = 1e-6, state: bool = False) -> AdjointResult:
    """Reverse pass of EventProp with delays over every trial of `record`.

    record: an :class:`~neurodelay.events.EventRecord` (spikes sorted by (trial,
    time), ``i_minus_theta`` at each spike); sources: the loss's
    :class:`AdjointSources`; time_constants: also integrate dL/dtau_m and
    dL/dtau_s (costs a little more); state: also dL/dbias (per neuron) and the
    initial-state gradients dL/dV(0), dL/dI(0) (per trial and neuron; costs a
    little more). Trials run in parallel on `n_threads`.
    Raises :class:`RecordMismatchError` if, replaying the record, V at a recorded
    spike differs from theta by more than ``record_tolerance * max(1, |theta|)``
    (the record was not produced by this network).
    """
    rp = prepare_reverse(record, sources, record_tolerance)
    flat, inputs, spike_time_src, theta_src = rp.flat, record.inputs, rp.spike_time_src, rp.theta_src
    n, n_trials, duration, n_syn = flat.n_neurons, record.n_trials, float(record.duration), len(flat.out_post)
    rec_bounds, in_bounds = rp.rec_bounds, rp.in_bounds
    jb, j_neuron, j_time, j_value = rp.jumps
    rb, r_neuron, r_rate, r_coef = rp.rates
    static = flat.kernel
    state = bool(state)
    if state:
        check_memory(16.0 * n_trials * n, f"initial-state gradients of {n} neurons in {n_trials} trials")
    # carry every costate down to t = 0: for the state gradients, and for the time-constant
    # integrals before each neuron's first event when it does not start at rest
    want_start = state or (bool(time_constants) and not record.starts_at_rest)

    def run_trial(k, acc):
        rs = slice(rec_bounds[k], rec_bounds[k + 1])
        ins = slice(in_bounds[k], in_bounds[k + 1])
        sp_neuron, sp_time = record.neuron[rs], record.time[rs]
        v0, i0 = record.initial_state(k)
        v0, i0 = np.ascontiguousarray(v0, dtype=float), np.ascontiguousarray(i0, dtype=float)
        ev_syn, ev_src, ev_v, ev_i, worst_v = replay_trial(
            *static, inputs.neuron[ins], inputs.time[ins], sp_neuron, sp_time, duration, v0, i0)
        js, rsl = slice(jb[k], jb[k + 1]), slice(rb[k], rb[k + 1])
        spike_grad, input_grad, p_v0, p_i0 = reverse_trial(
            *static, inputs.time[ins], sp_neuron, sp_time, record.i_minus_theta[rs], spike_time_src[rs],
            neuron_ptr(j_neuron[js], n), j_time[js], j_value[js],
            neuron_ptr(r_neuron[rsl], n), r_coef[rsl], r_rate[rsl],
            ev_syn, ev_src, ev_v, ev_i, duration, time_constants, state, want_start, v0, i0, *acc)
        return spike_grad, input_grad, worst_v, p_v0, p_i0

    # a fixed partition of the trials into blocks, each summed in trial order, and the blocks
    # summed in block order: the result does not depend on the threads or their scheduling
    blocks = trial_blocks(n_trials)

    def run_block(b):
        acc = (np.zeros(n_syn), np.zeros(n_syn), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))
        return acc, [run_trial(k, acc) for k in range(blocks[b], blocks[b + 1])]

    done = map_trials(run_block, len(blocks) - 1, n_threads)
    results = [r for _, per_trial in done for r in per_trial]
    worst = check_replay(max((r[2] for r in results), default=0.0), flat, record_tolerance)
    g_w, g_d, g_tm, g_ts, g_th = sum_blocks(done, n_syn, n)
    cat = (lambda i, size: np.concatenate([r[i] for r in results]) if results else np.zeros(size))
    extra = {}
    if state:
        g_b = sum((acc[5] for acc, _ in done[1:]), done[0][0][5]) if done else np.zeros(n)
        stack = (lambda i: np.stack([r[i] for r in results]) if results else np.zeros((0, n)))
        extra = dict(bias=g_b, v_init=stack(3), i_init=stack(4))
    return AdjointResult(g_w, g_d, g_tm if time_constants else None, g_ts if time_constants else None,
                         g_th + theta_src, cat(0, 0), cat(1, 0), n_trials, float(worst), **extra)
