"""The exact event engine as an :class:`~neurodelay.engines.Engine` (registered as ``"events"``)."""

from __future__ import annotations

from .adjoint import adjoint
from .forward import simulate_events

__all__ = ["EventsEngine"]


class EventsEngine:
    """Exact event-driven simulation (any network) and the EventProp adjoint with delays.

    max_spikes_per_trial: a trial emitting more spikes stops with RuntimeError
    (runaway activity); progress: show a progress bar over trials.
    """

    name = "events"

    def __init__(self, max_spikes_per_trial: int = 10_000_000, progress: bool = False):
        self.max_spikes_per_trial = int(max_spikes_per_trial)
        self.progress = bool(progress)

    def __repr__(self) -> str:
        return f"EventsEngine(max_spikes_per_trial={self.max_spikes_per_trial}, progress={self.progress})"

    def supports(self, net) -> str | None:
        return None

    def simulate(self, net, inputs, duration, *, record=(), sample_times=None, n_threads=None,
                 initial_state=None):
        return simulate_events(net, inputs, duration, record=record, sample_times=sample_times,
                               n_threads=n_threads, max_spikes_per_trial=self.max_spikes_per_trial,
                               progress=self.progress, initial_state=initial_state)

    def adjoint(self, record, sources, *, time_constants=False, n_threads=None, record_tolerance=1e-6,
                state=False):
        return adjoint(record, sources, time_constants=time_constants, n_threads=n_threads,
                       record_tolerance=record_tolerance, state=state)
