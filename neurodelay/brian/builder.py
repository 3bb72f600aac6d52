"""A neurodelay Network description as Brian2 objects, in grid or precise timing mode.

:func:`build_objects` creates, under the currently active Brian2 device, one
``NeuronGroup`` per population, one ``Synapses`` object per projection (a
single ``on_pre`` pathway whose delay is the sum of the axonal, dendritic and
synaptic delays), spike monitors for the LIF populations and, on request,
voltage monitors, all in one ``brian2.Network``. The returned
:class:`BrianObjects` gives them by population and projection name, so they
can be extended with ordinary Brian2 code (more monitors, more groups, ...).

Modes:

* ``grid``: plain Brian2. Equations integrated exactly per step, threshold
  ``v >= theta``, delays rounded to the nearest step, spikes reported at the
  step in which V was found above threshold. A baseline.
* ``precise``: exact sub-step event timing (see :mod:`.precise`). Spike
  times are reported from the per-neuron history (``ts0``), the exact
  membrane potential at the end of each step is ``v_exact``.

Spike sources are table-driven groups (see :mod:`.tables`), so new input
spikes for a trial are a new value of a TimedArray.

Parameters (time constants, thresholds, weights, delays) are *values*, set by
:func:`parameter_values` and not compiled into standalone code; the structure
(sizes, connectivity, mode, dt, ...) is what a build depends on.

A bias current b (``tau_m dV/dt = -V + I + b``) is handled by shifting: the
state variable ``v`` of a group holds ``u = V - b``, which follows the
bias-free equations with threshold ``theta - b`` and reset ``reset - b`` (the
group's ``theta`` and ``v_reset`` values), so the exact sub-step code of the
precise mode stays as it is; the records add b back to sampled voltages, and
``I - (theta - b)`` at a spike is tau_m dV/dt there. The initial state
(v_init, i_init, or a per-trial ``initial_state``) is assigned per trial like
the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..network import LIF, Network, Readout, SpikeSource
from ..units import as_seconds
from . import precise as P
from .tables import PAD_TIME, RuntimeTable, spike_table

__all__ = ["MODES", "BrianObjects", "BuildExtension", "build_objects", "parameter_values", "default_history",
           "queue_delays",
           "synapse_order", "check_same_structure", "HISTORY_CAP"]

MODES = ("grid", "precise")

#: largest default history length K (more spikes in flight raise an overflow error; pass history=)
HISTORY_CAP = 16

_GRID_LIF = """
dv/dt = (I - v)/tau_m : 1 (unless refractory)
dI/dt = -I/tau_s : 1
tau_m : second (constant)
tau_s : second (constant)
theta : 1 (constant)
v_reset : 1 (constant)
tau_ref : second (constant)
"""

_GRID_READOUT = """
dv/dt = (I - v)/tau_m : 1
dI/dt = -I/tau_s : 1
tau_m : second (constant)
tau_s : second (constant)
"""


@dataclass(frozen=True)
class BuildExtension:
    """Extra Brian2 code built into the network's own groups and synapses (e.g. a learning rule's traces).

    neuron_equations: population name -> equations appended to its group's
    model; synapse_equations: projection name (``"pre->post"``) -> equations
    appended to its Synapses model; on_pre: projection name -> statements run
    after the projection's own on_pre code (in precise mode that code defines
    ``u``, the time from the event's exact arrival to the end of the current
    step, negative for an event delivered before it arrives; in grid mode the
    event arrives at the end of the step); on_post: projection name -> an
    on_post pathway (the post population must spike). Names and code are
    plain Brian2, so the extension runs on every device. The initial values
    of the added variables are Brian2's (zero) unless set on the returned objects.
    """

    neuron_equations: dict = field(default_factory=dict)
    synapse_equations: dict = field(default_factory=dict)
    on_pre: dict = field(default_factory=dict)
    on_post: dict = field(default_factory=dict)

    def check(self, net: Network) -> None:
        """Raise ValueError naming an entry whose population or projection `net` lacks."""
        for what, names, table in (("population", set(net.names), self.neuron_equations),
                                   ("projection", {p.name for p in net.projections}, self.synapse_equations),
                                   ("projection", {p.name for p in net.projections}, self.on_pre),
                                   ("projection", {p.name for p in net.projections}, self.on_post)):
            unknown = sorted(set(table) - names)
            if unknown:
                raise ValueError(f"extension: unknown {what}(s) {unknown}; the network has {sorted(names)}")
        for name in self.on_post:
            post = net[name.partition("->")[2]]
            if not post.spiking:
                raise ValueError(f"extension: on_post for {name!r}, but {post.name!r} does not spike")


@dataclass
class BrianObjects:
    """The Brian2 objects of one built network.

    network: the ``brian2.Network`` holding everything; groups: population
    name -> NeuronGroup; synapses: projection name (``"pre->post"``) ->
    Synapses (its synapses sorted by presynaptic neuron: see
    :func:`synapse_order`); monitors: ``"<population>.spikes"`` -> SpikeMonitor and
    ``"<population>.v"`` -> StateMonitor; tables: source name -> the table of
    its input spike times (a TimedArray, or a :class:`.tables.RuntimeTable`
    under the runtime device); clock: the simulation clock. The Brian2 names of the
    groups are ``nd<index>_<kind>`` (index: position in the network).
    """

    network: object
    groups: dict
    synapses: dict
    monitors: dict
    tables: dict
    clock: object
    description: Network
    mode: str
    dt: float
    history: dict = field(default_factory=dict)
    input_rows: int = 1
    recorded: tuple = ()
    sample_dt: float = 0.0

    @property
    def voltage_variable(self) -> str:
        """The recorded membrane potential: the exact one in precise mode."""
        return "v_exact" if self.mode == "precise" else "v"

    def set_inputs(self, inputs, trial: int = 0) -> None:
        """Runtime device: load one trial of `inputs` (SpikeTrains or dict source -> SpikeTrains, s)
        into the input tables, for a following ``network.run``."""
        if not isinstance(inputs, dict):
            if len(self.tables) != 1:
                raise ValueError(f"the network has sources {sorted(self.tables)}; pass a dict name -> SpikeTrains")
            inputs = {next(iter(self.tables)): inputs}
        if set(inputs) != set(self.tables):
            raise ValueError(f"inputs given for {sorted(inputs)}, the sources are {sorted(self.tables)}")
        for name, table in self.tables.items():
            if not isinstance(table, RuntimeTable):
                raise RuntimeError("set_inputs works under the runtime device; standalone builds take new "
                                   "inputs through run_args (BrianSimulator.run)")
            if inputs[name].n_neurons != self.description[name].n:
                raise ValueError(f"inputs for {name!r} have {inputs[name].n_neurons} neurons, the source has "
                                 f"{self.description[name].n}")
            table.values[...] = spike_table(inputs[name], trial, self.input_rows)


def _brian():
    import brian2
    return brian2


def queue_delays(net: Network, mode: str, dt: float) -> dict[str, np.ndarray]:
    """Per projection, the delay (s) each event waits in Brian2's spike queue: a whole number of steps.

    grid: round(d/dt) steps, halves up as in Brian2's queue; precise: see
    :func:`.precise.queue_steps` (events are delivered early and placed
    exactly by the on_pre code).
    """
    out = {}
    for proj in net.projections:
        d = proj.total_delay()
        steps = (np.floor(d / dt + 0.5).astype(np.int64) if mode == "grid"
                 else P.queue_steps(d, dt, from_source=isinstance(net[proj.pre], SpikeSource)))
        out[proj.name] = steps * dt
    return out


def _history_spans(net: Network, dt: float) -> dict[str, np.ndarray]:
    """Per spiking population, each neuron's longest queue wait of an outgoing event (steps)."""
    spans = {p.name: np.zeros(p.n, np.int64) for p in net.populations if p.spiking}
    for proj in net.projections:
        q = P.queue_steps(proj.total_delay(), dt, from_source=isinstance(net[proj.pre], SpikeSource))
        np.maximum.at(spans[proj.pre], proj.pre_idx, q)
    return spans


def default_history(net: Network, dt: float, source_spikes: dict | None = None,
                    cap: int = HISTORY_CAP) -> dict[str, int]:
    """Default history length K per spiking population (precise mode).

    LIF: from the longest queue wait and the shortest refractory period;
    sources: from the most spikes one input neuron has within that wait in the
    given inputs (source name -> SpikeTrains), plus two spare slots. At most `cap`.
    """
    from .tables import max_spikes_in_window

    spans = _history_spans(net, dt)
    out = {}
    for pop in net.populations:
        if not pop.spiking:
            continue
        span = float(spans[pop.name].max()) * dt if pop.n else 0.0
        if isinstance(pop, LIF):
            out[pop.name] = P.history_length(span, float(np.min(pop.refractory)), dt, cap)
        else:
            trains = (source_spikes or {}).get(pop.name)
            busiest = max_spikes_in_window(trains, span + dt) if trains is not None else 2
            out[pop.name] = int(min(max(busiest + 2, 2), cap)) if span > 0 else 1
    return out


def _group_name(index: int, pop) -> str:
    """Brian2 name of a population's group: nd<index>_<kind>.

    Lower case (brian2cuda lower-cases run_args names) and independent of the
    population's name, so that compiled code is shared between networks whose
    populations have the same kinds in the same order (Cython cache).
    """
    kind = {SpikeSource: "source", LIF: "lif", Readout: "readout"}[type(pop)]
    return f"nd{index}_{kind}"


def _empty_history(b, group, k: int, labels: bool) -> None:
    for n in range(k):
        setattr(group, f"ts{n}", P.FAR_PAST * b.second)
        if labels:
            setattr(group, f"tl{n}", P.FAR_PAST_STEP)


def _cuda_active() -> bool:
    from brian2.devices.device import get_device
    return type(get_device()).__name__ == "CUDAStandaloneDevice"


def _runtime_active() -> bool:
    from brian2.devices.device import RuntimeDevice, get_device
    return isinstance(get_device(), RuntimeDevice)


def _source_group(b, pop: SpikeSource, name: str, mode: str, k: int, rows: int, clock):
    precise = mode == "precise"
    table_name = f"{name}_table"
    if _runtime_active():  # compiled code independent of dt and of the table's shape
        table = RuntimeTable(table_name, rows, pop.n)
        lookup, namespace = f"{table_name}(cnt, i)", {table_name: table.function}
    else:  # a TimedArray indexed by the counter: new values through run_args
        table = b.TimedArray(np.full((rows, pop.n), PAD_TIME) * b.second, dt=clock.dt, name=table_name)
        lookup, namespace = f"{table_name}(cnt*dt, i)", {table_name: table}
    eqs = P.source_equations(k) if precise else "cnt : integer"
    group = b.NeuronGroup(pop.n, eqs, threshold=P.source_condition(lookup, precise),
                          reset=P.source_spike_code(lookup, k) if precise else "cnt += 1", clock=clock,
                          name=name, namespace=namespace)
    if precise:  # the exact time must be in the history before this step's deliveries
        group.resetter["spike"].when = "before_synapses"
        _empty_history(b, group, k, labels=True)
    return group, table


def _lif_group(b, pop: LIF, name: str, mode: str, k: int, clock, extra: str = ""):
    if mode == "grid":
        return b.NeuronGroup(pop.n, _GRID_LIF + extra, threshold="v >= theta", reset="v = v_reset",
                             refractory="tau_ref", method="exact", clock=clock, name=name, namespace={})
    group = b.NeuronGroup(pop.n, P.lif_equations(k) + extra, threshold=P.spike_condition(), reset=P.spike_code(k),
                          events={"substep": P.substep_condition()}, clock=clock, name=name, namespace={})
    group.resetter["spike"].when = "before_synapses"  # exact time in the history before deliveries
    group.run_regularly(P.advance_code(), when="groups", name=f"{name}_advance")
    group.thresholder["substep"].when = "before_thresholds"
    group.thresholder["substep"].order = 0
    group.run_on_event("substep", P.substep_code(), when="before_thresholds", order=1)
    group.ref_end = P.FAR_PAST * b.second
    _empty_history(b, group, k, labels=False)
    return group


def _readout_group(b, pop: Readout, name: str, mode: str, clock, extra: str = ""):
    if mode == "grid":
        return b.NeuronGroup(pop.n, _GRID_READOUT + extra, method="exact", clock=clock, name=name, namespace={})
    group = b.NeuronGroup(pop.n, P.readout_equations() + extra, clock=clock, name=name, namespace={})
    group.run_regularly(P.readout_advance_code(), when="groups", name=f"{name}_advance")
    return group


def build_objects(net: Network, mode: str, dt: float, *, record=(), sample_dt: float | None = None,
                  history: dict | None = None, input_rows: int = 1, set_values: bool = True,
                  clock=None, extension: BuildExtension | None = None) -> BrianObjects:
    """Create the Brian2 objects of `net` under the active device (times in seconds).

    mode: 'grid' or 'precise'; dt: the step (s); record: names of LIF or
    readout populations whose membrane potential is monitored every
    `sample_dt` (s, a multiple of dt; default dt); history: K per spiking
    population (precise mode; default :func:`default_history`); input_rows:
    rows of the input spike tables (most spikes per input neuron + 1).
    set_values: assign the parameters from `net` now (standalone builds pass
    them at run time instead, so the compiled code does not depend on them).
    clock: the Brian2 Clock to use (its dt is set to `dt`); default a new
    one. Standalone builds pass their private device's ``defaultclock``
    (brian2cuda's synapse code refers to it by name). extension: extra
    equations and synaptic code (see :class:`BuildExtension`).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    dt = float(as_seconds(dt, "dt", minimum=0.0, strictly=True))
    b = _brian()
    record = (record,) if isinstance(record, str) else tuple(dict.fromkeys(record))
    for name in record:
        if isinstance(net[name], SpikeSource):
            raise ValueError(f"record: {name!r} is a spike source and has no membrane potential")
    history = dict(history) if history is not None else (default_history(net, dt) if mode == "precise" else {})
    if mode == "precise":
        missing = [p.name for p in net.populations if p.spiking and p.name not in history]
        if missing:
            raise ValueError(f"history: no K given for spiking population(s) {missing}")
        bad = {k: v for k, v in history.items() if not (isinstance(v, (int, np.integer)) and v >= 1)}
        if bad:
            raise ValueError(f"history lengths must be integers >= 1, got {bad}")
    sample_dt = dt if sample_dt is None else float(as_seconds(sample_dt, "sample_dt", minimum=0.0, strictly=True))
    ratio = sample_dt / dt
    if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
        raise ValueError(f"sample_dt ({sample_dt} s) must be a positive multiple of dt ({dt} s)")

    extension = extension or BuildExtension()
    extension.check(net)
    if clock is None:
        clock = b.Clock(dt=dt * b.second, name="nd_clock")
    else:
        clock.dt = dt * b.second
    groups, tables, monitors = {}, {}, {}
    for index, pop in enumerate(net.populations):
        name = _group_name(index, pop)
        if isinstance(pop, SpikeSource):
            groups[pop.name], tables[pop.name] = _source_group(b, pop, name, mode, history.get(pop.name, 1),
                                                               input_rows, clock)
        elif isinstance(pop, LIF):
            groups[pop.name] = _lif_group(b, pop, name, mode, history.get(pop.name, 1), clock,
                                          _extra(extension.neuron_equations.get(pop.name)))
        else:
            groups[pop.name] = _readout_group(b, pop, name, mode, clock,
                                              _extra(extension.neuron_equations.get(pop.name)))

    synapses = {}
    for k, proj in enumerate(net.projections):
        pre, post = groups[proj.pre], groups[proj.post]
        if mode == "grid":
            model, on_pre = "w : 1", "I_post += w"
        else:
            model = P.SYNAPSE_EQUATIONS
            on_pre = P.on_pre_code(history[proj.pre], labels=isinstance(net[proj.pre], SpikeSource),
                                   count_lost=not _cuda_active())
        model += _extra(extension.synapse_equations.get(proj.name))
        if proj.name in extension.on_pre:
            on_pre += "\n" + extension.on_pre[proj.name]
        kw = {"on_post": extension.on_post[proj.name]} if proj.name in extension.on_post else {}
        syn = b.Synapses(pre, post, model, on_pre=on_pre, clock=clock, name=f"nd_syn{k}", namespace={}, **kw)
        order = synapse_order(proj)
        syn.connect(i=proj.pre_idx[order].astype(np.int32), j=proj.post_idx[order].astype(np.int32))
        synapses[proj.name] = syn

    for index, pop in enumerate(net.populations):
        if isinstance(pop, LIF):
            variables = ["ts0", "imt"] if mode == "precise" else ["I"]
            monitors[f"{pop.name}.spikes"] = b.SpikeMonitor(groups[pop.name], variables=variables, when="end",
                                                            name=f"{_group_name(index, pop)}_spikes")
    for name in record:
        index = net.names.index(name)
        var = "v_exact" if mode == "precise" else "v"
        kw = {"clock": clock} if round(ratio) == 1 else {"dt": sample_dt * b.second}
        monitors[f"{name}.v"] = b.StateMonitor(groups[name], var, record=True, when="end",
                                               name=f"{_group_name(index, net[name])}_voltage", **kw)

    network = b.Network(*groups.values(), *synapses.values(), *monitors.values(), name="nd_network")
    objects = BrianObjects(network, groups, synapses, monitors, tables, clock, net, mode, float(dt), history,
                           int(input_rows), record, sample_dt)
    if set_values:
        for owner, var, value in parameter_values(objects, net):
            setattr(owner, var, value)
    return objects


def _extra(equations: str | None) -> str:
    return "\n" + equations if equations else ""


def parameter_values(objects: BrianObjects, net: Network, state=None) -> list[tuple[object, str, object]]:
    """(Brian2 object, variable name, value with units) for every parameter of `net`, and the
    state at t = 0.

    `net` must have the structure the objects were built from (same
    populations and connectivity); its values (time constants, thresholds,
    weights, delays) may differ. state: (V, I) at t = 0 of every neuron (global
    index, as :meth:`neurodelay.record.PreparedRun.initial_state`); default the
    description's v_init, i_init. With a bias b, ``v`` holds V - b and
    ``theta``, ``v_reset`` hold theta - b, reset - b (see the module docstring).
    """
    b = _brian()
    check_same_structure(objects.description, net)
    dt, mode = objects.dt, objects.mode
    offsets = net.offsets()
    out = []
    for pop in net.populations:
        if isinstance(pop, (LIF, Readout)):
            group = objects.groups[pop.name]
            sl = slice(offsets[pop.name], offsets[pop.name] + pop.n)
            v0, i0 = (pop.v_init, pop.i_init) if state is None else (state[0][sl], state[1][sl])
            u0 = np.asarray(v0, float) - pop.bias
            i0 = np.array(i0, float)
            out += [(group, "v", u0), (group, "I", i0)]
            if mode == "precise":
                out += [(group, "v_exact", u0.copy()), (group, "I_exact", i0.copy())]
        group = objects.groups[pop.name]
        if isinstance(pop, (LIF, Readout)):
            out += [(group, "tau_m", pop.tau_m * b.second), (group, "tau_s", pop.tau_s * b.second)]
            if mode == "precise":
                kk = pop.tau_s / (pop.tau_m - pop.tau_s)
                em, es = np.exp(-dt / pop.tau_m), np.exp(-dt / pop.tau_s)
                out += [(group, "kk", kk), (group, "em", em), (group, "es", es), (group, "pk", kk * (em - es)),
                        (group, "rate_m", 1 / pop.tau_m * b.hertz), (group, "rate_s", 1 / pop.tau_s * b.hertz)]
        if isinstance(pop, LIF):
            out += [(group, "theta", pop.theta - pop.bias), (group, "v_reset", pop.reset - pop.bias),
                    (group, "tau_ref", pop.refractory * b.second)]
    if mode == "precise":
        for name, span in _history_spans(net, dt).items():
            out.append((objects.groups[name], "hist_steps", span.astype(np.int32)))
    queued = queue_delays(net, mode, dt)
    for proj in net.projections:
        syn = objects.synapses[proj.name]
        order = synapse_order(proj)
        out += [(syn, "w", proj.weight[order]), (syn, "delay", queued[proj.name][order] * b.second)]
        if mode == "precise":
            out += [(syn, "delay_exact", proj.total_delay()[order] * b.second),
                    (syn, "queue_steps", np.rint(queued[proj.name][order] / dt).astype(np.int32))]
    return out


def synapse_order(proj) -> np.ndarray:
    """Order of a projection's synapses in its Brian2 Synapses object: by presynaptic neuron.

    Brian2 synapse k is synapse ``order[k]`` of the description. The synapses of
    one spike are then neighbours in memory, which makes event delivery faster.
    """
    return np.lexsort((proj.post_idx, proj.pre_idx))


def check_same_structure(built: Network, new: Network) -> None:
    """Raise ValueError naming the difference if `new` cannot reuse a build of `built`."""
    a = [(type(p).__name__, p.name, p.n) for p in built.populations]
    b = [(type(p).__name__, p.name, p.n) for p in new.populations]
    if a != b:
        raise ValueError(f"the network's populations {b} differ from the built ones {a}; build again")
    pa = [p.name for p in built.projections]
    pb = [p.name for p in new.projections]
    if pa != pb:
        raise ValueError(f"the network's projections {pb} differ from the built ones {pa}; build again")
    for p, q in zip(built.projections, new.projections):
        if not (np.array_equal(p.pre_idx, q.pre_idx) and np.array_equal(p.post_idx, q.post_idx)):
            raise ValueError(f"projection {p.name}: the connectivity differs from the built one "
                             f"(only weights, delays and neuron parameters can change); build again")
