"""Training results on the published tasks: accuracy (mean ± std over seeds), learning curves, wall time.

Runs (each one a `neurodelay train` configuration, see neurodelay.train.recipes):

* Yin-Yang, DelGrad's simulation settings (theta = 1, tau_m = 2 tau_s, trial
  4 tau_s, Adam lr 0.005, batch 150, first-spike MSE with margin 0.2 tau_s):
  weights only, + axonal, + dendritic, + synaptic delays, for several hidden
  sizes (accuracy vs number of trained parameters); the decision regions of
  the 30-hidden networks on a grid over the unit square.
* Sequence detection: synaptic delays only, from the worst initialisation.
* Multi-time-scale XOR: weights only with fixed homogeneous time constants
  (baseline; also with twice the hidden neurons, as many parameters as with
  delays) vs + learned synaptic delays vs + trained time constants (tau_m and
  tau_s, or tau_s alone).
* Permuted sequential digits: recurrent hidden layer with learned recurrent
  synaptic delays vs without (hidden size raised to the same parameter count).

Scales: ``--quick`` (a few minutes, tiny), default (reduced: fewer epochs and
one seed, about ten minutes on two cores), ``--full`` (the published
settings: 300 Yin-Yang epochs, three seeds; hours on two cores, use ``--jobs``
or ``--scheduler`` on a bigger machine or a cluster).

The runs are one :func:`neurodelay.sweep.run_sweep` over the grid ``run`` (the
run names of the plan, one seed: each run's training seed is part of its
configuration, as published). Each run keeps its checkpoints in ``--runs``
(default build/train_runs/<scale>) and its numbers in the sweep folder
``<runs>/sweep``, so an interrupted analysis resumes where it stopped (an
unfinished run from its last epoch) and finished runs are not repeated.

Result: analyses/results/train_results.nc (read by paper_figures/fig_training.py).
Usage: python analyses/train_results.py [--quick | --full] [--out PATH] [--runs DIR]
                                        [--jobs N | --scheduler ADDRESS] [--only TASK,...] [--collect]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parent.parent
RESULT = "train_results.nc"
EXPECTED_SECONDS = {"quick": 240, "default": 820, "full": 9000}   # wall time on 2 quiet cores (--full: --jobs 1)
DEFAULT_OUT = ROOT / "analyses" / "results" / RESULT

YY_KINDS = (("weight",), ("weight", "axonal"), ("weight", "dendritic"), ("weight", "synaptic"))
GRID = 101                       # decision-region grid points per axis
QUANTISE_STEPS = (1e-4, 5e-4, 1e-3)   # s: hardware delay grids for the Yin-Yang evaluation (tau_s = 5 ms)

SCALES = {
    "quick": dict(
        seeds=(0,), yy_hidden=(30,), yy_kinds=(YY_KINDS[0], YY_KINDS[3]), yy=dict(epochs=6, n_train=1500),
        seq=dict(epochs=30), seq_seeds=(0,),
        xor=dict(epochs=8, n_train=400, n_validation=100, n_test=300, hidden=24),
        digits=dict(epochs=4, n_train=400, n_test=200, hidden=24)),
    "default": dict(
        seeds=(0,), yy_hidden=(30,), yy_kinds=YY_KINDS, yy=dict(epochs=40),
        seq=dict(epochs=60), seq_seeds=(0, 1, 2),
        xor=dict(epochs=25), digits=dict(epochs=12)),
    "full": dict(
        seeds=(0, 1, 2), yy_hidden=(30, 10, 5), yy_kinds=YY_KINDS, yy=dict(),
        # sensitivity checks: Göltz et al.'s StepLR(0.95, 20) instead of the cosine decay; a larger delay lr
        yy_extra=tuple(("steplr", dict(learn=list(kinds), schedule=dict(kind="step", gamma=0.95, step_size=20)))
                       for kinds in YY_KINDS) + (("lrd1e-4", dict(learn=["weight", "synaptic"], lr_delay=1e-4)),),
        seq=dict(epochs=60), seq_seeds=(0, 1, 2),
        xor=dict(), digits=dict()),
}


@dataclass(frozen=True)
class RunSpec:
    """One training run: its name (folder) and RunConfig fields."""

    name: str
    variant: str
    config: dict = field(default_factory=dict)


def _label(learn) -> str:
    return "+".join(learn)


def plan(scale: str, only=None) -> list[RunSpec]:
    """The runs of a scale (optionally only some tasks), most important first: Yin-Yang with the
    largest hidden size, its sensitivity checks, the other tasks, then the smaller Yin-Yang networks."""
    from neurodelay.train.recipes import digits_matched_hidden, get_recipe

    s = SCALES[scale]

    def yinyang(hidden):
        return [RunSpec(f"yinyang-h{hidden}-{_label(learn)}-s{seed}", _label(learn),
                        dict(task="yinyang", hidden=hidden, learn=list(learn), seed=seed, **s["yy"]))
                for learn in s["yy_kinds"] for seed in s["seeds"]]

    hidden_sizes = sorted(s["yy_hidden"], reverse=True)
    specs = yinyang(hidden_sizes[0])
    for tag, extra in s.get("yy_extra", ()):
        for seed in s["seeds"]:
            label = f"{_label(extra['learn'])} ({tag})"
            specs.append(RunSpec(f"yinyang-h{hidden_sizes[0]}-{_label(extra['learn'])}-{tag}-s{seed}", label,
                                 dict(task="yinyang", hidden=hidden_sizes[0], seed=seed, **extra, **s["yy"])))
    for seed in s["seq_seeds"]:
        specs.append(RunSpec(f"sequence-synaptic-s{seed}", "synaptic",
                             dict(task="sequence", learn=["synaptic"], seed=seed, **s["seq"])))
    for learn in (("weight",), ("weight", "synaptic"), ("weight", "tau_m", "tau_s"), ("weight", "tau_s")):
        for seed in s["seeds"]:
            specs.append(RunSpec(f"mts_xor-{_label(learn)}-s{seed}", _label(learn),
                                 dict(task="mts_xor", learn=list(learn), seed=seed, **s["xor"])))
    # weights only with twice the hidden neurons: as many parameters as weights + synaptic delays
    # (one delay per synapse doubles the 2 * n_in * h + 2 h trained values of the weights-only network)
    xor_hidden = 2 * s["xor"].get("hidden", get_recipe("mts_xor").defaults["hidden"])
    for seed in s["seeds"]:
        specs.append(RunSpec(f"mts_xor-weight-h{xor_hidden}-s{seed}", "weight (matched params)",
                             dict(s["xor"], task="mts_xor", learn=["weight"], seed=seed, hidden=xor_hidden)))
    hidden = s["digits"].get("hidden", 32)
    for learn, h in ((("weight",), digits_matched_hidden(hidden)), (("weight", "synaptic"), hidden)):
        for seed in s["seeds"]:
            cfg = dict(s["digits"], task="digits", learn=list(learn), seed=seed, hidden=h)
            specs.append(RunSpec(f"digits-{_label(learn)}-h{h}-s{seed}", _label(learn), cfg))
    for h in hidden_sizes[1:]:
        specs += yinyang(h)
    if only:
        specs = [sp for sp in specs if sp.config["task"] in only]
    return specs


def encode_points(points: np.ndarray, meta: dict):
    """Spike trains of (x, y) points (n, 2) encoded like a Yin-Yang split whose ``meta`` is given:
    features [x, y, 1-x, 1-y] as latencies t_early + v (t_late - t_early) s, plus the bias spike."""
    from neurodelay.spikes import SpikeTrains

    points = np.asarray(points, float)
    times = meta["t_early"] + np.column_stack([points, 1.0 - points]) * (meta["t_late"] - meta["t_early"])
    if meta.get("bias_time") is not None:
        times = np.column_stack([times, np.full(len(points), meta["bias_time"])])
    n_trials, n_in = times.shape
    return SpikeTrains(np.repeat(np.arange(n_trials), n_in), np.tile(np.arange(n_in), n_trials),
                       times.reshape(-1), n_trials, n_in).sorted()


def yinyang_grid_inputs(meta: dict, n: int = GRID):
    """Spike trains for an n x n grid over the unit square (see :func:`encode_points`).

    Returns (SpikeTrains, x (n,), y (n,)); trial k is the point (x[k % n], y[k // n]).
    """
    x = np.linspace(0.0, 1.0, n)
    xx, yy = np.meshgrid(x, x)
    return encode_points(np.column_stack([xx.ravel(), yy.ravel()]), meta), x, x.copy()


def run_one(spec: RunSpec, runs_dir: Path, n_threads: int | None, progress: bool) -> dict:
    """Train (or resume / reload) one run; returns its numbers as plain arrays."""
    from neurodelay.delays import DELAY_KINDS
    from neurodelay.train.config import RunConfig
    from neurodelay.train.recipes import get_recipe
    from neurodelay.train.runs import evaluate_model, model_from_checkpoint, train_run
    from neurodelay.train.trainer import BEST

    cfg = RunConfig.from_dict(spec.config)
    start = time.perf_counter()
    result, evaluation = train_run(cfg, runs_dir / spec.name, resume=True, progress=progress, n_threads=n_threads)
    h = result.history
    model = result.model
    resolved = json.loads(evaluation.attrs["config"])
    out = dict(name=spec.name, variant=spec.variant, task=cfg.task, seed=cfg.seed,
               learn=",".join(resolved["learn"]), hidden=int(resolved["hidden"]),
               n_params=int(sum(np.size(v) for v in model.values().values())),
               test_accuracy=float(evaluation.attrs["accuracy"]), test_loss=float(evaluation.attrs["loss"]),
               epochs=int(result.epoch), stop_reason=result.stop_reason,
               train_time=float(h["elapsed"].values[-1]) if result.epoch else 0.0,
               epoch_time=float(np.median(h["epoch_time"].values)) if result.epoch else np.nan,
               call_time=time.perf_counter() - start,
               history={v: h[v].values.astype(float) for v in ("train_loss", "train_accuracy", "validation_loss",
                                                                "validation_accuracy")})
    test = get_recipe(cfg.task).splits(cfg)[2]
    # model selection by validation: the checkpoint of the best validation accuracy, on the test split
    best_path = runs_dir / spec.name / BEST
    out["best_epoch"] = int(result.best_epoch)
    out["best_test_accuracy"] = (evaluate_model(model_from_checkpoint(best_path)[0], test).accuracy
                                 if best_path.exists() else np.nan)
    for pop in ("hidden", "output"):
        out[f"tau_m_{pop}"] = (float(np.mean(model.network[pop].tau_m))
                               if any(k[0] == pop and k[1] == "tau_m" for k in model.keys) else np.nan)
    if cfg.task == "yinyang":
        has_delays = any(k[1] in DELAY_KINDS for k in model.keys)
        out["quantised_test_accuracy"] = np.array([evaluate_model(model, test, step).accuracy if has_delays
                                                   else np.nan for step in QUANTISE_STEPS])
        out["yy_test_prediction"] = evaluation["prediction"].values
        out["yy_test_points"] = test.trial_meta["points"]
        out["yy_test_label"] = test.labels
        if out["hidden"] == 30:
            inputs, x, y = yinyang_grid_inputs(test.meta)
            out["decision"] = model.predict(inputs, test.duration).reshape(len(y), len(x))
            out["grid"] = x
    return out


def collect(results: list[dict], scale: str, wall: float) -> xr.Dataset:
    """All runs as one Dataset (run dimension; histories along epoch, NaN-padded)."""
    n_epochs = max([len(r["history"]["train_loss"]) for r in results] + [1])
    runs = np.arange(len(results))
    coords = {"run": runs, "epoch": np.arange(1, n_epochs + 1)}
    for key in ("name", "variant", "task", "learn", "stop_reason"):
        coords[key] = ("run", np.array([r[key] for r in results], dtype=str))
    for key in ("seed", "hidden", "n_params", "epochs", "best_epoch"):
        coords[key] = ("run", np.array([r[key] for r in results], dtype=np.int64))
    data = {}
    units = {"train_time": "s", "epoch_time": "s", "call_time": "s", "tau_m_hidden": "s", "tau_m_output": "s"}
    for key in ("test_accuracy", "best_test_accuracy", "test_loss", "train_time", "epoch_time", "call_time",
                "tau_m_hidden", "tau_m_output"):
        data[key] = ("run", np.array([r[key] for r in results], float), {"units": units.get(key, "1")})
    for key in ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy"):
        arr = np.full((len(results), n_epochs), np.nan)
        for i, r in enumerate(results):
            arr[i, : len(r["history"][key])] = r["history"][key]
        data[f"history_{key}"] = (("run", "epoch"), arr)
    ds = xr.Dataset(data, coords=coords)
    yy = [i for i, r in enumerate(results) if "yy_test_prediction" in r]
    if yy:
        first = results[yy[0]]
        ds = ds.assign_coords(yy_run=("yy_run", np.array(yy, np.int64)),
                              quantise_step=("quantise_step", np.array(QUANTISE_STEPS), {"units": "s"}))
        ds["quantised_test_accuracy"] = (("yy_run", "quantise_step"),
                                         np.stack([results[i]["quantised_test_accuracy"] for i in yy]),
                                         {"description": "test accuracy with every delay rounded to the grid "
                                                         "(NaN: no delays)"})
        ds["yy_test_prediction"] = (("yy_run", "yy_trial"),
                                    np.stack([results[i]["yy_test_prediction"] for i in yy]).astype(np.int8),
                                    {"description": "predicted class of each test point (-1: no output spike)"})
        ds["yy_test_label"] = ("yy_trial", first["yy_test_label"].astype(np.int8))
        ds["yy_test_points"] = (("yy_trial", "xy"), first["yy_test_points"])
    dec = [i for i, r in enumerate(results) if "decision" in r]
    if dec:
        grid = results[dec[0]]["grid"]
        ds = ds.assign_coords(decision_run=("decision_run", np.array(dec, np.int64)),
                              grid_x=("grid_x", grid), grid_y=("grid_y", grid))
        ds["decision"] = (("decision_run", "grid_y", "grid_x"),
                          np.stack([results[i]["decision"] for i in dec]).astype(np.int8),
                          {"description": "predicted class on the grid (-1: no output spike)"})
    ds.attrs.update(analysis="train_results", scale=scale, wall_time=wall, machine=platform.node(),
                    cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                    command="python analyses/train_results.py"
                    + {"quick": " --quick", "full": " --full"}.get(scale, ""))
    return ds


def summary(ds: xr.Dataset) -> list[str]:
    """One line per (task, variant, hidden): test accuracy mean ± std over seeds, epochs, time per run."""
    lines = []
    keys = sorted({(str(t), str(v), int(h)) for t, v, h in zip(ds.task.values, ds.variant.values, ds.hidden.values)})
    for task, variant, hidden in keys:
        sel = (ds.task.values == task) & (ds.variant.values == variant) & (ds.hidden.values == hidden)
        acc = ds.test_accuracy.values[sel] * 100
        best = ds.best_test_accuracy.values[sel] * 100
        lines.append(f"{task:9s} {variant:24s} hidden {hidden:3d}: test {acc.mean():6.2f} ± {acc.std():4.2f} % "
                     f"(best-validation checkpoint {best.mean():6.2f} ± {best.std():4.2f} %) "
                     f"(n={sel.sum()}, epochs {int(ds.epochs.values[sel].max())}, "
                     f"{ds.train_time.values[sel].mean():.0f} s per run, params {int(ds.n_params.values[sel][0])})")
    if "quantised_test_accuracy" in ds:
        q = ds["quantised_test_accuracy"]
        for variant in sorted(set(ds.variant.values[ds.yy_run.values])):
            rows = [k for k, r in enumerate(ds.yy_run.values) if ds.variant.values[r] == variant
                    and ds.hidden.values[r] == ds.hidden.values[ds.yy_run.values].max()]
            acc = q.values[rows] * 100
            if rows and np.isfinite(acc).all():
                parts = ", ".join(f"{step * 1e3:g} ms: {acc[:, j].mean():.2f} ± {acc[:, j].std():.2f} %"
                                  for j, step in enumerate(q.quantise_step.values))
                lines.append(f"yinyang   {variant:24s} delays quantised to {parts}")
    return lines


# ---- the sweep: one point per run -----------------------------------------------------------------

#: per-run values of run_one's dict that are arrays, with their dimensions in a point's Dataset
_ARRAYS = {"quantised_test_accuracy": ("quantise_step",), "yy_test_prediction": ("yy_trial",),
           "yy_test_points": ("yy_trial", "xy"), "yy_test_label": ("yy_trial",),
           "decision": ("grid_y", "grid_x"), "grid": ("grid_x",)}
_HISTORY = ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy")


def point_dataset(result: dict) -> xr.Dataset:
    """run_one's dict as a sweep point (scalars, arrays, histories along `epoch`); see :func:`point_result`."""
    n_epochs = len(result["history"]["train_loss"])
    data = {f"history_{k}": ("epoch", np.asarray(result["history"][k], float)) for k in _HISTORY}
    data["history_length"] = ((), np.int64(n_epochs))
    for key, value in result.items():
        if key == "history":
            continue
        # "seed" names the sweep's dimension: the run's training seed travels as train_seed
        data["train_seed" if key == "seed" else key] = (_ARRAYS.get(key, ()), np.asarray(value))
    return xr.Dataset(data, coords={"epoch": np.arange(1, n_epochs + 1)})


def point_result(ds: xr.Dataset) -> dict:
    """The dict of run_one back from a sweep point (inverse of :func:`point_dataset`)."""
    n_epochs = int(ds["history_length"].values)
    out = {"history": {k: ds[f"history_{k}"].values[:n_epochs] for k in _HISTORY}}
    for key, var in ds.data_vars.items():
        if key.startswith("history_") or key.startswith("sweep_"):
            continue
        value = var.values
        key = "seed" if key == "train_seed" else key
        if key in _ARRAYS:
            out[key] = value
        elif value.dtype.kind in "US":
            out[key] = str(value)
        elif value.dtype.kind in "iu":
            out[key] = int(value)
        else:
            out[key] = float(value)
    return out


def run_point(run: str, seed: int, scale: str, only, runs_dir: str, progress: bool) -> xr.Dataset:
    """The sweep function: train (or resume / reload) the run named `run` of the plan; its Dataset.

    `seed` (the sweep's) is not used: each run's training seed is part of its configuration.
    The engines' threads come from $NEURODELAY_THREADS (one per worker on a Dask cluster).
    """
    spec = {sp.name: sp for sp in plan(scale, only)}[run]
    result = run_one(spec, Path(runs_dir), None, progress)
    print(f"{spec.name}: test accuracy {result['test_accuracy']:.4f} after {result['epochs']} epochs "
          f"({result['train_time']:.0f} s)", flush=True)
    return point_dataset(result)


def main(argv=None) -> int:
    """Run (or resume) the training runs of a scale and write the NetCDF result."""
    from neurodelay.io import write_netcdf
    from neurodelay.io import read_netcdf
    from neurodelay.sweep import (DaskExecutor, LocalExecutor, SerialExecutor, collect as collect_sweep, point_path,
                                  run_sweep, sweep_points)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"result file (default analyses/results/{RESULT})")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="tiny runs (a few minutes)")
    scale.add_argument("--full", action="store_true", help="the published settings (hours on two cores)")
    parser.add_argument("--runs", type=Path, help="folder of the run checkpoints (default build/train_runs/SCALE)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=1,
                       help="runs trained at the same time (local Dask cluster of N processes, one engine thread "
                            "each; default 1: in this process, all cores)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:8786)")
    parser.add_argument("--only", help="comma-separated tasks to run (yinyang, sequence, mts_xor, digits)")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    parser.add_argument("--collect", action="store_true",
                        help="train nothing: write the result from the runs that are already finished")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    name = "quick" if args.quick else "full" if args.full else "default"
    runs_dir = (args.runs or ROOT / "build" / "train_runs" / name).resolve()
    only = sorted(set(args.only.split(","))) if args.only else None
    specs = plan(name, only)
    folder = runs_dir / "sweep"
    start = time.perf_counter()
    if args.collect:
        if not (folder / "sweep.json").exists():
            parser.error(f"no finished runs in {runs_dir}")
        points = collect_sweep(folder)
    else:
        executor = (DaskExecutor(args.scheduler, engine_threads=1) if args.scheduler
                    else LocalExecutor(workers=args.jobs) if args.jobs > 1 else SerialExecutor())
        points = run_sweep(run_point, {"run": [sp.name for sp in specs]}, seeds=1, folder=folder,
                           executor=executor, retries=1, progress=args.progress,
                           fixed=dict(scale=name, only=only, runs_dir=str(runs_dir),
                                      progress=args.progress and args.jobs == 1 and not args.scheduler))
    names = [sp.name for sp in specs]
    status = {str(r): str(s) for r, s in zip(points["run"].values, points["status"].values[:, 0])}
    for run, state in status.items():
        if state != "ok" and not args.collect:
            print(f"{run}: {state}: {points['error'].sel(run=run, seed=0).item()}", file=sys.stderr)
    done = [n for n in names if status.get(n) == "ok"]
    if not done:
        parser.error(f"no finished runs in {runs_dir}")
    # each run from its own point file (the merged sweep pads every run to the union of the variables)
    files = {p.params["run"]: point_path(folder, p) for p in sweep_points({"run": list(status)}, 1)}
    results = [point_result(read_netcdf(files[n])) for n in done]
    ds = collect(results, name, time.perf_counter() - start)
    write_netcdf(ds, args.out)
    print("\n".join(summary(ds)))
    print(f"train_results ({name}): {len(results)} runs -> {args.out} ({time.perf_counter() - start:.0f} s)")
    return 0 if len(done) == len(names) or args.collect else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
