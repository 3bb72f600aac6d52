"""Figure: coincidence detection (reads analyses/results/coincidence.nc).

A: coincidence window (largest firing interval between two equal input
   spikes) against tau_m, for single PSPs peaking at several fractions of
   theta (tau_s fixed), with König et al.'s instant-rise formula dashed.
B: P(output spike) against the interval, for several Gaussian jitters of
   each spike: exact simulation (markers, binomial standard errors) and the
   analytic law (lines); dotted: the window without jitter.
C: Rossant gain: output rate under balanced Poisson background against the
   number of synchronous excitatory inputs (top axis: their fraction of the
   excitatory synapses), exact vs Brian2 grid timing (same inputs; mean ±
   standard error over trials).
D: Jeffress delay-line map: estimated vs true ITD, exact event engine,
   Brian2 precise and Brian2 grid timing, with the number of detectors, the
   delay step and dt.

Writes paper_figures/output/coincidence.png and .pdf. Never simulates.
Usage: python paper_figures/fig_coincidence.py [--results DIR] [--out DIR]
"""

from __future__ import annotations

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

RESULT = "coincidence.nc"
NAME = "coincidence"
MS = 1e3
TIMING_COLOURS = {"exact": "0.15", "precise": "#1b9e77", "grid": "#d95f02"}
TIMING_NAMES = {"exact": "exact event engine", "precise": "Brian2 precise", "grid": "Brian2 grid"}


def draw_window(ax, ds) -> None:
    """Panel A: window (ms) vs tau_m (ms) per PSP peak fraction; instant-rise limit dashed."""
    tau_m = ds["tau_m"].values * MS
    colours = plt.cm.viridis(np.linspace(0.0, 0.85, ds.sizes["peak"]))
    for colour, a in zip(colours, ds["peak"].values):
        ax.plot(tau_m, ds["window"].sel(peak=a).values * MS, color=colour, lw=1.8,
                label=f"PSP peak {a:g} θ")
        ax.plot(tau_m, ds["window_instant_rise"].sel(peak=a).values * MS, color=colour, lw=1, ls="--")
    ax.plot([], [], color="0.4", lw=1, ls="--", label="instant rise: τm ln(a/(θ−a))")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, ticks in ((ax.xaxis, [3, 5, 10, 20, 50]), (ax.yaxis, [1, 2, 5, 10, 20, 50, 100])):
        axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        axis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("membrane time constant τm (ms)")
    ax.set_ylabel("coincidence window Δc (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7.5, loc="upper left", framealpha=0.95)
    ax.set_title(f"A  window vs τm (τs = {ds.attrs['window_tau_s'] * MS:g} ms)", loc="left",
                 fontweight="bold", fontsize=10)


def draw_curve(ax, ds) -> None:
    """Panel B: P(fire) vs interval (ms) per jitter: simulation with error bars, analytic lines."""
    delta = ds["delta_t"].values * MS
    colours = plt.cm.plasma(np.linspace(0.0, 0.8, ds.sizes["jitter"]))
    for colour, s in zip(colours, ds["jitter"].values):
        p = ds["curve_p_fire"].sel(jitter=s).values
        se = ds["curve_p_fire_stderr"].sel(jitter=s).values
        ax.errorbar(delta, p, yerr=se, fmt="o", ms=3.5, color=colour, lw=0.8, capsize=1.5,
                    label=f"σ = {s * MS:g} ms")
        fine = np.linspace(delta.min(), delta.max(), 400) / MS
        from scipy.special import ndtr  # the analytic law drawn at a fine resolution from the stored window
        wc = float(ds["curve_window"])
        analytic = (np.where(np.abs(fine) <= wc, 1.0, 0.0) if s == 0
                    else ndtr((wc - fine) / (np.sqrt(2) * s)) - ndtr((-wc - fine) / (np.sqrt(2) * s)))
        ax.plot(fine * MS, analytic, color=colour, lw=1.2)
    ax.axvline(float(ds["curve_window"]) * MS, color="0.4", ls=":", lw=1)
    ax.annotate(f"Δc = {float(ds['curve_window']) * MS:.2f} ms", (float(ds["curve_window"]) * MS, 1.02),
                fontsize=8, ha="center", va="bottom", color="0.3")
    ax.plot([], [], color="0.4", lw=1.2, label="analytic")
    ax.set_ylim(-0.03, 1.1)
    ax.set_xlabel("interval between the two input spikes Δ (ms)")
    ax.set_ylabel("P(output spike)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="lower left", framealpha=0.95)
    ax.set_title("B  firing probability vs interval and jitter", loc="left", fontweight="bold", fontsize=10)
    ax.text(0.98, 0.80, f"τm = {ds.attrs['curve_tau_m'] * MS:g} ms, τs = {ds.attrs['curve_tau_s'] * MS:g} ms\n"
            f"PSP peak {ds.attrs['curve_peak']:g} θ, {ds.attrs['curve_n_trials']} trials per point",
            transform=ax.transAxes, ha="right", va="top", fontsize=8,
            bbox=dict(boxstyle="round", fc="white", ec="0.7"))


def draw_gain(ax, ds) -> None:
    """Panel C: output rate (Hz) vs number of synchronous inputs, exact and grid timing."""
    n = ds["n_sync"].values
    for k, timing in enumerate(ds["timing"].values):
        r = ds["gain_rate"].sel(timing=timing).values
        se = ds["gain_rate_stderr"].sel(timing=timing).values
        offset = (k - 0.5 * (ds.sizes["timing"] - 1)) * 0.3   # side by side, not on top of each other
        label = TIMING_NAMES[str(timing)] + (f" (dt = {ds.attrs['gain_dt'] * MS:g} ms)" if timing == "grid" else "")
        ax.errorbar(n + offset, r, yerr=se, fmt="o-", ms=4, lw=1.4, capsize=2, color=TIMING_COLOURS[str(timing)],
                    label=label)
    n_exc = int(round(n[-1] / float(ds["sync_fraction"].values[-1]))) if n[-1] else None
    if n_exc:
        top = ax.secondary_xaxis("top", functions=(lambda x: 100 * x / n_exc, lambda f: f * n_exc / 100))
        top.set_xlabel("synchronous fraction of the excitatory synapses (%)", fontsize=8)
    if 0 in n:
        base = float(ds["gain_rate"].sel(timing="exact", n_sync=0))
        ax.axhline(base, color="0.6", lw=0.8, ls=":")
        ax.annotate("no synchrony", (n.max(), base), xytext=(0, -10), textcoords="offset points", ha="right",
                    fontsize=7.5, color="0.4")
    ax.set_xlabel("number of synchronous excitatory inputs")
    ax.set_ylabel("output rate (Hz)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", framealpha=0.95)
    ax.set_title(f"C  Rossant gain ({ds.attrs['gain_duration']:g} s × {ds.sizes['gain_trial']} trials)",
                 loc="left", fontweight="bold", fontsize=10)


def draw_jeffress(ax, ds) -> None:
    """Panel D: estimated vs true ITD (ms) for each timing, with N, delay step and dt stated."""
    itd = ds["itd"].values * MS
    ax.plot(itd, itd, color="0.85", lw=4, label="identity", zorder=1)
    styles = {"exact": dict(lw=1.5, ls="-"), "precise": dict(lw=0, marker="o", ms=3.5, mfc="none"),
              "grid": dict(lw=1.5, ls="-", drawstyle="steps-mid")}
    for timing in ds["jeffress_timing"].values:
        est = ds["jeffress_estimated_itd"].sel(jeffress_timing=timing).values * MS
        ax.plot(itd, est, color=TIMING_COLOURS[str(timing)], label=TIMING_NAMES[str(timing)], zorder=2,
                **styles[str(timing)])
    ax.text(0.97, 0.04, f"{ds.attrs['jeffress_n_detectors']} detectors\n"
            f"delay step {ds.attrs['jeffress_delay_step'] * MS:g} ms\nBrian2 dt = {ds.attrs['jeffress_dt'] * MS:g} ms",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            bbox=dict(boxstyle="round", fc="white", ec="0.7"))
    ax.set_xlabel("true interaural time difference (ms)")
    ax.set_ylabel("estimated ITD (ms)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", framealpha=0.95)
    ax.set_title("D  Jeffress delay-line map", loc="left", fontweight="bold", fontsize=10)


def draw(ds) -> plt.Figure:
    fig, axes = plt.subplots(2, 2, figsize=(12, 9.5), layout="constrained")
    draw_window(axes[0, 0], ds)
    draw_curve(axes[0, 1], ds)
    draw_gain(axes[1, 0], ds)
    draw_jeffress(axes[1, 1], ds)
    fig.suptitle("Coincidence detection by the project's LIF neuron")
    return fig


def main(argv=None) -> int:
    """Draw the figure from the NetCDF result into the output folder (PNG and PDF)."""
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
