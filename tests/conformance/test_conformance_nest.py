"""Every engine against NEST's precise-spike-timing LIF model (iaf_psc_exp_ps).

NEST integrates the same model on a time grid with off-grid spike times (exact
propagators between events, threshold crossings located by regula falsi until
|V - theta| < 1e-14 mV). Our dimensionless model maps onto NEST's units as:
V, theta, reset in mV with E_L = 0; C_m [pF] = tau_m [ms] so that R = 1 GOhm
and a weight of w pA makes I jump by w mV; tau_syn_ex = tau_syn_in = tau_s
(NEST routes negative weights to the inhibitory synapse); all delays lie on
NEST's grid; refractory periods are whole multiples of the resolution (NEST
requires at least one step).
"""

import os

import numpy as np
import pytest

os.environ.setdefault("PYNEST_QUIET", "1")  # no banner on import
nest = pytest.importorskip("nest")

from neurodelay.delays import Delays  # noqa: E402
from neurodelay.nest import NEST_ROOT_TOLERANCE_MV, simulate_nest  # noqa: E402
from neurodelay.network import LIF, Network, SpikeSource  # noqa: E402
from neurodelay.spikes import SpikeTrains  # noqa: E402

RESOLUTION = 1e-4  # s (0.1 ms)


def _match(net, engine_neuron, engine_time, nest_neuron, nest_time):
    """Per LIF neuron: spike-count mismatches and |t_engine - t_nest| of every matched spike (s)."""
    offsets = net.offsets()
    mismatched, diffs = [], []
    for pop in net.populations:
        if not isinstance(pop, LIF):
            continue
        for j in range(offsets[pop.name], offsets[pop.name] + pop.n):
            a = np.sort(engine_time[engine_neuron == j])
            b = np.sort(nest_time[nest_neuron == j])
            if len(a) != len(b):
                mismatched.append((pop.name, j - offsets[pop.name], len(a), len(b)))
            else:
                diffs.append(np.abs(a - b))
    return mismatched, np.concatenate(diffs) if diffs else np.zeros(0)


def _grid_delays(rng, n_pre, n_post, pre, post, max_steps):
    """Delays on NEST's grid split into all three kinds: k = k_axonal + k_dendritic + k_synaptic steps.

    Returns (Delays, total steps per synapse); every part is a whole number of steps,
    so the float sum differs from the grid value only by rounding (~1e-19 s).
    """
    k_axonal = rng.integers(0, max_steps // 5 + 1, n_pre)
    k_dendritic = rng.integers(0, max_steps // 5 + 1, n_post)
    k_synaptic = rng.integers(0, max_steps - 2 * (max_steps // 5) + 1, len(pre))
    k_synaptic[k_axonal[pre] + k_dendritic[post] + k_synaptic == 0] = 1  # NEST needs >= 1 step
    delays = Delays(axonal=k_axonal * RESOLUTION, dendritic=k_dendritic * RESOLUTION,
                    synaptic=k_synaptic * RESOLUTION)
    return delays, k_axonal[pre] + k_dendritic[post] + k_synaptic


def _poisson_inputs(rng, n, rate, duration):
    """One trial of independent Poisson trains (s), off NEST's grid."""
    counts = rng.poisson(rate * duration, n)
    neuron = np.repeat(np.arange(n), counts)
    time = rng.uniform(0.0, duration, counts.sum())
    return SpikeTrains(np.zeros(len(time), np.int64), neuron, time, 1, n).sorted()


def _two_layer_network(seed):
    rng = np.random.default_rng(seed)
    n_in, n_hid, n_out = 200, 150, 50
    net = Network().add(
        SpikeSource("inp", n_in),
        # heterogeneous tau_m: the general (Newton) crossing
        LIF("hid", n_hid, tau_m=rng.uniform(10e-3, 30e-3, n_hid), tau_s=5e-3, theta=1.0, refractory=2e-3),
        # tau_m = 2 tau_s: the engine's closed-form crossing; nonzero reset
        LIF("out", n_out, tau_m=10e-3, tau_s=5e-3, theta=1.0, reset=-0.2, refractory=1e-3))
    for pre, post, p, w_mean, w_sd in (("inp", "hid", 0.2, 0.25, 0.25), ("hid", "out", 0.3, 0.2, 0.3)):
        n_pre, n_post = net[pre].n, net[post].n
        pre_idx, post_idx = np.nonzero(rng.random((n_pre, n_post)) < p)
        delays, steps = _grid_delays(rng, n_pre, n_post, pre_idx, post_idx, 50)
        assert steps.min() >= 1 and steps.max() <= 50
        net = net.connect(pre, post, weight=rng.normal(w_mean, w_sd, len(pre_idx)),
                          connectivity=(pre_idx, post_idx), delays=delays)
        total = net.projection(pre, post).total_delay()
        assert np.max(np.abs(total - steps * RESOLUTION)) < 1e-18
        assert len(net.projection(pre, post).delays.kinds()) == 3
    inputs = _poisson_inputs(rng, n_in, 20.0, 2.0)
    return net, inputs, 2.0


def test_two_layer_network_matches_nest(engine):
    net, inputs, duration = _two_layer_network(seed=1)
    assert np.any(net.projection("inp", "hid").weight < 0)  # the inhibitory NEST synapse is exercised
    rec = engine.simulate(net, inputs, duration, n_threads=1)
    run = simulate_nest(net, inputs, duration, resolution=RESOLUTION)
    nest_neuron, nest_time = run.neuron, run.time
    mismatched, diffs = _match(net, rec.neuron, rec.time, nest_neuron, nest_time)
    n_hid = np.sum(rec.spikes("hid").counts())
    n_out = np.sum(rec.spikes("out").counts())
    assert n_hid >= 2000 and n_out >= 1000, (n_hid, n_out)  # enough spikes for a 99.9 % criterion
    assert not mismatched, f"(population, neuron, engine count, NEST count): {mismatched[:10]}"
    assert len(diffs) == len(rec.time) == len(nest_time)
    within = np.mean(diffs <= 1e-9)
    assert within >= 0.999, f"{100 * within:.3f} % within 1 ns; max |dt| = {diffs.max():.3g} s"
    print(f"\n{len(diffs)} spikes ({n_hid} hidden, {n_out} output), all matched; "
          f"max |t_engine - t_NEST| = {diffs.max():.3g} s, median {np.median(diffs):.3g} s")


def test_recurrent_network_with_long_delays_matches_nest(engine):
    """Recurrence, and delays up to 200 ms: thousands of spikes in flight at once (the
    engine's fan-out storage has to grow several times during the run)."""
    rng = np.random.default_rng(3)
    n_in, n, duration = 300, 300, 1.0
    net = Network().add(SpikeSource("inp", n_in),
                        LIF("rec", n, tau_m=20e-3, tau_s=5e-3, theta=1.0, refractory=2e-3))
    for pre, p, w_mean, w_sd in (("inp", 0.1, 0.2, 0.2), ("rec", 0.05, 0.0, 0.4)):
        pre_idx, post_idx = np.nonzero(rng.random((net[pre].n, n)) < p)
        delays, _ = _grid_delays(rng, net[pre].n, n, pre_idx, post_idx, 2000)
        net = net.connect(pre, "rec", weight=rng.normal(w_mean, w_sd, len(pre_idx)),
                          connectivity=(pre_idx, post_idx), delays=delays)
    inputs = _poisson_inputs(rng, n_in, 60.0, duration)
    proj = net.projection("inp", "rec")
    last_arrival = np.zeros(n_in)  # a spike is in flight until its last arrival
    np.maximum.at(last_arrival, proj.pre_idx, proj.total_delay())
    assert len(inputs) / duration * last_arrival.mean() > 2048, "input spikes in flight at once, on average"
    rec = engine.simulate(net, inputs, duration, n_threads=1)
    run = simulate_nest(net, inputs, duration, resolution=RESOLUTION)
    nest_neuron, nest_time = run.neuron, run.time
    mismatched, diffs = _match(net, rec.neuron, rec.time, nest_neuron, nest_time)
    assert len(rec.time) >= 2000
    assert not mismatched, f"(population, neuron, engine count, NEST count): {mismatched[:10]}"
    assert np.mean(diffs <= 1e-9) >= 0.999, f"max |dt| = {diffs.max():.3g} s"
    print(f"\n{len(diffs)} spikes, all matched; max |t_engine - t_NEST| = {diffs.max():.3g} s")


def test_single_neuron_matches_nest_to_its_root_tolerance(engine):
    """One neuron, repeated spikes with refractoriness and mixed-sign inputs.

    NEST stops its root search once |V - theta| < 1e-14 mV, so its spike time is off by at
    most 1e-14 mV / (dV/dt) = 1e-14 tau_m / (I - theta); both simulators also round V to
    ~1e-16 relative. The tolerance per spike is that bound (times 2) plus 1e-15 s of
    float rounding in t itself (t ~ 0.1 s, spacing 1.4e-17 s; NEST keeps ms as doubles).
    """
    rng = np.random.default_rng(7)
    n_in, duration, tau_m = 40, 0.2, 15e-3
    lif = LIF("out", 1, tau_m=tau_m, tau_s=4e-3, theta=1.0, reset=-0.3, refractory=3e-3)
    net = Network().add(SpikeSource("inp", n_in), lif)
    delays, _ = _grid_delays(rng, n_in, 1, np.arange(n_in), np.zeros(n_in, np.int64), 30)
    net = net.connect("inp", "out", weight=rng.normal(0.5, 0.6, n_in), delays=delays)
    inputs = _poisson_inputs(rng, n_in, 30.0, duration)
    rec = engine.simulate(net, inputs, duration, n_threads=1)
    run = simulate_nest(net, inputs, duration, resolution=RESOLUTION)
    nest_neuron, nest_time = run.neuron, run.time
    mismatched, diffs = _match(net, rec.neuron, rec.time, nest_neuron, nest_time)
    assert not mismatched, mismatched
    assert len(diffs) >= 10, "the test neuron must spike repeatedly"
    slope = rec.i_minus_theta / tau_m  # dV/dt at each spike, 1/s (mV/s in NEST's units)
    assert np.all(slope > 0)
    tolerance = 2 * (NEST_ROOT_TOLERANCE_MV + 4 * np.finfo(float).eps * lif.theta[0]) / slope + 1e-15
    assert np.all(diffs <= tolerance), list(zip(diffs, tolerance))
    print(f"\n{len(diffs)} spikes; max |t_engine - t_NEST| = {diffs.max():.3g} s "
          f"(tolerance {tolerance.min():.3g}..{tolerance.max():.3g} s)")


def test_recurrent_network_with_bias_and_initial_state_matches_nest(engine):
    """Random initial potentials and currents, random biases (some above threshold: tonic firing),
    recurrence, over 3 s at NEST's default resolution of 0.01 ms (bias = I_e, V(0) = V_m,
    I(0) = I_syn_ex)."""
    from neurodelay.nest import DEFAULT_RESOLUTION

    rng = np.random.default_rng(12)
    n_in, n, duration = 100, 150, 3.0
    net = Network().add(SpikeSource("inp", n_in),
                        LIF("rec", n, tau_m=rng.uniform(10e-3, 30e-3, n), tau_s=5e-3, theta=1.0, reset=-0.1,
                            refractory=2e-3, bias=rng.uniform(-0.3, 1.2, n), v_init=rng.uniform(-0.5, 0.95, n),
                            i_init=rng.uniform(-1.0, 2.0, n)))
    for pre, p, w_mean, w_sd in (("inp", 0.1, 0.2, 0.2), ("rec", 0.05, -0.05, 0.3)):
        pre_idx, post_idx = np.nonzero(rng.random((net[pre].n, n)) < p)
        delays, _ = _grid_delays(rng, net[pre].n, n, pre_idx, post_idx, 50)
        net = net.connect(pre, "rec", weight=rng.normal(w_mean, w_sd, len(pre_idx)),
                          connectivity=(pre_idx, post_idx), delays=delays)
    inputs = _poisson_inputs(rng, n_in, 20.0, duration)
    engine.require(net)
    rec = engine.simulate(net, inputs, duration, n_threads=1)
    run = simulate_nest(net, inputs, duration, resolution=DEFAULT_RESOLUTION)
    mismatched, diffs = _match(net, rec.neuron, rec.time, run.neuron, run.time)
    tonic = net["rec"].bias > 1.0
    counts = rec.spikes("rec").counts()[0]
    assert tonic.sum() >= 10 and counts[tonic].min() >= 30 and len(rec.time) >= 3000
    first = rec.first_spike_times("rec")[0]
    assert np.sum(first < 5e-3) >= 5        # neurons started near threshold fire early
    assert not mismatched, f"(population, neuron, engine count, NEST count): {mismatched[:10]}"
    assert np.mean(diffs <= 1e-9) >= 0.999, f"max |dt| = {diffs.max():.3g} s"
    print(f"\n{len(diffs)} spikes, all matched; max |t_engine - t_NEST| = {diffs.max():.3g} s")
