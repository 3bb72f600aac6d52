"""Figure: online three-factor learning against exact offline learning (reads analyses/results/online_vs_exact.nc).

Four panels over the tasks: test accuracy (%, mean ± sample std over seeds, one bar per rule and
parameter set, chance per task dashed), trained parameters, memory one trial keeps for its update
(bytes, log scale) and training wall time (s, log scale); a fifth panel: cosine similarity of the
three-factor update to the exact gradient per parameter kind, for the initial and the trained
networks (mean ± sample std over seeds and parameter sets). Points that failed are left out and named in
the title.

Writes paper_figures/output/online_vs_exact.png and .pdf, and online_vs_exact_full.png and .pdf from
analyses/results/online_vs_exact_full.nc where that exists (the same comparison at the recipes' data and
epochs, ``analyses/online_vs_exact.py --full``). Never simulates.
Usage: python paper_figures/fig_online_vs_exact.py [--results DIR] [--out DIR]
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
    sys.path.append(str(HERE))
from _figure import figure_main  # noqa: E402

RESULT = "online_vs_exact.nc"
NAME = "online_vs_exact"
#: the same comparison at the recipes' scale, where it has been run (analyses/online_vs_exact.py --full)
FULL_RESULT, FULL_NAME = "online_vs_exact_full.nc", "online_vs_exact_full"
CHANCE = {"yinyang": 1 / 3, "mts_xor": 1 / 2, "digits": 1 / 10, "sequence": 1 / 2}
COLOURS = {"eventprop": ("#1b9e77", "#66c2a5", "#b3e2cd"), "three-factor": ("#d95f02", "#fc8d62", "#fdcdac")}


def _ok(ds, var):
    v = np.asarray(ds[var].values, float)
    if "status" in ds:
        ok = np.asarray(ds["status"].values) == "ok"
        v = np.where(ok.reshape(ok.shape + (1,) * (v.ndim - ok.ndim)), v, np.nan)
    return v


def _mean_std(v, axis):
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        n = np.sum(np.isfinite(v), axis=axis)
        return np.nanmean(v, axis=axis), np.where(n > 1, np.nanstd(v, axis=axis, ddof=1), 0.0)


def draw(ds) -> plt.Figure:
    tasks, rules, params = list(ds["task"].values), list(ds["rule"].values), list(ds["params"].values)
    n_seeds = ds.sizes["seed"]
    fig, axes = plt.subplots(1, 5, figsize=(22, 5.2))
    width = 0.8 / (len(rules) * len(params))
    x = np.arange(len(tasks))
    panels = (("test_accuracy", 100.0, "test accuracy (%)", False), ("n_params", 1.0, "trained parameters", False),
              ("memory_per_trial", 1.0, "memory per trial for the update (B)", True),
              ("train_time", 1.0, "training wall time (s, one thread)", True))
    for ax, (var, factor, label, log) in zip(axes[:4], panels):
        v = _ok(ds, var) * factor
        m, s = _mean_std(v, axis=-1)
        for r, rule in enumerate(rules):
            for p, par in enumerate(params):
                off = (r * len(params) + p - (len(rules) * len(params) - 1) / 2) * width
                ax.bar(x + off, m[:, r, p], width, yerr=s[:, r, p] if var == "test_accuracy" else None,
                       color=COLOURS.get(rule, ("0.3", "0.5", "0.7"))[p % 3], capsize=2,
                       label=f"{rule}, {par}")
        if var == "test_accuracy":
            for i, task in enumerate(tasks):
                if task in CHANCE:
                    ax.hlines(100 * CHANCE[task], i - 0.45, i + 0.45, color="k", ls="--", lw=1,
                              label="chance" if i == 0 else None)
            ax.set_ylim(0, 100)
        if log:
            ax.set_yscale("log")
        ax.set_xticks(x, tasks)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_title(f"mean ± sample std of {n_seeds} seed(s)", fontsize=9)
    # cosine per kind, three-factor runs only
    ax = axes[4]
    cos = _ok(ds, "cosine")                                    # task, rule, params, seed, kind, when
    if "three-factor" in rules:
        c = cos[:, rules.index("three-factor")]                # task, params, seed, kind, when
        kinds, whens = list(ds["kind"].values), list(ds["when"].values)
        cw = 0.8 / (len(kinds) * len(whens))
        for k, kind in enumerate(kinds):
            for w, when in enumerate(whens):
                vals = c[..., k, w].reshape(len(tasks), -1)
                m, s = _mean_std(vals, axis=1)
                off = (k * len(whens) + w - (len(kinds) * len(whens) - 1) / 2) * cw
                ax.bar(x + off, m, cw, yerr=s, capsize=2, color=("#7570b3", "#e7298a")[k],
                       alpha=1.0 if when == "initial" else 0.5, label=f"{kind}, {when} network")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylim(-1, 1)
    ax.set_xticks(x, tasks)
    ax.set_ylabel("cosine(three-factor update, exact gradient)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4, frameon=False)
    failed = []
    if "status" in ds:
        st = ds["status"]
        for task in tasks:
            for rule in rules:
                bad = (st.sel(task=task, rule=rule).values != "ok").sum()
                if bad:
                    failed.append(f"{task}/{rule}: {int(bad)} failed")
    import json
    settings = json.loads(ds.attrs.get("scale_settings", "{}")).get("task", {})
    sizes = "; ".join(f"{t}: {', '.join(f'{k} {v}' for k, v in settings[t].items()) or 'the recipe'}"
                      for t in tasks if t in settings)
    title = (f"Online (three-factor) vs exact (EventProp) learning, {ds.attrs.get('scale', '?')} scale"
             + (f" ({sizes})" if sizes else "")
             + "\nthree-factor: each recipe's defaults for the rule (Recipe.rule_defaults, rule_delay_defaults)")
    if failed:
        title += "  [" + "; ".join(failed) + "]"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.12, 1, 0.95))
    return fig


def main(argv=None) -> int:
    return figure_main(argv, __doc__, RESULT, NAME, draw, optional=((FULL_RESULT, FULL_NAME),))


if __name__ == "__main__":
    sys.exit(main())
