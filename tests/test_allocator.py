"""neurodelay._allocator: freed memory kept in the process (glibc), so that repeated large allocations,
as a batch's trials make them, stop faulting their pages in again; the opt-out and bad settings."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from neurodelay import _allocator

# 12 rounds of what a trial of a recurrent group allocates at SHD size, on a worker thread (a thread's
# arena, as the engines' workers use): arrays of 16, 8 and 6 MiB held, and one grown 2 -> 4 -> 9 -> 18
# MiB (the time buckets), all freed at the end of the round; after keep_freed_memory(), prints whether
# it applied and the page faults of the last 10 rounds
_ROUNDS = r"""
import resource, threading
import numpy as np
from neurodelay._allocator import keep_freed_memory
applied = keep_freed_memory()
out = []
def work():
    for r in range(12):
        if r == 2:
            out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
        held = [np.ones(s << 17) for s in (16, 8, 6)]
        grown = np.ones(2 << 17)
        for s in (4, 9, 18):
            new = np.ones(s << 17)
            new[:len(grown)] = grown
            grown = new
        del held, grown, new
    out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
t = threading.Thread(target=work)
t.start(); t.join()
print(applied, out[1] - out[0])
"""

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="the settings apply to glibc's malloc only")


def _faults(setting: str) -> tuple[str, int]:
    env = dict(os.environ, NEURODELAY_KEEP_FREED_MEMORY=setting)
    done = subprocess.run([sys.executable, "-c", _ROUNDS], env=env, capture_output=True, text=True, check=True)
    applied, faults = done.stdout.split()
    return applied, int(faults)


@glibc
def test_freed_memory_is_reused_without_page_faults():
    """Without the settings (NEURODELAY_KEEP_FREED_MEMORY=0) the rounds fault in thousands of pages
    each (glibc hands heaps back and maps them again; 38k faults in 10 rounds when written); with them
    the pages of the first rounds are reused."""
    applied, kept = _faults("1")
    assert applied == "True"
    skipped, plain = _faults("0")
    assert skipped == "False"
    assert plain > 10 * 1000
    assert kept < plain / 10


def test_setting_checked(monkeypatch):
    """Only 0 and 1 are accepted; 0 applies nothing."""
    monkeypatch.setenv("NEURODELAY_KEEP_FREED_MEMORY", "yes")
    with pytest.raises(ValueError, match="NEURODELAY_KEEP_FREED_MEMORY must be 0 or 1, got 'yes'"):
        _allocator.keep_freed_memory()
    monkeypatch.setenv("NEURODELAY_KEEP_FREED_MEMORY", "0")
    assert _allocator.keep_freed_memory() is False
