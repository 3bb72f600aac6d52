"""What every engine returns and what its adjoint reads: :class:`EventRecord`, and the adjoint's types.

An engine (see :mod:`neurodelay.engines`) turns a :class:`~neurodelay.network.Network`
and input spikes into an :class:`EventRecord`: the spikes of the LIF neurons
(global index, time in s, ``I - theta`` at the spike) and sampled voltages.
The adjoint (EventProp with delays) reads any such record; it is driven by
:class:`AdjointSources` (from a loss) and returns an :class:`AdjointResult`.
:func:`merge_inputs` validates inputs against a network, the same way for every engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from typing import NamedTuple

from .flat import FlatNetwork, flatten
from .memory import check_memory
from .network import LIF, Network, SpikeSource, check_initial_voltage
from .spikes import SpikeTrains
from .units import as_seconds, as_voltage, has_voltage_units

__all__ = ["EventRecord", "merge_inputs", "prepare_run", "resolve_initial_state", "PreparedRun", "spike_time_errors",
           "AdjointSources", "AdjointResult", "RecordMismatchError"]


@dataclass(frozen=True)
class EventRecord:
    """What one batch of trials produced.

    Spikes emitted by spiking (LIF) neurons, sorted by (trial, time): global
    neuron index, time (s) and ``I - theta`` at the spike (= tau_m dV/dt, the
    quantity the adjoint needs). ``voltage[trial, sample, k]`` is V of global
    neuron ``sample_neurons[k]`` at ``sample_times[sample]`` (s). ``engine``
    names what produced the record (written as provenance by :func:`neurodelay.io.record_to_dataset`).
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
    engine: str = ""             # what produced it (provenance), e.g. "events", "brian-precise"
    #: (n_trials, N) V and I of every neuron at t = 0 when `initial_state` overrode the description,
    #: else None (the description's ``flat.v_init``, ``flat.i_init`` in every trial)
    v_init: np.ndarray | None = None
    i_init: np.ndarray | None = None

    def initial_state(self, trial: int) -> tuple[np.ndarray, np.ndarray]:
        """(V, I) of every neuron (global index) at t = 0 in one trial."""
        v = self.flat.v_init if self.v_init is None else self.v_init[trial]
        i = self.flat.i_init if self.i_init is None else self.i_init[trial]
        return v, i

    @property
    def starts_at_rest(self) -> bool:
        """True when every neuron starts from V = I = 0 in every trial."""
        return (not self.flat.has_initial_state and (self.v_init is None or not np.any(self.v_init))
                and (self.i_init is None or not np.any(self.i_init)))

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


_EMPTY_F = np.zeros(0)
_EMPTY_I = np.zeros(0, np.int64)


class RecordMismatchError(ValueError):
    """The record's spikes are not threshold crossings of the given network."""


@dataclass(frozen=True)
class AdjointSources:
    """Derivatives of the loss (summed over trials) that drive the reverse pass.

    * ``spike_time`` (n_record_spikes,): dL/dt_k for each recorded spike, in the
      record's order (None: zero).
    * point voltage sources: ``jump_trial, jump_neuron`` (global index),
      ``jump_time`` (s, in [0, duration]), ``jump_value`` = dL/dV(t) for a loss
      term that reads V at that instant (e.g. a maximum over time).
    * continuous voltage sources: ``rate_trial, rate_neuron, rate_coef, rate_rate``:
      dL/dV(t) = coef * exp(-rate t) on [0, duration] (rate in 1/s); readouts only.
    * ``theta`` (n_neurons,): explicit dL/dtheta of loss terms that contain theta.

    Sources add with ``+`` and scale with ``*``.
    """

    spike_time: np.ndarray | None = None
    jump_trial: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    jump_neuron: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    jump_time: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    jump_value: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    rate_trial: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    rate_neuron: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    rate_coef: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    rate_rate: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    theta: np.ndarray | None = None

    def __add__(self, other: "AdjointSources") -> "AdjointSources":
        if not isinstance(other, AdjointSources):
            return NotImplemented

        def add(a, b):
            if a is None:
                return b
            return a if b is None else np.asarray(a) + np.asarray(b)

        cat = (lambda name: np.concatenate([getattr(self, name), getattr(other, name)]))
        return AdjointSources(
            add(self.spike_time, other.spike_time),
            *(cat(f) for f in ("jump_trial", "jump_neuron", "jump_time", "jump_value",
                               "rate_trial", "rate_neuron", "rate_coef", "rate_rate")),
            add(self.theta, other.theta))

    def __mul__(self, factor: float) -> "AdjointSources":
        factor = float(factor)
        scale = (lambda a: None if a is None else np.asarray(a) * factor)
        return AdjointSources(scale(self.spike_time), self.jump_trial, self.jump_neuron, self.jump_time,
                              np.asarray(self.jump_value) * factor, self.rate_trial, self.rate_neuron,
                              np.asarray(self.rate_coef) * factor, self.rate_rate, scale(self.theta))

    __rmul__ = __mul__


@dataclass(frozen=True)
class AdjointResult:
    """Gradients summed over the trials of a record (divide by n_trials for a batch mean).

    ``weight``, ``delay``: per synapse in :class:`~neurodelay.events.FlatNetwork`
    order (``flat.out_proj`` / ``flat.out_syn`` map back to projections), dL/dw
    and dL/d(total delay) in 1/s. ``tau_m``, ``tau_s`` (1/s; None unless asked
    for), ``theta``: per global neuron. ``spike_time``: dL/dt_k of each recorded
    spike (1/s, record order); ``input_time``: dL/dt of each input spike (order
    of ``record.inputs``). ``worst_threshold_error``: ``max |V - theta|`` found at a
    recorded spike when replaying the record (about 1e-15 for exact records).
    ``bias`` (per global neuron): dL/d(bias); ``v_init``, ``i_init`` (n_trials, N): dL/dV(0)
    and dL/dI(0) of every neuron in every trial (None from engines that do not compute them).
    """

    weight: np.ndarray
    delay: np.ndarray
    tau_m: np.ndarray | None
    tau_s: np.ndarray | None
    theta: np.ndarray
    spike_time: np.ndarray
    input_time: np.ndarray
    n_trials: int
    worst_threshold_error: float
    bias: np.ndarray | None = None
    v_init: np.ndarray | None = None
    i_init: np.ndarray | None = None


class PreparedRun(NamedTuple):
    """What an engine needs before it simulates, checked the same way for every engine."""

    duration: float               # s
    flat: FlatNetwork
    inputs: SpikeTrains           # merged over all sources (global indices), sorted by (trial, time, neuron)
    sample_times: np.ndarray      # (n_samples,) s, sorted, within [0, duration]
    sample_neurons: np.ndarray    # (n_recorded,) global indices of the neurons whose V is sampled
    v_init: np.ndarray | None = None   # (n_trials, N) V at t = 0 when initial_state was given, else None
    i_init: np.ndarray | None = None   # (n_trials, N) I at t = 0 likewise

    def initial_state(self, trial: int) -> tuple[np.ndarray, np.ndarray]:
        """(V, I) of every neuron (global index) at t = 0 in one trial."""
        v = self.flat.v_init if self.v_init is None else self.v_init[trial]
        i = self.flat.i_init if self.i_init is None else self.i_init[trial]
        return np.ascontiguousarray(v), np.ascontiguousarray(i)

    def record(self, net: Network, results: list, engine: str) -> "EventRecord":
        """The EventRecord of a run from per-trial results ``(time, neuron, i_minus_theta, voltage, ...)``."""
        counts = [len(r[0]) for r in results]
        cat = (lambda i, dt: np.concatenate([r[i] for r in results]).astype(dt) if results else np.zeros(0, dt))
        voltage = (np.stack([r[3] for r in results]) if results
                   else np.zeros((0, len(self.sample_times), len(self.sample_neurons))))
        return EventRecord(net, self.flat, self.inputs,
                           np.repeat(np.arange(self.inputs.n_trials), counts).astype(np.int64),
                           cat(1, np.int64), cat(0, float), cat(2, float), self.duration,
                           self.sample_times, self.sample_neurons, voltage, engine=engine,
                           v_init=self.v_init, i_init=self.i_init)


def resolve_initial_state(net: Network, flat: FlatNetwork, initial_state, n_trials: int):
    """Per-trial (V, I) at t = 0 of every neuron, each (n_trials, N), or (None, None) for the description's.

    initial_state: None, or a dict population name -> {"v": array, "i": array} (either key may be
    left out: the description's value stays) of shape (n,) (every trial) or (n_trials, n), in the
    population's voltage unit (Brian2 voltages accepted). Raises ValueError naming the bad entry
    (unknown or spike-source population, unknown key, wrong shape, non-finite values, V at or
    above theta).
    """
    if initial_state is None:
        return None, None
    if not isinstance(initial_state, dict):
        raise ValueError(f"initial_state must be None or a dict population -> {{'v': ..., 'i': ...}}, "
                         f"got {type(initial_state).__name__}")
    check_memory(16.0 * n_trials * flat.n_neurons,
                 f"initial_state: V and I of {flat.n_neurons} neurons in {n_trials} trials")
    v_all = np.tile(flat.v_init, (n_trials, 1))
    i_all = np.tile(flat.i_init, (n_trials, 1))
    for name, values in initial_state.items():
        if name not in flat.offsets:
            raise ValueError(f"initial_state: unknown population {name!r}; the network has {list(flat.offsets)}")
        pop = net[name]
        if isinstance(pop, SpikeSource):
            raise ValueError(f"initial_state: {name!r} is a spike source and has no state")
        if not isinstance(values, dict) or not set(values) <= {"v", "i"}:
            raise ValueError(f"initial_state[{name!r}] must be a dict with keys 'v' and/or 'i', got {values!r}")
        off, n = flat.offsets[name], pop.n
        for key, target in (("v", v_all), ("i", i_all)):
            if key not in values:
                continue
            where = f"initial_state[{name!r}][{key!r}]"
            if getattr(pop, "voltage_unit", None) == "dimensionless" and has_voltage_units(values[key]):
                raise ValueError(f"{where} is a voltage but {name}.theta is dimensionless")
            arr = np.asarray(as_voltage(values[key], where, np.shape(values[key])), float)
            if arr.shape not in ((n,), (n_trials, n)):
                raise ValueError(f"{where} has shape {arr.shape}, expected ({n},) or (n_trials, n) = "
                                 f"({n_trials}, {n})")
            target[:, off:off + n] = arr
    for name in initial_state:
        pop = net[name]
        if isinstance(pop, LIF):
            off = flat.offsets[name]
            check_initial_voltage(v_all[:, off:off + pop.n], pop.theta, f"initial_state[{name!r}]['v']")
    return v_all, i_all


def prepare_run(net: Network, inputs, duration, record=(), sample_times=None,
                initial_state=None) -> PreparedRun:
    """Validate a simulation request and flatten it (every engine's common first step).

    duration: s or a Brian2 time (> 0); inputs: as :func:`merge_inputs`;
    record: names of LIF / readout populations whose V is sampled at
    `sample_times` (s, sorted, in [0, duration]). Raises ValueError naming the
    bad argument, and refuses voltage recordings that would not fit in memory.
    initial_state: per-trial state at t = 0 overriding the description (see
    :func:`resolve_initial_state`).
    """
    duration = float(as_seconds(duration, "duration", minimum=0.0, strictly=True))
    flat = flatten(net)
    merged = merge_inputs(net, inputs, flat)
    record = [record] if isinstance(record, str) else list(record)
    for name in record:
        if name not in flat.offsets:
            raise ValueError(f"record: unknown population {name!r}; the network has {list(flat.offsets)}")
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
    v_init, i_init = resolve_initial_state(net, flat, initial_state, merged.n_trials)
    return PreparedRun(duration, flat, merged, np.ascontiguousarray(sample_times, dtype=float), sample_neurons,
                       v_init, i_init)


def spike_time_errors(reference: EventRecord, other: EventRecord, population: str) -> tuple[np.ndarray, int]:
    """How far one engine's spikes are from another's: ``|t_other - t_reference|`` (s).

    Compared neuron by neuron and trial by trial, for the (trial, neuron) pairs
    whose spike counts agree; returns those differences and the number of pairs
    whose counts differ (not compared).
    """
    a, b = reference.spikes(population), other.spikes(population)
    if a.n_trials != b.n_trials:
        raise ValueError(f"the records have {a.n_trials} and {b.n_trials} trials")
    errors, mismatched = [np.zeros(0)], 0
    for trial in range(a.n_trials):
        for x, y in zip(a.per_neuron(trial), b.per_neuron(trial)):
            if len(x) == len(y):
                errors.append(np.abs(x - y))
            else:
                mismatched += 1
    return np.concatenate(errors), mismatched
