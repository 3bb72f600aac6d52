"""Figure: exact vs grid timing in Brian2 (reads analyses/results/timing_vs_dt.nc).

A: spike-time error of Brian2 against the exact event engine as a function of
   the step dt (log-log), grid and precise mode, hidden and output layer
   (median, band up to the 90th percentile); the grey line is error = dt.
B: Jeffress delay-line model: estimated vs true interaural time difference,
   exact event engine, Brian2 precise and Brian2 grid mode at one dt.

Writes paper_figures/output/timing.png and .pdf. Never simulates.
Usage: python paper_figures/fig_timing.py [--results DIR] [--out DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))  # for `_figure` when the script is loaded by path (make_all, tests)
from _figure import figure_main  # noqa: E402

RESULT = "timing_vs_dt.nc"
NAME = "timing"
MODE_COLOURS = {"grid": "#d95f02", "precise": "#1b9e77", "exact": "0.15"}
LAYER_STYLE = {"hidden": dict(ls="-", marker="o"), "output": dict(ls="--", marker="s")}
FLOOR = 1e-17  # s: errors below are drawn at this value (machine precision of spike times ~1e-16 s)


def draw_errors(ax, ds) -> None:
    """Panel A: median |error| (markers) and its 90th percentile (band) vs dt, both log scaled (s -> us)."""
    us = 1e6
    dt = ds["dt"].values
    for mode in ds["mode"].values:
        for layer in ds["layer"].values:
            med = np.maximum(ds["median_error"].sel(mode=mode, layer=layer).values, FLOOR) * us
            p90 = np.maximum(ds["p90_error"].sel(mode=mode, layer=layer).values, FLOOR) * us
            colour = MODE_COLOURS[str(mode)]
            ax.plot(dt * 1e3, med, color=colour, lw=1.8, ms=5, label=f"{mode}, {layer} layer",
                    **LAYER_STYLE[str(layer)])
            ax.fill_between(dt * 1e3, med, p90, color=colour, alpha=0.12, lw=0)
    ax.plot(dt * 1e3, dt * us, color="0.6", lw=1, ls=":", label="error = dt")
    ax.axhline(1.0, color="0.4", lw=0.8, ls="-.")
    ax.annotate("1 µs", (dt.max() * 1e3, 1.0), xytext=(-2, -11), textcoords="offset points", fontsize=8,
                color="0.3", ha="right")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(dt * 1e3, [f"{v:g}" for v in dt * 1e3])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    precise = ds["median_error"].sel(mode="precise").values
    if np.all(precise < 1e-12):
        ax.annotate("precise: floating-point precision of the times", (dt.max() * 1e3, precise.max() * us),
                    xytext=(-4, 14), textcoords="offset points", ha="right", fontsize=8,
                    color=MODE_COLOURS["precise"])
    ax.set_xlabel("time step dt (ms)")
    ax.set_ylabel("|spike time - exact| (µs)\nmedian; band to 90th percentile")
    low = min(FLOOR * us, float(np.nanmin(np.maximum(ds["median_error"].values, FLOOR))) * us)
    ax.set_ylim(low * 1e-4, max(1e3, float(ds["p90_error"].max()) * us * 5))  # room for the legend below
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7.5, loc="lower left", ncol=2, framealpha=0.95)
    ax.set_title("A  spike-time error vs dt (against the exact event engine)", loc="left",
                 fontweight="bold", fontsize=10)
    if "mismatched" in ds:   # neurons whose spike count differs from the exact one are not compared
        lines = ["excluded (trial, neuron) pairs whose spike counts differ, dt = "
                 + " / ".join(f"{v:g}" for v in dt * 1e3) + " ms:"]
        for mode in ds["mode"].values:
            parts = []
            for layer in ds["layer"].values:
                counts = ds["mismatched"].sel(mode=mode, layer=layer).values
                total = int(ds["exact_spikes"].sel(layer=layer)) if "exact_spikes" in ds else None
                parts.append(f"{layer} " + ("none" if not counts.any() else " / ".join(str(int(c)) for c in counts))
                             + (f" (of {total} exact spikes)" if total is not None else ""))
            lines.append(f"  {mode}: " + "; ".join(parts))
        ax.text(0.0, -0.2, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=7.5, color="0.25")


def draw_jeffress(ax, ds) -> None:
    """Panel B: estimated vs true ITD (ms) for exact, precise and grid timing."""
    ms = 1e3
    itd = ds["itd"].values * ms
    params = json.loads(ds.attrs.get("parameters", "{}"))
    dt = params.get("jeffress_dt")
    ax.plot(itd, itd, color="0.8", lw=4, label="identity", zorder=1)
    styles = {"exact": dict(lw=1.5, ls="-"), "precise": dict(lw=0, marker="o", ms=4, mfc="none"),
              "grid": dict(lw=1.5, ls="-", drawstyle="steps-mid")}
    names = {"exact": "exact event engine", "precise": "Brian2 precise", "grid": "Brian2 grid"}
    for timing in ("exact", "precise", "grid"):
        if timing not in ds["timing"].values:
            continue
        est = ds["estimated_itd"].sel(timing=timing).values * ms
        label = names[timing] + (f" (dt = {dt * ms:g} ms)" if dt and timing != "exact" else "")
        ax.plot(itd, est, color=MODE_COLOURS[timing], label=label, zorder=2, **styles[timing])
    ax.set_xlabel("true interaural time difference (ms)")
    ax.set_ylabel("estimated ITD (ms)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", framealpha=0.95)
    ax.set_title("B  Jeffress delay-line map", loc="left", fontweight="bold", fontsize=10)
    n_det = ds.sizes.get("detector", params.get("n_detectors"))
    step = params.get("delta")
    if n_det is not None and step is not None:
        ax.text(0.98, 0.03, f"{n_det} detectors, delay step {step * ms:g} ms"
                + (f"\nBrian2 dt = {dt * ms:g} ms" if dt else ""), transform=ax.transAxes, ha="right",
                va="bottom", fontsize=7.5, bbox=dict(fc="white", ec="0.7", alpha=0.9))


def draw(ds) -> plt.Figure:
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1.25, 1]},
                               layout="constrained")
    draw_errors(a, ds)
    draw_jeffress(b, ds)
    fig.suptitle("Exact (sub-step) vs grid event timing in Brian2")
    return fig


def main(argv=None) -> int:
    """Draw the figure from the NetCDF result into the output folder (PNG and PDF)."""
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
