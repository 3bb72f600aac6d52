"""Why Moro et al.'s MTS-XOR stays at chance: the same network and loss on targets that need no memory,
memory only, or the XOR (:func:`neurodelay.analysis.hierarchy.relabel`).

For each target x memory constant x seed, one :func:`~neurodelay.analysis.hierarchy.hierarchy_point`
(2 hidden layers of 10 by default, delta_tau 0) and its test accuracy per segment and hidden spike counts:

* ``channel2``: the segment's channel-2 bit (no memory: the evidence lies in the segment's window);
* ``channel1``: bit 1 in every segment (memory only: channel 1 is silent after the first 0.1 s);
* ``xor``: the task.

``--memory tau_m``: the profile on tau_m (tau_s 5 ms; Moro et al.'s literal mapping), ``tau_s``: on the
synaptic current (tau_m 20 ms; the default of the analysis, see the module docstring of
:mod:`neurodelay.analysis.hierarchy`).

Usage: ``python bench/hierarchy_ablation.py --out build/ablation.nc [--labels channel2 channel1 xor]
[--memory tau_m tau_s] [--seeds 0] [--epochs 20] [--n-train 512] [--batch-size 16] [--hidden-bias]``.
Resumable: rows already in ``--out`` are kept. Prints one line per run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import xarray as xr

from neurodelay.analysis.hierarchy import LABELS, NETWORK_OPTIONS, hierarchy_point
from neurodelay.io import write_netcdf


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--labels", nargs="+", default=list(LABELS[::-1]), choices=LABELS)
    p.add_argument("--memory", nargs="+", default=["tau_m", "tau_s"], choices=["tau_m", "tau_s", "mixed"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--n-layers", type=int, default=3)
    p.add_argument("--delta-tau", type=float, default=0.0)
    p.add_argument("--hidden", type=int, default=10)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--n-train", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--hidden-bias", action="store_true")
    a = p.parse_args(argv)
    rows = []
    if a.out.exists():
        with xr.open_dataset(a.out) as old:
            rows = old.to_dataframe().reset_index(drop=True).to_dict("records")
    done = {(r["labels"], r["memory"], int(r["seed"])) for r in rows}
    for memory in a.memory:
        for labels in a.labels:
            for seed in a.seeds:
                if (labels, memory, seed) in done:
                    continue
                t0 = time.perf_counter()
                ds = hierarchy_point(a.delta_tau, a.n_layers, seed=seed, labels=labels, hidden=a.hidden,
                                     epochs=a.epochs, n_train=a.n_train, n_test=256, batch_size=a.batch_size,
                                     hidden_bias=a.hidden_bias, network_options=dict(NETWORK_OPTIONS, memory=memory))
                row = dict(labels=labels, memory=memory, seed=seed, accuracy=float(ds["accuracy"]),
                           wall_time=time.perf_counter() - t0,
                           **{f"segment_{int(k)}": float(v) for k, v in
                              zip(ds["segment"].values, ds["segment_accuracy"].values)},
                           **{f"spikes_h{int(k)}": float(v) for k, v in
                              zip(ds["layer"].values, ds["hidden_spikes"].values)})
                rows.append(row)
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                      flush=True)
                out = xr.Dataset.from_dataframe(pd.DataFrame(rows)).rename(index="run")
                out.attrs.update(command="python bench/hierarchy_ablation.py", epochs=a.epochs, n_train=a.n_train,
                                 batch_size=a.batch_size, hidden=a.hidden, n_layers=a.n_layers,
                                 delta_tau=a.delta_tau, hidden_bias=int(a.hidden_bias))
                write_netcdf(out, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
