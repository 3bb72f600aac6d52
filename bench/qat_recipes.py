"""Which quantisation-aware recipe brings Yin-Yang with synaptic delays on a 1 ms grid to the
continuous accuracy: one training run per (variant, seed), test accuracy of the final network and of
the best-validation checkpoint (which, on a grid, is always a network on the final grid).

Variants (all: weights + synaptic delays, 30 hidden, d_max 10 ms, the recipe's cosine lr schedule):

* ``cont``        continuous delays (the target)
* ``round``       ``cont`` with every delay rounded to 1 ms after training
* ``grid``        on the 1 ms grid from the first step (straight-through)
* ``warm``        continuous for the first half, then the grid (``qat_warmup`` 0.5)
* ``warm_lr``     ``warm`` with the delays' learning rate x 0.1 on the grid (``qat_delay_lr`` 0.1)
* ``warm_freeze`` ``warm`` with the delays fixed on the grid (rounded once, weights fine-tuned)
* ``sr_freeze``   ``warm_freeze`` with stochastic rounding onto the grid in the warm-up's minibatches
* ``freeze33``, ``freeze67``  ``warm_freeze`` with the grid from a third / two thirds of the epochs
* ``stoch``       the grid from the start, stochastic rounding in training minibatches
* ``ramp``        progressive: the step grows from 1/16 ms to 1 ms over the first half
* ``warm_stoch``  ``warm`` with stochastic rounding

Usage: ``python bench/qat_recipes.py --variants cont,grid,warm --seeds 0,1,2 [--epochs 30]
[--n-train N] [--jobs 2]``; each run keeps its checkpoints and a ``summary.json`` in
``build/qat_recipes/<variant>-e<epochs>-s<seed>`` (rerunning skips finished runs, resumes the others),
and the script prints a table (mean ± std over the seeds given, %).

Measured (5000 training trials, 30 epochs, one engine thread per run; test accuracy, final network /
best-validation checkpoint, %): seeds 0-2: ``cont`` 97.3 ± 0.8 / 97.5 ± 0.9, ``round`` 70.0 ± 6.4 /
70.8 ± 7.6, ``freeze33`` 96.6 ± 0.5 / 96.4 ± 0.4 (the library default, ``QAT_DEFAULTS``),
``warm_freeze`` 95.8 ± 0.6 / 95.8 ± 0.7, ``freeze67`` 95.8 ± 0.6 / 95.7 ± 0.6; seed 0 only: ``grid``
81.4 / 91.8, ``stoch`` 87.6 / 88.4, ``ramp`` 93.2 / 93.4, ``warm`` 77.7 / 93.2, ``warm_lr`` 87.1 / 95.8,
``sr_freeze`` 90.5 / 90.4 (``cont`` 98.2 / 98.5). ``warm_stoch`` and ``warm_ramp`` were not run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import REPO_ROOT, run_each

STEP = 1e-3

VARIANTS = {
    "cont": {},
    "grid": dict(delay_step=STEP),
    "warm": dict(delay_step=STEP, qat_warmup=0.5),
    "warm_lr": dict(delay_step=STEP, qat_warmup=0.5, qat_delay_lr=0.1),
    "warm_freeze": dict(delay_step=STEP, qat_warmup=0.5, qat_delay_lr=0.0),
    "sr_freeze": dict(delay_step=STEP, qat_warmup=0.5, qat_delay_lr=0.0, qat_rounding="stochastic-warmup"),
    "freeze33": dict(delay_step=STEP, qat_warmup=0.33, qat_delay_lr=0.0),
    "freeze67": dict(delay_step=STEP, qat_warmup=0.67, qat_delay_lr=0.0),
    "stoch": dict(delay_step=STEP, qat_rounding="stochastic"),
    "ramp": dict(delay_step=STEP, qat_ramp=0.5),
    "warm_stoch": dict(delay_step=STEP, qat_warmup=0.5, qat_rounding="stochastic"),
    "warm_ramp": dict(delay_step=STEP, qat_warmup=0.33, qat_ramp=0.33),
}


#: what a grid variant leaves unset is the plain straight-through recipe (not the library's QAT_DEFAULTS)
PLAIN = dict(qat_warmup=0.0, qat_delay_lr=1.0, qat_ramp=0.0, qat_rounding="nearest")
VARIANTS = {k: (dict(PLAIN, **v) if "delay_step" in v else v) for k, v in VARIANTS.items()}


def one(variant: str, seed: int, epochs: int, n_train: int | None, runs: str) -> dict:
    from neurodelay.train import RunConfig
    from neurodelay.train.runs import evaluate_model, model_from_checkpoint, train_run
    from neurodelay.train.recipes import get_recipe, resolve_config

    name = f"{variant}-e{epochs}-s{seed}" + (f"-n{n_train}" if n_train else "")
    folder = Path(runs) / name
    summary = folder / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text())
    base = "cont" if variant == "round" else variant
    cfg = resolve_config(RunConfig(task="yinyang", learn=["weight", "synaptic"], seed=seed, epochs=epochs,
                                   n_train=n_train, d_max=10e-3, **VARIANTS[base]))
    t0 = time.perf_counter()
    result, ev = train_run(cfg, folder, resume=True, progress=False, n_threads=1)
    seconds = time.perf_counter() - t0
    _, _, test = get_recipe("yinyang").splits(cfg)
    best, _ = model_from_checkpoint(folder / "best.nc")
    q = STEP if variant == "round" else None
    out = dict(name=name, variant=variant, seed=seed, epochs=epochs, seconds=seconds,
               final=evaluate_model(result.model, test, q).accuracy, best=evaluate_model(best, test, q).accuracy,
               best_epoch=int(result.best_epoch))
    if variant == "cont":
        out["final_rounded"] = evaluate_model(result.model, test, STEP).accuracy
        out["best_rounded"] = evaluate_model(best, test, STEP).accuracy
    summary.write_text(json.dumps(out, indent=1))
    print(f"{name}: final {100 * out['final']:.1f} %, best-val {100 * out['best']:.1f} % "
          f"(epoch {out['best_epoch']}, {seconds:.0f} s)", flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="cont,grid,warm")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--n-train", type=int)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--runs", type=Path, default=REPO_ROOT / "build" / "qat_recipes")
    a = p.parse_args(argv)
    variants = [v for v in a.variants.split(",") if v != "round"]
    seeds = [int(s) for s in a.seeds.split(",")]
    todo = [(v, s) for s in seeds for v in variants]
    args = [(v, s, a.epochs, a.n_train, str(a.runs)) for v, s in todo]
    done = run_each(one, args, a.jobs)
    print(f"\n{a.epochs} epochs, seeds {seeds}: test accuracy %, mean ± std (final network / best-validation)")
    rows = {}
    for d in done:
        rows.setdefault(d["variant"], []).append(d)
        if d["variant"] == "cont":
            rows.setdefault("round", []).append(dict(final=d["final_rounded"], best=d["best_rounded"]))
    for v, ds in rows.items():
        f = 100 * np.array([d["final"] for d in ds])
        b = 100 * np.array([d["best"] for d in ds])
        print(f"{v:11s} final {f.mean():5.1f} ± {f.std():4.1f}   best-val {b.mean():5.1f} ± {b.std():4.1f}   "
              f"({', '.join(f'{x:.1f}' for x in f)} / {', '.join(f'{x:.1f}' for x in b)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
