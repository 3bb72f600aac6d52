"""
Coincidence detection
=====================

:mod:`neurodelay.analysis.coincidence` asks how close in time two input spikes
must arrive for the project's LIF neuron to fire (König, Engel & Singer 1996):
the coincidence window from the exact trajectory, and the firing probability
when each spike is jittered, by exact simulation against the analytic law.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from neurodelay.analysis import coincidence

QUICK = os.environ.get("NEURODELAY_GALLERY_QUICK") == "1"   # reduced scale for CI

# %%
# The window against tau_m, for single PSPs peaking at 0.6 and 0.9 of threshold
tau_m = np.geomspace(3e-3, 50e-3, 12)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for peak in (0.6, 0.9):
    window = [float(coincidence.coincidence_window(tm, 2e-3, coincidence.weight_for_psp_peak(peak, tm, 2e-3)))
              for tm in tau_m]
    axes[0].plot(tau_m * 1e3, np.array(window) * 1e3, marker="o", label=f"PSP peak {peak} theta")
axes[0].set(xscale="log", yscale="log", xlabel="tau_m (ms)", ylabel="coincidence window (ms)",
            title="window vs tau_m (tau_s = 2 ms)")
axes[0].legend()

# %%
# Firing probability against the interval, for Gaussian jitter of each spike
curve = coincidence.coincidence_curve(np.linspace(0, 12e-3, 7 if QUICK else 13), [0.0, 1e-3, 3e-3],
                                      n_trials=100 if QUICK else 1000, seed=1)
for sigma in curve["jitter"].values:
    c = curve.sel(jitter=sigma)
    axes[1].plot(c["delta_t"] * 1e3, c["p_fire"], "o", label=f"simulated, sigma {sigma * 1e3:g} ms")
    axes[1].plot(c["delta_t"] * 1e3, c["p_fire_analytic"], "-", color=axes[1].lines[-1].get_color())
axes[1].set(xlabel="interval between the two spikes (ms)", ylabel="P(output spike)",
            title="exact simulation (dots) vs analytic (lines)")
axes[1].legend(fontsize="small")
plt.show()
