"""Which departure of the three-factor rule from the exact gradient costs it the recurrent digits task
(issue #16): cosine similarity between the rule's update and the exact (EventProp) gradient, per
projection and parameter kind, on the recipe's recurrent network before and after exact training.

For each seed: the ``digits`` recipe's network (65 inputs -> 32 recurrent hidden LIF -> 10 readouts,
weights everywhere, synaptic delays on ``hidden->hidden``), ``--trials`` training trials as one batch,
and these networks:

* ``initial``: as built;
* ``trained``: after ``--epochs`` epochs of exact training on ``--n-train`` trials (the reduced scale of
  ``analyses/online_vs_exact.py``);
* ``trained, w_rec = 0``: the trained network with its recurrent weights set to 0, which removes the
  rule's departure 5 (the paths through other hidden neurons' spikes, each carrying a recurrent weight;
  :mod:`neurodelay.plasticity`): what is left are departures 1-3;
* ``trained, exact pd``: the trained network with the exact pseudo-derivative instead of the Gaussian
  surrogate (departure 2 removed).

Also the root mean square of the recurrent weights before and after training. The readout synapses'
update is exact in every mode (cosine 1), so it is not listed.

Usage: ``python bench/online_departures.py [--seeds 0,1,2] [--jobs 2] [--json PATH]``
(default JSON: build/bench/online_departures.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np
from _common import (default_json_path, package_versions, print_table, run_each, stopwatch, write_json_atomic,
                     writable_path)

#: (projection, kind) pairs whose cosine is reported (the readout's is 1 by construction)
KEYS = (("input->hidden", "weight"), ("hidden->hidden", "weight"), ("hidden->hidden", "synaptic"))
RECURRENT = ("hidden->hidden", "weight")


def _cosines(net, rule, batch, loss) -> dict:
    from neurodelay.plasticity import cosine_to_exact

    cos = cosine_to_exact(net, rule, batch.inputs, float(batch.duration), loss, batch.labels)
    return {f"{key[0]}:{key[1]}": cos[key] for key in KEYS}


def one_seed(seed: int, trials: int, epochs: int, n_train: int) -> dict:
    from neurodelay.gradients import get_param, set_param
    from neurodelay.train import RunConfig, build_model, get_recipe, resolve_config, train_run

    learn = ["weight", "synaptic"]
    cfg = resolve_config(RunConfig(task="digits", learn=learn, seed=seed, rule="three-factor"))
    train, _, _ = get_recipe("digits").splits(cfg)
    batch = train.select(np.arange(min(trials, len(train))))
    model = build_model(cfg)
    rule, loss = model.rule, model.loss
    with stopwatch() as elapsed:
        result, evaluation = train_run(resolve_config(RunConfig(task="digits", learn=learn, seed=seed, epochs=epochs,
                                                                n_train=n_train)),
                                       None, progress=False, n_threads=1)
    trained = result.model.network
    w0, w1 = get_param(model.network, RECURRENT), get_param(trained, RECURRENT)
    out = dict(seed=seed, exact_test_accuracy=float(evaluation.attrs["accuracy"]), train_seconds=elapsed(),
               recurrent_weight_rms=dict(initial=float(np.sqrt(np.mean(w0 ** 2))),
                                         trained=float(np.sqrt(np.mean(w1 ** 2)))),
               cosine={"initial": _cosines(model.network, rule, batch, loss),
                       "trained": _cosines(trained, rule, batch, loss),
                       "trained, w_rec = 0": _cosines(set_param(trained, RECURRENT, 0.0 * w1), rule, batch, loss),
                       "trained, exact pd": _cosines(trained, dataclasses.replace(rule, pseudo_derivative="exact"),
                                                     batch, loss)})
    print(f"seed {seed}: exact training {100 * out['exact_test_accuracy']:.1f} % test ({elapsed():.0f} s)",
          flush=True)
    return out


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct integers >= 0, got {text!r}")
    return seeds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--trials", type=int, default=100, help="trials of the batch the cosines are taken on")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--json", type=writable_path, default=default_json_path("online_departures"))
    a = p.parse_args(argv)
    try:
        seeds = _seeds(a.seeds)
    except ValueError as err:
        p.error(str(err))
    for name in ("trials", "epochs", "n_train", "jobs"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    runs = run_each(one_seed, [(s, a.trials, a.epochs, a.n_train) for s in seeds], a.jobs)
    rows = []
    for when in runs[0]["cosine"]:
        row = {"network": when}
        for key in runs[0]["cosine"][when]:
            values = np.array([r["cosine"][when][key] for r in runs])
            row[key] = f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.2f}"
        rows.append(row)
    print(f"\ndigits, weights + recurrent synaptic delays, cosine of the rule's update to the exact gradient "
          f"({a.trials} trials), mean ± std over seeds {seeds}:")
    print_table(rows)
    rms = np.array([[r["recurrent_weight_rms"]["initial"], r["recurrent_weight_rms"]["trained"]] for r in runs])
    print(f"recurrent weight rms: initial {rms[:, 0].mean():.3f}, trained {rms[:, 1].mean():.3f}")
    path = write_json_atomic(a.json, dict(runs=runs, settings=dict(vars(a), json=str(a.json)),
                                          versions=package_versions("numpy", "numba")))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
