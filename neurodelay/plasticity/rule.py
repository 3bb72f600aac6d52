"""The description of the online three-factor rule: what it updates and how (no engine code here).

:class:`ThreeFactorRule` is a frozen value, separate from the
:class:`~neurodelay.network.Network` it acts on (the network is never
changed by it). The derivation of its traces and where it departs from the
exact gradient are in :mod:`neurodelay.plasticity`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..network import LIF, Network, Readout

__all__ = ["ThreeFactorRule", "RULE_KINDS", "PSEUDO_DERIVATIVES", "FEEDBACKS", "APPLY_MODES"]

#: parameter kinds a three-factor rule updates (weights and the delays its traces can differentiate)
RULE_KINDS = ("weight", "synaptic", "axonal")
PSEUDO_DERIVATIVES = ("gaussian", "exact")
FEEDBACKS = ("symmetric", "random")
#: when updates are applied: at the end of each trial (the only mode; see ThreeFactorRule, ``apply``)
APPLY_MODES = ("end",)


def _projection_name(target) -> str:
    """'pre->post' from 'pre->post' or a (pre, post) pair; ValueError for anything else."""
    if isinstance(target, str):
        pre, sep, post = target.partition("->")
        if sep and pre and post:
            return target
    elif isinstance(target, tuple) and len(target) == 2 and all(isinstance(t, str) for t in target):
        return f"{target[0]}->{target[1]}"
    raise ValueError(f"updates: a projection is named 'pre->post' or (pre, post), got {target!r}")


def _kinds(name: str, kinds) -> tuple:
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        kinds = tuple(kinds)
    except TypeError:
        raise ValueError(f"updates[{name!r}]: give a tuple of kinds from {RULE_KINDS}, got {kinds!r}") from None
    if not kinds:
        raise ValueError(f"updates[{name!r}]: no kind given; choose from {RULE_KINDS}")
    for kind in kinds:
        if kind not in RULE_KINDS:
            raise ValueError(f"updates[{name!r}]: unknown kind {kind!r}; a three-factor rule updates {RULE_KINDS}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"updates[{name!r}]: a kind is listed twice in {kinds}")
    return tuple(k for k in RULE_KINDS if k in kinds)


@dataclass(frozen=True)
class ThreeFactorRule:
    """An online three-factor learning rule: eligibility traces x a per-neuron learning signal.

    Parameters
    ----------
    updates : mapping
        ``{"pre->post" or (pre, post): kinds}``, kinds a tuple from :data:`RULE_KINDS`
        (``"weight"``, ``"synaptic"`` delays, ``"axonal"`` delays). Stored as a sorted tuple of
        ``(name, kinds)`` pairs.
    pseudo_derivative : {"gaussian", "exact"}
        How a spike of the postsynaptic neuron depends on its voltage: the one-sided Gaussian
        surrogate ``psi(V) = 2 N(V; theta, (sigma theta)^2)`` for V <= theta (0 above), integrated
        over the trial, or the exact ``1 / Vdot`` at each spike.
    sigma : float
        Width of the Gaussian surrogate in units of each neuron's threshold theta (> 0; default
        0.3, i.e. 0.3 theta). Unused with ``"exact"``.
    feedback : {"symmetric", "random"}
        How hidden neurons receive the output error: through the current forward weights
        (``B = w``) or through fixed random weights drawn from `feedback_seed` (one per synapse,
        standard normal times the root mean square of that projection's current weights).
    feedback_seed : int
        Seed of the random feedback weights (>= 0).
    apply : {"end"}
        Updates are applied at the end of each trial (on hardware: after every sample, i.e.
        training with ``batch_size=1``). Updates *during* a trial are refused: the third factor
        of every loss the rule supports (first-spike times, maxima of readout voltages) is known
        only once the trial is over, so there is nothing to apply earlier without inventing a
        learning signal the loss does not define.

    Examples
    --------
    >>> rule = ThreeFactorRule({"inp->out": ("weight", "synaptic")}, pseudo_derivative="exact")
    >>> rule.updates
    (('inp->out', ('weight', 'synaptic')),)
    """

    updates: Mapping = field(default_factory=dict)
    pseudo_derivative: str = "gaussian"
    sigma: float = 0.3
    feedback: str = "symmetric"
    feedback_seed: int = 0
    apply: str = "end"

    def __post_init__(self):
        updates = self.updates
        if isinstance(updates, tuple) and all(isinstance(u, tuple) and len(u) == 2 for u in updates):
            updates = dict(updates)
        if not isinstance(updates, Mapping):
            raise ValueError(f"updates must map 'pre->post' to a tuple of kinds, got {type(updates).__name__}")
        if not updates:
            raise ValueError("updates is empty: name at least one projection and the kinds to update")
        pairs = {}
        for target, kinds in updates.items():
            name = _projection_name(target)
            if name in pairs:
                raise ValueError(f"updates names projection {name!r} twice")
            pairs[name] = _kinds(name, kinds)
        object.__setattr__(self, "updates", tuple(sorted(pairs.items())))
        if self.pseudo_derivative not in PSEUDO_DERIVATIVES:
            raise ValueError(f"pseudo_derivative must be one of {PSEUDO_DERIVATIVES}, got {self.pseudo_derivative!r}")
        if (isinstance(self.sigma, bool) or not isinstance(self.sigma, numbers.Real)
                or not 0.0 < float(self.sigma) < float("inf")):
            raise ValueError(f"sigma (surrogate width, in units of theta) must be a finite number > 0, "
                             f"got {self.sigma!r}")
        object.__setattr__(self, "sigma", float(self.sigma))
        if self.feedback not in FEEDBACKS:
            raise ValueError(f"feedback must be one of {FEEDBACKS}, got {self.feedback!r}")
        if (isinstance(self.feedback_seed, bool) or not isinstance(self.feedback_seed, numbers.Integral)
                or self.feedback_seed < 0):
            raise ValueError(f"feedback_seed must be an integer >= 0, got {self.feedback_seed!r}")
        object.__setattr__(self, "feedback_seed", int(self.feedback_seed))
        if self.apply == "online":
            raise ValueError("apply='online' (updates during a trial) is not supported: the losses the rule "
                             "supports give their error only at the end of a trial; use apply='end' (with "
                             "batch_size=1 for an update after every trial)")
        if self.apply not in APPLY_MODES:
            raise ValueError(f"apply must be one of {APPLY_MODES}, got {self.apply!r}")

    # ---- access --------------------------------------------------------------------------------
    @property
    def projections(self) -> tuple[str, ...]:
        """Names ``"pre->post"`` of the projections the rule updates."""
        return tuple(name for name, _ in self.updates)

    def kinds(self, projection) -> tuple[str, ...]:
        """The kinds updated on `projection` (``"pre->post"`` or (pre, post)); () if none."""
        name = _projection_name(projection)
        return dict(self.updates).get(name, ())

    def keys(self) -> tuple[tuple[str, str], ...]:
        """The parameter keys of :mod:`neurodelay.gradients` that the rule updates, e.g. ``("inp->out", "weight")``."""
        return tuple((name, kind) for name, kinds in self.updates for kind in kinds)

    @classmethod
    def from_keys(cls, keys, **options) -> "ThreeFactorRule":
        """The rule updating the given parameter keys ``(projection, kind)`` (e.g. a trainer's keys)."""
        updates: dict = {}
        for key in keys:
            if not (isinstance(key, tuple) and len(key) == 2 and "->" in str(key[0])):
                raise ValueError(f"a three-factor rule updates projection keys (projection, kind) with kind in "
                                 f"{RULE_KINDS}; {key!r} is not one")
            updates.setdefault(key[0], []).append(key[1])
        return cls(updates, **options)

    def to_dict(self) -> dict:
        """The rule as JSON-able settings (inverse: ``ThreeFactorRule(**d)``)."""
        return dict(updates={name: list(kinds) for name, kinds in self.updates},
                    pseudo_derivative=self.pseudo_derivative, sigma=self.sigma, feedback=self.feedback,
                    feedback_seed=self.feedback_seed, apply=self.apply)

    # ---- validation against a network -----------------------------------------------------------
    def check(self, net: Network) -> "ThreeFactorRule":
        """Validate the rule against `net`; returns the rule, or raises a one-line ValueError.

        Refused: a projection `net` does not have; a target that is not an LIF or readout
        population; a delay kind the projection does not have (declare it in its
        :class:`~neurodelay.delays.Delays`, e.g. ``Delays(synaptic=...)``, to learn it: the rule
        differentiates delays that exist, it does not add them).
        """
        if not isinstance(net, Network):
            raise ValueError(f"check needs a neurodelay Network, got {type(net).__name__}")
        have = {p.name: p for p in net.projections}
        for name, kinds in self.updates:
            if name not in have:
                raise ValueError(f"the rule updates projection {name!r}, which the network does not have "
                                 f"(it has {sorted(have)})")
            proj = have[name]
            if not isinstance(net[proj.post], (LIF, Readout)):
                raise ValueError(f"{name}: the target {proj.post!r} is not an LIF or readout population")
            for kind in kinds:
                if kind != "weight" and getattr(proj.delays, kind) is None:
                    raise ValueError(f"{name} has no {kind} delays, so the rule cannot update them; declare "
                                     f"them in the projection's Delays({kind}=...) to learn them")
        for pop in net.populations:
            if any(np.any(np.asarray(getattr(pop, f, 0.0)) != 0.0) for f in ("bias", "v_init", "i_init")):
                raise ValueError(f"population {pop.name!r} has a bias current or starts away from rest: the "
                                 f"rule's traces assume neither (use the exact gradient, loss_and_grad)")
        return self
