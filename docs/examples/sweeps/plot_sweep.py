"""
A sweep over a grid x seeds
===========================

:func:`neurodelay.sweep.run_sweep` calls a function at every point of a grid
of parameters, for several seeds, writes each point's result atomically to its
own NetCDF file and merges them into one :class:`xarray.Dataset` with one
dimension per parameter plus ``seed``. Running it again resumes (finished
points are read, not recomputed); ``executor=LocalExecutor(workers=N)`` or a
scheduler address runs the same sweep on Dask.

Here: the output rate of one LIF neuron driven by 40 Poisson inputs, against
the input rate and the synaptic weight, 3 seeds, on the exact engine.
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from neurodelay.analysis.common import poisson_trains
from neurodelay import simulate
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.sweep import run_sweep

QUICK = os.environ.get("NEURODELAY_GALLERY_QUICK") == "1"   # reduced scale for CI


def output_rate(rate, weight, seed, duration=2.0):
    """One point: output rate (Hz) of a LIF neuron (tau_m 10 ms, tau_s 5 ms) with 40 Poisson inputs."""
    net = Network().add(SpikeSource("inp", 40), LIF("out", 1, tau_m=10e-3, tau_s=5e-3, theta=1.0,
                                                    refractory=2e-3))
    net = net.connect("inp", "out", weight=weight)
    rec = simulate(net, poisson_trains(40, rate, duration, seed=seed), duration)
    return xr.Dataset({"output_rate": ((), len(rec.time) / duration, {"units": "Hz"})})


grid = {"rate": [5.0, 10.0, 20.0] if QUICK else [2.0, 5.0, 10.0, 15.0, 20.0, 30.0],
        "weight": [0.05, 0.1]}
folder = tempfile.mkdtemp()
ds = run_sweep(output_rate, grid, seeds=3, folder=folder, executor="serial", progress=False)
print(ds["status"].values.ravel())          # every point "ok"

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for weight in ds["weight"].values:
    r = ds["output_rate"].sel(weight=weight)
    ax.errorbar(ds["rate"], r.mean("seed"), yerr=r.std("seed"), marker="o", capsize=3,
                label=f"weight {weight:g} (mean ± std, 3 seeds)")
ax.set(xlabel="input rate per afferent (Hz)", ylabel="output rate (Hz)",
       title="a neuron's rate curve as a 2-d sweep")
ax.legend()
plt.show()
