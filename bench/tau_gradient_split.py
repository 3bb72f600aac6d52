"""How much of the time-constant gradient on our MTS-XOR is a change of PSP *amplitude* (what a weight
change would also do) rather than of memory (PSP shape)?

At the initial network of the ``mts_xor`` recipe (weights + tau_s trained), per hidden / readout neuron j:
the exact ``dL/dlog tau_s_j`` and the amplitude part predicted from the weight gradients,
``(dlog psp_peak / dlog tau_s) * sum_i w_ij dL/dw_ij`` (scaling tau_s by (1 + e) scales the PSP peak as
scaling all incoming weights by (1 + e dlog peak / dlog tau_s) would). Prints both, their correlation and
the fraction of the squared gradient the amplitude part explains (least-squares fit through 0).

Usage: ``python bench/tau_gradient_split.py [--seeds 0 1 2] [--trials 300]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from neurodelay.gradients import loss_and_grad
from neurodelay.train import RunConfig, build_model, get_recipe, resolve_config
from neurodelay.train.init import psp_peak


def dlog_peak(tau_m: float, tau_s: float, h: float = 1e-6) -> float:
    return (np.log(psp_peak(tau_m, tau_s * (1 + h))) - np.log(psp_peak(tau_m, tau_s * (1 - h)))) / (2 * h)


def split(seed: int, trials: int):
    cfg = resolve_config(RunConfig(task="mts_xor", learn=("weight", "tau_s"), seed=seed))
    train, _, _ = get_recipe("mts_xor").splits(cfg)
    model = build_model(cfg)
    net = model.network
    data = train.select(np.arange(trials))
    res = loss_and_grad(net, data.inputs, data.duration, model.loss, data.labels, params=model.keys)
    out = {}
    for pop, proj in (("hidden", "input->hidden"), ("output", "hidden->output")):
        projection = net.projection(*proj.split("->"))
        w = np.asarray(projection.weight, float)
        gw = np.asarray(res.grads[(proj, "weight")])
        post = np.asarray(projection.post_idx)
        tau_m = np.asarray(net[pop].tau_m, float) * np.ones(net[pop].n)
        tau_s = np.asarray(net[pop].tau_s, float) * np.ones(net[pop].n)
        exact = tau_s * np.asarray(res.grads[(pop, "tau_s")])
        amp = np.array([dlog_peak(tau_m[j], tau_s[j]) for j in range(net[pop].n)]) * np.bincount(
            post, weights=w * gw, minlength=net[pop].n)
        out[pop] = (exact, amp)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--trials", type=int, default=300)
    a = p.parse_args(argv)
    for seed in a.seeds:
        for pop, (exact, amp) in split(seed, a.trials).items():
            k = float(exact @ amp / (amp @ amp)) if amp @ amp > 0 else np.nan
            explained = 1 - np.sum((exact - k * amp) ** 2) / np.sum(exact ** 2)
            r = np.corrcoef(exact, amp)[0, 1] if exact.size > 2 else np.nan
            print(f"seed {seed} {pop}: |dL/dlog tau_s| rms {np.sqrt(np.mean(exact ** 2)):.3g}, amplitude part rms "
                  f"{np.sqrt(np.mean(amp ** 2)):.3g}, corr {r:.3f}, fit slope {k:.3f}, explained {explained:.3f}; "
                  f"exact {np.round(exact[:4], 4).tolist()} amp {np.round(amp[:4], 4).tolist()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
