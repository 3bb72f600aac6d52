"""Simulate a :class:`~neurodelay.network.Network` on any registered engine.

:func:`simulate` picks an engine from :mod:`neurodelay.engines` (``engine="auto"``: the
layered engine for feedforward networks, the exact event engine otherwise; both exact) and
runs every trial on it. The engines themselves (for example
:func:`neurodelay.events.simulate_events`) sit below this module and never import it.
"""

from __future__ import annotations

from .engines import get_engine, require_option
from .network import Network
from .record import EventRecord

__all__ = ["simulate"]


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
    exact engines (events, layered). initial_state: None (each neuron starts from its population's
    v_init, i_init) or a dict population -> {"v": array, "i": array} of shape (n,) or
    (n_trials, n) overriding them per trial (see :func:`neurodelay.record.resolve_initial_state`).
    """
    from .events.engine import EventsEngine
    from .events.forward import simulate_events

    chosen = get_engine(engine, net)
    if isinstance(chosen, EventsEngine):
        return simulate_events(net, inputs, duration, record=record, sample_times=sample_times,
                               n_threads=n_threads, max_spikes_per_trial=(chosen.max_spikes_per_trial
                                                                          if max_spikes_per_trial is None
                                                                          else max_spikes_per_trial),
                               progress=progress or chosen.progress, initial_state=initial_state)
    from .layered.engine import LayeredEngine, simulate as simulate_layered

    if isinstance(chosen, LayeredEngine) and max_spikes_per_trial is not None:
        return simulate_layered(net, inputs, duration, record=record, sample_times=sample_times,
                                n_threads=n_threads, max_spikes_per_trial=max_spikes_per_trial,
                                progress=progress or chosen.progress, initial_state=initial_state)
    if max_spikes_per_trial is not None:
        raise ValueError(f"max_spikes_per_trial is an option of the 'events' engine (and 'layered'), "
                         f"not of {chosen.name!r}")
    if initial_state is not None:
        require_option(chosen, "simulate", "initial_state", "initial_state")
        return chosen.simulate(net, inputs, duration, record=record, sample_times=sample_times,
                               n_threads=n_threads, initial_state=initial_state)
    return chosen.simulate(net, inputs, duration, record=record, sample_times=sample_times, n_threads=n_threads)
