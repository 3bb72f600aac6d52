"""Every engine against closed forms with a constant bias current and a nonzero initial state
(the ``engine`` fixture: conftest.py). Model: tau_m dV/dt = -V + I + bias, tau_s dI/dt = -I."""

import numpy as np
import pytest
from scipy.optimize import brentq

from neurodelay.delays import Delays
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains


def _silent(n_trials=1):
    return SpikeTrains.from_lists([[[]] for _ in range(n_trials)])


@pytest.mark.all_engines
@pytest.mark.parametrize("bias, reset, refractory", [(1.5, 0.0, 0.0), (1.05, 0.0, 0.0), (3.0, -0.4, 2e-3)])
def test_tonic_firing_period(engine, bias, reset, refractory):
    """From rest with bias > theta and no input: t_1 = tau_m ln(b/(b - theta)), then every
    t_ref + tau_m ln((b - reset)/(b - theta))."""
    tau_m, theta = 20e-3, 1.0
    net = Network().add(SpikeSource("inp", 1),
                        LIF("hid", 1, tau_m=tau_m, tau_s=5e-3, theta=theta, reset=reset, refractory=refractory,
                            bias=bias))
    rec = engine.simulate(net, _silent(), 0.3)
    t = rec.spikes("hid").time
    first = tau_m * np.log(bias / (bias - theta))
    period = refractory + tau_m * np.log((bias - reset) / (bias - theta))
    expected = first + period * np.arange(int((0.3 - first) // period) + 1)
    assert len(t) == len(expected) >= 3
    np.testing.assert_allclose(t, expected, rtol=0, atol=max(engine.time_tolerance, 1e-12))


@pytest.mark.all_engines
@pytest.mark.parametrize("tau_m, tau_s", [(20e-3, 5e-3), (5e-3, 8e-3)])
def test_free_evolution_from_the_initial_state(engine, tau_m, tau_s):
    """A readout and a silent LIF neuron from (v_init, i_init) with a bias, no input:
    V(t) = b + (v0 - b) e^{-t/tau_m} + i0 K (e^{-t/tau_m} - e^{-t/tau_s}), K = tau_s/(tau_m - tau_s)."""
    v0, i0, b = np.array([0.3, -0.2]), np.array([-0.5, 0.8]), np.array([0.25, -0.1])
    net = Network().add(SpikeSource("inp", 1),
                        Readout("ro", 2, tau_m=tau_m, tau_s=tau_s, bias=b, v_init=v0, i_init=i0),
                        LIF("hid", 2, tau_m=tau_m, tau_s=tau_s, theta=5.0, bias=b, v_init=v0, i_init=i0))
    dt = 1e-4
    times = dt * np.array([1, 7, 30, 123, 400])
    rec = engine.simulate(net, _silent(), 0.05, record=["ro", "hid"], sample_times=times)
    K = tau_s / (tau_m - tau_s)
    t = times[:, None]
    expected = b + (v0 - b) * np.exp(-t / tau_m) + i0 * K * (np.exp(-t / tau_m) - np.exp(-t / tau_s))
    for pop in ("ro", "hid"):
        np.testing.assert_allclose(rec.voltages(pop)[0], expected, rtol=0, atol=1e-12)


@pytest.mark.all_engines
@pytest.mark.parametrize("v0, i0, bias", [(0.5, 4.0, 0.0), (-0.3, 6.0, 0.2), (0.9, -1.0, 1.3), (-0.5, -2.0, 1.6)])
def test_first_crossing_from_the_initial_state(engine, v0, i0, bias):
    """The first spike without input, from (v0, i0) with a bias, against brentq on the closed form
    (cases: a rise to a maximum, a dip to a minimum before a tonic crossing)."""
    tau_m, tau_s, theta = 12e-3, 4e-3, 1.0
    net = Network().add(SpikeSource("inp", 1), LIF("hid", 1, tau_m=tau_m, tau_s=tau_s, theta=theta, bias=bias,
                                                   v_init=v0, i_init=i0))
    K = tau_s / (tau_m - tau_s)

    def f(t):
        return bias + (v0 - bias) * np.exp(-t / tau_m) + i0 * K * (np.exp(-t / tau_m) - np.exp(-t / tau_s)) - theta

    grid = np.linspace(0, 0.2, 400001)
    above = np.flatnonzero(f(grid) > 0)
    assert len(above), "the case must fire"
    k = above[0]
    expected = brentq(f, grid[k - 1], grid[k], xtol=1e-16, rtol=8.9e-16)
    got = engine.simulate(net, _silent(), 0.2).first_spike_times("hid")[0, 0]
    assert abs(got - expected) < max(engine.time_tolerance, 1e-12), (got, expected)


@pytest.mark.all_engines
def test_bias_and_initial_state_shift_a_driven_neuron_exactly(engine):
    """With input, u = V - b is the bias-free neuron with threshold theta - b: a network with bias b
    and v_init = b (so u(0) = 0) spikes where the bias-free network with theta - b, reset - b does."""
    rng = np.random.default_rng(5)
    n_in = 6
    w, d = rng.uniform(0.2, 1.0, n_in), rng.uniform(0, 3e-3, n_in)
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.04, 4)) for _ in range(n_in)] for _ in range(2)])

    def net(theta, reset, bias):
        return (Network().add(SpikeSource("inp", n_in),
                              LIF("hid", 1, tau_m=15e-3, tau_s=4e-3, theta=theta, reset=reset, refractory=1e-3,
                                  bias=bias, v_init=bias))
                .connect("inp", "hid", w, delays=Delays(synaptic=d)))

    b = 0.3
    biased = engine.simulate(net(1.0, 0.0, b), inputs, 0.06).spikes("hid")
    shifted = engine.simulate(net(1.0 - b, -b, 0.0), inputs, 0.06).spikes("hid")
    assert len(biased.time) >= 4
    np.testing.assert_array_equal(biased.counts(), shifted.counts())
    np.testing.assert_allclose(biased.time, shifted.time, rtol=0, atol=max(engine.time_tolerance, 1e-12))


def test_state_gradients_match_finite_differences(engine):
    """dL/dbias, dL/dv_init, dL/di_init on this engine (its forward pass and its adjoint) against
    central finite differences of the same engine, on gradcheck's feedforward network with biases
    (some tonic) and initial states."""
    from gradient_cases import DURATION, _assert_close

    from neurodelay import losses
    from neurodelay.gradcheck import finite_differences, random_network
    from neurodelay.gradients import loss_and_grad

    net, inputs, labels = random_network(3, False)
    rng = np.random.default_rng(7)
    for pop, n, top in (("hid", 6, 1.3), ("ttfs", 3, 0.5)):
        net = net.with_population(pop, bias=rng.uniform(-0.3, top, n), v_init=rng.uniform(-0.5, 0.5, n),
                                  i_init=rng.uniform(-1.0, 1.0, n))
    engine.require(net)
    loss = losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3)
    keys = [(pop, kind) for pop in ("hid", "ttfs") for kind in ("bias", "v_init", "i_init")]
    grads = loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine=engine.engine).grads
    for key in keys:
        fd = finite_differences(net, inputs, DURATION, loss, labels, key, engine=engine.engine)
        assert np.max(np.abs(fd[~np.isnan(fd)]), initial=0.0) > 1e-3, key
        _assert_close(grads[key], fd, key)
