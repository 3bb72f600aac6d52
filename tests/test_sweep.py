"""neurodelay.sweep: seeds, files, resuming, failures, merging, and a real LocalCluster.

Truth used here: the point functions are called directly with the seeds
derived independently (numpy's SeedSequence) and compared with the merged
result; calls are counted through marker files the functions write, so
"never recomputed" is observed, not assumed; a worker process is killed with
SIGKILL in the middle of a sweep.

The point functions live at module level so that Dask's worker processes can
import them (as ``test_sweep``) from the path pytest puts this folder on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neurodelay.cli import main
from neurodelay.io import read_netcdf
from neurodelay.sweep import (DaskExecutor, LocalExecutor, SerialExecutor, SlurmExecutor, collect, derive_seeds,
                              point_path, run_sweep, sweep_points)

GRID = {"rate": [5.0, 10.0, 20.0], "mode": ["weights", "delays"]}


# ---- point functions (module level: picklable by reference) --------------------------------------------

def _mark(markers, name: str) -> None:
    if markers is not None:
        Path(markers, f"{name}.{uuid.uuid4().hex}.call").write_text(str(os.getpid()))


def _calls(markers, name: str | None = None) -> int:
    return len([p for p in Path(markers).glob("*.call") if name is None or p.name.split(".")[0] == name])


def noisy_point(rate, mode, seed, markers=None):
    """Random numbers from the seed, scaled by the parameters; variables of several types and shapes."""
    _mark(markers, f"{rate}-{mode}-{seed}")
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate, size=4)
    return xr.Dataset({"count": ("trial", counts.astype(np.int64)),
                       "mean_rate": ((), float(counts.mean()) * (2.0 if mode == "delays" else 1.0), {"units": "Hz"}),
                       "label": ((), f"{mode}:{rate:g}")},
                      coords={"trial": np.arange(4)}, attrs={"model": "poisson"})


def flaky_point(x, seed, markers):
    """Fails on its first call for odd x; always for x == 4; the others succeed at once."""
    _mark(markers, f"x{x}")
    if x == 4:
        raise ValueError(f"x = {x} is not allowed")
    if x % 2 and _calls(markers, f"x{x}") == 1:
        raise RuntimeError("transient failure")
    return xr.Dataset({"y": ((), float(x) * 10 + seed % 7)})


def ragged_point(epochs, seed):
    """A history whose length depends on the point (coordinate `epoch`: padded with NaN when merged)."""
    return xr.Dataset({"loss": ("epoch", 1.0 / np.arange(1, epochs + 1))}, coords={"epoch": np.arange(1, epochs + 1)})


def killer_point(x, seed, markers, folder, kill_at, wait_for):
    """Sleeps a little; point `kill_at` (once) waits until `wait_for` points are on disk, writes their names,
    and kills its own worker process with SIGKILL."""
    _mark(markers, f"x{x}")
    flag = Path(markers) / "killed.json"
    if x == kill_at and not flag.exists():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = sorted(p.name for p in Path(folder).glob("*.nc") if not p.name.startswith("."))
            if len(done) >= wait_for:
                break
            time.sleep(0.02)
        flag.write_text(json.dumps({"pid": os.getpid(), "finished": done}))
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.3)
    return xr.Dataset({"y": ((), float(x) + np.random.default_rng(seed).random())})


# ---- seeds and the plan ----------------------------------------------------------------------------------

def test_seeds_come_from_the_root_seed_sequence_and_do_not_depend_on_their_number():
    expected = [int(np.random.SeedSequence(11).spawn(5)[k].generate_state(1, np.uint32)[0]) for k in range(5)]
    assert derive_seeds(11, 5) == expected
    assert derive_seeds(11, 3) == expected[:3]
    assert derive_seeds(12, 3) != expected[:3]
    points = sweep_points(GRID, 2, root_seed=11)
    assert len(points) == 12 and len({p.name for p in points}) == 12
    # paired comparisons: every grid point gets the same seed for the same seed index
    assert {p.seed for p in points if p.seed_index == 1} == {expected[1]}


@pytest.mark.parametrize("kwargs, message", [
    (dict(grid={"rate": []}), "empty"),
    (dict(grid={"rate": [1.0, 1.0]}), "repeats"),
    (dict(grid={"seed": [1]}), "reserved"),
    (dict(grid={"rate": [1.0, "a"]}), "mixes"),
    (dict(grid={"rate": [float("nan")]}), "finite"),
    (dict(grid={"rate": 3.0}), "list of values"),
    (dict(grid={"not an id": [1]}), "identifier"),
    (dict(grid={"rate": [1.0]}, seeds=0), "seeds"),
    (dict(grid={"rate": [1.0]}, root_seed=-1), "root_seed"),
    (dict(grid={"rate": [1.0]}, retries=-1), "retries"),
    (dict(grid={"rate": [1.0]}, executor="nonsense"), "executor"),
    (dict(grid={"rate": [1.0]}, fixed={"rate": 2.0}), "fixed"),
])
def test_bad_arguments_raise_one_clear_value_error(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_sweep(noisy_point, folder=tmp_path / "s", progress=False, **{"executor": "serial", **kwargs})


def test_importing_the_sweep_module_does_not_import_dask():
    code = "import sys, neurodelay, neurodelay.sweep; print(any(m.split('.')[0] in ('dask', 'distributed', " \
           "'dask_jobqueue') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


# ---- serial: values, files, resuming, failures -----------------------------------------------------------

def test_serial_sweep_merges_every_point_with_its_seed_and_never_recomputes(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    ds = run_sweep(noisy_point, GRID, seeds=3, folder=tmp_path / "s", root_seed=5, executor="serial",
                   progress=False, fixed={"markers": str(markers)})
    seeds = derive_seeds(5, 3)
    assert list(ds["count"].dims) == ["rate", "mode", "seed", "trial"]
    assert ds["rate"].values.tolist() == GRID["rate"] and ds["mode"].values.tolist() == GRID["mode"]
    assert ds["seed"].values.tolist() == [0, 1, 2] and ds["seed_value"].values.tolist() == seeds
    assert ds["count"].dtype == np.int64 and (ds["status"] == "ok").all() and (ds["error"] == "").all()
    for rate in GRID["rate"]:
        for mode in GRID["mode"]:
            for k, seed in enumerate(seeds):
                direct = noisy_point(rate, mode, seed)
                at = dict(rate=rate, mode=mode, seed=k)
                np.testing.assert_array_equal(ds["count"].sel(at).values, direct["count"].values)
                assert ds["mean_rate"].sel(at).item() == direct["mean_rate"].item()
                assert ds["label"].sel(at).item() == direct["label"].item()
    assert ds["mean_rate"].attrs["units"] == "Hz" and ds.attrs["model"] == "poisson"
    assert (ds["wall_time"] >= 0).all() and (ds["attempts"] == 1).all() and (ds["host"] != "").all()
    assert json.loads(ds.attrs["parameters"]) == GRID and ds.attrs["seed"] == 5
    assert json.loads(ds.attrs["sweep_counts"])["ok"] == 18
    assert _calls(markers) == 18
    # one file per point; re-running computes nothing and gives the same merge
    assert len([p for p in (tmp_path / "s").glob("*.nc")]) == 18
    again = run_sweep(noisy_point, GRID, seeds=3, folder=tmp_path / "s", root_seed=5, executor="serial",
                      progress=False, fixed={"markers": str(markers)})
    assert _calls(markers) == 18
    xr.testing.assert_identical(again.drop_attrs(), ds.drop_attrs())
    # one more seed: only the new points run, the old ones keep their numbers
    more = run_sweep(noisy_point, GRID, seeds=4, folder=tmp_path / "s", root_seed=5, executor="serial",
                     progress=False, fixed={"markers": str(markers)})
    assert _calls(markers) == 24
    xr.testing.assert_identical(more["count"].isel(seed=slice(0, 3)), ds["count"])


def test_failing_points_are_retried_then_recorded_and_the_sweep_goes_on(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    grid = {"x": [0, 1, 2, 3, 4]}
    ds = run_sweep(flaky_point, grid, seeds=1, folder=tmp_path / "s", executor="serial", retries=0,
                   progress=False, fixed={"markers": str(markers)})
    assert ds["status"].values[:, 0].tolist() == ["ok", "failed", "ok", "failed", "failed"]
    assert ds["error"].sel(x=4, seed=0).item() == "ValueError: x = 4 is not allowed"
    assert ds["error"].sel(x=1, seed=0).item() == "RuntimeError: transient failure"
    assert np.isnan(ds["y"].sel(x=[1, 3, 4])).all() and ds["y"].sel(x=2, seed=0).item() == 20 + ds.seed_value[0] % 7
    # re-running resumes: only the failed points run again; with a retry the transient ones succeed
    ds = run_sweep(flaky_point, grid, seeds=1, folder=tmp_path / "s", executor="serial", retries=1,
                   progress=False, fixed={"markers": str(markers)})
    assert ds["status"].values[:, 0].tolist() == ["ok", "ok", "ok", "ok", "failed"]
    assert [_calls(markers, f"x{x}") for x in range(5)] == [1, 2, 1, 2, 3]
    assert ds["attempts"].values[:, 0].tolist() == [1, 1, 1, 1, 2]
    assert ds["y"].sel(x=3, seed=0).item() == 30 + ds.seed_value[0] % 7
    failure = json.loads(next((tmp_path / "s").glob("*.failed.json")).read_text())
    assert failure["point"] == {"x": 4} and "Traceback" in failure["traceback"]
    # a point that succeeds later loses its failure record
    assert len(list((tmp_path / "s").glob("*.failed.json"))) == 1


def test_collect_on_a_partly_finished_folder_gives_nan_and_a_status(tmp_path):
    folder = tmp_path / "s"
    full = run_sweep(noisy_point, GRID, seeds=2, folder=folder, executor="serial", progress=False)
    points = sweep_points(GRID, 2)
    gone, broken = points[3], points[7]
    point_path(folder, gone).unlink()
    path = point_path(folder, broken)
    path.write_bytes(path.read_bytes()[:200])  # truncated: an interrupted copy, a full disk
    part = collect(folder)
    at_gone = dict(rate=gone.params["rate"], mode=gone.params["mode"], seed=gone.seed_index)
    at_broken = dict(rate=broken.params["rate"], mode=broken.params["mode"], seed=broken.seed_index)
    assert part["status"].sel(at_gone).item() == "missing" and part["status"].sel(at_broken).item() == "corrupt"
    assert "corrupt point file" in part["error"].sel(at_broken).item()
    assert (part["status"] == "ok").sum().item() == 10
    for at in (at_gone, at_broken):
        assert np.isnan(part["count"].sel(at).values).all() and np.isnan(part["mean_rate"].sel(at).item())
        assert part["label"].sel(at).item() == ""
    ok = part["status"] == "ok"
    xr.testing.assert_equal(part["count"].where(ok), full["count"].where(ok).astype(float))
    # the sweep recomputes exactly the missing and the corrupt point, giving the same numbers
    markers = tmp_path / "markers"
    markers.mkdir()
    again = run_sweep(noisy_point, GRID, seeds=2, folder=folder, executor="serial", progress=False,
                      fixed={"markers": str(markers)})
    assert _calls(markers) == 2 and (again["status"] == "ok").all()
    xr.testing.assert_identical(again["count"], full["count"])


def test_a_file_holding_another_point_is_not_merged(tmp_path):
    folder = tmp_path / "s"
    run_sweep(noisy_point, GRID, seeds=1, folder=folder, executor="serial", progress=False)
    a, b = sweep_points(GRID, 1)[:2]
    point_path(folder, a).write_bytes(point_path(folder, b).read_bytes())
    ds = collect(folder)
    assert ds["status"].sel(rate=5.0, mode=a.params["mode"], seed=0).item() == "corrupt"
    assert "holds another point" in ds["error"].sel(rate=5.0, mode=a.params["mode"], seed=0).item()


def test_points_with_histories_of_different_lengths_are_padded(tmp_path):
    ds = run_sweep(ragged_point, {"epochs": [2, 5, 3]}, seeds=1, folder=tmp_path / "s", executor="serial",
                   progress=False)
    assert ds.sizes["epoch"] == 5
    loss = ds["loss"].sel(seed=0)
    np.testing.assert_array_equal(loss.sel(epochs=3).values, [1, 1 / 2, 1 / 3, np.nan, np.nan])
    np.testing.assert_array_equal(loss.sel(epochs=5).values, 1 / np.arange(1, 6))


def test_a_returned_value_that_is_not_a_dataset_is_recorded(tmp_path):
    ds = run_sweep(_returns_a_number, {"x": [1]}, seeds=1, folder=tmp_path / "s", executor="serial",
                   retries=0, progress=False)
    assert ds["status"].item() == "failed" and "expected an xarray Dataset" in ds["error"].item()


def _returns_a_number(x, seed):
    return 3.0


def test_merged_result_writes_to_netcdf(tmp_path):
    from neurodelay.io import write_netcdf
    ds = run_sweep(flaky_point, {"x": [2, 4]}, seeds=2, folder=tmp_path / "s", executor="serial", retries=0,
                   progress=False, fixed={"markers": str(tmp_path)})
    back = read_netcdf(write_netcdf(ds, tmp_path / "merged.nc"))
    xr.testing.assert_identical(back[["y", "status", "error", "seed_value"]], ds[["y", "status", "error",
                                                                                 "seed_value"]])


# ---- Dask --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    """One LocalCluster of 2 worker processes (one thread each) for the Dask tests of this module."""
    pytest.importorskip("distributed")
    cluster = LocalExecutor(workers=2).cluster()
    from distributed import Client
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_the_local_cluster_never_drops_a_busy_worker_for_missed_heartbeats(dask_client):
    """Points run compiled code for minutes; on an overloaded machine their workers miss heartbeats, and
    Dask's default worker-ttl (5 min) removed such a worker with its point (a capacity run at load 19)."""
    import dask

    assert dask.config.get("distributed.scheduler.worker-ttl") is not None   # the default is left alone
    assert dask_client.cluster.scheduler.worker_ttl is None
    assert "worker-ttl" not in dask_client.cluster.scheduler.periodic_callbacks


def test_local_cluster_gives_results_identical_to_the_serial_executor(tmp_path, dask_client):
    serial = run_sweep(noisy_point, GRID, seeds=2, folder=tmp_path / "serial", root_seed=3,
                       executor=SerialExecutor(), progress=False)
    dask = run_sweep(noisy_point, GRID, seeds=2, folder=tmp_path / "dask", root_seed=3,
                     executor=DaskExecutor(client=dask_client, engine_threads=1), progress=False)
    assert len(set(dask["host"].values.ravel())) == 1
    skip = ["wall_time", "host"]
    xr.testing.assert_identical(dask.drop_vars(skip).drop_attrs(), serial.drop_vars(skip).drop_attrs())
    # the workers ran with one engine thread each
    threads = dask_client.run(lambda: os.environ.get("NEURODELAY_THREADS"))
    assert set(threads.values()) == {"1"} and len(threads) == 2


def test_a_worker_killed_mid_sweep_loses_and_recomputes_no_finished_point(tmp_path, dask_client):
    markers = tmp_path / "markers"
    markers.mkdir()
    folder = tmp_path / "s"
    grid = {"x": list(range(10))}
    worker_pids = set(dask_client.run(os.getpid).values())
    ds = run_sweep(killer_point, grid, seeds=1, folder=folder, executor=DaskExecutor(client=dask_client),
                   retries=1, progress=False,
                   fixed=dict(markers=str(markers), folder=str(folder), kill_at=7, wait_for=4))
    killed = json.loads((markers / "killed.json").read_text())
    assert killed["pid"] in worker_pids and len(killed["finished"]) >= 4
    assert (ds["status"] == "ok").all(), ds["error"].values
    points = {point_path(folder, p).name: p for p in sweep_points(grid, 1)}
    for name in killed["finished"]:
        assert _calls(markers, f"x{points[name].params['x']}") == 1, name
    assert _calls(markers, "x7") == 2          # killed mid-call, then run to the end elsewhere
    # a point computed on the killed worker but not yet written may run again; no point runs a third time
    assert all(1 <= _calls(markers, f"x{x}") <= 2 for x in range(10))
    seed = derive_seeds(0, 1)[0]
    np.testing.assert_array_equal(ds["y"].values[:, 0], np.arange(10) + np.random.default_rng(seed).random())


def test_slurm_executor_writes_a_job_script_without_submitting():
    pytest.importorskip("dask_jobqueue")
    ex = SlurmExecutor(cores=4, memory="8GB", walltime="02:00:00", queue="compute", account="lab", jobs=3,
                       job_script_prologue=["source .venv/bin/activate"])
    script = ex.job_script()
    for line in ("#SBATCH -p compute", "#SBATCH -A lab", "#SBATCH --cpus-per-task=4", "#SBATCH -t 02:00:00",
                 "export NEURODELAY_THREADS=1", "source .venv/bin/activate", "--nthreads 1", "--nworkers 4"):
        assert line in script, line
    with pytest.raises(ValueError, match="walltime"):
        SlurmExecutor(walltime="two hours")
    with pytest.raises(ValueError, match="divide"):
        SlurmExecutor(cores=4, processes=3)


# ---- CLI ---------------------------------------------------------------------------------------------

def _config(tmp_path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_cli_runs_a_sweep_from_a_config_and_collects_it(tmp_path, capsys):
    config = _config(tmp_path, 'function = "test_sweep:noisy_point"\nseeds = 2\nroot_seed = 4\n'
                               '[grid]\nrate = [5.0, 10.0]\nmode = ["weights"]\n')
    out = tmp_path / "run"
    assert main(["sweep", str(config), "--serial", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "4 ok" in text
    merged = read_netcdf(out / "merged.nc")
    direct = run_sweep(noisy_point, {"rate": [5.0, 10.0], "mode": ["weights"]}, seeds=2, root_seed=4,
                       folder=tmp_path / "direct", executor="serial", progress=False)
    xr.testing.assert_equal(merged["count"], direct["count"])
    (out / "merged.nc").unlink()
    assert main(["sweep", "collect", str(out)]) == 0
    assert "4 ok" in capsys.readouterr().out
    xr.testing.assert_equal(read_netcdf(out / "merged.nc")["count"], direct["count"])


@pytest.mark.parametrize("text, message", [
    ('seeds = 2\n[grid]\nrate = [1.0]\n', "function"),
    ('function = "no_such_module_xyz:f"\n[grid]\nrate = [1.0]\n', "no_such_module_xyz"),
    ('function = "test_sweep:no_such_function"\n[grid]\nrate = [1.0]\n', "no_such_function"),
    ('function = "test_sweep:noisy_point"\n[grid]\nrate = []\n', "empty"),
    ('function = "test_sweep:noisy_point"\nseeds = "three"\n[grid]\nrate = [1.0]\n', "seeds"),
    ('function = "test_sweep:noisy_point"\ncolour = 1\n[grid]\nrate = [1.0]\n', "colour"),
    ('function = "test_sweep:noisy_point\n', "cannot read"),
])
def test_cli_bad_configs_give_one_line_and_exit_2(tmp_path, capsys, text, message):
    config = _config(tmp_path, text)
    assert main(["sweep", str(config), "--serial", "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neurodelay sweep: error:") and message in err and "\n" not in err
    assert "Traceback" not in err


def test_cli_records_a_failing_point_writes_the_result_and_exits_1(tmp_path, capsys):
    config = _config(tmp_path, f'function = "test_sweep:flaky_point"\nretries = 0\n[grid]\nx = [2, 4]\n'
                               f'[fixed]\nmarkers = "{tmp_path}"\n')
    assert main(["sweep", str(config), "--serial", "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "1 ok, 1 failed" in capsys.readouterr().out
    merged = read_netcdf(tmp_path / "o" / "merged.nc")
    assert merged["status"].values[:, 0].tolist() == ["ok", "failed"]
    assert merged["error"].sel(x=4, seed=0).item() == "ValueError: x = 4 is not allowed"


def test_cli_prints_the_slurm_job_script_without_submitting(tmp_path, capsys):
    pytest.importorskip("dask_jobqueue")
    config = _config(tmp_path, 'function = "test_sweep:noisy_point"\n[grid]\nrate = [1.0]\n'
                               '[slurm]\ncores = 2\nmemory = "2GB"\naccount = "lab"\n')
    assert main(["sweep", str(config), "--slurm", "--queue", "short", "--walltime", "00:10:00",
                 "--print-job-script"]) == 0
    script = capsys.readouterr().out
    for line in ("#SBATCH -p short", "#SBATCH -A lab", "#SBATCH -t 00:10:00", "#SBATCH --cpus-per-task=2"):
        assert line in script, line


def test_cli_sweep_help_and_collect_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in ("collect", "--scheduler", "--workers", "--slurm", "--out", "grid", "seeds", "SLURM"):
        assert word in text, word
    assert main(["sweep", "collect", str(tmp_path)]) == 2
    assert "no sweep.json" in capsys.readouterr().err
