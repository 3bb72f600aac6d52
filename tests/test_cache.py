"""The compiled-code cache: one folder per user (or $NEURODELAY_CACHE) for numba and Brian2, whatever
the entry point, and a first simulate that compiles and imports only what it needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurodelay import cache_root
from neurodelay.brian.devices import build_directory, runtime_preferences

ROOT = Path(__file__).resolve().parents[1]


def _fresh_python(code: str, env: dict, cwd: Path) -> dict:
    """Run `code` in a new interpreter with exactly `env` (plus PATH/HOME); returns its last line as JSON."""
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "SYSTEMROOT") if k in os.environ}
    out = subprocess.run([sys.executable, "-c", code], env={**base, "MPLBACKEND": "Agg", **env},
                         capture_output=True, text=True, cwd=cwd, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cache_root_rule(monkeypatch, tmp_path):
    monkeypatch.delenv("NEURODELAY_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "neurodelay"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "neurodelay"
    monkeypatch.setenv("NEURODELAY_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    # Brian2's compiled code lives under the same root
    assert Path(runtime_preferences()["codegen.runtime.cython.cache_dir"]) == tmp_path / "mine" / "cython"
    assert build_directory("cpp_standalone", "precise", "abc").is_relative_to(tmp_path / "mine")


_FIRST_SIMULATE = r"""
import json, os, sys
{pre}
import numpy as np
from neurodelay import simulate
from neurodelay.events import adjoint_kernel, readout
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.spikes import SpikeTrains
import numba
net = Network().add(SpikeSource("inp", 2), LIF("hid", 1, tau_m=0.01, tau_s=0.005, theta=1.0))
net = net.connect("inp", "hid", weight=4.0)
rec = simulate(net, SpikeTrains.from_lists([[np.array([0.001]), np.array([0.002])]]), 0.02)
print(json.dumps({{"numba_cache_dir": numba.config.CACHE_DIR, "env": os.environ.get("NUMBA_CACHE_DIR"),
                  "n_spikes": int(len(rec.time)), "brian2": "brian2" in sys.modules,
                  "adjoint_compiled": [f.__name__ for f in (adjoint_kernel.replay_trial, adjoint_kernel.reverse_trial,
                                       readout._gather) if f.signatures]}}))
"""


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("neurodelay-cache")


@pytest.mark.parametrize("numba_first", [False, True])   # the first run compiles, the second loads
def test_numba_cache_goes_to_the_cache_root_from_a_plain_script(tmp_path, shared_cache, numba_first):
    """No NUMBA_CACHE_DIR, a script outside the repository: kernels land in $NEURODELAY_CACHE/numba
    (also when numba was imported before neurodelay), nothing in __pycache__, brian2 never imported,
    and a first simulate compiles none of the gradient kernels."""
    in_tree = set((ROOT / "neurodelay").rglob("*.nbi"))
    env = {"NEURODELAY_CACHE": str(shared_cache), "PYTHONPATH": str(ROOT)}
    result = _fresh_python(_FIRST_SIMULATE.format(pre="import numba" if numba_first else ""), env, tmp_path)
    assert result["n_spikes"] >= 1
    assert result["env"] == result["numba_cache_dir"] == str(shared_cache / "numba")
    assert list((shared_cache / "numba").rglob("*.nbi")), "no numba index file in the cache folder"
    assert set((ROOT / "neurodelay").rglob("*.nbi")) == in_tree, "numba wrote into the source tree"
    assert not result["brian2"], "a first simulate imported brian2"
    assert result["adjoint_compiled"] == [], "a first simulate compiled gradient kernels"


def test_explicit_numba_cache_dir_wins(tmp_path):
    env = {"NEURODELAY_CACHE": str(tmp_path / "root"), "NUMBA_CACHE_DIR": str(tmp_path / "numba-here"),
           "PYTHONPATH": str(ROOT)}
    code = ("import json, neurodelay, numba; "
            "print(json.dumps({'dir': numba.config.CACHE_DIR, 'root': str(neurodelay.cache_root())}))")
    result = _fresh_python(code, env, tmp_path)
    assert result == {"dir": str(tmp_path / "numba-here"), "root": str(tmp_path / "root")}
