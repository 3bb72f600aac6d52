"""The weighted voltage integral of readouts (WeightedIntegralCrossEntropy's score), summed over the
arrivals one by one (neurodelay.events.readout._arrival_integrals), against the sequential
trajectory kernel (state carried from arrival to arrival, which also finds the maxima) and against a
fine trapezoid rule over the engine's sampled voltage; with biases, initial states (description
and per trial) and inhibitory arrivals."""

import numpy as np
import pytest

from neurodelay import simulate
from neurodelay.events.readout import _stats, weighted_voltage_integral
from neurodelay.delays import Delays
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains

DURATION = 0.06


def _network_and_inputs():
    rng = np.random.default_rng(3)
    net = (Network().add(SpikeSource("inp", 5), LIF("hid", 4, tau_m=10e-3, tau_s=3e-3),
                         Readout("ro", 3, tau_m=[12e-3, 20e-3, 8e-3], tau_s=[4e-3, 5e-3, 2e-3],
                                 bias=[0.3, 0.0, -0.2], v_init=[0.1, -0.3, 0.0], i_init=[0.5, 0.0, -1.0]))
           .connect("inp", "hid", rng.uniform(1.0, 3.0, 20), delays=Delays(synaptic=rng.uniform(0, 5e-3, 20)))
           .connect("inp", "ro", rng.normal(0.0, 0.8, 15), delays=Delays(synaptic=rng.uniform(0, 10e-3, 15)))
           .connect("hid", "ro", rng.normal(0.0, 0.8, 12), delays=Delays(synaptic=rng.uniform(0, 10e-3, 12))))
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.04, rng.integers(1, 4))) for _ in range(5)]
                                     for _ in range(3)])
    return net, inputs


@pytest.mark.parametrize("tau_weight", [None, 15e-3])
def test_integral_equals_sequential_kernel_and_quadrature(tau_weight):
    net, inputs = _network_and_inputs()
    state = {"ro": {"v": [[0.1, -0.3, 0.0], [0.4, 0.2, -0.1], [-0.2, 0.0, 0.3]], "i": [[0.5, 0.0, -1.0]] * 3}}
    grid = np.linspace(0.0, DURATION, 60001)
    rec = simulate(net, inputs, DURATION, record="ro", sample_times=grid, initial_state=state, engine="events")
    assert len(rec.spikes("hid").time) > 0 and len(rec.spikes("inp").time) > 0
    got = weighted_voltage_integral(rec, "ro", tau_weight)
    rate = 0.0 if tau_weight is None else 1.0 / tau_weight
    norm = DURATION if tau_weight is None else tau_weight
    sequential = _stats(rec, "ro", rate, want_max=True)[2] / norm
    np.testing.assert_allclose(got, sequential, rtol=1e-12, atol=1e-14)
    v = rec.voltage                                            # (trials, samples, neurons)
    quad = np.trapezoid(np.exp(-rate * grid)[None, :, None] * v, grid, axis=1) / norm
    np.testing.assert_allclose(got, quad, rtol=0, atol=1e-7 * np.max(np.abs(quad)))
    assert np.ptp(got) > 1e-3                                   # not vacuous: the scores differ


def test_chunks_on_threads_give_the_same_numbers(monkeypatch):
    """_stats runs chunks of trials on a thread pool: results equal those of one thread, bit for bit."""
    from neurodelay.events import readout

    net, _ = _network_and_inputs()
    rng = np.random.default_rng(8)
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.04, rng.integers(1, 4))) for _ in range(5)]
                                     for _ in range(11)])
    rec = simulate(net, inputs, DURATION, engine="events")
    monkeypatch.setattr(readout, "_TRIALS_PER_CHUNK", 2)            # 6 chunks
    got = {}
    for threads in ("1", "3"):
        monkeypatch.setenv("NEURODELAY_THREADS", threads)
        got[threads] = [_stats(rec, "ro", 20.0, want_max=want) for want in (True, False)]
    for a, b in zip(got["1"], got["3"]):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert np.ptp(got["1"][0][0]) > 1e-3                            # not vacuous: maxima differ across trials
