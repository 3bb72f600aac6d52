"""Every engine against closed-form solutions of the LIF model (the ``engine`` fixture: conftest.py)."""

import numpy as np
import pytest
from scipy.optimize import brentq

from neurodelay.delays import Delays
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains


def _one_input_net(tau_m, tau_s, weight, delay, readout=True):
    pop = Readout("post", 1, tau_m=tau_m, tau_s=tau_s) if readout else LIF(
        "post", 1, tau_m=tau_m, tau_s=tau_s, theta=1e9)
    return (Network().add(SpikeSource("inp", 1), pop)
            .connect("inp", "post", weight=weight, delays=Delays(synaptic=[delay])))


@pytest.mark.parametrize("tau_m, tau_s", [(20e-3, 5e-3), (10e-3, 5e-3), (5e-3, 8e-3)])
def test_single_psp_maximum(engine, tau_m, tau_s):
    w, t_in, d = 0.7, 1.3e-3, 2.1e-3
    net = _one_input_net(tau_m, tau_s, w, d)
    # independent closed form: t_peak = ln(tau_m/tau_s) tau_m tau_s / (tau_m - tau_s)
    t_peak = np.log(tau_m / tau_s) * tau_m * tau_s / (tau_m - tau_s)
    r = tau_s / tau_m
    v_peak = w * tau_s / (tau_m - tau_s) * (r ** (tau_s / (tau_m - tau_s)) - r ** (tau_m / (tau_m - tau_s)))
    t_arr = t_in + d
    times = t_arr + t_peak + np.array([-1e-5, 0.0, 1e-5])
    rec = engine.simulate(net, SpikeTrains.from_lists([[[t_in]]]), 0.2, record="post", sample_times=times)
    v = rec.voltages("post")[0, :, 0]
    assert abs(v[1] - v_peak) < 1e-12
    assert v[0] < v[1] and v[2] < v[1]
    # the trajectory itself at an arbitrary time
    s = 7.3e-3
    expected = w * tau_s / (tau_m - tau_s) * (np.exp(-s / tau_m) - np.exp(-s / tau_s))
    rec = engine.simulate(net, SpikeTrains.from_lists([[[t_in]]]), 0.2, record="post", sample_times=[t_arr + s])
    assert abs(rec.voltages("post")[0, 0, 0] - expected) < 1e-13


def _reference_first_spike_closed(weights, arrivals, tau_s, theta):
    """Göltz et al.: t* for tau_m = 2 tau_s, taking the first causal prefix of sorted arrivals."""
    tau_m = 2 * tau_s
    order = np.argsort(arrivals)
    w, t = np.asarray(weights)[order], np.asarray(arrivals)[order]
    for k in range(1, len(t) + 1):
        a1 = np.sum(w[:k] * np.exp(t[:k] / tau_s))
        a2 = np.sum(w[:k] * np.exp(t[:k] / tau_m))
        disc = a2 ** 2 - 4 * a1 * theta
        if disc < 0 or a1 <= 0:
            continue
        t_star = tau_m * np.log(2 * a1 / (a2 + np.sqrt(disc)))
        upper = t[k] if k < len(t) else np.inf
        if t[k - 1] <= t_star < upper:
            return t_star
    return np.inf


def _fan_in_net(n_in, tau_m, tau_s, theta, weights, delays):
    return (Network().add(SpikeSource("inp", n_in),
                          LIF("out", 1, tau_m=tau_m, tau_s=tau_s, theta=theta, refractory=1.0))
            .connect("inp", "out", weight=weights, delays=Delays(synaptic=delays)))


def _random_fan_in(seed, n_in=8):
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 2.5, n_in), rng.uniform(0, 4e-3, n_in), rng.uniform(0, 6e-3, n_in)


@pytest.mark.all_engines
@pytest.mark.parametrize("seed", range(8))
def test_first_spike_time_closed_form(engine, seed):
    n_in, tau_s, theta = 8, 5e-3, 1.0
    weights, delays, t_in = _random_fan_in(seed, n_in)
    net = _fan_in_net(n_in, 2 * tau_s, tau_s, theta, weights, delays)
    rec = engine.simulate(net, SpikeTrains.from_lists([[[t] for t in t_in]]), 0.1)
    expected = _reference_first_spike_closed(weights, t_in + delays, tau_s, theta)
    got = rec.first_spike_times("out")[0, 0]
    if np.isinf(expected):
        assert np.isinf(got)
    else:
        assert abs(got - expected) < engine.time_tolerance, (got, expected)


def test_closed_form_cases_include_spikes():
    """Guard: the parametrised cases above are not all silent."""
    hits = 0
    for seed in range(8):
        weights, delays, t_in = _random_fan_in(seed)
        hits += np.isfinite(_reference_first_spike_closed(weights, t_in + delays, 5e-3, 1.0))
    assert hits >= 4


@pytest.mark.parametrize("tau_m, tau_s", [(20e-3, 5e-3), (7e-3, 5e-3), (4e-3, 6e-3)])
def test_first_spike_time_general_tau_against_brentq(engine, tau_m, tau_s):
    rng = np.random.default_rng(11)
    n_in, theta = 10, 1.0
    weights = rng.uniform(0.1, 1.0, n_in)
    arrivals = np.sort(rng.uniform(0, 5e-3, n_in))
    K = tau_s / (tau_m - tau_s)
    grid = np.linspace(0, 0.1, 200001)

    def v_free(t):
        s = t - arrivals
        m = s > 0
        return np.sum(weights[m] * K * (np.exp(-s[m] / tau_m) - np.exp(-s[m] / tau_s)))

    weights *= 1.5 * theta / max(v_free(t) for t in grid[::100])  # peak at ~1.5 theta: a clean crossing

    def v(t):
        return v_free(t) - theta

    net = _fan_in_net(n_in, tau_m, tau_s, theta, weights, np.zeros(n_in))
    got = engine.simulate(net, SpikeTrains.from_lists([[[t] for t in arrivals]]), 0.1).first_spike_times("out")[0, 0]
    above = np.flatnonzero([v(t) > 0 for t in grid])
    assert len(above), "test network must spike"
    k = above[0]
    expected = brentq(v, grid[k - 1], grid[k], xtol=1e-16, rtol=8.9e-16)
    assert abs(got - expected) < engine.time_tolerance


@pytest.mark.all_engines
def test_refractory_period_is_exact_and_multiple_spikes(engine):
    """Strong constant-ish drive: V resets to 0, stays clamped for t_ref, then rises again."""
    tau_m, tau_s, t_ref, theta = 10e-3, 2.5e-3, 2e-3, 1.0
    net = (Network().add(SpikeSource("inp", 1),
                         LIF("out", 1, tau_m=tau_m, tau_s=tau_s, theta=theta, refractory=t_ref))
           .connect("inp", "out", weight=20.0))
    rec = engine.simulate(net, SpikeTrains.from_lists([[[0.0]]]), 0.05)
    t = rec.spikes("out").time
    assert len(t) >= 2
    # independent: after the first spike at t1, V restarts from 0 at t1 + t_ref with
    # I = 20 exp(-(t1 + t_ref)/tau_s); the next crossing solves that free evolution
    t1 = t[0]
    i0 = 20.0 * np.exp(-(t1 + t_ref) / tau_s)
    K = tau_s / (tau_m - tau_s)

    def v(s):
        return i0 * K * (np.exp(-s / tau_m) - np.exp(-s / tau_s)) - theta

    s_peak = np.log(tau_m / tau_s) * tau_m * tau_s / (tau_m - tau_s)
    expected = t1 + t_ref + brentq(v, 0.0, s_peak, xtol=1e-16, rtol=8.9e-16)
    assert abs(t[1] - expected) < engine.time_tolerance
