"""Invariances every engine keeps: delay-kind equivalences, determinism across threads, property checks.

Exact engines must keep the delay-kind equivalences bit for bit; the others to their time tolerance.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from neurodelay.delays import Delays
from neurodelay.record import AdjointSources
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.spikes import SpikeTrains


def _poisson_inputs(rng, n_trials, n_in, rate, duration):
    trains = [[np.sort(rng.uniform(0, duration, rng.poisson(rate * duration))) for _ in range(n_in)]
              for _ in range(n_trials)]
    return SpikeTrains.from_lists(trains, n_in)


def _layers(seed, hidden_delays: Delays, out_delays: Delays, n_in=12, n_hid=8, n_out=4):
    rng = np.random.default_rng(seed)
    net = Network().add(SpikeSource("inp", n_in), LIF("hid", n_hid, tau_m=10e-3, tau_s=2.5e-3),
                        LIF("out", n_out, tau_m=12e-3, tau_s=4e-3, refractory=1e-3))
    net = net.connect("inp", "hid", weight=rng.normal(0.5, 0.4, n_in * n_hid), delays=hidden_delays)
    return net.connect("hid", "out", weight=rng.normal(0.8, 0.4, n_hid * n_out), delays=out_delays)


def _spikes(rec):
    return [(p, rec.spikes(p)) for p in ("hid", "out")]


def _assert_same_spikes(engine, a, b, what=""):
    """Bit-identical spikes on an exact engine, else the same spikes to the engine's time tolerance."""
    np.testing.assert_array_equal(a.trial, b.trial, err_msg=what)
    np.testing.assert_array_equal(a.neuron, b.neuron, err_msg=what)
    if engine.exact:
        np.testing.assert_array_equal(a.time, b.time, err_msg=what)
    else:
        np.testing.assert_allclose(a.time, b.time, rtol=0, atol=engine.time_tolerance, err_msg=what)


@pytest.mark.parametrize("kind", ["axonal", "dendritic"])
def test_neuron_delay_equals_synaptic_delay(engine, kind):
    n_in, n_hid, n_out = 12, 8, 4
    rng = np.random.default_rng(3)
    per_pre = {"axonal": (rng.uniform(0, 5e-3, n_in), rng.uniform(0, 5e-3, n_hid))}
    per_post = {"dendritic": (rng.uniform(0, 5e-3, n_hid), rng.uniform(0, 5e-3, n_out))}
    values = (per_pre | per_post)[kind]
    a = _layers(1, Delays(**{kind: values[0]}), Delays(**{kind: values[1]}))
    syn = []
    for k, proj in enumerate(a.projections):
        idx = proj.pre_idx if kind == "axonal" else proj.post_idx
        syn.append(Delays(synaptic=values[k][idx]))
    b = _layers(1, *syn)
    inputs = _poisson_inputs(np.random.default_rng(5), 4, n_in, 80.0, 0.2)
    ra, rb = engine.simulate(a, inputs, 0.2), engine.simulate(b, inputs, 0.2)
    assert len(ra.time) > 20, "the network must be active for the comparison to mean something"
    for (pop, sa), (_, sb) in zip(_spikes(ra), _spikes(rb)):
        _assert_same_spikes(engine, sa, sb, pop)


def test_all_three_kinds_add_up(engine):
    rng = np.random.default_rng(8)
    a, b, s = rng.uniform(0, 2e-3, 12), rng.uniform(0, 2e-3, 8), rng.uniform(0, 2e-3, 96)
    mixed = _layers(2, Delays(a, b, s), Delays(synaptic=np.full(32, 1e-3)))
    proj = mixed.projection("inp", "hid")
    summed = _layers(2, Delays(synaptic=a[proj.pre_idx] + b[proj.post_idx] + s),
                     Delays(synaptic=np.full(32, 1e-3)))
    inputs = _poisson_inputs(np.random.default_rng(9), 3, 12, 80.0, 0.2)
    r1, r2 = engine.simulate(mixed, inputs, 0.2), engine.simulate(summed, inputs, 0.2)
    assert len(r1.time) > 20
    for (pop, sa), (_, sb) in zip(_spikes(r1), _spikes(r2)):
        _assert_same_spikes(engine, sa, sb, pop)


@pytest.mark.all_engines
def test_trials_are_independent_and_thread_count_irrelevant(engine):
    """Bit-identical records and adjoint gradients on 1, 2 and 3 threads; a trial alone gives what it gives
    in the batch (every engine)."""
    net = _layers(4, Delays(synaptic=np.random.default_rng(0).uniform(0, 5e-3, 96)), Delays())
    n_trials, threads = (6, (1, 2, 3)) if engine.exact else (2, (1, 2))   # fewer on the slow engines
    inputs = _poisson_inputs(np.random.default_rng(1), n_trials, 12, 80.0, 0.2)
    runs = {t: engine.simulate(net, inputs, 0.2, n_threads=t) for t in threads}
    batch = runs[2]
    assert len(batch.time) > 20
    for n_threads, rec in runs.items():
        for field in ("trial", "neuron", "time", "i_minus_theta"):
            np.testing.assert_array_equal(getattr(rec, field), getattr(batch, field), err_msg=f"{n_threads} threads")
    for k in (0, n_trials - 1):
        alone = engine.simulate(net, inputs.select_trials([k]), 0.2)
        np.testing.assert_array_equal(alone.time, batch.time[batch.trial == k])
    # the adjoint of this engine, on the same record, for any number of threads
    sources = AdjointSources(spike_time=np.where(np.isin(np.arange(len(batch.time)),
                                                         _first_spike_index(batch, "out")), 1.0, 0.0))
    # (an inexact engine's record misses theta a little at its spikes: replay it anyway)
    tolerance = 1e-6 if engine.exact else np.inf
    grads = [engine.engine.adjoint(batch, sources, time_constants=True, n_threads=t, record_tolerance=tolerance)
             for t in threads]
    assert np.any(grads[0].weight != 0)
    for g in grads[1:]:
        for field in ("weight", "delay", "tau_m", "tau_s", "theta", "spike_time", "input_time"):
            np.testing.assert_array_equal(getattr(g, field), getattr(grads[0], field), err_msg=field)


def _first_spike_index(rec, population):
    """Record indices of the first spike of every neuron of `population` in every trial."""
    off, n = rec.flat.offsets[population], rec.flat.sizes[population]
    mine = np.flatnonzero((rec.neuron >= off) & (rec.neuron < off + n))
    _, first = np.unique(np.stack([rec.trial[mine], rec.neuron[mine]]), axis=1, return_index=True)
    return mine[first]


# ---- property-based checks on random small (possibly recurrent) networks -------------------
# (the engine fixture is the same for every example, so sharing it across examples is intended)
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]

@st.composite
def random_networks(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    n_in, n_hid = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    recurrent = draw(st.booleans())
    refractory = draw(st.sampled_from([0.0, 0.5e-3, 2e-3]))
    tau_m = draw(st.floats(3e-3, 30e-3))
    ratio = draw(st.sampled_from([0.25, 0.5, 0.8, 1.5]))
    rng = np.random.default_rng(seed)
    net = Network().add(SpikeSource("inp", n_in),
                        LIF("hid", n_hid, tau_m=tau_m, tau_s=ratio * tau_m, refractory=refractory,
                            theta=rng.uniform(0.5, 1.5, n_hid)))
    net = net.connect("inp", "hid", weight=rng.uniform(-0.5, 3.0, n_in * n_hid),
                      delays=Delays(axonal=rng.uniform(0, 3e-3, n_in), synaptic=rng.uniform(0, 3e-3, n_in * n_hid)))
    if recurrent:
        mask = rng.random((n_hid, n_hid)) < 0.5
        net = net.connect("hid", "hid", weight=rng.uniform(-1.0, 1.0, mask.sum()), connectivity=mask,
                          delays=Delays(dendritic=rng.uniform(0.2e-3, 3e-3, n_hid)))
    inputs = _poisson_inputs(rng, 2, n_in, 200.0, 0.05)
    return net, inputs, refractory


@settings(max_examples=60, deadline=None, suppress_health_check=_SUPPRESSED)
@given(random_networks())
def test_spike_trains_are_ordered_and_respect_refractoriness(engine, case):
    net, inputs, refractory = case
    assume(engine.supports(net))          # an engine for some networks only: its networks among the draws
    rec = engine.simulate(net, inputs, 0.05, n_threads=1)
    assert np.all(np.diff(rec.trial) >= 0)
    sp = rec.spikes("hid")
    for k in range(inputs.n_trials):
        assert np.all(np.diff(sp.time[sp.trial == k]) >= 0), "record is in time order within a trial"
        for i in range(sp.n_neurons):
            t = sp.time[(sp.trial == k) & (sp.neuron == i)]
            assert np.all(np.diff(t) >= refractory * (1 - 1e-12)), "inter-spike interval below refractory"
            if refractory == 0.0:
                assert np.all(np.diff(t) > 0)
    assert np.all(rec.i_minus_theta >= 0), "a spike is a crossing from below: dV/dt >= 0"


@settings(max_examples=40, deadline=None, suppress_health_check=_SUPPRESSED)
@given(random_networks(), st.integers(0, 2**31 - 1))
def test_synapse_order_is_irrelevant(engine, case, perm_seed):
    net, inputs, _ = case
    assume(engine.supports(net))
    rng = np.random.default_rng(perm_seed)
    shuffled = Network(net.populations)
    for proj in net.projections:
        p = rng.permutation(proj.n_syn)
        d = proj.delays
        syn = None if d.synaptic is None else d.synaptic[p]
        shuffled = shuffled.connect(proj.pre, proj.post, weight=proj.weight[p],
                                    connectivity=(proj.pre_idx[p], proj.post_idx[p]),
                                    delays=Delays(d.axonal, d.dendritic, syn))
    r1, r2 = engine.simulate(net, inputs, 0.05, n_threads=1), engine.simulate(shuffled, inputs, 0.05, n_threads=1)
    assert len(r1.time) == len(r2.time)
    np.testing.assert_array_equal(r1.neuron, r2.neuron)
    np.testing.assert_allclose(r1.time, r2.time, rtol=0, atol=1e-12)
