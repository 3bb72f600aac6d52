"""neurodelay.io: lossless round trips through NetCDF, atomic writes, clear read errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import brian2 as b2
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings, strategies as st

import neurodelay
from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.io import (NetCDFReadError, dataset_to_spike_trains, read_netcdf, record_to_dataset,
                           spike_trains_to_dataset, write_netcdf)
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains


def bits(x) -> np.ndarray:
    """float64 array as its bit patterns (equality of these is bit identity, NaN included)."""
    return np.ascontiguousarray(x, dtype=np.float64).view(np.int64)


def assert_same_trains(a: SpikeTrains, b: SpikeTrains) -> None:
    assert (a.n_trials, a.n_neurons) == (b.n_trials, b.n_neurons)
    np.testing.assert_array_equal(a.trial, b.trial)
    np.testing.assert_array_equal(a.neuron, b.neuron)
    np.testing.assert_array_equal(bits(a.time), bits(b.time))
    assert b.trial.dtype == np.int64 and b.neuron.dtype == np.int64 and b.time.dtype == np.float64


def small_random_network(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    net = Network().add(SpikeSource("inp", 5), LIF("hid", 4, tau_m=12e-3, tau_s=4e-3, refractory=1e-3),
                        LIF("out", 2, tau_m=15e-3, tau_s=5e-3), Readout("ro", 2))
    net = net.connect("inp", "hid", rng.uniform(0.4, 1.6, 20),
                      delays=Delays(axonal=rng.uniform(0, 4e-3, 5), dendritic=rng.uniform(0, 4e-3, 4),
                                    synaptic=rng.uniform(0, 4e-3, 20)))
    net = net.connect("hid", "out", rng.uniform(0.8, 1.6, 8),
                      delays=Delays(axonal=rng.uniform(0, 4e-3, 4), dendritic=rng.uniform(0, 4e-3, 2),
                                    synaptic=rng.uniform(0, 4e-3, 8)))
    return net.connect("out", "ro", 0.5, delays=Delays(synaptic=rng.uniform(0, 2e-3, 4)))


def test_event_record_round_trip_is_lossless(tmp_path):
    seed = 11
    net = small_random_network(seed)
    rng = np.random.default_rng(seed)
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.03, 3)) for _ in range(5)] for _ in range(4)], 5)
    rec = simulate(net, inputs, 0.06, record=["out", "ro"], sample_times=np.linspace(0, 0.06, 13), n_threads=1)
    assert len(rec.spikes("hid")) > 0 and len(rec.spikes("out")) > 0, "the test network must be active"
    parameters = {"seed": seed, "tau_m": np.float64(12e-3), "sizes": np.array([5, 4, 2, 2]), "name": "test",
                  "tau_s": 4 * b2.ms}

    path = write_netcdf(record_to_dataset(rec, seed=seed, parameters=parameters), tmp_path / "rec.nc")
    ds = read_netcdf(path)

    for pop in net.names:
        assert_same_trains(rec.spikes(pop), dataset_to_spike_trains(ds, pop))
    np.testing.assert_array_equal(bits(ds["spike_i_minus_theta"].values), bits(rec.i_minus_theta))
    np.testing.assert_array_equal(bits(ds["voltage"].values), bits(rec.voltage))
    np.testing.assert_array_equal(bits(ds["sample_time"].values), bits(rec.sample_times))
    # recorded columns map back to the global neurons that were sampled
    starts = np.array([net.offsets()[p] for p in net.names])
    np.testing.assert_array_equal(starts[ds["recorded_population"].values] + ds["recorded_neuron"].values,
                                  rec.sample_neurons)
    assert list(ds["population"].values) == list(net.names)
    assert list(ds["population_size"].values) == [p.n for p in net.populations]
    # provenance
    assert ds.attrs["seed"] == seed
    assert json.loads(ds.attrs["parameters"]) == {"seed": seed, "tau_m": 12e-3, "sizes": [5, 4, 2, 2],
                                                  "name": "test", "tau_s": str(4 * b2.ms)}
    assert ds.attrs["neurodelay_version"] == neurodelay.__version__
    assert ds.attrs["time_unit"] == "s"
    assert ds.attrs["duration"] == 0.06
    from neurodelay.engines import get_engine
    assert ds.attrs["engine"] == rec.engine == get_engine("auto", net).name   # the engine that ran it
    created = dt.datetime.fromisoformat(ds.attrs["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 3600


def test_spike_trains_round_trip_keeps_empty_trials(tmp_path):
    times = np.array([0.0, 5e-324, 0.1 + 0.2, np.nextafter(1.0, 2.0), 1e6])  # awkward floats
    trains = SpikeTrains(np.array([0, 0, 2, 2, 4]), np.array([3, 0, 1, 1, 2]), times, n_trials=6, n_neurons=7)
    back = dataset_to_spike_trains(read_netcdf(write_netcdf(spike_trains_to_dataset(trains, "audio", seed=[1, 2]),
                                                            tmp_path / "t.nc")))
    assert_same_trains(trains, back)
    assert back.counts()[[1, 3, 5]].sum() == 0
    empty = SpikeTrains.empty(3, 4)
    assert_same_trains(empty, dataset_to_spike_trains(read_netcdf(write_netcdf(spike_trains_to_dataset(empty),
                                                                               tmp_path / "e.nc"))))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5),
                                                                st.floats(0, 10, allow_subnormal=True)),
                                                      max_size=30))
def test_spike_trains_round_trip_property(n_trials, n_neurons, spikes):
    spikes = [(k, i, t) for k, i, t in spikes if k < n_trials and i < n_neurons]
    trial, neuron, time = (np.array(col) for col in zip(*spikes)) if spikes else ([], [], [])
    trains = SpikeTrains(np.asarray(trial, np.int64), np.asarray(neuron, np.int64), np.asarray(time, float),
                         n_trials, n_neurons)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_netcdf(spike_trains_to_dataset(trains, "p"), Path(tmp) / "p.nc")
        assert_same_trains(trains, dataset_to_spike_trains(read_netcdf(path), "p"))


def _good_file(path: Path) -> bytes:
    write_netcdf(spike_trains_to_dataset(SpikeTrains.from_lists([[[0.001, 0.002]]]), "old"), path)
    return path.read_bytes()


def test_crash_during_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "result.nc"
    before = _good_file(path)

    def crash_midway(self, target, *args, **kwargs):
        partial = b"\x89HDF\r\n\x1a\n" + b"\0" * 100  # a partial HDF5 file
        if hasattr(target, "write"):  # serialised in memory first
            target.write(partial)
        else:
            Path(target).write_bytes(partial)
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", crash_midway)
    new = spike_trains_to_dataset(SpikeTrains.from_lists([[[0.5]]]), "new")
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_netcdf(new, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.nc"], "a temporary file was left behind"
    monkeypatch.undo()
    assert list(read_netcdf(path)["population"].values) == ["old"]


def test_failing_serialisation_keeps_previous_file(tmp_path):
    path = tmp_path / "result.nc"
    before = _good_file(path)
    bad = spike_trains_to_dataset(SpikeTrains.from_lists([[[0.5]]]), "new")
    bad.attrs["flag"] = True  # h5netcdf refuses boolean attributes after it has started the file
    with pytest.raises(Exception, match="boolean"):
        write_netcdf(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.nc"]


def test_write_creates_parents_with_ordinary_permissions(tmp_path):
    path = tmp_path / "a" / "b" / "r.nc"
    write_netcdf(spike_trains_to_dataset(SpikeTrains.empty(1, 1)), path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(TypeError, match="Dataset"):
        write_netcdf({"not": "a dataset"}, tmp_path / "x.nc")


def test_strings_longer_than_those_a_file_was_read_with_are_written_whole(tmp_path):
    """A dataset read from a file carries its string width in the encoding (<U6 for 'digits');
    extended by a longer label and written again, the label must not be cut ('mts_xor')."""
    first = xr.Dataset({"acc": (("task",), [0.5])}, coords={"task": ["digits"]})
    write_netcdf(first, tmp_path / "a.nc")
    old = read_netcdf(tmp_path / "a.nc").load()
    longer = xr.Dataset({"acc": (("task",), [0.7])}, coords={"task": ["mts_xor"]})
    both = xr.concat([old, longer], dim="task")
    write_netcdf(both, tmp_path / "b.nc")
    assert list(read_netcdf(tmp_path / "b.nc")["task"].values) == ["digits", "mts_xor"]
    assert old["task"].encoding.get("dtype") == np.dtype("<U6")     # the caller's dataset is left as it was


def test_truncated_and_garbage_files_give_clear_errors(tmp_path):
    good = tmp_path / "good.nc"
    data = _good_file(good)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.nc"
    garbage.write_text("this is not NetCDF")
    for path in (truncated, garbage):
        with pytest.raises(NetCDFReadError, match="truncated or corrupt") as info:
            read_netcdf(path)
        assert str(path) in str(info.value)
        assert isinstance(info.value, OSError)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "missing.nc"
    with pytest.raises(FileNotFoundError, match="missing.nc") as info:
        read_netcdf(path)
    assert str(path) in str(info.value)


def test_bad_arguments_are_refused_by_name(tmp_path):
    with pytest.raises(KeyError, match="'b'.*\\['a'\\]"):
        dataset_to_spike_trains(spike_trains_to_dataset(SpikeTrains.empty(1, 2), "a"), "b")
    net = small_random_network(0)
    rec = simulate(net, SpikeTrains.from_lists([[[0.001]] * 5]), 0.01, n_threads=1)
    with pytest.raises(ValueError, match="4 populations"):
        dataset_to_spike_trains(record_to_dataset(rec))
    with pytest.raises(TypeError, match="cannot be written as JSON"):
        record_to_dataset(rec, parameters={"f": object()})
    with pytest.raises(TypeError, match="seed"):
        record_to_dataset(rec, seed="abc")
    with pytest.raises(ValueError, match="not written by neurodelay.io"):
        dataset_to_spike_trains(xr.Dataset({"x": ("t", [1.0])}))
