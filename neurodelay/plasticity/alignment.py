"""How well a rule's updates point along the exact gradient of the same loss: cosine similarity."""

from __future__ import annotations

import numpy as np

from ..gradients import loss_and_grad
from ..network import Network
from .rule import ThreeFactorRule
from .three_factor import three_factor_gradients

GROUPS = ("key", "kind")


def cosine(a, b) -> float:
    """Cosine similarity of two arrays taken as flat vectors (dimensionless, in [-1, 1]); nan where
    either is all zeros."""
    a, b = np.ravel(np.asarray(a, float)), np.ravel(np.asarray(b, float))
    if a.shape != b.shape:
        raise ValueError(f"cosine of arrays of different sizes: {a.size} and {b.size}")
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else float("nan")


def cosine_to_exact(net: Network, rule: ThreeFactorRule, inputs, duration, loss, labels=None, *,
                    group: str = "key", n_threads: int | None = None) -> dict:
    """Cosine similarity between the update of `rule` and the exact (EventProp) gradient of the same
    loss, on the same batch and network (both from the exact event engine).

    Parameters
    ----------
    net, rule, inputs, duration, loss, labels
        As for :func:`~neurodelay.plasticity.three_factor_gradients` (duration in s).
    group : {"key", "kind"}
        ``"key"``: one cosine per trained key (projection, kind). ``"kind"``: one per parameter kind
        (``"weight"``, ``"synaptic"``, ``"axonal"``), the keys of a kind taken together as one vector.
    n_threads : int, optional
        Threads over trials (default: all usable cores).

    Returns
    -------
    dict
        {key or kind: cosine}, dimensionless in [-1, 1] (1: the update points along the exact
        gradient; nan where either is zero).
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    estimate = three_factor_gradients(net, rule, inputs, duration, loss, labels, n_threads=n_threads).grads
    exact = loss_and_grad(net, inputs, duration, loss, labels, params=list(estimate), engine="events",
                          n_threads=n_threads).grads
    if group == "key":
        return {key: cosine(estimate[key], exact[key]) for key in estimate}
    kinds = list(dict.fromkeys(key[1] for key in estimate))
    return {kind: cosine(np.concatenate([np.ravel(estimate[k]) for k in estimate if k[1] == kind]),
                         np.concatenate([np.ravel(exact[k]) for k in estimate if k[1] == kind]))
            for kind in kinds}
