"""Exact event-driven simulation of a :class:`~neurodelay.network.Network`, batched over trials.

:func:`simulate` runs on any registered engine (:mod:`neurodelay.engines`; ``engine="auto"`` picks
the layered engine for feedforward networks and the event engine otherwise, both exact),
:func:`simulate_events` is the exact event engine itself.
"""

from __future__ import annotations

from ..network import Network
from ..record import EventRecord, merge_inputs, prepare_run
from .batch import default_threads, map_trials
from .kernel import STATUS_TOO_MANY_SPIKES, simulate_trial

# EventRecord and merge_inputs live in neurodelay.record; re-exported here, where they used to live
__all__ = ["EventRecord", "default_threads", "merge_inputs", "simulate", "simulate_events"]


def simulate(net: Network, inputs, duration, *, record=(), sample_times=None,
             n_threads: int | None = None, max_spikes_per_trial: int | None = None,
             progress: bool = False, engine="auto", initial_state=None) -> EventRecord:
    """Simulate every trial of `inputs` on [0, duration] on an engine (default: exactly).

    inputs: a SpikeTrains (network with one source) or a dict source name ->
    SpikeTrains (times in s); duration: s or a Brian2 time; record: names of
    LIF/readout populations whose V is sampled at `sample_times` (s).
    Trials run in parallel on `n_threads` threads (default: all usable cores).
    engine: a name of :mod:`neurodelay.engines` ("auto", "events", "brian", ...)
    or an engine object; "auto" picks the preferred engine that supports `net`.
    max_spikes_per_trial (default 10 000 000) and progress are options of the
    exact event engine. initial_state: None (each neuron starts from its population's
    v_init, i_init) or a dict population -> {"v": array, "i": array} of shape (n,) or
    (n_trials, n) overriding them per trial (see :func:`neurodelay.record.resolve_initial_state`).
    """
    from ..engines import get_engine
    from .engine import EventsEngine

    chosen = get_engine(engine, net)
    if isinstance(chosen, EventsEngine):
        return simulate_events(net, inputs, duration, record=record, sample_times=sample_times,
                               n_threads=n_threads, max_spikes_per_trial=(chosen.max_spikes_per_trial
                                                                          if max_spikes_per_trial is None
                                                                          else max_spikes_per_trial),
                               progress=progress or chosen.progress, initial_state=initial_state)
    if max_spikes_per_trial is not None:
        raise ValueError(f"max_spikes_per_trial is an option of the 'events' engine, not of {chosen.name!r}")
    if initial_state is not None:
        from ..engines import require_option

        require_option(chosen, "simulate", "initial_state", "initial_state")
        return chosen.simulate(net, inputs, duration, record=record, sample_times=sample_times,
                               n_threads=n_threads, initial_state=initial_state)
    return chosen.simulate(net, inputs, duration, record=record, sample_times=sample_times, n_threads=n_threads)


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
