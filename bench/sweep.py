"""Sweep benchmark: overhead per point of neurodelay.sweep, and the speed-up from 1 to 2 workers on training runs.

* Overhead: an "empty" point function (returns a one-number Dataset at once)
  over `--points` points, on the serial executor and on a LocalCluster of 2
  worker processes (cluster already started; its start-up is reported apart).
  The time per point includes everything the sweep does for it: submit,
  transfer, the atomic NetCDF write (with fsync), and the final merge
  (``collect``, also timed alone).
* Speed-up: `--runs` short real training runs (Yin-Yang, weights + synaptic
  delays, tiny: see TRAIN) as one sweep over seeds, on a LocalCluster of 1 and
  of 2 workers (one engine thread each; cluster start-up excluded). Speed-up =
  wall(1 worker) / wall(2 workers); the ideal is min(2, usable cores). The
  numba cache is warmed first, so neither includes compilation. The two
  sweeps must give identical test accuracies (checked). Also reported:
  overlap = sum of the points' wall times / the sweep's wall time (about the
  number of points that ran at once; on a machine shared with other work the
  speed-up falls below it, as each point gets less of a core).

The machine's load average is recorded: on a shared machine the numbers move.

usage: python bench/sweep.py [--quick] [--json PATH] [--points N] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(os.environ.get("NEURODELAY_CACHE", _ROOT / "build" / "cache"))
                                             / "numba"))

from _common import (default_json_path, package_versions, print_table, stopwatch,  # noqa: E402
                     write_json_atomic, writable_path)

import xarray as xr  # noqa: E402

from neurodelay.sweep import DaskExecutor, LocalExecutor, SerialExecutor, collect, run_sweep  # noqa: E402

#: the training run of one point (RunConfig fields; the seed comes from the sweep)
TRAIN = dict(task="yinyang", hidden=12, learn=["weight", "synaptic"], epochs=2, batch_size=50, n_train=300,
             n_validation=100, n_test=200)


def empty_point(x, seed):
    """Nothing to compute: one number."""
    return xr.Dataset({"y": ((), float(x))})


def train_point(x, seed, folder):
    """One short training run (TRAIN) with this seed; its test accuracy and training time."""
    from neurodelay.train import RunConfig, train_run

    result, evaluation = train_run(RunConfig(**TRAIN, seed=seed % 2**31), Path(folder) / f"run-{x}-{seed}",
                                   progress=False)
    return xr.Dataset({"test_accuracy": ((), float(evaluation.attrs["accuracy"])),
                       "train_time": ((), float(result.history["elapsed"].values[-1]), {"units": "s"})})


def _timed_sweep(func, grid, seeds, folder, executor, fixed=None):
    shutil.rmtree(folder, ignore_errors=True)
    with stopwatch() as wall:
        ds = run_sweep(func, grid, seeds=seeds, folder=folder, executor=executor, retries=0, progress=False,
                       fixed=fixed)
    assert (ds["status"] == "ok").all(), ds["error"].values
    return ds, wall()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and runs (about two minutes)")
    parser.add_argument("--json", type=writable_path, default=default_json_path("sweep"), help="output JSON path")
    parser.add_argument("--points", type=int, help="points of the overhead sweep (default 200, quick 40)")
    parser.add_argument("--runs", type=int, help="training runs of the speed-up sweep (default 8, quick 4)")
    args = parser.parse_args(argv)
    n_points = args.points or (40 if args.quick else 200)
    n_runs = args.runs or (4 if args.quick else 8)
    load_before = os.getloadavg()
    from distributed import Client

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        grid = {"x": list(range(n_points))}
        _, serial_wall = _timed_sweep(empty_point, grid, 1, tmp / "serial", SerialExecutor())
        with stopwatch() as t_collect:
            collect(tmp / "serial")
        rows.append({"case": "empty point", "executor": "serial", "points": n_points, "wall_s": serial_wall,
                     "ms_per_point": 1e3 * serial_wall / n_points})
        with stopwatch() as t_start:
            cluster = LocalExecutor(workers=2).cluster()
            client = Client(cluster)
            client.wait_for_workers(2)
        try:
            ex = DaskExecutor(client=client, engine_threads=1)
            _timed_sweep(empty_point, {"x": [0, 1]}, 1, tmp / "warm", ex)   # worker set-up (brian2 import) once
            _, local_wall = _timed_sweep(empty_point, grid, 1, tmp / "local", ex)
        finally:
            client.close()
            cluster.close()
        rows.append({"case": "empty point", "executor": "LocalCluster(2)", "points": n_points, "wall_s": local_wall,
                     "ms_per_point": 1e3 * local_wall / n_points})

        # warm the numba cache for the training kernels in this process (the workers load it from disk)
        train_point(0, 1, tmp / "warm_train")
        walls, accuracies, overlap = {}, {}, {}
        for workers in (1, 2):
            cluster = LocalExecutor(workers=workers).cluster()
            client = Client(cluster)
            client.wait_for_workers(workers)
            try:
                ex = DaskExecutor(client=client, engine_threads=1)
                _timed_sweep(empty_point, {"x": [0, 1]}, 1, tmp / f"warm{workers}", ex)
                ds, walls[workers] = _timed_sweep(train_point, {"x": [0]}, n_runs, tmp / f"train{workers}", ex,
                                                  fixed={"folder": str(tmp / f"runs{workers}")})
                accuracies[workers] = ds["test_accuracy"].values.ravel()
                overlap[workers] = float(ds["wall_time"].sum()) / walls[workers]
            finally:
                client.close()
                cluster.close()
            rows.append({"case": "training run", "executor": f"LocalCluster({workers})", "points": n_runs,
                         "wall_s": walls[workers], "ms_per_point": 1e3 * walls[workers] / n_runs,
                         "overlap": overlap[workers]})
    identical = bool(np.array_equal(accuracies[1], accuracies[2]))
    speedup = walls[1] / walls[2]
    print_table(rows, ["case", "executor", "points", "wall_s", "ms_per_point", "overlap"])
    print(f"collect of {n_points} points: {t_collect():.2f} s; LocalCluster(2) start-up {t_start():.1f} s")
    print(f"speed-up 1 -> 2 workers on {n_runs} training runs: {speedup:.2f}x "
          f"(usable cores {len(os.sched_getaffinity(0))}); accuracies identical: {identical}")
    result = {
        "overhead_ms_per_point_serial": rows[0]["ms_per_point"],
        "overhead_ms_per_point_local2": rows[1]["ms_per_point"],
        "collect_s": t_collect(), "collect_points": n_points,
        "local_cluster_startup_s": t_start(),
        "train_runs": n_runs, "train_config": TRAIN,
        "train_wall_s_1_worker": walls[1], "train_wall_s_2_workers": walls[2], "speedup_1_to_2_workers": speedup,
        "train_accuracies_identical": identical,
        "train_overlap_1_worker": overlap[1], "train_overlap_2_workers": overlap[2],
        "rows": rows, "quick": args.quick,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "versions": package_versions("neurodelay", "numpy", "xarray", "dask", "distributed", "numba"),
    }
    if not identical:
        print("the 1- and 2-worker sweeps gave different accuracies", file=sys.stderr)
    write_json_atomic(args.json, result)
    print(f"-> {args.json}")
    return result


if __name__ == "__main__":
    main()
