"""Keeping freed memory in the process (glibc's malloc), so that a batch's trials reuse it.

The layered engine allocates tens of MiB in each trial of a recurrent group (its input arrivals,
time buckets, the reverse pass's tables) and frees them when the trial ends. By default glibc hands
large freed blocks back to the kernel (it unmaps them, or trims a heap's top), and the next trial's
allocations fault every page in again: bench/gradient.py's recurrent network took 10-15k page faults
and 25-40 ms of system time per trial (2 threads; about 10 % of its CPU time).
:func:`keep_freed_memory` raises glibc's thresholds (``mallopt``): blocks up to 32 MiB come from the
heaps, heaps are not trimmed, and they grow 64 MiB at a time. Later trials then reuse the pages:
about 300 page faults per trial. The process's resident memory stays at its high-water mark after
a batch instead of shrinking.

Linux with glibc only (elsewhere nothing changes). ``NEURODELAY_KEEP_FREED_MEMORY=0`` leaves the
allocator as it is.
"""

from __future__ import annotations

import ctypes
import os
import threading

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3   # glibc's malloc.h
_SETTINGS = ((_M_MMAP_THRESHOLD, 32 << 20),       # the most glibc accepts on 64-bit systems
             (_M_TRIM_THRESHOLD, 2 ** 31 - 1),
             (_M_TOP_PAD, 64 << 20))
_lock = threading.Lock()
_applied: bool | None = None       # None: not tried yet in this process


def keep_freed_memory() -> bool:
    """Apply the settings of this module's docstring once per process; True where they are in effect.

    Raises ValueError if ``$NEURODELAY_KEEP_FREED_MEMORY`` is set to anything but 0 or 1."""
    global _applied
    env = os.environ.get("NEURODELAY_KEEP_FREED_MEMORY", "1")
    if env not in ("0", "1"):
        raise ValueError(f"NEURODELAY_KEEP_FREED_MEMORY must be 0 or 1, got {env!r}")
    if env == "0":
        return False
    with _lock:
        if _applied is None:
            _applied = _apply()
        return _applied


def _apply() -> bool:
    try:
        libc = ctypes.CDLL(None)
        mallopt, _ = libc.mallopt, libc.gnu_get_libc_version       # glibc only
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in _SETTINGS)
