"""Figure: exact adjoint gradients vs finite differences, and their cost (reads analyses/results/gradient_check.nc).

A: one panel per parameter kind: adjoint gradient against the central finite
   difference of the exact forward engine, every compared coordinate, on
   symmetric-log axes, with the identity line (shared time constants as
   diamonds; feedforward circles, recurrent triangles).
B: histogram of the per-coordinate relative errors |adj - fd| / max(|adj|, |fd|)
   by kind, and of the errors relative to the largest |fd| of the same key.
C: forward and backward CPU time per trial (process, all threads: less
   inflated by other load on a shared machine than wall time, shown as open
   markers) against the maximum synaptic delay, feedforward and recurrent.
D: what the cost follows: hidden spikes per trial and reverse-pass events.

Writes paper_figures/output/gradients.png and .pdf. Never simulates.
Usage: python paper_figures/fig_gradients.py [--results DIR] [--out DIR]
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

RESULT = "gradient_check.nc"
NAME = "gradients"
KINDS = ("weight", "synaptic", "axonal", "dendritic", "tau_m", "tau_s", "theta")
KIND_COLOURS = {"weight": "0.2", "synaptic": "#d95f02", "axonal": "#1b9e77", "dendritic": "#7570b3",
                "tau_m": "#e7298a", "tau_s": "#66a61e", "theta": "#e6ab02"}
KIND_LABELS = {"weight": "weights", "synaptic": "synaptic delays", "axonal": "axonal delays",
               "dendritic": "dendritic delays", "tau_m": r"$\tau_m$", "tau_s": r"$\tau_s$",
               "theta": r"threshold $\vartheta$"}
NETWORK_MARKERS = {"feedforward": "o", "recurrent": "^"}
CASE_STYLES = {"feedforward": "-", "recurrent": "--"}
PART_COLOURS = {"forward": "#1f78b4", "backward": "#e31a1c", "total": "0.15"}
ERROR_FLOOR = 1e-14   # exact agreement is drawn in the lowest bin
#: readable units of dL/dp: the loss, the weights and the threshold are dimensionless (V and I in units of theta)
UNIT_LABELS = {"1/weight": "dimensionless", "1/theta": "dimensionless", "1/s": r"s$^{-1}$"}


def _symlog_ticks(linthresh: float, lim: float, per_side: int = 3) -> list:
    """0 and at most `per_side` powers of ten on each side, from linthresh to lim."""
    exponents = np.arange(round(np.log10(linthresh)), round(np.log10(lim)) + 1)
    step = int(np.ceil(len(exponents) / per_side))
    chosen = 10.0 ** exponents[::-1][::step][::-1]
    return sorted([0.0, *chosen, *(-chosen)])


def draw_kind(ax, ds, kind: str, label: str = "") -> None:
    """Scatter of adjoint vs finite difference for one parameter kind (symlog axes, identity line)."""
    sel = (ds["kind"].values == kind) & ~ds["skipped"].values
    fd, adj = ds["finite_difference"].values[sel], ds["adjoint"].values[sel]
    networks, shared = ds["network"].values[sel], ds["shared"].values[sel]
    colour = KIND_COLOURS.get(kind, "k")
    for net, marker in NETWORK_MARKERS.items():
        for is_shared in (False, True):
            m = (networks == net) & (shared == is_shared)
            if m.any():
                ax.scatter(fd[m], adj[m], s=30 if is_shared else 14, marker="D" if is_shared else marker,
                           facecolor="none" if is_shared else colour, edgecolor=colour, lw=0.8, alpha=0.8,
                           zorder=3)
    top = max(np.max(np.abs(np.concatenate([fd, adj])), initial=0.0), 1e-12)
    linthresh = 10 ** np.floor(np.log10(top * 1e-3))
    lim = 10 ** np.ceil(np.log10(top * 1.5))
    ax.plot([-lim, lim], [-lim, lim], color="0.6", lw=0.8, zorder=1)
    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_yscale("symlog", linthresh=linthresh)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.axhspan(-linthresh, linthresh, color="0.93", zorder=0, lw=0)
    ax.axvspan(-linthresh, linthresh, color="0.93", zorder=0, lw=0)
    ticks = _symlog_ticks(linthresh, lim)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.tick_params(labelsize=6.5)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    units = str(ds["gradient_units"].values[ds["kind"].values == kind][0])
    units = UNIT_LABELS.get(units, units)
    rel = ds["relative_error"].values[sel]
    n_skipped = int(ds["skipped"].values[ds["kind"].values == kind].sum())
    median = np.nanmedian(rel) if np.isfinite(rel).any() else np.nan
    ax.set_title(f"{label}{KIND_LABELS.get(kind, kind)}: dL/dp ({units})", fontsize=9, loc="left",
                 color=colour if kind != "weight" else "k", fontweight="bold" if label else None)
    ax.text(0.04, 0.96, f"{sel.sum()} coords, {n_skipped} skipped\nmedian rel. err {median:.0e}",
            transform=ax.transAxes, va="top", fontsize=7, bbox=dict(fc="white", ec="none", alpha=0.8))


def draw_histogram(ax, ds) -> None:
    """Relative errors (log x) stacked by kind, and the key-scaled error as a step line."""
    bins = np.logspace(np.log10(ERROR_FLOOR), 0, 43)
    rel = ds["relative_error"].values
    kinds = [k for k in KINDS if (ds["kind"].values == k).any()]
    data = [np.clip(rel[(ds["kind"].values == k) & np.isfinite(rel)], ERROR_FLOOR, 1.0) for k in kinds]
    ax.hist(data, bins=bins, stacked=True, color=[KIND_COLOURS[k] for k in kinds], label=kinds, alpha=0.9)
    scaled = ds["scaled_error"].values[np.isfinite(rel)]     # both exactly 0: not an error measurement
    ax.hist(np.clip(scaled, ERROR_FLOOR, 1.0), bins=bins, histtype="step", color="k",
            lw=1.2, ls=":", label="scaled by max |fd| of the key")
    ax.set_xscale("log")
    ax.set_xlabel("|adjoint - fd| / max(|adjoint|, |fd|)", fontsize=8)
    ax.set_ylabel("coordinates", fontsize=8)
    ax.tick_params(labelsize=7)
    n_zero = int((~ds["skipped"].values & ~np.isfinite(rel)).sum())
    ax.set_title("B  relative errors", fontsize=10, loc="left", fontweight="bold")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.9)   # room above the bars for the legend
    ax.legend(fontsize=6, loc="upper right", frameon=False, ncol=2)
    ax.text(0.98, 0.62, f"median {np.nanmedian(rel):.0e}\n{n_zero} pairs\nboth exactly 0",
            transform=ax.transAxes, ha="right", va="top", fontsize=7, bbox=dict(fc="white", ec="none", alpha=0.8))


def draw_cost(ax, ds) -> None:
    """Forward / backward / total CPU ms per trial vs max delay (lines); wall totals as open markers."""
    x = ds["max_delay"].values * 1e3
    for case in ds["case"].values:
        ls = CASE_STYLES.get(str(case), "-")
        fwd = ds["forward_cpu_ms_per_trial"].sel(case=case).values
        bwd = ds["backward_cpu_ms_per_trial"].sel(case=case).values
        for part, y in (("forward", fwd), ("backward", bwd), ("total", fwd + bwd)):
            ax.plot(x, y, ls=ls, marker=".", color=PART_COLOURS[part], lw=1.6 if part == "total" else 1.1)
        wall = (ds["forward_ms_per_trial"] + ds["backward_ms_per_trial"]).sel(case=case).values
        ax.plot(x, wall, ls="none", marker="o" if ls == "-" else "s", mfc="none", mec="0.55", ms=5)
    for part, colour in PART_COLOURS.items():
        ax.plot([], [], color=colour, label=f"{part} (CPU time)")
    for case, ls in CASE_STYLES.items():
        ax.plot([], [], color="0.5", ls=ls, label=case)
    ax.plot([], [], ls="none", marker="o", mfc="none", mec="0.55", label="total wall time (ff)")
    ax.plot([], [], ls="none", marker="s", mfc="none", mec="0.55", label="total wall time (rec)")
    ax.set_xlabel("maximum synaptic delay (ms)")
    ax.set_ylabel("ms per trial")
    top = max(float((ds["forward_ms_per_trial"] + ds["backward_ms_per_trial"]).max()),
              float((ds["forward_cpu_ms_per_trial"] + ds["backward_cpu_ms_per_trial"]).max()))
    ax.set_ylim(0, 1.6 * top)
    ax.set_xlim(0, x.max() * 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="upper right", bbox_to_anchor=(1.0, 0.88), framealpha=0.9)
    n_hid = ds.attrs.get("cost_network", "")
    ax.set_title("C  forward + backward cost vs maximum delay", loc="left", fontweight="bold", fontsize=10)
    ax.text(0.01, 0.99, f"{n_hid.split(': ', 1)[-1]}\nbatch {ds.attrs.get('cost_batch')}, "
                        f"{ds.attrs.get('cost_threads')} threads; CPU time = process user + system",
            transform=ax.transAxes, va="top", fontsize=6.5, color="0.3")


def draw_activity(ax, ds) -> None:
    """Hidden spikes per trial and reverse-pass events (trial 0) vs max delay."""
    x = ds["max_delay"].values * 1e3
    right = ax.twinx()
    for case in ds["case"].values:
        ls = CASE_STYLES.get(str(case), "-")
        ax.plot(x, ds["hidden_spikes_per_trial"].sel(case=case).values, ls=ls, marker=".", color="#6a3d9a")
        right.plot(x, ds["events_in_trial_0"].sel(case=case).values / 1e6, ls=ls, marker=".", color="#b15928")
    ax.set_xlabel("maximum synaptic delay (ms)")
    ax.set_ylabel("hidden spikes per trial", color="#6a3d9a")
    right.set_ylabel("reverse-pass events, trial 0 (millions)", color="#b15928")
    ax.set_ylim(bottom=0)
    right.set_ylim(bottom=0)
    ax.set_xlim(0, x.max() * 1.05)
    ax.grid(alpha=0.3)
    for case, ls in CASE_STYLES.items():
        ax.plot([], [], color="0.5", ls=ls, label=case)
    ax.legend(fontsize=7, loc="lower left", framealpha=0.9)
    ax.set_title("D  activity of the timed network vs maximum delay", loc="left", fontweight="bold", fontsize=10)


def draw(ds) -> plt.Figure:
    """The figure from the analysis' Dataset."""
    fig = plt.figure(figsize=(13, 10.5), layout="constrained")
    grid = fig.add_gridspec(3, 4, height_ratios=[1, 1, 1.15])
    kinds = [k for k in KINDS if (ds["kind"].values == k).any()]
    for n, kind in enumerate(kinds[:7]):
        ax = fig.add_subplot(grid[n // 4, n % 4])
        draw_kind(ax, ds, kind, "A  " if n == 0 else "")
        if n % 4 == 0:
            ax.set_ylabel("adjoint dL/dp", fontsize=8)
        if n // 4 == 1 or n + 4 >= len(kinds):
            ax.set_xlabel("finite difference", fontsize=8)
    draw_histogram(fig.add_subplot(grid[1, 3]), ds)
    draw_cost(fig.add_subplot(grid[2, :2]), ds)
    draw_activity(fig.add_subplot(grid[2, 2:]), ds)
    fig.get_layout_engine().set(h_pad=0.08)
    fig.suptitle("Adjoint (EventProp with delays) vs central finite differences of the exact forward, per "
                 "coordinate\n(feedforward: circles, recurrent: triangles, shared time constant: diamonds; "
                 "grey: linear part of the symlog axes)", fontsize=10)
    return fig


def main(argv=None) -> int:
    """Draw the figure from the NetCDF result into the output folder (PNG and PDF)."""
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
