"""Why trained time constants are unstable on MTS-XOR: a training loop that logs, per epoch, the
gradient norm of every trained kind, the time constants (median, min, max) and validation accuracy.

Usage: ``python bench/tau_training_diagnosis.py --seed 2 --learn weight,tau_s [--lr-tau 0.05]
[--epochs 40] --out build/diag/x.nc``. Writes one NetCDF (dims epoch, kind) and prints a line per epoch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr

from neurodelay.io import write_netcdf
from neurodelay.train import RunConfig, build_model, get_recipe, make_constraints, make_optimiser


def diagnose(seed: int, learn, lr_tau: float | None, epochs: int, n_train: int | None = None,
             tau_bounds=None) -> xr.Dataset:
    cfg = RunConfig(task="mts_xor", learn=tuple(learn), seed=seed, lr_tau=lr_tau, epochs=epochs,
                    n_train=n_train)
    from neurodelay.train import resolve_config
    cfg = resolve_config(cfg)
    train, val, _ = get_recipe("mts_xor").splits(cfg)
    model = build_model(cfg)
    opt = make_optimiser(cfg)
    cons = make_constraints(cfg, model.keys)
    keys = model.keys
    vals = model.values()
    raw = {k: cons[k].raw(vals[k], "x") for k in keys}
    rng = np.random.default_rng(seed)
    kinds = sorted({k[1] for k in keys})
    rows = []
    t0 = time.perf_counter()
    for ep in range(epochs):
        gsq = {k: [] for k in kinds}
        for batch in train.batches(cfg.batch_size, rng):
            res = model.loss_and_grad(batch, rng)
            for kind in kinds:
                gsq[kind].append(sum(float(np.sum(res.grads[k] ** 2)) for k in keys if k[1] == kind))
            rg = {k: cons[k].raw_gradient(raw[k], res.grads[k]) for k in keys}
            stepped = opt.step(raw, rg, ep)
            raw = {k: cons[k].project(stepped[k]) for k in keys}
            model = model.with_values({k: cons[k].value(raw[k]) for k in keys})
        ev = model.evaluate(val)
        net = model.network
        row = dict(val_acc=ev.accuracy, val_loss=ev.loss,
                   grad_norm={k: float(np.sqrt(np.mean(v))) for k, v in gsq.items()})
        for pop in ("hidden", "output"):
            for tk in ("tau_m", "tau_s"):
                v = np.asarray(getattr(net[pop], tk), dtype=float)
                row[f"{tk}_{pop}"] = (np.median(v), v.min(), v.max())
        rows.append(row)
        print(f"ep {ep + 1} acc {ev.accuracy:.3f} loss {ev.loss:.3f} g "
              + " ".join(f"{k}={row['grad_norm'][k]:.2e}" for k in kinds) + " "
              + " ".join(f"{n}={row[n][0] * 1e3:.1f}[{row[n][1] * 1e3:.1f},{row[n][2] * 1e3:.1f}]ms"
                         for n in ("tau_m_hidden", "tau_s_hidden", "tau_s_output")),
              f"t={time.perf_counter() - t0:.0f}s", flush=True)
    ds = xr.Dataset(
        {"validation_accuracy": ("epoch", [r["val_acc"] for r in rows]),
         "validation_loss": ("epoch", [r["val_loss"] for r in rows]),
         "grad_norm": (("epoch", "kind"), [[r["grad_norm"][k] for k in kinds] for r in rows]),
         **{n: (("epoch", "stat"), [r[n] for r in rows])
            for n in ("tau_m_hidden", "tau_s_hidden", "tau_m_output", "tau_s_output")}},
        coords=dict(epoch=np.arange(1, epochs + 1), kind=kinds, stat=["median", "min", "max"]),
        attrs=dict(seed=seed, learn=",".join(learn), lr_tau=float(cfg.lr_tau)))
    return ds


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--learn", default="weight,tau_s")
    p.add_argument("--lr-tau", type=float, default=None)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    write_netcdf(diagnose(a.seed, a.learn.split(","), a.lr_tau, a.epochs, a.n_train), a.out)
