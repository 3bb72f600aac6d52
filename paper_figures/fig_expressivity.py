"""Figure: what delays add to one neuron's expressivity (reads analyses/results/expressivity.nc).

A: largest shattered set of binary input patterns against the number of
   inputs n, for weights only (with and without a bias input), delays only
   (weights fixed) and weights + delays, with the threshold gate's n + 1 and
   the n log2 n scale of Maass & Schmitt (1999). Open markers: search not
   proven complete (a lower bound).
B: capacity curves on the tempotron task: fraction of seeds whose neuron
   classifies all P = alpha N patterns, against alpha, per learn mode, with
   Cover's perceptron curve (fraction of separable dichotomies) and alpha_c
   (crossing of 1/2) marked with its spread over seeds.

Writes paper_figures/output/expressivity.png and .pdf. Never simulates.
Usage: python paper_figures/fig_expressivity.py [--results DIR] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))  # for `_figure` when the script is loaded by path (make_all, tests)
from _figure import figure_main  # noqa: E402

RESULT = "expressivity.nc"
NAME = "expressivity"
COLOURS = {"weights": "#1b9e77", "weights_nobias": "#66a61e", "delays": "#d95f02", "both": "#7570b3"}
LABELS = {"weights": "weights (bias input)", "weights_nobias": "weights (no bias)",
          "delays": "delays only (weights fixed)", "both": "weights + delays"}
CAPACITY_LABELS = {"weights": "weights learned", "delays": "delays learned (weights fixed)",
                   "both": "weights + delays learned"}
MARKERS = {"weights": "o", "weights_nobias": "v", "delays": "s", "both": "D"}


def draw_shattering(ax, ds) -> None:
    """Panel A: largest shattered set vs n, reference curves n + 1 and n log2 n."""
    n = ds["n_inputs"].values
    for mode in ds["shatter_mode"].values:
        mode = str(mode)
        y = ds["shatter_largest"].sel(shatter_mode=mode).values.astype(float)
        done = ds["shatter_complete"].sel(shatter_mode=mode).values.astype(bool)
        ok = y >= 0
        if not ok.any():
            continue
        offset = {"weights": -0.09, "weights_nobias": -0.03, "delays": 0.03, "both": 0.09}.get(mode, 0.0)
        colour = COLOURS.get(mode, "k")
        ax.plot(n[ok] + offset, y[ok], color=colour, lw=1.3, label=LABELS.get(mode, mode))
        ax.scatter(n[ok & done] + offset, y[ok & done], color=colour, marker=MARKERS.get(mode, "o"), s=30, zorder=3)
        ax.scatter(n[ok & ~done] + offset, y[ok & ~done], facecolor="white", edgecolor=colour,
                   marker=MARKERS.get(mode, "o"), s=30, zorder=3)
    fine = np.linspace(1, n.max(), 100)
    ax.plot(fine, fine + 1, color="0.3", ls="--", lw=1, label="n + 1 (threshold gate)")
    ax.plot(fine, fine * np.log2(np.maximum(fine, 1)), color="0.55", ls=":", lw=1.2, label="n log$_2$ n")
    ax.scatter([], [], facecolor="white", edgecolor="0.3", label="lower bound (search not complete)")
    ax.set_xlabel("number of inputs n")
    ax.set_ylabel("largest shattered set (patterns)")
    ax.set_xticks(n)
    ax.set_ylim(0, max(float(ds["shatter_largest"].max()), float(n.max() + 1)) + 1.5)
    ax.set_title("A  shattering of binary patterns", loc="left", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", frameon=False)


def draw_capacity(ax, ds) -> None:
    """Panel B: fraction of runs solving all patterns vs alpha, Cover's curve, alpha_c with spread."""
    load = ds["load"].values
    n_seeds = ds.sizes["seed"]
    for mode in ds["learn"].values:
        mode = str(mode)
        colour = COLOURS.get(mode, "k")
        p = ds["p_solved"].sel(learn=mode).values
        # binomial standard error over seeds
        err = np.sqrt(p * (1 - p) / n_seeds)
        shift = 0.012 * (load.max() or 1) * (list(ds["learn"].values).index(mode) - 1)   # keep curves apart
        ax.errorbar(load + shift, p, yerr=err, color=colour, marker=MARKERS.get(mode, "o"), ms=4, lw=1.4, capsize=2,
                    label=CAPACITY_LABELS.get(mode, mode))
        ac = float(ds["alpha_c"].sel(learn=mode))
        spread = float(ds["alpha_c_std"].sel(learn=mode))
        mean = float(ds["alpha_c_mean"].sel(learn=mode))
        if np.isfinite(ac):
            ax.axvline(ac, color=colour, lw=0.8, ls="--")
            if np.isfinite(spread) and np.isfinite(mean):
                ax.errorbar([mean], [0.5], xerr=[spread], color=colour, capsize=3, lw=1.5, fmt="|")
            ax.annotate(f"α$_c$={ac:.2g}", (ac, 0.92 - 0.08 * list(ds["learn"].values).index(mode)),
                        xytext=(3, 0), textcoords="offset points", fontsize=7, color=colour)
    ax.plot(ds["cover_alpha"].values, ds["cover_fraction"].values, color="0.3", ls="--", lw=1,
            label="perceptron (Cover), fraction separable")
    ax.axhline(0.5, color="0.7", lw=0.6)
    ax.set_xlim(0, max(load.max(), 2.2) * 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("load α = P / N")
    ax.set_ylabel("fraction of seeds solving all patterns")
    n = int(ds.attrs.get("n_afferents", -1))
    t = float(ds.attrs.get("duration", np.nan)) * 1e3
    how = {"tempotron": "tempotron rule, then LP on the weights",
           "adam": "Adam on the hinge"}.get(ds.attrs.get("method", "adam"), "")
    ax.set_title(f"B  capacity ({how}), N = {n}, T = {t:g} ms, {n_seeds} seeds, "
                 f"≤ {int(ds.attrs.get('epochs', 0))} epochs", loc="left", fontsize=10)
    ax.legend(fontsize=7, loc="lower left", frameon=False)


def draw(ds) -> plt.Figure:
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    draw_shattering(ax_a, ds)
    draw_capacity(ax_b, ds)
    return fig


def main(argv=None) -> int:
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
