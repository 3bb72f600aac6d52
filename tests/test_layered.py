"""The layered engine against the general event engine (the reference).

Random multi-layer networks (two spike sources, two LIF layers with a skip
projection, all three delay kinds, refractory and non-refractory neurons, a
nonzero reset, a closed-form layer with tau_m = 2 tau_s, readouts and a TTFS
layer) are simulated by both engines: spike counts must be identical and spike
times, ``I - theta`` and sampled voltages equal within 1e-12. Gradients of
several losses (weights, synaptic / axonal / dendritic delays, tau_m, tau_s,
theta, spike and input times) from the layered reverse pass must equal the
event engine's within 1e-9 relative, for records of either engine, and must
not depend on the number of threads. Recurrent networks (self-recurrence and a cycle
between populations) are simulated natively by the layered engine and compared with
the event engine in the same way.
"""

import numpy as np
import pytest

from neurodelay import gradients, layered, losses
from neurodelay.delays import Delays
from neurodelay.flat import flatten
from neurodelay.events import adjoint as events_adjoint
from neurodelay.events import simulate_events as events_simulate
from neurodelay.events.adjoint import RecordMismatchError
from neurodelay.gradcheck import random_network
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains

DURATION = 0.06
TIME_TOL = 1e-12      # s
GRAD_RTOL = 1e-9


def layered_network(seed: int, n_trials: int = 3):
    """inp (12) + aux (5) -> h1 (24 LIF, 1 ms refractory, all delay kinds, closed form) -> h2 (16 LIF,
    reset -0.3, no refractory; also fed by inp: a skip projection) -> out (4 readouts), ttfs (4 LIF)."""
    rng = np.random.default_rng(seed)
    n_in, n_aux, n1, n2, n_o = 12, 5, 24, 16, 4
    net = Network().add(
        SpikeSource("inp", n_in), SpikeSource("aux", n_aux),
        LIF("h1", n1, tau_m=10e-3, tau_s=5e-3, refractory=1e-3, theta=rng.uniform(0.8, 1.2, n1)),
        LIF("h2", n2, tau_m=rng.uniform(8e-3, 14e-3, n2), tau_s=rng.uniform(2e-3, 4e-3, n2), reset=-0.3),
        Readout("out", n_o, tau_m=15e-3, tau_s=rng.uniform(3e-3, 4e-3, n_o)),
        LIF("ttfs", n_o, tau_m=8e-3, tau_s=2.5e-3, theta=rng.uniform(0.8, 1.2, n_o)))
    mask = rng.random((n_in, n1)) < 0.7
    net = net.connect("inp", "h1", rng.uniform(-0.2, 1.0, mask.sum()), connectivity=mask,
                      delays=Delays(axonal=rng.uniform(0, 2e-3, n_in), dendritic=rng.uniform(0, 2e-3, n1),
                                    synaptic=rng.uniform(0, 5e-3, mask.sum())))
    net = net.connect("aux", "h1", rng.uniform(0.0, 0.8, n_aux * n1),
                      delays=Delays(synaptic=rng.uniform(0, 3e-3, n_aux * n1)))
    net = net.connect("h1", "h2", rng.uniform(-0.3, 0.8, n1 * n2),
                      delays=Delays(axonal=rng.uniform(0, 1e-3, n1), synaptic=rng.uniform(0, 4e-3, n1 * n2)))
    net = net.connect("inp", "h2", rng.uniform(-0.2, 0.5, n_in * n2),
                      delays=Delays(dendritic=rng.uniform(0, 3e-3, n2)))
    net = net.connect("h2", "out", rng.uniform(-0.5, 1.0, n2 * n_o),
                      delays=Delays(synaptic=rng.uniform(0, 5e-3, n2 * n_o)))
    net = net.connect("h2", "ttfs", rng.uniform(-0.2, 1.2, n2 * n_o),
                      delays=Delays(synaptic=rng.uniform(0, 5e-3, n2 * n_o)))
    inputs = {
        "inp": SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.035, rng.integers(1, 5))) for _ in range(n_in)]
                                       for _ in range(n_trials)]),
        "aux": SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.035, 2)) for _ in range(n_aux)]
                                       for _ in range(n_trials)]),
    }
    return net, inputs, rng.integers(0, n_o, n_trials)


def _by_neuron(rec):
    order = np.lexsort((rec.time, rec.neuron, rec.trial))
    return rec.trial[order], rec.neuron[order], rec.time[order], rec.i_minus_theta[order]


def assert_same_spikes(ref, rec):
    """Identical spike counts per (trial, neuron); times and I - theta within TIME_TOL."""
    a, b = _by_neuron(ref), _by_neuron(rec)
    assert len(a[0]) == len(b[0])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(b[2], a[2], rtol=0, atol=TIME_TOL)
    np.testing.assert_allclose(b[3], a[3], rtol=0, atol=1e-9)
    assert np.all(np.diff(rec.trial) >= 0)
    assert np.all(np.diff(rec.time)[np.diff(rec.trial) == 0] >= 0)


def assert_close_grad(got, ref, what=""):
    got, ref = np.asarray(got, float), np.asarray(ref, float)
    scale = max(float(np.max(np.abs(ref), initial=0.0)), 1e-300)
    np.testing.assert_allclose(got, ref, rtol=GRAD_RTOL, atol=GRAD_RTOL * 1e-3 * scale, err_msg=what)


SAMPLES = np.linspace(0.0, DURATION, 25)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_equals_event_engine(seed):
    net, inputs, _ = layered_network(seed)
    assert layered.supports(net) is None
    ref = events_simulate(net, inputs, DURATION, record=["h2", "out"], sample_times=SAMPLES)
    rec = layered.simulate(net, inputs, DURATION, record=["h2", "out"], sample_times=SAMPLES)
    for pop in ("h1", "h2", "ttfs"):      # the comparison is not vacuous: every layer spikes
        assert len(ref.spikes(pop).time) > 0
    assert len(ref.spikes("h1").time) > 2 * net["h1"].n          # several spikes per neuron
    assert_same_spikes(ref, rec)
    np.testing.assert_allclose(rec.voltage, ref.voltage, rtol=0, atol=1e-12)
    assert rec.voltage.shape == (3, len(SAMPLES), net["h2"].n + net["out"].n)
    np.testing.assert_array_equal(rec.sample_neurons, ref.sample_neurons)


@pytest.mark.parametrize("seed", [0, 1])
def test_forward_factored_and_bit_identical(seed, monkeypatch):
    """By default the uniform LIF layers (h1 with, ttfs without refractory period) use factored
    exponentials: spikes agree with the event engine's to rounding. With FACTORED_FORWARD off every
    layer performs the event engine's operations: spikes are bit-identical."""
    net, inputs, _ = layered_network(seed)
    flat = flatten(net)
    for pop in ("h1", "ttfs"):
        assert layered.plan._factored_taus(flat, flat.offsets[pop], net[pop].n, DURATION, False) is not None
    ref = events_simulate(net, inputs, DURATION)
    assert layered.plan.FACTORED_FORWARD
    factored = layered.simulate(net, inputs, DURATION)
    assert_same_spikes(ref, factored)
    monkeypatch.setattr(layered.plan, "FACTORED_FORWARD", False)
    rec = layered.simulate(net, inputs, DURATION)
    for x, y in zip(_by_neuron(ref), _by_neuron(rec)):
        np.testing.assert_array_equal(x, y)


LOSSES = {
    "first_spike_mse": lambda: losses.FirstSpikeMSE("ttfs", margin=2e-3),
    "first_spike_ce": lambda: losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3),
    "max_voltage_ce": lambda: losses.MaxVoltageCrossEntropy("out"),
    "exp_integral_ce": lambda: losses.WeightedIntegralCrossEntropy("out", tau_weight=20e-3),
    "combined": lambda: (losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3)
                         + 0.5 * losses.WeightedIntegralCrossEntropy("out")
                         + 0.01 * losses.SpikeCountRegulariser("h1", target=2.0, strength=1.0)),
}


def _keys(net, with_tau=True):
    keys = [(p.name, "weight") for p in net.projections]
    keys += [("inp->h1", "synaptic"), ("inp->h1", "axonal"), ("inp->h1", "dendritic"), ("aux->h1", "synaptic"),
             ("h1->h2", "synaptic"), ("h1->h2", "axonal"), ("inp->h2", "dendritic"), ("h2->out", "synaptic"),
             ("h2->ttfs", "synaptic")]
    if with_tau:
        keys += [(pop, kind) for pop in ("h1", "h2", "out", "ttfs") for kind in ("tau_m", "tau_s")]
    keys += [(pop, "theta") for pop in ("h1", "h2", "ttfs")]
    return keys


@pytest.mark.parametrize("with_tau", [True, False], ids=["with_tau", "without_tau"])
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_gradients_equal_event_engine(loss_name, with_tau, monkeypatch):
    """Every parameter kind through loss_and_grad, the reverse pass swapped for the layered one,
    on the event engine's record and on the layered engine's own record. Without time constants
    the uniform LIF layers (h1, ttfs) take the factored reverse pass, else the exact one."""
    net, inputs, labels = layered_network(1)
    loss = LOSSES[loss_name]()
    keys = _keys(net, with_tau)
    ref = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="events")
    assert all(np.any(ref.grads[(p, "weight")] != 0) for p in ("inp->h1", "h1->h2", "h2->ttfs" if "first" in loss_name
                                                                else "h2->out"))
    monkeypatch.setattr(layered.plan, "FACTORED_FORWARD", True)    # records that differ by rounding
    for record in (ref.record, layered.simulate(net, inputs, DURATION)):
        got = gradients.loss_and_grad(net, None, None, loss, labels, keys, record=record, engine="layered")
        assert got.loss == pytest.approx(ref.loss, rel=1e-12)
        for key in keys:
            assert_close_grad(got.grads[key], ref.grads[key], str(key))


def test_adjoint_result_fields_and_threads():
    """Per-synapse, per-spike and per-input gradients equal the event engine's; the result is
    bit-identical on 1 and 2 threads, and with one trial (parallel over neuron chunks)."""
    net, inputs, labels = layered_network(2, n_trials=4)
    record = events_simulate(net, inputs, DURATION, record=["out"], sample_times=SAMPLES)
    loss = losses.FirstSpikeMSE("ttfs", margin=2e-3) + losses.MaxVoltageCrossEntropy("out")
    _, sources = loss.value_and_sources(record, labels)
    ref = events_adjoint(record, sources, time_constants=True)
    got = [layered.adjoint(record, sources, time_constants=True, n_threads=t) for t in (1, 2)]
    for field in ("weight", "delay", "tau_m", "tau_s", "theta", "spike_time", "input_time"):
        assert_close_grad(getattr(got[0], field), getattr(ref, field), field)
        np.testing.assert_array_equal(getattr(got[0], field), getattr(got[1], field))
    assert got[0].worst_threshold_error < 1e-12
    # one trial on two threads: chunks of neurons in parallel, same numbers as serial
    one = SpikeTrains(inputs["inp"].trial[inputs["inp"].trial == 0], inputs["inp"].neuron[inputs["inp"].trial == 0],
                      inputs["inp"].time[inputs["inp"].trial == 0], 1, net["inp"].n)
    aux = inputs["aux"]
    single = {"inp": one, "aux": SpikeTrains(aux.trial[aux.trial == 0], aux.neuron[aux.trial == 0],
                                             aux.time[aux.trial == 0], 1, net["aux"].n)}
    recs = [layered.simulate(net, single, DURATION, n_threads=t) for t in (1, 2)]
    assert_same_spikes(events_simulate(net, single, DURATION), recs[1])
    np.testing.assert_array_equal(recs[0].time, recs[1].time)
    _, src1 = loss.value_and_sources(recs[0], labels[:1])
    a, b = (layered.adjoint(recs[0], src1, n_threads=t) for t in (1, 2))
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.input_time, b.input_time)


def test_small_gradcheck_network_and_closed_form():
    """The finite-difference-checked network of neurodelay.gradcheck (feedforward variant)."""
    net, inputs, labels = random_network(3, False, n_trials=2)
    ref_rec = events_simulate(net, inputs, 0.05)
    rec = layered.simulate(net, inputs, 0.05)
    assert_same_spikes(ref_rec, rec)
    _, sources = losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3).value_and_sources(ref_rec, labels)
    ref = events_adjoint(ref_rec, sources, time_constants=True)
    got = layered.adjoint(ref_rec, sources, time_constants=True)
    for field in ("weight", "delay", "tau_m", "tau_s", "theta", "input_time"):
        assert_close_grad(getattr(got, field), getattr(ref, field), field)


def test_simultaneous_arrivals():
    """Zero delays and inputs at identical times: many arrivals tie; the engines still agree."""
    net = (Network().add(SpikeSource("inp", 6), LIF("hid", 5, tau_m=10e-3, tau_s=3e-3),
                         LIF("top", 2, tau_m=10e-3, tau_s=3e-3))
           .connect("inp", "hid", np.linspace(0.2, 0.9, 30)).connect("hid", "top", 0.7))
    inputs = SpikeTrains.from_lists([[np.array([1e-3, 4e-3, 4e-3 + 1e-9])] * 6, [np.array([2e-3])] * 6])
    ref = events_simulate(net, inputs, 0.03)
    rec = layered.simulate(net, inputs, 0.03)
    assert len(ref.spikes("top").time) > 0
    assert_same_spikes(ref, rec)


def recurrent_network(seed: int, n_trials: int = 3, bias: bool = False):
    """inp (10) -> h1 (18 LIF, 1 ms refractory, closed form, self-recurrent) <-> h2 (12 LIF, reset -0.3,
    no refractory period; h1 -> h2 -> h1 is a cycle between populations) -> out (3 readouts), and
    h2 -> ttfs (3 LIF, feedforward after the recurrent group). All three delay kinds on the input
    and recurrent projections; with `bias`, bias currents and a nonzero initial state on h1, h2."""
    rng = np.random.default_rng(seed)
    n_in, n1, n2, n_o = 10, 18, 12, 3
    extra = (dict(bias=rng.uniform(0.0, 0.6, n1), v_init=rng.uniform(-0.2, 0.5, n1), i_init=rng.uniform(0, 1.0, n1))
             if bias else {})
    extra2 = dict(bias=rng.uniform(-0.2, 0.3, n2), v_init=rng.uniform(0.0, 0.5, n2)) if bias else {}
    net = Network().add(
        SpikeSource("inp", n_in),
        LIF("h1", n1, tau_m=10e-3, tau_s=5e-3, refractory=1e-3, theta=rng.uniform(0.8, 1.2, n1), **extra),
        LIF("h2", n2, tau_m=rng.uniform(8e-3, 14e-3, n2), tau_s=rng.uniform(2e-3, 4e-3, n2), reset=-0.3, **extra2),
        Readout("out", n_o, tau_m=15e-3, tau_s=3e-3),
        LIF("ttfs", n_o, tau_m=8e-3, tau_s=2.5e-3))
    mask = rng.random((n_in, n1)) < 0.7
    net = net.connect("inp", "h1", rng.uniform(0.0, 1.2, mask.sum()), connectivity=mask,
                      delays=Delays(axonal=rng.uniform(0, 2e-3, n_in), dendritic=rng.uniform(0, 2e-3, n1),
                                    synaptic=rng.uniform(0, 5e-3, mask.sum())))
    net = net.connect("h1", "h1", rng.uniform(-0.3, 0.4, n1 * n1),
                      delays=Delays(axonal=rng.uniform(0, 1e-3, n1), dendritic=rng.uniform(0, 1e-3, n1),
                                    synaptic=rng.uniform(0, 3e-3, n1 * n1)))
    net = net.connect("h1", "h2", rng.uniform(-0.2, 1.0, n1 * n2),
                      delays=Delays(synaptic=rng.uniform(0, 4e-3, n1 * n2)))
    net = net.connect("h2", "h1", rng.uniform(-0.3, 0.5, n1 * n2), delays=Delays(dendritic=rng.uniform(0, 4e-3, n1)))
    net = net.connect("h2", "out", rng.uniform(-0.5, 1.0, n2 * n_o),
                      delays=Delays(synaptic=rng.uniform(0, 5e-3, n2 * n_o)))
    net = net.connect("h2", "ttfs", rng.uniform(-0.2, 1.2, n2 * n_o),
                      delays=Delays(synaptic=rng.uniform(0, 5e-3, n2 * n_o)))
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.035, rng.integers(1, 5))) for _ in range(n_in)]
                                     for _ in range(n_trials)])
    return net, inputs, rng.integers(0, n_o, n_trials)


def test_population_groups():
    from neurodelay.layered.recurrent import population_groups
    net, _, _ = recurrent_network(0)
    groups = population_groups(net)
    assert groups[0] == (("h1", "h2"), True) and sorted(groups[1:]) == [(("out",), False), (("ttfs",), False)]
    net, _, _ = layered_network(0)
    assert all(not rec for _, rec in population_groups(net))
    net, _, _ = random_network(1, True)
    assert population_groups(net)[0] == (("hid",), True)
    net, _, _ = recurrent_network(0)                      # with the sources: each its own group, first
    full = net.population_groups()
    assert full[0] == (("inp",), False) and [g for g in full if g[0] != ("inp",)] == population_groups(net)
    rank = {name: k for k, (names, _) in enumerate(full) for name in names}
    assert all(rank[p.pre] <= rank[p.post] for p in net.projections)   # every projection goes forward


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recurrent_forward_equals_event_engine(seed):
    """Self-recurrence and a cycle between two populations, all delay kinds, refractory and
    non-refractory neurons, a closed-form population, sampled voltages, a layer after the group:
    same spikes (bit for bit here: no arrivals tie) and voltages as the event engine."""
    net, inputs, _ = recurrent_network(seed)
    assert layered.supports(net) is None
    ref = events_simulate(net, inputs, DURATION, record=["h1", "out"], sample_times=SAMPLES)
    rec = layered.simulate(net, inputs, DURATION, record=["h1", "out"], sample_times=SAMPLES)
    assert rec.engine == "layered"
    for pop in ("h1", "h2", "ttfs"):
        assert len(ref.spikes(pop).time) > 0
    assert len(ref.time) > 3 * (net["h1"].n + net["h2"].n)           # the recurrence matters
    assert_same_spikes(ref, rec)
    for x, y in zip(_by_neuron(ref), _by_neuron(rec)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(rec.voltage, ref.voltage, rtol=0, atol=1e-12)
    # without the recurrent projections the spikes differ: the test sees the recurrence
    ff = Network().add(*net.populations)
    for p in net.projections:
        if p.name not in ("h1->h1", "h2->h1"):
            ff = ff.connect(p.pre, p.post, p.weight, connectivity=(p.pre_idx, p.post_idx), delays=p.delays)
    assert len(layered.simulate(ff, inputs, DURATION).time) != len(rec.time)


def test_recurrent_bias_initial_state_threads_and_ties():
    """Bias currents and a nonzero initial state; 1 and 2 threads give the same record; zero
    recurrent delays (arrivals at the time of the spike, many ties, one time bucket) agree too,
    and so do their gradients."""
    net, inputs, _ = recurrent_network(3, n_trials=4, bias=True)
    ref = events_simulate(net, inputs, DURATION, record="h2", sample_times=SAMPLES)
    recs = [layered.simulate(net, inputs, DURATION, record="h2", sample_times=SAMPLES, n_threads=t) for t in (1, 2)]
    assert len(ref.spikes("h1").time) > 2 * net["h1"].n
    assert_same_spikes(ref, recs[0])
    np.testing.assert_allclose(recs[0].voltage, ref.voltage, rtol=0, atol=1e-12)
    for x, y in zip(_by_neuron(recs[0]), _by_neuron(recs[1])):
        np.testing.assert_array_equal(x, y)
    # zero and equal recurrent delays: simultaneous arrivals, applied in synapse order
    n = 8
    base = (Network().add(SpikeSource("inp", 4), LIF("hid", n, tau_m=10e-3, tau_s=3e-3, refractory=0.5e-3))
            .connect("inp", "hid", np.linspace(0.5, 1.6, 4 * n)))
    tie = base.connect("hid", "hid", np.tile(np.linspace(-0.05, 0.12, n), n))
    # every pair twice (two synapses per pair: one spike adds two arrivals to a neuron), delays 0 and 1 ms
    pre, post = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
    same = base.connect("hid", "hid", np.r_[np.tile(np.linspace(-0.05, 0.12, n), n), np.full(n * n, 0.02)],
                        connectivity=(np.r_[pre, pre], np.r_[post, post]),
                        delays=Delays(synaptic=np.r_[np.zeros(n * n), np.full(n * n, 1e-3)]))
    trains = SpikeTrains.from_lists([[np.array([1e-3, 4e-3, 9e-3])] * 4, [np.array([2e-3, 2e-3 + 1e-9])] * 4])
    loss = losses.FirstSpikeMSE("hid", margin=2e-3)
    for net in (tie, same):
        ref, rec = events_simulate(net, trains, 0.03), layered.simulate(net, trains, 0.03)
        assert len(ref.time) > 2 * n
        assert_same_spikes(ref, rec)
        _, sources = loss.value_and_sources(ref, np.array([1, 5]))
        want = events_adjoint(ref, sources, time_constants=True)
        got = layered.adjoint(ref, sources, time_constants=True)
        assert np.any(want.weight[ref.flat.out_proj == 1] != 0)
        for field in ("weight", "delay", "tau_m", "theta", "input_time"):
            assert_close_grad(getattr(got, field), getattr(want, field), field)


REC_LOSSES = {
    "first_spike_ce": lambda: losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3),
    "max_voltage_ce": lambda: losses.MaxVoltageCrossEntropy("out"),
    "combined": lambda: (losses.FirstSpikeMSE("ttfs", margin=2e-3)
                         + 0.5 * losses.WeightedIntegralCrossEntropy("out", tau_weight=20e-3)
                         + 0.01 * losses.SpikeCountRegulariser("h1", target=2.0, strength=1.0)),
}


@pytest.mark.parametrize("loss_name", sorted(REC_LOSSES))
def test_recurrent_gradients_equal_event_engine(loss_name):
    """The layered reverse pass of a recurrent group (neurons walked back together, pausing at the
    group's spikes) against the event engine's adjoint: every parameter kind, spike and input
    times, on 1 and 2 threads (bit-identical), on the records of both engines."""
    net, inputs, labels = recurrent_network(1, n_trials=3)
    loss = REC_LOSSES[loss_name]()
    ref_rec = events_simulate(net, inputs, DURATION)
    values, sources = loss.value_and_sources(ref_rec, labels)
    ref = events_adjoint(ref_rec, sources, time_constants=True)
    got = [layered.adjoint(ref_rec, sources, time_constants=True, n_threads=t) for t in (1, 2)]
    assert np.any(ref.weight[ref_rec.flat.out_proj == 1] != 0)            # h1 -> h1 matters
    for field in ("weight", "delay", "tau_m", "tau_s", "theta", "spike_time", "input_time"):
        assert_close_grad(getattr(got[0], field), getattr(ref, field), field)
        np.testing.assert_array_equal(getattr(got[0], field), getattr(got[1], field))
    assert got[0].worst_threshold_error < 1e-12
    keys = [(p.name, "weight") for p in net.projections] + [
        ("inp->h1", "axonal"), ("inp->h1", "dendritic"), ("h1->h1", "synaptic"), ("h1->h1", "axonal"),
        ("h2->h1", "dendritic"), ("h1->h2", "synaptic")] + [
        (pop, kind) for pop in ("h1", "h2", "ttfs") for kind in ("tau_m", "tau_s", "theta")]
    assert layered.fused_loss_and_grad(net, inputs, DURATION, loss, labels) is None   # the unfused path
    a = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="events")
    b = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="layered")
    assert b.record.engine == "layered" and b.loss == pytest.approx(a.loss, rel=1e-12)
    for key in keys:
        assert_close_grad(b.grads[key], a.grads[key], str(key))


@pytest.mark.parametrize("refractory", [0.0, 1e-3])
def test_recurrent_factored_reverse(refractory, monkeypatch):
    """A recurrent group of one tau_m and one tau_s that the loss reaches only through its spike
    times takes the factored reverse pass (coefficients between its spikes, no exponential per
    arrival): the same gradients as the event engine's adjoint and as the exact group pass
    (FACTORED_REVERSE off), which computes them another way (not bit for bit), on 1 and 2 threads
    (bit-identical); zero recurrent delays (arrivals at the spike's time) included."""
    rng = np.random.default_rng(7)
    n_in, n_h, n_o = 8, 14, 3
    net = Network().add(SpikeSource("inp", n_in),
                        LIF("hid", n_h, tau_m=10e-3, tau_s=4e-3, refractory=refractory),
                        Readout("out", n_o, tau_m=15e-3, tau_s=3e-3), LIF("ttfs", n_o, tau_m=8e-3, tau_s=2.5e-3))
    net = net.connect("inp", "hid", rng.uniform(0.0, 1.3, n_in * n_h),
                      delays=Delays(axonal=rng.uniform(0, 2e-3, n_in), synaptic=rng.uniform(0, 4e-3, n_in * n_h)))
    d_rec = np.where(rng.random(n_h * n_h) < 0.2, 0.0, rng.uniform(0, 3e-3, n_h * n_h))
    net = net.connect("hid", "hid", rng.uniform(-0.25, 0.35, n_h * n_h),
                      delays=Delays(dendritic=rng.uniform(0, 1e-3, n_h), synaptic=d_rec))
    net = net.connect("hid", "out", rng.uniform(-0.5, 1.0, n_h * n_o),
                      delays=Delays(synaptic=rng.uniform(0, 5e-3, n_h * n_o)))
    net = net.connect("hid", "ttfs", rng.uniform(-0.2, 1.2, n_h * n_o),
                      delays=Delays(synaptic=rng.uniform(0, 5e-3, n_h * n_o)))
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.035, rng.integers(1, 5))) for _ in range(n_in)]
                                     for _ in range(3)])
    labels = rng.integers(0, n_o, 3)
    loss = losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3) + 0.5 * losses.WeightedIntegralCrossEntropy("out")
    record = events_simulate(net, inputs, DURATION)
    assert len(record.spikes("hid").time) > 3 * n_h
    _, sources = loss.value_and_sources(record, labels)
    ref = events_adjoint(record, sources)
    assert layered.plan.FACTORED_REVERSE
    got = [layered.adjoint(record, sources, n_threads=t) for t in (1, 2)]
    monkeypatch.setattr(layered.plan, "FACTORED_REVERSE", False)
    exact = layered.adjoint(record, sources)
    assert np.any(ref.weight[record.flat.out_proj == 1] != 0)            # hid -> hid matters
    assert np.any(got[0].weight != exact.weight)                          # another computation
    for field in ("weight", "delay", "theta", "spike_time", "input_time"):
        assert_close_grad(getattr(got[0], field), getattr(ref, field), field)
        assert_close_grad(getattr(got[0], field), getattr(exact, field), field)
        np.testing.assert_array_equal(getattr(got[0], field), getattr(got[1], field))
    assert got[0].worst_threshold_error < 1e-12
    if refractory > 0.0:
        # self-synapses whose delay equals the refractory period: arrivals at the ends of refractoriness
        n = 6
        diag = np.eye(n, dtype=bool).ravel()
        tie = (Network().add(SpikeSource("inp", 4), LIF("hid", n, tau_m=10e-3, tau_s=3e-3, refractory=refractory),
                             Readout("out", 2, tau_m=15e-3, tau_s=3e-3))
               .connect("inp", "hid", np.linspace(0.8, 1.8, 4 * n))
               .connect("hid", "hid", np.where(diag, 0.4, np.tile(np.linspace(-0.1, 0.15, n), n)),
                        delays=Delays(synaptic=np.where(diag, refractory, 0.5e-3)))
               .connect("hid", "out", np.linspace(-0.5, 1.0, 2 * n)))
        trains = SpikeTrains.from_lists([[np.array([1e-3, 4e-3, 9e-3])] * 4, [np.array([2e-3, 6e-3])] * 4])
        rec = events_simulate(tie, trains, 0.03)
        assert len(rec.time) > 2 * n
        _, sources = losses.WeightedIntegralCrossEntropy("out").value_and_sources(rec, np.array([0, 1]))
        want = events_adjoint(rec, sources)
        monkeypatch.setattr(layered.plan, "FACTORED_REVERSE", True)
        have = layered.adjoint(rec, sources)
        assert np.any(want.weight[rec.flat.out_proj == 1][diag] != 0)
        for field in ("weight", "delay", "theta", "input_time"):
            assert_close_grad(getattr(have, field), getattr(want, field), field)


def test_recurrent_gradients_and_runaway():
    """The finite-difference-checked recurrent network of neurodelay.gradcheck through loss_and_grad
    on the layered engine equals the event engine; runaway activity is stopped."""
    net, inputs, labels = random_network(1, True, n_trials=2)
    loss = losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3)
    keys = [("inp->hid", "weight"), ("hid->hid", "weight"), ("hid->hid", "synaptic"), ("hid", "tau_m"),
            ("hid", "theta")]
    ref = gradients.loss_and_grad(net, inputs, 0.05, loss, labels, keys, engine="events")
    got = gradients.loss_and_grad(net, inputs, 0.05, loss, labels, keys, engine="layered")
    assert got.record.engine == "layered"
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert np.any(ref.grads[("hid->hid", "weight")] != 0)
    for key in keys:
        assert_close_grad(got.grads[key], ref.grads[key], str(key))
    assert layered.supports("not a network").startswith("expected a Network")
    loud = (Network().add(SpikeSource("inp", 2), LIF("hid", 5, tau_m=10e-3, tau_s=3e-3))
            .connect("inp", "hid", 3.0).connect("hid", "hid", 2.0, delays=Delays(synaptic=0.2e-3)))
    with pytest.raises(RuntimeError, match="max_spikes_per_trial"):
        layered.simulate(loud, SpikeTrains.from_lists([[np.array([1e-3])] * 2]), 1.0, max_spikes_per_trial=500)


def test_edge_cases_and_errors():
    net, inputs, labels = layered_network(0, n_trials=2)
    # a trial without input spikes, and a record that does not fit the network
    empty = {name: SpikeTrains(np.zeros(0, int), np.zeros(0, int), np.zeros(0), 2, net[name].n)
             for name in ("inp", "aux")}
    rec = layered.simulate(net, empty, DURATION, record="out", sample_times=[0.01])
    assert len(rec.time) == 0 and np.all(rec.voltage == 0)
    record = layered.simulate(net, inputs, DURATION)
    _, sources = losses.FirstSpikeMSE("ttfs", margin=2e-3).value_and_sources(record, labels)
    moved = type(record)(record.network, record.flat, record.inputs, record.trial, record.neuron,
                         record.time + 1e-4, record.i_minus_theta, record.duration)
    with pytest.raises(RecordMismatchError):
        layered.adjoint(moved, sources)
    with pytest.raises(RuntimeError, match="max_spikes_per_trial"):
        layered.simulate(net, inputs, DURATION, max_spikes_per_trial=3)
    with pytest.raises(ValueError, match="sample_times"):
        layered.simulate(net, inputs, DURATION, record="out")


# ------------------------------------------------- fused forward -> loss -> backward ----
@pytest.mark.parametrize("with_tau", [False, True], ids=["without_tau", "with_tau"])
@pytest.mark.parametrize("loss_name", ["combined", "max_voltage_ce", "first_spike_mse"])
def test_fused_loss_and_grad(loss_name, with_tau, monkeypatch):
    """loss_and_grad on the layered engine ("layered" and "auto") runs forward, loss and reverse pass
    fused per trial: the same record bit for bit and the same loss and gradients as the unfused path
    (simulate, loss, adjoint), the event engine's gradients within 1e-9, identical on 1 and 2 threads."""
    net, inputs, labels = layered_network(1, n_trials=4)
    loss = LOSSES[loss_name]()
    keys = _keys(net, with_tau)
    real, used = layered.engine.fused_loss_and_grad, []

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        used.append(out is not None)
        return out
    monkeypatch.setattr(layered.engine, "fused_loss_and_grad", spy)
    fused = [gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine=e, n_threads=t)
             for e, t in (("layered", 1), ("auto", 2))]
    assert used == [True, True]
    unfused = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys,
                                      engine=layered.LayeredEngine(fused=False))
    assert used == [True, True]          # fused=False: not even tried
    ref = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="events")
    assert len(ref.record.time) > 2 * net["h1"].n
    for got in fused:
        for field in ("trial", "neuron", "time", "i_minus_theta"):
            np.testing.assert_array_equal(getattr(got.record, field), getattr(unfused.record, field))
        assert got.record.engine == "layered" and got.record.n_trials == 4
        assert got.loss == pytest.approx(unfused.loss, rel=1e-14)
        assert got.loss == pytest.approx(ref.loss, rel=1e-12)
        for key in keys:
            assert_close_grad(got.grads[key], unfused.grads[key], str(key))
            assert_close_grad(got.grads[key], ref.grads[key], str(key))
    for key in keys:
        np.testing.assert_array_equal(fused[0].grads[key], fused[1].grads[key])


def test_packed_arrivals_narrow_and_wide(monkeypatch):
    """The kept arrivals' packing: uint32 while (q - q0, k) fit its fields, else uint64; both round-trip
    at the fields' limits, and the fused pass on uint64 arrivals gives the uint32 run's results bit for bit."""
    from numba import njit

    from neurodelay.layered import _kernels as K
    assert K.packing(700, 8000) is np.uint32
    assert K.packing(2 ** 14, 2 ** 18) is np.uint32
    assert K.packing(2 ** 14 + 1, 10) is np.uint64 and K.packing(10, 2 ** 18 + 1) is np.uint64
    with pytest.raises(ValueError, match="too many arrivals"):
        K.packing(2 ** 33, 10)

    @njit
    def round_trip(arr, q, k, q0):
        arr[0] = K.pack_arrival(q, k, q0, K.k_bits(arr))
        return K.unpack_arrival(arr[0], q0, K.k_bits(arr))
    for dtype, q_max, k_max in ((np.uint32, 2 ** 14 - 1, 2 ** 18 - 1), (np.uint64, 2 ** 32 - 1, 2 ** 32 - 1)):
        for q_rel, k in ((0, 0), (q_max, k_max), (q_max, 0), (0, k_max), (5, 7)):
            assert round_trip(np.zeros(1, dtype), 1000 + q_rel, k, 1000) == (1000 + q_rel, k)
    net, inputs, labels = layered_network(3, n_trials=2)
    loss = losses.FirstSpikeMSE("ttfs", margin=2e-3) + losses.WeightedIntegralCrossEntropy("out", 10e-3)
    narrow = layered.fused_loss_and_grad(net, inputs, DURATION, loss, labels)
    monkeypatch.setattr(K, "packing", lambda fan_in, n_sources: np.uint64)
    wide = layered.fused_loss_and_grad(net, inputs, DURATION, loss, labels)
    np.testing.assert_array_equal(wide[0], narrow[0])
    np.testing.assert_array_equal(wide[2].time, narrow[2].time)
    for field in ("weight", "delay", "theta", "spike_time", "input_time"):
        np.testing.assert_array_equal(getattr(wide[1], field), getattr(narrow[1], field))


def test_recurrent_sorted_arrivals_match_gather_sorted():
    """A recurrent group's input arrivals (_recurrent_kernels._sorted_arrivals, packed in 32 or 64 bits
    while they are placed) come in gather_sorted's order, (time, synapse, spike), bit for bit: ties
    between synapses (two with one source and one delay), zero delays, arrivals after the end left out."""
    from neurodelay.layered import _kernels as K
    from neurodelay.layered import _recurrent_kernels as RK
    rng = np.random.default_rng(11)
    n_pre, t_end = 50, 0.3
    trains = [np.sort(rng.uniform(0.0, 0.35, rng.integers(0, 12))) for _ in range(n_pre)]
    trains[3], trains[7] = np.sort(np.append(trains[3], [0.05, 0.2])), np.sort(np.append(trains[7], 0.1))
    counts = np.array([len(t) for t in trains] + [0])
    s_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    s_end = (s_start + counts).astype(np.int64)
    s_time = np.concatenate(trains)
    in_pre = np.concatenate([rng.permutation(n_pre), [3, 3, 7]]).astype(np.int64)
    in_d = np.concatenate([rng.uniform(0.0, 0.05, n_pre), [0.01, 0.01, 0.0]])
    in_ptr = np.array([0] * (n_pre + 1) + [len(in_pre)], np.int64)
    j = n_pre
    bound = K.incoming_count(j, in_ptr, in_pre, s_start, s_end)
    ref_t, ref_q, ref_k = np.zeros(bound), np.zeros(bound, np.uint32), np.zeros(bound, np.int64)
    m = K.gather_sorted(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, np.arange(len(s_time)), t_end, True,
                        np.zeros(2 * bound + 1, np.int64), ref_t, ref_q, ref_k, 2)
    assert 0 < m < bound                                       # some arrivals come after the end
    assert np.any(np.diff(ref_t[:m]) == 0.0)                   # ties between synapses
    for dtype in (np.uint32, np.uint64):
        arr_t, arr_q, arr_k = np.zeros(bound), np.zeros(bound, np.uint32), np.zeros(bound, np.uint32)
        got = RK._sorted_arrivals(j, in_ptr, in_pre, in_d, s_start, s_end, s_time, t_end, 2 * bound,
                                  np.zeros(2 * bound + 1, np.uint32), np.zeros(len(in_pre) + bound, np.uint32),
                                  np.zeros(bound, dtype), arr_t, arr_q, arr_k)
        assert got == m
        np.testing.assert_array_equal(arr_t[:m], ref_t[:m])
        np.testing.assert_array_equal(arr_q[:m], ref_q[:m])
        np.testing.assert_array_equal(arr_k[:m], ref_k[:m])


def test_fused_result_fields_one_trial_and_fallbacks(monkeypatch):
    """fused_loss_and_grad's AdjointResult (per-spike and per-input times too) equals the adjoint's;
    one trial on two threads (chunks of neurons in parallel) equals one thread; losses that do not
    declare themselves separable, networks with a bias, and bad labels take the unfused path."""
    net, inputs, labels = layered_network(2, n_trials=3)
    loss = losses.FirstSpikeMSE("ttfs", margin=2e-3) + losses.WeightedIntegralCrossEntropy("out", 10e-3)
    values, result, record = layered.fused_loss_and_grad(net, inputs, DURATION, loss, labels, time_constants=True)
    ref_values, sources = loss.value_and_sources(record, labels)
    ref = events_adjoint(record, sources, time_constants=True)
    np.testing.assert_allclose(values, ref_values, rtol=1e-14)
    for field in ("weight", "delay", "tau_m", "tau_s", "theta", "spike_time", "input_time"):
        assert_close_grad(getattr(result, field), getattr(ref, field), field)
    assert result.worst_threshold_error < 1e-12 and result.n_trials == 3
    first = {name: SpikeTrains(s.trial[s.trial == 0], s.neuron[s.trial == 0], s.time[s.trial == 0], 1, s.n_neurons)
             for name, s in inputs.items()}
    one = [layered.fused_loss_and_grad(net, first, DURATION, loss, labels[:1], n_threads=t) for t in (1, 2)]
    for field in ("weight", "delay", "theta", "spike_time", "input_time"):
        np.testing.assert_array_equal(getattr(one[0][1], field), getattr(one[1][1], field))
    np.testing.assert_array_equal(one[0][2].time, record.time[record.trial == 0])

    class Coupled(losses.Loss):          # a user loss that says nothing about separability
        def value_and_sources(self, record, labels=None):
            return loss.value_and_sources(record, labels)
    assert layered.fused_loss_and_grad(net, inputs, DURATION, Coupled(), labels) is None
    assert not (Coupled() + loss).separable and (2.0 * loss).separable
    assert layered.fused_loss_and_grad(net, inputs, DURATION, loss, labels[:2]) is None
    biased = net.with_population("h2", bias=np.full(net["h2"].n, 0.1))
    assert layered.fused_loss_and_grad(biased, inputs, DURATION, loss, labels) is None
    keys = [("inp->h1", "weight"), ("h2->ttfs", "synaptic")]
    got = gradients.loss_and_grad(net, inputs, DURATION, Coupled(), labels, keys, engine="layered")
    want = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="layered")
    for key in keys:
        np.testing.assert_array_equal(got.grads[key], want.grads[key])


def test_readout_arrivals_sorted_stably():
    """incoming_arrivals (the readout losses' arrivals, sorted by a bucket sort) against a direct
    construction: every arrival t_spike + d <= duration of every (trial, readout), sorted by time,
    ties in (spike, synapse) order, with many exactly simultaneous arrivals (spike times and delays
    on a grid) from the inputs and from a LIF layer."""
    from neurodelay.events.readout import incoming_arrivals
    rng = np.random.default_rng(5)
    net = Network().add(SpikeSource("inp", 8), LIF("h", 6, tau_m=10e-3, tau_s=5e-3), Readout("out", 3))
    net = net.connect("inp", "h", rng.uniform(0.2, 1.0, 48), delays=Delays(synaptic=rng.uniform(0, 2e-3, 48)))
    net = net.connect("inp", "out", rng.normal(0, 1, 24), delays=Delays(synaptic=rng.choice([0, 1e-3, 2e-3], 24)))
    net = net.connect("h", "out", rng.normal(0, 1, 18), delays=Delays(synaptic=rng.choice([0, 1e-3], 18)))
    inputs = SpikeTrains.from_lists([[np.unique(rng.choice(np.arange(20) * 1e-3, 4)) for _ in range(8)]
                                     for _ in range(2)])
    record = events_simulate(net, inputs, 0.02)
    flat = record.flat
    off = flat.offsets["out"]
    ptr, time, weight = incoming_arrivals(record, np.arange(off, off + 3))
    n_ties = 0
    for k in range(2):
        spikes = [(t, i) for t, i, tr in zip(record.inputs.time, record.inputs.neuron, record.inputs.trial) if tr == k]
        spikes += [(t, i) for t, i, tr in zip(record.time, record.neuron, record.trial) if tr == k]
        for j in range(3):
            rows = [(t + flat.out_d[c], flat.out_w[c]) for t, i in spikes
                    for c in range(flat.out_ptr[i], flat.out_ptr[i + 1])
                    if flat.out_post[c] == off + j and t + flat.out_d[c] <= 0.02]
            want_t = np.array([r[0] for r in rows])
            order = np.argsort(want_t, kind="stable")
            g = k * 3 + j
            np.testing.assert_array_equal(time[ptr[g]: ptr[g + 1]], want_t[order])
            np.testing.assert_array_equal(weight[ptr[g]: ptr[g + 1]], np.array([r[1] for r in rows])[order])
            n_ties += int(np.sum(np.diff(want_t[order]) == 0))
    assert len(record.time) > 0 and n_ties > 10


def dense_recurrent_network(seed: int, n_in: int = 40, n_hid: int = 24, n_trials: int = 2):
    """inp (n_in, ~100 Hz for 50 ms) -> hid (n_hid LIF of one tau_m and one tau_s, 1 ms refractory, bias
    currents on half of them, all-to-all recurrence with delays up to 6 ms) -> out (3 readouts): ~200 input
    arrivals per neuron, some stretches far below theta and others near it, so that the recurrent
    group's scans add some blocks of input arrivals at once and take others arrival by arrival."""
    rng = np.random.default_rng(seed)
    bias = np.where(np.arange(n_hid) % 2 == 0, rng.uniform(0.0, 0.5, n_hid), 0.0)
    net = Network().add(SpikeSource("inp", n_in),
                        LIF("hid", n_hid, tau_m=12e-3, tau_s=4e-3, refractory=1e-3, bias=bias),
                        Readout("out", 3, tau_m=15e-3, tau_s=3e-3))
    net = net.connect("inp", "hid", rng.normal(0.15, 0.3, n_in * n_hid),
                      delays=Delays(synaptic=rng.uniform(0, 8e-3, n_in * n_hid)))
    net = net.connect("hid", "hid", rng.normal(-0.05, 0.3, n_hid * n_hid),
                      delays=Delays(synaptic=rng.uniform(0, 6e-3, n_hid * n_hid)))
    net = net.connect("hid", "out", rng.uniform(-0.3, 0.6, 3 * n_hid))
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.05, rng.poisson(5.0))) for _ in range(n_in)]
                                     for _ in range(n_trials)])
    return net, inputs, rng.integers(0, 3, n_trials)


@pytest.mark.parametrize("block", [2, 16])
def test_recurrent_blocks_equal_event_engine(block, monkeypatch):
    """Blocks of input arrivals in a recurrent group's scans (recurrent.BLOCK_ARRIVALS; sums with
    factored exponentials where V provably stays below theta): the event engine's spike counts, spike
    times and sampled voltages within 1e-12, gradients within 1e-9 relative; blocks were taken (none
    with BLOCK_ARRIVALS = 0)."""
    from neurodelay.layered import _recurrent_kernels as RK
    from neurodelay.layered import recurrent
    net, inputs, labels = dense_recurrent_network(4)
    taken = []
    original = RK.forward_group

    def counted(*args):
        out = original(*args)
        taken.append(out[4])
        return out

    monkeypatch.setattr(RK, "forward_group", counted)
    monkeypatch.setattr(recurrent, "BLOCK_ARRIVALS", block)
    samples = np.array([0.0123, 0.0377])
    ref = events_simulate(net, inputs, DURATION, record=["hid", "out"], sample_times=samples)
    rec = layered.simulate(net, inputs, DURATION, record=["hid", "out"], sample_times=samples, n_threads=1)
    assert len(ref.time) > 4 * net["hid"].n * inputs.n_trials
    assert sum(taken) > 20 * inputs.n_trials                  # the comparison sees blocks
    assert_same_spikes(ref, rec)
    np.testing.assert_allclose(rec.voltage, ref.voltage, rtol=0, atol=1e-12)
    loss = losses.WeightedIntegralCrossEntropy("out", tau_weight=20e-3)
    keys = [(p.name, "weight") for p in net.projections] + [("inp->hid", "synaptic"), ("hid->hid", "synaptic")]
    want = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="events")
    got = gradients.loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="layered")
    assert got.record.engine == "layered"
    for key in keys:
        assert_close_grad(got.grads[key], want.grads[key], str(key))
    monkeypatch.setattr(recurrent, "BLOCK_ARRIVALS", 0)
    taken.clear()
    plain = layered.simulate(net, inputs, DURATION, record=["hid", "out"], sample_times=samples, n_threads=1)
    assert taken == [0] * inputs.n_trials
    assert_same_spikes(ref, plain)
