"""Brian2 Synapses (and their groups) -> a neurodelay Network description: :func:`from_brian`.

Users often arrive with a Brian2 script. Given one or more ``Synapses``
objects with per-synapse delays (runtime device, after ``connect``), this
reads the connectivity ``i -> j``, the weight variable and ``delay``, and
turns the source and target groups into neurodelay populations:

* ``SpikeGeneratorGroup``, ``PoissonGroup`` (and any group named in
  ``sources``) become :class:`~neurodelay.network.SpikeSource`;
* groups with a threshold become :class:`~neurodelay.network.LIF`, the others
  :class:`~neurodelay.network.Readout`.

The LIF parameters come from the group's variables when it has them (``tau_m``,
``tau_s``, ``theta``, ``v_reset`` or ``reset``, ``tau_ref`` or
``refractory``), otherwise from ``parameters[group name]`` (Brian2
quantities or SI floats); Brian2 thresholds written as literal strings cannot
be read back, so name them there. Each Synapses' delay becomes the synaptic
delay of its projection (seconds).
"""

from __future__ import annotations

import numpy as np

from ..delays import Delays
from ..network import LIF, Network, Readout, SpikeSource

__all__ = ["from_brian"]

_ALIASES = {"tau_m": ("tau_m",), "tau_s": ("tau_s",), "theta": ("theta",), "reset": ("v_reset", "reset"),
            "refractory": ("tau_ref", "refractory")}
_DEFAULT_OPTIONAL = {"reset": 0.0, "refractory": 0.0}


def _values(group, name: str):
    """Per-neuron values of a group variable, with units, or None if the group has no such variable."""
    if name not in group.variables:
        return None
    return group.state(name, use_units=True)[:]


def _population(group, kind: str, given: dict):
    from brian2 import PoissonGroup, SpikeGeneratorGroup

    name = group.name
    if kind == "source" or isinstance(group, (SpikeGeneratorGroup, PoissonGroup)):
        return SpikeSource(name, len(group))
    params = {}
    wanted = ("tau_m", "tau_s") + (("theta", "reset", "refractory") if kind == "lif" else ())
    for key in wanted:
        if key in given:
            params[key] = given[key]
            continue
        found = next((v for v in (_values(group, a) for a in _ALIASES[key]) if v is not None), None)
        if found is not None:
            params[key] = found
        elif key in _DEFAULT_OPTIONAL:
            params[key] = _DEFAULT_OPTIONAL[key]
        else:
            raise ValueError(f"group {name!r} has no variable {' or '.join(_ALIASES[key])}; give "
                             f"parameters={{{name!r}: {{{key!r}: ...}}}}")
    unknown = set(given) - set(wanted)
    if unknown:
        raise ValueError(f"parameters for {name!r}: unknown or unused keys {sorted(unknown)} "
                         f"(a {kind} takes {list(wanted)})")
    return (LIF if kind == "lif" else Readout)(name, len(group), **params)


def from_brian(synapses, weight: str = "w", *, parameters: dict | None = None, sources=()) -> Network:
    """A Network from Brian2 Synapses objects (one projection each) and their groups.

    synapses: a Synapses or a sequence of them (runtime device, connected);
    weight: the name of the synaptic weight variable (dimensionless or volts;
    must be in the units of the target's threshold); parameters: group name ->
    dict of LIF/readout parameters overriding the group's variables; sources:
    names of groups to treat as spike sources. Delays (``S.delay``) become
    per-synapse synaptic delays.
    """
    from brian2 import Synapses, second

    objs = [synapses] if isinstance(synapses, Synapses) else list(synapses)
    if not objs or not all(isinstance(s, Synapses) for s in objs):
        raise TypeError("from_brian expects a brian2 Synapses object or a sequence of them")
    parameters = dict(parameters or {})
    sources = set(sources)
    groups = {}
    for syn in objs:
        for group in (syn.source, syn.target):
            groups.setdefault(group.name, group)
    targets = {syn.target.name for syn in objs}
    bad = sources & targets
    if bad:
        raise ValueError(f"groups {sorted(bad)} receive synapses and cannot be spike sources")
    net = Network()
    for name, group in groups.items():
        if name in sources:
            kind = "source"
        elif name not in targets and "spike" in getattr(group, "events", {}) and name not in parameters:
            kind = "source"  # only sends spikes here: its own dynamics are not part of the import
        else:
            kind = "lif" if "spike" in getattr(group, "events", {}) else "readout"
        net = net.add(_population(group, kind, parameters.get(name, {})))
    unknown = set(parameters) - set(groups)
    if unknown:
        raise ValueError(f"parameters given for {sorted(unknown)}, which are not groups of these synapses "
                         f"(groups: {sorted(groups)})")
    for syn in objs:
        if weight not in syn.variables:
            raise ValueError(f"{syn.name} has no variable {weight!r}; name the weight variable with weight=")
        pre = np.asarray(syn.i[:], dtype=np.int64)
        post = np.asarray(syn.j[:], dtype=np.int64)
        w = syn.state(weight, use_units=True)[:]
        delay = np.asarray(syn.delay[:] / second, dtype=float)  # s; one value if homogeneous
        if delay.size == 1:
            delay = np.full(len(pre), delay.item())
        net = net.connect(syn.source.name, syn.target.name, weight=w, connectivity=(pre, post),
                          delays=Delays(synaptic=delay))
    return net
