"""Figure: Yin-Yang accuracy against bits per delay (reads analyses/results/delay_quantisation.nc).

One panel per delay kind: test accuracy (%, mean ± std over seeds) of
networks trained on a b-bit delay grid over [0, d_max] (quantisation-aware,
solid) and of the network trained with continuous delays and rounded to that
grid afterwards (dashed), one colour per range d_max; the continuous
network's accuracy as a dotted line, chance (1/3) in grey, and the 1 ms grid
over 10 ms (11 levels, drawn at log2 11 bits) as diamonds. Every network is
the run's best-validation checkpoint where the result has it (a grid run's
is always on its final grid), else the final one.

Writes paper_figures/output/delay_quantisation.png and .pdf. Never simulates.
Usage: python paper_figures/fig_delay_quantisation.py [--results DIR] [--out DIR]
"""

from __future__ import annotations

import json
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

RESULT = "delay_quantisation.nc"
NAME = "delay_quantisation"
COLOURS = ("#d95f02", "#1b9e77", "#7570b3", "#e7298a")


def _mean_std(a, axis=-1):
    a = 100 * np.asarray(a, float)
    return np.nanmean(a, axis=axis), (np.nanstd(a, axis=axis) if a.shape[axis] > 1 else np.zeros(a.shape[:-1]))


def draw(ds) -> plt.Figure:
    best = "qat_best_accuracy" in ds
    if best:   # model selection by validation accuracy, as the training results do
        ds = ds.assign({v.replace("_best", ""): ds[v] for v in ds.data_vars if "_best_accuracy" in v})
    kinds = list(ds["kind"].values)
    bits = ds["bits"].values
    n_seeds = ds.sizes["seed"]
    fig, axes = plt.subplots(1, len(kinds), figsize=(max(4.6 * len(kinds), 7.0), 4.8), squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds):
        sub = ds.sel(kind=kind)
        for j, d_max in enumerate(ds["d_max"].values):
            c = COLOURS[j % len(COLOURS)]
            rng = f"d_max {d_max * 1e3:g} ms"
            if not np.isfinite(sub["continuous_accuracy"].isel(d_max=j).values).any():
                continue      # this range was not trained for this kind
            m, s = _mean_std(sub["qat_accuracy"].isel(d_max=j).values)
            ax.errorbar(bits, m, yerr=s, color=c, marker="o", capsize=3, label=f"trained on grid, {rng}")
            m, s = _mean_std(sub["rounded_accuracy"].isel(d_max=j).values)
            ax.errorbar(bits, m, yerr=s, color=c, marker="s", ls="--", capsize=3, mfc="white",
                        label=f"rounded after training, {rng}")
            m, _ = _mean_std(sub["continuous_accuracy"].isel(d_max=j).values[None, :])
            ax.axhline(m[0], color=c, ls=":", lw=1.2, label=f"continuous delays, {rng}")
        if np.isfinite(sub["step_1ms_qat_accuracy"].values).any():
            x = np.log2(11)
            for var, fc, lab in (("step_1ms_qat_accuracy", "k", "1 ms grid (10 ms), trained on it"),
                                 ("step_1ms_rounded_accuracy", "white", "1 ms grid (10 ms), rounded")):
                m, s = _mean_std(sub[var].values[None, :])
                ax.errorbar([x], m, yerr=s, color="k", marker="D", mfc=fc, ls="none", capsize=3, label=lab)
        ax.axhline(100 / 3, color="0.6", lw=1, label="chance (3 classes)")
        ax.set_xlabel("bits per delay (2^bits levels over [0, d_max])")
        ax.set_title(f"weights + {kind} delays")
        ax.set_xticks(bits)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"Yin-Yang test accuracy (%), mean ± std of {n_seeds} seed(s)")
    train = json.loads(ds.attrs.get("train_config", "{}"))
    qat = json.loads(ds.attrs.get("qat", "{}"))
    recipe = ", ".join(f"{k.removeprefix('qat_')} {v}" for k, v in qat.items()) or "grid from the start"
    fig.suptitle(f"{train.get('hidden', 30)} hidden, {train.get('n_train', 5000)} training trials, "
                 f"{train.get('epochs', 300)} epochs; grid runs: {recipe}"
                 + ("; best-validation checkpoints" if best else "; final networks"), fontsize=9)
    values = np.concatenate([100 * ds[v].values.ravel() for v in ds.data_vars if v.endswith("accuracy")])
    axes[0, 0].set_ylim(min(25.0, np.nanmin(values) - 5), 100)
    # the legend of the panel with the most entries (every range it has)
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes[0]), key=lambda hl: len(hl[1]))
    fig.legend(handles, labels, fontsize=7.5, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.05 + 0.035 * ((len(labels) + 2) // 3), 1, 1))
    return fig


def main(argv=None) -> int:
    return figure_main(argv, __doc__, RESULT, NAME, draw)


if __name__ == "__main__":
    sys.exit(main())
