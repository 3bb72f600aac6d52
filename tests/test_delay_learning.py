"""The delay-learning analysis (delays before, during and after training) and its figure."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def result(quick_analysis):
    return quick_analysis("delay_learning")


def test_figure_is_drawn_from_the_result_alone(result, draw_offline):
    draw_offline("fig_delay_learning.py", result[2], "delay_learning", min_png_bytes=20_000)


@pytest.mark.parametrize("kind", ["axonal", "dendritic", "synaptic"])
def test_recorded_delays_are_the_trained_ones(result, kind):
    """Epoch 0's quantiles are those of the initial delays and the last epoch's those of the
    final ones (independently stored arrays); every delay stays inside [0, d_max]; and
    training moved the delays (a trajectory that never changes would mean the snapshots
    were not read from the running model)."""
    _, ds, _ = result
    d_max = ds.attrs[f"{kind}_d_max"]
    names = [v[: -len("_initial")] for v in ds.data_vars if v.startswith(kind) and v.endswith("_initial")]
    assert len(names) == 2
    moved = 0.0
    for name in names:
        q = ds[f"{name}_quantile"].values
        levels = ds["quantile"].values
        np.testing.assert_allclose(q[0], np.quantile(ds[f"{name}_initial"].values, levels), rtol=0, atol=1e-15)
        np.testing.assert_allclose(q[-1], np.quantile(ds[f"{name}_final"].values, levels), rtol=0, atol=1e-15)
        for key in ("initial", "final"):
            values = ds[f"{name}_{key}"].values
            assert np.all((values >= 0) & (values <= d_max + 1e-15))
        moved = max(moved, np.max(np.abs(ds[f"{name}_final"].values - ds[f"{name}_initial"].values)))
    assert moved > 1e-6, f"{kind} delays did not move during training"
