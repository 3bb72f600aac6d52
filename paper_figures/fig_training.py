"""Figure: training with learned delays (reads analyses/results/train_results.nc).

A: Yin-Yang learning curves (validation accuracy, mean ± std over seeds) of the
   30-hidden network for weights only and with learned axonal, dendritic or
   synaptic delays, trained with a cosine learning-rate decay (dashed: Göltz et
   al.'s StepLR schedule instead); full accuracy range with the chance level,
   and an inset on the last 100 epochs.
B: Yin-Yang test accuracy vs number of trained parameters per delay kind
   (hidden sizes as points; mean ± std over seeds), with DelGrad's published
   single runs (simulation, 30 hidden; 5 hidden + synaptic) for comparison.
C: test accuracy on the other tasks (sequence detection, multi-time-scale
   XOR, permuted sequential digits): every seed as a dot, mean ± std as a bar
   with a cap, the task's chance level as a dotted line (a bimodal result shows
   as separated dots, not hidden in a bar).
D: decision regions of the trained 30-hidden Yin-Yang networks (seed 0) on a
   grid over the unit square; misclassified test points as black crosses.

Writes paper_figures/output/training.png and .pdf. Never simulates.
Usage: python paper_figures/fig_training.py [--results DIR] [--out DIR]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))  # for `_figure` when the script is loaded by path (make_all, tests)
from _figure import figure_main  # noqa: E402

RESULT = "train_results.nc"
NAME = "training"
KIND_COLOURS = {"weight": "0.35", "weight+axonal": "#1b9e77", "weight+dendritic": "#7570b3",
                "weight+synaptic": "#d95f02"}
KIND_LABELS = {"weight": "weights only", "weight+axonal": "+ axonal delays", "weight+dendritic": "+ dendritic delays",
               "weight+synaptic": "+ synaptic delays"}
CLASS_COLOURS = ("#9ecae1", "#fdd0a2", "#c7e9c0")   # yin, yang, dot
CLASS_NAMES = ("yin", "yang", "dot")
#: chance level (%) of each task: one over the number of classes
CHANCE = {"yinyang": 100 / 3, "sequence": 50.0, "mts_xor": 50.0, "digits": 10.0}
TAU_COLOUR = "#e7298a"
DASHED = {"weight": ("steplr",), "weight+synaptic": ("steplr",)}   # sensitivity runs drawn in panel A
TAGS = {"steplr": "StepLR(0.95, 20)", "lrd1e-4": "delay lr 1e-4 s"}
# DelGrad (Göltz et al.), simulation results, single runs at the final epoch: (variant, hidden, accuracy %)
DELGRAD = (("weight", 30, 96.7), ("weight+axonal", 30, 97.6), ("weight+synaptic", 30, 98.8),
           ("weight+synaptic", 5, 94.7))


def _n_params(variant: str, hidden: int, n_in: int = 5, n_out: int = 3) -> int:
    """Trained parameters of the Yin-Yang network of a variant (as the analysis counts them)."""
    weights = n_in * hidden + hidden * n_out
    extra = {"weight": 0, "weight+axonal": n_in + hidden, "weight+dendritic": hidden + n_out,
             "weight+synaptic": weights}[variant]
    return weights + extra


def _runs(ds, **match) -> np.ndarray:
    sel = np.ones(ds.sizes["run"], bool)
    for key, value in match.items():
        sel &= ds[key].values == value
    return np.flatnonzero(sel)


def draw_curves(ax, ds) -> None:
    """Panel A: validation accuracy (%) vs epoch, 30 hidden, mean ± std over seeds."""
    epochs = ds["epoch"].values
    lowest = 100.0
    extras = [f"{base} ({tag})" for base in DASHED for tag in DASHED[base]]
    for variant in list(KIND_COLOURS) + extras:
        idx = _runs(ds, task="yinyang", variant=variant, hidden=30)
        base = variant.split(" (")[0]
        if not len(idx) or base not in KIND_COLOURS:
            continue
        acc = ds["history_validation_accuracy"].values[idx] * 100
        with warnings.catch_warnings():   # epochs that no seed reached are NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(acc, axis=0), np.nanstd(acc, axis=0)
        lowest = min(lowest, np.nanmin(mean) if np.isfinite(mean).any() else lowest)
        ok = np.isfinite(mean)
        extra = variant[len(base):].strip()
        if extra:
            extra = f"({TAGS.get(extra.strip('()'), extra.strip('()'))})"
        ax.plot(epochs[ok], mean[ok], color=KIND_COLOURS[base], lw=1.0 if extra else 1.4, ls="--" if extra else "-",
                label=f"{KIND_LABELS[base]} {extra} (n={len(idx)})".replace("  ", " "))
        if not extra:
            ax.fill_between(epochs[ok], (mean - std)[ok], (mean + std)[ok], color=KIND_COLOURS[base], alpha=0.2,
                            lw=0)
    ax.axhline(CHANCE["yinyang"], color="k", ls=":", lw=1, label="chance (3 classes)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_ylim(min(30.0, np.floor(lowest / 5) * 5), 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=6.5)
    ax.set_title("A  Yin-Yang, 30 hidden: learning curves", loc="left", fontweight="bold", fontsize=9)
    inset = ax.inset_axes([0.42, 0.5, 0.55, 0.26])
    for line in ax.get_lines():
        x, y = line.get_data()
        if len(x) > 2:
            keep = np.asarray(x) > epochs[-1] - 100
            inset.plot(np.asarray(x)[keep], np.asarray(y)[keep], color=line.get_color(), ls=line.get_linestyle(),
                       lw=0.9)
    inset.set_ylim(94, 100)
    inset.tick_params(labelsize=6)
    inset.set_title(f"last 100 epochs (%)", fontsize=6, pad=2)
    inset.grid(alpha=0.3)


def draw_params(ax, ds) -> None:
    """Panel B: test accuracy (%) vs trained parameters, per delay kind; DelGrad's published runs."""
    for variant, colour in KIND_COLOURS.items():
        idx = _runs(ds, task="yinyang", variant=variant)
        if not len(idx):
            continue
        hidden = ds["hidden"].values[idx]
        xs, means, stds = [], [], []
        for h in np.unique(hidden):
            sub = idx[hidden == h]
            acc = ds["test_accuracy"].values[sub] * 100
            xs.append(int(ds["n_params"].values[sub][0]))
            means.append(acc.mean())
            stds.append(acc.std())
        order = np.argsort(xs)
        ax.errorbar(np.array(xs)[order], np.array(means)[order], yerr=np.array(stds)[order], color=colour,
                    marker="o", ms=4, lw=1.2, capsize=2, label=KIND_LABELS[variant])
    for k, (variant, hidden, acc) in enumerate(DELGRAD):
        ax.plot(_n_params(variant, hidden), acc, marker="*", ms=10, mfc="none", mec=KIND_COLOURS[variant], mew=1.2,
                ls="none", label="DelGrad, published (single run)" if k == 0 else None)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks([50, 100, 200, 500])
    ax.set_xlabel("trained parameters (weights + delays)")
    ax.set_ylabel("test accuracy (%)")
    ax.text(0.02, 0.02, "chance: 33.3 % (3 classes)", transform=ax.transAxes, fontsize=7, color="0.3")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title("B  Yin-Yang: accuracy vs parameters", loc="left", fontweight="bold", fontsize=9)


def draw_other_tasks(ax, ds) -> None:
    """Panel C: test accuracy (%) of every run of the other tasks, grouped by task and variant."""
    labels, x = [], 0
    for task in ("sequence", "mts_xor", "digits"):
        idx = _runs(ds, task=task)
        variants = list(dict.fromkeys(ds["variant"].values[idx]))
        for variant in variants:
            sub = idx[ds["variant"].values[idx] == variant]
            acc = ds["test_accuracy"].values[sub] * 100
            colour = KIND_COLOURS.get(variant.split(" ")[0], TAU_COLOUR if "tau" in variant else "#d95f02")
            mean, std = acc.mean(), acc.std()   # the bar is clipped to the possible range [0, 100] %
            ax.errorbar(x + 0.18, mean, yerr=[[min(std, mean)], [min(std, 100 - mean)]], fmt="_", color=colour, ms=10, mew=1.5, capsize=3,
                        lw=1.2)
            ax.plot(np.full(len(acc), x - 0.12), acc, "o", color=colour, ms=3.5, mfc="none")
            hidden = int(ds["hidden"].values[sub][0])
            nice = (variant.replace("weight+", "+").replace("weight", "weights").replace("+tau_m+tau_s", "+ taus")
                    .replace(" (matched params)", ""))
            extra = f", h={hidden}" if task in ("mts_xor", "digits") else ""
            labels.append((x, f"{task}\n{nice}{extra}"))
            x += 1
        first = labels[-len(variants)][0] if variants else x
        ax.hlines(CHANCE[task], first - 0.45, x - 0.55, color="k", ls=":", lw=1)
        x += 0.6
    ax.set_xticks([p for p, _ in labels], [t for _, t in labels], fontsize=6, rotation=60, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 104)
    ax.grid(alpha=0.3, axis="y")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=KIND_COLOURS["weight"], marker="s", ls="none", label="weights only"),
               Line2D([], [], color=KIND_COLOURS["weight+synaptic"], marker="s", ls="none", label="+ synaptic delays"),
               Line2D([], [], color=TAU_COLOUR, marker="s", ls="none", label="+ time constants"),
               Line2D([], [], color="0.3", marker="o", mfc="none", ls="none", label="one seed"),
               Line2D([], [], color="0.3", marker="_", ms=10, ls="none", label="mean ± std"),
               Line2D([], [], color="k", ls=":", label="chance")]
    ax.legend(handles=handles, fontsize=6, loc="lower left", ncol=2, framealpha=0.9)
    ax.set_title("C  other tasks (seeds, mean ± std)", loc="left", fontweight="bold", fontsize=9)


def draw_regions(axes, ds) -> None:
    """Panel D: predicted class on the grid for each delay kind (30 hidden, first seed); test errors in black."""
    if "decision" not in ds:
        for ax in axes:
            ax.set_axis_off()
        return
    cmap = ListedColormap(["white"] + list(CLASS_COLOURS))    # -1: no output spike
    x, y = ds["grid_x"].values, ds["grid_y"].values
    xx, yy = np.meshgrid(x, y)
    outside = (xx - 0.5) ** 2 + (yy - 0.5) ** 2 > 0.25
    yy_runs = list(ds["yy_run"].values) if "yy_run" in ds else []
    decision_runs = list(ds["decision_run"].values)
    for ax, variant in zip(axes, KIND_COLOURS):
        candidates = [r for r in decision_runs if ds["variant"].values[r] == variant]
        if not candidates:
            ax.set_axis_off()
            continue
        run = min(candidates, key=lambda r: ds["seed"].values[r])
        grid = ds["decision"].values[decision_runs.index(run)].astype(float)
        grid[outside] = np.nan
        ax.pcolormesh(x, y, grid, cmap=cmap, vmin=-1.5, vmax=2.5, shading="nearest", rasterized=True)
        title = f"{KIND_LABELS[variant]}"
        if run in yy_runs:
            k = yy_runs.index(run)
            points = ds["yy_test_points"].values
            wrong = ds["yy_test_prediction"].values[k] != ds["yy_test_label"].values
            ax.scatter(points[~wrong, 0], points[~wrong, 1], s=1.5, c="0.55", lw=0)
            ax.scatter(points[wrong, 0], points[wrong, 1], s=6, c="k", marker="x", lw=0.8)
            title += f"\ntest {100 * (1 - wrong.mean()):.1f} %, {wrong.sum()} errors"
        ax.set_title(title, fontsize=8)
        ax.set_aspect("equal")
        ax.set_xticks([0, 1])
        ax.set_yticks([0, 1])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles = [Patch(color=c, label=f"predicted {n}") for c, n in zip(CLASS_COLOURS, CLASS_NAMES)]
    handles += [Patch(facecolor="white", edgecolor="0.6", label="no output spike"),
                Line2D([], [], color="0.55", marker=".", ls="none", label="test point, correct"),
                Line2D([], [], color="k", marker="x", ls="none", label="test point, misclassified")]
    axes[-1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    axes[0].set_ylabel("y")
    for ax in axes:
        ax.set_xlabel("x", labelpad=-6)
    axes[0].text(-0.35, 1.25, "D  decision regions (30 hidden, seed 0)", transform=axes[0].transAxes,
                 fontweight="bold", fontsize=9)


def draw(ds) -> plt.Figure:
    """The figure from the analysis Dataset."""
    fig = plt.figure(figsize=(12, 7.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1])
    a, b, c = top.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1.1, 1]})
    draw_curves(a, ds)
    draw_params(b, ds)
    draw_other_tasks(c, ds)
    draw_regions(bottom.subplots(1, 4), ds)
    scale = ds.attrs.get("scale", "?")
    fig.suptitle(f"Training weights and delays with exact gradients (scale: {scale})", fontsize=11)
    return fig


def main(argv=None) -> int:
    """Draw the figure from the NetCDF result into the output folder (PNG and PDF)."""
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
