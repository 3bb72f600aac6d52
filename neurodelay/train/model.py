"""What the trainer needs from a model: trained values in, loss / gradients / accuracy out.

Any object with this interface can be trained by :func:`neurodelay.train.trainer.fit`;
:class:`neurodelay.train.classifier.SpikingClassifier` is the one for spiking
networks. Values are plain float arrays keyed by parameter key (the keys of
the gradients).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["BatchResult", "Evaluation", "Model"]


@dataclass
class BatchResult:
    """Mean loss over a batch, its gradients ``{key: array}`` and the number of correct predictions."""

    loss: float
    grads: dict
    n_correct: int
    n_trials: int
    extra: dict = field(default_factory=dict)


@dataclass
class Evaluation:
    """Mean loss, accuracy (fraction) and per-trial predictions (class index, -1 = undecided) on a data set."""

    loss: float
    accuracy: float
    predictions: np.ndarray
    extra: dict = field(default_factory=dict)


@runtime_checkable
class Model(Protocol):
    """Interface of a trainable model (see the module docstring)."""

    @property
    def keys(self) -> tuple[str, ...]:
        """Keys of the trained parameters (sorted)."""

    @property
    def network(self):
        """The :class:`~neurodelay.network.Network` with the current values (stored in checkpoints)."""

    def values(self) -> dict:
        """Current trained values ``{key: float array}``."""

    def with_values(self, values: dict) -> "Model":
        """A model with the trained values replaced (the others unchanged)."""

    def loss_and_grad(self, batch, rng: np.random.Generator) -> BatchResult:
        """Loss, gradients and correct count on one minibatch (rng: for training-time noise)."""

    def evaluate(self, data) -> Evaluation:
        """Loss, accuracy and predictions on a whole data set (no noise)."""
