"""Bad inputs across the package: each gives one clear, one-line error naming the problem.

Every probe below is a wrong argument, file or setting a user can produce (most
of them from issue #14). A probe passes when it raises the expected exception
type whose message is a single line and matches a pattern naming the problem;
the CLI probes pass when ``neurodelay`` exits with status 2 and prints exactly
one line on stderr. No probe may end in a traceback from numpy, numba, h5py,
xarray or Brian2.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import xarray as xr

from neurodelay.cli import main
from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.gradients import loss_and_grad
from neurodelay.io import NetCDFReadError, dataset_to_spike_trains, read_netcdf, spike_trains_to_dataset, write_netcdf
from neurodelay.data.base import TaskData
from neurodelay.data.hdf5 import load_spikes_hdf5
from neurodelay.losses import FirstSpikeMSE, MaxVoltageCrossEntropy
from neurodelay.memory import MemoryLimitError
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains
from neurodelay.train.checkpoint import load_checkpoint
from neurodelay.train.config import RunConfig
from neurodelay.train.recipes import build_model, resolve_config

SEQ = ["--epochs", "1", "--batch-size", "10", "--n-train", "10", "--n-validation", "10", "--n-test", "10",
       "--no-progress"]


def _net():
    return (Network().add(SpikeSource("inp", 2), LIF("out", 2, tau_m=10e-3, tau_s=5e-3), Readout("ro", 1))
            .connect("inp", "out", 5.0).connect("out", "ro", 1.0))


def _inputs(n_trials=2):
    return SpikeTrains.from_lists([[[1e-3], [2e-3]]] * n_trials)


@pytest.fixture(scope="module")
def rec():
    return simulate(_net(), _inputs(), 0.05, record=["out"], sample_times=[0.01, 0.02], n_threads=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad files: truncated NetCDF, NetCDF that is no checkpoint, a checkpoint lacking entries, HDF5 variants."""
    root = tmp_path_factory.mktemp("files")
    good = write_netcdf(spike_trains_to_dataset(_inputs(), "inp"), root / "spikes.nc")
    (root / "truncated.nc").write_bytes(good.read_bytes()[:200])
    ds = xr.Dataset({"x": ("a", np.arange(3.0))}, attrs={"format": "neurodelay-checkpoint-1"})
    write_netcdf(ds, root / "layout.nc")  # the right format attribute, the wrong layout
    with h5py.File(root / "strings.h5", "w") as f:
        f["spikes/times"] = np.array([b"abc", b"def"])
        f["spikes/units"] = np.array([1, 2])
        f["labels"] = np.array([0, 1])
    with h5py.File(root / "scalar.h5", "w") as f:
        f["spikes/times"], f["spikes/units"], f["labels"] = 1.0, 1, 0
    with h5py.File(root / "nolabels.h5", "w") as f:
        f["spikes/times"] = np.array([1.0])
        f["spikes/units"] = np.array([1])
    (root / "afile").write_text("not a folder")
    return root


def _mv():
    import brian2
    return brian2.mV


# (id, function of (rec, files, monkeypatch), exception type, pattern the one-line message must match)
PROBES = [
    # ---- the description
    ("population size 0", lambda r, f, m: LIF("a", 0), ValueError, "size must be a positive integer"),
    ("negative tau_m", lambda r, f, m: LIF("a", 2, tau_m=-1e-3), ValueError, r"a\.tau_m must be > 0"),
    ("theta as text", lambda r, f, m: LIF("a", 2, theta="high"), ValueError, r"a\.theta must be numeric"),
    ("reset above theta", lambda r, f, m: LIF("a", 2, reset=2.0), ValueError, "reset must be below theta"),
    ("tau_m equal tau_s", lambda r, f, m: LIF("a", 1, tau_m=5e-3, tau_s=5e-3), ValueError, "tau_m equals tau_s"),
    ("bad population name", lambda r, f, m: LIF("a b", 1), ValueError, "must be a Python identifier"),
    ("axonal delay as text", lambda r, f, m: _net().connect("inp", "ro", 1.0, delays=Delays(axonal="abc")),
     ValueError, "axonal delay must be numeric"),
    ("negative delay", lambda r, f, m: _net().connect("inp", "ro", 1.0, delays=Delays(synaptic=-1e-3)),
     ValueError, "synaptic delay must be >= 0"),
    ("delays as a bare array", lambda r, f, m: _net().connect("inp", "ro", 1.0, delays=np.array([1e-3, 2e-3])),
     ValueError, r"inp->ro: delays must be a Delays"),
    ("weight None", lambda r, f, m: _net().connect("inp", "ro", None), ValueError, "inp->ro weight is None"),
    ("weight NaN", lambda r, f, m: _net().connect("inp", "ro", np.nan), ValueError, "weight contains non-finite"),
    ("weight in mV, theta dimensionless", lambda r, f, m: Network().add(SpikeSource("i", 1), LIF("o", 1))
     .connect("i", "o", 0.5 * _mv()), ValueError, r"weight is a voltage but o\.theta is dimensionless"),
    ("connection probability 1.5", lambda r, f, m: _net().connect("inp", "ro", 1.0, connectivity=1.5),
     ValueError, r"probability must be in \[0, 1\]"),
    ("connectivity word", lambda r, f, m: _net().connect("inp", "ro", 1.0, connectivity="most"),
     ValueError, "must be 'all'"),
    ("unknown population", lambda r, f, m: _net().connect("inp", "nope", 1.0), KeyError, "unknown population 'nope'"),
    ("synapses onto a source", lambda r, f, m: _net().connect("out", "inp", 1.0), ValueError, "is a spike source"),
    ("projection too large for memory", lambda r, f, m: Network().add(SpikeSource("i", 10 ** 6), LIF("o", 10 ** 6))
     .connect("i", "o", 0.1), MemoryLimitError, r"needs about .* more than the .* available"),
    ("SpikeTrains.empty(1, -3)", lambda r, f, m: SpikeTrains.empty(1, -3), ValueError, "n_neurons must be an integer >= 0"),
    ("n_trials 1.5", lambda r, f, m: SpikeTrains(np.zeros(0, int), np.zeros(0, int), np.zeros(0), 1.5, 2),
     ValueError, "n_trials must be an integer >= 0"),
    ("negative spike time", lambda r, f, m: SpikeTrains.from_lists([[[-1e-3]]]), ValueError, "must be >= 0"),
    ("neuron index out of range", lambda r, f, m: SpikeTrains(np.zeros(1, int), np.array([3]), np.ones(1), 1, 2),
     ValueError, r"neuron index out of range \[0, 2\)"),
    # ---- simulate and its record
    ("sample_times after duration", lambda r, f, m: simulate(_net(), _inputs(), 0.05, record=["out"],
                                                              sample_times=[0.01, 0.06]),
     ValueError, r"sample_times must lie in \[0, duration"),
    ("2-d sample_times", lambda r, f, m: simulate(_net(), _inputs(), 0.05, record=["out"],
                                                  sample_times=[[0.01, 0.02]]),
     ValueError, r"sample_times must be .* 1-d array"),
    ("unsorted sample_times", lambda r, f, m: simulate(_net(), _inputs(), 0.05, record=["out"],
                                                       sample_times=[0.02, 0.01]), ValueError, "must be sorted"),
    ("record a spike source", lambda r, f, m: simulate(_net(), _inputs(), 0.05, record=["inp"], sample_times=[0.01]),
     ValueError, "spike sources have no voltage"),
    ("negative duration", lambda r, f, m: simulate(_net(), _inputs(), -1.0), ValueError, "duration must be > 0"),
    ("first_spike_times('nope')", lambda r, f, m: r.first_spike_times("nope"), KeyError, "unknown population 'nope'"),
    ("spikes('nope')", lambda r, f, m: r.spikes("nope"), KeyError, "unknown population 'nope'"),
    ("voltages not recorded", lambda r, f, m: r.voltages("ro"), KeyError, "was not recorded"),
    ("{} without sources", lambda r, f, m: simulate(Network().add(LIF("a", 1)), {}, 0.1),
     ValueError, "no spike source"),
    ("inputs of the wrong width", lambda r, f, m: simulate(_net(), SpikeTrains.empty(1, 5), 0.1),
     ValueError, "have 5 neurons, the population has 2"),
    ("inputs dict value", lambda r, f, m: simulate(_net(), {"inp": [[0.1]]}, 0.1),
     TypeError, r"inputs\['inp'\] must be a SpikeTrains"),
    ("NEURODELAY_THREADS=abc", lambda r, f, m: (m.setenv("NEURODELAY_THREADS", "abc"),
                                                simulate(_net(), _inputs(), 0.05)),
     ValueError, "NEURODELAY_THREADS must be a positive integer, got 'abc'"),
    # ---- losses and gradients
    ("record_tolerance -1", lambda r, f, m: loss_and_grad(_net(), _inputs(), 0.05, FirstSpikeMSE("out", 1e-3),
                                                          labels=[0, 1], params=[("inp->out", "weight")],
                                                          record_tolerance=-1),
     ValueError, "record_tolerance must be a number >= 0"),
    ("labels out of range", lambda r, f, m: loss_and_grad(_net(), _inputs(), 0.05, FirstSpikeMSE("out", 1e-3),
                                                          labels=[0, 5]), ValueError, r"labels must lie in \[0, 2\)"),
    ("loss on the wrong kind", lambda r, f, m: MaxVoltageCrossEntropy("out").value_and_sources(r, [0, 1]),
     ValueError, "needs a Readout population; 'out' is a LIF"),
    ("margin as text", lambda r, f, m: FirstSpikeMSE("out", margin="wide"), ValueError, "margin must be numeric"),
    ("unknown parameter key", lambda r, f, m: loss_and_grad(_net(), _inputs(), 0.05, FirstSpikeMSE("out", 1e-3),
                                                            labels=[0, 1], params=[("out", "speed")]),
     ValueError, "population keys are"),
    # ---- I/O
    ("missing NetCDF", lambda r, f, m: read_netcdf(f / "absent.nc"), FileNotFoundError, "no NetCDF file at"),
    ("truncated NetCDF", lambda r, f, m: read_netcdf(f / "truncated.nc"), NetCDFReadError,
     "truncated.nc: not a valid NetCDF file"),
    ("write onto a folder", lambda r, f, m: write_netcdf(xr.Dataset(), f), IsADirectoryError, "is a directory"),
    ("unknown population in a dataset", lambda r, f, m: dataset_to_spike_trains(read_netcdf(f / "spikes.nc"), "x"),
     KeyError, "population 'x' is not in the dataset"),
    # ---- datasets
    ("HDF5 times as strings", lambda r, f, m: load_spikes_hdf5(f / "strings.h5", n_units=3), ValueError,
     r"strings\.h5: /spikes/times of sample 0 are not numbers"),
    ("HDF5 scalar datasets", lambda r, f, m: load_spikes_hdf5(f / "scalar.h5", n_units=3), ValueError,
     r"scalar\.h5: wrong layout, /spikes/times must be a 1-d dataset"),
    ("HDF5 without labels", lambda r, f, m: load_spikes_hdf5(f / "nolabels.h5", n_units=3), ValueError,
     "missing dataset.* /labels"),
    ("task labels out of range", lambda r, f, m: TaskData(_inputs(), np.array([0, 4]), 2, 0.1, "t"), ValueError,
     r"labels out of range \[0, 2\)"),
    # ---- checkpoints and configurations
    ("checkpoint of the wrong layout", lambda r, f, m: load_checkpoint(f / "layout.nc"), ValueError,
     "layout.nc: damaged checkpoint, it lacks trained_keys"),
    ("truncated checkpoint", lambda r, f, m: load_checkpoint(f / "truncated.nc"), NetCDFReadError,
     "truncated.nc: not a valid NetCDF"),
    ("NetCDF that is no checkpoint", lambda r, f, m: load_checkpoint(f / "spikes.nc"), ValueError,
     "is not a neurodelay training checkpoint"),
    ('"epochs": "two"', lambda r, f, m: RunConfig.from_dict({"epochs": "two"}), ValueError,
     "epochs must be a positive integer, got 'two'"),
    ("unknown config key", lambda r, f, m: RunConfig.from_dict({"epoch": 3}), ValueError,
     r"unknown configuration key\(s\) \['epoch'\]"),
    ("unknown model_options key", lambda r, f, m: resolve_config(RunConfig("sequence", model_options={"wieght": 1})),
     ValueError, r"model_options: unknown key\(s\) \['wieght'\] for task 'sequence'"),
    ("unknown task_options key", lambda r, f, m: resolve_config(RunConfig("sequence", task_options={"gap": 1})),
     ValueError, r"task_options: unknown key\(s\) \['gap'\]"),
    ("unknown lr_by key", lambda r, f, m: build_model(RunConfig("sequence", lr_by={"weights": 0.1})),
     ValueError, r"lr_by: \['weights'\] name no trained parameter"),
    ("lr_by value", lambda r, f, m: RunConfig("sequence", lr_by={"synaptic": "fast"}), ValueError,
     r"lr_by\['synaptic'\] must be a number > 0"),
]


@pytest.mark.parametrize("probe", PROBES, ids=[p[0] for p in PROBES])
def test_probe_gives_one_line_error(probe, rec, files, monkeypatch):
    name, call, kind, pattern = probe
    monkeypatch.setenv("NEURODELAY_MEMORY_LIMIT", "8G")  # the memory probe must not depend on this machine
    with pytest.raises(kind) as info:
        call(rec, files, monkeypatch)
    exc = info.value
    message = str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)
    assert "\n" not in message.strip(), f"{name}: the message has several lines: {message!r}"
    assert message.strip(), f"{name}: empty message"
    assert re.search(pattern, message), f"{name}: {message!r} does not match {pattern!r}"


def test_at_least_forty_probes():
    assert len(PROBES) >= 40


# ---- the command line: one line on stderr, exit status 2 -------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished sequence run (a real checkpoint for the evaluate / resume probes)."""
    out = tmp_path_factory.mktemp("run") / "seq"
    assert main(["train", "sequence", "--out", str(out)] + SEQ) == 0
    return out


CLI_PROBES = [
    ("unknown task", lambda d, f: ["train", "chess", "--out", str(d / "x")], "unknown task 'chess'"),
    ("epochs 0", lambda d, f: ["train", "sequence", "--epochs", "0"], "must be a positive integer"),
    ("epochs as text in a config", lambda d, f: ["train", "sequence", "--config", str(_config(d, {"epochs": "two"}))],
     "epochs must be a positive integer, got 'two'"),
    ("task_options unknown key", lambda d, f: ["train", "sequence", "--config",
                                               str(_config(d, {"task_options": {"gap": 2}}))],
     r"task_options: unknown key\(s\) \['gap'\]"),
    ("model_options unknown key", lambda d, f: ["train", "sequence", "--out", str(d / "m"), "--config",
                                                str(_config(d, {"model_options": {"tau": 2}}))],
     r"model_options: unknown key\(s\) \['tau'\]"),
    ("lr_by unknown key", lambda d, f: ["train", "sequence", "--out", str(d / "l"), "--config",
                                        str(_config(d, {"lr_by": {"wieght": 0.1}}))] + SEQ,
     r"lr_by: \['wieght'\]"),
    ("config missing", lambda d, f: ["train", "sequence", "--config", str(d / "none.toml")], "does not exist"),
    ("train --out is a file", lambda d, f: ["train", "sequence", "--out", str(f / "afile")] + SEQ,
     "output folder .*afile is a file"),
    ("evaluate a truncated checkpoint", lambda d, f: ["evaluate", str(f / "truncated.nc")],
     "truncated.nc: not a valid NetCDF file"),
    ("evaluate a checkpoint of the wrong layout", lambda d, f: ["evaluate", str(f / "layout.nc")],
     "damaged checkpoint, it lacks trained_keys"),
    ("evaluate a missing checkpoint", lambda d, f: ["evaluate", str(f / "absent.nc")], "no NetCDF file"),
    ("evaluate --out a folder", lambda d, f: ["evaluate", str(d / "last.nc"), "--out", str(f)], "is a folder"),
    ("evaluate --out below a file", lambda d, f: ["evaluate", str(d / "last.nc"), "--out", str(f / "afile" / "e.nc")],
     "cannot write --out"),
    ("resume with another --lr", lambda d, f: ["train", "sequence", "--out", str(d), "--resume", "--lr", "0.5"] + SEQ,
     r"cannot resume .* lr=0\.01 \(now 0\.5\)"),
    ("resume with another --seed", lambda d, f: ["train", "sequence", "--out", str(d), "--resume", "--seed", "3"] + SEQ,
     r"cannot resume .* seed=0 \(now 3\)"),
]


def _config(folder, content: dict):
    path = folder.parent / f"cfg{abs(hash(json.dumps(content, sort_keys=True)))}.json"
    path.write_text(json.dumps(content))
    return path


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return exc.code


@pytest.mark.parametrize("probe", CLI_PROBES, ids=[p[0] for p in CLI_PROBES])
def test_cli_probe_exits_2_with_one_line(probe, trained, files, capsys):
    name, argv, pattern = probe
    capsys.readouterr()
    status = _run(argv(trained, files))
    err = capsys.readouterr().err.strip()
    assert status == 2, f"{name}: exit status {status}, stderr {err!r}"
    assert len(err.splitlines()) == 1, f"{name}: stderr is not one line: {err!r}"
    assert re.search(pattern, err), f"{name}: {err!r} does not match {pattern!r}"


def test_resume_with_changed_settings_keeps_the_recorded_ones(trained, capsys):
    """The issue: --resume --lr/--seed ignored the new value but wrote it into config.json and the checkpoint."""
    before = {p: (trained / p).read_bytes() for p in ("config.json", "last.nc", "history.nc")}
    assert main(["train", "sequence", "--out", str(trained), "--resume", "--lr", "0.5"] + SEQ) == 2
    assert {p: (trained / p).read_bytes() for p in before} == before
    assert json.loads((trained / "config.json").read_text())["lr"] == 0.01
    assert load_checkpoint(trained / "last.nc").config["lr"] == 0.01


# ---- importing neurodelay leaves sys.excepthook alone ------------------------------------------------

def test_import_does_not_import_brian2_or_replace_the_excepthook():
    code = ("import sys\n"
            "import neurodelay, neurodelay.network, neurodelay.events, neurodelay.io, neurodelay.cli\n"
            "import neurodelay.train.runs, neurodelay.gradients, neurodelay.losses, neurodelay.analysis\n"
            "from neurodelay.network import LIF, Network, SpikeSource\n"
            "from neurodelay.spikes import SpikeTrains\n"
            "from neurodelay import simulate\n"
            "net = Network().add(SpikeSource('i', 1), LIF('o', 1)).connect('i', 'o', 2.0)\n"
            "simulate(net, SpikeTrains.from_lists([[[1e-3]]]), 0.02, n_threads=1)\n"
            "assert 'brian2' not in sys.modules, 'brian2 was imported'\n"
            "assert sys.excepthook is sys.__excepthook__\n"
            "raise RuntimeError('an unrelated error in a user script')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert out.returncode == 1
    assert "RuntimeError: an unrelated error in a user script" in out.stderr
    assert "Brian 2 encountered an unexpected error" not in out.stderr
