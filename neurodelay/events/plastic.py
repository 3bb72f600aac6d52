"""The event engine with the three-factor rule's eligibility traces (the plastic variant of the loop).

:func:`simulate_plastic` runs every trial through the same compiled event loop as
:func:`~neurodelay.events.simulate_events` (:mod:`.kernel`), given a plastic state, so the
dynamics and spikes are the exact engine's, bit for bit; it returns the record and, per
trial, the trace integrals of the tracked synapses (see :mod:`neurodelay.plasticity` for the
derivation and :mod:`.traces` for the bookkeeping).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..flat import KIND_LIF, KIND_READOUT
from ..record import EventRecord, prepare_run
from .batch import map_trials
from .kernel import STATUS_TOO_MANY_SPIKES, simulate_plastic_trial
from .traces import MODE_EXACT, MODE_GAUSSIAN, new_state

__all__ = ["PlasticRun", "simulate_plastic"]


class PlasticRun(NamedTuple):
    """What :func:`simulate_plastic` returns.

    record: the :class:`~neurodelay.record.EventRecord` (identical to the plain engine's);
    synapses: flat indices of the tracked synapses (S_t,); A, B: (n_trials, S_t) integrals of the
    pseudo-derivative times the traces p, q; SP, SQ: (n_trials, S_t) p, q at the time of the
    maximum of the postsynaptic V (just before an arrival at that time); kink: (n_trials, S_t) dV/dt
    just before the maximum where the maximum is a kink made by an arrival of that synapse, else 0
    (then dVmax/dd = kink + eps^d); tmax, vmax: (n_trials, N) time (s) and value of that maximum
    per neuron (tracked neurons only, else 0).
    """

    record: EventRecord
    synapses: np.ndarray
    A: np.ndarray
    B: np.ndarray
    SP: np.ndarray
    SQ: np.ndarray
    kink: np.ndarray
    tmax: np.ndarray
    vmax: np.ndarray


def simulate_plastic(net, inputs, duration, tracked: np.ndarray, pseudo_derivative: str = "gaussian",
                     sigma: float = 0.3, *, n_threads: int | None = None,
                     max_spikes_per_trial: int = 10_000_000, progress: bool = False) -> PlasticRun:
    """Simulate every trial exactly and keep the eligibility integrals of the `tracked` synapses.

    tracked: boolean mask over the flat synapses (``flatten(net).out_*`` order);
    pseudo_derivative: "gaussian" or "exact"; sigma: surrogate width in units of theta.
    Other arguments as :func:`~neurodelay.events.simulate_events`.
    """
    prepared = prepare_run(net, inputs, duration)
    duration, flat, merged, sample_times, sample_neurons = prepared
    n_syn, n = len(flat.out_post), flat.n_neurons
    tracked = np.asarray(tracked, bool)
    if tracked.shape != (n_syn,):
        raise ValueError(f"tracked must be a boolean mask over the {n_syn} synapses, got shape {tracked.shape}")
    if pseudo_derivative not in ("gaussian", "exact"):
        raise ValueError(f"pseudo_derivative must be 'gaussian' or 'exact', got {pseudo_derivative!r}")
    synapses = np.flatnonzero(tracked)
    posts = flat.out_post[synapses]
    neu_mode = np.zeros(n, np.int8)
    targets = np.unique(posts)
    neu_mode[targets[flat.kind[targets] == KIND_READOUT]] = 1
    neu_mode[targets[flat.kind[targets] == KIND_LIF]] = 2
    order = np.argsort(posts, kind="stable")
    in_syn = synapses[order].astype(np.int64)
    in_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(posts, minlength=n), out=in_ptr[1:])
    par = np.array([MODE_EXACT if pseudo_derivative == "exact" else MODE_GAUSSIAN, float(sigma)])
    bounds = merged.trial_slices()
    static = flat.kernel
    syn_on = tracked.copy()

    def run(k):
        sl = slice(bounds[k], bounds[k + 1])
        syn, neu = new_state(n_syn, n)
        out = simulate_plastic_trial(*static, merged.neuron[sl], merged.time[sl], duration,
                                     sample_times, sample_neurons, max_spikes_per_trial,
                                     (syn, neu, in_ptr, in_syn, syn_on, neu_mode, par))
        if out[4] == STATUS_TOO_MANY_SPIKES:
            raise RuntimeError(f"trial {k}: the network emitted more than max_spikes_per_trial="
                               f"{max_spikes_per_trial} spikes (runaway activity?); raise the limit "
                               f"if this is intended")
        kept = syn[synapses]
        return out, kept[:, 4].copy(), kept[:, 5].copy(), kept[:, 6].copy(), kept[:, 7].copy(), \
            kept[:, 11].copy(), neu[:, 4].copy(), neu[:, 3].copy()

    results = map_trials(run, merged.n_trials, n_threads, progress)
    record = prepared.record(net, [r[0] for r in results], engine="events")
    stack = (lambda i, width: np.stack([r[i] for r in results]) if results else np.zeros((0, width)))
    return PlasticRun(record, synapses, stack(1, len(synapses)), stack(2, len(synapses)), stack(3, len(synapses)),
                      stack(4, len(synapses)), stack(5, len(synapses)), stack(6, n), stack(7, n))
