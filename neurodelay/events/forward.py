"""Exact event-driven simulation of a :class:`~neurodelay.network.Network`, batched over trials.

:func:`simulate_events` (also reachable as ``neurodelay.events.simulate``) is the exact event
engine itself; :func:`neurodelay.simulate` chooses among the registered engines.
"""

from __future__ import annotations

from ..network import Network
from ..record import EventRecord, merge_inputs, prepare_run
from .batch import default_threads, map_trials
from .kernel import STATUS_TOO_MANY_SPIKES, simulate_trial

# EventRecord and merge_inputs live in neurodelay.record; re-exported here, where they used to live
__all__ = ["EventRecord", "default_threads", "merge_inputs", "simulate", "simulate_events"]


def simulate_events(net: Network, inputs, duration, *, record=(), sample_times=None,
                    n_threads: int | None = None, max_spikes_per_trial: int = 10_000_000,
                    progress: bool = False, initial_state=None) -> EventRecord:
    """The exact event engine itself: every trial of `inputs` exactly (no time step) on [0, duration].

    Arguments as for :func:`simulate`; no engine choice.
    """
    prepared = prepare_run(net, inputs, duration, record, sample_times, initial_state)
    duration, flat, merged, sample_times, sample_neurons = prepared[:5]
    bounds = merged.trial_slices()
    static = flat.kernel

    def run(k):
        sl = slice(bounds[k], bounds[k + 1])
        out = simulate_trial(*static, merged.neuron[sl], merged.time[sl], duration,
                             sample_times, sample_neurons, max_spikes_per_trial, *prepared.initial_state(k))
        if out[4] == STATUS_TOO_MANY_SPIKES:
            raise RuntimeError(f"trial {k}: the network emitted more than max_spikes_per_trial="
                               f"{max_spikes_per_trial} spikes (runaway activity?); raise the limit "
                               f"if this is intended")
        return out

    n_trials = merged.n_trials
    results = map_trials(run, n_trials, n_threads, progress)
    return prepared.record(net, results, engine="events")


#: the engine's own entry point under its old name (no engine choice: see :func:`neurodelay.simulate`)
simulate = simulate_events
