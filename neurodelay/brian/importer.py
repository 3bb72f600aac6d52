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

The group's equations are compared with the model (up to the names of
variables and constants, and units): ``dv/dt = (I - v)/tau_m``,
``dI/dt = -I/tau_s``, synapses ``I_post += w``. A constant bias current
entering like the current, ``dv/dt = (I + I_b - v)/tau_m`` with ``I_b`` one
variable (or constant) of the group, is imported as the population's
``bias``. What the description cannot represent (a conductance-based
synapse, a resting potential, a constant term that is not one variable, a
third state variable, a scaled current, a synapse acting on v) is refused
with a ValueError naming the difference. A group without
differential equations is taken as a placeholder whose parameters are given.
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


_MODEL = "dv/dt = (I - v)/tau_m, dI/dt = -I/tau_s"


def _model_variables(group, kind: str) -> tuple[str, str, object] | None:
    """(voltage, current, bias) after checking the group's equations against the model.

    The model, up to the names of variables and constants and up to units, is
    ``dv/dt = (I - v)/tau_m``, ``dI/dt = -I/tau_s``: two linear equations, the
    current decaying on its own and entering dv/dt with the leak's coefficient,
    no constant term in the current's equation; the voltage's may have one that is
    a bias current: (constant term) / (leak coefficient) must be a single variable
    of the group (returned by name) or a number. Subexpressions are substituted
    first. Returns None for a group without differential equations (its
    parameters must then be given); raises ValueError naming the difference.
    """
    import sympy
    from brian2.parsing.sympytools import str_to_sympy

    eqs = group.equations
    diff = sorted(eqs.diff_eq_names)
    if not diff:
        return None
    where = f"group {group.name!r}"
    if len(diff) != 2:
        raise ValueError(f"{where} has {len(diff)} differential equation(s) ({', '.join(diff)}); neurodelay's "
                         f"{kind} needs exactly two: {_MODEL}")
    subexpr = {name: str_to_sympy(eqs[name].expr.code) for name in eqs.subexpr_names}

    def rhs(name):
        expr = str_to_sympy(eqs[name].expr.code)
        for _ in range(len(subexpr) + 1):  # substitute nested subexpressions (symbols matched by name)
            expr = expr.subs({sym: subexpr[sym.name] for sym in expr.free_symbols if sym.name in subexpr})
        return sympy.expand(expr)

    fa, fb = rhs(diff[0]), rhs(diff[1])
    symbols = {sym.name: sym for f in (fa, fb) for sym in f.free_symbols}
    a, b = (symbols.get(n, sympy.Symbol(n)) for n in diff)
    # the current's equation involves only the current; the voltage's involves both
    if not fa.has(b) and fb.has(a):
        (cur, f_cur), (volt, f_volt) = (a, fa), (b, fb)
    elif not fb.has(a) and fa.has(b):
        (cur, f_cur), (volt, f_volt) = (b, fb), (a, fa)
    elif fa.has(b) and fb.has(a):
        raise ValueError(f"{where}: d{diff[0]}/dt and d{diff[1]}/dt depend on each other; neurodelay's "
                         f"{kind} has a current that decays on its own: {_MODEL}")
    else:
        raise ValueError(f"{where}: neither of d{diff[0]}/dt, d{diff[1]}/dt depends on the other, so no "
                         f"current drives the voltage; neurodelay's {kind} is {_MODEL}")
    zero = {volt: 0, cur: 0}
    for var, f in ((cur, f_cur), (volt, f_volt)):
        for x in (volt, cur):
            for y in (volt, cur):
                if sympy.simplify(sympy.diff(f, x, y)) != 0:
                    term = f"{x}*{y}" if x != y else f"{x}**2"
                    extra = " (a conductance-based synapse)" if {x, y} == {volt, cur} else ""
                    raise ValueError(f"{where}: d{var}/dt = {f} contains {term}{extra}; neurodelay's {kind} is "
                                     f"linear and current-based: {_MODEL}")
    constant = sympy.simplify(f_cur.subs(zero))
    if constant != 0:
        raise ValueError(f"{where}: d{cur}/dt = {f_cur} has the constant term {constant}, which neurodelay's "
                         f"{kind} cannot represent: {_MODEL}")
    if sympy.simplify(sympy.diff(f_volt, cur) + sympy.diff(f_volt, volt)) != 0:
        raise ValueError(f"{where}: in d{volt}/dt = {f_volt} the current {cur} does not enter with the leak's "
                         f"coefficient (as in {_MODEL}); scale the weights instead")
    bias = 0.0
    constant = sympy.simplify(f_volt.subs(zero))
    if constant != 0:
        ratio = sympy.simplify(constant / sympy.diff(f_volt, cur))
        if ratio.is_Symbol and ratio.name in group.variables and ratio.name not in (str(volt), str(cur)):
            bias = ratio.name
        elif ratio.is_number:
            bias = float(ratio)
        else:
            raise ValueError(f"{where}: d{volt}/dt = {f_volt} has the constant term {constant}; neurodelay reads "
                             f"a bias current only as one variable of the group entering like the current "
                             f"(dv/dt = (I + I_b - v)/tau_m), not {ratio} (a resting potential or an expression)")
    return str(volt), str(cur), bias


def _check_on_pre(syn, current: str) -> None:
    """The Synapses must add the weight to the target's current (not to the voltage, not a conductance)."""
    code = getattr(getattr(syn, "pre", None), "code", "") or ""
    targets = {line.split("+=")[0].strip() for line in code.splitlines() if "+=" in line}
    others = [line.strip() for line in code.splitlines() if line.strip() and "+=" not in line]
    wanted = {current, f"{current}_post"}
    if not targets & wanted or targets - wanted or others:
        raise ValueError(f"{syn.name}: on_pre is {code.strip()!r}; neurodelay's synapses make the target's "
                         f"current jump by the weight ({current}_post += w) and do nothing else")


def _population(group, kind: str, given: dict, bias=0.0):
    from brian2 import PoissonGroup, SpikeGeneratorGroup

    name = group.name
    if kind == "source" or isinstance(group, (SpikeGeneratorGroup, PoissonGroup)):
        return SpikeSource(name, len(group))
    params = {}
    if isinstance(bias, str):
        params["bias"] = _values(group, bias)
    elif bias != 0.0:
        params["bias"] = bias
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
    currents = {}  # target group name -> its current variable
    for name, group in groups.items():
        if name in sources:
            kind = "source"
        elif name not in targets and "spike" in getattr(group, "events", {}) and name not in parameters:
            kind = "source"  # only sends spikes here: its own dynamics are not part of the import
        else:
            kind = "lif" if "spike" in getattr(group, "events", {}) else "readout"
        names = _model_variables(group, kind) if kind != "source" else None
        if names is not None:
            currents[name] = names[1]
        net = net.add(_population(group, kind, parameters.get(name, {}), names[2] if names else 0.0))
    unknown = set(parameters) - set(groups)
    if unknown:
        raise ValueError(f"parameters given for {sorted(unknown)}, which are not groups of these synapses "
                         f"(groups: {sorted(groups)})")
    for syn in objs:
        if weight not in syn.variables:
            raise ValueError(f"{syn.name} has no variable {weight!r}; name the weight variable with weight=")
        if syn.target.name in currents:
            _check_on_pre(syn, currents[syn.target.name])
        pre = np.asarray(syn.i[:], dtype=np.int64)
        post = np.asarray(syn.j[:], dtype=np.int64)
        w = syn.state(weight, use_units=True)[:]
        delay = np.asarray(syn.delay[:] / second, dtype=float)  # s; one value if homogeneous
        if delay.size == 1:
            delay = np.full(len(pre), delay.item())
        net = net.connect(syn.source.name, syn.target.name, weight=w, connectivity=(pre, post),
                          delays=Delays(synaptic=delay))
    return net
