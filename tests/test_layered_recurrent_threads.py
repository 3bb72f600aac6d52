"""One trial of a recurrent group on several threads (neurodelay.layered.recurrent: the group's
neurons split into partitions that advance in lock-step windows no longer than the smallest
delay between two partitions) against the one-thread run and the event engine.

With fewer trials than threads a recurrent group is split (forced here for small groups through
``PARTITION_MIN_NEURONS = 0``). The records must be identical bit for bit whatever the number
of threads (spike counts and times, I - theta at the spikes, sampled voltages) and so must the
gradients of ``loss_and_grad``: arrivals at one neuron are applied in (time, synapse) order
whichever partition delivered them first. The networks have ties (simultaneous spikes in
different partitions, delays on a grid, two synapses per pair), bursts (refractory period 0,
many spikes per window: the outboxes, buckets and records grow mid-window) and sampled voltages.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodelay import gradients, losses
from neurodelay.delays import Delays
from neurodelay.events import simulate_events
from neurodelay.layered import recurrent
from neurodelay.layered import simulate as layered_simulate
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains

DURATION = 0.15
SAMPLES = np.linspace(0.0, DURATION, 31)


def tied_network(seed: int, n: int = 40, d_min: float = 1e-3):
    """inp (6 sources) -> hid (n LIF, neurons j and j + n/2 with the same input weights, so that they
    spike together at first; half of them without a refractory period) -> hid (30 % of the pairs, each
    pair twice with one delay; delays on a 0.5 ms grid from d_min) -> out (2 readouts)."""
    rng = np.random.default_rng(seed)
    half = n // 2
    refr = np.where(np.arange(n) % 2 == 0, 0.0, 0.5e-3)
    net = Network().add(SpikeSource("inp", 6), LIF("hid", n, tau_m=10e-3, tau_s=3e-3, refractory=refr),
                        Readout("out", 2, tau_m=15e-3, tau_s=3e-3))
    w_in = rng.uniform(0.2, 1.6, (6, half))
    net = net.connect("inp", "hid", np.concatenate([w_in, w_in], axis=1).ravel())
    pre, post = np.nonzero(rng.random((n, n)) < 0.3)
    delay = d_min + 0.5e-3 * rng.integers(0, 5, len(pre))
    weight = rng.uniform(-0.2, 0.35, len(pre))
    net = net.connect("hid", "hid", np.r_[weight, 0.5 * weight], connectivity=(np.r_[pre, pre], np.r_[post, post]),
                      delays=Delays(synaptic=np.r_[delay, delay]))
    net = net.connect("hid", "out", rng.uniform(-0.3, 0.6, 2 * n))
    return net


def grid_inputs(seed: int, n_trials: int, rate: float = 150.0) -> SpikeTrains:
    """Spike times on a 0.5 ms grid (simultaneous input spikes)."""
    rng = np.random.default_rng(seed)
    grid = np.arange(1, round(DURATION / 0.5e-3)) * 0.5e-3
    return SpikeTrains.from_lists([[np.sort(rng.choice(grid, rng.poisson(rate * DURATION), replace=False))
                                    for _ in range(6)] for _ in range(n_trials)])


@pytest.fixture
def split(monkeypatch):
    """Partition every recurrent group (of the event loop: batches of several trials would otherwise run
    window by window, recurrent.WINDOWED); counts the partitioned runs."""
    monkeypatch.setattr(recurrent, "PARTITION_MIN_NEURONS", 0)
    monkeypatch.setattr(recurrent, "WINDOWED", False)
    calls = []
    original = recurrent.RK.forward_partitioned

    def counted(bounds, *args):
        calls.append(len(bounds) - 1)
        return original(bounds, *args)

    monkeypatch.setattr(recurrent.RK, "forward_partitioned", counted)
    return calls


def _fields(rec):
    return rec.trial, rec.neuron, rec.time, rec.i_minus_theta, rec.voltage


def _by_neuron(rec):
    """The spikes by (trial, neuron, time): the engines may list simultaneous spikes in another order."""
    order = np.lexsort((rec.time, rec.neuron, rec.trial))
    return rec.trial[order], rec.neuron[order], rec.time[order], rec.i_minus_theta[order]


def assert_identical(a, b):
    for x, y in zip(_fields(a), _fields(b)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("n_trials, threads, block", [(1, (2, 3), 8), (3, (4,), 8), (1, (2, 3), 2)])
def test_records_identical_across_threads(split, n_trials, threads, block, monkeypatch):
    """1 trial on 2 and 3 threads (3 partitions on the cores there are), 3 trials on 4 threads (one
    after the other, 4 partitions each): the one-thread record bit for bit, and the event engine's
    spikes (the same counts, times within 1e-12 s: arrivals that tie are applied in one order).
    Blocks of 8 input arrivals (the default) are never added at once in this busy network; blocks
    of 2 are, and whether one is depends only on what lies before its end, known to every partition
    by then."""
    monkeypatch.setattr(recurrent, "BLOCK_ARRIVALS", block)
    blocks = []
    whole = recurrent.RK.forward_group

    def counted(*args):
        out = whole(*args)
        blocks.append(out[4])
        return out

    monkeypatch.setattr(recurrent.RK, "forward_group", counted)
    net = tied_network(0)
    inputs = grid_inputs(1, n_trials)
    one = layered_simulate(net, inputs, DURATION, record=["hid", "out"], sample_times=SAMPLES, n_threads=1)
    assert split == []
    assert (sum(blocks) > 100) == (block == 2)
    hid = one.spikes("hid")
    assert len(hid.time) > 20 * net["hid"].n * n_trials                    # busy: bursts, ties
    assert len(np.unique(hid.time)) < len(hid.time)                         # simultaneous spikes
    ref = simulate_events(net, inputs, DURATION, record=["hid", "out"], sample_times=SAMPLES)
    a, b = _by_neuron(ref), _by_neuron(one)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(b[2], a[2], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b[3], a[3], rtol=0, atol=1e-9)
    for t in threads:
        rec = layered_simulate(net, inputs, DURATION, record=["hid", "out"], sample_times=SAMPLES, n_threads=t)
        assert_identical(one, rec)
    assert split == [t for t in threads for _ in range(n_trials)]


def test_long_windows_and_fallbacks(split):
    """A 5 ms smallest delay (few long windows, many spikes each); a zero delay between two
    partitions, where no window is possible, and a group below the size threshold run on one thread."""
    net = tied_network(2, n=48, d_min=5e-3)
    inputs = grid_inputs(3, 1, rate=300.0)
    one = layered_simulate(net, inputs, DURATION, record="hid", sample_times=SAMPLES, n_threads=1)
    assert len(one.time) > 40 * net["hid"].n
    assert_identical(one, layered_simulate(net, inputs, DURATION, record="hid", sample_times=SAMPLES, n_threads=2))
    assert split == [2]
    zero = tied_network(2, n=48, d_min=0.0)
    one = layered_simulate(zero, inputs, DURATION, n_threads=1)
    assert_identical(one, layered_simulate(zero, inputs, DURATION, n_threads=2))
    assert split == [2]                                                     # not split
    recurrent.PARTITION_MIN_NEURONS = 49
    assert_identical(layered_simulate(net, inputs, DURATION, n_threads=1),
                     layered_simulate(net, inputs, DURATION, n_threads=2))
    assert split == [2]


@pytest.mark.parametrize("n_trials", [1, 2])
def test_gradients_identical_across_threads(split, n_trials):
    """loss_and_grad (forward on the partitions, then the reverse pass) on 1 and 4 threads:
    the same loss and gradients bit for bit (weights, delays, time constants, thresholds)."""
    net = tied_network(4)
    inputs = grid_inputs(5, n_trials)
    loss = (losses.MaxVoltageCrossEntropy("out")
            + 0.01 * losses.SpikeCountRegulariser("hid", target=5.0, strength=1.0))
    keys = [("hid->hid", "weight"), ("hid->hid", "synaptic"), ("inp->hid", "weight"), ("hid", "tau_m"),
            ("hid", "theta"), ("hid->out", "weight")]
    labels = np.arange(n_trials) % 2
    a = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, n_threads=1, engine="layered")
    b = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, n_threads=4, engine="layered")
    assert split == [4] * n_trials
    assert a.loss == b.loss
    assert_identical(a.record, b.record)
    for key in keys:
        assert np.any(a.grads[key] != 0), key
        np.testing.assert_array_equal(a.grads[key], b.grads[key], err_msg=str(key))
