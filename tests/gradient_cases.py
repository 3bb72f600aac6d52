"""Shared by the gradient tests (tests/test_gradients.py, tests/conformance/test_conformance_gradients.py):
the random networks, the losses and the finite-difference comparison."""

import numpy as np

from neurodelay import losses
from neurodelay.gradcheck import FD_STEP, finite_differences, parameter_keys, random_network

DURATION = 0.05
RTOL = 1e-5
STEP = FD_STEP   # finite-difference steps by parameter kind
_random_network = random_network
_keys = parameter_keys

# (seed, recurrent): chosen so that hidden neurons spike several times and the
# TTFS outputs include both firing and silent neurons (checked by the guard below)
NETWORKS = {"feedforward": (3, False), "recurrent": (1, True)}

LOSSES = {
    "first_spike_mse": lambda: losses.FirstSpikeMSE("ttfs", margin=2e-3),
    "first_spike_ce": lambda: losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3),
    "max_voltage_ce": lambda: losses.MaxVoltageCrossEntropy("out"),
    "exp_integral_ce": lambda: losses.WeightedIntegralCrossEntropy("out", tau_weight=20e-3),
    "mean_voltage_ce": lambda: losses.WeightedIntegralCrossEntropy("out"),
    "combined": lambda: (losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3)
                         + 0.5 * losses.WeightedIntegralCrossEntropy("out", tau_weight=10e-3)),
}

READOUT_LOSSES = {"max_voltage_ce", "exp_integral_ce", "mean_voltage_ce"}


def _finite_differences(net, inputs, loss, labels, key, engine="auto"):
    """Central differences of the batch-mean loss over DURATION (NaN where a step leaves the smooth branch)."""
    return finite_differences(net, inputs, DURATION, loss, labels, key, engine=engine)


def _assert_close(grad, fd, key):
    skipped = np.isnan(fd)
    assert skipped.mean() <= 0.1, f"{key}: {skipped.sum()} of {fd.size} coordinates left the smooth branch"
    grad, fd = np.atleast_1d(grad)[~np.atleast_1d(skipped)], np.atleast_1d(fd)[~np.atleast_1d(skipped)]
    scale = max(np.max(np.abs(fd), initial=0.0), 1e-12)
    err = np.max(np.abs(grad - fd), initial=0.0) / scale
    assert err <= RTOL, f"{key}: relative error {err:.2e}\nadjoint {grad}\nfinite differences {fd}"
