"""Trained time constants on our MTS-XOR: optimiser variants against the fixed homogeneous baseline.

For each variant x learned kinds x seed, one run of the ``mts_xor`` recipe (32 hidden, 40 epochs,
test split; :func:`neurodelay.train.train_run`) and its test accuracy. Variants (time constants in
log space, ``lr_tau`` = relative change per Adam step):

* ``adam``: plain Adam (per-entry second moment, lr_tau 0.05), raw weights (every variant but ``psp``
  sets ``psp_normalised=False``, the recipe's former default);
* ``shared``: the Adam second moment of tau_m / tau_s shared across each population
  (``RunConfig.shared_moment``), so every tau moves in proportion to its gradient;
* ``warmup``: time constants frozen for the first ``--warmup`` epochs (weights first);
* ``shared+warmup``: both;
* ``readout_shared``: one tau_m / tau_s shared by the two readouts (per-neuron hidden taus), so the
  readouts' scores stay comparable (model option ``shared_tau_populations``);
* ``readout_shared+warmup``: that and the warm-up;
* ``hetero``: hidden tau_s initialised log-uniform in [2 ms, 0.5 s] per neuron (model option
  ``hidden_tau_s_range``; Perez-Nieves et al.'s heterogeneous start), plain Adam. With ``--learn weight``
  this is the *fixed* heterogeneous control (time constants not trained);
* ``bias``: the readouts' bias current trained too (model option ``readout_bias``); with ``--learn
  weight`` the weights-only baseline with that bias;
* ``psp``: weights trained as PSP heights (model option ``psp_normalised``, now the recipe's default for
  trained time constants): a time constant changes the PSP's shape, not its height; ``psp+shared``,
  ``psp+warmup``: with the shared second moment / the warm-up above;
* ``hetero+shared``: that with the time constants' second moment shared per population.

Usage: ``python bench/tau_training_variants.py --out build/tau_variants.nc [--seeds 0 1 2]
[--variants adam shared] [--learn weight weight,tau_s weight,tau_m,tau_s]``. Resumable: runs already in
``--out`` are kept. Prints one line per run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from neurodelay.io import write_netcdf
from neurodelay.train import RunConfig, train_run

VARIANTS = {
    "adam": dict(),
    "shared": dict(shared_moment=["tau_m", "tau_s"]),
    "warmup": dict(warmup=True),
    "shared+warmup": dict(shared_moment=["tau_m", "tau_s"], warmup=True),
    "readout_shared": dict(model_options=dict(shared_tau_populations=["output"])),
    "readout_shared+warmup": dict(model_options=dict(shared_tau_populations=["output"]), warmup=True),
    "hetero": dict(model_options=dict(hidden_tau_s_range=[2e-3, 0.5])),
    "bias": dict(model_options=dict(readout_bias=True)),
    "psp": dict(model_options=dict(psp_normalised=True)),
    "psp+shared": dict(model_options=dict(psp_normalised=True), shared_moment=["tau_m", "tau_s"]),
    "psp+warmup": dict(model_options=dict(psp_normalised=True), warmup=True),
    "hetero+shared": dict(model_options=dict(hidden_tau_s_range=[2e-3, 0.5]), shared_moment=["tau_m", "tau_s"]),
}
#: variants that change the network, not only the optimiser (run with learn=weight too: the fixed control)
NETWORK_VARIANTS = ("hetero", "bias")


def config(variant: str, learn: str, seed: int, warmup: int, epochs: int) -> RunConfig:
    v = dict(VARIANTS[variant])
    opts = dict(task="mts_xor", learn=learn.split(","), seed=seed, epochs=epochs)
    # raw weights unless the variant says otherwise (the recipe's default for trained taus is PSP heights)
    opts["model_options"] = dict(dict(psp_normalised=False), **v.get("model_options", {}))
    opts["shared_moment"] = list(v.get("shared_moment", []))     # [] : per-entry (the recipe shares tau's)
    if v.get("warmup"):
        sched = dict(kind="cosine", floor=0.1, warmup=warmup, epochs=epochs - warmup)
        opts["schedule_by"] = dict(tau_m=sched, tau_s=sched)
    return RunConfig(**opts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument("--learn", nargs="+", default=["weight,tau_s", "weight,tau_m,tau_s"])
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--epochs", type=int, default=40)
    a = p.parse_args(argv)
    rows = []
    if a.out.exists():
        with xr.open_dataset(a.out) as old:
            rows = old.to_dataframe().reset_index(drop=True).to_dict("records")
    done = {(r["variant"], r["learn"], int(r["seed"])) for r in rows}
    for learn in a.learn:
        weight_variants = [v for v in a.variants if v == "adam" or v in NETWORK_VARIANTS]
        for variant in (a.variants if learn != "weight" else weight_variants):
            for seed in a.seeds:
                if (variant, learn, seed) in done:
                    continue
                t0 = time.perf_counter()
                result, ev = train_run(config(variant, learn, seed, a.warmup, a.epochs), progress=False, n_threads=1)
                net = result.model.network
                tau_s_h = np.asarray(net["hidden"].tau_s, float)
                tau_s_o = np.asarray(net["output"].tau_s, float)
                row = dict(variant=variant, learn=learn, seed=seed, test_accuracy=float(ev.attrs["accuracy"]),
                           wall_time=time.perf_counter() - t0, epochs_run=int(result.epoch),
                           hidden_tau_s_median=float(np.median(tau_s_h)), hidden_tau_s_max=float(tau_s_h.max()),
                           output_tau_s_min=float(tau_s_o.min()), output_tau_s_max=float(tau_s_o.max()),
                           hidden_tau_m_median=float(np.median(np.asarray(net["hidden"].tau_m, float))),
                           hidden_tau_s_long=int(np.sum(tau_s_h > 0.1)))
                rows.append(row)
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                      flush=True)
                ds = xr.Dataset.from_dataframe(pd.DataFrame(rows))
                ds.attrs.update(command="python bench/tau_training_variants.py", warmup=a.warmup, epochs=a.epochs)
                write_netcdf(ds.rename(index="run"), a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
