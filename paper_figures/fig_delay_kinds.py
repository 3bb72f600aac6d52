"""Figure: the three delay kinds in a small network (reads analyses/results/delay_kinds_demo.nc).

A: raster of inputs, hidden and output neurons; every arrival (spike time +
   transmission delay) is drawn at its exact time on the postsynaptic row, with
   the path from the spike split into its axonal, synaptic and dendritic parts.
B: first spike time of the shown output neuron as one axonal, one dendritic and
   one synaptic delay is varied (the others fixed).

Writes paper_figures/output/delay_kinds.png and .pdf. Never simulates.
Usage: python paper_figures/fig_delay_kinds.py [--results DIR] [--out DIR]
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

RESULT = "delay_kinds_demo.nc"
NAME = "delay_kinds"
KIND_COLOURS = {"axonal": "#1b9e77", "synaptic": "#d95f02", "dendritic": "#7570b3"}
PATH_ORDER = ("axonal", "synaptic", "dendritic")  # along the way from the presynaptic soma
POP_COLOURS = ("0.35", "#2c7fb8", "#c51b8a")
ROW_GAP = 1.5  # extra space between populations


def _rows(ds) -> tuple[dict, list]:
    """y position of each population's neuron 0 and the tick labels."""
    base, y, ticks = {}, 0.0, []
    for code, (name, size) in enumerate(zip(ds["population"].values, ds["population_size"].values)):
        base[code] = y
        ticks += [(y + k, f"{name} {k}") for k in range(int(size))]
        y += int(size) + ROW_GAP
    return base, ticks


def draw_raster(ax, ds, trial: int = 0) -> None:
    """Panel A: spikes as bars, arrivals as dots, delay paths split by kind (times in ms)."""
    base, ticks = _rows(ds)
    ms = 1e3
    sel = ds["arrival_trial"].values == trial
    pre_y = np.array([base[p] for p in ds["arrival_pre_population"].values[sel]]) \
        + ds["arrival_pre_neuron"].values[sel]
    post_y = np.array([base[p] for p in ds["arrival_post_population"].values[sel]]) \
        + ds["arrival_post_neuron"].values[sel]
    t0 = ds["arrival_spike_time"].values[sel]
    total = ds["arrival_time"].values[sel] - t0
    done = np.zeros_like(t0)
    for kind in PATH_ORDER:
        part = ds[f"arrival_{kind}"].values[sel]
        f0 = np.divide(done, total, out=np.zeros_like(done), where=total > 0)
        f1 = np.divide(done + part, total, out=np.ones_like(done), where=total > 0)
        xs = np.stack([t0 + done, t0 + done + part]) * ms
        ys = np.stack([pre_y + f0 * (post_y - pre_y), pre_y + f1 * (post_y - pre_y)])
        ax.plot(xs, ys, color=KIND_COLOURS[kind], lw=1.0, alpha=0.7, solid_capstyle="butt")
        done = done + part
    ax.scatter(ds["arrival_time"].values[sel] * ms, post_y, s=9, color="k", zorder=3, lw=0,
               label="arrival (exact time)")
    for dim, prefix in (("input_spike", "input_"), ("spike", "spike_")):
        mine = ds[f"{prefix}trial"].values == trial
        codes = ds[f"{prefix}population"].values[mine]
        y = np.array([base[p] for p in codes]) + ds[f"{prefix}neuron"].values[mine]
        colours = [POP_COLOURS[p % len(POP_COLOURS)] for p in codes]
        ax.scatter(ds[f"{prefix}time"].values[mine] * ms, y, marker="|", s=160, linewidths=2.2,
                   c=colours, zorder=4)
    for code, name in enumerate(ds["population"].values):
        ax.scatter([], [], marker="|", s=80, linewidths=2, color=POP_COLOURS[code % len(POP_COLOURS)],
                   label=f"spike of {name}")
    for kind in PATH_ORDER:
        ax.plot([], [], color=KIND_COLOURS[kind], lw=2, label=f"{kind} part of the delay")
    ax.set_yticks([t[0] for t in ticks], [t[1] for t in ticks], fontsize=7)
    ax.set_xlabel("time (ms)")
    last = max(np.max(ds["arrival_time"].values[sel], initial=0.0),
               np.max(ds["spike_time"].values, initial=0.0))
    ax.set_xlim(0, last * ms + 3)
    ax.set_ylim(-0.8, max(t[0] for t in ticks) + 0.8)
    ax.legend(loc="lower right", fontsize=7, frameon=True, framealpha=0.9)
    ax.set_title("A  spikes and arrivals", loc="left", fontweight="bold")


def _annotate_sweep(ax, kind: str, x: np.ndarray, y: np.ndarray) -> None:
    """Label what the data show: the slope of the dendritic line, a flat tail (later arrivals)."""
    ok = np.isfinite(y)
    if ok.sum() < 3:
        return
    colour = KIND_COLOURS.get(kind)
    if kind == "dendritic":
        slope = np.polyfit(x[ok], y[ok], 1)[0]
        i = np.flatnonzero(ok)[int(0.7 * ok.sum())]
        ax.annotate(f"slope {slope:.3f}", (x[i], y[i]), xytext=(8, -12), textcoords="offset points",
                    color=colour, fontsize=8)
        return
    tail = np.flatnonzero(ok)[-3:]
    if np.ptp(y[tail]) == 0.0:
        ax.annotate("late arrival: no effect", (x[tail[-1]], y[tail[-1]]), xytext=(0, 6),
                    textcoords="offset points", ha="right", color=colour, fontsize=8)


def draw_sweeps(ax, ds) -> None:
    """Panel B: first spike time (ms) of the shown output neuron vs each swept delay (ms)."""
    ms = 1e3
    x = ds["swept_delay"].values * ms
    for k, kind in enumerate(ds["kind"].values):
        kind = str(kind)
        y = ds["first_spike_time"].values[k] * ms
        label = str(ds["swept_label"].values[k]) if "swept_label" in ds else kind
        ax.plot(x, y, color=KIND_COLOURS.get(kind), lw=1.8, label=label)
        b = float(ds["baseline_delay"].values[k]) * ms
        ax.plot([b], [np.interp(b, x, y)], "o", mfc="white", mec=KIND_COLOURS.get(kind), mew=1.5, zorder=3)
        _annotate_sweep(ax, kind, x, y)
    ax.plot([], [], "o", mfc="white", mec="0.3", label="value in panel A")
    shown = f"{ds.attrs.get('shown_population', 'output')} {ds.attrs.get('shown_neuron', 0)}"
    ax.set_xlabel("swept delay (ms)")
    ax.set_ylabel(f"first spike time of {shown} (ms)")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    ax.grid(alpha=0.3)
    ax.set_title("B  output spike time vs one delay", loc="left", fontweight="bold")


def draw(ds) -> plt.Figure:
    """The two-panel figure from the demo's Dataset."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1.35, 1]},
                               layout="constrained")
    draw_raster(a, ds)
    draw_sweeps(b, ds)
    fig.suptitle("Axonal, dendritic and synaptic delays in a 6-4-2 LIF network (exact event timing)")
    return fig


def main(argv=None) -> int:
    """Draw the figure from the NetCDF result into the output folder (PNG and PDF)."""
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
