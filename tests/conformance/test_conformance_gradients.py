"""Every engine's gradients against independent references (the ``engine`` fixture: conftest.py).

* central finite differences of the engine's own forward pass, for every
  parameter kind (weights, synaptic / axonal / dendritic delays, tau_m, tau_s
  per neuron and shared, theta) and every loss, on random feedforward and
  recurrent networks with several spikes per neuron and a refractory period;
* the closed-form derivatives of the first spike time for tau_m = 2 tau_s
  (Göltz et al.), and the shift identity sum_i dt*/dt_i = 1.

Finite differences are only meaningful where the loss is smooth. A step that
creates or deletes a spike (the spike count of some neuron changes), or that
moves the maximum of a readout's voltage to another local maximum (its time
jumps), is detected and that coordinate is skipped; the tests assert that
only a few coordinates are skipped, so the check cannot pass vacuously. The
finite-difference helpers and the random networks live in neurodelay.gradcheck,
the cases in tests/gradient_cases.py. Finite differences of steps of 1e-8 s
need an exact forward pass, so these run on the exact engines only.
"""

import numpy as np
import pytest

from neurodelay import losses
from neurodelay.delays import Delays
from neurodelay.gradients import get_param, loss_and_grad
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.record import AdjointSources
from neurodelay.spikes import SpikeTrains

from gradient_cases import (DURATION, LOSSES, NETWORKS, READOUT_LOSSES, _assert_close, _finite_differences, _keys,
                            _random_network)


def test_random_networks_have_the_intended_activity(engine):
    """Guard for the parametrised checks: several spikes per hidden neuron, TTFS outputs
    both firing (gradients through spike times) and silent (the missing-spike rule)."""
    for seed, recurrent in NETWORKS.values():
        net, inputs, _ = _random_network(seed, recurrent)
        record = engine.simulate(net, inputs, DURATION)
        assert record.spikes("hid").counts().max() >= 3
        ttfs = record.spikes("ttfs").counts()
        assert (ttfs > 0).any() and (ttfs == 0).any()


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_gradients_match_finite_differences(engine, network, loss_name):
    seed, recurrent = NETWORKS[network]
    net, inputs, labels = _random_network(seed, recurrent)
    loss = LOSSES[loss_name]()
    keys = _keys(net)
    engine.require(net)
    value, grads, record = loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine=engine.engine)
    assert np.isfinite(value)
    assert value == pytest.approx(np.mean(loss.value(engine.simulate(net, inputs, DURATION), labels)), rel=1e-14)
    for key in keys:
        assert grads[key].shape == get_param(net, key).shape, key
        _assert_close(grads[key], _finite_differences(net, inputs, loss, labels, key, engine=engine.engine), key)


def test_gradients_are_not_trivially_zero(engine):
    """The FD comparison above is relative; make sure the compared gradients are substantial."""
    net, inputs, labels = _random_network(*NETWORKS["recurrent"])
    keys = _keys(net)
    engine.require(net)
    for loss_name, make in LOSSES.items():
        grads = loss_and_grad(net, inputs, DURATION, make(), labels, keys, engine=engine.engine).grads
        nonzero = [key for key in keys if np.any(np.abs(grads[key]) > 1e-6)]
        unread = {"ttfs", "hid->ttfs"} if loss_name in READOUT_LOSSES else set()
        unread |= {"out", "hid->out"} if loss_name.startswith("first_spike") else set()
        relevant = [k for k in keys if k[0] not in unread]
        assert set(relevant) <= set(nonzero), f"{loss_name}: zero gradients for {set(relevant) - set(nonzero)}"


# ---------------------------------------------------- closed forms (tau_m = 2 tau_s)
def _closed_form_first_spike(weights, arrivals, tau_s, theta):
    """Göltz et al.: t*, dt*/dw_i and dt*/dt_i (zero for inputs after t*) for tau_m = 2 tau_s."""
    tau_m = 2 * tau_s
    order = np.argsort(arrivals)
    for k in range(1, len(order) + 1):
        causal = order[:k]
        w, t = weights[causal], arrivals[causal]
        a1, a2 = np.sum(w * np.exp(t / tau_s)), np.sum(w * np.exp(t / tau_m))
        disc = a2 ** 2 - 4 * a1 * theta
        if disc < 0 or a1 <= 0:
            continue
        d = np.sqrt(disc)
        t_star = tau_m * np.log(2 * a1 / (a2 + d))
        upper = arrivals[order[k]] if k < len(order) else np.inf
        if not arrivals[causal].max() <= t_star < upper:
            continue
        common = 1 + theta / d * np.exp(t_star / tau_m)
        dw, dt = np.zeros(len(weights)), np.zeros(len(weights))
        dw[causal] = tau_m * (common * np.exp(t / tau_s) / a1 - np.exp(t / tau_m) / d)
        dt[causal] = w * (common * tau_m / tau_s * np.exp(t / tau_s) / a1 - np.exp(t / tau_m) / d)
        return t_star, dw, dt
    return np.inf, None, None


@pytest.mark.parametrize("seed", range(6))
def test_first_spike_derivatives_match_closed_form(engine, seed):
    rng = np.random.default_rng(100 + seed)
    n_in, tau_s, theta = 8, 5e-3, 1.0
    weights = rng.uniform(-0.5, 2.5, n_in)
    delays = rng.uniform(0, 4e-3, n_in)
    t_in = rng.uniform(0, 6e-3, n_in)
    dendritic = 1e-3
    net = (Network().add(SpikeSource("inp", n_in), LIF("out", 1, tau_m=2 * tau_s, tau_s=tau_s, theta=theta,
                                                       refractory=1.0))
           .connect("inp", "out", weights, delays=Delays(synaptic=delays, dendritic=[dendritic])))
    t_star, dw, dt = _closed_form_first_spike(weights, t_in + delays + dendritic, tau_s, theta)
    if not np.isfinite(t_star):
        pytest.skip("this draw does not fire")  # guarded by test_closed_form_draws_fire
    record = engine.simulate(net, SpikeTrains.from_lists([[[t] for t in t_in]]), 0.1)
    assert record.time[0] == pytest.approx(t_star, rel=1e-12)
    # loss = t* (source 1 on the first spike): the gradients are dt*/dparam
    result = engine.engine.adjoint(record, AdjointSources(spike_time=np.eye(1, len(record.time))[0]))
    order = record.flat.out_syn                       # flat order -> synapse number
    grad_w, grad_d = np.empty(n_in), np.empty(n_in)
    grad_w[order], grad_d[order] = result.weight, result.delay
    np.testing.assert_allclose(grad_w, dw, rtol=1e-9, atol=1e-9 * np.abs(dw).max())
    np.testing.assert_allclose(grad_d, dt, rtol=1e-9, atol=1e-9 * np.abs(dt).max())
    input_order = np.argsort(record.inputs.neuron, kind="stable")
    np.testing.assert_allclose(result.input_time[input_order], dt, rtol=1e-9, atol=1e-9 * np.abs(dt).max())
    assert dt.sum() == pytest.approx(1.0, abs=1e-12)         # the closed form's shift identity ...
    assert grad_d.sum() == pytest.approx(1.0, abs=1e-12)     # ... holds for the adjoint
    # one output neuron: dL/d(dendritic delay) = sum_i dt*/dt_i = 1
    grads = loss_and_grad(net, SpikeTrains.from_lists([[[t] for t in t_in]]), 0.1,
                          _FirstSpikeTime("out"), None, [("inp->out", "dendritic")], engine=engine.engine).grads
    assert grads[("inp->out", "dendritic")][0] == pytest.approx(1.0, abs=1e-12)


def test_closed_form_draws_fire():
    fired = 0
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        weights, delays, t_in = rng.uniform(-0.5, 2.5, 8), rng.uniform(0, 4e-3, 8), rng.uniform(0, 6e-3, 8)
        fired += np.isfinite(_closed_form_first_spike(weights, t_in + delays + 1e-3, 5e-3, 1.0)[0])
    assert fired >= 4


class _FirstSpikeTime(losses.Loss):
    """Test loss: the first spike time (s) of neuron 0 of a population."""

    def __init__(self, population):
        self.population = population

    def value_and_sources(self, record, labels=None):
        times, index = losses.first_spikes(record, self.population)
        source = np.zeros(len(record.time))
        source[index[:, 0]] = 1.0
        return times[:, 0], AdjointSources(spike_time=source)
