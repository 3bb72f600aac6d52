"""Exact event-driven simulation of a :class:`~neurodelay.network.Network`, batched over trials."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..memory import check_memory
from ..network import Network, SpikeSource
from ..spikes import SpikeTrains
from ..units import as_seconds
from .batch import default_threads, map_trials
from .dynamics import is_closed_form
from .flat import FlatNetwork, flatten
from .kernel import STATUS_TOO_MANY_SPIKES, simulate_trial

__all__ = ["EventRecord", "default_threads", "merge_inputs", "simulate"]


@dataclass(frozen=True)
class EventRecord:
    """What one batch of trials produced.

    Spikes emitted by spiking (LIF) neurons, sorted by (trial, time): global
    neuron index, time (s) and ``I - theta`` at the spike (= tau_m dV/dt, the
    quantity the adjoint needs). ``voltage[trial, sample, k]`` is V of global
    neuron ``sample_neurons[k]`` at ``sample_times[sample]`` (s).
    """

    network: Network
    flat: FlatNetwork
    inputs: SpikeTrains          # all sources, global neuron indices
    trial: np.ndarray
    neuron: np.ndarray
    time: np.ndarray
    i_minus_theta: np.ndarray
    duration: float
    sample_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sample_neurons: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    voltage: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))

    @property
    def n_trials(self) -> int:
        return self.inputs.n_trials

    def _span(self, population: str) -> tuple[int, int]:
        """(first global index, size) of a population; KeyError naming the populations if unknown."""
        if population not in self.flat.offsets:
            raise KeyError(f"unknown population {population!r}; the record has {list(self.flat.offsets)}")
        return self.flat.offsets[population], self.flat.sizes[population]

    def spikes(self, population: str) -> SpikeTrains:
        """Spikes of one population (local neuron indices), inputs included."""
        off, n = self._span(population)
        src = self.inputs if isinstance(self.network[population], SpikeSource) else None
        trial, neuron, time = ((src.trial, src.neuron, src.time) if src is not None
                               else (self.trial, self.neuron, self.time))
        mask = (neuron >= off) & (neuron < off + n)
        return SpikeTrains(trial[mask], neuron[mask] - off, time[mask], self.n_trials, n)

    def first_spike_times(self, population: str, missing: float = np.inf) -> np.ndarray:
        """First spike time (s) of each neuron, shape (n_trials, n); `missing` where none."""
        sp = self.spikes(population)
        out = np.full((self.n_trials, sp.n_neurons), np.inf)
        np.minimum.at(out, (sp.trial, sp.neuron), sp.time)
        out[np.isinf(out)] = missing
        return out

    def voltages(self, population: str) -> np.ndarray:
        """Sampled V of one population, shape (n_trials, n_samples, n)."""
        off, n = self._span(population)
        cols = np.flatnonzero((self.sample_neurons >= off) & (self.sample_neurons < off + n))
        if len(cols) != n:
            raise KeyError(f"voltage of {population!r} was not recorded; pass record=[{population!r}]")
        order = np.argsort(self.sample_neurons[cols])
        return self.voltage[:, :, cols[order]]


def merge_inputs(net: Network, inputs, flat: FlatNetwork) -> SpikeTrains:
    """Validate `inputs` for `net` and merge them into one SpikeTrains over the flat network.

    inputs: a SpikeTrains (network with one spike source) or a dict source name ->
    SpikeTrains (local neuron indices, times in s). Returns the spikes of all
    sources with global neuron indices (``flat.offsets``), times in s, sorted
    by (trial, time, neuron); raises ValueError or TypeError when the inputs do not fit
    the network's sources.
    """
    sources = net.sources
    if isinstance(inputs, SpikeTrains):
        if len(sources) != 1:
            raise ValueError(f"the network has {len(sources)} spike sources {[s.name for s in sources]}; "
                             f"pass inputs as a dict name -> SpikeTrains")
        inputs = {sources[0].name: inputs}
    if not isinstance(inputs, dict):
        raise TypeError("inputs must be a SpikeTrains or a dict population name -> SpikeTrains")
    unknown = set(inputs) - {s.name for s in sources}
    if unknown:
        raise ValueError(f"inputs given for {sorted(unknown)}, which are not spike sources of the network "
                         f"(sources: {[s.name for s in sources]})")
    missing = {s.name for s in sources} - set(inputs)
    if missing:
        raise ValueError(f"no inputs given for spike source(s) {sorted(missing)}")
    if not inputs:
        raise ValueError("inputs is empty because the network has no spike source, so nothing sets the number "
                         "of trials; add a SpikeSource (it may stay silent: SpikeTrains.empty(n_trials, n))")
    for name, st in inputs.items():
        if not isinstance(st, SpikeTrains):
            raise TypeError(f"inputs[{name!r}] must be a SpikeTrains, got {type(st).__name__}")
    n_trials = {st.n_trials for st in inputs.values()}
    if len(n_trials) != 1:
        raise ValueError(f"inputs disagree on the number of trials: {sorted(n_trials)}")
    trial, neuron, time = [], [], []
    for name, st in inputs.items():
        if st.n_neurons != net[name].n:
            raise ValueError(f"inputs for {name!r} have {st.n_neurons} neurons, the population has {net[name].n}")
        trial.append(st.trial)
        neuron.append(st.neuron + flat.offsets[name])
        time.append(st.time)
    merged = SpikeTrains(np.concatenate(trial), np.concatenate(neuron), np.concatenate(time),
                         n_trials.pop(), flat.n_neurons)
    return merged.sorted()


def simulate(net: Network, inputs, duration, *, record=(), sample_times=None,
             n_threads: int | None = None, max_spikes_per_trial: int = 10_000_000,
             progress: bool = False) -> EventRecord:
    """Simulate every trial of `inputs` exactly (no time step) from rest on [0, duration].

    inputs: a SpikeTrains (network with one source) or a dict source name ->
    SpikeTrains (times in s); duration: s or a Brian2 time; record: names of
    LIF/readout populations whose V is sampled at `sample_times` (s).
    Trials run in parallel on `n_threads` threads (default: all usable cores).
    """
    duration = float(as_seconds(duration, "duration", minimum=0.0, strictly=True))
    flat = flatten(net)
    merged = merge_inputs(net, inputs, flat)
    record = [record] if isinstance(record, str) else list(record)
    sample_neurons = np.concatenate([np.arange(flat.sizes[p]) + flat.offsets[p]
                                     for p in record if not isinstance(net[p], SpikeSource)]
                                    or [np.zeros(0, np.int64)]).astype(np.int64)
    if len(record) and len(sample_neurons) != sum(net[p].n for p in record):
        raise ValueError("record: spike sources have no voltage; name LIF or readout populations")
    if sample_times is None:
        sample_times = np.zeros(0)
    if np.ndim(sample_times) > 1:
        raise ValueError(f"sample_times must be a scalar or a 1-d array of times, got shape {np.shape(sample_times)}")
    sample_times = np.atleast_1d(as_seconds(sample_times, "sample_times", np.shape(sample_times), minimum=0.0))
    if np.any(np.diff(sample_times) < 0):
        raise ValueError("sample_times must be sorted")
    if np.any(sample_times > duration):
        late = sample_times[sample_times > duration]
        raise ValueError(f"sample_times must lie in [0, duration = {duration:g} s]; got {late.size} later "
                         f"time(s), the first {late[0]:g} s (simulate for longer to sample there)")
    if record and len(sample_times) == 0:
        raise ValueError("record given but no sample_times")
    # per-trial sample arrays, then their stacked copy
    check_memory(16.0 * merged.n_trials * len(sample_times) * len(sample_neurons),
                 f"recording V of {len(sample_neurons)} neurons at {len(sample_times)} times in "
                 f"{merged.n_trials} trials")
    closed = is_closed_form(flat.tau_m, flat.tau_s)
    bounds = merged.trial_slices()
    static = (flat.kind, flat.tau_m, flat.tau_s, flat.theta, flat.reset, flat.refractory, closed,
              flat.out_ptr, flat.out_post, flat.out_w, flat.out_d)

    def run(k):
        sl = slice(bounds[k], bounds[k + 1])
        out = simulate_trial(*static, merged.neuron[sl], merged.time[sl], duration,
                             sample_times, sample_neurons, max_spikes_per_trial)
        if out[4] == STATUS_TOO_MANY_SPIKES:
            raise RuntimeError(f"trial {k}: the network emitted more than max_spikes_per_trial="
                               f"{max_spikes_per_trial} spikes (runaway activity?); raise the limit "
                               f"if this is intended")
        return out

    n_trials = merged.n_trials
    results = map_trials(run, n_trials, n_threads, progress)
    counts = [len(r[0]) for r in results]
    cat = (lambda i, dt: np.concatenate([r[i] for r in results]).astype(dt) if results else np.zeros(0, dt))
    voltage = (np.stack([r[3] for r in results]) if results
               else np.zeros((0, len(sample_times), len(sample_neurons))))
    return EventRecord(net, flat, merged, np.repeat(np.arange(n_trials), counts).astype(np.int64),
                       cat(1, np.int64), cat(0, float), cat(2, float), duration,
                       sample_times, sample_neurons, voltage)
