"""
Input patterns for the analyses
===============================

:mod:`neurodelay.analysis.common` holds what every analysis module shares:
argument checks that name the bad argument, provenance attributes for the
xarray results, and generators of input spike patterns with explicit seeds
(the same seed gives the same spikes). This example draws the two pattern
ensembles: independent Poisson trains and the tempotron's single-spike
patterns (each afferent fires once per pattern), and shows the provenance an
analysis result carries.
"""

import brian2 as b2
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from neurodelay.analysis.common import poisson_trains, single_spike_patterns, with_provenance

poisson = poisson_trains(40, 20 * b2.Hz, 200 * b2.ms, n_trials=3, seed=1)
patterns = single_spike_patterns(3, 40, 50 * b2.ms, seed=2)
again = single_spike_patterns(3, 40, 50 * b2.ms, seed=2)
print("same seed, same spikes:", np.array_equal(patterns.time, again.time))

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
for ax, trains, title in [(axes[0], poisson, "poisson_trains: 40 neurons at 20 Hz, trial 0"),
                          (axes[1], patterns, "single_spike_patterns: 3 patterns of 40 afferents")]:
    trials = [0] if trains is poisson else range(trains.n_trials)
    for trial, color in zip(trials, ["tab:blue", "tab:orange", "tab:green"]):
        for i, times in enumerate(trains.per_neuron(trial)):
            ax.plot(times * 1e3, np.full(len(times), i), "|", color=color, ms=6,
                    label=f"pattern {trial}" if i == 0 and trains is patterns else None)
    ax.set(xlabel="time (ms)", ylabel="neuron / afferent", title=title)
axes[1].legend(fontsize="small", loc="upper right")

# %%
# Provenance
# ----------
# Every analysis returns xarray with SI values, ``units`` attributes and the
# parameters, seed, engine and neurodelay version that produced it.

counts = xr.DataArray(poisson.counts(), dims=("trial", "neuron"), attrs={"units": "1"})
result = with_provenance(counts.to_dataset(name="spike_count"), "example",
                         {"rate": 20.0, "duration": 0.2}, seed=1)
print({k: v for k, v in result.attrs.items() if k != "created"})
plt.show()
