"""
Describe a network with the three delay kinds
=============================================

A spike of neuron *i* reaches neuron *j* after the transmission delay

.. math:: d_{ji} = a_i + b_j + s_{ji}

with an **axonal** delay :math:`a_i` (one per presynaptic neuron), a
**dendritic** delay :math:`b_j` (one per postsynaptic neuron) and a
**synaptic** delay :math:`s_{ji}` (one per synapse). A projection may use
any combination of the three; kinds left out are zero. Times are floats in
seconds or Brian2 quantities.

This example describes a 20 -> 10 -> 2 network, draws its delay matrix and
simulates it exactly: the exact engine has no time step, so the hidden
neurons' spike times are exact to floating-point precision.
"""

import brian2 as b2
import matplotlib.pyplot as plt
import numpy as np

from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains

rng = np.random.default_rng(0)
net = Network().add(
    SpikeSource("inp", 20),
    LIF("hid", 10, tau_m=10 * b2.ms, tau_s=5 * b2.ms, theta=1.0, refractory=1 * b2.ms),
    Readout("out", 2, tau_m=20 * b2.ms, tau_s=5 * b2.ms),
)
net = net.connect("inp", "hid", weight=rng.normal(0.4, 0.3, 200),
                  delays=Delays(axonal=rng.uniform(0, 5, 20) * b2.ms,       # one per input neuron
                                dendritic=rng.uniform(0, 2, 10) * b2.ms,    # one per hidden neuron
                                synaptic=rng.uniform(0, 5, 200) * b2.ms))   # one per synapse
net = net.connect("hid", "out", weight=0.5, delays=Delays(dendritic=[1, 3] * b2.ms))
print(net.names)

# %%
# The delays of a projection
# --------------------------
# :meth:`~neurodelay.network.Projection.total_delay` adds the three kinds up
# per synapse; here they are laid out as a (hidden x input) matrix next to
# their parts. Bad values are refused with a message naming the problem.

proj = net.projection("inp", "hid")
total = np.zeros((10, 20))
total[proj.post_idx, proj.pre_idx] = proj.total_delay()
synaptic = np.zeros((10, 20))
synaptic[proj.post_idx, proj.pre_idx] = proj.delays.synaptic

fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), width_ratios=[1, 0.25, 1, 1.25],
                         layout="constrained")
axes[0].bar(np.arange(20), proj.delays.axonal * 1e3, color="tab:blue")
axes[0].set(title="axonal (per input)", xlabel="input neuron i", ylabel="delay (ms)")
axes[1].barh(np.arange(10), proj.delays.dendritic * 1e3, color="tab:green")
axes[1].set(title="dendritic", xlabel="ms", ylabel="hidden neuron j")
axes[1].invert_yaxis()
axes[2].imshow(synaptic * 1e3, cmap="viridis", vmin=0, vmax=12, aspect="auto")
axes[2].set(title="synaptic (per synapse)", xlabel="input neuron i")
im = axes[3].imshow(total * 1e3, cmap="viridis", vmin=0, vmax=12, aspect="auto")
axes[3].set(title="total $a_i + b_j + s_{ji}$", xlabel="input neuron i")
fig.colorbar(im, ax=axes[3], label="delay (ms)")

try:
    net.with_projection("inp", "hid", axonal=np.full(20, -1.0) * b2.ms)
except ValueError as err:
    print("refused:", err)

# %%
# Simulate exactly
# ----------------
# Eight trials of random input spikes; the engine records every spike and
# samples V of the readout on a grid.

inputs = SpikeTrains.from_lists(
    [[np.sort(rng.uniform(0, 0.1, 5)) for _ in range(20)] for _ in range(8)], n_neurons=20)
sample_times = np.linspace(0, 0.1, 401)
rec = simulate(net, inputs, duration=0.1, record=["hid", "out"], sample_times=sample_times)
hid = rec.spikes("hid")
print(f"{len(hid.time)} hidden spikes in {rec.n_trials} trials")

trial = 0
fig, axes = plt.subplots(3, 1, figsize=(7, 6), sharex=True, height_ratios=[1.2, 1, 1.2],
                         layout="constrained")
for i, times in enumerate(inputs.per_neuron(trial)):
    axes[0].plot(times * 1e3, np.full(len(times), i), "|", color="k", ms=5)
for j, times in enumerate(hid.per_neuron(trial)):
    axes[1].plot(times * 1e3, np.full(len(times), j), "|", color="tab:red", ms=7)
v_hid = rec.voltages("hid")[trial]
axes[2].plot(sample_times * 1e3, v_hid[:, 0], color="tab:red", label="hidden neuron 0")
axes[2].plot(sample_times * 1e3, rec.voltages("out")[trial], lw=1, label=["readout 0", "readout 1"])
axes[2].axhline(1.0, color="gray", ls="--", lw=1, label="threshold (hidden)")
axes[0].set(ylabel="input neuron", title=f"trial {trial}")
axes[1].set(ylabel="hidden neuron", ylim=(-0.5, 9.5))
axes[2].set(xlabel="time (ms)", ylabel="V (threshold = 1)")
axes[2].legend(loc="upper left", fontsize="small", ncols=2)
plt.show()
