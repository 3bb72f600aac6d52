"""Memory estimates checked before large allocations.

A description that needs more memory than the machine has should be refused
up front, with the estimate and the limit, rather than fail inside numpy or
send the machine into swap. The limit is the memory available now
(``MemAvailable`` of ``/proc/meminfo``, and the cgroup's limit minus its
usage when the process runs in a container), or ``$NEURODELAY_MEMORY_LIMIT``
(bytes; suffixes K, M, G, T accepted) when set.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MemoryLimitError", "available_bytes", "check_memory", "format_bytes"]

_SUFFIX = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}


class MemoryLimitError(ValueError):
    """An operation would need more memory than the limit (a ValueError: the description is too large)."""


def format_bytes(n: float) -> str:
    """`n` bytes in a readable unit (binary prefixes)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} TiB"  # pragma: no cover


def _env_limit() -> int | None:
    text = os.environ.get("NEURODELAY_MEMORY_LIMIT", "").strip()
    if not text:
        return None
    number, suffix = (text[:-1], text[-1].upper()) if text[-1].upper() in _SUFFIX and text[-1].isalpha() else (text, "")
    try:
        value = float(number) * _SUFFIX[suffix]
    except ValueError:
        raise ValueError(f"NEURODELAY_MEMORY_LIMIT must be a number of bytes (suffix K, M, G or T allowed), "
                         f"got {text!r}") from None
    if not value > 0:
        raise ValueError(f"NEURODELAY_MEMORY_LIMIT must be > 0, got {text!r}")
    return int(value)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes() -> int | None:
    """Bytes this process may still allocate (see the module docstring); None when unknown."""
    limit = _env_limit()
    if limit is not None:
        return limit
    candidates = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    cgroup_max = _read_int(Path("/sys/fs/cgroup/memory.max"))
    cgroup_now = _read_int(Path("/sys/fs/cgroup/memory.current"))
    if cgroup_max is not None and cgroup_now is not None:
        candidates.append(max(cgroup_max - cgroup_now, 0))
    return min(candidates) if candidates else None


def check_memory(nbytes: float, what: str) -> None:
    """Raise :class:`MemoryLimitError` when `what` needs more than the available memory."""
    limit = available_bytes()
    if limit is not None and nbytes > limit:
        raise MemoryLimitError(f"{what} needs about {format_bytes(nbytes)} of memory, more than the "
                               f"{format_bytes(limit)} available (set NEURODELAY_MEMORY_LIMIT to change the limit)")
