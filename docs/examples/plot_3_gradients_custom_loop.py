"""
Exact gradients and your own optimisation loop
==============================================

:func:`~neurodelay.gradients.loss_and_grad` simulates a batch exactly and
runs the adjoint (EventProp with delays) backwards over the event record. It
returns the batch-mean loss and its gradient with respect to every parameter
you name by key: weights, axonal / dendritic / synaptic delays, time
constants, thresholds. Delay and time-constant gradients are per second.

This example checks a few gradient coordinates against central finite
differences of the exact forward pass, then trains weights and delays with a
hand-written Adam loop: :func:`~neurodelay.gradients.get_param` and
:func:`~neurodelay.gradients.set_param` read and write parameters of the
immutable network.
"""

import os

import brian2 as b2
import matplotlib.pyplot as plt
import numpy as np

from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.events.readout import weighted_voltage_integral
from neurodelay.gradcheck import finite_differences
from neurodelay.gradients import get_param, loss_and_grad, set_param
from neurodelay.losses import WeightedIntegralCrossEntropy
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains

QUICK = os.environ.get("NEURODELAY_GALLERY_QUICK") == "1"   # reduced scale for CI
n_steps = 10 if QUICK else 60
duration = 0.06                                              # s
tau_weight = 30e-3                                           # s, weighting of the readout's V

# %%
# A timing task
# -------------
# Two classes of input patterns: every input neuron fires once, at a time
# drawn per class (0-30 ms), jittered by 1 ms per trial. Only the timing
# tells the classes apart.

rng = np.random.default_rng(3)
n_in, n_trials = 16, 32
templates = rng.uniform(0, 0.03, (2, n_in))
labels = np.arange(n_trials) % 2
inputs = SpikeTrains.from_lists(
    [[np.array([templates[c, i] + rng.normal(0, 1e-3)]).clip(0) for i in range(n_in)] for c in labels],
    n_neurons=n_in)

net = Network().add(SpikeSource("inp", n_in),
                    LIF("hid", 12, tau_m=10 * b2.ms, tau_s=5 * b2.ms, theta=1.0),
                    Readout("out", 2, tau_m=20 * b2.ms, tau_s=5 * b2.ms))
net = net.connect("inp", "hid", weight=rng.normal(0.35, 0.25, n_in * 12),
                  delays=Delays(synaptic=rng.uniform(0, 10, n_in * 12) * b2.ms))
net = net.connect("hid", "out", weight=rng.normal(0.5, 0.5, 24),
                  delays=Delays(dendritic=[2, 2] * b2.ms))
loss = WeightedIntegralCrossEntropy("out", tau_weight=tau_weight)
params = [("inp->hid", "weight"), ("inp->hid", "synaptic"), ("hid->out", "weight"), ("hid->out", "dendritic")]

value, grads, rec = loss_and_grad(net, inputs, duration, loss, labels, params)
print(f"loss {value:.4f}; {len(rec.time)} spikes")
for key, g in grads.items():
    print(f"{key!s:28} gradient shape {g.shape}, largest |g| {np.abs(g).max():.3g}")

# %%
# Against finite differences
# --------------------------
# Central differences of the exact forward pass, for a few coordinates of
# each parameter; a step that adds or removes a spike is skipped (NaN).

fig, ax = plt.subplots(figsize=(5, 4.6), layout="constrained")
for key, color in zip(params, ["tab:blue", "tab:orange", "tab:green", "tab:red"]):
    coords = rng.choice(grads[key].size, size=min(4 if QUICK else 8, grads[key].size), replace=False)
    fd = finite_differences(net, inputs, duration, loss, labels, key, coordinates=coords)
    exact = grads[key].reshape(-1)[coords]
    ok = np.isfinite(fd)
    ax.scatter(np.abs(fd[ok]), np.abs(exact[ok]), color=color, label=" ".join(key), s=25)
    print(f"{key!s:28} max relative difference "
          f"{np.max(np.abs(exact[ok] - fd[ok]) / np.abs(fd[ok]).clip(1e-12)):.1e} over {ok.sum()} coordinates")
lims = np.array([1e-6, 10.0])   # coordinates with a zero gradient (silent neurons) are off the log scale
ax.plot(lims, lims, color="gray", lw=0.8, ls="--", label="equal")
ax.set(xscale="log", yscale="log", xlim=lims, ylim=lims, title="|dL/dp| per coordinate",
       xlabel="finite differences (1 or 1/s)", ylabel="adjoint (1 or 1/s)")
ax.legend(fontsize="small")

# %%
# A custom optimisation loop
# --------------------------
# Plain Adam on the raw parameter arrays; delays are clipped at zero after
# each step (a delay must be >= 0). Any optimiser works the same way.

lr = {"weight": 0.02, "synaptic": 5e-4, "dendritic": 5e-4}          # per step; delays in s
moments = {key: (np.zeros_like(get_param(net, key)), np.zeros_like(get_param(net, key))) for key in params}
history = []
for step in range(1, n_steps + 1):
    value, grads, rec = loss_and_grad(net, inputs, duration, loss, labels, params)
    scores = weighted_voltage_integral(rec, "out", tau_weight)
    history.append((value, np.mean(scores.argmax(axis=1) == labels)))
    for key in params:
        m, v = moments[key]
        m[:] = 0.9 * m + 0.1 * grads[key]
        v[:] = 0.999 * v + 0.001 * grads[key] ** 2
        update = lr[key[1]] * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-12)
        new = get_param(net, key) - update
        net = set_param(net, key, new.clip(0) if key[1] != "weight" else new)
loss_curve, accuracy = np.array(history).T
print(f"loss {loss_curve[0]:.3f} -> {loss_curve[-1]:.3f}, accuracy {accuracy[0]:.0%} -> {accuracy[-1]:.0%}")

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.plot(np.arange(1, n_steps + 1), loss_curve, color="tab:blue", label="loss")
ax.set(xlabel="step", ylabel="cross-entropy loss")
ax2 = ax.twinx()
ax2.plot(np.arange(1, n_steps + 1), accuracy * 100, color="tab:orange", label="accuracy")
ax2.axhline(50, color="gray", ls=":", lw=1, label="chance")
ax2.set(ylabel="training accuracy (%)", ylim=(0, 105))
fig.legend(loc="center right", fontsize="small", bbox_to_anchor=(0.85, 0.5))
plt.show()
