"""Bias current and initial state: validation, per-trial initial states, exact gradients.

Closed forms on every engine: tests/conformance/test_conformance_state.py. Here the event
engine's EventProp adjoint against central finite differences for dL/dbias, dL/dv_init,
dL/di_init (description and per trial), and the other kinds' gradients when a bias and an
initial state are present (the tau_m gradient and every dV/dt at a spike gain the bias).
"""

import numpy as np
import pytest

from neurodelay import losses
from neurodelay import simulate
from neurodelay.gradcheck import finite_differences, random_network
from neurodelay.gradients import get_param, gradients_to_dataset, loss_and_grad, set_param
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains

from gradient_cases import DURATION, _assert_close

LOSSES = {
    "first_spike_ce": lambda: losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3),
    "exp_integral_ce": lambda: losses.WeightedIntegralCrossEntropy("out", tau_weight=20e-3),
    "max_voltage_ce": lambda: losses.MaxVoltageCrossEntropy("out"),
}


def _state_network(recurrent: bool):
    """gradcheck's random network with random biases (some hidden neurons above threshold: tonic)
    and random initial states in every population."""
    net, inputs, labels = random_network(1 if recurrent else 3, recurrent)
    rng = np.random.default_rng(7)
    for pop, n, top in (("hid", 6, 1.3), ("out", 3, 0.5), ("ttfs", 3, 0.5)):
        net = net.with_population(pop, bias=rng.uniform(-0.3, top, n), v_init=rng.uniform(-0.5, 0.5, n),
                                  i_init=rng.uniform(-1.0, 1.0, n))
    return net, inputs, labels


# ---- validation ---------------------------------------------------------------------------------

def test_description_validates_bias_and_initial_state():
    with pytest.raises(ValueError, match=r"hid\.v_init must be below theta"):
        LIF("hid", 2, theta=1.0, v_init=[0.2, 1.0])
    with pytest.raises(ValueError, match=r"hid\.bias has shape"):
        LIF("hid", 2, bias=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"ro\.i_init contains non-finite"):
        Readout("ro", 2, i_init=[0.0, np.nan])
    b2 = pytest.importorskip("brian2")
    with pytest.raises(ValueError, match=r"hid\.bias is a voltage but hid\.theta is dimensionless"):
        LIF("hid", 1, bias=2 * b2.mV)
    pop = LIF("hid", 2, theta=20 * b2.mV, reset=0 * b2.mV, bias=25 * b2.mV, v_init=-5 * b2.mV)
    np.testing.assert_allclose(pop.bias, 0.025)
    np.testing.assert_allclose(pop.v_init, -0.005)


def test_initial_state_argument_is_validated():
    net = Network().add(SpikeSource("inp", 1), LIF("hid", 2), Readout("ro", 1))
    inputs = SpikeTrains.from_lists([[[]], [[]]])
    run = (lambda state: simulate(net, inputs, 0.01, initial_state=state, engine="events"))
    with pytest.raises(ValueError, match=r"initial_state: unknown population 'nope'"):
        run({"nope": {"v": 0.0}})
    with pytest.raises(ValueError, match=r"initial_state: 'inp' is a spike source"):
        run({"inp": {"v": [0.0]}})
    with pytest.raises(ValueError, match=r"initial_state\['hid'\] must be a dict with keys"):
        run({"hid": {"u": [0.0, 0.0]}})
    with pytest.raises(ValueError, match=r"initial_state\['hid'\]\['v'\] has shape \(3,\)"):
        run({"hid": {"v": [0.0, 0.0, 0.0]}})
    with pytest.raises(ValueError, match=r"initial_state\['hid'\]\['i'\] contains non-finite"):
        run({"hid": {"i": [0.0, np.inf]}})
    with pytest.raises(ValueError, match=r"initial_state\['hid'\]\['v'\] must be below theta"):
        run({"hid": {"v": [[0.0, 0.5], [1.0, 0.0]]}})
    with pytest.raises(ValueError, match=r"initial_state must be None or a dict"):
        run([0.1, 0.2])


def test_per_trial_initial_state_overrides_the_description():
    """Each trial starts from its own state; trials given the description's state reproduce it bit for bit."""
    net = Network().add(SpikeSource("inp", 1), LIF("hid", 2, tau_m=10e-3, tau_s=3e-3, bias=0.5,
                                                   v_init=[0.1, -0.2], i_init=[2.0, 0.0]))
    inputs = SpikeTrains.from_lists([[[]]] * 3)
    v = np.array([[0.1, -0.2], [0.9, 0.0], [0.1, -0.2]])
    i = np.array([[2.0, 0.0], [2.0, 6.0], [2.0, 0.0]])
    described = simulate(net, inputs, 0.02, engine="events")
    overridden = simulate(net, inputs, 0.02, engine="events", initial_state={"hid": {"v": v, "i": i}})
    for trial in (0, 2):
        for a, b in zip(described.spikes("hid").per_neuron(trial), overridden.spikes("hid").per_neuron(trial)):
            np.testing.assert_array_equal(a, b)
    first = overridden.first_spike_times("hid")
    assert first[1, 0] < first[0, 0] and np.isfinite(first[1, 1]) and np.isinf(first[0, 1])
    np.testing.assert_array_equal(overridden.initial_state(1)[0][1:], v[1])


def test_layered_engine_runs_bias_and_per_trial_initial_states_like_the_event_engine():
    """The layered scans (on u = V - bias) against the event engine, with per-trial initial states;
    "auto" picks the layered engine for such feedforward networks; its adjoint hands them to
    the event engine's (same gradients)."""
    net, inputs, labels = _state_network(False)
    rng = np.random.default_rng(8)
    state = {"hid": {"v": rng.uniform(-0.5, 0.9, (2, 6)), "i": rng.uniform(-1, 2, (2, 6))}}
    times = np.linspace(0, DURATION, 51)
    kw = dict(record=["out", "hid"], sample_times=times, initial_state=state)
    events = simulate(net, inputs, DURATION, engine="events", **kw)
    layered = simulate(net, inputs, DURATION, **kw)
    assert layered.engine == "layered" and len(events.time) >= 20
    np.testing.assert_array_equal(layered.neuron, events.neuron)
    np.testing.assert_allclose(layered.time, events.time, rtol=0, atol=1e-13)
    np.testing.assert_allclose(layered.i_minus_theta, events.i_minus_theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(layered.voltage, events.voltage, rtol=0, atol=1e-12)
    loss = LOSSES["first_spike_ce"]()
    keys = [("inp->hid", "weight"), ("hid", "tau_m"), ("hid", "bias"), ("hid", "v_init", "trial")]
    a = loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="layered", initial_state=state).grads
    b = loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="events", initial_state=state).grads
    for key in keys:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-12)


# ---- gradients ----------------------------------------------------------------------------------

STATE_KEYS = [(pop, kind) for pop in ("hid", "out", "ttfs") for kind in ("bias", "v_init", "i_init")]
OTHER_KEYS = [("hid", "tau_m"), ("hid", "tau_s"), ("out", "tau_m"), ("ttfs", "tau_m"), ("hid", "theta"),
              ("inp->hid", "weight"), ("inp->hid", "synaptic"), ("hid->ttfs", "synaptic")]


@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_state_gradients_match_finite_differences(recurrent, loss_name):
    net, inputs, labels = _state_network(recurrent)
    loss = LOSSES[loss_name]()
    unused = "out" if loss_name == "first_spike_ce" else "ttfs"     # the population the loss does not read
    keys = [k for k in STATE_KEYS + OTHER_KEYS if k[0] != unused and not k[0].endswith("->" + unused)]
    grads = loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="events").grads
    nonzero = 0
    for key in keys:
        fd = finite_differences(net, inputs, DURATION, loss, labels, key, engine="events")
        _assert_close(grads[key], fd, key)
        nonzero += np.max(np.abs(fd[~np.isnan(fd)]), initial=0.0) > 1e-3
    assert nonzero >= len(keys) - 2     # the checks compare real gradients, not zeros


def test_tonic_neurons_fire_in_the_state_networks():
    """Guard: the random biases make some hidden neurons fire without input, several times."""
    net, inputs, _ = _state_network(True)
    tonic = np.flatnonzero(net["hid"].bias > net["hid"].theta)
    assert len(tonic) >= 1
    counts = simulate(net, inputs, DURATION, engine="events").spikes("hid").counts()
    assert counts[:, tonic].min() >= 2


def test_per_trial_initial_state_gradients():
    """dL/dV(0) and dL/dI(0) per trial, against finite differences of each trial's state; the
    description keys are refused for a population whose state is set per trial."""
    net, inputs, labels = _state_network(True)
    rng = np.random.default_rng(3)
    state = {"hid": {"v": rng.uniform(-0.5, 0.8, (2, 6)), "i": rng.uniform(-1, 1, (2, 6))},
             "out": {"i": rng.uniform(-1, 1, (2, 3))}}
    loss = LOSSES["first_spike_ce"]() + 0.5 * LOSSES["exp_integral_ce"]()
    keys = [("hid", "v_init", "trial"), ("hid", "i_init", "trial"), ("out", "i_init", "trial"),
            ("out", "v_init", "trial"), ("ttfs", "v_init"), ("hid", "bias")]
    grads = loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="events", initial_state=state).grads
    for key in keys:
        fd = finite_differences(net, inputs, DURATION, loss, labels, key, engine="events", initial_state=state)
        assert grads[key].shape == fd.shape
        _assert_close(grads[key], fd, key)
    assert np.all(np.abs(grads[("hid", "v_init", "trial")]).max(axis=1) > 1e-3)
    with pytest.raises(ValueError, match=r"the initial state of 'hid' is set per trial"):
        loss_and_grad(net, inputs, DURATION, loss, labels, [("hid", "v_init")], initial_state=state)
    with pytest.raises(ValueError, match=r"names a gradient only"):
        get_param(net, ("hid", "v_init", "trial"))
    ds = gradients_to_dataset(grads, net)
    assert ds["hid.v_init.trial"].dims == ("trial", "hid.neuron")


def test_shared_bias_and_description_state_keys():
    net, inputs, labels = _state_network(False)
    loss = LOSSES["first_spike_ce"]()
    keys = [("hid", "bias", "shared"), ("ttfs", "v_init", "shared")]
    grads = loss_and_grad(net, inputs, DURATION, loss, labels, keys, engine="events").grads
    for key in keys:
        net_shared = set_param(net, key, get_param(set_param(net, key, 0.3), key))
        g = loss_and_grad(net_shared, inputs, DURATION, loss, labels, [key], engine="events").grads[key]
        fd = finite_differences(net_shared, inputs, DURATION, loss, labels, key, engine="events")
        _assert_close(g, fd, key)
        assert np.shape(grads[key]) == ()


def test_bias_gradient_of_a_readout_is_its_closed_form():
    """A readout at rest with bias b and no input: V(t) = b (1 - e^{-t/tau_m}), so the plain time
    average over [0, D] is b (1 - tau_m (1 - e^{-D/tau_m})/D); its derivative in b is that factor."""
    tau_m, duration = 10e-3, 0.05
    net = Network().add(SpikeSource("inp", 1), Readout("ro", 2, tau_m=tau_m, tau_s=3e-3, bias=[0.4, -0.2]))
    inputs = SpikeTrains.from_lists([[[]]])
    loss = losses.WeightedIntegralCrossEntropy("ro")
    res = loss_and_grad(net, inputs, duration, loss, [0], [("ro", "bias")], engine="events")
    factor = 1 - tau_m * (1 - np.exp(-duration / tau_m)) / duration
    score = np.array([0.4, -0.2]) * factor
    p = np.exp(score - score.max())
    p /= p.sum()
    np.testing.assert_allclose(res.grads[("ro", "bias")], (p - [1, 0]) * factor, rtol=1e-12)


def test_network_dataset_keeps_bias_and_initial_state(tmp_path):
    """network_to_dataset / network_from_dataset store bias, v_init, i_init; a dataset written
    before they existed (no such variables) reads as zeros."""
    from neurodelay.io import read_netcdf, write_netcdf
    from neurodelay.train.network_state import network_from_dataset, network_to_dataset

    net, inputs, _ = _state_network(True)
    write_netcdf(network_to_dataset(net), tmp_path / "net.nc")
    back = network_from_dataset(read_netcdf(tmp_path / "net.nc"))
    for pop in ("hid", "out", "ttfs"):
        for kind in ("bias", "v_init", "i_init"):
            np.testing.assert_array_equal(getattr(back[pop], kind), getattr(net[pop], kind))
    a, b = simulate(net, inputs, DURATION, engine="events"), simulate(back, inputs, DURATION, engine="events")
    np.testing.assert_array_equal(a.time, b.time)
    old = network_to_dataset(net).drop_vars([v for v in network_to_dataset(net).data_vars
                                             if v.endswith(("_bias", "_v_init", "_i_init"))])
    assert not np.any(network_from_dataset(old)["hid"].bias)


def test_engines_without_the_options_are_named():
    """An engine registered before initial states existed is refused with a clear error."""
    from neurodelay.engines import get_engine

    class OldEngine:
        name = "old"

        def supports(self, net):
            return None

        def simulate(self, net, inputs, duration, *, record=(), sample_times=None, n_threads=None):
            return get_engine("events").simulate(net, inputs, duration, record=record, sample_times=sample_times)

        def adjoint(self, record, sources, *, time_constants=False, n_threads=None, record_tolerance=1e-6):
            return get_engine("events").adjoint(record, sources, time_constants=time_constants)

    net, inputs, labels = _state_network(False)
    with pytest.raises(ValueError, match=r"initial_state: engine 'old' does not support it"):
        simulate(net, inputs, DURATION, engine=OldEngine(), initial_state={"hid": {"v": np.zeros(6)}})
    with pytest.raises(ValueError, match=r"gradients of bias, v_init or i_init: engine 'old'"):
        loss_and_grad(net, inputs, DURATION, LOSSES["first_spike_ce"](), labels, [("hid", "bias")], engine=OldEngine())
    g = loss_and_grad(net, inputs, DURATION, LOSSES["first_spike_ce"](), labels, [("hid", "theta")], engine=OldEngine())
    assert np.any(g.grads[("hid", "theta")])
