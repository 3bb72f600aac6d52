"""Per-window readout loss (Moro et al.'s per-segment MTS-XOR): window maxima, exact gradients against
finite differences, the per-window classifier, and the optimiser options for time constants."""

import numpy as np
import pytest

from neurodelay import losses
from neurodelay.engines import get_engine
from neurodelay.events.readout import max_voltage, window_max_voltage
from neurodelay.gradcheck import finite_differences, random_network
from neurodelay.gradients import loss_and_grad
from neurodelay.network import Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains
from neurodelay.train import Adam, Schedule

DURATION = 0.05
WINDOWS = [(0.0, 0.012), (0.01, 0.03), (0.03, 0.05)]


def _net():
    net, inputs, _ = random_network(3, False, n_trials=3)
    labels = np.random.default_rng(0).integers(0, 3, (3, len(WINDOWS)))
    return net, inputs, labels


def test_window_maxima_match_a_dense_trajectory():
    # one readout, known arrivals: V(t) = sum_k w_k k(t - t_k), k the double exponential
    tau_m, tau_s = 20e-3, 5e-3
    times, weights = np.array([2e-3, 9e-3, 21e-3, 33e-3]), np.array([1.0, -0.7, 1.3, 0.4])
    net = Network().add(SpikeSource("in", 4), Readout("ro", 1, tau_m=tau_m, tau_s=tau_s))
    net = net.connect("in", "ro", weights)
    inputs = SpikeTrains.from_lists([[[t] for t in times]])
    rec = get_engine("auto", net).simulate(net, inputs, DURATION)
    t = np.linspace(0, DURATION, 200_001)
    s = t[:, None] - times[None, :]
    kern = np.where(s > 0, tau_s / (tau_m - tau_s) * (np.exp(-s / tau_m) - np.exp(-s / tau_s)), 0.0)
    v = kern @ weights
    v_max, t_max = window_max_voltage(rec, "ro", WINDOWS)
    for k, (a, b) in enumerate(WINDOWS):
        inside = (t >= a) & (t <= b)
        assert v_max[0, 0, k] == pytest.approx(v[inside].max(), abs=1e-8)
        assert abs(t_max[0, 0, k] - t[inside][np.argmax(v[inside])]) < 2e-6
    # one window over the whole trial is the global maximum
    whole = window_max_voltage(rec, "ro", [(0.0, DURATION)])
    np.testing.assert_array_equal(whole[0][..., 0], max_voltage(rec, "ro")[0])


def test_window_maxima_count_bias_and_initial_state():
    # V = b + (v0 - b) e^{-t/tau_m} + i0 k(t) + sum_k w_k k(t - t_k) (closed form, dense grid); the bias
    # and the state at t = 0 used to be ignored by the window maxima (but not by the adjoint)
    tau_m, tau_s, b, v0, i0 = 20e-3, 5e-3, 0.8, -0.3, 0.6
    times, weights = np.array([9e-3, 21e-3, 33e-3]), np.array([-1.5, 1.3, 0.4])
    net = Network().add(SpikeSource("in", 3), Readout("ro", 1, tau_m=tau_m, tau_s=tau_s, bias=b, v_init=v0,
                                                      i_init=i0)).connect("in", "ro", weights)
    rec = get_engine("auto", net).simulate(net, SpikeTrains.from_lists([[[t] for t in times]]), DURATION)
    t = np.linspace(0, DURATION, 200_001)
    c = tau_s / (tau_m - tau_s)
    s = t[:, None] - times[None, :]
    kern = np.where(s > 0, c * (np.exp(-s / tau_m) - np.exp(-s / tau_s)), 0.0)
    v = b + (v0 - b) * np.exp(-t / tau_m) + i0 * c * (np.exp(-t / tau_m) - np.exp(-t / tau_s)) + kern @ weights
    v_max, t_max = window_max_voltage(rec, "ro", WINDOWS)
    for k, (lo, hi) in enumerate(WINDOWS):
        inside = (t >= lo) & (t <= hi)
        assert v_max[0, 0, k] == pytest.approx(v[inside].max(), abs=1e-8)
        assert abs(t_max[0, 0, k] - t[inside][np.argmax(v[inside])]) < 2e-6
    np.testing.assert_allclose(window_max_voltage(rec, "ro", [(0.0, DURATION)])[0][..., 0],
                               max_voltage(rec, "ro")[0], rtol=1e-12)


def test_windowed_loss_bias_gradient_matches_finite_differences():
    net, inputs, labels = _net()
    net = net.with_population("out", bias=np.array([0.3, -0.2, 0.1]))
    loss = losses.WindowedMaxVoltageCrossEntropy("out", WINDOWS)
    key = ("out", "bias")
    grad = loss_and_grad(net, inputs, DURATION, loss, labels, [key]).grads[key]
    assert np.abs(grad).max() > 1e-3
    engine, h = get_engine("auto", net), 1e-6
    for j in range(3):
        vals = []
        for sign in (1, -1):
            bias = np.array([0.3, -0.2, 0.1])
            bias[j] += sign * h
            rec = engine.simulate(net.with_population("out", bias=bias), inputs, DURATION)
            vals.append(np.mean(loss.value(rec, labels)))       # loss_and_grad: mean over trials
        assert grad[j] == pytest.approx((vals[0] - vals[1]) / (2 * h), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("key", [("inp->hid", "weight"), ("hid->out", "weight"), ("hid->out", "synaptic"),
                                 ("inp->hid", "synaptic"), ("out", "tau_m"), ("out", "tau_s"), ("hid", "tau_m")])
def test_windowed_loss_gradient_matches_finite_differences(key):
    net, inputs, labels = _net()
    loss = losses.WindowedMaxVoltageCrossEntropy("out", WINDOWS)
    grad = loss_and_grad(net, inputs, DURATION, loss, labels, [key]).grads[key].reshape(-1)
    # same spike counts and the same times of the windows' maxima (loss.scores) on both sides of a step
    fd = finite_differences(net, inputs, DURATION, loss, labels, key,
                            signature=lambda rec: (np.bincount(rec.neuron, minlength=rec.flat.n_neurons),
                                                   loss.scores(rec)[1])).reshape(-1)
    ok = ~np.isnan(fd)
    assert ok.mean() >= 0.9
    scale = max(np.abs(fd[ok]).max(), 1e-12)
    assert np.max(np.abs(grad[ok] - fd[ok])) / scale < 1e-5


def test_windowed_loss_values_and_label_checks():
    net, inputs, labels = _net()
    rec = get_engine("auto", net).simulate(net, inputs, DURATION)
    loss = losses.WindowedMaxVoltageCrossEntropy("out", WINDOWS)
    v, _ = window_max_voltage(rec, "out", WINDOWS)                 # (trial, neuron, window)
    manual = np.zeros(3)
    for k in range(len(WINDOWS)):
        s = v[:, :, k]
        manual += (np.log(np.exp(s).sum(axis=1)) - s[np.arange(3), labels[:, k]]) / len(WINDOWS)
    np.testing.assert_allclose(loss.value(rec, labels), manual, rtol=1e-12)
    # one window over the trial is MaxVoltageCrossEntropy
    one = losses.WindowedMaxVoltageCrossEntropy("out", [(0.0, DURATION)])
    np.testing.assert_allclose(one.value(rec, labels[:, 0]),
                               losses.MaxVoltageCrossEntropy("out").value(rec, labels[:, 0]), rtol=1e-12)
    with pytest.raises(ValueError, match="labels"):
        loss.value(rec, labels[:, :2])
    with pytest.raises(ValueError, match="windows"):
        losses.WindowedMaxVoltageCrossEntropy("out", [(0.02, 0.01)])
    with pytest.raises(ValueError, match="windows"):
        window_max_voltage(rec, "out", [(0.0, 2 * DURATION)])


def test_segment_classifier_counts_every_window():
    from neurodelay.data import mts_xor_moro
    from neurodelay.train import SpikingClassifier
    from neurodelay.analysis.hierarchy import hierarchy_network
    data = mts_xor_moro(16, seed=0)
    net, names = hierarchy_network([0.1], n_inputs=40, hidden=4, seed=0)
    w = data.meta["active_windows"]
    model = SpikingClassifier(net, [("h1->output", "weight")], losses.WindowedMaxVoltageCrossEntropy("output", w),
                              "output", "window_max_voltage", windows=w, label_key="segment_labels")
    ev = model.evaluate(data)
    assert ev.predictions.shape == (16, 6)
    np.testing.assert_allclose(ev.accuracy, np.mean(ev.predictions == data.trial_meta["segment_labels"]))
    np.testing.assert_allclose(ev.extra["window_accuracy"].mean(), ev.accuracy)
    res = model.loss_and_grad(data.select(np.arange(8)), np.random.default_rng(0))
    assert res.n_trials == 8 * 6 and 0 <= res.n_correct <= 48
    with pytest.raises(ValueError, match="windows"):
        SpikingClassifier(net, [("h1->output", "weight")], losses.MaxVoltageCrossEntropy("output"), "output",
                          "window_max_voltage")


def test_shared_second_moment_and_warmup():
    g = {("a", "tau_s"): np.array([1.0, 0.01]), ("b", "weight"): np.array([1.0, 0.01])}
    p = {k: np.zeros(2) for k in g}
    plain = Adam(lr=0.1, eps=1e-30).step(p, g, 0)
    shared = Adam(lr=0.1, eps=1e-30, shared_moment=("tau_s",)).step(p, g, 0)
    # per-entry Adam: both entries move by lr whatever their gradient
    np.testing.assert_allclose(np.abs(plain[("a", "tau_s")]), 0.1)
    # shared: steps proportional to the gradient, RMS over the key = lr
    step = -shared[("a", "tau_s")]
    np.testing.assert_allclose(step[1] / step[0], 0.01)
    np.testing.assert_allclose(np.sqrt(np.mean(step ** 2)), 0.1)
    np.testing.assert_allclose(shared[("b", "weight")], plain[("b", "weight")])
    s = Schedule("cosine", epochs=10, floor=0.1, warmup=3)
    assert [s.factor(e) for e in range(3)] == [0.0, 0.0, 0.0]
    assert s.factor(3) == 1.0 and s.factor(13) == pytest.approx(0.1)
    assert Schedule.from_dict(s.to_dict()) == s
    again = Adam.from_config(Adam(shared_moment=("tau_m",)).config())
    assert again.shared_moment == ("tau_m",)
    with pytest.raises(ValueError, match="warmup"):
        Schedule(warmup=-1)


def test_recipe_shares_readout_time_constants():
    from neurodelay.train import RunConfig, build_model, make_optimiser
    cfg = RunConfig(task="mts_xor", learn=["weight", "tau_s"], shared_moment=["tau_s"],
                    model_options=dict(shared_tau_populations=["output"]))
    model = build_model(cfg)
    assert ("output", "tau_s", "shared") in model.keys and ("hidden", "tau_s") in model.keys
    assert np.shape(model.values()[("output", "tau_s", "shared")]) == ()
    assert make_optimiser(cfg).shared_moment == ("tau_s",)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="shared_tau_populations"):
        build_model(RunConfig(task="mts_xor", learn=["weight", "tau_s"],
                              model_options=dict(shared_tau_populations=["input"])))
