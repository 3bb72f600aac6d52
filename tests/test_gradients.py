"""Exact gradients (EventProp with delays) against independent references: the adjoint's edge cases.

The checks for every parameter kind and every loss against central finite
differences, and the closed-form first-spike derivatives (Göltz et al.), run
on every engine in tests/conformance/test_conformance_gradients.py. Here:
refractory clamps, voltage sources, kinks, delay kinds, losses, plumbing.

Finite differences are only meaningful where the loss is smooth. A step that
creates or deletes a spike (the spike count of some neuron changes), or that
moves the maximum of a readout's voltage to another local maximum (its time
jumps), is detected and that coordinate is skipped; the tests assert that
only a few coordinates are skipped, so the check cannot pass vacuously. The
finite-difference helpers and the random networks live in neurodelay.gradcheck.
"""

import numpy as np
import pytest

from neurodelay import losses
from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.events import AdjointSources, adjoint
from neurodelay.events.adjoint import RecordMismatchError
from neurodelay.events.readout import max_voltage
from neurodelay.gradients import gradients_to_dataset, get_param, loss_and_grad, set_param
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains

from gradient_cases import DURATION, NETWORKS, STEP, _assert_close, _finite_differences, _keys, _random_network



def test_refractory_period_reaching_past_the_end():
    """A clamp that ends after the trial: the spike's time has no effect through the reset."""
    net = (Network().add(SpikeSource("inp", 2), LIF("hid", 2, tau_m=10e-3, tau_s=4e-3, refractory=8e-3),
                         Readout("out", 2, tau_m=12e-3, tau_s=3e-3))
           .connect("inp", "hid", [6.0, 2.0, 1.5, 7.0], delays=Delays(synaptic=[1e-3, 2e-3, 1.5e-3, 0.5e-3]))
           .connect("hid", "out", [1.0, -0.5, 0.7, 1.2], delays=Delays(synaptic=[1e-3, 2e-3, 3e-3, 0.2e-3])))
    inputs = SpikeTrains.from_lists([[[0.0, 0.0125], [0.003, 0.0128]]])
    duration = 0.022
    record = simulate(net, inputs, duration)
    counts = record.spikes("hid").counts()[0]
    last = [record.spikes("hid").time[record.spikes("hid").neuron == j].max() for j in range(2)]
    assert (counts >= 2).all() and max(last) + 8e-3 > duration > min(last) + 8e-3 - 1e-2
    loss = losses.WeightedIntegralCrossEntropy("out", tau_weight=5e-3)
    keys = [("inp->hid", "weight"), ("inp->hid", "synaptic"), ("hid", "tau_m"), ("hid", "tau_s"),
            ("hid", "theta"), ("hid->out", "synaptic")]
    grads = loss_and_grad(net, inputs, duration, loss, [1], keys).grads
    for key in keys:
        value = get_param(net, key)
        fd = np.zeros_like(value)
        for i in range(value.size):
            pm = []
            for sign in (1, -1):
                shifted = value.copy()
                shifted[i] += sign * STEP[key[1]]
                rec = simulate(set_param(net, key, shifted), inputs, duration)
                assert np.array_equal(rec.spikes("hid").counts(), record.spikes("hid").counts())
                pm.append(loss.value(rec, [1])[0])
            fd[i] = (pm[0] - pm[1]) / (2 * STEP[key[1]])
        _assert_close(grads[key], fd, key)


def test_voltage_source_inside_a_refractory_clamp_has_no_effect():
    """V is held at reset during the clamp, so a loss term reading V there has zero gradient,
    both in a clamp inside the trial and in one that lasts past its end."""
    net = (Network().add(SpikeSource("inp", 1), LIF("hid", 1, tau_m=10e-3, tau_s=4e-3, refractory=5e-3),
                         Readout("out", 1, tau_m=12e-3, tau_s=3e-3))
           .connect("inp", "hid", [9.0], delays=Delays(synaptic=[1e-3]))
           .connect("hid", "out", [1.0], delays=Delays(synaptic=[1e-3])))
    inputs = SpikeTrains.from_lists([[[0.0, 0.010]]])
    spikes = simulate(net, inputs, 1.0).spikes("hid").time
    duration = spikes[-1] + 2e-3                      # the last clamp reaches past the end
    record = simulate(net, inputs, duration)
    assert len(record.time) >= 2 and np.all(np.diff(record.time) > 5e-3)
    base = AdjointSources(rate_trial=np.array([0]), rate_neuron=np.array([2]), rate_coef=np.array([1.0]),
                          rate_rate=np.array([50.0]))
    inside = [record.time[0] + 2.5e-3, duration - 1e-3]
    with_clamped = base + AdjointSources(jump_trial=np.zeros(2, np.int64), jump_neuron=np.ones(2, np.int64),
                                         jump_time=np.array(inside), jump_value=np.array([3.0, -2.0]))
    a = adjoint(record, base, time_constants=True)
    b = adjoint(record, with_clamped, time_constants=True)
    for name in ("weight", "delay", "tau_m", "tau_s", "theta", "spike_time"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name))
    # while a source between the clamps does act
    free = base + AdjointSources(jump_trial=np.zeros(1, np.int64), jump_neuron=np.ones(1, np.int64),
                                 jump_time=np.array([record.time[0] + 6e-3]), jump_value=np.array([3.0]))
    assert not np.array_equal(adjoint(record, free).weight, a.weight)


def test_kink_maximum_at_an_inhibitory_arrival():
    """The readout's maximum sits exactly at an inhibitory arrival, so it moves with that arrival."""
    net = (Network().add(SpikeSource("inp", 2), Readout("out", 1, tau_m=12e-3, tau_s=4e-3))
           .connect("inp", "out", [2.0, -3.0], delays=Delays(synaptic=[0.5e-3, 1e-3])))
    inputs = SpikeTrains.from_lists([[[0.0], [2e-3]]])
    record = simulate(net, inputs, DURATION)
    t_max = max_voltage(record, "out")[1][0, 0]
    assert t_max == 2e-3 + 1e-3                       # the kink, bit for bit
    sources = AdjointSources(jump_trial=np.array([0]), jump_neuron=np.array([2]),
                             jump_time=np.array([t_max]), jump_value=np.array([1.0]))
    result = adjoint(record, sources, time_constants=True)
    # V_max = V_pre(t_a) where V_pre is the trajectory without the inhibitory arrival
    tm, ts, w, t_e = 12e-3, 4e-3, 2.0, 0.5e-3
    k = ts / (tm - ts)
    s = t_max - t_e
    assert result.weight[0] == pytest.approx(k * (np.exp(-s / tm) - np.exp(-s / ts)), rel=1e-12)
    assert result.weight[1] == 0.0
    slope = w * k * (-np.exp(-s / tm) / tm + np.exp(-s / ts) / ts)
    assert result.delay[1] == pytest.approx(slope, rel=1e-12)      # the max moves with the kink
    assert result.delay[0] == pytest.approx(-slope, rel=1e-12)


# ------------------------------------------------------------ delay kinds
def test_axonal_and_dendritic_gradients_are_sums_of_synaptic():
    net, inputs, labels = _random_network(*NETWORKS["recurrent"])
    loss = losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3) + losses.WeightedIntegralCrossEntropy("out")
    for name in ("inp->hid", "hid->hid", "hid->out"):
        keys = [(name, kind) for kind in ("synaptic", "axonal", "dendritic")]
        grads = loss_and_grad(net, inputs, DURATION, loss, labels, keys).grads
        proj = net.projection(*name.split("->"))
        dense = np.zeros((net[proj.pre].n, net[proj.post].n))
        dense[proj.pre_idx, proj.post_idx] = grads[(name, "synaptic")]
        np.testing.assert_allclose(grads[(name, "axonal")], dense.sum(axis=1), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(grads[(name, "dendritic")], dense.sum(axis=0), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", ["axonal", "dendritic", "synaptic"])
def test_each_delay_kind_alone(kind):
    """inp -> hid carrying only one delay kind (the others absent)."""
    net, inputs, labels = _random_network(*NETWORKS["recurrent"])
    proj = net.projection("inp", "hid")
    only = Delays(**{kind: getattr(proj.delays, kind)})
    net = net.with_projection("inp", "hid", axonal=only.axonal, dendritic=only.dendritic, synaptic=only.synaptic)
    assert net.projection("inp", "hid").delays.kinds() == (kind,)
    loss = losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3) + losses.WeightedIntegralCrossEntropy("out")
    key = ("inp->hid", kind)
    grad = loss_and_grad(net, inputs, DURATION, loss, labels, [key]).grads[key]
    _assert_close(grad, _finite_differences(net, inputs, loss, labels, key), key)


def test_absent_delay_kind_gradient_is_the_gradient_at_zero():
    net, inputs, labels = _random_network(*NETWORKS["feedforward"])
    loss = losses.MaxVoltageCrossEntropy("out")
    key = ("hid->out", "axonal")                     # hid->out has synaptic delays only
    assert net.projection("hid", "out").delays.axonal is None
    grad = loss_and_grad(net, inputs, DURATION, loss, labels, [key]).grads[key]
    base = np.mean(loss.value(simulate(net, inputs, DURATION), labels))
    h = STEP["axonal"]
    fd = np.zeros(6)
    for i in range(6):                               # delays must stay >= 0: one-sided, second order
        shifted = [np.mean(loss.value(simulate(set_param(net, key, np.eye(6)[i] * m * h), inputs, DURATION),
                                      labels)) for m in (1, 2)]
        fd[i] = (-3 * base + 4 * shifted[0] - shifted[1]) / (2 * h)
    _assert_close(grad, fd, key)


# ------------------------------------------------------- losses and rules
def test_all_outputs_silent_gives_finite_loss_and_exact_penalty_gradient():
    net, inputs, labels = _random_network(*NETWORKS["feedforward"])
    net = net.with_projection("hid", "ttfs", weight=0.1 * net.projection("hid", "ttfs").weight)
    assert simulate(net, inputs, DURATION).spikes("ttfs").counts().sum() == 0
    for loss in (losses.FirstSpikeMSE("ttfs", margin=2e-3), losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3)):
        keys = [("hid->ttfs", "weight"), ("hid->ttfs", "synaptic"), ("ttfs", "theta"), ("ttfs", "tau_m")]
        value, grads, _ = loss_and_grad(net, inputs, DURATION, loss, labels, keys)
        assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads.values())
        assert np.all(grads[("ttfs", "theta")] > 0)          # d/dtheta of penalty * (theta - V_max)
        for key in keys:
            _assert_close(grads[key], _finite_differences(net, inputs, loss, labels, key), key)
        # without the penalty a silent output has no gradient at all
        loss.missing_penalty = 0.0
        grads = loss_and_grad(net, inputs, DURATION, loss, labels, keys).grads
        assert all(np.all(g == 0.0) for g in grads.values())


def test_first_spike_mse_value_against_definition():
    net, inputs, labels = _random_network(*NETWORKS["recurrent"])
    record = simulate(net, inputs, DURATION)
    first = record.first_spike_times("ttfs", missing=DURATION)
    loss = losses.FirstSpikeMSE("ttfs", margin=2e-3, time_unit=1e-3, missing_penalty=0.0)
    expected = [0.5 * sum(((first[b, i] - first[b, c] - 2e-3) / 1e-3) ** 2 for i in range(3) if i != c)
                for b, c in enumerate(labels)]
    np.testing.assert_allclose(loss.value(record, labels), expected, rtol=1e-13)


def test_spike_count_regulariser_value_and_surrogate_gradient():
    """Value: 1/2 sum strength (n - target)^2. Gradient: that of the surrogate in which the count is
    replaced by sum_k (1 - t_k / D) inside the derivative, checked by finite differences of that
    surrogate with the counts held at their base values."""
    net, inputs, _ = _random_network(*NETWORKS["recurrent"])
    target, up, down = 2.0, 0.5, 0.2
    reg = losses.SpikeCountRegulariser("hid", target, up, strength_lower=down)
    record = simulate(net, inputs, DURATION)
    counts = record.spikes("hid").counts()
    excess = counts - target
    strength = np.where(excess > 0, up, down)
    np.testing.assert_allclose(reg.value(record), 0.5 * np.sum(strength * excess ** 2, axis=1), rtol=1e-14)

    def surrogate(rec):
        sp = rec.spikes("hid")
        smooth = np.zeros_like(counts, dtype=float)
        np.add.at(smooth, (sp.trial, sp.neuron), 1 - sp.time / DURATION)
        return np.mean(np.sum(strength * excess * smooth, axis=1))

    class Surrogate(losses.Loss):
        def value_and_sources(self, rec, labels=None):
            return np.full(rec.n_trials, surrogate(rec)), None

    keys = [("inp->hid", "weight"), ("hid->hid", "synaptic"), ("hid", "tau_s")]
    grads = loss_and_grad(net, inputs, DURATION, reg, None, keys).grads
    for key in keys:
        _assert_close(grads[key], _finite_differences(net, inputs, Surrogate(), None, key), key)


# ------------------------------------------------------------ plumbing
def test_batches_threads_and_record_reuse():
    """The batch gradient is the mean of the single-trial gradients, and bit-for-bit the same
    for any number of threads and when an existing record is differentiated."""
    net, inputs, _ = _random_network(*NETWORKS["recurrent"])
    rng = np.random.default_rng(5)
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.03, 3)) for _ in range(5)] for _ in range(6)])
    labels = np.arange(6) % 3
    loss = losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3) + losses.MaxVoltageCrossEntropy("out")
    keys = _keys(net)
    one = loss_and_grad(net, inputs, DURATION, loss, labels, keys, n_threads=1)
    two = loss_and_grad(net, inputs, DURATION, loss, labels, keys, n_threads=2)
    again = loss_and_grad(net, None, None, loss, labels, keys, record=one.record)
    singles = [loss_and_grad(net, inputs.select_trials([k]), DURATION, loss, labels[k:k + 1], keys)
               for k in range(6)]
    assert one.loss == pytest.approx(np.mean([s.loss for s in singles]), rel=1e-13)
    for key in keys:
        np.testing.assert_array_equal(two.grads[key], one.grads[key])
        np.testing.assert_array_equal(again.grads[key], one.grads[key])
        mean = np.mean([s.grads[key] for s in singles], axis=0)
        np.testing.assert_allclose(one.grads[key], mean, rtol=1e-12, atol=1e-12 * np.abs(mean).max())


def test_unsorted_record_is_rejected():
    net, inputs, _ = _random_network(*NETWORKS["feedforward"])
    record = simulate(net, inputs, DURATION)
    order = np.arange(len(record.time))[::-1]
    shuffled = type(record)(**{**record.__dict__, "trial": np.sort(record.trial), "neuron": record.neuron[order],
                               "time": record.time[order], "i_minus_theta": record.i_minus_theta[order]})
    with pytest.raises(ValueError, match="sorted by \\(trial, time\\)"):
        adjoint(shuffled, AdjointSources())


def test_record_of_another_network_is_rejected():
    net, inputs, labels = _random_network(*NETWORKS["feedforward"])
    record = simulate(net, inputs, DURATION)
    other = net.with_projection("inp", "hid", weight=1.05 * net.projection("inp", "hid").weight)
    mismatched = type(record)(**{**record.__dict__, "network": other, "flat": simulate(other, inputs, DURATION).flat})
    with pytest.raises(RecordMismatchError, match="does not come from this network"):
        adjoint(mismatched, AdjointSources())


def test_parameter_access_by_key():
    net, _, _ = _random_network(*NETWORKS["feedforward"])
    w = get_param(net, ("inp->hid", "weight"))
    assert np.array_equal(get_param(set_param(net, ("inp->hid", "weight"), w + 1), ("inp->hid", "weight")), w + 1)
    assert get_param(net, ("hid->out", "axonal")).shape == (6,) and not get_param(net, ("hid->out", "axonal")).any()
    shared = set_param(net, ("hid", "tau_m", "shared"), 0.02)
    assert get_param(shared, ("hid", "tau_m", "shared")) == 0.02
    assert np.all(shared["hid"].tau_m == 0.02)
    with pytest.raises(ValueError, match="different tau_m values"):
        get_param(net, ("hid", "tau_m", "shared"))
    with pytest.raises(ValueError, match="expected \\(30,\\)"):
        set_param(net, ("inp->hid", "weight"), np.ones(3))
    with pytest.raises(ValueError, match="has no parameter 'theta'"):
        get_param(net, ("out", "theta"))
    with pytest.raises(ValueError, match="must be >= 0"):
        set_param(net, ("inp->hid", "synaptic"), -np.ones(30))
    with pytest.raises(KeyError):
        get_param(net, ("inp->nowhere", "weight"))


def test_gradients_dataset_round_trip(tmp_path):
    import xarray as xr

    net, inputs, labels = _random_network(*NETWORKS["feedforward"])
    keys = _keys(net)
    grads = loss_and_grad(net, inputs, DURATION, losses.MaxVoltageCrossEntropy("out"), labels, keys).grads
    ds = gradients_to_dataset(grads, net)
    for key in keys:
        np.testing.assert_array_equal(ds[".".join(key)].values, grads[key])
    assert ds["inp->hid.weight"].dims == ("inp->hid.synapse",)
    np.testing.assert_array_equal(ds["inp->hid.pre"].values, net.projection("inp", "hid").pre_idx)
    path = tmp_path / "grads.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    back = xr.load_dataset(path, engine="h5netcdf")
    for key in keys:
        np.testing.assert_array_equal(back[".".join(key)].values, grads[key])
