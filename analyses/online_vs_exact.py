"""Online three-factor learning against exact offline (EventProp) learning, weights only against
weights + delays: accuracy, parameter count, memory per trial, wall time, and how well the online
updates point along the exact gradient (issue #16 part 3).

For each task (Yin-Yang, multi-time-scale XOR, permuted sequential digits), rule (``eventprop``:
exact gradients; ``three-factor``: :mod:`neurodelay.plasticity`, end-of-trial updates, Gaussian
surrogate, symmetric feedback, with the recipe's defaults for the rule: Yin-Yang sigma 0.1 theta,
MTS-XOR with learned delays 4x the learning rates of its exact learning) and parameter set
(``weights``; ``weights+delays``: synaptic delays of the task's trainable projections;
``weights+delays@grid``: the same with the delays trained on a grid of ``grid_bits`` bits over
[0, d_max], quantisation-aware with the library's default recipe) and seed, one network of the
task's recipe (same hidden size for both rules: equal model size) is trained with
:func:`neurodelay.train.train_run` and evaluated on the test split (final network).

Recorded per run:

* ``test_accuracy`` (fraction), ``n_params`` (trained parameters), ``train_time`` (s, wall, one
  engine thread);
* ``memory_per_trial`` (bytes): what one trial keeps for its update. Exact offline learning keeps
  the trial's event record for the adjoint pass: every spike of the trial, input spikes included
  (trial, neuron, time, I - theta: 32 bytes each; counted on the test split with the trained
  network), plus the adjoint's state (2 floats per neuron). The online rule keeps, per plastic
  synapse, the traces p, q and their integrals A, B (plus, for readout synapses, the two snapshot
  values at the running maximum) and, per neuron, V, I and the two cumulative surrogate integrals:
  8 bytes each, independent of how many events the trial has;
* ``cosine`` (kind: weight, synaptic; when: initial, trained): cosine similarity between the
  three-factor update and the exact gradient on the same batch of ``cos_trials`` training trials
  (same network: the initial one, and the one this run trained), for the runs with rule
  ``three-factor``.

On the digits recipe's recurrent hidden layer the rule runs as e-prop does (departure 5 in
:mod:`neurodelay.plasticity`): local traces on the recurrent synapses, the readout error through
feedback, no propagation through the recurrent path; its delays are those of the recurrent
projection (the recipe's ``delay_projections``).

Scales: ``--quick`` (seconds, for the tests: Yin-Yang only, 8 hidden neurons, 60 trials, 1 epoch,
1 seed), default (reduced: all three tasks, short runs on subsets of the data, 3 seeds), ``--full``
(the recipes' epochs and data, 3 seeds: hours). Every point goes through
:func:`neurodelay.sweep.run_sweep` into its own NetCDF file (``--parts``, default
``<out>.parts``), so an interrupted analysis resumes.

Result: analyses/results/online_vs_exact.nc (read by paper_figures/fig_online_vs_exact.py); the
recipes' scale for digits and MTS-XOR, weights and weights + delays, is in
analyses/results/online_vs_exact_full.nc (``--full --params weights,weights+delays --out
analyses/results/online_vs_exact_full.nc`` with ``--tasks digits``, then ``--tasks mts_xor --update``; 18 +
12 min on 2 cores; drawn by the same script).
Usage: python analyses/online_vs_exact.py [--quick | --full] [--out PATH] [--executor serial|local]
[--tasks digits --update] [--params weights,weights+delays] (``--update``: rerun some tasks and replace
only their rows in --out)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parent.parent
RESULT = "online_vs_exact.nc"
DEFAULT_OUT = ROOT / "analyses" / "results" / RESULT
EXPECTED_SECONDS = {"quick": 120, "default": 1800, "full": 100000}   # wall, 2 cores (default: ~17 min loaded)
RULES = ("eventprop", "three-factor")
PARAMS = ("weights", "weights+delays", "weights+delays@grid")
KINDS = ("weight", "synaptic")
WHEN = ("initial", "trained")

SCALES = {
    "quick": dict(tasks=("yinyang",), seeds=1, cos_trials=20, grid_bits=4, task=dict(
        yinyang=dict(hidden=8, n_train=60, n_validation=30, n_test=60, epochs=1, batch_size=30))),
    "default": dict(tasks=("yinyang", "mts_xor", "digits"), seeds=3, cos_trials=100, grid_bits=4, task=dict(
        yinyang=dict(n_train=1500, n_validation=300, n_test=1000, epochs=10),
        mts_xor=dict(n_train=500, n_validation=200, n_test=500, epochs=10),
        digits=dict(n_train=1000, n_test=500, epochs=15))),
    "full": dict(tasks=("yinyang", "mts_xor", "digits"), seeds=3, cos_trials=200, grid_bits=4,
                 task=dict(yinyang={}, mts_xor={}, digits={})),
}

# bytes per stored number
_F8 = 8
#: per spike of the event record: trial, neuron, time, I - theta
RECORD_BYTES_PER_SPIKE = 4 * _F8


def _cosines(model, batch) -> dict:
    """{kind: cosine} between the model's three-factor update and its exact gradient on `batch`
    (all keys of a kind concatenated)."""
    from neurodelay.plasticity import cosine_to_exact

    return cosine_to_exact(model.network, model.rule, batch.inputs, float(batch.duration), model.loss,
                           batch.labels, group="kind")


def _memory_per_trial(model, rule: str, data) -> float:
    """Bytes one trial keeps for its update (see the module docstring)."""
    net = model.network
    n_neurons = sum(p.n for p in net.populations)
    if rule == "eventprop":
        record = model._simulate(data.inputs, float(data.duration))
        spikes = (len(record.time) + len(data.inputs)) / max(data.inputs.n_trials, 1)
        return RECORD_BYTES_PER_SPIKE * spikes + 2 * _F8 * n_neurons
    from neurodelay.network import Readout
    plastic = 0
    for name, _kinds in model.rule.updates:
        proj = next(p for p in net.projections if p.name == name)
        readout = isinstance(net[proj.post], Readout)
        plastic += proj.n_syn * (4 + (2 if readout else 0))
    return _F8 * (plastic + 4 * n_neurons)


def online_exact_point(task: str, rule: str, params: str, seed: int, scale: dict) -> xr.Dataset:
    """One training run (see the module docstring); the sweep's point function."""
    from neurodelay.train import RunConfig, get_recipe, resolve_config, train_run

    settings = dict(scale["task"][task])
    learn = ["weight"] if params == "weights" else ["weight", "synaptic"]
    extra = dict(delay_bits=int(scale["grid_bits"])) if params.endswith("@grid") else {}
    cfg = resolve_config(RunConfig(task=task, learn=learn, seed=int(seed) % (2 ** 31),
                                   rule=None if rule == "eventprop" else rule, **settings, **extra))
    train, _, test = get_recipe(task).splits(cfg)
    cos = np.full((len(KINDS), len(WHEN)), np.nan)
    if rule != "eventprop":
        from neurodelay.train import build_model
        batch = train.select(np.arange(min(int(scale["cos_trials"]), len(train))))
        for kind, value in _cosines(build_model(cfg), batch).items():
            cos[KINDS.index(kind), 0] = value
    t0 = time.perf_counter()
    result, evaluation = train_run(cfg, None, progress=False, n_threads=1)
    wall = time.perf_counter() - t0
    model = result.model
    if rule != "eventprop":
        for kind, value in _cosines(model, batch).items():
            cos[KINDS.index(kind), 1] = value
    n_params = int(sum(np.size(v) for v in model.values().values()))
    memory = _memory_per_trial(model, rule, test.select(np.arange(min(200, len(test)))))
    return xr.Dataset(
        {"test_accuracy": ((), float(evaluation.attrs["accuracy"]), {"description": "test accuracy, final network"}),
         "n_params": ((), n_params, {"description": "trained parameters"}),
         "train_time": ((), wall, {"units": "s", "description": "wall time of training (one engine thread)"}),
         "memory_per_trial": ((), float(memory), {"units": "B", "description": "what one trial keeps for its "
                                                  "update (exact: event record + adjoint state; online: traces)"}),
         "cosine": (("kind", "when"), cos, {"description": "cosine similarity of the three-factor update to the "
                                                           "exact gradient on the same batch"})},
        coords={"kind": list(KINDS), "when": list(WHEN)},
        attrs=dict(config=json.dumps(cfg.to_dict(), default=str)))


def merge_tasks(old: xr.Dataset, new: xr.Dataset) -> xr.Dataset:
    """`old` with the tasks of `new` replaced (or added) by `new`'s rows (``--update``): the scale
    settings of each task are kept with it, the sweep counts recounted, the other attributes are
    `new`'s. Both must have the same rules, parameter sets and seeds."""
    for dim in ("rule", "params", "seed"):
        if list(old[dim].values) != list(new[dim].values):
            raise ValueError(f"--update: the existing result has {dim} {list(old[dim].values)}, this run "
                             f"{list(new[dim].values)}; write to another --out instead")
    keep = [t for t in old["task"].values if t not in set(new["task"].values)]
    merged = xr.concat([old.sel(task=keep), new], dim="task", data_vars="all", combine_attrs="override") \
        if keep else new.copy()
    settings_old, settings_new = json.loads(old.attrs["scale_settings"]), json.loads(new.attrs["scale_settings"])
    tasks = [str(t) for t in merged["task"].values]
    per_task = {t: (settings_new if t in settings_new["task"] and t in set(new["task"].values) else settings_old)
                ["task"][t] for t in tasks}
    settings = dict(settings_new, tasks=tasks, task=per_task)
    statuses = set(json.loads(old.attrs.get("sweep_counts", "{}"))) | set(json.loads(new.attrs.get("sweep_counts",
                                                                                                   "{}")))
    merged.attrs.update(new.attrs)
    merged.attrs.update(scale=old.attrs["scale"] if old.attrs.get("scale") == new.attrs.get("scale") else "mixed",
                        scale_settings=json.dumps(settings),
                        sweep_counts=json.dumps({k: int(np.sum(merged["status"].values == k))
                                                 for k in sorted(statuses)}))
    return merged


def main(argv=None) -> int:
    from neurodelay.analysis.common import scale_of, scale_parser
    from neurodelay.io import write_netcdf
    from neurodelay.sweep import run_sweep

    parser = scale_parser(__doc__.splitlines()[0], DEFAULT_OUT, quick="tiny: Yin-Yang only, seconds (for the tests)",
                          full="the recipes' epochs and data (hours)", between=[(
                              ("--parts",), dict(type=Path, help="sweep folder of the per-point files "
                                                                 "(default <out>.parts)"))])
    parser.add_argument("--tasks", help="tasks, comma-separated (default: the scale's)")
    parser.add_argument("--params", help=f"parameter sets, comma-separated (default: all of {', '.join(PARAMS)})")
    parser.add_argument("--seeds", type=int, help="seeds per point (default: the scale's)")
    parser.add_argument("--epochs", type=int, help="epochs of every task (default: the scale's)")
    parser.add_argument("--n-train", type=int, help="training trials of every task (default: the scale's)")
    parser.add_argument("--executor", default=None,
                        help="sweep executor: local (Dask, default), serial (default with --quick) or an address")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--update", action="store_true",
                        help="replace only these tasks' rows in the existing --out file (keep its other tasks)")
    args = parser.parse_args(argv)
    name = scale_of(args)
    scale = json.loads(json.dumps(SCALES[name]))
    if args.tasks:
        scale["tasks"] = tuple(args.tasks.split(","))
        unknown = sorted(set(scale["tasks"]) - set(scale["task"]))
        if unknown:
            parser.error(f"--tasks: unknown task(s) {unknown}; choose from {sorted(scale['task'])}")
    params = tuple(args.params.split(",")) if args.params else PARAMS
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        parser.error(f"--params: unknown parameter set(s) {unknown}; choose from {list(PARAMS)}")
    if args.seeds is not None:
        if args.seeds < 1:
            parser.error(f"--seeds must be >= 1, got {args.seeds}")
        scale["seeds"] = args.seeds
    for option in ("epochs", "n_train"):
        value = getattr(args, option)
        if value is not None:
            if value < 1:
                parser.error(f"--{option.replace('_', '-')} must be >= 1, got {value}")
            for task in scale["task"].values():
                task[option] = value
            name = "custom" if name != "quick" else name
    os.environ.setdefault("NEURODELAY_THREADS", "1")
    parts = args.parts or args.out.with_name(args.out.name + ".parts")
    ds = run_sweep(online_exact_point, grid=dict(task=list(scale["tasks"]), rule=list(RULES), params=list(params)),
                   seeds=int(scale["seeds"]), folder=parts, executor=args.executor or ("serial" if args.quick
                                                                                          else "local"),
                   progress=not args.no_progress, fixed=dict(scale=scale))
    ds.attrs.update(scale=name, scale_settings=json.dumps(scale))
    if args.update and args.out.exists():
        with xr.open_dataset(args.out) as old:
            ds = merge_tasks(old.load(), ds)
    write_netcdf(ds, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
