"""Temporal hierarchy on Moro et al.'s MTS-XOR: accuracy vs delta_tau, learned taus vs baseline, fits, budget.

Reads ``temporal_hierarchy.nc`` (analyses/temporal_hierarchy.py; the task's number of segments and the
training options are in its attrs). Panels: A test accuracy against delta_tau (s; > 0: slow near the
output) for 3 and 4 layers, mean +- std over seeds and every seed, chance 0.5; B accuracy of the fixed
homogeneous network (weights only) and of the same networks with trained tau_s / tau_m + tau_s at each
Adam step of the log time constants (lr_tau), one line per seed; C, D learned tau_m and tau_s per hidden layer from a homogeneous start (median and quartiles
per seed; slope per layer in the legend); E histogram of the pooled learned tau_m with the gamma and
log-normal fits; F, G accuracy of learned delays (initialised uniformly over [0, d_max]) / time constants /
both at one parameter budget against the maximum delay, on the XOR (F) and on its memory part alone,
channel 1's bit (G).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))  # for `_figure` when the script is loaded by path (make_all, tests)
from _figure import figure_main  # noqa: E402

RESULT = "temporal_hierarchy.nc"
NAME = "hierarchy"
LEARN_LABELS = {"weight,tau_s": "trained tau_s", "weight,tau_m,tau_s": "trained tau_m + tau_s",
                "weight,tau_m": "trained tau_m"}


def _seed_jitter(n: int, width: float) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2) * (width / max(n - 1, 1))


def _panel_sweep(ax, ds):
    acc = ds["sweep_accuracy"]
    dt = acc["delta_tau"].values
    step = np.min(np.diff(dt)) if dt.size > 1 else 0.1
    for j, n in enumerate(acc["n_layers"].values):
        a = acc.sel(n_layers=n) * 100
        off = (j - (acc.sizes["n_layers"] - 1) / 2) * 0.08 * step
        line = ax.errorbar(dt + off, a.mean("seed").values, a.std("seed").values, marker="o", capsize=4, lw=1.5,
                           label=f"{int(n)} layers ({int(n) - 1} hidden), mean +- std")
        jit = _seed_jitter(a.sizes["seed"], 0.1 * step)
        for i, d in enumerate(dt):
            ax.scatter(d + off + jit, a.isel(delta_tau=i).values, s=12, color=line[0].get_color(), alpha=0.45,
                       zorder=3)
    ax.scatter([], [], s=12, color="0.4", alpha=0.6, label="single seeds")
    ax.axhline(50, color="k", ls=":", lw=1, label="chance (50 %)")
    ax.axvline(0, color="0.7", lw=0.8)
    ax.set_ylim(40, 105)
    ax.set_xticks(dt)
    ax.set_xlabel("delta_tau (s)  (< 0: slow near input, > 0: slow near output)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"A  accuracy vs tau_m profile, weights trained ({acc.sizes['seed']} seeds)", fontsize=11)
    ax.legend(fontsize=7, loc="lower right")


def _panel_learned_accuracy(ax, ds):
    base = ds["baseline_accuracy"].values * 100
    cols, names = [base], ["weights\nonly\n(fixed)"]
    for k in ds["learn"].values:
        for lr in ds["lr_tau"].values:
            cols.append(ds["learned_accuracy"].sel(learn=k, lr_tau=lr).values * 100)
            names.append(LEARN_LABELS.get(str(k), str(k)).replace("trained ", "").replace(" + ", "+")
                         + f"\nlr_tau\n{lr:g}")
    x = np.arange(len(cols))
    values = np.stack(cols)                                   # (column, seed)
    for s in range(values.shape[1]):
        ax.plot(x, values[:, s], color=f"C{s}", lw=0.7, marker=".", ms=5, zorder=2, alpha=0.7)
    ax.plot([], [], color="0.5", lw=0.8, marker=".", label="one seed (colour; same initial network)")
    ax.errorbar(x, values.mean(axis=1), values.std(axis=1), fmt="o", color="k", capsize=5, ms=6, zorder=4,
                label="mean +- std over seeds")
    for i in range(1, len(cols)):
        wins = int(np.sum(values[i] > values[0]))
        ax.annotate(f"> fixed:\n{wins} of {values.shape[1]}", (x[i], 31), ha="center", fontsize=7)
    ax.axhline(50, color="k", ls=":", lw=1, label="chance (50 %)")
    ax.set_xticks(x, names, fontsize=7)
    ax.set_xlim(-0.5, len(cols) - 0.5)
    ax.set_ylim(28, 104)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("B  trained time constants vs fixed (3 layers, delta_tau 0)", fontsize=11)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 0.12))


def _panel_learned_tau(ax, ds, const: str, letter: str, initial_ms: float | None, lr_tau: float):
    ds = ds.sel(lr_tau=lr_tau)
    layers = ds["layer"].values
    markers = {"weight,tau_s": "s", "weight,tau_m,tau_s": "o", "weight,tau_m": "^"}
    runs = [k for k in ds["learn"].values if const in str(k).split(",")]
    n_seed = ds.sizes["learned_seed"]
    for r, run in enumerate(runs):
        sel = dict(learn=run, constant=const)
        med, q25, q75 = (ds[f"learned_{k}"].sel(**sel).values * 1e3 for k in ("median", "q25", "q75"))
        slopes = ds["learned_slope"].sel(**sel).values * 1e3
        for s in range(n_seed):
            off = 0.04 * (s - (n_seed - 1) / 2) + 0.25 * (r - (len(runs) - 1) / 2)
            ax.errorbar(layers + off, med[s], [med[s] - q25[s], q75[s] - med[s]], marker=markers.get(str(run), "o"),
                        color=f"C{s}", capsize=2, ms=4, lw=1, ls="-" if r == 0 else "--")
        ax.plot([], [], color="0.3", marker=markers.get(str(run), "o"), ls="-" if r == 0 else "--",
                label=f"{LEARN_LABELS.get(str(run), run)}: slopes " + " / ".join(f"{v:+.0f}" for v in slopes)
                + " ms/layer")
    if initial_ms is not None:
        ax.axhline(initial_ms, color="k", ls=":", lw=1, label=f"initial median ({initial_ms:g} ms)")
    ax.set_xticks(layers)
    ax.set_xlabel("hidden layer (1 = input side); colour = seed")
    ax.set_ylabel(f"learned {const} (ms), median and quartiles")
    ax.set_title(f"{letter}  learned {const} per layer from a homogeneous start (lr_tau {lr_tau:g})", fontsize=11)
    ax.legend(fontsize=7)


def draw(ds) -> plt.Figure:
    fig, axes = plt.subplots(2, 4, figsize=(22, 9.5), layout="constrained")
    ax = axes.ravel()
    _panel_sweep(ax[0], ds)
    _panel_learned_accuracy(ax[1], ds)
    task = json.loads(ds.attrs.get("task", "{}"))
    tau_center = float(ds.attrs.get("tau_center", task.get("tau_center", 0.3)))
    shown = float(ds.attrs.get("fit_lr_tau", ds["lr_tau"].values[0]))
    _panel_learned_tau(ax[2], ds, "tau_m", "C", tau_center * 1e3, shown)
    _panel_learned_tau(ax[3], ds, "tau_s", "D", 5.0, shown)
    ts = (ds["learned_q75"].sel(constant="tau_s", lr_tau=shown).values
          / ds["learned_q25"].sel(constant="tau_s", lr_tau=shown).values)
    if np.nanmax(ts) > 5:                       # tau_s spread over decades: log axis with plain ms labels
        ax[3].set_yscale("log")
        ax[3].yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))

    mem = ds.attrs.get("memory_constant", "tau_m")    # the time constant that carries the profile
    x = ds[f"learned_{mem}"].sel(learn="weight,tau_m,tau_s", lr_tau=shown).values.ravel() * 1e3
    ax[4].hist(x, bins=30, density=True, color="0.75", label=f"learned {mem} (n = {x.size})")
    grid = np.linspace(max(x.min() * 0.8, 1e-3), x.max() * 1.2, 300)
    k, th = (float(ds["fit_shape"].sel(distribution="gamma")), float(ds["fit_scale"].sel(distribution="gamma")))
    sg, sc = (float(ds["fit_shape"].sel(distribution="lognormal")),
              float(ds["fit_scale"].sel(distribution="lognormal")))
    laws = (("gamma", stats.gamma(k, scale=th * 1e3).pdf), ("lognormal", stats.lognorm(sg, scale=sc * 1e3).pdf))
    for name, pdf in laws:
        ks = float(ds["fit_ks_statistic"].sel(distribution=name))
        aic = float(ds["fit_aic"].sel(distribution=name))
        ax[4].plot(grid, pdf(grid), label=f"{name} fit (KS {ks:.2f}, AIC {aic:.0f})")
    ax[4].set_xlabel(f"{mem} (ms)")
    ax[4].set_ylabel("density (1/ms)")
    ax[4].set_title(f"E  learned {mem} (trained tau_m + tau_s, lr_tau {shown:g}), all layers and seeds",
                    fontsize=11)
    ax[4].legend(fontsize=7)

    b = ds["budget_accuracy"]
    titles = {"xor": "the task (XOR)", "channel1": "memory only (channel-1 bit)"}
    dm = b["d_max"].values
    width = 0.8 / b.sizes["memory"]
    seed_dim = "budget_seed" if "budget_seed" in b.dims else "seed"
    for t, (axis, target) in enumerate(zip(ax[5:7], b["target"].values)):
        for i, m in enumerate(b["memory"].values):
            a = b.sel(target=target, memory=m) * 100
            pos = np.arange(dm.size) + (i - (b.sizes["memory"] - 1) / 2) * width
            label = (f"learned {m}: hidden {int(ds['budget_hidden'].sel(memory=m))} per layer, "
                     f"{int(ds['budget_n_params'].sel(memory=m))} parameters")
            axis.bar(pos, a.mean(seed_dim).values, width, yerr=a.std(seed_dim).values, capsize=3, label=label,
                     color=f"C{i}", alpha=0.8)
            for j in range(dm.size):
                axis.scatter(pos[j] + _seed_jitter(a.sizes[seed_dim], 0.4 * width), a.isel(d_max=j).values, s=9,
                             color="k", zorder=3)
        axis.axhline(50, color="k", ls=":", lw=1, label="chance (50 %)")
        axis.set_ylim(0, 105)
        axis.set_xticks(np.arange(dm.size), [f"{d * 1e3:g}" for d in dm])
        axis.set_xlabel("maximum delay d_max (ms)")
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(f"{'FG'[t]}  {titles.get(str(target), str(target))}, ~{ds.attrs.get('budget', '?')} "
                       f"parameters ({b.sizes[seed_dim]} seeds)", fontsize=10)
    handles, labels = ax[5].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="k", marker="o", ls="", ms=3))
    labels.append("single seeds")
    ax[7].axis("off")
    ax[7].legend(handles, labels, loc="center", fontsize=8,
                 title="F, G: mean +- std over seeds\n(time constants have no delays: the same\nruns at every d_max)")
    if b.sizes["target"] < 2:
        ax[6].axis("off")
    n_seg = int(ds.attrs.get("n_segments", 6))
    opts = ", ".join(f"{k} {v}" for k, v in task.items() if k not in ("n_segments", "tau_center"))
    fig.suptitle(f"Temporal hierarchy, Moro et al.'s MTS-XOR with {n_seg} segment{'s' * (n_seg != 1)} "
                 f"(tau_center {tau_center * 1e3:g} ms; {opts or 'default initialisation'}; "
                 f"scale: {ds.attrs.get('scale', '?')})", fontsize=12)
    return fig


def main(argv=None) -> int:
    """Draw the figure from the NetCDF result into the output folder (PNG and PDF)."""
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
