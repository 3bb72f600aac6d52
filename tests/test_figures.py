"""The delay-kinds demo, its figure and the `make figures` driver.

Physics checked on the demo's sweeps (derivations in the test docstrings):
a dendritic delay of the output neuron translates its first spike exactly;
an axonal or synaptic delay whose arrivals come after the output spike leaves
that spike exactly where it is without those synapses, and an excitatory input
can never delay a first spike.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.network import Network


@pytest.fixture(scope="module")
def demo(quick_analysis):
    """The demo analysis run in --quick mode into a temporary folder: (module, dataset, results folder)."""
    return quick_analysis("delay_kinds_demo")


def sweep(ds, kind: str) -> np.ndarray:
    """First spike times (s) of the shown output along one sweep, inf where it did not fire."""
    t = ds["first_spike_time"].sel(kind=kind).values
    return np.where(np.isnan(t), np.inf, t)


def test_figure_is_drawn_from_the_result_alone(demo, draw_offline):
    draw_offline("fig_delay_kinds.py", demo[2], "delay_kinds", min_png_bytes=20_000)


def test_dendritic_delay_of_the_output_translates_its_spike(demo):
    """Every synapse onto output o carries its dendritic delay b_o, and nothing else
    reaches o. o rests at V = I = 0 until its first arrival and the LIF equations
    are time-invariant, so raising b_o by D translates o's whole input, hence its
    trajectory and first spike, by exactly D: t*(b_o) - b_o is constant, and equal
    to the same difference in the unswept simulation stored with the sweep."""
    module, ds, _ = demo
    t = sweep(ds, "dendritic")
    b = ds["swept_delay"].values
    assert np.all(np.isfinite(t))
    offset = t - b
    assert np.ptp(offset) < 1e-14, f"t* - b_o varies by {np.ptp(offset):.3g} s"
    shown = int(ds.attrs["shown_neuron"])
    out_code = list(ds["population"].values).index("output")
    mine = (ds["spike_population"].values == out_code) & (ds["spike_neuron"].values == shown)
    t_record = ds["spike_time"].values[mine].min()
    baseline = float(ds["baseline_delay"].sel(kind="dendritic"))
    assert abs((t_record - baseline) - offset[0]) < 1e-14


def without_synapses(net: Network, pre: str, post: str, remove: np.ndarray) -> Network:
    """The same network with some synapses of one projection removed (everything else identical)."""
    out = Network().add(*net.populations)
    for proj in net.projections:
        keep = np.ones(proj.n_syn, bool)
        if (proj.pre, proj.post) == (pre, post):
            keep[remove] = False
        d = proj.delays
        delays = Delays(d.axonal, d.dendritic, None if d.synaptic is None else d.synaptic[keep])
        out = out.connect(proj.pre, proj.post, proj.weight[keep], (proj.pre_idx[keep], proj.post_idx[keep]), delays)
    return out


@pytest.mark.parametrize("kind", ["axonal", "synaptic"])
def test_late_arrivals_do_not_move_the_output_spike(demo, kind):
    """Let t0 be the first spike of output o with the swept synapses (those of the
    swept delay onto o) removed from the network. Up to the first arrival through them, the
    networks with and without them evolve identically (they start at rest, and
    only hidden->output delays are swept, so the hidden spikes are unchanged).
    Hence (a) if that first arrival comes at or after t*, then t* = t0 exactly;
    (b) with positive weights the extra PSPs only raise V before o's first
    spike (no reset yet), so t* <= t0 for every value of the delay."""
    module, ds, _ = demo
    seed = int(ds.attrs["seed"])
    net, inputs = module.build_network(seed), module.make_inputs(seed)
    proj = net.projection("hidden", "output")
    o = int(ds.attrs["shown_neuron"])
    index = int(ds["swept_index"].sel(kind=kind))
    h = int(ds["swept_pre_neuron"].sel(kind=kind))
    syns = (np.flatnonzero((proj.pre_idx == h) & (proj.post_idx == o)) if kind == "axonal"
            else np.array([index]))
    assert np.all(proj.pre_idx[syns] == h) and np.all(proj.post_idx[syns] == o)
    assert np.all(proj.weight[syns] > 0), "the derivation of (b) needs excitatory swept synapses"

    without = simulate(without_synapses(net, "hidden", "output", syns), inputs, module.DURATION, n_threads=1)
    t0 = without.first_spike_times("output")[0, o]

    hidden = list(ds["population"].values).index("hidden")
    mine = (ds["spike_population"].values == hidden) & (ds["spike_neuron"].values == h)
    t_h = ds["spike_time"].values[mine].min()  # first spike of the presynaptic hidden neuron
    values = ds["swept_delay"].values
    first_arrival = np.array([
        t_h + module.with_swept_delay(net, kind, index, v).projection("hidden", "output").total_delay()[syns].min()
        for v in values])
    t = sweep(ds, kind)

    assert np.all(t <= t0 + 1e-15), "an excitatory input delayed a first spike"  # 1e-15 s: rounding only
    late = first_arrival >= t
    assert late.any() and not late.all(), "the sweep should cover both causal and late arrivals"
    np.testing.assert_array_equal(t[late], np.full(late.sum(), t0))
    assert np.any(t[~late] < t0), "causal arrivals should advance the spike somewhere"


# ---- the driver ----------------------------------------------------------------------------------

FAKE_ANALYSIS = '''
import argparse, pathlib
RESULT = "good.nc"
EXPECTED_SECONDS = {"quick": 1, "default": 60, "full": 7200}
def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--full", action="store_true")
    a = p.parse_args(argv)
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("quick" if a.quick else "published" if a.full else "full")
    runs = out.with_suffix(".runs")
    runs.write_text((runs.read_text() if runs.exists() else "") + "x")
'''

FAKE_FIGURE = '''
import argparse, pathlib
def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--results")
    p.add_argument("--out")
    a = p.parse_args(argv)
    pathlib.Path(a.out).mkdir(parents=True, exist_ok=True)
    text = (pathlib.Path(a.results) / "good.nc").read_text()
    (pathlib.Path(a.out) / "a.txt").write_text(text)
    return 0
'''


def write_scripts(folder: Path, scripts: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in scripts.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_make_all_runs_missing_analyses_and_reports_failures(tmp_path, capfd, load_script):
    analyses = write_scripts(tmp_path / "analyses", {
        "good.py": FAKE_ANALYSIS,
        "broken.py": 'RESULT = "broken.nc"\ndef main(argv):\n    raise RuntimeError("boom")\n',
        "noresult.py": "def main(argv):\n    pass\n",
        "_helper.py": 'raise SystemExit("a helper must not be run")\n',
    })
    figures = write_scripts(tmp_path / "figures", {
        "fig_a.py": FAKE_FIGURE,
        "fig_b.py": "def main(argv):\n    return 3\n",
        "helper.py": 'raise SystemExit("not a figure")\n',
    })
    results, out = tmp_path / "results", tmp_path / "out"
    driver = load_script("paper_figures/make_all.py")
    args = ["--analyses", str(analyses), "--figures", str(figures), "--results", str(results), "--out", str(out)]

    assert driver.main(args + ["--quick"]) == 1
    log = capfd.readouterr().out
    assert (results / "good.nc").read_text() == "quick"
    assert (out / "a.txt").read_text() == "quick", "figures run after the analyses, on their results"
    for name in ("broken.py", "noresult.py", "fig_b.py"):
        assert any("FAILED" in line and name in line for line in log.splitlines()), name
    assert "_helper" not in log and "helper.py" not in log
    assert "2 ok, 0 skipped, 3 failed" in log

    assert driver.main(args) == 1
    assert (results / "good.runs").read_text() == "x", "an existing result must not be recomputed"
    assert "skipped" in capfd.readouterr().out

    driver.main(args + ["--force"])
    assert (results / "good.runs").read_text() == "xx"
    assert (results / "good.nc").read_text() == "full"


def test_make_all_rerun_and_full(tmp_path, capfd, load_script):
    """--rerun recomputes every result at the reduced scale into its own folders and draws from them;
    --full passes --full to scripts with a reduced default, prints the expected time first, and
    recomputes even existing results."""
    analyses = write_scripts(tmp_path / "analyses", {"good.py": FAKE_ANALYSIS})
    figures = write_scripts(tmp_path / "figures", {"fig_a.py": FAKE_FIGURE})
    driver = load_script("paper_figures/make_all.py")
    base = ["--analyses", str(analyses), "--figures", str(figures)]
    results, out = tmp_path / "results", tmp_path / "out"
    (results).mkdir()
    (results / "good.nc").write_text("committed")
    assert driver.main(base + ["--rerun", "--results", str(results), "--out", str(out)]) == 0
    assert (results / "good.nc").read_text() == "quick", "--rerun recomputes existing results, quickly"
    assert (out / "a.txt").read_text() == "quick"
    log = capfd.readouterr().out
    assert "1 analyses to run, expected about 0 min" in log
    assert driver.main(base + ["--full", "--results", str(results), "--out", str(out)]) == 0
    assert (results / "good.nc").read_text() == "published"
    assert "expected about 120 min" in capfd.readouterr().out
    with pytest.raises(SystemExit):
        driver.main(base + ["--rerun", "--quick"])


def test_every_figure_is_drawn_from_a_reduced_scale_result_in_the_suite(load_script):
    """What --rerun does for real, the suite does script by script: every figure script is drawn
    from a result its analysis wrote at a reduced scale (quick_analysis fixture or the analysis's own
    reduced run in its test file).
    Each fig_*.py reads the RESULT of one analysis, and some test draws it."""
    driver = load_script("paper_figures/make_all.py")
    produced = {driver.declared_result(p) for p in driver.analysis_scripts()}
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    for figure in driver.figure_scripts():
        module = load_script(f"paper_figures/{figure.name}")
        assert module.RESULT in produced, f"{figure.name} reads {module.RESULT}, which no analysis writes"
        assert figure.name in tests, f"no test draws {figure.name} from a reduced-scale result"


def test_make_all_runs_the_real_scripts(tmp_path, capfd, load_script):
    driver = load_script("paper_figures/make_all.py")
    status = driver.main(["--quick", "--only", "delay_kinds", "--results", str(tmp_path / "results"),
                          "--out", str(tmp_path / "out")])
    assert status == 0, capfd.readouterr().out
    assert (tmp_path / "results" / "delay_kinds_demo.nc").exists()
    assert (tmp_path / "out" / "delay_kinds.png").stat().st_size > 20_000


def test_make_all_finds_the_coincidence_analysis_and_figure(tmp_path, load_script):
    """make_all discovers analyses/coincidence.py (its RESULT) and fig_coincidence.py; both run in test_coincidence."""
    driver = load_script("paper_figures/make_all.py")
    steps = driver.plan(tmp_path / "results", tmp_path / "out", only="coincidence")
    assert [(s.kind, s.script.name) for s in steps] == [("analysis", "coincidence.py"),
                                                         ("figure", "fig_coincidence.py")]
    assert steps[0].expect == tmp_path / "results" / "coincidence.nc" and steps[0].status == "pending"


@pytest.mark.slow
def test_polychrony_figure_is_drawn_from_the_result_alone(quick_analysis, draw_offline):
    """The polychrony analysis in --quick mode (a 100 + 25 neuron network for 4 s) and its figure."""
    module, ds, results = quick_analysis("polychrony")
    assert set(ds["condition"].values) == {"real", "shuffled", "equal_delays", "delays_equalised"}
    assert np.all(ds["group_count"].values >= 0) and ds.attrs["model_time"] == 4.0
    draw_offline("fig_polychrony.py", results, "polychrony", min_png_bytes=20_000)
