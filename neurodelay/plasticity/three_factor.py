"""The three-factor rule on a batch: eligibility traces from the event engine x learning signals.

:func:`three_factor_gradients` returns the rule's update as a gradient estimate shaped like
:func:`neurodelay.gradients.loss_and_grad` (same keys, batch means), so either can drive the
trainer. See :mod:`neurodelay.plasticity` for the derivation and the departures.
"""

from __future__ import annotations

import numpy as np

from ..delays import reduce_synaptic_gradient
from ..flat import KIND_LIF
from ..gradients import LossAndGrad
from ..network import Network
from .rule import ThreeFactorRule

__all__ = ["three_factor_gradients", "feedback_weights", "learning_signals"]

#: how far (s, relative to max(1, duration)) a loss's point source may lie from the tracked maximum of V
JUMP_TIME_TOLERANCE = 1e-9


def _refuse_unsupported(net: Network, rule: ThreeFactorRule, engine) -> None:
    if engine not in ("events", "auto") and getattr(engine, "name", None) != "events":
        raise ValueError(f"engine={engine!r}: the three-factor rule runs in the 'events' engine here "
                         f"(and as Brian2 code in neurodelay.brian); pass engine='events'")
    if rule.apply != "end":
        raise ValueError("apply='online' is not implemented in the event engine; use apply='end'")
    if not net.is_feedforward():
        raise ValueError("the three-factor rule supports feedforward networks only (no learning signal is "
                         "defined here for recurrent projections)")


def feedback_weights(net: Network, rule: ThreeFactorRule, flat) -> np.ndarray:
    """The feedback weight B of every flat synapse (the learning signal of its presynaptic neuron is
    ``sum B * err(post)`` over its outgoing synapses): the current weights (symmetric) or fixed
    random ones, standard normal (drawn from ``[feedback_seed, projection number]``, in the
    projection's synapse order) times the root mean square of the projection's weights."""
    if rule.feedback == "symmetric":
        return flat.out_w.copy()
    b = np.zeros(len(flat.out_w))
    for k, proj in enumerate(net.projections):
        z = np.random.default_rng([rule.feedback_seed, k]).standard_normal(proj.n_syn)
        scale = float(np.sqrt(np.mean(proj.weight ** 2))) if proj.n_syn else 0.0
        mine = flat.out_proj == k
        b[mine] = scale * z[flat.out_syn[mine]]
    return b


def _topological_populations(net: Network) -> list[str]:
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        for p in net.projections:
            if p.pre == name:
                visit(p.post)
        order.append(name)

    for pop in net.populations:
        visit(pop.name)
    return order      # every population after (to the left of) the ones it projects to: outputs first


def learning_signals(net: Network, record, sources, feedback: np.ndarray, tmax: np.ndarray | None = None,
                     checked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per (trial, neuron): the spike learning signal L (advance-type) and the point voltage
    signal J = sum of the loss's dL/dV at the maximum of V.

    L of an output neuron is ``-sum_s dL/dt_s`` over its spikes; a neuron with outgoing
    synapses adds ``sum_c B_c (L + J)(post_c)`` (outputs first, so deeper layers get the
    error of the layer above). Refuses continuous voltage sources, and point sources away
    from the maximum of V `tmax` ((n_trials, N), s) at the neurons where `checked` (N,) is True.
    """
    flat = record.flat
    n_trials, n = record.n_trials, flat.n_neurons
    if len(sources.rate_trial):
        raise ValueError("the loss has continuous voltage sources (a weighted voltage integral); the three-factor "
                         "rule supports spike-time losses and losses on the maximum of V")
    L = np.zeros((n_trials, n))
    if sources.spike_time is not None:
        np.add.at(L, (record.trial, record.neuron), -np.asarray(sources.spike_time))
    J = np.zeros((n_trials, n))
    if len(sources.jump_trial):
        np.add.at(J, (sources.jump_trial, sources.jump_neuron), sources.jump_value)
        if tmax is not None and checked is not None:
            at = tmax[sources.jump_trial, sources.jump_neuron]
            off = np.abs(at - sources.jump_time) > JUMP_TIME_TOLERANCE * max(1.0, float(record.duration))
            if np.any(off & checked[sources.jump_neuron] & (sources.jump_value != 0)):
                raise ValueError("the loss reads V at times other than its maximum over the trial; the "
                                 "three-factor rule supports point sources at the maximum of V only")
    pre_of = np.repeat(np.arange(n), np.diff(flat.out_ptr))
    for name in _topological_populations(net):
        off, size = flat.offsets[name], flat.sizes[name]
        if flat.kind[off] != KIND_LIF:
            continue
        rows = np.arange(flat.out_ptr[off], flat.out_ptr[off + size])
        if len(rows) == 0:
            continue
        err = (L + J)[:, flat.out_post[rows]] * feedback[rows][None, :]
        fed = np.zeros((n_trials, n))
        np.add.at(fed, (slice(None), pre_of[rows]), err)
        L += fed
    return L, J


def three_factor_gradients(net: Network, rule: ThreeFactorRule, inputs, duration, loss, labels=None, *,
                           n_threads: int | None = None, engine="events") -> LossAndGrad:
    """Run `rule` on a batch: (mean loss, {key: gradient estimate}, record), like
    :func:`~neurodelay.gradients.loss_and_grad`.

    Parameters
    ----------
    net : Network
        Feedforward network (recurrent projections are refused).
    rule : ThreeFactorRule
        What is updated and how (checked against `net`).
    inputs, duration
        Input spikes and trial length (s), as for :func:`~neurodelay.events.simulate`.
    loss : neurodelay.losses.Loss
        A spike-time loss on an LIF output, or a loss on the maximum of readout voltages.
    labels : array, optional
        One class per trial (if the loss needs them).
    n_threads : int, optional
        Threads over trials (default: all usable cores).
    engine : "events"
        The plastic variant of the exact event engine (the rule's Brian2 form lives in neurodelay.brian).

    Returns
    -------
    LossAndGrad
        ``loss`` (batch mean), ``grads`` ``{(projection, kind): array}`` for the rule's keys,
        shaped like the parameters (weights: 1/weight; delays: 1/s), means over the batch, and
        the event ``record``. The update the rule applies is ``-learning_rate * grads[key]``.
    """
    if not isinstance(rule, ThreeFactorRule):
        raise ValueError(f"rule must be a ThreeFactorRule, got {type(rule).__name__}")
    rule.check(net)
    _refuse_unsupported(net, rule, engine)
    from ..events.plastic import simulate_plastic
    from ..flat import flatten

    flat = flatten(net)
    numbers = {p.name: k for k, p in enumerate(net.projections)}
    plastic_proj = np.array([numbers[name] for name in rule.projections])
    tracked = np.isin(flat.out_proj, plastic_proj)
    run = simulate_plastic(net, inputs, duration, tracked, rule.pseudo_derivative, rule.sigma, n_threads=n_threads)
    record = run.record
    if record.n_trials == 0:
        raise ValueError("the batch has no trials")
    values, sources = loss.value_and_sources(record, labels)
    fl = record.flat
    syn = run.synapses
    post = fl.out_post[syn]
    checked = np.zeros(fl.n_neurons, bool)
    checked[post] = True
    L, J = learning_signals(net, record, sources, feedback_weights(net, rule, fl), run.tmax, checked)

    tm, ts = fl.tau_m[post], fl.tau_s[post]
    c = ts / (tm - ts)
    w = fl.out_w[syn]
    Lp, Jp = L[:, post], J[:, post]
    grad_w = (Lp * c * (run.A - run.B) + Jp * c * (run.SP - run.SQ)).mean(axis=0)
    grad_d = (Lp * w * c * (run.A / tm - run.B / ts)
              + Jp * (w * c * (run.SP / tm - run.SQ / ts) + run.kink)).mean(axis=0)
    # readouts never spike: their synapses learn only through point sources
    grads = {}
    for name, kinds in rule.updates:
        k = numbers[name]
        proj = net.projections[k]
        mine = fl.out_proj[syn] == k
        per_w = np.zeros(proj.n_syn)
        per_w[fl.out_syn[syn[mine]]] = grad_w[mine]
        per_d = np.zeros(proj.n_syn)
        per_d[fl.out_syn[syn[mine]]] = grad_d[mine]
        for kind in kinds:
            if kind == "weight":
                grads[(name, kind)] = per_w
            else:
                grads[(name, kind)] = reduce_synaptic_gradient(per_d, proj.pre_idx, proj.post_idx,
                                                               net[proj.pre].n, net[proj.post].n)[kind]
    return LossAndGrad(float(np.mean(values)), grads, record)
