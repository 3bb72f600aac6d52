"""How learned delays move during training: Yin-Yang, 30 hidden, weights + one delay kind at a time.

For each delay kind (axonal, dendritic, synaptic) one network is trained with
the Yin-Yang recipe (DelGrad's set-up, ``neurodelay.train``), and after every
epoch the trained delays are read back from the run's checkpoint. Stored, per
kind and projection (all delays in s):

* ``<kind>_<projection>_initial`` / ``_final``: every delay before training and
  after the last epoch (dimension ``<kind>_<projection>_index``);
* ``<kind>_<projection>_quantile`` (epoch, quantile): the 5, 25, 50, 75 and 95 %
  quantiles of the delays after each epoch (epoch 0 = initial);
* ``<kind>_test_accuracy``: test accuracy of the final network (fraction).

Scales: ``--quick`` (2 epochs on 100 training samples, seconds), default
(60 epochs on the full training set, a few minutes on 2 cores), ``--full``
(the recipe's 300 epochs, about 4 minutes per kind on 2 cores).

Usage: python analyses/delay_learning.py [--quick | --full] [--seed N] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.io import provenance, write_netcdf
from neurodelay.train import RunConfig, build_model, load_checkpoint, resolve_config, train_run
from neurodelay.gradients import get_param

RESULT = "delay_learning.nc"
EXPECTED_SECONDS = {"quick": 30, "default": 300, "full": 1000}   # wall time on 2 quiet cores
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / RESULT
KINDS = ("axonal", "dendritic", "synaptic")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
SCALES = {"quick": dict(epochs=2, n_train=100, n_validation=50, n_test=100),
          "default": dict(epochs=60),
          "full": dict()}     # the recipe's own settings (300 epochs)


def _name(key) -> str:
    projection, kind = key
    return f"{kind}_{projection.replace('->', '_to_')}"


def train_kind(kind: str, scale: str, seed: int) -> xr.Dataset:
    """Train weights + one delay kind and record its delays after every epoch (see the module docstring)."""
    cfg = resolve_config(RunConfig(task="yinyang", hidden=30, learn=("weight", kind), seed=seed,
                                   **SCALES[scale]))
    keys = [k for k in build_model(cfg).keys if k[1] == kind]
    initial_net = build_model(cfg).network
    snapshots = {k: [np.asarray(get_param(initial_net, k), float)] for k in keys}
    with tempfile.TemporaryDirectory() as folder:
        def read_delays(event, info):
            if event == "epoch":   # last.nc holds the network after this epoch (written before callbacks)
                net = load_checkpoint(Path(folder) / "last.nc").network
                for k in keys:
                    snapshots[k].append(np.asarray(get_param(net, k), float))
        start = time.perf_counter()
        result, test = train_run(cfg, folder, progress=True, callbacks=(read_delays,))
        wall = time.perf_counter() - start
    variables = {f"{kind}_test_accuracy": ((), float(test.attrs["accuracy"]), {"units": "1"})}
    for k in keys:
        name = _name(k)
        values = np.stack(snapshots[k])                       # (epochs + 1, n)
        variables[f"{name}_initial"] = ((f"{name}_index",), values[0], {"units": "s"})
        variables[f"{name}_final"] = ((f"{name}_index",), values[-1], {"units": "s"})
        variables[f"{name}_quantile"] = (("epoch", "quantile"), np.quantile(values, QUANTILES, axis=1).T,
                                         {"units": "s", "projection": k[0], "kind": kind})
    ds = xr.Dataset(variables, coords={"epoch": np.arange(result.epoch + 1), "quantile": list(QUANTILES)})
    ds.attrs[f"{kind}_train_seconds"] = wall
    ds.attrs[f"{kind}_d_max"] = float(cfg.d_max)
    return ds


def run(scale: str = "default", seed: int = 0) -> xr.Dataset:
    """All three delay kinds merged into one Dataset with provenance."""
    parts = [train_kind(kind, scale, seed) for kind in KINDS]
    epochs = min(p.sizes["epoch"] for p in parts)
    ds = xr.merge([p.isel(epoch=slice(0, epochs)) for p in parts], combine_attrs="drop_conflicts")
    ds.epoch.attrs["long_name"] = "completed training epochs"
    ds.attrs.update(provenance(seed, dict(scale=scale, task="yinyang", hidden=30, kinds=list(KINDS)), "auto"))
    ds.attrs.update(analysis="delay_learning", scale=scale, command="python analyses/delay_learning.py "
                    + {"quick": "--quick", "full": "--full", "default": ""}[scale])
    return ds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result file (default {RESULT} in "
                        "analyses/results)")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="2 epochs on 100 samples (seconds)")
    scale.add_argument("--full", action="store_true", help="the recipe's 300 epochs (about 12 minutes)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    args = parser.parse_args(argv)
    ds = run("quick" if args.quick else "full" if args.full else "default", args.seed)
    write_netcdf(ds, args.out)
    for kind in KINDS:
        print(f"{kind:>9}: test accuracy {100 * float(ds[f'{kind}_test_accuracy']):.1f} %, "
              f"{ds.attrs[f'{kind}_train_seconds']:.0f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
