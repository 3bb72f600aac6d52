"""The three delay kinds and their sum.

The transmission delay of the synapse from presynaptic neuron i to
postsynaptic neuron j is ``d_ji = axonal[i] + dendritic[j] + synaptic[ji]``
(seconds). Each kind may be absent (None, i.e. zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import as_seconds

__all__ = ["Delays", "DELAY_KINDS", "reduce_synaptic_gradient", "quantise"]

DELAY_KINDS = ("axonal", "dendritic", "synaptic")


@dataclass(frozen=True)
class Delays:
    """Axonal (per presynaptic neuron), dendritic (per postsynaptic neuron) and
    synaptic (per synapse) delays in seconds; any may be None (absent).

    Values may be Brian2 quantities or floats in seconds. They are checked
    against the projection's sizes when the projection is built.
    """

    axonal: object = None
    dendritic: object = None
    synaptic: object = None

    def resolved(self, n_pre: int, n_post: int, n_syn: int, where: str = "") -> "Delays":
        """Return a copy with plain float arrays of the right shapes (checked: finite, >= 0)."""
        prefix = f"{where}: " if where else ""
        sizes = {"axonal": n_pre, "dendritic": n_post, "synaptic": n_syn}
        values = {}
        for kind in DELAY_KINDS:
            value = getattr(self, kind)
            if value is None:
                values[kind] = None
                continue
            values[kind] = as_seconds(value, f"{prefix}{kind} delay", (sizes[kind],), minimum=0.0)
        return Delays(**values)

    def kinds(self) -> tuple[str, ...]:
        """Names of the kinds that are present."""
        return tuple(k for k in DELAY_KINDS if getattr(self, k) is not None)

    def total(self, pre_idx: np.ndarray, post_idx: np.ndarray) -> np.ndarray:
        """Per-synapse transmission delay (seconds) for synapses pre_idx -> post_idx."""
        d = np.zeros(len(pre_idx), dtype=float)
        if self.axonal is not None:
            d += np.asarray(self.axonal)[pre_idx]
        if self.dendritic is not None:
            d += np.asarray(self.dendritic)[post_idx]
        if self.synaptic is not None:
            d += np.asarray(self.synaptic)
        return d

    def replace(self, **kinds) -> "Delays":
        """Copy with some kinds replaced (unresolved; resolve again through the projection)."""
        values = {k: getattr(self, k) for k in DELAY_KINDS}
        unknown = set(kinds) - set(DELAY_KINDS)
        if unknown:
            raise ValueError(f"unknown delay kind(s) {sorted(unknown)}; expected one of {DELAY_KINDS}")
        values.update(kinds)
        return Delays(**values)


def reduce_synaptic_gradient(grad_syn: np.ndarray, pre_idx: np.ndarray, post_idx: np.ndarray,
                             n_pre: int, n_post: int) -> dict[str, np.ndarray]:
    """From dL/dd_ji per synapse, the gradients of each delay kind.

    dL/ds_ji = g_ji, dL/da_i = sum_j g_ji (outgoing), dL/db_j = sum_i g_ji (incoming).
    grad_syn may have leading batch dimensions (..., n_syn).
    """
    g = np.asarray(grad_syn, dtype=float)
    rows = g.reshape(-1, g.shape[-1])
    axonal = np.zeros((rows.shape[0], n_pre))
    dendritic = np.zeros((rows.shape[0], n_post))
    np.add.at(axonal, (slice(None), pre_idx), rows)
    np.add.at(dendritic, (slice(None), post_idx), rows)
    lead = g.shape[:-1]
    return {"axonal": axonal.reshape(lead + (n_pre,)),
            "dendritic": dendritic.reshape(lead + (n_post,)),
            "synaptic": g.copy()}


def quantise(delay: np.ndarray, step: float) -> np.ndarray:
    """Round delays (seconds) to the nearest multiple of `step` seconds (a hardware grid)."""
    step = float(as_seconds(step, "step", minimum=0.0, strictly=True))
    return np.round(np.asarray(delay, dtype=float) / step) * step
