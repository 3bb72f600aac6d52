"""The GPU engine ("cuda", :mod:`neurodelay.layered.gpu`) against the event engine.

The network of ``tests/test_layered.py`` (two sources, two LIF layers with a skip
projection, all three delay kinds, refractory and non-refractory neurons, a
closed-form layer, readouts and a TTFS layer) runs on the GPU engine: spike
counts must equal the event engine's, spike times within 1e-12 s, and the
gradients of every parameter kind (weights, the three delay kinds, tau_m, tau_s,
theta) for two losses within 1e-9 of the largest entry, also on the event
engine's own record; without the time constants, h1's reverse pass must take
the split kernel (:mod:`neurodelay.layered._split_reverse`). Without a GPU the kernels run in numba's CUDA simulator, in
a subprocess (the simulator is chosen when numba.cuda is first imported);
with a GPU (marked ``gpu``) the same checks run on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurodelay import engines, gradients
from neurodelay.brian import gpu_visible
from neurodelay.events import simulate_events
from neurodelay.layered import gpu as gpu_engine
from neurodelay.network import LIF, Network, SpikeSource
from test_layered import DURATION, LOSSES, _keys, layered_network

TIME_TOL = 1e-12
GRAD_RTOL = 1e-9


def compare(n_trials: int = 2, seed: int = 1) -> dict:
    """Largest differences between the GPU engine and the event engine (see the module docstring)."""
    net, inputs, labels = layered_network(seed, n_trials=n_trials)
    gpu = engines.get_engine("cuda")
    ref = simulate_events(net, inputs, DURATION)
    got = gpu.simulate(net, inputs, DURATION)
    out = _same_spikes(ref, got)
    # sampled voltages (readouts and a LIF layer), a bias current and a per-trial initial state
    rng = np.random.default_rng(seed)
    times = np.linspace(0.0, DURATION, 61)
    start = {"h1": {"v": rng.uniform(-0.5, 0.9, (n_trials, 24)), "i": rng.uniform(-1.0, 2.0, (n_trials, 24))}}
    biased = net.with_population("h2", bias=0.3)
    for label, (model, options) in {"sampled": (net, dict(record=["out", "h2"], sample_times=times)),
                                    "initial_state": (net, dict(initial_state=start, record=["h1"],
                                                                sample_times=times)),
                                    "bias": (biased, dict(record=["h2"], sample_times=times))}.items():
        want, have = (e(model, inputs, DURATION, **options) for e in (simulate_events, gpu.simulate))
        for key, value in _same_spikes(want, have).items():
            out[f"{label}/{key}"] = value
        out[f"{label}/max_dv"] = float(np.max(np.abs(want.voltage - have.voltage), initial=0.0))
        out[f"{label}/n_samples"] = int(have.voltage.size)
    kernels = set()
    for with_tau, name in ((True, "combined"), (True, "max_voltage_ce"), (False, "max_voltage_ce")):
        # without the time constants, h1's reverse pass is factored: the split kernel
        keys = _keys(net, with_tau)
        loss = LOSSES[name]()
        want = gradients.loss_and_grad(net, None, None, loss, labels, keys, record=ref, engine="events")
        for label, record in (("events_record", ref), ("own_record", got)):
            gpu_engine.kernel_seconds(True)
            have = gradients.loss_and_grad(net, None, None, loss, labels, keys, record=record, engine="cuda")
            kernels |= set(gpu_engine.kernel_seconds(False))
            run = f"{name}{'' if with_tau else '_without_tau'}/{label}"
            out[f"{run}/loss_rel"] = abs(have.loss - want.loss) / abs(want.loss)
            out[f"{run}/grad_rel"] = max(
                float(np.max(np.abs(have.grads[k] - want.grads[k])) / max(np.max(np.abs(want.grads[k])), 1e-300))
                for k in keys)
    out["reverse_kernels"] = sorted(k for k in kernels if k.startswith(("adjoint_layer", "split_reverse")))
    out["nonzero_grads"] = all(bool(np.any(want.grads[(p, "weight")] != 0)) for p in ("inp->h1", "h1->h2", "h2->out"))
    return out


def _same_spikes(ref, got) -> dict:
    a, b = (np.lexsort((r.time, r.neuron, r.trial)) for r in (ref, got))
    out = {"n_spikes": [len(ref.time), len(got.time)],
           "same_neurons": bool(len(a) == len(b) and np.array_equal(ref.neuron[a], got.neuron[b])
                                and np.array_equal(ref.trial[a], got.trial[b]))}
    if out["same_neurons"]:
        out["max_dt"] = float(np.max(np.abs(ref.time[a] - got.time[b]), initial=0.0))
        out["max_dg"] = float(np.max(np.abs(ref.i_minus_theta[a] - got.i_minus_theta[b]), initial=0.0))
    return out


def check(res: dict, run: str = "") -> None:
    res = {k[len(run):]: v for k, v in res.items() if k.startswith(run)}
    for prefix in ("", "sampled/", "initial_state/", "bias/"):
        n_ref, n_got = res[prefix + "n_spikes"]
        assert n_ref > 20 and n_ref == n_got, prefix
        assert res[prefix + "same_neurons"], prefix
        assert res[prefix + "max_dt"] <= TIME_TOL and res[prefix + "max_dg"] <= 1e-9, prefix
    for prefix in ("sampled/", "initial_state/", "bias/"):
        assert res[prefix + "n_samples"] > 0 and res[prefix + "max_dv"] <= 1e-12, prefix
    assert res["nonzero_grads"]
    # h1 without time constants takes the split reverse kernel, with them the per-neuron one
    assert {"split_reverse h1", "adjoint_layer h1"} <= set(res["reverse_kernels"])
    for key, value in res.items():
        if key.endswith("grad_rel"):
            assert value <= GRAD_RTOL, key
        if key.endswith("loss_rel"):
            assert value <= 1e-12, key


def test_gpu_engine_in_the_cuda_simulator():
    """Forward and reverse kernels, run by numba's CUDA simulator on the CPU, give the event engine's results."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, str(Path(__file__))], env=env, capture_output=True, text=True,
                         timeout=600, cwd=Path(__file__).parent)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    check(res)
    check(res, "grouped/")      # every trial in its own group of launches (tiny workspace budget)


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_visible(), reason="no GPU visible (nvidia-smi absent or failing)")
def test_gpu_engine_on_a_gpu():
    check(compare(n_trials=6))


def test_incoming_counts_are_the_same_dense_and_sparse(monkeypatch):
    """_incoming (the arrivals each neuron gets, which size the kernels' workspaces) gives the same counts
    from the dense product and from the sparse one, whole and by layer."""
    from neurodelay.flat import flatten
    from neurodelay.layered.plan import _plan
    net, _, _ = layered_network(1, n_trials=3)
    flat = flatten(net)
    plan = _plan(net, flat)
    synapses = gpu_engine._synapse_counts(plan, flat.n_neurons)
    counts = np.random.default_rng(0).integers(0, 9, (3, flat.n_neurons))
    dense = [gpu_engine._incoming(synapses, counts, off, size) for off, size, _, _ in plan.layers]
    whole = gpu_engine._incoming(synapses, counts)
    assert whole.sum() > 0
    monkeypatch.setattr(gpu_engine, "DENSE_INCOMING", 0)
    for (off, size, _, _), got in zip(plan.layers, dense):
        np.testing.assert_array_equal(got, gpu_engine._incoming(synapses, counts, off, size))
        np.testing.assert_array_equal(got, whole[:, off: off + size])
    np.testing.assert_array_equal(whole, gpu_engine._incoming(synapses, counts))


def test_gpu_engine_refuses_what_it_does_not_run():
    """Recurrent networks are refused with their reason; the GPU engine is never chosen by "auto"."""
    gpu = engines.get_engine("cuda")
    rec = Network().add(SpikeSource("a", 2), LIF("h", 3)).connect("a", "h", 0.5).connect("h", "h", 0.1)
    assert "recurrent" in gpu.supports(rec)
    with pytest.raises(ValueError, match="cannot run this network: .*recurrent"):
        engines.get_engine("cuda", rec)
    assert "cuda" not in engines.available_engines()[:2]     # never chosen by "auto" before events


if __name__ == "__main__":     # the simulator run of test_gpu_engine_in_the_cuda_simulator
    result = compare()
    gpu_engine.WORKSPACE_BYTES = 1
    result.update({f"grouped/{k}": v for k, v in compare().items()})
    print(json.dumps(result))
