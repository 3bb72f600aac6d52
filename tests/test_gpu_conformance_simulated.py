"""The conformance suite (``tests/conformance``) on the GPU engine ("cuda") in numba's CUDA simulator.

Without a GPU the conformance suite skips the GPU engine (``engines.get_engine("cuda").supports`` names
the missing GPU); this file runs its cases in the simulator instead, in a pytest of its own (a file of
its own, so that the parallel test run gives it a worker of its own: ~2 minutes on one core). With a GPU
the suite runs them on the GPU and this test skips.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neurodelay.brian import gpu_visible

#: the conformance cases run for the GPU engine in the simulator: all of them but the finite-difference
#: cases of single losses (20-24 s each there); "combined" (first-spike cross-entropy plus a weighted
#: voltage integral) stays, and tests/test_layered_gpu.py compares the GPU engine's gradients with the
#: event engine's for it and for the maximum-voltage loss
SIMULATED_CONFORMANCE = "cuda and not (test_gradients_match_finite_differences and not combined)"


@pytest.mark.slow
@pytest.mark.skipif(gpu_visible(), reason="a GPU is visible: the conformance suite runs the GPU engine on it")
def test_conformance_suite_on_the_gpu_engine_in_the_cuda_simulator():
    """Without a GPU, tests/conformance skips the GPU engine; here its cases (closed forms, NEST, finite
    differences, delay-kind and ordering properties, state gradients) run in numba's CUDA simulator, in a
    pytest of its own (the simulator is chosen when numba.cuda is first imported): every case that the
    engine supports must pass."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/conformance",
                          "-k", SIMULATED_CONFORMANCE], env=env, capture_output=True, text=True, timeout=1500,
                         cwd=root)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    summary = out.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    # 41 cases at the time of writing (more may join); the skipped ones are the recurrent networks'
    assert passed is not None and int(passed.group(1)) >= 41, summary
    assert "failed" not in summary and "error" not in summary, summary
