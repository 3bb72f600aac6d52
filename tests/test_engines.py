"""The engine contract: the registry, engine choice everywhere, the shared types, the kernels' argument order.

The oracles every engine must meet are in tests/conformance/.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurodelay
import neurodelay.events as events
from neurodelay import engines, flat, losses, record
from neurodelay.cli import main
from neurodelay.delays import Delays
from neurodelay.engines import available_engines, get_engine, register_engine, unregister_engine
from neurodelay.events import EventsEngine
from neurodelay.events.adjoint_kernel import replay_trial, reverse_trial
from neurodelay.events.kernel import _event_loop, simulate_trial
from neurodelay.gradcheck import finite_differences
from neurodelay.gradients import loss_and_grad
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains
from neurodelay.train.classifier import SpikingClassifier

ROOT = Path(__file__).resolve().parents[1]


def _net(n_out: int = 2) -> Network:
    rng = np.random.default_rng(0)
    return (Network().add(SpikeSource("inp", 4), LIF("out", n_out, tau_m=10e-3, tau_s=4e-3),
                          Readout("ro", 2, tau_m=10e-3, tau_s=3e-3))
            .connect("inp", "out", rng.uniform(0.5, 1.5, 4 * n_out), delays=Delays(synaptic=rng.uniform(0, 2e-3,
                                                                                                    4 * n_out)))
            .connect("out", "ro", rng.uniform(-1.0, 1.0, 2 * n_out)))


def _inputs(n_trials: int = 3) -> SpikeTrains:
    rng = np.random.default_rng(1)
    return SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.02, 3)) for _ in range(4)] for _ in range(n_trials)])


class Counting:
    """A test engine: the exact event engine, counting its calls; refuses networks larger than `max_neurons`."""

    def __init__(self, name: str, max_neurons: int = 10**9):
        self.name, self.max_neurons = name, max_neurons
        self.inner = EventsEngine()
        self.calls = {"simulate": 0, "adjoint": 0}

    def supports(self, net):
        return None if net.n_neurons <= self.max_neurons else f"more than {self.max_neurons} neurons"

    def simulate(self, net, inputs, duration, *, record=(), sample_times=None, n_threads=None):
        self.calls["simulate"] += 1
        return self.inner.simulate(net, inputs, duration, record=record, sample_times=sample_times,
                                   n_threads=n_threads)

    def adjoint(self, rec, sources, *, time_constants=False, n_threads=None, record_tolerance=1e-6):
        self.calls["adjoint"] += 1
        return self.inner.adjoint(rec, sources, time_constants=time_constants, n_threads=n_threads,
                                  record_tolerance=record_tolerance)


@pytest.fixture
def registered():
    """A function registering a test engine for the duration of one test."""
    names = []

    def add(engine, **kwargs):
        register_engine(engine, **kwargs)
        names.append(kwargs.get("name") or engine.name)
        return engine
    yield add
    for name in names:
        unregister_engine(name)


# ---- the registry ---------------------------------------------------------------------------------

def test_built_in_engines_and_unknown_names():
    assert {"events", "brian"} <= set(available_engines())
    assert isinstance(get_engine("events"), EventsEngine)
    assert get_engine("events") is get_engine("events")
    assert get_engine("brian").name == "brian"
    with pytest.raises(ValueError, match=r"unknown engine 'nope'; available: \['auto', .*'events'.*'brian'"):
        get_engine("nope")
    with pytest.raises(ValueError, match="unknown engine 'nope'"):
        neurodelay.simulate(_net(), _inputs(), 0.03, engine="nope")
    with pytest.raises(KeyError, match="no engine registered as 'nope'"):
        unregister_engine("nope")
    with pytest.raises(TypeError, match="must be an Engine or a factory"):
        register_engine(object())

    class Half:
        name = "half"

        def simulate(self, *args, **kwargs):
            pass
    with pytest.raises(TypeError, match=r"lacks \['supports', 'adjoint'\]"):
        register_engine(Half())
    with pytest.raises(ValueError, match="name"):
        register_engine(lambda: EventsEngine())          # a factory needs a name


def test_auto_picks_the_highest_preference_that_supports_the_network(registered):
    small = registered(Counting("small-only", max_neurons=5), preference=1000)
    big = registered(Counting("second", max_neurons=10**6), preference=999)
    assert available_engines()[:2] == ["small-only", "second"]
    assert get_engine() is small                         # no network: the first in preference
    tiny = Network().add(SpikeSource("inp", 2), LIF("out", 2))
    assert get_engine("auto", tiny) is small
    assert get_engine("auto", _net()) is big             # too large for the first
    with pytest.raises(ValueError, match="engine 'small-only' cannot run this network: more than 5 neurons"):
        get_engine("small-only", _net())
    # the same through simulate
    neurodelay.simulate(_net(), _inputs(), 0.03)
    assert big.calls["simulate"] == 1 and small.calls["simulate"] == 0


def test_auto_with_no_supporting_engine_says_why(monkeypatch):
    monkeypatch.setattr(engines, "_REGISTRY", {})
    with pytest.raises(ValueError, match="no registered engine supports this network"):
        get_engine("auto", _net())
    monkeypatch.undo()
    assert "events" in available_engines()


def test_a_registered_engine_is_used_by_simulate_loss_and_grad_and_training(registered):
    eng = registered(Counting("counting"), preference=-5)
    net, inputs = _net(), _inputs()
    loss = losses.MaxVoltageCrossEntropy("ro")
    labels = np.array([0, 1, 0])
    reference = loss_and_grad(net, inputs, 0.03, loss, labels, [("out->ro", "weight")], engine="events")
    got = loss_and_grad(net, inputs, 0.03, loss, labels, [("out->ro", "weight")], engine="counting")
    assert eng.calls == {"simulate": 1, "adjoint": 1}
    np.testing.assert_array_equal(got.grads[("out->ro", "weight")], reference.grads[("out->ro", "weight")])
    loss_and_grad(net, None, None, loss, labels, [("out->ro", "weight")], record=got.record, engine=eng)
    assert eng.calls == {"simulate": 1, "adjoint": 2}     # an engine object, and a given record: no simulation
    rec = neurodelay.simulate(net, inputs, 0.03, engine="counting")
    rec2 = neurodelay.simulate(net, inputs, 0.03, engine=eng)
    assert eng.calls["simulate"] == 3
    np.testing.assert_array_equal(rec.time, rec2.time)
    with pytest.raises(ValueError, match="max_spikes_per_trial is an option of the 'events' engine"):
        neurodelay.simulate(net, inputs, 0.03, engine="counting", max_spikes_per_trial=5)
    finite_differences(net, inputs, 0.03, loss, labels, ("out->ro", "weight"), coordinates=[0], engine="counting")
    assert eng.calls["simulate"] == 6                     # base + two steps
    clf = SpikingClassifier(net, [("out->ro", "weight")], loss, "ro", "max_voltage", duration=0.03,
                            engine="counting")
    batch = type("Batch", (), {"inputs": inputs, "labels": labels, "duration": 0.03, "__len__": lambda self: 3})()
    clf.loss_and_grad(batch, np.random.default_rng(0))
    assert eng.calls == {"simulate": 7, "adjoint": 3}
    assert np.array_equal(clf.predict(inputs, 0.03), clf.with_values(clf.values()).predict(inputs, 0.03))
    assert eng.calls["simulate"] == 9                     # the engine travels with with_values
    with pytest.raises(ValueError, match="unknown engine"):
        SpikingClassifier(net, [("out->ro", "weight")], loss, "ro", "max_voltage", engine="nope")


def test_factories_are_called_on_first_use_only(registered):
    made = []

    def factory():
        made.append(1)
        return Counting("lazy")
    registered(factory, name="lazy", preference=-50)
    assert "lazy" in available_engines() and made == []
    assert get_engine("lazy").name == "lazy" and get_engine("lazy") is get_engine("lazy")
    assert made == [1]
    registered(lambda: Counting("other"), name="misnamed", preference=-50)
    with pytest.raises(ValueError, match="made an engine named 'other'"):
        get_engine("misnamed")


def test_importing_the_registry_imports_neither_numba_nor_brian2():
    code = ("import sys, neurodelay, neurodelay.engines as e; e.available_engines(); "
            "e.get_engine('brian'); e.BrianEngine(dt=1e-5).supports(None); "
            "print(sorted(m for m in ('numba', 'brian2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_takes_an_engine_and_refuses_unknown_names(tmp_path, capsys):
    assert main(["train", "sequence", "--engine", "nope", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "unknown engine 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x" / "last.nc").exists()


def test_brian_engine_options_are_checked_before_building():
    with pytest.raises(ValueError, match="mode must be"):
        engines.BrianEngine(mode="fast")
    with pytest.raises(ValueError, match="device must be"):
        engines.BrianEngine(device="gpu")
    with pytest.raises(ValueError, match="dt"):
        engines.BrianEngine(dt=-1.0)
    pytest.importorskip("brian2")
    with pytest.raises(ValueError, match="whole steps of dt"):
        engines.BrianEngine(dt=1e-4).simulate(_net(), _inputs(1), 0.03, record="ro", sample_times=[1.5e-4])


# ---- the shared types -----------------------------------------------------------------------------

def test_shared_types_live_in_record_and_flat_and_events_re_exports_them():
    assert events.EventRecord is record.EventRecord and events.merge_inputs is record.merge_inputs
    assert events.FlatNetwork is flat.FlatNetwork and events.flatten is flat.flatten
    assert events.AdjointSources is record.AdjointSources and events.AdjointResult is record.AdjointResult
    assert (events.KIND_SOURCE, events.KIND_LIF, events.KIND_READOUT) == (0, 1, 2)
    from neurodelay.events.forward import EventRecord, merge_inputs  # the old homes still import
    assert EventRecord is record.EventRecord and merge_inputs is record.merge_inputs


def test_no_module_imports_the_shared_types_from_the_events_package():
    shared = {"EventRecord", "merge_inputs", "FlatNetwork", "flatten", "KIND_SOURCE", "KIND_LIF", "KIND_READOUT",
              "AdjointSources", "AdjointResult", "RecordMismatchError", "KernelNetwork", "is_closed_form"}
    offenders = []
    for path in sorted((ROOT / "neurodelay").rglob("*.py")):
        if path == ROOT / "neurodelay" / "events" / "__init__.py":
            continue                                      # the re-export
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and "events" in node.module.split("."):
                names = {a.name for a in node.names} & shared
                if names:
                    offenders.append(f"{path.relative_to(ROOT)}: {sorted(names)} from {node.module}")
    assert not offenders, offenders


# ---- the kernels' argument order ------------------------------------------------------------------

@pytest.mark.parametrize("kernel", [simulate_trial, _event_loop, replay_trial, reverse_trial],
                         ids=lambda k: k.py_func.__name__)
def test_every_kernel_takes_the_network_arrays_first_in_one_order(kernel):
    params = list(inspect.signature(kernel.py_func).parameters)
    fields = list(flat.KernelNetwork._fields)
    assert params[:len(fields)] == fields


def test_kernel_network_holds_the_flat_arrays():
    fn = flat.flatten(_net())
    k = fn.kernel
    assert k is fn.kernel                                 # built once per flat network
    for name in k._fields:
        if name != "closed_form":
            assert getattr(k, name) is getattr(fn, name)
    np.testing.assert_array_equal(k.closed_form, np.abs(fn.tau_m - 2 * fn.tau_s) <= 1e-14 * fn.tau_m)


def test_brian_engine_samples_voltages_at_the_requested_grid_times():
    pytest.importorskip("brian2")
    net, inputs = _net(), _inputs(2)
    times = np.array([2e-3, 7e-3, 12e-3, 30e-3])
    exact = neurodelay.simulate(net, inputs, 0.03, record=["ro", "out"], sample_times=times, engine="events")
    brian = neurodelay.simulate(net, inputs, 0.03, record=["ro", "out"], sample_times=times, engine="brian")
    np.testing.assert_array_equal(brian.sample_times, times)
    assert np.abs(exact.voltages("ro")).max() > 0.1
    for pop in ("ro", "out"):
        assert brian.voltages(pop).shape == exact.voltages(pop).shape == (2, 4, net[pop].n)
        np.testing.assert_allclose(brian.voltages(pop), exact.voltages(pop), rtol=0, atol=1e-6, err_msg=pop)


def test_records_name_their_engine_for_provenance():
    from neurodelay.io import record_to_dataset

    rec = neurodelay.simulate(_net(), _inputs(1), 0.03, engine="events")
    assert rec.engine == "events" and record_to_dataset(rec).attrs["engine"] == "events"
    pytest.importorskip("brian2")
    rec = neurodelay.simulate(_net(), _inputs(1), 0.03, engine="brian")
    assert rec.engine == "brian-precise-runtime" and record_to_dataset(rec).attrs["engine"] == rec.engine


def test_spike_time_errors_compares_neurons_whose_counts_agree():
    """A record against a copy with every spike of one neuron shifted by 1 us and one extra spike
    elsewhere: the shifted neuron's errors are 1 us, the other neuron is counted as mismatched."""
    import dataclasses

    from neurodelay.record import spike_time_errors

    net = Network().add(SpikeSource("inp", 2), LIF("hid", 2, tau_m=10e-3, tau_s=5e-3, theta=1.0))
    net = net.connect("inp", "hid", weight=[8.0, 0.0, 0.0, 8.0])   # input i drives hidden i only
    inputs = SpikeTrains.from_lists([[[0.001, 0.02], [0.005]]], n_neurons=2)
    rec = neurodelay.simulate(net, inputs, 0.05, engine="events")
    hid = net.offsets()["hid"]
    n0 = int(np.sum(rec.neuron == hid))
    assert n0 >= 1 and np.sum(rec.neuron == hid + 1) >= 1
    time = np.where(rec.neuron == hid, rec.time + 1e-6, rec.time)
    extra = dataclasses.replace(rec, trial=np.append(rec.trial, 0), neuron=np.append(rec.neuron, hid + 1),
                                time=np.append(time, 0.04), i_minus_theta=np.append(rec.i_minus_theta, 1.0))
    errors, mismatched = spike_time_errors(rec, extra, "hid")
    np.testing.assert_allclose(errors, np.full(n0, 1e-6), rtol=1e-9)
    assert mismatched == 1
