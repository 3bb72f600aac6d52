"""Declarative description of a spiking network with delays.

A :class:`Network` holds populations (spike sources, LIF neurons, leaky
integrator readouts) and projections between them. It contains plain arrays
only (times in seconds, voltages and weights as floats) and is the single
source of truth that every engine (event engine, Brian2) reads.

Model of an LIF neuron (and of a readout, which never spikes)::

    tau_m dV/dt = -V + I + bias,   tau_s dI/dt = -I
    V crosses theta from below -> spike, V -> reset, clamped for `refractory` s
    a spike of i at t arrives at j at t + d_ji and makes I_j jump by w_ji
    V(0) = v_init, I(0) = i_init (per neuron; engines accept per-trial overrides)

``bias`` is a constant input current (NEST's ``I_e``) in the population's
voltage unit: with ``u = V - bias`` the neuron follows the bias-free dynamics
with threshold ``theta - bias`` and reset ``reset - bias``, so a neuron with
``bias > theta`` fires tonically without input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .delays import Delays
from .memory import check_memory
from .units import as_seconds, as_voltage, has_voltage_units

__all__ = ["SpikeSource", "LIF", "Readout", "Projection", "Network"]

#: smallest allowed relative difference between tau_m and tau_s
TAU_RELATIVE_GAP = 1e-6
#: memory per synapse while a projection is built (index pair, its temporaries, weight, three delay
#: kinds, and the flattened copy engines make), checked against the available memory first
BYTES_PER_SYNAPSE = 96


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"population name must be a Python identifier, got {name!r}")
    return name


def _check_size(n, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"population {name!r}: size must be a positive integer, got {n!r}")
    return int(n)


@dataclass(frozen=True)
class SpikeSource:
    """A population of `n` input neurons whose spike times are given per trial."""

    name: str
    n: int

    def __post_init__(self):
        object.__setattr__(self, "name", _check_name(self.name))
        object.__setattr__(self, "n", _check_size(self.n, self.name))

    spiking = True


def _time_constants(pop) -> None:
    shape = (pop.n,)
    tau_m = as_seconds(pop.tau_m, f"{pop.name}.tau_m", shape, minimum=0.0, strictly=True)
    tau_s = as_seconds(pop.tau_s, f"{pop.name}.tau_s", shape, minimum=0.0, strictly=True)
    gap = np.abs(tau_m - tau_s) <= TAU_RELATIVE_GAP * tau_m
    if np.any(gap):
        idx = np.flatnonzero(gap)[:5].tolist()
        raise ValueError(
            f"{pop.name}: tau_m equals tau_s for neurons {idx}; the equal-time-constant limit is not "
            f"supported, make them differ by more than {TAU_RELATIVE_GAP:g} relative "
            f"(e.g. tau_s = 0.999 * tau_m)")
    object.__setattr__(pop, "tau_m", tau_m)
    object.__setattr__(pop, "tau_s", tau_s)


@dataclass(frozen=True)
class LIF:
    """Leaky integrate-and-fire neurons with exponential current synapses.

    tau_m, tau_s, refractory: seconds (scalar or one per neuron, or Brian2 times);
    theta (threshold, > 0) and reset (< theta): dimensionless or volts;
    bias (constant input current, NEST's I_e), v_init (< theta) and i_init (state at t = 0):
    scalar or one per neuron, in the unit of theta.
    """

    name: str
    n: int
    tau_m: object = 20e-3
    tau_s: object = 5e-3
    theta: object = 1.0
    reset: object = 0.0
    refractory: object = 0.0
    #: constant input current (NEST's I_e), in the unit of theta: tau_m dV/dt = -V + I + bias
    bias: object = 0.0
    #: V and I at t = 0 (unit of theta); v_init must be below theta
    v_init: object = 0.0
    i_init: object = 0.0
    #: 'volt' when theta or reset were given as Brian2 voltages (then stored in volts), else
    #: 'dimensionless'; a weight onto this population must then be in the same kind of unit
    voltage_unit: str | None = field(default=None, compare=False, repr=False)

    spiking = True

    def __post_init__(self):
        object.__setattr__(self, "name", _check_name(self.name))
        object.__setattr__(self, "n", _check_size(self.n, self.name))
        _time_constants(self)
        shape = (self.n,)
        if has_voltage_units(self.theta) or has_voltage_units(self.reset):
            unit = "volt"
        elif self.voltage_unit in (None, "dimensionless", "volt"):
            unit = self.voltage_unit or "dimensionless"
        else:
            raise ValueError(f"{self.name}.voltage_unit must be 'volt' or 'dimensionless', got {self.voltage_unit!r}")
        object.__setattr__(self, "voltage_unit", unit)
        theta = as_voltage(self.theta, f"{self.name}.theta", shape, minimum=0.0, strictly=True)
        reset = as_voltage(self.reset, f"{self.name}.reset", shape)
        if np.any(reset >= theta):
            raise ValueError(f"{self.name}: reset must be below theta "
                             f"(neurons {np.flatnonzero(reset >= theta)[:5].tolist()})")
        object.__setattr__(self, "theta", theta)
        object.__setattr__(self, "reset", reset)
        object.__setattr__(self, "refractory",
                           as_seconds(self.refractory, f"{self.name}.refractory", shape, minimum=0.0))
        _state_values(self, unit)
        check_initial_voltage(self.v_init, theta, f"{self.name}.v_init")


@dataclass(frozen=True)
class Readout:
    """Non-spiking leaky integrators (same equations as LIF, no threshold).

    bias, v_init, i_init: constant input current and state at t = 0 (scalar or one per neuron,
    in the unit of the incoming weights).
    """

    name: str
    n: int
    tau_m: object = 20e-3
    tau_s: object = 5e-3
    bias: object = 0.0
    v_init: object = 0.0
    i_init: object = 0.0

    spiking = False

    def __post_init__(self):
        object.__setattr__(self, "name", _check_name(self.name))
        object.__setattr__(self, "n", _check_size(self.n, self.name))
        _time_constants(self)
        _state_values(self, None)


Population = SpikeSource | LIF | Readout


@dataclass(frozen=True)
class Projection:
    """Synapses from population `pre` onto `post` (names; equal for recurrent).

    pre_idx, post_idx: int arrays (one entry per synapse); weight: per synapse
    (jump of I, same units as theta); delays: a :class:`Delays`, resolved to
    plain arrays of the right shapes.
    """

    pre: str
    post: str
    pre_idx: np.ndarray
    post_idx: np.ndarray
    weight: np.ndarray
    delays: Delays = field(default_factory=Delays)

    @property
    def name(self) -> str:
        return f"{self.pre}->{self.post}"

    @property
    def n_syn(self) -> int:
        return len(self.pre_idx)

    def total_delay(self) -> np.ndarray:
        """Per-synapse transmission delay (seconds)."""
        return self.delays.total(self.pre_idx, self.post_idx)


def _connectivity(connectivity, n_pre: int, n_post: int, name: str, rng) -> tuple[np.ndarray, np.ndarray]:
    """(pre_idx, post_idx) from 'all', a probability, a (pre, post) index pair or a boolean mask."""
    candidates = float(n_pre) * float(n_post)
    if isinstance(connectivity, str):
        if connectivity != "all":
            raise ValueError(f"{name}: connectivity string must be 'all', got {connectivity!r}")
        check_memory(candidates * BYTES_PER_SYNAPSE, f"{name}: {n_pre} x {n_post} = {candidates:.3g} synapses")
        post, pre = np.meshgrid(np.arange(n_post), np.arange(n_pre))
        return pre.ravel(), post.ravel()
    if isinstance(connectivity, float):
        if not 0.0 <= connectivity <= 1.0:
            raise ValueError(f"{name}: connection probability must be in [0, 1], got {connectivity}")
        # the (n_pre, n_post) draw (float64 + mask), then the synapses it keeps
        check_memory(candidates * (9 + connectivity * BYTES_PER_SYNAPSE),
                     f"{name}: drawing {n_pre} x {n_post} connections with p = {connectivity:g}")
        mask = np.random.default_rng(rng).random((n_pre, n_post)) < connectivity
        return _connectivity(mask, n_pre, n_post, name, rng)
    if isinstance(connectivity, np.ndarray) and connectivity.dtype == bool:
        if connectivity.shape != (n_pre, n_post):
            raise ValueError(f"{name}: connectivity mask has shape {connectivity.shape}, "
                             f"expected (n_pre, n_post) = {(n_pre, n_post)}")
        pre, post = np.nonzero(connectivity)
        return pre, post
    try:
        pre, post = connectivity
    except (TypeError, ValueError):
        raise ValueError(f"{name}: connectivity must be 'all', a probability, a boolean (n_pre, n_post) "
                         f"mask or a (pre_idx, post_idx) pair") from None
    pre = np.asarray(pre)
    post = np.asarray(post)
    for arr, label, n in ((pre, "pre_idx", n_pre), (post, "post_idx", n_post)):
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name}: {label} must be a 1-d integer array")
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise ValueError(f"{name}: {label} out of range [0, {n})")
    if pre.shape != post.shape:
        raise ValueError(f"{name}: pre_idx and post_idx have different lengths ({pre.size} vs {post.size})")
    return pre.astype(np.int64), post.astype(np.int64)


def _state_values(pop, unit: str | None) -> None:
    """Validate and store ``bias``, ``v_init``, ``i_init`` of an LIF or readout population."""
    shape = (pop.n,)
    for attr in ("bias", "v_init", "i_init"):
        value = getattr(pop, attr)
        if unit == "dimensionless" and has_voltage_units(value):
            raise ValueError(f"{pop.name}.{attr} is a voltage but {pop.name}.theta is dimensionless; give it "
                             f"dimensionless (in threshold units) or theta and reset in volts")
        object.__setattr__(pop, attr, as_voltage(value, f"{pop.name}.{attr}", shape))


def check_initial_voltage(v, theta, where: str) -> None:
    """Refuse initial potentials at or above threshold (the first spike would not be a crossing)."""
    bad = np.asarray(v) >= theta
    if np.any(bad):
        idx = np.argwhere(bad)[:5].tolist()
        raise ValueError(f"{where} must be below theta (a neuron starting at or above threshold would have "
                         f"no crossing to fire on); offending indices {idx}")


def _check_weight_unit(weight, post_pop, name: str) -> None:
    """Refuse a weight in volts onto LIF neurons whose threshold is dimensionless (it would be
    converted to volts, e.g. 0.5 mV -> 0.0005 threshold units, without a word)."""
    if isinstance(post_pop, LIF) and post_pop.voltage_unit == "dimensionless" and has_voltage_units(weight):
        raise ValueError(f"{name} weight is a voltage but {post_pop.name}.theta is dimensionless; give the "
                         f"weight dimensionless (in threshold units) or theta and reset in volts")


@dataclass(frozen=True)
class Network:
    """Populations (in insertion order) and projections. Immutable: the
    ``add``/``connect`` methods return a new Network."""

    populations: tuple = ()
    projections: tuple = ()

    # ---- construction -------------------------------------------------
    def add(self, *pops: Population) -> "Network":
        """Return a network with populations added (names must be unique)."""
        names = set(self.names)
        for pop in pops:
            if not isinstance(pop, (SpikeSource, LIF, Readout)):
                raise TypeError(f"expected SpikeSource, LIF or Readout, got {type(pop).__name__}")
            if pop.name in names:
                raise ValueError(f"population name {pop.name!r} is used twice")
            names.add(pop.name)
        return replace(self, populations=self.populations + tuple(pops))

    def connect(self, pre: str, post: str, weight, connectivity="all", delays: Delays | None = None,
                rng=None) -> "Network":
        """Return a network with a projection pre -> post added.

        weight: scalar or one value per synapse (dimensionless or volts);
        connectivity: 'all', a probability (needs rng/seed for reproducibility),
        a boolean (n_pre, n_post) mask or a (pre_idx, post_idx) pair;
        delays: :class:`Delays` (seconds), default no delay.
        """
        pre_pop, post_pop = self[pre], self[post]
        name = f"{pre}->{post}"
        if not post_pop.__class__ in (LIF, Readout):
            raise ValueError(f"{name}: the target {post!r} is a spike source and cannot receive synapses")
        if isinstance(pre_pop, Readout):
            raise ValueError(f"{name}: the source {pre!r} is a readout and never spikes")
        if any(p.pre == pre and p.post == post for p in self.projections):
            raise ValueError(f"{name}: there is already a projection from {pre!r} to {post!r}")
        pre_idx, post_idx = _connectivity(connectivity, pre_pop.n, post_pop.n, name, rng)
        _check_weight_unit(weight, post_pop, name)
        w = as_voltage(weight, f"{name} weight", (len(pre_idx),))
        if delays is not None and not isinstance(delays, Delays):
            raise ValueError(f"{name}: delays must be a Delays (e.g. Delays(synaptic=...), seconds), got "
                             f"{type(delays).__name__}")
        d = (delays or Delays()).resolved(pre_pop.n, post_pop.n, len(pre_idx), where=name)
        proj = Projection(pre, post, pre_idx, post_idx, w, d)
        return replace(self, projections=self.projections + (proj,))

    # ---- access ---------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.populations)

    def __getitem__(self, name: str) -> Population:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(f"unknown population {name!r}; the network has {list(self.names)}")

    def projection(self, pre: str, post: str) -> Projection:
        for proj in self.projections:
            if proj.pre == pre and proj.post == post:
                return proj
        raise KeyError(f"no projection {pre}->{post}; the network has "
                       f"{[p.name for p in self.projections]}")

    @property
    def sources(self) -> tuple[SpikeSource, ...]:
        return tuple(p for p in self.populations if isinstance(p, SpikeSource))

    def offsets(self) -> dict[str, int]:
        """Index of each population's first neuron in the flat (global) neuron numbering."""
        out, start = {}, 0
        for pop in self.populations:
            out[pop.name] = start
            start += pop.n
        return out

    @property
    def n_neurons(self) -> int:
        return sum(p.n for p in self.populations)

    def population_groups(self, *, sources: bool = True) -> list[tuple[tuple[str, ...], bool]]:
        """The populations as strongly connected components of the projection graph (Tarjan's
        algorithm), in an order where every projection between groups goes forward (sources first):
        ``[(names, recurrent)]``, recurrent when the group has a cycle (several populations, or a
        projection of a population onto itself). Populations keep the network's order within a
        group and among independent groups where possible. ``sources=False`` leaves the spike
        sources out."""
        names = [p.name for p in self.populations if sources or not isinstance(p, SpikeSource)]
        succ: dict = {a: [] for a in names}
        loops = set()
        for p in self.projections:
            if p.pre in succ:
                succ[p.pre].append(p.post)
                if p.pre == p.post:
                    loops.add(p.pre)
        index: dict = {}
        low: dict = {}
        stack: list = []
        on_stack: set = set()
        found: list = []

        def strongconnect(v):                   # graphs of a few populations: recursion is fine
            index[v] = low[v] = len(index)
            stack.append(v)
            on_stack.add(v)
            for w in succ[v]:
                if w not in index:
                    strongconnect(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                found.append(comp)

        for v in names:
            if v not in index:
                strongconnect(v)
        order = {name: k for k, name in enumerate(names)}
        groups = []
        for comp in reversed(found):            # Tarjan emits a component after every one it reaches
            comp = sorted(comp, key=order.get)
            groups.append((tuple(comp), len(comp) > 1 or comp[0] in loops))
        return groups

    def is_feedforward(self) -> bool:
        """True when the projection graph between populations has no cycle."""
        edges = {(p.pre, p.post) for p in self.projections}
        state: dict[str, int] = {}

        def cyclic(node: str) -> bool:
            state[node] = 1
            for a, b in edges:
                if a == node and (state.get(b) == 1 or (state.get(b) is None and cyclic(b))):
                    return True
            state[node] = 2
            return False

        return not any(state.get(n) is None and cyclic(n) for n in self.names)

    # ---- parameter updates ---------------------------------------------
    def with_projection(self, pre: str, post: str, *, weight=None, **delay_kinds) -> "Network":
        """Copy with new weights and/or delay arrays (axonal=, dendritic=, synaptic=) for one projection."""
        projections = []
        for proj in self.projections:
            if proj.pre == pre and proj.post == post:
                n_pre, n_post = self[pre].n, self[post].n
                if weight is not None:
                    _check_weight_unit(weight, self[post], proj.name)
                w = proj.weight if weight is None else as_voltage(weight, f"{proj.name} weight", (proj.n_syn,))
                d = proj.delays.replace(**delay_kinds).resolved(n_pre, n_post, proj.n_syn, where=proj.name)
                proj = replace(proj, weight=w, delays=d)
            projections.append(proj)
        self.projection(pre, post)  # raises a clear KeyError if absent
        return replace(self, projections=tuple(projections))

    def with_population(self, name: str, **params) -> "Network":
        """Copy with some parameters of one population replaced (e.g. tau_m=...)."""
        pops = tuple(replace(p, **params) if p.name == name else p for p in self.populations)
        self[name]
        return replace(self, populations=pops)
