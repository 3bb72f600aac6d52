"""PSP-normalised weights for trained time constants (SpikingClassifier(psp_normalised=True)): the chain
rule against finite differences, and PSP heights kept when a time constant changes."""

import numpy as np
import pytest

from neurodelay import losses
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains
from neurodelay.train import SpikingClassifier
from neurodelay.train.init import psp_peak

DURATION = 0.06


def _model(normalised=True):
    rng = np.random.default_rng(4)
    net = (Network().add(SpikeSource("inp", 4), LIF("hid", 3, tau_m=[20e-3, 15e-3, 25e-3], tau_s=[5e-3, 8e-3, 3e-3]),
                         Readout("out", 2, tau_m=[10e-3, 12e-3], tau_s=[4e-3, 6e-3]))
           .connect("inp", "hid", rng.uniform(1.0, 4.0, 12)).connect("hid", "out", rng.normal(0.0, 1.0, 6)))
    keys = [("inp->hid", "weight"), ("hid->out", "weight"), ("hid", "tau_m"), ("hid", "tau_s"), ("out", "tau_s")]
    return SpikingClassifier(net, keys, losses.MaxVoltageCrossEntropy("out"), "out", "max_voltage",
                             psp_normalised=normalised)


def _batch():
    from neurodelay.data.base import TaskData
    rng = np.random.default_rng(1)
    lists = [[list(np.sort(rng.uniform(0, 0.03, 3))) for _ in range(4)] for _ in range(3)]
    return TaskData(SpikeTrains.from_lists(lists), np.array([0, 1, 1]), 2, DURATION, "toy")


def test_values_are_psp_heights_and_kept_when_taus_change():
    model = _model()
    vals = model.values()
    net = model.network
    w = net.projection("inp", "hid").weight
    post = net.projection("inp", "hid").post_idx
    peaks = np.array([psp_peak(a, b) for a, b in zip(net["hid"].tau_m, net["hid"].tau_s)])
    np.testing.assert_allclose(vals[("inp->hid", "weight")], w * peaks[post], rtol=1e-12)
    new = dict(vals)
    new[("hid", "tau_s")] = vals[("hid", "tau_s")] * 2.0
    moved = model.with_values(new)
    np.testing.assert_allclose(moved.values()[("inp->hid", "weight")], vals[("inp->hid", "weight")], rtol=1e-12)
    assert not np.allclose(moved.network.projection("inp", "hid").weight, w)     # raw weights follow
    # a partial update (taus only) keeps the PSP heights too
    only = model.with_values({("hid", "tau_s"): vals[("hid", "tau_s")] * 2.0})
    np.testing.assert_allclose(only.values()[("inp->hid", "weight")], vals[("inp->hid", "weight")], rtol=1e-12)
    # round trip without change
    same = model.with_values(vals)
    np.testing.assert_allclose(same.network.projection("hid", "out").weight, net.projection("hid", "out").weight,
                               rtol=1e-12)


@pytest.mark.parametrize("key", [("inp->hid", "weight"), ("hid", "tau_m"), ("hid", "tau_s"), ("out", "tau_s")])
def test_psp_normalised_gradients_match_finite_differences(key):
    model, batch = _model(), _batch()
    rng = np.random.default_rng(0)
    grad = model.loss_and_grad(batch, rng).grads[key]
    raw = _model(False).loss_and_grad(batch, rng).grads[key]
    vals = model.values()
    h = 1e-6 if key[1] == "weight" else 1e-8
    fd = np.zeros(vals[key].size)
    for i in range(fd.size):
        out = []
        for sign in (1, -1):
            v = dict(vals)
            v[key] = vals[key].copy()
            v[key][i] += sign * h
            out.append(model.with_values(v).loss_and_grad(batch, rng).loss)
        fd[i] = (out[0] - out[1]) / (2 * h)
    scale = np.abs(fd).max()
    assert scale > 1e-6
    np.testing.assert_allclose(grad, fd, atol=1e-5 * scale)
    if key[1] != "weight":
        assert np.abs(grad - raw).max() > 1e-3 * scale          # the chain rule changed the tau gradient


def test_psp_normalised_refuses_shared_keys():
    model = _model()
    with pytest.raises(ValueError, match="per-neuron"):
        SpikingClassifier(model.network, [("hid", "tau_s", "shared")], losses.MaxVoltageCrossEntropy("out"), "out",
                          "max_voltage", psp_normalised=True)


def test_mts_xor_recipe_default_for_time_constants():
    from neurodelay.train import RunConfig, build_model
    assert build_model(RunConfig(task="mts_xor", learn=["weight", "tau_s"])).psp_normalised
    assert build_model(RunConfig(task="mts_xor", learn=["weight", "tau_m", "tau_s"])).psp_normalised
    assert not build_model(RunConfig(task="mts_xor", learn=["weight"])).psp_normalised
    assert not build_model(RunConfig(task="mts_xor", learn=["weight", "tau_s"],
                                     model_options=dict(psp_normalised=False))).psp_normalised


def test_mts_xor_recipe_shares_the_time_constants_second_moment():
    from neurodelay.train import RunConfig, make_optimiser
    opt = make_optimiser(RunConfig(task="mts_xor", learn=["weight", "tau_m", "tau_s"]))
    assert set(opt.shared_moment) == {"tau_m", "tau_s"}
    # shared: a tau whose gradient is 100 x smaller moves 100 x less (per-entry Adam moves both by ~lr)
    g = {("hidden", "tau_s"): np.array([1.0, 0.01]), ("hidden", "weight"): np.array([1.0, 0.01])}
    p = {k: np.zeros(2) for k in g}
    step = opt.step(p, g, 0)
    tau = -step[("hidden", "tau_s")]
    w = -step[("hidden", "weight")]
    assert tau[0] / tau[1] == pytest.approx(100.0, rel=1e-6)
    assert w[0] / w[1] == pytest.approx(1.0, rel=1e-3)
    assert make_optimiser(RunConfig(task="mts_xor", learn=["weight", "tau_s"], shared_moment=[])).shared_moment == ()
