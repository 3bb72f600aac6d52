"""A spiking network as a trainable classifier: exact EventProp gradients, decisions from the output.

:class:`SpikingClassifier` implements the :class:`~neurodelay.train.model.Model`
interface on top of :func:`neurodelay.gradients.loss_and_grad`. The class of
a trial is read from the output population by one of three rules (with ``rule=`` a
:class:`~neurodelay.plasticity.ThreeFactorRule`, the updates come from that online rule,
:func:`neurodelay.plasticity.three_factor_gradients`, instead of the exact gradients):

* ``first_spike``: the output LIF neuron that fires first (undecided, -1, if none fires);
* ``max_voltage``: the readout whose maximum voltage over the trial is largest;
* ``integral``: the readout with the largest exponentially weighted voltage
  integral (time constant ``tau_weight`` s, or the plain mean if None).

Determinism: the engines give bit-identical results for any number of
threads, so a run is reproducible from its seed alone.

Training noise (optional, off by default): each input spike time is moved
by Gaussian noise of standard deviation ``input_noise`` seconds during
training only (drawn from the trainer's generator), clipped into [0, duration].
"""

from __future__ import annotations

import numpy as np

from ..engines import get_engine
from ..events.readout import max_voltage, weighted_voltage_integral
from ..gradients import check_key, check_value, get_param, loss_and_grad, set_param
from ..losses import Loss, first_spikes
from ..network import TAU_RELATIVE_GAP, Network
from ..spikes import SpikeTrains
from .model import BatchResult, Evaluation
from .optim import key_name

__all__ = ["SpikingClassifier", "DECISIONS", "decide"]

DECISIONS = ("first_spike", "max_voltage", "integral")
TIME_CONSTANTS = ("tau_m", "tau_s")
TAU_SEPARATION = 10 * TAU_RELATIVE_GAP    # relative distance kept between a trained tau_m and tau_s


def _time_constants_kept_apart(net: Network, values: dict) -> dict:
    """{population: {'tau_m': (n,), 'tau_s': (n,)}} (s) for the populations whose time constants `values`
    sets (keys as in :mod:`neurodelay.gradients`, shapes checked). Where an update brings tau_s within
    TAU_SEPARATION (relative) of tau_m, tau_s is placed at that distance on its side: the Network refuses
    tau_m == tau_s, and both are set together so no intermediate pair is checked."""
    taus = {}
    for key, value in values.items():
        if key[1] not in TIME_CONSTANTS:
            continue
        pop = net[key[0]]
        value = check_value(net, key, value)
        pair = taus.setdefault(key[0], {k: np.array(getattr(pop, k), dtype=float) for k in TIME_CONSTANTS})
        pair[key[1]] = np.broadcast_to(value, (pop.n,)).copy()
    for pair in taus.values():
        tau_m, tau_s = pair["tau_m"], pair["tau_s"]
        close = np.abs(tau_m - tau_s) <= TAU_SEPARATION * tau_m
        side = np.where(tau_s <= tau_m, 1.0 - TAU_SEPARATION, 1.0 + TAU_SEPARATION)
        pair["tau_s"] = np.where(close, side * tau_m, tau_s)
    return taus


def decide(record, population: str, rule: str, tau_weight: float | None = None) -> np.ndarray:
    """Predicted class (int64, -1 = undecided) of every trial of an event record (see the module docstring)."""
    if rule == "first_spike":
        times, _ = first_spikes(record, population)
        pred = np.argmin(times, axis=1)
        pred[~np.isfinite(times.min(axis=1))] = -1
        return pred.astype(np.int64)
    if rule == "max_voltage":
        scores = max_voltage(record, population)[0]
    elif rule == "integral":
        scores = weighted_voltage_integral(record, population, tau_weight)
    else:
        raise ValueError(f"unknown decision rule {rule!r}; choose one of {DECISIONS}")
    return np.argmax(scores, axis=1).astype(np.int64)


class SpikingClassifier:
    """A network, the keys it trains, its loss and its decision rule (an immutable value).

    network: the :class:`~neurodelay.network.Network`; keys: parameter keys
    of :mod:`neurodelay.gradients` (e.g. ``("input->hidden", "weight")``);
    loss: a :class:`~neurodelay.losses.Loss`; output: the population read
    out; decision: one of :data:`DECISIONS`; duration: trial length (s,
    default: each data set's own); eval_chunk: trials simulated at once in
    :meth:`evaluate`; n_threads: engine threads (default: all cores); engine: a
    name of :mod:`neurodelay.engines` or an engine object (default "auto"); rule:
    None (exact EventProp gradients) or a :class:`~neurodelay.plasticity.ThreeFactorRule`
    updating exactly the trained keys (its updates are computed in the event engine).
    """

    def __init__(self, network: Network, keys, loss: Loss, output: str, decision: str = "first_spike", *,
                 duration: float | None = None, tau_weight: float | None = None, input_noise: float = 0.0,
                 eval_chunk: int = 2000, n_threads: int | None = None, engine="auto", rule=None):
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision rule {decision!r}; choose one of {DECISIONS}")
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a neurodelay.losses.Loss, got {type(loss).__name__}")
        network[output]  # raises a clear KeyError for unknown populations
        keys = tuple(sorted((check_key(network, tuple(k)) for k in keys), key=key_name))
        if not keys:
            raise ValueError("a classifier needs at least one trained parameter key")
        if len(set(keys)) != len(keys):
            raise ValueError(f"a parameter key is listed twice: {[key_name(k) for k in keys]}")
        if input_noise < 0:
            raise ValueError(f"input_noise must be >= 0 s, got {input_noise}")
        self._network = network
        self._keys = keys
        self.loss = loss
        self.output = output
        self.decision = decision
        self.duration = duration
        self.tau_weight = tau_weight
        self.input_noise = float(input_noise)
        self.eval_chunk = int(eval_chunk)
        self.n_threads = n_threads
        get_engine(engine, network)  # unknown names and unsupported networks fail here
        self.engine = engine
        if rule is not None:
            from ..plasticity import ThreeFactorRule
            if not isinstance(rule, ThreeFactorRule):
                raise ValueError(f"rule must be None or a ThreeFactorRule, got {type(rule).__name__}")
            if set(rule.keys()) != set(keys):
                raise ValueError(f"the rule updates {[key_name(k) for k in rule.keys()]} but the classifier trains "
                                 f"{[key_name(k) for k in keys]}; they must be the same keys")
            rule.check(network)
        self.rule = rule

    # ---- Model interface ----------------------------------------------------------------------
    @property
    def keys(self) -> tuple:
        return self._keys

    @property
    def network(self) -> Network:
        return self._network

    def values(self) -> dict:
        return {k: get_param(self._network, k) for k in self._keys}

    def with_values(self, values: dict) -> "SpikingClassifier":
        net = self._network
        chosen = {key: values[key] for key in self._keys if key in values}
        for key, value in chosen.items():
            if key[1] not in TIME_CONSTANTS:
                net = set_param(net, key, value)
        for name, taus in _time_constants_kept_apart(net, chosen).items():
            net = net.with_population(name, **taus)
        return self.with_network(net)

    def with_network(self, network: Network) -> "SpikingClassifier":
        """The same classifier on another network (same populations and projections)."""
        clone = object.__new__(SpikingClassifier)
        clone.__dict__.update(self.__dict__)
        clone._network = network
        return clone

    def _duration(self, data) -> float:
        return float(self.duration if self.duration is not None else data.duration)

    def _noisy(self, inputs: SpikeTrains, duration: float, rng: np.random.Generator) -> SpikeTrains:
        if self.input_noise == 0.0 or len(inputs) == 0:
            return inputs
        time = np.clip(inputs.time + rng.normal(0.0, self.input_noise, len(inputs)), 0.0, duration)
        return SpikeTrains(inputs.trial, inputs.neuron, time, inputs.n_trials, inputs.n_neurons)

    def loss_and_grad(self, batch, rng: np.random.Generator) -> BatchResult:
        duration = self._duration(batch)
        inputs = self._noisy(batch.inputs, duration, rng)
        if self.rule is not None:
            from ..plasticity import three_factor_gradients
            result = three_factor_gradients(self._network, self.rule, inputs, duration, self.loss, batch.labels,
                                            n_threads=self.n_threads)
        else:
            result = loss_and_grad(self._network, inputs, duration, self.loss, batch.labels, params=self._keys,
                                   n_threads=self.n_threads, engine=self.engine)
        pred = decide(result.record, self.output, self.decision, self.tau_weight)
        return BatchResult(result.loss, result.grads, int(np.sum(pred == batch.labels)), len(batch))

    def _simulate(self, inputs: SpikeTrains, duration: float):
        engine = get_engine(self.engine, self._network)
        return engine.simulate(self._network, inputs, duration, n_threads=self.n_threads)

    def evaluate(self, data) -> Evaluation:
        duration = self._duration(data)
        losses, preds = [], []
        for start in range(0, len(data), self.eval_chunk):
            part = data.select(np.arange(start, min(start + self.eval_chunk, len(data))))
            record = self._simulate(part.inputs, duration)
            losses.append(self.loss.value(record, part.labels))
            preds.append(decide(record, self.output, self.decision, self.tau_weight))
        losses = np.concatenate(losses) if losses else np.zeros(0)
        preds = np.concatenate(preds) if preds else np.zeros(0, np.int64)
        accuracy = float(np.mean(preds == data.labels)) if len(data) else float("nan")
        return Evaluation(float(np.mean(losses)) if len(losses) else float("nan"), accuracy, preds)

    def predict(self, inputs: SpikeTrains, duration: float) -> np.ndarray:
        """Predicted class of each trial of `inputs` (no labels needed; -1 = undecided)."""
        preds = []
        for start in range(0, inputs.n_trials, self.eval_chunk):
            part = inputs.select_trials(np.arange(start, min(start + self.eval_chunk, inputs.n_trials)))
            record = self._simulate(part, duration)
            preds.append(decide(record, self.output, self.decision, self.tau_weight))
        return np.concatenate(preds) if preds else np.zeros(0, np.int64)
