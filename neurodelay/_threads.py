"""How many worker threads the engines and the host-side sorts use by default."""

from __future__ import annotations

import os

__all__ = ["default_threads"]


def default_threads() -> int:
    """Worker threads for batched trials: $NEURODELAY_THREADS or the number of usable cores."""
    env = os.environ.get("NEURODELAY_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"NEURODELAY_THREADS must be a positive integer, got {env!r}") from None
        if value < 1:
            raise ValueError(f"NEURODELAY_THREADS must be a positive integer, got {env!r}")
        return value
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1
