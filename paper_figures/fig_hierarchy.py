"""Temporal hierarchy on Moro et al.'s MTS-XOR: accuracy vs delta_tau, learned tau per layer, fits, budget.

Reads ``temporal_hierarchy.nc`` (analyses/temporal_hierarchy.py). Panels: A test accuracy (over the 6
segment labels) against
delta_tau (s; > 0: slow near the output) for 3 and 4 layers, mean +- std over seeds, chance 0.5;
B learned memory time constant (tau_s by default, see neurodelay.analysis.hierarchy) per hidden layer
from a homogeneous start (median and quartiles per seed); C histogram of the pooled learned values with the
gamma and log-normal fits; D, E accuracy of learned delays (initialised uniformly over [0, d_max]) / time
constants / both at one parameter budget against the maximum delay, on the XOR (D) and on its memory part
alone, channel 1's bit in every segment (E).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))  # for `_figure` when the script is loaded by path (make_all, tests)
from _figure import figure_main  # noqa: E402

RESULT = "temporal_hierarchy.nc"
NAME = "hierarchy"


def draw(ds) -> plt.Figure:
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), layout="constrained")
    ax = axes.ravel()
    acc = ds["sweep_accuracy"]
    for n in acc["n_layers"].values:
        a = acc.sel(n_layers=n)
        ax[0].errorbar(a["delta_tau"].values, a.mean("seed").values * 100, a.std("seed").values * 100,
                       marker="o", capsize=3, label=f"{int(n)} layers")
    ax[0].axhline(50, color="k", ls=":", lw=1, label="chance")
    ax[0].axvline(0, color="0.7", lw=0.8)
    ax[0].set_xlabel("delta_tau (s)  (< 0: slow near input, > 0: slow near output)")
    ax[0].set_ylabel("test accuracy (%)")
    ax[0].set_title(f"A  accuracy vs tau profile ({acc.sizes['seed']} seeds)")
    ax[0].legend(fontsize=8)

    mem = ds.attrs.get("memory_constant", "tau_m")    # the time constant that carries the profile
    med, q25, q75 = (ds[k].values * 1e3 for k in ("learned_median", "learned_q25", "learned_q75"))
    layers = ds["layer"].values
    for s in range(med.shape[0]):
        off = 0.05 * (s - (med.shape[0] - 1) / 2)
        ax[1].errorbar(layers + off, med[s], [med[s] - q25[s], q75[s] - med[s]], marker="o", capsize=3,
                       label=f"seed {s}: slope {ds['learned_slope'].values[s] * 1e3:+.1f} ms/layer")
    ax[1].axhline(300, color="k", ls=":", lw=1, label="initial (0.3 s)")
    ax[1].set_xticks(layers)
    ax[1].set_xlabel("hidden layer (1 = input side)")
    ax[1].set_ylabel(f"learned {mem} (ms), median and quartiles")
    ax[1].set_title(f"B  learned {mem} from a homogeneous start")
    ax[1].legend(fontsize=7)

    x = ds[f"learned_{mem}"].values.ravel() * 1e3
    ax[2].hist(x, bins=30, density=True, color="0.75", label=f"learned {mem} (n = {x.size})")
    grid = np.linspace(max(x.min() * 0.8, 1e-3), x.max() * 1.2, 300)
    k, th = (float(ds["fit_shape"].sel(distribution="gamma")), float(ds["fit_scale"].sel(distribution="gamma")))
    sg, sc = (float(ds["fit_shape"].sel(distribution="lognormal")),
              float(ds["fit_scale"].sel(distribution="lognormal")))
    laws = (("gamma", stats.gamma(k, scale=th * 1e3).pdf), ("lognormal", stats.lognorm(sg, scale=sc * 1e3).pdf))
    for name, pdf in laws:
        ks = float(ds["fit_ks_statistic"].sel(distribution=name))
        aic = float(ds["fit_aic"].sel(distribution=name))
        ax[2].plot(grid, pdf(grid), label=f"{name} fit (KS {ks:.2f}, AIC {aic:.0f})")
    ax[2].set_xlabel(f"{mem} (ms)")
    ax[2].set_ylabel("density (1/ms)")
    ax[2].set_title(f"C  learned {mem} distribution")
    ax[2].legend(fontsize=7)

    b = ds["budget_accuracy"]
    if "target" not in b.dims:                     # results written before the memory-only target
        b = b.expand_dims(target=["xor"])
    titles = {"xor": "the task (XOR)", "channel1": "memory only (channel-1 bit)"}
    dm = b["d_max"].values
    width = 0.8 / b.sizes["memory"]
    for t, (axis, target) in enumerate(zip(ax[3:5], b["target"].values)):
        for i, m in enumerate(b["memory"].values):
            a = b.sel(target=target, memory=m)
            label = (f"learned {m}: hidden {int(ds['budget_hidden'].sel(memory=m))} per layer, "
                     f"{int(ds['budget_n_params'].sel(memory=m))} parameters")
            axis.bar(np.arange(dm.size) + (i - (b.sizes["memory"] - 1) / 2) * width, a.mean("seed").values * 100,
                     width, yerr=a.std("seed").values * 100, capsize=3, label=label)
        axis.axhline(50, color="k", ls=":", lw=1, label="chance")
        axis.set_ylim(0, 105)
        axis.set_xticks(np.arange(dm.size), [f"{d * 1e3:g}" for d in dm])
        axis.set_xlabel("maximum delay d_max (ms)")
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(f"{'DE'[t]}  {titles.get(str(target), str(target))}, ~{ds.attrs.get('budget', '?')} "
                       f"parameters ({b.sizes['seed']} seeds)", fontsize=10)
    handles, labels = ax[3].get_legend_handles_labels()
    ax[5].axis("off")
    ax[5].legend(handles, labels, loc="center", fontsize=8, title="D, E: mean +- std over seeds")
    if b.sizes["target"] < 2:
        ax[4].axis("off")
    fig.suptitle(f"Temporal hierarchy, Moro et al.'s MTS-XOR (accuracy over the 6 segment labels; "
                 f"scale: {ds.attrs.get('scale', '?')})",
                 fontsize=11)
    return fig


def main(argv=None) -> int:
    """Draw the figure from the NetCDF result into the output folder (PNG and PDF)."""
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
