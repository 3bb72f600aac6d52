"""Temporal hierarchy on Moro et al.'s MTS-XOR: accuracy against delta_tau, learned taus, memory at a budget.

Four parts, written to ``analyses/results/temporal_hierarchy.nc``:

* ``sweep_accuracy`` (delta_tau, n_layers, seed): test accuracy (fraction of (trial, segment)
  decisions, chance 0.5; every segment's label read in its coding window) of networks whose hidden
  tau_m follow Moro et al.'s linear profile around 0.3 s (weights trained, taus fixed), and
  ``sweep_segment_accuracy`` (..., segment);
* ``learned_tau_m`` (seed, layer, neuron): tau_m (s) after training weights + tau_m + tau_s from a
  homogeneous start (delta_tau = 0, per-neuron spread 10 %), and ``learned_slope`` (seed) from
  :func:`~neurodelay.analysis.hierarchy.learned_taus`;
* ``fit_*`` (distribution): gamma and log-normal fits of the pooled learned tau_m;
* ``budget_accuracy`` (target, memory, d_max, seed): learned delays (initialised uniformly over
  [0, d_max]) vs learned time constants vs both at one parameter budget (hidden size matched per memory),
  against the maximum delay, on the task (``target="xor"``) and on its memory part alone (``"channel1"``:
  channel 1's bit read in every segment, see :func:`neurodelay.analysis.hierarchy.relabel`).

Scales: ``--quick`` (seconds, tests), default (reduced: 3 delta_tau x {3, 4} layers x 3 seeds, 6 epochs
of 256 trials; about 20-40 minutes on 2 busy cores), ``--full`` (Moro et al.'s grid: 9 delta_tau values, 10 seeds, 60 epochs; hours).

Usage: python analyses/temporal_hierarchy.py [--quick | --full] [--out PATH] [--folder DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.analysis.hierarchy import (MEMORIES, NETWORK_OPTIONS, budget_point, fit_tau_distribution,
                                           hierarchy_point, hierarchy_sweep, learned_taus)
from neurodelay.io import provenance, write_netcdf
from neurodelay.sweep import run_sweep

RESULT = "temporal_hierarchy.nc"
EXPECTED_SECONDS = {"quick": 40, "default": 1800, "full": 200000}   # wall time on 2 quiet cores (estimates)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / RESULT
SCALES = {
    "quick": dict(delta_taus=(-0.2, 0.2), n_layers=(3,), seeds=1, budget_dmax=(0.1,), budget_labels=("xor",),
                  point=dict(epochs=1, n_train=24, n_test=24, batch_size=12, hidden=4), budget=200),
    "default": dict(delta_taus=(-0.4, 0.0, 0.4), n_layers=(3, 4), seeds=3, budget_dmax=(0.2, 1.0),
                    budget_labels=("xor", "channel1"),
                    point=dict(epochs=6, n_train=256, n_test=256, batch_size=32), budget=1040),
    "full": dict(delta_taus=(-0.5, -0.4, -0.2, -0.1, 0.0, 0.1, 0.2, 0.4, 0.5), n_layers=(3, 4), seeds=10,
                 budget_dmax=(0.05, 0.2, 0.5, 1.0), budget_labels=("xor", "channel1"), point=dict(epochs=60, n_train=2000, n_test=1000,
                                                                batch_size=64), budget=1040),
}


def run(scale: str, folder: Path) -> xr.Dataset:
    s = SCALES[scale]
    t0 = time.perf_counter()
    sweep = hierarchy_sweep(s["delta_taus"], s["n_layers"], seeds=s["seeds"], folder=folder / "sweep",
                            executor="serial", **s["point"])
    t_sweep = time.perf_counter() - t0
    # learned time constants from a homogeneous start (3 layers = 2 hidden layers)
    learned = run_sweep(hierarchy_point, grid={}, seeds=s["seeds"], folder=folder / "learned", executor="serial",
                        progress=False, fixed=dict(s["point"], delta_tau=0.0, n_layers=3,
                                                   learn="weight,tau_m,tau_s"))
    t_learned = time.perf_counter() - t0 - t_sweep
    memory = NETWORK_OPTIONS.get("memory", "tau_m")       # the time constant that carries the profile
    tau = learned[memory].transpose("seed", "layer", "neuron").values
    per_layer = learned_taus(tau)
    fits = fit_tau_distribution(tau.ravel())
    point = {k: v for k, v in s["point"].items() if k != "hidden"}
    budget = run_sweep(budget_point, grid=dict(memory=list(MEMORIES), d_max=list(s["budget_dmax"]),
                                               labels=list(s["budget_labels"])),
                       seeds=s["seeds"], folder=folder / "budget", executor="serial", progress=False,
                       fixed=dict(point, budget=s["budget"], n_layers=3))
    t_budget = time.perf_counter() - t0 - t_sweep - t_learned
    out = xr.Dataset(
        {"sweep_accuracy": sweep["accuracy"].transpose("delta_tau", "n_layers", "seed").drop_vars("seed_value",
                                                                                                  errors="ignore"),
         "sweep_segment_accuracy": sweep["segment_accuracy"].transpose("delta_tau", "n_layers", "seed", "segment")
         .drop_vars("seed_value", errors="ignore"),
         "learned_tau_m": (("learned_seed", "layer", "neuron"),
                           learned["tau_m"].transpose("seed", "layer", "neuron").values, dict(units="s")),
         "learned_tau_s": (("learned_seed", "layer", "neuron"),
                           learned["tau_s"].transpose("seed", "layer", "neuron").values, dict(units="s")),
         "learned_median": (("learned_seed", "layer"), per_layer["median"].values, dict(units="s")),
         "learned_q25": (("learned_seed", "layer"), per_layer["q25"].values, dict(units="s")),
         "learned_q75": (("learned_seed", "layer"), per_layer["q75"].values, dict(units="s")),
         "learned_slope": ("learned_seed", per_layer["slope"].values, dict(units="s")),
         "learned_accuracy": ("learned_seed", learned["accuracy"].values, dict(units="1")),
         **{f"fit_{k}": fits[k] for k in fits.data_vars},
         "budget_accuracy": budget["accuracy"].transpose("labels", "memory", "d_max", "seed").drop_vars(
             "seed_value", errors="ignore").rename(labels="target"),
         "budget_hidden": budget["hidden"].isel(seed=0, d_max=0, labels=0).drop_vars(
             ["seed", "d_max", "labels", "seed_value"], errors="ignore"),
         "budget_n_params": budget["n_params"].isel(seed=0, d_max=0, labels=0).drop_vars(
             ["seed", "d_max", "labels", "seed_value"], errors="ignore")},
        coords=dict(learned_seed=np.arange(tau.shape[0]), layer=per_layer["layer"].values,
                    neuron=np.arange(tau.shape[2])))
    out["sweep_accuracy"].attrs.update(units="1", long_name="test accuracy (per segment)")
    out["budget_accuracy"].attrs.update(units="1")
    out["delta_tau"].attrs["units"] = "s"
    out["d_max"].attrs["units"] = "s"
    out.attrs.update(provenance(None, dict(scale=scale, **{k: str(v) for k, v in s.items()}), "events"))
    out.attrs.update(analysis="temporal_hierarchy", scale=scale, budget=int(s["budget"]), memory_constant=memory,
                     wall_time_sweep=t_sweep, wall_time_learned=t_learned, wall_time_budget=t_budget,
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
