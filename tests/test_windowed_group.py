"""The window-by-window forward pass of recurrent groups (neurodelay.layered._windowed_group): the same
spikes as the event loop of the recurrent kernels and as the event engine, whatever the delays (shorter
and longer than a window, down to 1e-10 s), refractory or not, one population or a cycle of two; the
cases it leaves to the event loop (zero delays among them); the fallback when a window does not settle."""

from __future__ import annotations

import numpy as np
import pytest

from neurodelay import layered
from neurodelay.delays import Delays
from neurodelay.events import simulate_events as events_simulate
from neurodelay.layered import _windowed_group as WG
from neurodelay.layered import recurrent
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains
from test_layered import assert_same_spikes

DURATION = 0.08


def group_network(seed: int, *, min_delay: float = 0.0, max_delay: float = 6e-3, zero_delays: bool = False,
                  refractory: float = 1e-3, two_populations: bool = False, n_in: int = 40, n_hid: int = 30,
                  n_trials: int = 3):
    """inp (n_in, ~100 Hz for 60 ms) -> hid (n_hid LIF of one tau_m and one tau_s, all-to-all recurrence
    with synaptic delays uniform on [min_delay, max_delay], a tenth of them exactly 0 with `zero_delays`)
    -> out (3 readouts). With `two_populations` the hidden neurons are two populations a <-> b of the same time
    constants (a cycle between populations) instead of one self-recurrent one."""
    rng = np.random.default_rng(seed)
    hidden = ["a", "b"] if two_populations else ["hid"]
    sizes = [n_hid // 2, n_hid - n_hid // 2] if two_populations else [n_hid]
    net = Network().add(SpikeSource("inp", n_in),
                        *(LIF(h, n, tau_m=12e-3, tau_s=4e-3, refractory=refractory) for h, n in zip(hidden, sizes)),
                        Readout("out", 3, tau_m=15e-3, tau_s=3e-3))

    def delays(n):
        d = rng.uniform(min_delay, max_delay, n)
        if zero_delays:
            d[rng.random(n) < 0.1] = 0.0
        return Delays(synaptic=d)

    for h, n in zip(hidden, sizes):
        net = net.connect("inp", h, rng.normal(0.12, 0.3, n_in * n), delays=Delays(synaptic=rng.uniform(0, 8e-3,
                                                                                                        n_in * n)))
    for pre, n_pre in zip(hidden, sizes):
        for post, n_post in zip(hidden, sizes):
            if two_populations and pre == post:
                continue
            net = net.connect(pre, post, rng.normal(0.0, 0.3, n_pre * n_post), delays=delays(n_pre * n_post))
    for h, n in zip(hidden, sizes):
        net = net.connect(h, "out", rng.uniform(-0.3, 0.6, 3 * n))
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.06, rng.poisson(6.0))) for _ in range(n_in)]
                                     for _ in range(n_trials)])
    return net, inputs


@pytest.fixture
def windowed_calls(monkeypatch):
    """Counts the calls of forward_windowed and their statuses."""
    calls = []
    original = WG.forward_windowed

    def counted(*args):
        out = original(*args)
        calls.append(int(out[3]))
        return out

    monkeypatch.setattr(WG, "forward_windowed", counted)
    return calls


def both_paths(net, inputs, monkeypatch, **kwargs):
    """(record of the event loop, record of the windowed path), one thread."""
    monkeypatch.setattr(recurrent, "WINDOWED", False)
    loop = layered.simulate(net, inputs, DURATION, n_threads=1, **kwargs)
    monkeypatch.setattr(recurrent, "WINDOWED", True)
    return loop, layered.simulate(net, inputs, DURATION, n_threads=1, **kwargs)


@pytest.mark.parametrize("case", [
    dict(seed=0),
    dict(seed=1, max_delay=0.5e-3),                 # every recurrent delay shorter than a window
    dict(seed=2, max_delay=30e-3),                  # most of them longer
    dict(seed=3, min_delay=1e-10, max_delay=1e-9),  # all but simultaneous
    dict(seed=4, refractory=0.0),
    dict(seed=5, two_populations=True),
])
def test_windowed_equals_event_loop_and_event_engine(case, windowed_calls, monkeypatch):
    net, inputs = group_network(**case)
    loop, win = both_paths(net, inputs, monkeypatch)
    assert windowed_calls == [WG.STATUS_OK] * inputs.n_trials          # the windowed path ran, and settled
    hidden = sum(len(loop.spikes(p.name).time) for p in net.populations if isinstance(p, LIF))
    assert hidden > 3 * sum(p.n for p in net.populations if isinstance(p, LIF))
    assert_same_spikes(loop, win)
    assert_same_spikes(events_simulate(net, inputs, DURATION), win)


def test_windowed_recurrence_matters(monkeypatch):
    """Without its recurrent projection the group's spikes differ: the comparison above sees the
    recurrent arrivals, those within a window included."""
    net, inputs = group_network(1, max_delay=0.5e-3)
    _, win = both_paths(net, inputs, monkeypatch)
    ff = Network().add(*net.populations)
    for p in net.projections:
        if p.name != "hid->hid":
            ff = ff.connect(p.pre, p.post, p.weight, connectivity=(p.pre_idx, p.post_idx), delays=p.delays)
    assert len(layered.simulate(ff, inputs, DURATION).time) != len(win.time)


def test_zero_delays_take_event_loop(windowed_calls, monkeypatch):
    """Zero recurrent delays (a spike's own arrival at its time): the event loop runs, as the event engine."""
    net, inputs = group_network(3, zero_delays=True)
    rec = layered.simulate(net, inputs, DURATION, n_threads=1)
    assert windowed_calls == []
    assert_same_spikes(events_simulate(net, inputs, DURATION), rec)


def test_not_settled_falls_back_to_event_loop(windowed_calls, monkeypatch):
    """A window that needs more iterations than allowed: forward_windowed says so and the event loop runs
    that trial instead (same record)."""
    net, inputs = group_network(1, max_delay=0.5e-3)
    loop, _ = both_paths(net, inputs, monkeypatch)
    windowed_calls.clear()
    monkeypatch.setattr(WG, "MAX_ITERATIONS", 1)
    rec = layered.simulate(net, inputs, DURATION, n_threads=1)
    assert WG.STATUS_NOT_SETTLED in windowed_calls
    assert_same_spikes(loop, rec)


def test_windowed_not_taken(windowed_calls, monkeypatch):
    """Sampled voltages of the group, an initial state, bias currents, or several time constants in the
    group: the event loop runs (with the same results as the event engine)."""
    net, inputs = group_network(0)
    ref = events_simulate(net, inputs, DURATION, record=["hid"], sample_times=np.array([0.01, 0.05]))
    rec = layered.simulate(net, inputs, DURATION, record=["hid"], sample_times=np.array([0.01, 0.05]), n_threads=1)
    assert windowed_calls == []
    assert_same_spikes(ref, rec)
    state = dict(v=np.full(net["hid"].n, 0.3))
    ref = events_simulate(net, inputs, DURATION, initial_state={"hid": state})
    rec = layered.simulate(net, inputs, DURATION, initial_state={"hid": state}, n_threads=1)
    assert windowed_calls == []
    assert_same_spikes(ref, rec)
    hid = net["hid"]
    for changed in (LIF("hid", hid.n, tau_m=12e-3, tau_s=4e-3, refractory=1e-3, bias=np.full(hid.n, 0.1)),
                    LIF("hid", hid.n, tau_m=np.linspace(10e-3, 14e-3, hid.n), tau_s=4e-3, refractory=1e-3)):
        other = Network().add(*[changed if p.name == "hid" else p for p in net.populations])
        for p in net.projections:
            other = other.connect(p.pre, p.post, p.weight, connectivity=(p.pre_idx, p.post_idx), delays=p.delays)
        assert_same_spikes(events_simulate(other, inputs, DURATION), layered.simulate(other, inputs, DURATION,
                                                                                       n_threads=1))
        assert windowed_calls == []


def test_windowed_runaway_raises(windowed_calls):
    net, inputs = group_network(0)
    with pytest.raises(RuntimeError, match="max_spikes_per_trial=5"):
        layered.simulate(net, inputs, DURATION, n_threads=1, max_spikes_per_trial=5)
    assert windowed_calls[0] == WG.STATUS_TOO_MANY_SPIKES


@pytest.mark.parametrize("n_trials, threads", [(4, 2), (2, 4)])
def test_windowed_threads_same_record(n_trials, threads, windowed_calls, monkeypatch):
    """Trials in parallel, also with fewer trials than threads (where the event loop would split a
    large group over the threads; the windowed path runs one trial per thread instead): the same
    record as one thread."""
    monkeypatch.setattr(recurrent, "PARTITION_MIN_NEURONS", 0)
    partitioned = []
    monkeypatch.setattr(recurrent, "_forward_partitioned", lambda *args: partitioned.append(1))
    net, inputs = group_network(2, n_trials=n_trials)
    one = layered.simulate(net, inputs, DURATION, n_threads=1)
    many = layered.simulate(net, inputs, DURATION, n_threads=threads)
    assert partitioned == [] and windowed_calls == [WG.STATUS_OK] * (2 * n_trials)
    np.testing.assert_array_equal(one.time, many.time)
    np.testing.assert_array_equal(one.neuron, many.neuron)


def test_one_trial_takes_event_loop(windowed_calls):
    """A batch of one trial takes the event loop (which may split the group over threads), whatever the
    number of threads: the path never depends on the threads, so neither does the record."""
    net, inputs = group_network(2, n_trials=1)
    one = layered.simulate(net, inputs, DURATION, n_threads=1)
    two = layered.simulate(net, inputs, DURATION, n_threads=2)
    assert windowed_calls == []
    np.testing.assert_array_equal(one.time, two.time)
    assert_same_spikes(events_simulate(net, inputs, DURATION), one)
