"""Loss functions on an :class:`~neurodelay.events.EventRecord` and their adjoint sources.

Every loss has one method, ``value_and_sources(record, labels)``, returning the
loss of each trial (shape ``(n_trials,)``) and the
:class:`~neurodelay.events.adjoint.AdjointSources` of their *sum* (the
derivatives of the loss with respect to spike times and voltages that drive
the reverse pass). Losses combine: ``loss_a + 0.1 * loss_b``.

Time-to-first-spike losses (:class:`FirstSpikeMSE`, :class:`FirstSpikeCrossEntropy`)
handle a **missing output spike** by one documented rule: a neuron that does
not fire in [0, duration] counts with its first spike at ``t_missing``
(default: the duration), a constant with zero gradient, and adds the penalty
``missing_penalty * (theta - max_t V)`` (>= 0), whose exact gradient (through
the maximum of V, an adjoint jump at the time of the maximum) raises the
silent neuron's peak voltage towards threshold, e.g. by raising the weights
of inputs that arrive before the peak. It vanishes as the peak reaches
threshold, where the neuron starts to fire. No NaN or inf ever enters a value
or gradient.

Readout losses (:class:`MaxVoltageCrossEntropy`, :class:`WeightedIntegralCrossEntropy`)
act on non-spiking :class:`~neurodelay.network.Readout` populations; their
scores are exact (closed-form maxima and integrals, :mod:`neurodelay.events.readout`).

:class:`SpikeCountRegulariser` is not differentiable (a count changes only by
jumps); it provides a documented surrogate gradient, see its docstring.
:class:`SilentNeuronPenalty` applies the missing-spike penalty above to hidden
neurons (exact gradient), to revive neurons an exact spike-time gradient cannot reach.
"""

from __future__ import annotations

import numpy as np

from .events.readout import max_voltage, weighted_voltage_integral, window_max_voltage
from .network import LIF, Readout
from .record import AdjointSources
from .units import as_seconds

__all__ = ["Loss", "FirstSpikeMSE", "FirstSpikeCrossEntropy", "MaxVoltageCrossEntropy",
           "WindowedMaxVoltageCrossEntropy", "MaxVoltageHinge",
           "WeightedIntegralCrossEntropy", "SpikeCountRegulariser", "SilentNeuronPenalty", "first_spikes"]


class Loss:
    """Base class: subclasses implement ``value_and_sources(record, labels)``.

    ``separable``: True when each trial's value and sources depend only on that trial's record and
    labels (every loss here), which lets an engine fuse forward, loss and reverse pass per trial
    (:func:`neurodelay.loss_and_grad`); False (the default for new subclasses) for losses that couple trials.
    """

    separable = False

    def value_and_sources(self, record, labels=None) -> tuple[np.ndarray, AdjointSources]:
        """Per-trial loss values (n_trials,) and the adjoint sources of their sum."""
        raise NotImplementedError

    def value(self, record, labels=None) -> np.ndarray:
        """Per-trial loss values (n_trials,)."""
        return self.value_and_sources(record, labels)[0]

    def __add__(self, other: "Loss") -> "Loss":
        if not isinstance(other, Loss):
            return NotImplemented
        return _Sum((self, other))

    def __mul__(self, factor: float) -> "Loss":
        return _Scaled(float(factor), self)

    __rmul__ = __mul__


class _Sum(Loss):
    def __init__(self, terms):
        self.terms = tuple(t for term in terms for t in (term.terms if isinstance(term, _Sum) else (term,)))
        self.separable = all(getattr(t, "separable", False) for t in self.terms)

    def value_and_sources(self, record, labels=None):
        parts = [t.value_and_sources(record, labels) for t in self.terms]
        values = sum(p[0] for p in parts)
        sources = parts[0][1]
        for p in parts[1:]:
            sources = sources + p[1]
        return values, sources

    def __repr__(self):
        return " + ".join(map(repr, self.terms))


class _Scaled(Loss):
    def __init__(self, factor: float, loss: Loss):
        self.factor, self.loss = factor, loss
        self.separable = getattr(loss, "separable", False)

    def value_and_sources(self, record, labels=None):
        values, sources = self.loss.value_and_sources(record, labels)
        return self.factor * values, sources * self.factor

    def __repr__(self):
        return f"{self.factor!r} * {self.loss!r}"


# ---------------------------------------------------------------- helpers ---
def _population(record, name: str, kind, what: str):
    pop = record.network[name]
    if not isinstance(pop, kind):
        raise ValueError(f"{what} needs a {kind.__name__} population; {name!r} is a {type(pop).__name__}")
    return pop


def _labels(labels, n_trials: int, n_classes: int) -> np.ndarray:
    if labels is None:
        raise ValueError("this loss needs labels (one class index per trial)")
    labels = np.asarray(labels)
    if labels.shape != (n_trials,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {n_trials} integers (one per trial), got shape {labels.shape} "
                         f"and dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}) (the population size)")
    return labels.astype(np.int64)


def first_spikes(record, population: str) -> tuple[np.ndarray, np.ndarray]:
    """First spike of each neuron: (time s, index into the record's spike arrays), each
    (n_trials, n); time inf and index -1 where the neuron does not fire."""
    off, n = record.flat.offsets[population], record.flat.sizes[population]
    mask = (record.neuron >= off) & (record.neuron < off + n)
    idx = np.flatnonzero(mask)
    key = record.trial[idx] * n + record.neuron[idx] - off
    _, first = np.unique(key, return_index=True)          # spikes are sorted by (trial, time)
    idx = idx[first]
    index = np.full((record.n_trials, n), -1, np.int64)
    index[record.trial[idx], record.neuron[idx] - off] = idx
    time = np.full(index.shape, np.inf)
    fired = index >= 0
    time[fired] = record.time[index[fired]]  # (a batch without any spike has nothing to index)
    return time, index


def _spike_sources(record, index: np.ndarray, dl_dt: np.ndarray) -> np.ndarray:
    """dL/dt per recorded spike from per-(trial, neuron) derivatives at first-spike indices."""
    out = np.zeros(len(record.time))
    fired = index >= 0
    np.add.at(out, index[fired], dl_dt[fired])
    return out


def _softmax_cross_entropy(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-trial -log softmax(scores)[label] and its derivative w.r.t. the scores."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    rows = np.arange(len(labels))
    values = log_norm - shifted[rows, labels]
    grad = np.exp(shifted - log_norm[:, None])
    grad[rows, labels] -= 1.0
    return values, grad


def _missing_spike_penalty(record, population: str, silent: np.ndarray, strength: float):
    """strength * (theta - max_t V) for each silent (trial, neuron): values and exact sources."""
    n_trials = record.n_trials
    values = np.zeros(n_trials)
    if strength == 0.0 or not silent.any():
        return values, AdjointSources()
    off = record.flat.offsets[population]
    theta = record.flat.theta[off: off + silent.shape[1]]
    v_max, t_max = max_voltage(record, population, mask=silent)
    trial, neuron = np.nonzero(silent)
    values = np.bincount(trial, strength * (theta[neuron] - v_max[trial, neuron]), minlength=n_trials)
    theta_src = np.zeros(record.flat.n_neurons)
    np.add.at(theta_src, off + neuron, strength)
    return values, AdjointSources(jump_trial=trial, jump_neuron=off + neuron, jump_time=t_max[trial, neuron],
                                  jump_value=np.full(len(trial), -strength), theta=theta_src)


class _FirstSpikeLoss(Loss):
    separable = True

    def __init__(self, population: str, t_missing, missing_penalty: float):
        self.population = population
        self.t_missing = None if t_missing is None else float(as_seconds(t_missing, "t_missing"))
        self.missing_penalty = float(missing_penalty)
        if self.missing_penalty < 0:
            raise ValueError(f"missing_penalty must be >= 0, got {missing_penalty}")

    def _first(self, record, labels):
        _population(record, self.population, LIF, type(self).__name__)
        times, index = first_spikes(record, self.population)
        labels = _labels(labels, record.n_trials, times.shape[1])
        silent = index < 0
        times[silent] = record.duration if self.t_missing is None else self.t_missing
        return times, index, labels, silent

    def _finish(self, record, values, dl_dt, index, silent):
        dl_dt = np.where(silent, 0.0, dl_dt)                  # a missing spike is a constant
        sources = AdjointSources(spike_time=_spike_sources(record, index, dl_dt))
        penalty, penalty_sources = _missing_spike_penalty(record, self.population, silent, self.missing_penalty)
        return values + penalty, sources + penalty_sources


class FirstSpikeMSE(_FirstSpikeLoss):
    """Shift-invariant time-to-first-spike MSE with margin (Göltz et al.; DelGrad's Yin-Yang loss).

    Per trial with label c: ``L = 1/2 sum_{i != c} ((t_i - t_c - margin) / time_unit)^2``
    where t_i is the first spike of output neuron i (s). It depends on
    differences of spike times only. margin, time_unit, t_missing in s (or
    Brian2 times); missing spikes: see the module docstring.
    """

    def __init__(self, population: str, margin, time_unit=1e-3, t_missing=None, missing_penalty: float = 1.0):
        super().__init__(population, t_missing, missing_penalty)
        self.margin = float(as_seconds(margin, "margin"))
        self.time_unit = float(as_seconds(time_unit, "time_unit", minimum=0.0, strictly=True))

    def value_and_sources(self, record, labels=None):
        times, index, labels, silent = self._first(record, labels)
        rows = np.arange(record.n_trials)
        diff = (times - times[rows, labels][:, None] - self.margin) / self.time_unit
        diff[rows, labels] = 0.0
        values = 0.5 * np.sum(diff ** 2, axis=1)
        dl_dt = diff / self.time_unit
        # t_c enters every term, including those of silent wrong neurons (t_i = t_missing)
        dl_dt[rows, labels] = -np.sum(diff, axis=1) / self.time_unit
        return self._finish(record, values, dl_dt, index, silent)

    def __repr__(self):
        return f"FirstSpikeMSE({self.population!r}, margin={self.margin}, time_unit={self.time_unit})"


class FirstSpikeCrossEntropy(_FirstSpikeLoss):
    """Softmax cross-entropy on first-spike times: ``L = log sum_k exp(-t_k/xi) + t_c/xi`` (xi in s)."""

    def __init__(self, population: str, xi, t_missing=None, missing_penalty: float = 1.0):
        super().__init__(population, t_missing, missing_penalty)
        self.xi = float(as_seconds(xi, "xi", minimum=0.0, strictly=True))

    def value_and_sources(self, record, labels=None):
        times, index, labels, silent = self._first(record, labels)
        values, d_score = _softmax_cross_entropy(-times / self.xi, labels)
        return self._finish(record, values, -d_score / self.xi, index, silent)

    def __repr__(self):
        return f"FirstSpikeCrossEntropy({self.population!r}, xi={self.xi})"


class MaxVoltageCrossEntropy(Loss):
    """Cross-entropy on the maximum over [0, duration] of each readout's V (the sequence task).

    score_k = max_t V_k(t) (exact, >= 0 since V(0) = 0); the adjoint source is a
    jump of dL/dscore_k at the time of each maximum.
    """

    separable = True

    def __init__(self, population: str):
        self.population = population

    def value_and_sources(self, record, labels=None):
        pop = _population(record, self.population, Readout, "MaxVoltageCrossEntropy")
        labels = _labels(labels, record.n_trials, pop.n)
        v_max, t_max = max_voltage(record, self.population)
        values, d_score = _softmax_cross_entropy(v_max, labels)
        trial, neuron = np.indices(v_max.shape).reshape(2, -1)
        off = record.flat.offsets[self.population]
        return values, AdjointSources(jump_trial=trial, jump_neuron=off + neuron, jump_time=t_max.ravel(),
                                      jump_value=d_score.ravel())

    def __repr__(self):
        return f"MaxVoltageCrossEntropy({self.population!r})"


class WindowedMaxVoltageCrossEntropy(Loss):
    """Cross-entropy on the maximum of each readout's V inside each of several time windows, one label per
    window (Moro et al.'s per-segment MTS-XOR loss).

    For window k = [start_k, stop_k] (s) the scores are ``score_jk = max_{t in window k} V_j(t)`` (exact,
    :func:`~neurodelay.events.readout.window_max_voltage`); the loss of a trial is the *mean* over the
    windows of the softmax cross-entropy of its scores against that window's label, so one window gives
    the same value as :class:`MaxVoltageCrossEntropy` restricted to it. The adjoint source is a jump of
    ``dL/dscore_jk`` at the time of each window's maximum.

    Labels: (n_trials, n_windows) class indices (a 1-D array is accepted for one window).
    """

    separable = True

    def __init__(self, population: str, windows):
        self.population = population
        w = np.asarray(windows, dtype=float)
        if w.ndim != 2 or w.shape[1] != 2 or w.shape[0] < 1 or not np.all(np.isfinite(w)) \
                or np.any(w[:, 0] < 0) or np.any(w[:, 1] < w[:, 0]):
            raise ValueError(f"windows must be (start, stop) pairs in s with 0 <= start <= stop, got {windows!r}")
        self.windows = w

    def labels(self, labels, n_trials: int, n_classes: int) -> np.ndarray:
        """Labels as an int64 (n_trials, n_windows) array (checked)."""
        if labels is None:
            raise ValueError("WindowedMaxVoltageCrossEntropy needs labels (one class per trial and window)")
        y = np.asarray(labels)
        if y.ndim == 1 and len(self.windows) == 1:
            y = y[:, None]
        if y.shape != (n_trials, len(self.windows)) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape ({n_trials}, {len(self.windows)}) (trial, window), "
                             f"got shape {y.shape} and dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"labels must lie in [0, {n_classes}) (the population size)")
        return y.astype(np.int64)

    def scores(self, record) -> tuple[np.ndarray, np.ndarray]:
        """(score, time of the maximum s), each (n_trials, n_windows, n)."""
        _population(record, self.population, Readout, "WindowedMaxVoltageCrossEntropy")
        v, t = window_max_voltage(record, self.population, self.windows)
        return v.transpose(0, 2, 1), t.transpose(0, 2, 1)

    def value_and_sources(self, record, labels=None):
        pop = _population(record, self.population, Readout, "WindowedMaxVoltageCrossEntropy")
        y = self.labels(labels, record.n_trials, pop.n)
        v_max, t_max = self.scores(record)
        n_trials, n_win, n = v_max.shape
        values, d_score = _softmax_cross_entropy(v_max.reshape(-1, n), y.reshape(-1))
        values = values.reshape(n_trials, n_win).mean(axis=1)
        trial, _, neuron = np.indices(v_max.shape).reshape(3, -1)
        off = record.flat.offsets[self.population]
        return values, AdjointSources(jump_trial=trial, jump_neuron=off + neuron, jump_time=t_max.ravel(),
                                      jump_value=d_score.ravel() / n_win)

    def __repr__(self):
        return f"WindowedMaxVoltageCrossEntropy({self.population!r}, windows={self.windows.tolist()})"


class MaxVoltageHinge(Loss):
    """Tempotron loss: a hinge on the maximum over [0, duration] of each readout's V, with margin.

    Each neuron of the (non-spiking) readout population is a binary classifier:
    it "fires" when ``max_t V >= theta``, which is exactly when an LIF neuron
    with the same inputs and threshold would spike (before its first spike the
    two have the same trajectory). Per trial and neuron with target y (1: fire,
    0: stay silent)::

        L = max(0, theta + margin - V_max)   if y = 1
        L = max(0, V_max - theta + margin)   if y = 0

    summed over the neurons (Gütig & Sompolinsky 2006, whose learning rule is the
    gradient of this loss with margin 0). The adjoint source is a jump of
    dL/dV_max (-1, +1 or 0) at the time of each maximum, so the gradients with
    respect to weights and delays are exact.

    Parameters
    ----------
    population : str
        The readout population.
    theta : float
        Decision threshold (same units as V), > 0.
    margin : float
        Margin (same units as V), >= 0.

    Labels are one 0/1 target per trial for a one-neuron population, or an
    (n_trials, n) 0/1 array.
    """

    separable = True

    def __init__(self, population: str, theta: float = 1.0, margin: float = 0.0):
        self.population = population
        self.theta = float(theta)
        self.margin = float(margin)
        if not (np.isfinite(self.theta) and self.theta > 0):
            raise ValueError(f"theta must be > 0, got {theta}")
        if not (np.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"margin must be >= 0, got {margin}")

    def targets(self, labels, n_trials: int, n: int) -> np.ndarray:
        """Labels as a boolean (n_trials, n) array of targets (True: fire)."""
        if labels is None:
            raise ValueError("MaxVoltageHinge needs labels (0/1 per trial, or per trial and neuron)")
        y = np.asarray(labels)
        if y.ndim == 1 and n == 1:
            y = y[:, None]
        if y.shape != (n_trials, n) or not np.all((y == 0) | (y == 1)):
            raise ValueError(f"labels must be 0/1 of shape ({n_trials},) or ({n_trials}, {n}), got shape {y.shape}")
        return y.astype(bool)

    def value_and_sources(self, record, labels=None):
        pop = _population(record, self.population, Readout, "MaxVoltageHinge")
        fire = self.targets(labels, record.n_trials, pop.n)
        v_max, t_max = max_voltage(record, self.population)
        sign = np.where(fire, -1.0, 1.0)                      # L = relu(sign (V_max - theta) + margin)
        violation = sign * (v_max - self.theta) + self.margin
        active = violation > 0
        values = np.sum(np.where(active, violation, 0.0), axis=1)
        trial, neuron = np.nonzero(active)
        off = record.flat.offsets[self.population]
        return values, AdjointSources(jump_trial=trial, jump_neuron=off + neuron, jump_time=t_max[trial, neuron],
                                      jump_value=sign[trial, neuron])

    def __repr__(self):
        return f"MaxVoltageHinge({self.population!r}, theta={self.theta}, margin={self.margin})"


class WeightedIntegralCrossEntropy(Loss):
    """Cross-entropy on exponentially weighted voltage integrals (mlGeNN's SHD/SSC/Braille readout).

    score_k = ``integral_0^D exp(-t/tau_weight) V_k dt / tau_weight`` (D = duration,
    tau_weight in s), or the time average ``integral V_k dt / D`` if tau_weight
    is None; the adjoint source is the continuous ``dL/dscore_k exp(-t/tau_weight) / tau_weight``.
    """

    separable = True

    def __init__(self, population: str, tau_weight=None):
        self.population = population
        self.tau_weight = None if tau_weight is None else float(
            as_seconds(tau_weight, "tau_weight", minimum=0.0, strictly=True))

    def value_and_sources(self, record, labels=None):
        pop = _population(record, self.population, Readout, "WeightedIntegralCrossEntropy")
        labels = _labels(labels, record.n_trials, pop.n)
        scores = weighted_voltage_integral(record, self.population, self.tau_weight)
        values, d_score = _softmax_cross_entropy(scores, labels)
        trial, neuron = np.indices(scores.shape).reshape(2, -1)
        off = record.flat.offsets[self.population]
        norm, rate = ((float(record.duration), 0.0) if self.tau_weight is None
                      else (self.tau_weight, 1.0 / self.tau_weight))
        return values, AdjointSources(rate_trial=trial, rate_neuron=off + neuron,
                                      rate_coef=d_score.ravel() / norm, rate_rate=np.full(trial.size, rate))

    def __repr__(self):
        return f"WeightedIntegralCrossEntropy({self.population!r}, tau_weight={self.tau_weight})"


class SpikeCountRegulariser(Loss):
    """Pull each neuron's spike count n_j per trial towards `target` (scalar or one per neuron).

    Value: ``sum_j 1/2 strength_j (n_j - target_j)^2`` with ``strength_j = strength``
    above the target and ``strength_lower`` (default: strength) below it.

    The count is piecewise constant in the parameters, so its exact gradient is
    zero wherever it exists. The gradient returned is a **surrogate**: that of
    the same expression with n_j replaced, in the derivative only, by the smooth
    count ``n~_j = sum_k (1 - t_k / D)`` (each spike weighted by the time left
    until the end D of the trial, so a spike that leaves through the end of the
    window vanishes continuously). Each spike of neuron j thus gets the source
    ``dL/dt_k = -strength_j (n_j - target_j) / D``: too many spikes are pushed
    later and out of the window, too few are pulled earlier. A silent neuron
    gets no gradient from this term. mlGeNN's EventProp compiler does the same
    with a per-spike weight 1/(t_k + dt) instead of 1/D (and its counts summed
    over the batch).
    """

    separable = True

    def __init__(self, population: str, target, strength: float, strength_lower: float | None = None):
        self.population = population
        self.target = np.asarray(target, dtype=float)
        self.strength = float(strength)
        self.strength_lower = self.strength if strength_lower is None else float(strength_lower)
        if self.strength < 0 or self.strength_lower < 0:
            raise ValueError("strengths must be >= 0")

    def value_and_sources(self, record, labels=None):
        pop = _population(record, self.population, LIF, "SpikeCountRegulariser")
        try:
            target = np.broadcast_to(self.target, (pop.n,))
        except ValueError:
            raise ValueError(f"target must be a scalar or one count per neuron ({pop.n}), "
                             f"got shape {self.target.shape}") from None
        counts = record.spikes(self.population).counts()
        excess = counts - target[None, :]
        strength = np.where(excess > 0, self.strength, self.strength_lower)
        values = 0.5 * np.sum(strength * excess ** 2, axis=1)
        off = record.flat.offsets[self.population]
        mine = (record.neuron >= off) & (record.neuron < off + pop.n)
        per_spike = np.zeros(len(record.time))
        trial, neuron = record.trial[mine], record.neuron[mine] - off
        per_spike[mine] = -(strength * excess)[trial, neuron] / record.duration
        return values, AdjointSources(spike_time=per_spike)

    def __repr__(self):
        return f"SpikeCountRegulariser({self.population!r}, target={self.target}, strength={self.strength})"


class SilentNeuronPenalty(Loss):
    """Raise the peak voltage of hidden neurons that stay silent: ``strength * (theta - max_t V)`` summed over
    every neuron of `population` (an LIF population) that fires no spike in a trial.

    The term is the missing-spike penalty of the first-spike losses (see the module docstring) applied to a
    hidden layer: its gradient is exact (an adjoint jump of ``-strength`` at the time of each silent neuron's
    maximum), and it reaches exactly the neurons an exact spike-time gradient cannot reach, those without a
    spike, by raising the weights of the inputs that arrive before their peak. It vanishes for a neuron as
    soon as it fires in the trial. Combine with a task loss (``task + SilentNeuronPenalty("h1", 0.01)``) and,
    against runaway rates, with an upper bound :class:`SpikeCountRegulariser` (``strength_lower=0``).
    V is in threshold units where theta = 1.

    scope: ``"trial"`` (default) penalises a neuron in every trial where it is silent (each trial on its
    own: ``separable``); ``"batch"`` only a neuron silent in *every* trial of the record (a dead neuron;
    then in every trial), which leaves alone the neurons that are silent in some trials by selectivity
    (the trials are coupled: not ``separable``, so the engines take the unfused path).
    """

    SCOPES = ("trial", "batch")

    def __init__(self, population: str, strength: float = 1.0, scope: str = "trial"):
        self.population = population
        self.strength = float(strength)
        if not (np.isfinite(self.strength) and self.strength >= 0):
            raise ValueError(f"strength must be a finite number >= 0, got {strength}")
        if scope not in self.SCOPES:
            raise ValueError(f"scope must be one of {self.SCOPES}, got {scope!r}")
        self.scope = scope
        self.separable = scope == "trial"

    def value_and_sources(self, record, labels=None):
        pop = _population(record, self.population, LIF, "SilentNeuronPenalty")
        silent = record.spikes(self.population).counts() == 0
        if silent.shape != (record.n_trials, pop.n):
            raise ValueError(f"spike counts of {self.population!r} have shape {silent.shape}, "
                             f"expected ({record.n_trials}, {pop.n})")
        if self.scope == "batch":
            silent = np.broadcast_to(silent.all(axis=0), silent.shape)
        return _missing_spike_penalty(record, self.population, silent, self.strength)

    def __repr__(self):
        return f"SilentNeuronPenalty({self.population!r}, strength={self.strength}, scope={self.scope!r})"
