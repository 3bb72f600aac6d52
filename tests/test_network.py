"""Validation of the network description: clear errors for bad input, Brian2 units accepted."""

import brian2 as b2
import numpy as np
import pytest

from neurodelay.delays import Delays, quantise, reduce_synaptic_gradient
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains


def _net():
    return Network().add(SpikeSource("inp", 3), LIF("hid", 2), Readout("out", 1))


def test_brian2_quantities_are_converted():
    pop = LIF("a", 2, tau_m=20 * b2.ms, tau_s=[5, 6] * b2.ms, theta=15 * b2.mV, refractory=2 * b2.ms)
    np.testing.assert_allclose(pop.tau_m, [0.02, 0.02])
    np.testing.assert_allclose(pop.tau_s, [0.005, 0.006])
    np.testing.assert_allclose(pop.theta, [0.015, 0.015])
    net = _net().connect("inp", "hid", weight=0.5, delays=Delays(axonal=[1, 2, 3] * b2.ms))
    np.testing.assert_allclose(net.projection("inp", "hid").delays.axonal, [1e-3, 2e-3, 3e-3])


@pytest.mark.parametrize("kwargs, message", [
    (dict(tau_m=10 * b2.mV), "tau_m must be a time"),
    (dict(tau_m=-1e-3), "tau_m must be > 0"),
    (dict(tau_s=np.nan), "non-finite"),
    (dict(tau_m=5e-3, tau_s=5e-3), "tau_m equals tau_s"),
    (dict(theta=0.0), "theta must be > 0"),
    (dict(reset=2.0, theta=1.0), "reset must be below theta"),
    (dict(tau_m=[1e-3, 2e-3, 3e-3]), "shape"),
    (dict(refractory=-1e-3), "refractory must be >= 0"),
])
def test_population_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LIF("p", 2, **kwargs)


@pytest.mark.parametrize("delays, message", [
    (Delays(axonal=[1e-3, -1e-3, 0.0]), "axonal delay must be >= 0"),
    (Delays(dendritic=[np.nan, 0.0]), "dendritic delay contains non-finite"),
    (Delays(synaptic=np.zeros(5)), "synaptic delay has shape"),
    (Delays(axonal=[1, 2, 3] * b2.mV), "axonal delay must be a time"),
])
def test_delay_errors(delays, message):
    with pytest.raises(ValueError, match=message):
        _net().connect("inp", "hid", weight=1.0, delays=delays)


def test_connect_errors():
    net = _net()
    with pytest.raises(KeyError, match="unknown population 'nope'"):
        net.connect("inp", "nope", weight=1.0)
    with pytest.raises(ValueError, match="spike source and cannot receive"):
        net.connect("hid", "inp", weight=1.0)
    with pytest.raises(ValueError, match="readout and never spikes"):
        net.connect("out", "hid", weight=1.0)
    with pytest.raises(ValueError, match="weight contains non-finite"):
        net.connect("inp", "hid", weight=[1.0, np.inf, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="mask has shape"):
        net.connect("inp", "hid", weight=1.0, connectivity=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="post_idx out of range"):
        net.connect("inp", "hid", weight=1.0, connectivity=([0, 1], [0, 2]))
    with pytest.raises(ValueError, match="used twice"):
        net.add(LIF("hid", 3))
    net = net.connect("inp", "hid", weight=1.0)
    with pytest.raises(ValueError, match="already a projection"):
        net.connect("inp", "hid", weight=1.0)


def test_connectivity_forms_agree():
    mask = np.array([[1, 0], [1, 1], [0, 1]], bool)
    a = _net().connect("inp", "hid", weight=1.0, connectivity=mask).projection("inp", "hid")
    b = _net().connect("inp", "hid", weight=1.0, connectivity=(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 1])))
    b = b.projection("inp", "hid")
    np.testing.assert_array_equal(a.pre_idx, b.pre_idx)
    np.testing.assert_array_equal(a.post_idx, b.post_idx)
    full = _net().connect("inp", "hid", weight=1.0).projection("inp", "hid")
    assert full.n_syn == 6


def test_total_delay_is_sum_of_kinds():
    rng = np.random.default_rng(0)
    a, b, s = rng.uniform(0, 1e-3, 3), rng.uniform(0, 1e-3, 2), rng.uniform(0, 1e-3, 6)
    proj = _net().connect("inp", "hid", weight=1.0, delays=Delays(a, b, s)).projection("inp", "hid")
    expected = a[proj.pre_idx] + b[proj.post_idx] + s
    np.testing.assert_allclose(proj.total_delay(), expected, rtol=0, atol=1e-18)


def test_reduce_synaptic_gradient_sums_outgoing_and_incoming():
    pre, post = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 0, 1])
    g = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 0.0, 0.0, 0.0, -1.0]])
    out = reduce_synaptic_gradient(g, pre, post, 3, 2)
    np.testing.assert_allclose(out["axonal"], [[3, 3, 9], [0.5, 0, -1]])
    np.testing.assert_allclose(out["dendritic"], [[5, 10], [0.5, -1]])


def test_quantise_and_feedforward_detection():
    np.testing.assert_allclose(quantise([0.26e-3, 0.34e-3], 0.1 * b2.ms), [0.3e-3, 0.3e-3])
    net = _net().connect("inp", "hid", weight=1.0).connect("hid", "out", weight=1.0)
    assert net.is_feedforward()
    assert not net.connect("hid", "hid", weight=1.0, connectivity=0.5, rng=1).is_feedforward()


def test_spike_trains_validation():
    with pytest.raises(ValueError, match="spike times must be >= 0"):
        SpikeTrains([0], [0], [-1e-3], 1, 1)
    with pytest.raises(ValueError, match="neuron index out of range"):
        SpikeTrains([0], [3], [1e-3], 1, 2)
    with pytest.raises(ValueError, match="non-finite"):
        SpikeTrains([0], [0], [np.nan], 1, 1)
    st = SpikeTrains.from_lists([[[3e-3, 1e-3], []], [[], [2 * b2.ms]]])
    assert (st.n_trials, st.n_neurons, len(st)) == (2, 2, 3)
    np.testing.assert_array_equal(st.counts(), [[2, 0], [0, 1]])


@pytest.mark.parametrize("n_neurons", [3, 70_000])     # indices sorted as uint16, and as int64
def test_spike_trains_sorted_is_the_lexsort(n_neurons):
    """sorted() (a check, a sort by trial, or three stable sorts) gives np.lexsort's stable order on
    unsorted, sorted and trial-shuffled spikes with ties in time and neuron."""
    rng = np.random.default_rng(4)
    for _ in range(200):
        n, n_trials = int(rng.integers(0, 40)), int(rng.integers(1, 5))
        x = SpikeTrains(rng.integers(0, n_trials, n), rng.integers(0, min(n_neurons, 3), n),
                        rng.integers(0, 4, n) * 1e-3, n_trials, n_neurons)
        perm = rng.permutation(n_trials)
        for y in (x, x.sorted(), x.select_trials(perm), x.sorted().select_trials(perm)):
            ref = np.lexsort((y.neuron, y.time, y.trial))
            z = y.sorted()
            assert np.array_equal(z.trial, y.trial[ref]) and np.array_equal(z.neuron, y.neuron[ref])
            assert np.array_equal(z.time, y.time[ref])
            order = y.sort_order()
            assert np.array_equal(np.arange(n) if order is None else order, ref)


def test_weight_units_must_match_the_threshold():
    """A weight in volts onto a dimensionless threshold was silently converted (0.5 mV -> 0.0005)."""
    with pytest.raises(ValueError, match=r"weight is a voltage but hid\.theta is dimensionless"):
        _net().connect("inp", "hid", weight=0.5 * b2.mV)
    with pytest.raises(ValueError, match="weight is a voltage"):
        _net().connect("inp", "hid", weight=0.5).with_projection("inp", "hid", weight=[1, 2, 3, 4, 5, 6] * b2.mV)
    volts = Network().add(SpikeSource("inp", 1), LIF("hid", 1, theta=15 * b2.mV, reset=-5 * b2.mV))
    assert volts["hid"].voltage_unit == "volt" and _net()["hid"].voltage_unit == "dimensionless"
    net = volts.connect("inp", "hid", weight=0.5 * b2.mV)
    np.testing.assert_allclose(net.projection("inp", "hid").weight, [5e-4])
    # the unit survives functional updates and the checkpoint layout
    from neurodelay.train.network_state import network_from_dataset, network_to_dataset
    assert net.with_population("hid", tau_m=30e-3)["hid"].voltage_unit == "volt"
    assert network_from_dataset(network_to_dataset(net))["hid"].voltage_unit == "volt"
    readout = Network().add(SpikeSource("inp", 1), Readout("out", 1)).connect("inp", "out", 0.5 * b2.mV)
    np.testing.assert_allclose(readout.projection("inp", "out").weight, [5e-4])  # no threshold to match
