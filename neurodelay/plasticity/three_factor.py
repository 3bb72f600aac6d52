"""The three-factor rule on a batch: eligibility traces from the event engine x learning signals.

:func:`three_factor_gradients` returns the rule's update as a gradient estimate shaped like
:func:`neurodelay.gradients.loss_and_grad` (same keys, batch means), so either can drive the
trainer. See :mod:`neurodelay.plasticity` for the derivation and the departures.
"""

from __future__ import annotations

import numpy as np

from ..delays import reduce_synaptic_gradient
from ..gradients import LossAndGrad
from ..network import Network
from .rule import ThreeFactorRule
from .signals import feedback_weights, learning_signals

__all__ = ["three_factor_gradients", "ENGINES"]

#: engines the rule runs on: the plastic event loop, or the rule as plain Brian2 code
ENGINES = ("events", "brian")


def _engine_name(engine) -> str:
    """'events' or 'brian' from a name ('auto' is the event engine) or an engine object; ValueError else."""
    name = "events" if engine == "auto" else (engine if isinstance(engine, str) else getattr(engine, "name", None))
    if name not in ENGINES:
        raise ValueError(f"engine={engine!r}: the three-factor rule runs on {ENGINES} ('events': the exact "
                         f"event engine; 'brian': the rule as Brian2 code, neurodelay.brian.plasticity)")
    return name


def three_factor_gradients(net: Network, rule: ThreeFactorRule, inputs, duration, loss, labels=None, *,
                           n_threads: int | None = None, engine="events", **brian_options) -> LossAndGrad:
    """Run `rule` on a batch: (mean loss, {key: gradient estimate}, record), like
    :func:`~neurodelay.gradients.loss_and_grad`.

    Parameters
    ----------
    net : Network
        Feedforward or recurrent network (recurrent projections: see departure 5 in
        :mod:`neurodelay.plasticity`).
    rule : ThreeFactorRule
        What is updated and how (checked against `net`).
    inputs, duration
        Input spikes and trial length (s), as for :func:`~neurodelay.simulate`.
    loss : neurodelay.losses.Loss
        A spike-time loss on an LIF output, or a loss on the maximum of readout voltages.
    labels : array, optional
        One class per trial (if the loss needs them).
    n_threads : int, optional
        Threads over trials (default: all usable cores; event engine only).
    engine : {"events", "brian"}
        ``"events"``: the plastic variant of the exact event engine. ``"brian"``: the rule as
        plain Brian2 code (:func:`neurodelay.brian.plasticity.three_factor_gradients`), with
        `brian_options` passed on.
    **brian_options
        With ``engine="brian"``: ``mode`` ("precise" or "grid"), ``dt`` (s), ``device``
        ("runtime", "cpp_standalone", "cuda_standalone"), ``history``.

    Returns
    -------
    LossAndGrad
        ``loss`` (batch mean), ``grads`` ``{(projection, kind): array}`` for the rule's keys,
        shaped like the parameters (weights: 1/weight; delays: 1/s), means over the batch, and
        the event ``record``. The update the rule applies is ``-learning_rate * grads[key]``.
    """
    if not isinstance(rule, ThreeFactorRule):
        raise ValueError(f"rule must be a ThreeFactorRule, got {type(rule).__name__}")
    if _engine_name(engine) == "brian":
        if n_threads is not None:
            raise ValueError("n_threads is an option of the event engine; the Brian2 version runs trials in turn")
        from ..brian.plasticity import three_factor_gradients as on_brian   # lazy: Brian2 is optional here

        result = on_brian(net, rule, inputs, duration, loss, labels, **brian_options)
        return LossAndGrad(result.loss, result.grads, result.record)
    if brian_options:
        raise ValueError(f"{', '.join(sorted(brian_options))}: options of engine='brian' (the event engine "
                         f"takes n_threads only)")
    rule.check(net)
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
