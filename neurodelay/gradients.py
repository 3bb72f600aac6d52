"""Loss and exact gradients of a network on a batch, with parameters addressed by key.

Parameter keys
--------------
A key is a tuple naming one parameter array of a :class:`~neurodelay.network.Network`
(the shape of the value and of its gradient in parentheses)::

    ("inp->hid", "weight")        (n_syn,)   weights of the projection inp -> hid
    ("inp->hid", "synaptic")      (n_syn,)   synaptic delays s_ji, s
    ("inp->hid", "axonal")        (n_pre,)   axonal delays a_i of that projection, s
    ("inp->hid", "dendritic")     (n_post,)  dendritic delays b_j of that projection, s
    ("hid", "tau_m"), ("hid", "tau_s")   (n,)  time constants per neuron, s (LIF or readout)
    ("hid", "theta")              (n,)       thresholds per neuron (LIF)
    ("hid", "bias")               (n,)       constant input current per neuron (LIF or readout)
    ("hid", "v_init"), ("hid", "i_init")  (n,)  V and I at t = 0 from the description
    ("hid", "tau_m", "shared")    ()         one value for the whole population (also
                                             tau_s, theta, bias, v_init, i_init); its gradient
                                             is the sum over neurons
    ("hid", "v_init", "trial")    (n_trials, n)  gradient only: dL/dV(0) of each trial (also
                                             i_init), e.g. for a per-trial ``initial_state``;
                                             get_param / set_param refuse these keys

Projections are named ``"pre->post"`` as :attr:`Projection.name`. A delay kind
that a projection does not have (None) reads as zeros, and its gradient is
the gradient at zero; setting it adds the kind. Gradients have the
parameter's shape; delay and time-constant gradients are per second.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .delays import DELAY_KINDS, reduce_synaptic_gradient
from .engines import get_engine, require_option
from .network import LIF, Network, Readout
from .record import AdjointResult, EventRecord

__all__ = ["LossAndGrad", "loss_and_grad", "get_param", "set_param", "check_key", "check_value",
           "gradients_to_dataset", "PROJECTION_KINDS", "POPULATION_KINDS", "STATE_KINDS"]

PROJECTION_KINDS = ("weight",) + DELAY_KINDS
POPULATION_KINDS = ("tau_m", "tau_s", "theta", "bias", "v_init", "i_init")
#: kinds whose gradients come from the adjoint's ``state`` option
STATE_KINDS = ("bias", "v_init", "i_init")


class LossAndGrad(NamedTuple):
    """Result of :func:`loss_and_grad`: batch-mean loss, gradients by key, the event record."""

    loss: float
    grads: dict
    record: EventRecord


def check_key(net: Network, key) -> tuple:
    """Validate a parameter key against `net`; returns it as a tuple (raises ValueError/KeyError)."""
    if not isinstance(key, tuple) or len(key) not in (2, 3) or not all(isinstance(k, str) for k in key):
        raise ValueError(f"a parameter key is a tuple (target, kind) or (population, kind, 'shared'), got {key!r}")
    target, kind = key[0], key[1]
    if "->" in target:
        pre, _, post = target.partition("->")
        net.projection(pre, post)
        if len(key) != 2 or kind not in PROJECTION_KINDS:
            raise ValueError(f"projection keys are ({target!r}, kind) with kind in {PROJECTION_KINDS}, got {key!r}")
        return key
    pop = net[target]
    if len(key) == 3 and key[2] == "trial" and kind in ("v_init", "i_init"):
        if not isinstance(pop, (LIF, Readout)):
            raise ValueError(f"{key!r}: population {target!r} ({type(pop).__name__}) has no parameter {kind!r}")
        return key
    if kind not in POPULATION_KINDS or (len(key) == 3 and key[2] != "shared"):
        raise ValueError(f"population keys are ({target!r}, kind) or ({target!r}, kind, 'shared') with kind "
                         f"in {POPULATION_KINDS}, or ({target!r}, 'v_init' or 'i_init', 'trial'), got {key!r}")
    allowed = (LIF,) if kind == "theta" else (LIF, Readout)
    if not isinstance(pop, allowed):
        raise ValueError(f"{key!r}: population {target!r} ({type(pop).__name__}) has no parameter {kind!r}")
    return key


def get_param(net: Network, key) -> np.ndarray:
    """A copy of the parameter named by `key` (see the module docstring for keys and shapes)."""
    key = check_key(net, key)
    target, kind = key[0], key[1]
    if key[-1] == "trial":
        raise ValueError(f"{key!r} names a gradient only (one value per trial); set initial states per trial "
                         f"with simulate(..., initial_state=...)")
    if "->" in target:
        proj = net.projection(*target.split("->"))
        if kind == "weight":
            return proj.weight.copy()
        value = getattr(proj.delays, kind)
        size = {"axonal": net[proj.pre].n, "dendritic": net[proj.post].n, "synaptic": proj.n_syn}[kind]
        return np.zeros(size) if value is None else np.array(value, dtype=float)
    values = np.array(getattr(net[target], kind), dtype=float)
    if len(key) == 3:
        if np.ptp(values) != 0.0:
            raise ValueError(f"{key!r}: the neurons of {target!r} have different {kind} values; a shared "
                             f"parameter needs one value (set it first with set_param)")
        return np.array(values[0])
    return values


def check_value(net: Network, key, value) -> np.ndarray:
    """`value` as a float array of the parameter's shape (scalar for a shared key); ValueError naming the key."""
    expected = np.shape(get_param(net, key)) if len(key) == 2 else ()
    value = np.asarray(value, dtype=float)
    if value.shape != expected:
        raise ValueError(f"{key!r}: value has shape {value.shape}, expected {expected}")
    return value


def set_param(net: Network, key, value) -> Network:
    """A copy of `net` with the parameter named by `key` replaced (checked: shape, range)."""
    key = check_key(net, key)
    target, kind = key[0], key[1]
    value = check_value(net, key, value)
    if "->" in target:
        pre, post = target.split("->")
        if kind == "weight":
            return net.with_projection(pre, post, weight=value)
        return net.with_projection(pre, post, **{kind: value})
    return net.with_population(target, **{kind: np.broadcast_to(value, (net[target].n,)).copy()})


def _synapse_values(result_values: np.ndarray, flat, k: int, n_syn: int) -> np.ndarray:
    out = np.zeros(n_syn)
    mine = flat.out_proj == k
    out[flat.out_syn[mine]] = result_values[mine]
    return out


def _gradient(net: Network, flat, result: AdjointResult, key) -> np.ndarray:
    target, kind = key[0], key[1]
    if "->" in target:
        pre, post = target.split("->")
        k = next(i for i, p in enumerate(net.projections) if p.pre == pre and p.post == post)
        proj = net.projections[k]
        if kind == "weight":
            return _synapse_values(result.weight, flat, k, proj.n_syn)
        per_synapse = _synapse_values(result.delay, flat, k, proj.n_syn)
        return reduce_synaptic_gradient(per_synapse, proj.pre_idx, proj.post_idx,
                                        net[pre].n, net[post].n)[kind]
    off, n = flat.offsets[target], flat.sizes[target]
    if kind in ("v_init", "i_init"):
        per_trial = getattr(result, kind)[:, off: off + n]
        if key[-1] == "trial":
            return per_trial.copy()
        per_neuron = per_trial.sum(axis=0)
        return np.array(per_neuron.sum()) if len(key) == 3 else per_neuron
    per_neuron = getattr(result, kind)[off: off + n].copy()
    return np.array(per_neuron.sum()) if len(key) == 3 else per_neuron


def loss_and_grad(net: Network, inputs, duration, loss, labels=None, params=(), record: EventRecord | None = None,
                  n_threads: int | None = None, record_tolerance: float = 1e-6, engine="auto",
                  initial_state=None) -> LossAndGrad:
    """Forward and reverse pass on a batch: (mean loss over trials, {key: dL/dparam}, record).

    inputs, duration: as for :func:`~neurodelay.simulate` (ignored when
    `record` is given); loss: a :class:`~neurodelay.losses.Loss`; labels: one
    class per trial (if the loss needs them); params: parameter keys (see the
    module docstring) — kinds not listed are held fixed and cost nothing;
    record: an existing :class:`~neurodelay.events.EventRecord` of `net` (e.g.
    from another engine) to differentiate instead of simulating;
    record_tolerance: how far V may miss theta at a recorded spike when the
    record is replayed (relative to ``max(1, |theta|)``; see
    :func:`~neurodelay.events.adjoint`); engine: a name of
    :mod:`neurodelay.engines` or an engine object, which simulates (unless
    `record` is given) and runs the adjoint; initial_state: per-trial state at t = 0
    (see :func:`~neurodelay.simulate`; ignored when `record` is given). Gradients
    are means over the batch, shaped like the parameters. The description's v_init / i_init
    keys refuse populations whose initial state `initial_state` overrides (their gradient
    would be zero); ask for the per-trial key ``(pop, "v_init", "trial")`` instead.
    """
    keys = [check_key(net, key) for key in params]
    if len(set(keys)) != len(keys):
        raise ValueError(f"params lists a key twice: {keys}")
    chosen = get_engine(engine, net)
    want_tau = any(key[1] in ("tau_m", "tau_s") for key in keys)
    extra = {"state": True} if any(key[1] in STATE_KINDS for key in keys) else {}
    fused = getattr(chosen, "fused_loss_and_grad", None)
    if record is None and initial_state is None and keys and not extra and fused is not None:
        # forward -> loss -> backward per trial (e.g. the layered engine), where the engine and the loss allow
        out = fused(net, inputs, duration, loss, labels, time_constants=want_tau, n_threads=n_threads,
                    record_tolerance=record_tolerance)
        if out is not None:
            values, result, record = out
            grads = {key: _gradient(net, record.flat, result, key) / record.n_trials for key in keys}
            return LossAndGrad(float(np.mean(values)), grads, record)
    if record is None:
        if initial_state is not None:
            require_option(chosen, "simulate", "initial_state", "initial_state")
            record = chosen.simulate(net, inputs, duration, n_threads=n_threads, initial_state=initial_state)
        else:
            record = chosen.simulate(net, inputs, duration, n_threads=n_threads)
    elif record.network is not net:
        raise ValueError("record was simulated with another Network object; pass the same network")
    if initial_state is not None:
        overridden = set(initial_state)
    else:   # a given record whose states were set per trial: every population counts as set
        overridden = set(net.names) if record.v_init is not None or record.i_init is not None else set()
    for key in keys:
        if key[1] in ("v_init", "i_init") and key[-1] != "trial" and key[0] in overridden:
            raise ValueError(f"{key!r}: the initial state of {key[0]!r} is set per trial (initial_state), so "
                             f"the description's {key[1]} is unused; ask for {(key[0], key[1], 'trial')!r}")
    if record.n_trials == 0:
        raise ValueError("the batch has no trials")
    values, sources = loss.value_and_sources(record, labels)
    grads = {}
    if keys:
        if extra:
            require_option(chosen, "adjoint", "state", "gradients of bias, v_init or i_init")
        result = chosen.adjoint(record, sources, time_constants=want_tau, n_threads=n_threads,
                                record_tolerance=record_tolerance, **extra)
        grads = {key: _gradient(net, record.flat, result, key) / record.n_trials for key in keys}
    return LossAndGrad(float(np.mean(values)), grads, record)


def _variable_name(key) -> str:
    return ".".join(key)


def gradients_to_dataset(grads: dict, net: Network | None = None):
    """Gradients as an xarray Dataset: one variable per key, named ``"target.kind[.shared]"``
    (e.g. ``"inp->hid.weight"``, ``"hid.tau_m"``), with dimensions ``"<projection>.synapse"`` or
    ``"<population>.neuron"``; with `net`, synapse dimensions get pre/post index coordinates."""
    import xarray as xr

    data_vars, coords = {}, {}
    for key, value in grads.items():
        target, kind = key[0], key[1]
        value = np.asarray(value, dtype=float)
        if "->" in target:
            pre, _, post = target.partition("->")
            dim = {"weight": f"{target}.synapse", "synaptic": f"{target}.synapse",
                   "axonal": f"{pre}.neuron", "dendritic": f"{post}.neuron"}[kind]
            units = "1/s" if kind in DELAY_KINDS else "1/weight"
            if net is not None and dim.endswith(".synapse"):
                proj = net.projection(pre, post)
                coords[f"{target}.pre"] = (dim, proj.pre_idx)
                coords[f"{target}.post"] = (dim, proj.post_idx)
        else:
            dim = f"{target}.neuron"
            units = "1/theta" if kind in ("theta",) + STATE_KINDS else "1/s"
        dims = () if value.ndim == 0 else (dim,) if value.ndim == 1 else ("trial", dim)
        data_vars[_variable_name(key)] = xr.Variable(dims, value, attrs={
            "long_name": f"dL/d {' '.join(key)}", "units": units, "key": repr(key)})
    return xr.Dataset(data_vars, coords=coords,
                      attrs={"description": "batch-mean loss gradients (neurodelay.gradients)"})
