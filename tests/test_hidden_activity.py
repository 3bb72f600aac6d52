"""Keeping hidden layers alive under exact gradients: the silent-neuron penalty (values and exact gradients
against finite differences) and the data-dependent initialisation (rates reached, checked by simulation)."""

import numpy as np
import pytest

from neurodelay import losses
from neurodelay.engines import get_engine
from neurodelay.events.readout import max_voltage
from neurodelay.gradcheck import finite_differences, random_network
from neurodelay.gradients import loss_and_grad
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.spikes import SpikeTrains
from neurodelay.train import calibrate_rates

DURATION = 0.05


def _half_silent():
    # random_network's hidden layer (seed 1: neurons 1 and 3 fire in some trials only) with the input
    # weights of neurons 0 and 4 scaled down: those stay silent in every trial
    net, inputs, _ = random_network(1, False, n_trials=4)
    proj = net.projection("inp", "hid")
    w = np.asarray(proj.weight, float).copy()
    w[np.isin(proj.post_idx, [0, 4])] *= 0.3
    return net.with_projection("inp", "hid", weight=w), inputs


def test_silent_penalty_value_is_theta_minus_peak_of_silent_neurons():
    # two LIF neurons, three inputs: neuron 0 (small weights) stays below threshold in both trials, neuron 1
    # fires in trial 0 only; the penalty counts (theta - max V) of the silent (trial, neuron) pairs, the peak
    # taken on a dense grid of the closed-form PSP sum
    tau_m, tau_s, theta = 20e-3, 5e-3, 1.0
    w = np.array([[0.9, -0.4, 1.1], [5.0, 2.0, 4.0]])          # (neuron, input)
    net = Network().add(SpikeSource("in", 3), LIF("h", 2, tau_m=tau_m, tau_s=tau_s, theta=theta))
    net = net.connect("in", "h", w.T.ravel())                  # all-to-all, post index fastest
    proj = net.projection("in", "h")
    assert np.allclose(np.asarray(proj.weight), w[proj.post_idx, proj.pre_idx])
    times = [[[2e-3], [9e-3], [14e-3]], [[45e-3], [5e-3], [10e-3]]]
    inputs = SpikeTrains.from_lists(times)
    rec = get_engine("auto", net).simulate(net, inputs, DURATION)
    counts = rec.spikes("h").counts()
    assert counts[:, 0].tolist() == [0, 0] and counts[0, 1] > 0 and counts[1, 1] == 0
    t = np.linspace(0, DURATION, 200_001)
    c = tau_s / (tau_m - tau_s)
    expected = np.zeros(2)
    for k in range(2):
        for i in np.flatnonzero(counts[k] == 0):
            v = sum(w[i, j] * np.where(t > t0, c * (np.exp(-(t - t0) / tau_m) - np.exp(-(t - t0) / tau_s)), 0.0)
                    for j in range(3) for t0 in times[k][j])
            expected[k] += 0.7 * (theta - max(v.max(), 0.0))
    value = losses.SilentNeuronPenalty("h", 0.7).value(rec)
    np.testing.assert_allclose(value, expected, atol=1e-7)
    assert np.all(losses.SilentNeuronPenalty("h", 0.0).value(rec) == 0)


@pytest.mark.parametrize("key,scope", [(("inp->hid", "weight"), "trial"), (("inp->hid", "synaptic"), "trial"),
                                       (("hid", "tau_m"), "trial"), (("inp->hid", "weight"), "batch")])
def test_silent_penalty_gradient_matches_finite_differences(key, scope):
    net, inputs = _half_silent()
    loss = losses.SilentNeuronPenalty("hid", 0.7, scope) + losses.MaxVoltageCrossEntropy("out")
    labels = np.array([0, 1, 2, 1])
    grad = loss_and_grad(net, inputs, DURATION, loss, labels, [key]).grads[key].reshape(-1)
    # a spike of the hidden layer that appears or vanishes makes the loss jump: no derivative there
    fd = finite_differences(net, inputs, DURATION, loss, labels, key, step=1e-6,
                            signature=lambda rec: (rec.spikes("hid").counts(), np.zeros(0))).reshape(-1)
    ok = ~np.isnan(fd)
    assert ok.mean() >= 0.9
    # the penalty's part is not negligible: it changes the gradient of the silent neurons' parameters
    alone = loss_and_grad(net, inputs, DURATION, losses.MaxVoltageCrossEntropy("out"), labels, [key]).grads[key]
    assert np.max(np.abs(grad - alone.reshape(-1))) > 1e-2 * np.abs(grad).max()
    scale = max(np.abs(fd[ok]).max(), 1e-12)
    assert np.max(np.abs(grad[ok] - fd[ok])) / scale < 1e-5


def test_silent_penalty_batch_scope_counts_only_neurons_silent_in_every_trial():
    net, inputs = _half_silent()
    rec = get_engine("auto", net).simulate(net, inputs, DURATION)
    counts = rec.spikes("hid").counts()
    dead = (counts == 0).all(axis=0)
    assert dead.any() and ((counts == 0).any(axis=0) & ~dead).any()    # dead and selective neurons both
    vm, _ = max_voltage(rec, "hid", mask=np.broadcast_to(dead, counts.shape))
    expected = 0.3 * np.sum(np.asarray(net["hid"].theta)[dead] - vm[:, dead], axis=1)
    batch = losses.SilentNeuronPenalty("hid", 0.3, scope="batch")
    assert not batch.separable and losses.SilentNeuronPenalty("hid", 0.3).separable
    np.testing.assert_allclose(batch.value(rec), expected, rtol=1e-12)
    # less than the per-trial penalty, which also counts the selective neurons' silent trials
    assert np.sum(batch.value(rec)) < np.sum(losses.SilentNeuronPenalty("hid", 0.3).value(rec))


def test_silent_penalty_checks():
    with pytest.raises(ValueError, match="strength"):
        losses.SilentNeuronPenalty("hid", -1.0)
    with pytest.raises(ValueError, match="scope"):
        losses.SilentNeuronPenalty("hid", 1.0, scope="epoch")
    net, inputs = _half_silent()
    rec = get_engine("auto", net).simulate(net, inputs, DURATION)
    with pytest.raises(ValueError, match="LIF"):
        losses.SilentNeuronPenalty("out").value(rec)


def test_calibrate_rates_reaches_the_target_rate_layer_by_layer():
    rng = np.random.default_rng(0)
    n_in, n_h, n_trials, duration = 20, 8, 40, 0.2
    net = Network().add(SpikeSource("in", n_in), LIF("h1", n_h, tau_m=0.02, tau_s=0.005),
                        LIF("h2", n_h, tau_m=0.05, tau_s=0.005))
    # zero-mean weights: at the start most neurons are silent
    net = net.connect("in", "h1", rng.normal(0, 0.3, n_in * n_h)).connect("h1", "h2", rng.normal(-0.5, 0.3, n_h * n_h))
    lists = [[np.sort(rng.uniform(0, duration, rng.poisson(4))) for _ in range(n_in)] for _ in range(n_trials)]
    inputs = SpikeTrains.from_lists(lists)
    engine = get_engine("auto", net)
    before = engine.simulate(net, inputs, duration)
    assert before.spikes("h2").counts().sum() == 0
    calibrated, shifts = calibrate_rates(net, ["h1", "h2"], inputs, duration, 40.0)
    rec = engine.simulate(calibrated, inputs, duration)
    for name in ("h1", "h2"):
        rate = rec.spikes(name).counts().mean(axis=0) / duration
        # one spike more or less over the 40 trials is 0.025 spikes per trial (0.125 Hz); the bisection
        # ends within a few of that
        assert np.all(np.abs(rate - 40.0) < 2.0), (name, rate)
        # only a shift per target neuron: w - w0 is constant over each neuron's inputs
        proj = next(p for p in net.projections if p.post == name)
        d = np.asarray(calibrated.projection(proj.pre, name).weight) - np.asarray(proj.weight)
        for i in range(n_h):
            mine = d[np.asarray(proj.post_idx) == i]
            assert np.ptp(mine) < 1e-12 and mine[0] != 0
        assert shifts[name].shape == (n_h,)
    # fraction: each neuron fires at least one spike in half of the trials (20 of 40; a neuron's count
    # of active trials moves in steps of 1/40)
    half, _ = calibrate_rates(net, ["h1", "h2"], inputs, duration, 1.0, fraction=0.5)
    rec = engine.simulate(half, inputs, duration)
    for name in ("h1", "h2"):
        active = np.mean(rec.spikes(name).counts() >= 1, axis=0)
        assert np.all(np.abs(active - 0.5) <= 0.05), (name, active)
    with pytest.raises(ValueError, match="rate"):
        calibrate_rates(net, ["h1"], inputs, duration, 0.0)
    with pytest.raises(ValueError, match="fraction"):
        calibrate_rates(net, ["h1"], inputs, duration, 1.0, fraction=1.0)
    with pytest.raises(ValueError, match="receives no projection"):
        calibrate_rates(net, ["in"], inputs, duration, 10.0)
