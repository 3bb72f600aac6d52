"""
Training from Python and from the command line
==============================================

:mod:`neurodelay.train` trains weights, delays and time constants on the
published tasks (:mod:`neurodelay.data`) with Adam, a learning rate per
parameter kind, delays kept in [0, d_max], checkpoints written atomically and
a history as an :class:`xarray.Dataset`. The ``neurodelay`` command runs the
same code; both write the same files.

Here the two-neuron **sequence-detection** task is trained from Python (only
synaptic delays are trained, from the worst start: the readouts must tell
"A then B" from "B then A", which only delays can do) and a short Yin-Yang
run from the command line.
"""

import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from neurodelay.cli import main as neurodelay_command
from neurodelay.io import read_netcdf
from neurodelay.train import RunConfig, train_run

QUICK = os.environ.get("NEURODELAY_GALLERY_QUICK") == "1"   # reduced scale for CI

# %%
# From Python
# -----------
# :class:`~neurodelay.train.config.RunConfig` holds every setting (None: the
# task's default); :func:`~neurodelay.train.runs.train_run` returns the
# trained model with its history and the evaluation on the test split.

result, test = train_run(RunConfig(task="sequence", learn=["synaptic"], epochs=2 if QUICK else 5),
                         progress=False)
print(f"stopped: {result.stop_reason} after {result.epoch} epochs; "
      f"test accuracy {test.attrs['accuracy']:.1%}")
print(list(result.history.data_vars)[:8], "...")

history = result.history
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
axes[0].plot(history["epoch"], history["train_loss"], "o-", label="train")
axes[0].set(xlabel="epoch", ylabel="loss", title="sequence detection: loss")
axes[1].plot(history["epoch"], 100 * history["train_accuracy"], "o-", label="train")
axes[1].plot(history["epoch"], 100 * history["validation_accuracy"], "s--", label="validation")
axes[1].axhline(50, color="gray", ls=":", lw=1, label="chance (2 classes)")
axes[1].set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 105), title="accuracy")
axes[1].legend(fontsize="small")
for ax in axes:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))

# %%
# From the command line
# ---------------------
# ``neurodelay train TASK ...`` is :func:`neurodelay.cli.main`; calling it
# with the arguments of the command line runs exactly what the shell command
# runs::
#
#     neurodelay train yinyang --learn weight,synaptic --epochs 3 --out runs/yy
#     neurodelay evaluate runs/yy/best.nc --quantise 1e-3
#
# The output folder holds ``config.json``, the checkpoints ``last.nc`` and
# ``best.nc``, ``history.nc`` and ``evaluation.nc``.

out = Path(tempfile.mkdtemp()) / "yy"
epochs = 2 if QUICK else 6
n_train = 300 if QUICK else 1500
assert neurodelay_command(["train", "yinyang", "--learn", "weight,synaptic", "--epochs", str(epochs),
                           "--n-train", str(n_train), "--n-test", "500", "--out", str(out),
                           "--no-progress"]) == 0
print(sorted(p.name for p in out.iterdir()))
assert neurodelay_command(["evaluate", str(out / "best.nc"), "--quantise", "1e-3"]) == 0

cli_history = read_netcdf(out / "history.nc")
evaluation = read_netcdf(out / "evaluation.nc")
fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="constrained")
ax.plot(cli_history["epoch"], 100 * cli_history["train_accuracy"], "o-", label="train")
ax.plot(cli_history["epoch"], 100 * cli_history["validation_accuracy"], "s--", label="validation")
ax.axhline(100 * evaluation.attrs["accuracy"], color="tab:green", lw=1,
           label=f"test, final network ({evaluation.attrs['accuracy']:.1%})")
ax.axhline(100 / 3, color="gray", ls=":", lw=1, label="chance (3 classes)")
ax.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 105), title=f"Yin-Yang, {n_train} training points")
ax.legend(fontsize="small", loc="lower right")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
plt.show()
