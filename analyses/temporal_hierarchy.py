"""Temporal hierarchy on Moro et al.'s MTS-XOR: accuracy against delta_tau, learned taus, memory at a budget.

The task is the one the networks can learn (README, "Temporal hierarchy"): Moro et al.'s MTS-XOR with
``n_segments`` segments (default 1: channel 1 in [0, 0.1) s, a 50 ms gap, one coding window [0.15, 0.25) s;
with 6 segments every profile stays at chance), trained with
:data:`~neurodelay.analysis.hierarchy.ACTIVITY_OPTIONS` (hidden neurons calibrated to 20 Hz, dead-neuron
penalty). Every part below uses the same task and options (``task`` of the scale, recorded in the attrs).
Four parts, written to ``analyses/results/temporal_hierarchy.nc``:

* ``sweep_accuracy`` (delta_tau, n_layers, seed): test accuracy (fraction of (trial, segment)
  decisions, chance 0.5; every segment's label read in its coding window) of networks whose hidden
  tau_m follow Moro et al.'s linear profile around ``tau_center`` (weights trained, taus fixed), and
  ``sweep_segment_accuracy`` (..., segment);
* ``learned_accuracy`` (learn, lr_tau, learned_seed) and ``learned_tau_m`` / ``learned_tau_s`` (learn,
  lr_tau, learned_seed, layer, neuron): time constants trained with the weights from the homogeneous start
  (delta_tau = 0, 3 layers, per-neuron spread 10 %; ``learn`` = tau_s, or tau_m + tau_s; ``lr_tau``: Adam's
  step on the log time constants, a relative change per step), on the same seeds as the sweep;
  ``baseline_accuracy`` (learned_seed): the sweep's fixed homogeneous network
  (delta_tau = 0, 3 layers, weights only: the same initial network), ``learned_median`` / ``_q25`` /
  ``_q75`` (learn, lr_tau, constant, learned_seed, layer) and ``learned_slope`` (learn, lr_tau, constant,
  learned_seed) from
  :func:`~neurodelay.analysis.hierarchy.learned_taus`;
* ``fit_*`` (distribution): gamma and log-normal fits of the pooled learned tau_m (tau_m + tau_s run at
  ``lr_tau`` = ``fit_lr_tau``, 0.02);
* ``budget_accuracy`` (target, memory, d_max, budget_seed): learned delays (initialised uniformly over
  [0, d_max]) vs learned time constants vs both at one parameter budget (hidden size matched per memory),
  against the maximum delay, on the task (``target="xor"``) and on its memory part alone (``"channel1"``:
  channel 1's bit read in the coding window, see :func:`neurodelay.analysis.hierarchy.relabel`). The
  time-constant network has no delays, so it runs once per seed and its accuracy is repeated over d_max.

Scales: ``--quick`` (seconds, tests), default (reduced: delta_tau -0.4 / 0 / +0.4 s x {3, 4} layers x 5 seeds,
60 epochs of 256 trials, learned taus at lr_tau 0.005 / 0.02 / 0.05; the budget part on 3 seeds; about an hour
on 2 busy cores: 3457 s summed over its 90 points, measured), ``--full``
(Moro et al.'s grid on the same task: 9 delta_tau values, 10 seeds, 2000 training trials; many hours).

Usage: python analyses/temporal_hierarchy.py [--quick | --full] [--out PATH] [--folder DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.analysis.hierarchy import (ACTIVITY_OPTIONS, MEMORIES, NETWORK_OPTIONS, budget_point,
                                           fit_tau_distribution, hierarchy_point, hierarchy_sweep, learned_taus)
from neurodelay.io import provenance, write_netcdf
from neurodelay.sweep import run_sweep

RESULT = "temporal_hierarchy.nc"
EXPECTED_SECONDS = {"quick": 60, "default": 3600, "full": 600000}   # wall time on 2 busy cores (estimates)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / RESULT
#: the task and training options shared by every part of a scale (arguments of hierarchy_point)
TASK = dict(n_segments=1, tau_center=0.3, **ACTIVITY_OPTIONS)
#: the time constants trained from the homogeneous start (compared with the weights-only baseline)
LEARN = ("weight,tau_s", "weight,tau_m,tau_s")
#: the learned-tau runs whose pooled tau_m are fitted (hierarchy_point's default lr_tau)
SHOWN_LR_TAU = 0.02
SCALES = {
    "quick": dict(delta_taus=(-0.2, 0.0, 0.2), n_layers=(3,), seeds=1, budget_seeds=1, budget_dmax=(0.1,),
                  budget_labels=("xor",), task=TASK, lr_taus=(0.02,),
                  point=dict(epochs=1, n_train=24, n_test=24, batch_size=12, hidden=4), budget=200),
    "default": dict(delta_taus=(-0.4, 0.0, 0.4), n_layers=(3, 4), seeds=5, budget_seeds=3, budget_dmax=(0.05, 0.2),
                    budget_labels=("xor", "channel1"), task=TASK, lr_taus=(0.005, 0.02, 0.05),
                    point=dict(epochs=60, n_train=256, n_test=256, batch_size=32), budget=1040),
    "full": dict(delta_taus=(-0.5, -0.4, -0.2, -0.1, 0.0, 0.1, 0.2, 0.4, 0.5), n_layers=(3, 4), seeds=10,
                 budget_seeds=10, budget_dmax=(0.05, 0.1, 0.2), budget_labels=("xor", "channel1"), task=TASK,
                 lr_taus=(0.005, 0.02, 0.05),
                 point=dict(epochs=60, n_train=2000, n_test=1000, batch_size=64), budget=1040),
}


def _no_seed_value(da):
    return da.drop_vars("seed_value", errors="ignore")


def run(scale: str, folder: Path) -> xr.Dataset:
    s = SCALES[scale]
    if 0.0 not in s["delta_taus"] or 3 not in s["n_layers"]:
        raise ValueError("a scale needs delta_tau 0 and 3 layers (the homogeneous baseline of the learned taus)")
    point = dict(s["point"], **s["task"])
    t0 = time.perf_counter()
    sweep = hierarchy_sweep(s["delta_taus"], s["n_layers"], seeds=s["seeds"], folder=folder / "sweep",
                            executor="serial", **point)
    t_sweep = time.perf_counter() - t0
    # trained time constants from the homogeneous start (3 layers = 2 hidden layers), the sweep's seeds
    lr_taus = [float(v) for v in s["lr_taus"]]
    learned = run_sweep(hierarchy_point, grid=dict(learn=list(LEARN), lr_tau=lr_taus), seeds=s["seeds"],
                        folder=folder / "learned_taus", executor="serial", progress=False,
                        fixed=dict(point, delta_tau=0.0, n_layers=3))
    t_learned = time.perf_counter() - t0 - t_sweep
    learned = learned.transpose("learn", "lr_tau", "seed", "layer", "neuron", ...)
    stats = {k: [] for k in ("median", "q25", "q75", "slope")}
    for name in LEARN:
        rows = {k: [] for k in stats}
        for lr_tau in lr_taus:
            per_const = [learned_taus(learned[c].sel(learn=name, lr_tau=lr_tau).values) for c in ("tau_m", "tau_s")]
            for k in stats:
                rows[k].append(np.stack([d[k].values for d in per_const]))
        for k in stats:
            stats[k].append(np.stack(rows[k]))
    memory = NETWORK_OPTIONS.get("memory", "tau_m")       # the time constant that carries the profile
    shown = SHOWN_LR_TAU if SHOWN_LR_TAU in lr_taus else lr_taus[0]
    tau = learned[memory].sel(learn="weight,tau_m,tau_s", lr_tau=shown).values
    fits = fit_tau_distribution(tau.ravel())
    baseline = sweep["accuracy"].sel(delta_tau=0.0, n_layers=3).values
    # budget: the time-constant memory has no delays (d_max only bounds trained delays): one run per seed
    bpoint = {k: v for k, v in point.items() if k != "hidden"}
    fixed = dict(bpoint, budget=s["budget"], n_layers=3)
    delayed = [m for m in MEMORIES if "synaptic" in MEMORIES[m].split(",")]
    b_delay = run_sweep(budget_point, grid=dict(memory=delayed, d_max=list(s["budget_dmax"]),
                                                labels=list(s["budget_labels"])),
                        seeds=s["budget_seeds"], folder=folder / "budget", executor="serial", progress=False,
                        fixed=fixed)
    b_taus = run_sweep(budget_point, grid=dict(memory=["taus"], labels=list(s["budget_labels"])),
                       seeds=s["budget_seeds"], folder=folder / "budget_taus", executor="serial", progress=False,
                       fixed=dict(fixed, d_max=float(max(s["budget_dmax"]))))
    b_taus = b_taus.expand_dims(d_max=b_delay["d_max"].values).transpose("memory", "d_max", ...)
    budget = xr.concat([_no_seed_value(b_delay[["accuracy", "hidden", "n_params"]]),
                        _no_seed_value(b_taus[["accuracy", "hidden", "n_params"]])], dim="memory")
    budget = budget.sel(memory=list(MEMORIES))
    t_budget = time.perf_counter() - t0 - t_sweep - t_learned
    seeds = learned["seed"].values
    out = xr.Dataset(
        {"sweep_accuracy": _no_seed_value(sweep["accuracy"].transpose("delta_tau", "n_layers", "seed")),
         "sweep_segment_accuracy": _no_seed_value(sweep["segment_accuracy"].transpose("delta_tau", "n_layers",
                                                                                      "seed", "segment")),
         "sweep_hidden_spikes": _no_seed_value(sweep["hidden_spikes"].transpose("delta_tau", "n_layers", "seed",
                                                                                "layer")).rename(layer="sweep_layer"),
         "learned_accuracy": (("learn", "lr_tau", "learned_seed"), learned["accuracy"].values, dict(units="1")),
         "baseline_accuracy": ("learned_seed", baseline, dict(
             units="1", long_name="fixed homogeneous network (delta_tau 0, 3 layers, weights only)")),
         "learned_tau_m": (("learn", "lr_tau", "learned_seed", "layer", "neuron"), learned["tau_m"].values,
                           dict(units="s")),
         "learned_tau_s": (("learn", "lr_tau", "learned_seed", "layer", "neuron"), learned["tau_s"].values,
                           dict(units="s")),
         **{f"learned_{k}": (("learn", "lr_tau", "constant", "learned_seed") + (("layer",) if k != "slope" else ()),
                             np.stack(v), dict(units="s", long_name=f"{k} of the learned time constant per layer"
                                               if k != "slope" else "median per layer index (s per layer)"))
            for k, v in stats.items()},
         **{f"fit_{k}": fits[k] for k in fits.data_vars},
         "budget_accuracy": budget["accuracy"].transpose("labels", "memory", "d_max", "seed").rename(
             labels="target", seed="budget_seed"),
         "budget_hidden": budget["hidden"].isel(seed=0, d_max=0, labels=0).drop_vars(
             ["seed", "d_max", "labels"], errors="ignore"),
         "budget_n_params": budget["n_params"].isel(seed=0, d_max=0, labels=0).drop_vars(
             ["seed", "d_max", "labels"], errors="ignore")},
        coords=dict(learn=list(LEARN), lr_tau=lr_taus, constant=["tau_m", "tau_s"], learned_seed=seeds,
                    layer=learned["layer"].values, neuron=learned["neuron"].values))
    out["sweep_accuracy"].attrs.update(units="1", long_name="test accuracy (per segment)")
    out["budget_accuracy"].attrs.update(units="1")
    out["delta_tau"].attrs["units"] = "s"
    out["d_max"].attrs["units"] = "s"
    out["lr_tau"].attrs.update(units="1", long_name="Adam step of the log time constants (relative change per step)")
    out.attrs.update(provenance(None, dict(scale=scale, **{k: str(v) for k, v in s.items()}), "events"))
    out.attrs.update(analysis="temporal_hierarchy", scale=scale, budget=int(s["budget"]), memory_constant=memory,
                     fit_lr_tau=shown,
                     n_segments=int(s["task"]["n_segments"]), tau_center=float(s["task"]["tau_center"]),
                     task=json.dumps(s["task"], sort_keys=True), training=json.dumps(s["point"], sort_keys=True),
                     wall_time_sweep=t_sweep, wall_time_learned=t_learned, wall_time_budget=t_budget,
                     # summed over the points, whether run now or resumed from the folder (s)
                     point_time_sweep=float(sweep["wall_time"].sum()), point_time_learned=float(learned["wall_time"].sum()),
                     point_time_budget=float(b_delay["wall_time"].sum() + b_taus["wall_time"].sum() / b_taus.sizes["d_max"]),
                     command="python analyses/temporal_hierarchy.py" + ("" if scale == "default" else f" --{scale}"))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="seconds (tests)")
    g.add_argument("--full", action="store_true", help="Moro et al.'s grid (hours)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--folder", type=Path, default=None, help="sweep folder (resumable); default: a temporary one")
    a = p.parse_args(argv)
    scale = "quick" if a.quick else "full" if a.full else "default"
    if a.folder is None:
        with tempfile.TemporaryDirectory() as tmp:
            ds = run(scale, Path(tmp))
    else:
        ds = run(scale, a.folder)
    write_netcdf(ds, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
