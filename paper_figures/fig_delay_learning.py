"""Figure: learned delays before and after training, and how they move (reads analyses/results/delay_learning.nc).

One column per delay kind (axonal, dendritic, synaptic; Yin-Yang, 30 hidden,
weights + that kind trained, seed 0):

top: distribution of the delays before training (grey) and after (colour),
     per projection (input -> hidden solid, hidden -> output hatched), in ms;
bottom: median (line), 25-75 % (dark band) and 5-95 % (light band) of the
     delays after each epoch, per projection, in ms; the delay bound d_max dashed.

Writes paper_figures/output/delay_learning.png and .pdf. Never simulates.
Usage: python paper_figures/fig_delay_learning.py [--results DIR] [--out DIR]
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

RESULT = "delay_learning.nc"
NAME = "delay_learning"
KINDS = ("axonal", "dendritic", "synaptic")
KIND_COLOURS = {"axonal": "#1b9e77", "dendritic": "#7570b3", "synaptic": "#d95f02"}
PROJECTIONS = {"input_to_hidden": ("input -> hidden", "-", None), "hidden_to_output": ("hidden -> output", "--", "//")}
MS = 1e3


def draw_kind(ax_hist, ax_time, ds, kind: str) -> None:
    """The two panels of one delay kind."""
    colour = KIND_COLOURS[kind]
    d_max = float(ds.attrs.get(f"{kind}_d_max", np.nan)) * MS
    names = [f"{kind}_{suffix}" for suffix in PROJECTIONS if f"{kind}_{suffix}_initial" in ds]
    top = max(max(float(ds[f"{n}_quantile"].max()), float(ds[f"{n}_initial"].max()), float(ds[f"{n}_final"].max()))
              for n in names) * MS if names else 1.0
    top = max(top, 1e-3) * 1.08
    bins = np.linspace(0, top, 26)
    epochs = ds["epoch"].values
    for suffix, (label, ls, hatch) in PROJECTIONS.items():
        name = f"{kind}_{suffix}"
        if f"{name}_initial" not in ds:
            continue
        initial, final = ds[f"{name}_initial"].values * MS, ds[f"{name}_final"].values * MS
        ax_hist.hist(initial, bins=bins, histtype="step", color="0.5", ls=ls, lw=1.2,
                     label=f"{label}, before (n={len(initial)})")
        ax_hist.hist(final, bins=bins, histtype="stepfilled", color=colour, alpha=0.35, hatch=hatch,
                     edgecolor=colour, lw=1.2, ls=ls, label=f"{label}, after")
        q = ds[f"{name}_quantile"].values * MS            # (epoch, quantile 5 25 50 75 95)
        ax_time.fill_between(epochs, q[:, 0], q[:, 4], color=colour, alpha=0.12, lw=0, hatch=hatch)
        ax_time.fill_between(epochs, q[:, 1], q[:, 3], color=colour, alpha=0.3, lw=0, hatch=hatch)
        ax_time.plot(epochs, q[:, 2], color=colour, ls=ls, lw=1.4, label=f"{label}: median, 25-75 %, 5-95 %")
    accuracy = float(ds[f"{kind}_test_accuracy"]) * 100 if f"{kind}_test_accuracy" in ds else np.nan
    ax_hist.set_title(f"{kind} delays (test accuracy {accuracy:.1f} %)", fontsize=9, color=colour,
                      fontweight="bold", loc="left")
    ax_hist.set_xlabel("delay (ms)")
    ax_hist.set_ylabel("number of delays")
    ax_hist.legend(fontsize=6.5, loc="upper right")
    ax_hist.grid(alpha=0.3)
    if np.isfinite(d_max) and d_max <= 1.5 * top:
        ax_time.axhline(d_max, color="k", ls=":", lw=1, label=f"bound d_max = {d_max:g} ms")
        top = max(top, d_max * 1.05)
    elif np.isfinite(d_max):
        ax_time.plot([], [], " ", label=f"bound d_max = {d_max:g} ms (off scale)")
    ax_time.axhline(0, color="k", ls=":", lw=1)
    ax_time.set_ylim(-0.03 * top, 1.35 * top)
    ax_time.set_xlabel("epoch")
    ax_time.set_ylabel("delay (ms)")
    ax_time.legend(fontsize=6.5, loc="upper right", ncol=1)
    ax_time.grid(alpha=0.3)


def draw(ds) -> plt.Figure:
    """The figure from the analysis Dataset."""
    fig, axes = plt.subplots(2, len(KINDS), figsize=(13, 7), layout="constrained")
    for col, kind in enumerate(KINDS):
        draw_kind(axes[0, col], axes[1, col], ds, kind)
    axes[0, 0].text(-0.18, 1.08, "A", transform=axes[0, 0].transAxes, fontweight="bold", fontsize=12)
    axes[1, 0].text(-0.18, 1.04, "B", transform=axes[1, 0].transAxes, fontweight="bold", fontsize=12)
    scale = ds.attrs.get("scale", "?")
    fig.suptitle("Learned delays on Yin-Yang (30 hidden, seed 0): A before vs after training, "
                 f"B during training (scale: {scale})", fontsize=11)
    return fig


def main(argv=None) -> int:
    """Draw the figure from the NetCDF result into the output folder (PNG and PDF)."""
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
