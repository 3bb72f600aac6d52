"""The online-vs-exact comparison analysis (issue #16 part 3) at its --quick scale, and its figure.

Checks against counts made independently of the analysis: the trained parameters of each parameter
set (Yin-Yang 5 -> 8 -> 3: 64 weights; with synaptic delays twice that), the online rule's memory
per trial from its trace count (4 numbers per plastic LIF synapse, 4 per neuron), the exact rule's
at least the input spikes' record; cosines only for the online rule, inside [-1, 1].
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def comparison(quick_analysis):
    return quick_analysis("online_vs_exact")


def test_every_quick_point_ran_and_parameter_counts_match_the_network(comparison):
    _, ds, _ = comparison
    assert (ds["status"].values == "ok").all()
    n_syn = 5 * 8 + 8 * 3
    expected = {"weights": n_syn, "weights+delays": 2 * n_syn, "weights+delays@grid": 2 * n_syn}
    for params, n in expected.items():
        np.testing.assert_array_equal(ds["n_params"].sel(params=params).values, n)
    acc = ds["test_accuracy"].values
    assert np.all((acc >= 0) & (acc <= 1))
    assert np.all(ds["train_time"].values > 0)


def test_memory_per_trial_follows_the_state_each_rule_keeps(comparison):
    module, ds, _ = comparison
    n_neurons, n_syn = 5 + 8 + 3, 5 * 8 + 8 * 3
    online = ds["memory_per_trial"].sel(rule="three-factor").values
    np.testing.assert_allclose(online, 8 * (4 * n_syn + 4 * n_neurons))
    exact = ds["memory_per_trial"].sel(rule="eventprop").values
    # at least the 5 input spikes of every Yin-Yang trial (4 coordinates + bias) and the adjoint state
    assert np.all(exact >= module.RECORD_BYTES_PER_SPIKE * 5 + 16 * n_neurons)


def test_cosines_are_for_the_online_rule_only(comparison):
    _, ds, _ = comparison
    assert np.isnan(ds["cosine"].sel(rule="eventprop").values).all()
    c = ds["cosine"].sel(rule="three-factor")
    assert np.isfinite(c.sel(kind="weight").values).all()
    assert np.isnan(c.sel(params="weights", kind="synaptic").values).all()
    assert np.isfinite(c.sel(params="weights+delays", kind="synaptic").values).all()
    assert np.all(np.abs(c.values[np.isfinite(c.values)]) <= 1 + 1e-12)


def test_online_vs_exact_figure_is_drawn_from_the_result_alone(comparison, draw_offline):
    draw_offline("fig_online_vs_exact.py", comparison[2], "online_vs_exact", min_png_bytes=20_000)


def test_update_replaces_only_the_rerun_tasks(comparison):
    """--update: a rerun task's rows replace that task's, the other tasks' rows and settings stay."""
    import json

    module, ds, _ = comparison
    other = ds.assign_coords(task=["digits"])
    other = other.assign(test_accuracy=other["test_accuracy"] * 0 + 0.25)
    other.attrs["scale_settings"] = json.dumps(dict(json.loads(ds.attrs["scale_settings"]), tasks=["digits"],
                                                    task={"digits": {"epochs": 7}}))
    merged = module.merge_tasks(ds, other)
    assert list(merged["task"].values) == ["yinyang", "digits"]
    np.testing.assert_array_equal(merged["test_accuracy"].sel(task="yinyang"), ds["test_accuracy"].sel(task="yinyang"))
    assert (merged["test_accuracy"].sel(task="digits").values == 0.25).all()
    settings = json.loads(merged.attrs["scale_settings"])
    assert settings["tasks"] == ["yinyang", "digits"] and settings["task"]["digits"] == {"epochs": 7}
    assert settings["task"]["yinyang"] == json.loads(ds.attrs["scale_settings"])["task"]["yinyang"]
    again = module.merge_tasks(merged, other.assign(test_accuracy=other["test_accuracy"] * 0 + 0.5))
    assert list(again["task"].values) == ["yinyang", "digits"]
    assert (again["test_accuracy"].sel(task="digits").values == 0.5).all()
    assert json.loads(again.attrs["sweep_counts"])["ok"] == int((again["status"].values == "ok").sum())
    with pytest.raises(ValueError, match="seed"):
        module.merge_tasks(ds, other.isel(seed=[]))


def test_params_option_runs_only_the_named_sets_and_refuses_unknown_ones(comparison, tmp_path, capsys):
    module, _, _ = comparison
    for bad, message in ((["--params", "weights,delays"], "--params: unknown parameter set(s) ['delays']"),
                         (["--tasks", "mnist"], "--tasks: unknown task(s) ['mnist']"),
                         (["--seeds", "0"], "--seeds must be >= 1, got 0")):
        with pytest.raises(SystemExit) as exit_info:
            module.main(["--quick", *bad, "--out", str(tmp_path / "x.nc")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()
    from neurodelay.io import read_netcdf

    assert module.main(["--quick", "--params", "weights", "--out", str(tmp_path / module.RESULT),
                        "--no-progress"]) == 0
    ds = read_netcdf(tmp_path / module.RESULT)
    assert list(ds["params"].values) == ["weights"] and (ds["status"].values == "ok").all()


def test_full_scale_result_is_drawn_too_where_it_exists(comparison, tmp_path, load_script):
    """paper_figures/fig_online_vs_exact.py also draws online_vs_exact_full.nc (the --full run) when the
    results folder has it, as a second image, and only then."""
    import shutil

    _, _, results = comparison
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copy(results / "online_vs_exact.nc", folder / "online_vs_exact.nc")
    figure = load_script("paper_figures/fig_online_vs_exact.py")
    out = tmp_path / "out"
    assert figure.main(["--results", str(folder), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["online_vs_exact.pdf", "online_vs_exact.png"]
    shutil.copy(results / "online_vs_exact.nc", folder / "online_vs_exact_full.nc")
    assert figure.main(["--results", str(folder), "--out", str(out)]) == 0
    assert (out / "online_vs_exact_full.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "online_vs_exact_full.pdf").read_bytes()[:5] == b"%PDF-"
