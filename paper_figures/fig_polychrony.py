"""Figure: polychronous groups in the Izhikevich (2006) network (reads analyses/results/polychrony.nc).

A: number of groups against model time for the trained network, the same with
   shuffled excitatory weights, and the network trained with equal delays, with 95 % bootstrap
   intervals over the searched mothers; shaded: the trained and shuffled counts averaged over the
   times in the end window (95 % bootstrap over times and mothers), and their ratio in the title.
B: one group of the trained network as a spike-time diagram: neurons against
   spike time, anchors marked, links drawn from each presynaptic spike to the
   spike it reached, labelled with their delays.
C, D: distributions of group size (spikes) and length (layers) at the end.
E: E->E weights (fractions strong and near zero) and the excitatory rate against model time.
F: the fraction of strong E->E synapses still strong after a lag, against the lag (chance: the
   fraction of E->E synapses that are strong).

Writes paper_figures/output/polychrony.png and .pdf. Never simulates.
Usage: python paper_figures/fig_polychrony.py [--results DIR] [--out DIR]
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

RESULT = "polychrony.nc"
NAME = "polychrony"
COLOURS = {"real": "#1b9e77", "shuffled": "#d95f02", "equal_delays": "#7570b3", "delays_equalised": "#e7298a"}
LABELS = {"real": "trained (random delays 1–20 ms)", "shuffled": "trained, excitatory weights shuffled",
          "equal_delays": "trained with equal delays (10 ms)",
          "delays_equalised": "trained, then every delay set to 10 ms"}


def draw_counts(ax, ds) -> None:
    """Panel A: groups against model time (s -> h on the axis when long), 95 % bootstrap intervals over mothers."""
    t = ds["time"].values
    hours = t.max() >= 3600
    x = t / 3600 if hours else t
    n_exc = int(ds.attrs["n_exc"])
    for cond in ds["condition"].values:
        m = int(ds["mothers_searched"].sel(condition=cond))
        if m == 0:
            trained = (f": trained for {ds.attrs.get('equal_model_time', 0):.0f} s"
                       if str(cond) == "equal_delays" else "")
            ax.text(0.98, 0.04 + 0.05 * list(ds["condition"].values).index(cond), f"{LABELS[str(cond)]}{trained}, "
                    f"not searched", transform=ax.transAxes, ha="right", fontsize=7, color=COLOURS[str(cond)])
            continue
        y = ds["group_count"].sel(condition=cond).values
        if "group_count_low" in ds:
            err = np.array([y - ds["group_count_low"].sel(condition=cond).values,
                            ds["group_count_high"].sel(condition=cond).values - y])
        else:
            err = np.sqrt(ds["groups_found"].sel(condition=cond).values) * n_exc / m
        ok = np.isfinite(y)
        label = f"{LABELS[str(cond)]} ({m} mothers)"
        if str(cond) == "equal_delays" and "groups_truncated" in ds:
            cut = ds["groups_truncated"].sel(condition=cond).values[ok]
            trip = ds["triplets"].sel(condition=cond).values[ok]
            if cut.size:
                label += (f"; {cut.sum():.0f} of {trip.sum():.0f} triplets ran away past "
                          f"{ds.attrs.get('max_spikes', '?')} spikes (not counted)")
        yy = np.where(y[ok] > 0, y[ok], 0.0)
        marker = {"equal_delays": "s", "delays_equalised": "D"}.get(str(cond), "o")
        ax.errorbar(x[ok], yy, yerr=err[:, ok] if np.ndim(err) == 2 else err[ok], fmt=marker + "-",
                    color=COLOURS[str(cond)], lw=1.6, ms=7 if marker == "s" else 4, capsize=2, label=label,
                    mfc="none" if marker == "s" else None, zorder=3 if marker == "s" else 2)
    ax.set_xlabel("model time (h)" if hours else "model time (s)")
    ax.set_ylabel("polychronous groups (all mothers, estimated)")
    ax.set_yscale("symlog", linthresh=10)
    top = np.nanmax(np.r_[ds["group_count"].values.ravel(), ds.get("group_count_high", ds["group_count"]).values.ravel(),
                          0.0])
    ax.set_ylim(0, max(10.0, 3.0 * top))
    ratio = ""
    if "end_ratio" in ds.attrs:
        window = ds["end_window_time"].values
        lo_t, hi_t = (window.min(), window.max()) if window.size else (t[-1], t[-1])
        lo_t, hi_t = (lo_t / 3600, hi_t / 3600) if hours else (lo_t, hi_t)
        for cond in ("real", "shuffled"):
            ax.fill_between([lo_t, hi_t], ds.attrs[f"end_{cond}_low"], ds.attrs[f"end_{cond}_high"],
                            color=COLOURS[cond], alpha=0.18, lw=0)
            ax.plot([lo_t, hi_t], [ds.attrs[f"end_{cond}"]] * 2, color=COLOURS[cond], lw=2.5, alpha=0.7)
        ratio = (f"\ntrained / shuffled averaged over the {window.size} times in the last "
                 f"{ds.attrs['end_window']:.0f} s (shaded): {ds.attrs['end_ratio']:.1f} "
                 f"[{ds.attrs['end_ratio_low']:.1f}, {ds.attrs['end_ratio_high']:.1f}]; at the last time alone "
                 f"{ds.attrs['ratio_end']:.1f}")
    elif "ratio_last_hour" in ds.attrs:
        fmt = (lambda r: f"{r:.1f}" if np.isfinite(r) else "n/a")
        ratio = (f"\ntrained / shuffled: {fmt(ds.attrs['ratio_end'])} at the last time, "
                 f"{fmt(ds.attrs['ratio_last_hour'])} averaged over the last hour searched")
    ax.set_title(f"A  groups vs model time (subset of mothers scaled to {n_exc}; 95 % bootstrap over mothers)"
                 f"{ratio}", loc="left", fontsize=8)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 0.07), frameon=False)
    ax.text(0.99, 0.03, "points on the axis: 0 groups", transform=ax.transAxes, ha="right", fontsize=7,
            color="0.4")


def draw_weights(ax, ds) -> None:
    """Panel E: E->E weights and excitatory rate against model time (is anything drifting?)."""
    if "strong_fraction" not in ds:
        ax.set_axis_off()
        return
    hours = ds["snapshot_time"].values.max() >= 3600
    scale = 3600 if hours else 1
    ax.plot(ds["snapshot_time"].values / scale, 100 * ds["strong_fraction"].values, "-", color=COLOURS["real"],
            label=f"trained: > {ds.attrs['strong_fraction']:.2f} w_max")
    ax.plot(ds["snapshot_time"].values / scale, 100 * ds["weak_fraction"].values, "--", color=COLOURS["real"],
            label="trained: < 0.05 w_max")
    if "equal_strong_fraction" in ds:
        ax.plot(ds["equal_snapshot_time"].values / scale, 100 * ds["equal_strong_fraction"].values, "o-",
                color=COLOURS["equal_delays"], ms=3, label="equal delays: strong")
    ax.set_xlabel("model time (h)" if hours else "model time (s)")
    ax.set_ylabel("E→E synapses (%)")
    ax.set_ylim(0, 100)
    rate = ax.twinx()
    n_exc = int(ds.attrs["n_exc"])
    chunk = np.diff(np.r_[0.0, ds["chunk_end"].values])
    rate.plot(ds["chunk_end"].values / scale, ds["spikes_exc"].values / n_exc / chunk, color="0.55", lw=0.8,
              label="trained: exc. rate")
    if "equal_spikes_exc" in ds:
        eq_chunk = np.diff(np.r_[0.0, ds["equal_chunk_end"].values])
        rate.plot(ds["equal_chunk_end"].values / scale, ds["equal_spikes_exc"].values / n_exc / eq_chunk, ":",
                  color=COLOURS["equal_delays"], lw=1.2, label="equal delays: exc. rate")
    shown = np.concatenate([line.get_ydata() for line in rate.get_lines()])
    if shown.min() > 0 and shown.max() / shown.min() > 10:
        rate.set_yscale("log")
    else:
        rate.set_ylim(0, 1.2 * shown.max())
    rate.set_ylabel("excitatory rate (Hz)", color="0.4")
    lines = ax.get_legend_handles_labels()
    more = rate.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=5.5, loc="upper right", ncol=2, frameon=False)
    ax.set_title("E  weights and rate", loc="left", fontsize=9)


def draw_overlap(ax, ds) -> None:
    """Panel F: how long strong E->E synapses stay strong (the strong set is replaced within hours)."""
    if "strong_overlap" not in ds or ds["strong_overlap"].size == 0:
        ax.set_axis_off()
        return
    lag = ds["lag"].values
    hours = lag.max() >= 3600
    x = lag / 3600 if hours else lag
    ax.plot(x, 100 * ds["strong_overlap"].values, "o-", ms=2, color=COLOURS["real"], label="trained network")
    ax.axhline(100 * ds.attrs["strong_overlap_chance"], color="0.4", ls="--", lw=1,
               label="chance (fraction strong)")
    ax.set_xlabel("lag (h)" if hours else "lag (s)")
    ax.set_ylabel("strong at t still strong\nat t + lag (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=6, frameon=False)
    ax.set_title("F  persistence of strong E→E synapses", loc="left", fontsize=9)


def draw_group(ax, ds) -> None:
    """Panel B: the example group as a spike-time diagram with its links and delays."""
    if "example_neuron" not in ds:
        ax.text(0.5, 0.5, "no group found", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    neuron, t, layer = ds["example_neuron"].values, ds["example_time"].values * 1e3, ds["example_layer"].values
    rows = {n: k for k, n in enumerate(np.unique(neuron))}
    y = np.array([rows[n] for n in neuron])
    pre, post = ds["example_link_pre"].values, ds["example_link_post"].values
    delay = ds["example_link_delay"].values * 1e3
    n_links_drawn = 0
    for p, q, d in zip(pre, post, delay):
        # the spike of p that, with delay d, arrived last before a spike of q
        tq = t[neuron == q]
        tp = t[neuron == p]
        pairs = [(a, b) for a in tp for b in tq if 0 <= b - (a + d) < 20]
        if not pairs:
            continue
        a, b = min(pairs, key=lambda ab: ab[1] - ab[0] - d)
        ax.annotate("", xy=(a + d, rows[q]), xytext=(a, rows[p]),
                    arrowprops=dict(arrowstyle="-|>", color="0.6", lw=0.6, shrinkA=2, shrinkB=0))
        if n_links_drawn < 40:
            ax.text(a + 0.5 * d, 0.5 * (rows[p] + rows[q]), f"{d:.0f}", fontsize=5, color="0.35", ha="center")
        n_links_drawn += 1
    sc = ax.scatter(t, y, c=layer, cmap="viridis", s=18, zorder=3, edgecolors="k", linewidths=0.3)
    ax.scatter(t[:3], y[:3], marker="s", s=40, facecolors="none", edgecolors="crimson", zorder=4,
               label="anchors")
    plt.colorbar(sc, ax=ax, label="layer", pad=0.01)
    ax.set_xlabel("spike time (ms)")
    ax.set_ylabel("neuron (sorted by index)")
    ax.set_yticks(range(len(rows)), [str(n) for n in rows], fontsize=5)
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    ax.set_title(f"B  one group (mother {ds.attrs.get('example_mother', '?')}, {len(neuron)} spikes, "
                 f"{layer.max()} layers; arrows: spike to arrival, delay in ms)", loc="left", fontsize=9)


def draw_histogram(ax, ds, var: str, xlabel: str, title: str) -> None:
    """Panels C, D: distribution of a per-group quantity at the end, per condition."""
    values = {c: ds[f"{c}_{var}"].values for c in ds["condition"].values
              if f"{c}_{var}" in ds and ds[f"{c}_{var}"].size}
    if not values:
        ax.text(0.5, 0.5, "no groups", ha="center", va="center", transform=ax.transAxes)
    else:
        hi = max(v.max() for v in values.values())
        lo = min(v.min() for v in values.values())
        bins = np.arange(lo - 0.5, hi + 1.5, max(1, int(np.ceil((hi - lo + 1) / 40))))
        for c, v in values.items():
            ax.hist(v, bins=bins, histtype="step", lw=1.4, color=COLOURS[str(c)], label=f"{c} (n = {len(v)})")
        ax.legend(fontsize=7, frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("groups")
    ax.set_title(title, loc="left", fontsize=9)


def draw(ds) -> plt.Figure:
    fig = plt.figure(figsize=(13, 10))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.1], hspace=0.35, wspace=0.38)
    draw_counts(fig.add_subplot(grid[0, :2]), ds)
    top_right = grid[0, 2].subgridspec(2, 1, hspace=0.6)
    draw_weights(fig.add_subplot(top_right[0]), ds)
    draw_overlap(fig.add_subplot(top_right[1]), ds)
    draw_group(fig.add_subplot(grid[1, :2]), ds)
    right = grid[1, 2].subgridspec(2, 1, hspace=0.55)
    draw_histogram(fig.add_subplot(right[0]), ds, "n_spikes", "spikes per group", "C  group size")
    draw_histogram(fig.add_subplot(right[1]), ds, "n_layers", "layers (longest path)", "D  group length")
    t_end = ds.attrs["model_time"]
    fig.suptitle(f"Polychronous groups, Izhikevich (2006) network: {ds.attrs['n_exc']} + {ds.attrs['n_inh']} "
                 f"neurons, {t_end:.0f} s of model time ({ds.attrs['scale']} scale)", fontsize=11)
    return fig


def main(argv=None) -> int:
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
