"""brian2cuda: the CUDA project is generated and compiled without a GPU; on a GPU it agrees with C++ standalone.

* compiling a CUDA project without a GPU (needs nvcc only) is tested once, by
  tests/test_brian_plasticity.py::test_cuda_project_of_the_rule_compiles_without_gpu:
  its project holds a precise-mode network (LIF with refractoriness, readouts,
  axonal and synaptic delays) plus the rule, and it checks the CUDA 13 set-up
  (C++17, cuRAND from the nvidia-curand wheel, compute capability 9.0 when no
  GPU is visible, no -use_fast_math in precise mode) that
  neurodelay.brian.devices does. Each nvcc build takes 100-150 s on 2 cores
  (the time goes on parsing thrust and cuRAND headers in every file), so CI
  builds one project.
* test_cuda_matches_cpp_standalone (gpu): needs a visible GPU (nvidia-smi);
  run with ``.venv/bin/python -m pytest -q -m gpu tests/test_brian_cuda.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodelay.brian import BrianSimulator, gpu_visible, nvcc_path
from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.spikes import SpikeTrains


needs_nvcc = pytest.mark.skipif(nvcc_path() is None, reason="nvcc (CUDA toolkit) not found")
needs_gpu = pytest.mark.skipif(not gpu_visible(), reason="no GPU visible (nvidia-smi absent or failing)")


def two_layer(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    n_in, n_h, n_o = 60, 50, 30
    net = Network().add(
        SpikeSource("inp", n_in),
        LIF("hid", n_h, tau_m=rng.uniform(8e-3, 20e-3, n_h), tau_s=rng.uniform(2e-3, 6e-3, n_h), refractory=1e-3),
        LIF("out", n_o, tau_m=rng.uniform(8e-3, 20e-3, n_o), tau_s=rng.uniform(2e-3, 6e-3, n_o), refractory=1e-3))

    def delays(n_pre, n_post):
        return Delays(axonal=rng.uniform(0.1e-3, 3e-3, n_pre), dendritic=rng.uniform(0.1e-3, 3e-3, n_post),
                      synaptic=rng.uniform(0.0, 4e-3, n_pre * n_post))

    net = net.connect("inp", "hid", rng.normal(0.25, 0.35, n_in * n_h), delays=delays(n_in, n_h))
    return net.connect("hid", "out", rng.normal(0.35, 0.35, n_h * n_o), delays=delays(n_h, n_o))


def poisson(seed: int, n: int, trials: int, duration: float, rate: float = 20.0) -> SpikeTrains:
    rng = np.random.default_rng(seed)
    return SpikeTrains.from_lists([[np.sort(rng.uniform(0, duration, rng.poisson(rate * duration)))
                                    for _ in range(n)] for _ in range(trials)], n_neurons=n)


@pytest.mark.gpu
@pytest.mark.slow
@needs_nvcc
@needs_gpu
@pytest.mark.parametrize("mode", ["grid", "precise"])
def test_cuda_matches_cpp_standalone(mode):
    """Same spikes as C++ standalone: identical in grid mode, within 1 us in precise mode; and a
    run_args re-run with new weights and delays on the GPU agrees with C++ standalone too."""
    net, duration = two_layer(1), 0.3
    inputs = poisson(2, net["inp"].n, 2, duration)
    net_b = net.with_projection("inp", "hid", weight=net.projection("inp", "hid").weight * 1.1,
                                synaptic=np.random.default_rng(3).uniform(0, 4e-3, net.projection("inp", "hid").n_syn))
    records = {}
    for device in ("cpp_standalone", "cuda_standalone"):
        sim = BrianSimulator(net, duration, mode=mode, dt=1e-4, device=device, max_input_spikes=30)
        records[device] = (sim.run(inputs), sim.run(inputs, network=net_b))
    for cpp, gpu in zip(records["cpp_standalone"], records["cuda_standalone"]):
        assert len(cpp.time) > 200
        np.testing.assert_array_equal(gpu.trial, cpp.trial)
        np.testing.assert_array_equal(gpu.neuron, cpp.neuron)
        if mode == "grid":
            np.testing.assert_array_equal(gpu.time, cpp.time)
        else:
            assert np.abs(gpu.time - cpp.time).max() < 1e-6
    if mode == "precise":
        exact = simulate(net, inputs, duration)
        rec = records["cuda_standalone"][0]
        a, b = exact.spikes("hid"), rec.spikes("hid")
        assert len(a) == len(b) and np.mean(np.abs(np.sort(a.time) - np.sort(b.time)) < 1e-6) > 0.9
