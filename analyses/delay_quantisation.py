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

Straight-through training on the grid from the first step leaves delays
near a rounding boundary flipping between grid points (Adam's steps do not
shrink with the gradient; each flip moves a PSP by a whole step), and the
accuracy jitters by several points from epoch to epoch. The grid runs
therefore use the quantisation-aware recipe :data:`QAT` (the library's
default ``neurodelay.train.recipes.QAT_DEFAULTS`` with a longer warm-up;
recipes compared in bench/qat_recipes.py): continuous delays for the first ``--qat-warmup`` of
the epochs, then the grid with the delays' learning rate times
``--qat-delay-lr``; ``--qat-ramp`` and ``--qat-rounding stochastic`` select
the other recipes. ``--anneal`` (default off) instead decays every run's
delay learning rate to zero over that fraction of the epochs (the previous
recipe). Continuous and grid runs train for the same epochs; each is
evaluated with its final network and with its best-validation checkpoint
(a grid run's is always on its final grid).

Scales: ``--quick`` (seconds, for the tests: 8 hidden neurons, 100 trials,
2 epochs), ``--full`` (the recipe's 300 epochs, all three kinds, bits 1-8,
d_max 5 and 10 ms, seeds 0-2: hours), default (reduced: 30 hidden neurons,
1500 training trials, 30 epochs, all three kinds, bits 1, 2, 3, 4, 6,
d_max 5 and 10 ms for synaptic delays and 10 ms for the others, the 1 ms
grid for synaptic delays, seeds 0-2; 75 runs of ~1-5 min, about 75 min with --jobs 2), or any of
``--kinds``, ``--bits``, ``--d-max`` (then for every kind), ``--seeds``,
``--epochs``, ``--n-train``, ``--hidden``.
Every run keeps its checkpoints in ``--runs`` (default
build/delay_quantisation/<scale>; folder names end in a hash of the
settings), so an interrupted analysis resumes; runs are spread over
``--jobs`` processes (one engine thread each).

Result: analyses/results/delay_quantisation.nc (read by
paper_figures/fig_delay_quantisation.py): ``continuous_accuracy`` (kind,
d_max, seed), ``rounded_accuracy`` and ``qat_accuracy`` (kind, d_max, bits,
seed), ``step_1ms_rounded_accuracy`` and ``step_1ms_qat_accuracy`` (kind,
seed), test accuracies as fractions, the same with ``_best_accuracy`` for
the best-validation checkpoints, and ``train_seconds`` per run.
Usage: python analyses/delay_quantisation.py [--quick | --full] [--out PATH] [--runs DIR] [--jobs N] [...]
"""

from __future__ import annotations

import hashlib
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
EXPECTED_SECONDS = {"quick": 120, "default": 4500, "full": 40000}   # wall time on 2 quiet cores (--jobs 2)
STEP_1MS = 1e-3
#: the quantisation-aware recipe of the grid runs (RunConfig fields; bench/qat_recipes.py compares recipes):
#: continuous delays for the first half of the epochs, then fixed on the grid while the weights train (the
#: committed result; the library default, QAT_DEFAULTS, starts the grid after a third: on the 1 ms grid,
#: 3 seeds, 95.8 ± 0.6 % with a half against 96.6 ± 0.5 % with a third)
QAT = dict(qat_warmup=0.5, qat_delay_lr=0.0)

SCALES = {
    "quick": dict(kinds=("synaptic",), bits=(1, 3), d_max=(10e-3,), seeds=(0,), step_1ms=True,
                  train=dict(hidden=8, n_train=100, n_validation=50, n_test=100, epochs=2, batch_size=50)),
    "default": dict(kinds=("synaptic", "axonal", "dendritic"), bits=(1, 2, 3, 4, 6), d_max=(5e-3, 10e-3),
                    d_max_by_kind=dict(axonal=(10e-3,), dendritic=(10e-3,)), step_1ms_kinds=("synaptic",),
                    seeds=(0, 1, 2), step_1ms=True,
                    train=dict(hidden=30, n_train=1500, n_validation=300, n_test=1000, epochs=30)),
    "full": dict(kinds=("synaptic", "axonal", "dendritic"), bits=(1, 2, 3, 4, 5, 6, 8), d_max=(5e-3, 10e-3),
                 seeds=(0, 1, 2), step_1ms=True, train=dict(hidden=30)),
}


def run_name(kind, d_max, seed, bits=None, step=None) -> str:
    grid = f"b{bits}" if bits is not None else (f"step{step * 1e3:g}ms" if step is not None else "cont")
    return f"{kind}-dmax{d_max * 1e3:g}ms-{grid}-s{seed}"


def settings_tag(s: dict, grid: bool) -> str:
    """Short hash of the settings that change a run (training scale, anneal, and for grid runs the QAT
    recipe): run folders are named with it, so runs of other settings are never reused."""
    key = dict(train=s["train"], anneal=s.get("anneal", 0))
    if grid:
        key["qat"] = s.get("qat", {})
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]


def one_run(name: str, cfg: dict, runs: str, round_steps: tuple) -> dict:
    """Train (or resume / reload) one configuration; its test accuracy (final network and best-validation
    checkpoint), and with each of `round_steps` (s) after rounding the trained delays (both networks).
    Results are cached in ``runs/name/summary.json``."""
    from neurodelay.train.config import RunConfig
    from neurodelay.train.runs import evaluate_model, model_from_checkpoint, train_run
    from neurodelay.train.recipes import get_recipe, resolve_config
    from neurodelay.train.trainer import BEST

    folder = Path(runs) / name
    summary = folder / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text())
    rc = resolve_config(RunConfig(**cfg))
    t0 = time.perf_counter()
    result, evaluation = train_run(rc, folder, resume=True, progress=False, n_threads=1)
    seconds = time.perf_counter() - t0
    _, _, test = get_recipe(rc.task).splits(rc)
    best = model_from_checkpoint(folder / BEST)[0] if (folder / BEST).exists() else result.model
    out = dict(name=name, accuracy=float(evaluation.attrs["accuracy"]), train_seconds=seconds,
               epochs=int(result.epoch), best_epoch=int(result.best_epoch),
               best_accuracy=evaluate_model(best, test).accuracy,
               rounded={f"{s:.9g}": evaluate_model(result.model, test, s).accuracy for s in round_steps},
               best_rounded={f"{s:.9g}": evaluate_model(best, test, s).accuracy for s in round_steps})
    summary.write_text(json.dumps(out, indent=1))
    print(f"{name}: test accuracy {out['accuracy']:.4f} ({seconds:.0f} s)", flush=True)
    return out


def plan(s: dict) -> list[tuple[str, dict, tuple]]:
    from neurodelay.train.constraints import grid_step
    from neurodelay.train.recipes import get_recipe

    runs = []
    qat = dict(s.get("qat", {}))
    for kind in s["kinds"]:
        d_maxes = [d for d in s["d_max"] if d in s.get("d_max_by_kind", {}).get(kind, s["d_max"])]
        step_1ms = s["step_1ms"] and kind in s.get("step_1ms_kinds", (kind,))
        for seed in s["seeds"]:
            for d_max in d_maxes:
                base = dict(task="yinyang", learn=["weight", kind], seed=seed, d_max=d_max, **s["train"])
                if s.get("anneal"):
                    epochs = s["train"].get("epochs", get_recipe("yinyang").defaults["epochs"])
                    base["schedule_by"] = {kind: dict(kind="cosine", floor=0.0,
                                                      epochs=max(1, round(s["anneal"] * epochs)))}
                steps = tuple(grid_step(d_max, b) for b in s["bits"])
                if step_1ms and d_max == 10e-3:
                    steps += (STEP_1MS,)
                runs.append((run_name(kind, d_max, seed), base, steps))
                for b in s["bits"]:
                    runs.append((run_name(kind, d_max, seed, bits=b), dict(base, delay_bits=b, **qat), ()))
            if step_1ms and 10e-3 in d_maxes:
                base = [c for n, c, _ in runs if n == run_name(kind, 10e-3, seed)][0]
                runs.append((run_name(kind, 10e-3, seed, step=STEP_1MS), dict(base, delay_step=STEP_1MS, **qat),
                             ()))
    return runs


def analyse(s: dict, runs_dir: Path, jobs: int) -> xr.Dataset:
    from neurodelay.train.constraints import grid_step

    names = [n for n, _, _ in plan(s)]
    todo = [(f"{n}-{settings_tag(s, '-cont-' not in n)}", c, str(runs_dir), st) for n, c, st in plan(s)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            done = list(pool.map(one_run, *zip(*todo)))
    else:
        done = [one_run(*t) for t in todo]
    by_name = dict(zip(names, done))
    kinds, seeds, d_maxes, bits = list(s["kinds"]), list(s["seeds"]), list(s["d_max"]), list(s["bits"])
    data = {}
    for sel, which in (("", "final network"), ("best_", "best-validation checkpoint")):
        cont = np.full((len(kinds), len(d_maxes), len(seeds)), np.nan)
        rounded = np.full((len(kinds), len(d_maxes), len(bits), len(seeds)), np.nan)
        qat = rounded.copy()
        r1, q1 = np.full((len(kinds), len(seeds)), np.nan), np.full((len(kinds), len(seeds)), np.nan)
        for i, kind in enumerate(kinds):
            for k, seed in enumerate(seeds):
                for j, d_max in enumerate(d_maxes):
                    if run_name(kind, d_max, seed) not in by_name:
                        continue       # a (kind, range) this scale does not train: NaN
                    c = by_name[run_name(kind, d_max, seed)]
                    cont[i, j, k] = c[sel + "accuracy"]
                    for m, b in enumerate(bits):
                        rounded[i, j, m, k] = c[sel + "rounded"][f"{grid_step(d_max, b):.9g}"]
                        qat[i, j, m, k] = by_name[run_name(kind, d_max, seed, bits=b)][sel + "accuracy"]
                    if run_name(kind, d_max, seed, step=STEP_1MS) in by_name:
                        r1[i, k] = c[sel + "rounded"][f"{STEP_1MS:.9g}"]
                        q1[i, k] = by_name[run_name(kind, d_max, seed, step=STEP_1MS)][sel + "accuracy"]
        dims4 = ("kind", "d_max", "bits", "seed")
        data |= {
            f"continuous_{sel}accuracy": (("kind", "d_max", "seed"), cont, {
                "description": f"test accuracy ({which}), delays trained and evaluated continuous"}),
            f"rounded_{sel}accuracy": (dims4, rounded, {
                "description": f"test accuracy of the continuous run's {which} with every delay rounded to the "
                               f"grid after training"}),
            f"qat_{sel}accuracy": (dims4, qat, {
                "description": f"test accuracy ({which}) of the network trained on the grid (quantisation-aware, "
                               f"straight-through; the QAT recipe in the attribute qat)"}),
            f"step_1ms_rounded_{sel}accuracy": (("kind", "seed"), r1, {
                "description": f"continuous run's {which} rounded to a 1 ms grid (d_max 10 ms)"}),
            f"step_1ms_qat_{sel}accuracy": (("kind", "seed"), q1, {
                "description": f"trained on a 1 ms grid (d_max 10 ms, 11 levels), {which}"})}
    ds = xr.Dataset(
        data | {
         "train_seconds": (("run",), np.array([d["train_seconds"] for d in done]), {"units": "s"})},
        coords={"kind": kinds, "d_max": ("d_max", np.array(d_maxes), {"units": "s"}), "bits": bits,
                "seed": seeds, "run": [d["name"] for d in done],
                "step": (("d_max", "bits"), np.array([[grid_step(dm, b) for b in bits] for dm in d_maxes]),
                         {"units": "s", "description": "grid step d_max / (2**bits - 1)"})})
    ds.attrs.update(train_config=json.dumps(s["train"]), task="yinyang", anneal_fraction=float(s.get("anneal", 0)),
                    qat=json.dumps(s.get("qat", {})),
                    machine=f"{platform.machine()} {platform.python_version()}")
    return ds


def main(argv=None) -> int:
    from neurodelay.analysis.common import scale_of, scale_parser
    from neurodelay.io import write_netcdf

    parser = scale_parser(__doc__.splitlines()[0], DEFAULT_OUT, quick="tiny networks, seconds (for the tests)",
                          full="published scale (hours)", between=[(
                              ("--runs",), dict(type=Path, help="folder of the runs' checkpoints "
                                                                "(default build/delay_quantisation/SCALE)"))])
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--kinds", help="delay kinds, comma-separated")
    parser.add_argument("--bits", help="bit widths, comma-separated")
    parser.add_argument("--d-max", help="delay ranges (s), comma-separated")
    parser.add_argument("--seeds", help="training seeds, comma-separated")
    parser.add_argument("--anneal", type=float, default=0.0,
                        help="the delays' learning rate decays to 0 (cosine) over this fraction of the epochs, "
                             "then the weights are fine-tuned on fixed delays (every run; default 0: off)")
    parser.add_argument("--qat-warmup", type=float, default=QAT["qat_warmup"],
                        help=f"grid runs: fraction of the epochs with continuous delays (default {QAT['qat_warmup']})")
    parser.add_argument("--qat-delay-lr", type=float, default=QAT["qat_delay_lr"],
                        help=f"grid runs: the delays' learning rate x this on the grid (default {QAT['qat_delay_lr']})")
    parser.add_argument("--qat-ramp", type=float, default=0.0, help="grid runs: progressive step ramp (fraction)")
    parser.add_argument("--qat-rounding", choices=("nearest", "stochastic"), default="nearest",
                        help="grid runs: rounding in training minibatches")
    for name in ("epochs", "n_train", "hidden"):
        parser.add_argument("--" + name.replace("_", "-"), type=int)
    args = parser.parse_args(argv)
    scale = scale_of(args)
    s = dict(SCALES[scale], train=dict(SCALES[scale]["train"]))
    if args.kinds:
        s["kinds"] = tuple(args.kinds.split(","))
    if args.bits:
        s["bits"] = tuple(int(b) for b in args.bits.split(","))
    if args.d_max:
        s["d_max"] = tuple(float(d) for d in args.d_max.split(","))
        s.pop("d_max_by_kind", None)
    if args.seeds:
        s["seeds"] = tuple(int(x) for x in args.seeds.split(","))
    for name in ("epochs", "n_train", "hidden"):
        if getattr(args, name) is not None:
            s["train"][name] = getattr(args, name)
    if not 0 <= args.anneal <= 1:
        raise ValueError(f"--anneal must lie in [0, 1], got {args.anneal}")
    s["anneal"] = args.anneal
    s["qat"] = {k: v for k, v in dict(qat_warmup=args.qat_warmup, qat_delay_lr=args.qat_delay_lr,
                                        qat_ramp=args.qat_ramp, qat_rounding=args.qat_rounding).items()
                if v not in (0.0, "nearest") or k == "qat_delay_lr"}
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
