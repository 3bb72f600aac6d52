"""Delays as hardware stores them: Yin-Yang accuracy against bits per delay and delay range.

For each delay kind (synaptic, axonal, dendritic; trained together with the
weights) and seed, one network is trained with continuous delays and then
evaluated with every delay rounded to each hardware grid (rounding after
training, what neurodelay did before quantisation-aware training), and one
network is trained *on* each grid (quantisation-aware: the network only ever
sees grid delays, straight-through gradients; see
:mod:`neurodelay.train.constraints`). A grid is ``bits`` bits over the range
[0, d_max]: 2**bits levels, step d_max / (2**bits - 1). The Yin-Yang recipe's
default range is d_max = 2 tau_s = 10 ms; a shorter range (``--d-max``) is a
chip with fewer delay slots per bit. The 1 ms grid over 10 ms (11 levels,
log2 11 = 3.46 bits) of the issue is trained and reported separately
(``step_1ms_*``).

Quantisation-aware training alone leaves delays near a rounding boundary
flipping between grid points until the last step (Adam's steps do not
shrink with the gradient), and the accuracy jitters by several points from
epoch to epoch; so by default every run (continuous ones too) anneals the
delays' learning rate to zero over the first ``--anneal`` = 2/3 of the
epochs (cosine), and the remaining epochs fine-tune the weights on fixed
delays.

Scales: ``--quick`` (seconds, for the tests: 8 hidden neurons, 100 trials,
2 epochs), ``--full`` (the recipe's 300 epochs, all three kinds, bits 1-8,
d_max 5 and 10 ms, seeds 0-2: hours), default (reduced: 30 hidden neurons, 1500 training trials,
30 epochs, synaptic delays, seed 0), or any of ``--kinds``, ``--bits``,
``--d-max``, ``--seeds``, ``--epochs``, ``--n-train``, ``--hidden``.
Every run keeps its checkpoints in ``--runs`` (default
build/delay_quantisation/<scale>), so an interrupted analysis resumes; runs
are spread over ``--jobs`` processes (one engine thread each).

Result: analyses/results/delay_quantisation.nc (read by
paper_figures/fig_delay_quantisation.py): ``continuous_accuracy`` (kind,
d_max, seed), ``rounded_accuracy`` and ``qat_accuracy`` (kind, d_max, bits,
seed), ``step_1ms_rounded_accuracy`` and ``step_1ms_qat_accuracy`` (kind,
seed), test accuracies as fractions, and ``train_seconds`` per run.
Usage: python analyses/delay_quantisation.py [--quick | --full] [--out PATH] [--runs DIR] [--jobs N] [...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parent.parent
RESULT = "delay_quantisation.nc"
DEFAULT_OUT = ROOT / "analyses" / "results" / RESULT
EXPECTED_SECONDS = {"quick": 120, "default": 600, "full": 40000}   # wall time on 2 quiet cores (--jobs 2)
STEP_1MS = 1e-3

SCALES = {
    "quick": dict(kinds=("synaptic",), bits=(1, 3), d_max=(10e-3,), seeds=(0,), step_1ms=True,
                  train=dict(hidden=8, n_train=100, n_validation=50, n_test=100, epochs=2, batch_size=50)),
    "default": dict(kinds=("synaptic",), bits=(1, 2, 3, 4, 6), d_max=(10e-3,), seeds=(0,), step_1ms=True,
                    train=dict(hidden=30, n_train=1500, n_validation=300, n_test=1000, epochs=30)),
    "full": dict(kinds=("synaptic", "axonal", "dendritic"), bits=(1, 2, 3, 4, 5, 6, 8), d_max=(5e-3, 10e-3),
                 seeds=(0, 1, 2), step_1ms=True, train=dict(hidden=30)),
}


def run_name(kind, d_max, seed, bits=None, step=None) -> str:
    grid = f"b{bits}" if bits is not None else (f"step{step * 1e3:g}ms" if step is not None else "cont")
    return f"{kind}-dmax{d_max * 1e3:g}ms-{grid}-s{seed}"


def one_run(name: str, cfg: dict, runs: str, round_steps: tuple) -> dict:
    """Train (or resume / reload) one configuration; its test accuracy, and with each of `round_steps`
    (s) after rounding the trained delays. Results are cached in ``runs/name/summary.json``."""
    from neurodelay.train.config import RunConfig
    from neurodelay.train.runs import evaluate_model, train_run
    from neurodelay.train.recipes import get_recipe, resolve_config

    folder = Path(runs) / name
    summary = folder / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text())
    rc = resolve_config(RunConfig(**cfg))
    t0 = time.perf_counter()
    result, evaluation = train_run(rc, folder, resume=True, progress=False, n_threads=1)
    seconds = time.perf_counter() - t0
    _, _, test = get_recipe(rc.task).splits(rc)
    out = dict(name=name, accuracy=float(evaluation.attrs["accuracy"]), train_seconds=seconds,
               epochs=int(result.epoch),
               rounded={f"{s:.9g}": evaluate_model(result.model, test, s).accuracy for s in round_steps})
    summary.write_text(json.dumps(out, indent=1))
    print(f"{name}: test accuracy {out['accuracy']:.4f} ({seconds:.0f} s)", flush=True)
    return out


def plan(s: dict) -> list[tuple[str, dict, tuple]]:
    from neurodelay.train.constraints import grid_step
    from neurodelay.train.recipes import get_recipe

    runs = []
    for kind in s["kinds"]:
        for seed in s["seeds"]:
            for d_max in s["d_max"]:
                base = dict(task="yinyang", learn=["weight", kind], seed=seed, d_max=d_max, **s["train"])
                if s.get("anneal"):
                    epochs = s["train"].get("epochs", get_recipe("yinyang").defaults["epochs"])
                    base["schedule_by"] = {kind: dict(kind="cosine", floor=0.0,
                                                      epochs=max(1, round(s["anneal"] * epochs)))}
                steps = tuple(grid_step(d_max, b) for b in s["bits"])
                if s["step_1ms"] and d_max == 10e-3:
                    steps += (STEP_1MS,)
                runs.append((run_name(kind, d_max, seed), base, steps))
                for b in s["bits"]:
                    runs.append((run_name(kind, d_max, seed, bits=b), dict(base, delay_bits=b), ()))
            if s["step_1ms"] and 10e-3 in s["d_max"]:
                base = [c for n, c, _ in runs if n == run_name(kind, 10e-3, seed)][0]
                runs.append((run_name(kind, 10e-3, seed, step=STEP_1MS), dict(base, delay_step=STEP_1MS), ()))
    return runs


def analyse(s: dict, runs_dir: Path, jobs: int) -> xr.Dataset:
    from neurodelay.train.constraints import grid_step

    todo = plan(s)
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            done = list(pool.map(one_run, *zip(*[(n, c, str(runs_dir), st) for n, c, st in todo])))
    else:
        done = [one_run(n, c, str(runs_dir), st) for n, c, st in todo]
    by_name = {d["name"]: d for d in done}
    kinds, seeds, d_maxes, bits = list(s["kinds"]), list(s["seeds"]), list(s["d_max"]), list(s["bits"])
    cont = np.full((len(kinds), len(d_maxes), len(seeds)), np.nan)
    rounded = np.full((len(kinds), len(d_maxes), len(bits), len(seeds)), np.nan)
    qat = rounded.copy()
    r1, q1 = np.full((len(kinds), len(seeds)), np.nan), np.full((len(kinds), len(seeds)), np.nan)
    for i, kind in enumerate(kinds):
        for k, seed in enumerate(seeds):
            for j, d_max in enumerate(d_maxes):
                c = by_name[run_name(kind, d_max, seed)]
                cont[i, j, k] = c["accuracy"]
                for m, b in enumerate(bits):
                    rounded[i, j, m, k] = c["rounded"][f"{grid_step(d_max, b):.9g}"]
                    qat[i, j, m, k] = by_name[run_name(kind, d_max, seed, bits=b)]["accuracy"]
                if s["step_1ms"] and d_max == 10e-3:
                    r1[i, k] = c["rounded"][f"{STEP_1MS:.9g}"]
                    q1[i, k] = by_name[run_name(kind, d_max, seed, step=STEP_1MS)]["accuracy"]
    dims4 = ("kind", "d_max", "bits", "seed")
    ds = xr.Dataset(
        {"continuous_accuracy": (("kind", "d_max", "seed"), cont,
                                 {"description": "test accuracy, delays trained and evaluated continuous"}),
         "rounded_accuracy": (dims4, rounded, {"description": "test accuracy of the continuous network with "
                                                              "every delay rounded to the grid after training"}),
         "qat_accuracy": (dims4, qat, {"description": "test accuracy of the network trained on the grid "
                                                      "(quantisation-aware, straight-through)"}),
         "step_1ms_rounded_accuracy": (("kind", "seed"), r1, {"description": "continuous network rounded to a "
                                                                             "1 ms grid (d_max 10 ms)"}),
         "step_1ms_qat_accuracy": (("kind", "seed"), q1, {"description": "trained on a 1 ms grid (d_max 10 ms, "
                                                                         "11 levels)"}),
         "train_seconds": (("run",), np.array([d["train_seconds"] for d in done]), {"units": "s"})},
        coords={"kind": kinds, "d_max": ("d_max", np.array(d_maxes), {"units": "s"}), "bits": bits,
                "seed": seeds, "run": [d["name"] for d in done],
                "step": (("d_max", "bits"), np.array([[grid_step(dm, b) for b in bits] for dm in d_maxes]),
                         {"units": "s", "description": "grid step d_max / (2**bits - 1)"})})
    ds.attrs.update(train_config=json.dumps(s["train"]), task="yinyang", anneal_fraction=float(s.get("anneal", 0)),
                    machine=f"{platform.machine()} {platform.python_version()}")
    return ds


def main(argv=None) -> int:
    from neurodelay.io import write_netcdf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result file (default analyses/results/{RESULT})")
    parser.add_argument("--runs", type=Path, help="folder of the runs' checkpoints (default build/delay_quantisation/SCALE)")
    scale_group = parser.add_mutually_exclusive_group()
    scale_group.add_argument("--quick", action="store_true", help="tiny networks, seconds (for the tests)")
    scale_group.add_argument("--full", action="store_true", help="published scale (hours)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--kinds", help="delay kinds, comma-separated")
    parser.add_argument("--bits", help="bit widths, comma-separated")
    parser.add_argument("--d-max", help="delay ranges (s), comma-separated")
    parser.add_argument("--seeds", help="training seeds, comma-separated")
    parser.add_argument("--anneal", type=float, default=2 / 3,
                        help="the delays' learning rate decays to 0 (cosine) over this fraction of the epochs, "
                             "then the weights are fine-tuned on fixed delays (every run; 0: off; default 2/3)")
    for name in ("epochs", "n_train", "hidden"):
        parser.add_argument("--" + name.replace("_", "-"), type=int)
    args = parser.parse_args(argv)
    scale = "quick" if args.quick else ("full" if args.full else "default")
    s = dict(SCALES[scale], train=dict(SCALES[scale]["train"]))
    if args.kinds:
        s["kinds"] = tuple(args.kinds.split(","))
    if args.bits:
        s["bits"] = tuple(int(b) for b in args.bits.split(","))
    if args.d_max:
        s["d_max"] = tuple(float(d) for d in args.d_max.split(","))
    if args.seeds:
        s["seeds"] = tuple(int(x) for x in args.seeds.split(","))
    for name in ("epochs", "n_train", "hidden"):
        if getattr(args, name) is not None:
            s["train"][name] = getattr(args, name)
    if not 0 <= args.anneal <= 1:
        raise ValueError(f"--anneal must lie in [0, 1], got {args.anneal}")
    s["anneal"] = args.anneal
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    runs = args.runs or ROOT / "build" / "delay_quantisation" / scale
    os.environ.setdefault("NEURODELAY_THREADS", "1")
    ds = analyse(s, runs, args.jobs)
    write_netcdf(ds, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
