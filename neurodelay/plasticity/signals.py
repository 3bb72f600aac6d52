"""The third factor of the three-factor rule: which projections feed no error back, the feedback weights,
and the learning signal of every neuron from a loss's adjoint sources (see :mod:`neurodelay.plasticity`).
Shared by both implementations of the rule (the event engine's, :mod:`neurodelay.plasticity.three_factor`,
and the Brian2 one, :mod:`neurodelay.brian.plasticity`)."""

from __future__ import annotations

import numpy as np

from ..flat import KIND_LIF
from ..network import Network
from .rule import ThreeFactorRule

__all__ = ["feedback_weights", "learning_signals", "recurrent_projections", "JUMP_TIME_TOLERANCE"]

#: how far (s, relative to max(1, duration)) a loss's point source may lie from the tracked maximum of V
JUMP_TIME_TOLERANCE = 1e-9


def recurrent_projections(net: Network) -> tuple[str, ...]:
    """Names of the projections that lie on a cycle of the population graph (pre and post in one
    strongly connected component, e.g. ``"hidden->hidden"``): the rule feeds no error back along them."""
    member = {name: k for k, (names, _) in enumerate(net.population_groups()) for name in names}
    return tuple(p.name for p in net.projections if member[p.pre] == member[p.post])


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


def learning_signals(net: Network, record, sources, feedback: np.ndarray, tmax: np.ndarray | None = None,
                     checked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per (trial, neuron): the spike learning signal L (advance-type) and the point voltage
    signal J = sum of the loss's dL/dV at the maximum of V.

    L of an output neuron is ``-sum_s dL/dt_s`` over its spikes; a neuron with outgoing
    synapses adds ``sum_c B_c (L + J)(post_c)`` (outputs first, so deeper layers get the
    error of the layer above) over the synapses c of non-recurrent projections (a recurrent
    group of populations gets the error of the populations it projects to outside the group,
    e-prop's learning signal; nothing is fed back along its recurrent synapses). Refuses
    continuous voltage sources, and point sources away from the maximum of V `tmax`
    ((n_trials, N), s) at the neurons where `checked` (N,) is True.
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
    numbers = {p.name: k for k, p in enumerate(net.projections)}
    feeds = ~np.isin(flat.out_proj, [numbers[name] for name in recurrent_projections(net)])
    for name in [name for names, _ in reversed(net.population_groups()) for name in names]:   # outputs first
        off, size = flat.offsets[name], flat.sizes[name]
        if size == 0 or flat.kind[off] != KIND_LIF:
            continue
        rows = np.arange(flat.out_ptr[off], flat.out_ptr[off + size])
        rows = rows[feeds[rows]]
        if len(rows) == 0:
            continue
        err = (L + J)[:, flat.out_post[rows]] * feedback[rows][None, :]
        fed = np.zeros((n_trials, n))
        np.add.at(fed, (slice(None), pre_of[rows]), err)
        L += fed
    return L, J
