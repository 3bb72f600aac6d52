"""The gradient-check analysis (adjoint vs finite differences, cost vs maximum delay) and its figure.

The analysis is run in --quick mode; the stored data must show what the
figure claims: adjoint gradients that agree with central finite differences
of the exact forward engine for every parameter kind, on coordinates that
mostly stay on the smooth branch and carry non-zero gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodelay.gradcheck import random_network
from neurodelay.gradients import loss_and_grad

KINDS = {"weight", "synaptic", "axonal", "dendritic", "tau_m", "tau_s", "theta"}


@pytest.fixture(scope="module")
def check(quick_analysis):
    """The analysis run in --quick mode into a temporary folder: (module, dataset, results folder)."""
    return quick_analysis("gradient_check")


def test_every_kind_network_and_loss_is_compared(check):
    module, ds, _ = check
    assert set(ds["kind"].values) == KINDS
    assert ds["shared"].values.any() and not ds["shared"].values.all()
    assert set(ds["network"].values) == set(module.NETWORKS)
    assert set(ds["loss"].values) == set(module.LOSSES)
    for net in module.NETWORKS:
        for loss in module.LOSSES:
            sel = (ds["network"].values == net) & (ds["loss"].values == loss)
            assert KINDS <= set(ds["kind"].values[sel]), (net, loss)


def test_adjoint_agrees_with_finite_differences(check):
    _, ds, _ = check
    skipped = ds["skipped"].values
    assert skipped.mean() <= 0.1, f"{skipped.sum()} of {skipped.size} coordinates left the smooth branch"
    adjoint, fd = ds["adjoint"].values[~skipped], ds["finite_difference"].values[~skipped]
    assert np.all(np.isfinite(adjoint)) and np.all(np.isfinite(fd))
    assert np.mean(np.abs(fd) > 1e-6) > 0.8, "most compared gradients must be substantial"
    size = np.maximum(np.abs(adjoint), np.abs(fd))
    relative = np.divide(np.abs(adjoint - fd), size, out=np.full_like(size, np.nan), where=size > 0)
    np.testing.assert_allclose(ds["relative_error"].values[~skipped], relative, rtol=1e-12)   # NaN: both 0
    assert np.nanmedian(relative) < 1e-6
    for kind in KINDS:
        sel = ds["kind"].values[~skipped] == kind
        assert np.nanmedian(relative[sel]) < 1e-6, kind
    assert np.nanmax(ds["scaled_error"].values) <= 1e-5      # the bound of tests/test_gradients.py


def test_stored_coordinates_point_at_the_right_parameters(check):
    """Recompute the adjoint of the largest stored gradient of each kind from its (network, loss, key, index)."""
    module, ds, _ = check
    for kind in sorted(KINDS):
        sel = np.flatnonzero(ds["kind"].values == kind)
        row = sel[np.argmax(np.abs(ds["adjoint"].values[sel]))]
        seed, recurrent = module.NETWORKS[str(ds["network"].values[row])]
        net, inputs, labels = random_network(seed, recurrent, n_trials=int(ds.attrs["n_trials"]))
        key = tuple(str(ds["key"].values[row]).split("."))
        grad = loss_and_grad(net, inputs, module.DURATION, module.LOSSES[str(ds["loss"].values[row])](), labels,
                             [key], engine="events").grads[key]   # the engine that produced the result
        # the stored result was computed by an earlier build of the kernels: rounding may differ in the
        # last bits (compiler inlining), a wrong coordinate would differ at order one
        assert grad.reshape(-1)[int(ds["index"].values[row])] == pytest.approx(ds["adjoint"].values[row],
                                                                              rel=1e-12, abs=0), key


def test_cost_sweep_is_complete(check):
    _, ds, _ = check
    assert ds.sizes["max_delay"] >= 3 and list(ds["case"].values) == ["feedforward", "recurrent"]
    for name in ("forward_ms_per_trial", "backward_ms_per_trial", "forward_cpu_ms_per_trial",
                 "backward_cpu_ms_per_trial"):
        assert ds[name].attrs["units"] == "ms"
        assert np.all(np.isfinite(ds[name].values)) and np.all(ds[name].values > 0), name
    assert np.all(ds["hidden_spikes_per_trial"].values > 0), "the timed network must be active"


def test_figure_is_drawn_from_the_result_alone(check, draw_offline):
    draw_offline("fig_gradients.py", check[2], "gradients", min_png_bytes=50_000)
