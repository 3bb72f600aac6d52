"""The layered exact engine: per-neuron scans for networks whose projections form layers.

Recurrent layers (a population projecting onto itself, or a cycle between
populations) are simulated as recurrent groups (:mod:`neurodelay.layered.recurrent`).

Same contract as :mod:`neurodelay.events` (``simulate`` returns an
:class:`~neurodelay.events.EventRecord`, ``adjoint`` differentiates a record of
any engine) and the same results; :func:`supports` says whether a network can
be run (None) or why not; :func:`fused_loss_and_grad` runs forward, loss and
reverse pass per trial (what ``loss_and_grad(..., engine="layered")`` uses).
:mod:`neurodelay.layered.gpu` runs the same per-neuron code on an NVIDIA GPU
(engine ``"cuda"``: feedforward networks, one CUDA thread per trial and neuron).
"""

from .engine import LayeredEngine, adjoint, fused_loss_and_grad, simulate, supports

__all__ = ["LayeredEngine", "adjoint", "fused_loss_and_grad", "simulate", "supports"]
