"""A spiking network as a trainable classifier: exact EventProp gradients, decisions from the output.

:class:`SpikingClassifier` implements the :class:`~neurodelay.train.model.Model`
interface on top of :func:`neurodelay.gradients.loss_and_grad`. The class of
a trial is read from the output population by one of three rules (with ``rule=`` a
:class:`~neurodelay.plasticity.ThreeFactorRule`, the updates come from that online rule,
:func:`neurodelay.plasticity.three_factor_gradients`, instead of the exact gradients):

* ``first_spike``: the output LIF neuron that fires first (undecided, -1, if none fires);
* ``max_voltage``: the readout whose maximum voltage over the trial is largest;
* ``integral``: the readout with the largest exponentially weighted voltage
  integral (time constant ``tau_weight`` s, or the plain mean if None);
* ``window_max_voltage``: one decision per time window (``windows``, (start, stop) pairs in s): the
  readout whose maximum voltage inside that window is largest (Moro et al.'s per-segment MTS-XOR).

Per-window labels: with ``label_key`` the labels come from ``data.trial_meta[label_key]`` (e.g.
``"segment_labels"``, shape (n_trials, n_windows)) instead of ``data.labels``; accuracies then count
every (trial, window) decision (chance 1 / n_classes), and predictions have shape (n_trials, n_windows).

Determinism: the engines give bit-identical results for any number of
threads, so a run is reproducible from its seed alone.

PSP-normalised weights (``psp_normalised=True``, for training time constants): the trained weights are
``u = w psp_peak(tau_m, tau_s)`` of their target neuron (the height of the PSP a synapse gives), and a
change of tau_m / tau_s keeps ``u`` fixed. The time constants then change the *shape* of the PSPs
(the memory) but not their height: with raw weights the tau gradient at initialisation on MTS-XOR is
99.3-100 % the amplitude part that a weight change would give as well (``bench/tau_gradient_split.py``),
so trained time constants act as a second gain and the long-memory solution is found by chance.
Gradients by the chain rule: ``dL/du = dL/dw / peak`` and ``dL/dlog tau = dL/dlog tau|_w -
(dlog peak / dlog tau) sum_in w dL/dw`` (per target neuron).

Training noise (optional, off by default): each input spike time is moved
by Gaussian noise of standard deviation ``input_noise`` seconds during
training only (drawn from the trainer's generator), clipped into [0, duration].
"""

from __future__ import annotations

import numpy as np

from ..engines import get_engine
from ..events.readout import max_voltage, weighted_voltage_integral, window_max_voltage
from ..gradients import check_key, check_value, get_param, loss_and_grad, set_param
from ..losses import Loss, first_spikes
from ..network import TAU_RELATIVE_GAP, Network
from ..spikes import SpikeTrains
from .init import psp_peak
from .model import BatchResult, Evaluation
from .optim import key_name

__all__ = ["SpikingClassifier", "DECISIONS", "decide"]

DECISIONS = ("first_spike", "max_voltage", "integral", "window_max_voltage")
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


def decide(record, population: str, rule: str, tau_weight: float | None = None, windows=None) -> np.ndarray:
    """Predicted class (int64, -1 = undecided) of every trial of an event record (see the module docstring);
    for ``window_max_voltage`` one per trial and window, shape (n_trials, n_windows)."""
    if rule == "first_spike":
        times, _ = first_spikes(record, population)
        pred = np.argmin(times, axis=1)
        pred[~np.isfinite(times.min(axis=1))] = -1
        return pred.astype(np.int64)
    if rule == "max_voltage":
        scores = max_voltage(record, population)[0]
    elif rule == "integral":
        scores = weighted_voltage_integral(record, population, tau_weight)
    elif rule == "window_max_voltage":
        if windows is None:
            raise ValueError("decision 'window_max_voltage' needs windows ((start, stop) pairs in s)")
        return np.argmax(window_max_voltage(record, population, windows)[0], axis=1).astype(np.int64)
    else:
        raise ValueError(f"unknown decision rule {rule!r}; choose one of {DECISIONS}")
    return np.argmax(scores, axis=1).astype(np.int64)


class SpikingClassifier:
    """A network, the keys it trains, its loss and its decision rule (an immutable value).

    network: the :class:`~neurodelay.network.Network`; keys: parameter keys
    of :mod:`neurodelay.gradients` (e.g. ``("input->hidden", "weight")``);
    loss: a :class:`~neurodelay.losses.Loss`; output: the population read
    out; decision: one of :data:`DECISIONS`; duration: trial length (s,
    default: each data set's own); windows: (start, stop) pairs in s of the ``window_max_voltage``
    decision; label_key: a ``trial_meta`` key holding the labels (default: ``data.labels``);
    eval_chunk: trials simulated at once in
    :meth:`evaluate`; n_threads: engine threads (default: all cores); engine: a
    name of :mod:`neurodelay.engines` or an engine object (default "auto"); rule:
    None (exact EventProp gradients) or a :class:`~neurodelay.plasticity.ThreeFactorRule`
    updating exactly the trained keys (its updates are computed in the event engine).
    """

    def __init__(self, network: Network, keys, loss: Loss, output: str, decision: str = "first_spike", *,
                 duration: float | None = None, tau_weight: float | None = None, input_noise: float = 0.0,
                 windows=None, label_key: str | None = None, eval_chunk: int = 2000, n_threads: int | None = None,
                 engine="auto", rule=None, psp_normalised: bool = False):
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision rule {decision!r}; choose one of {DECISIONS}")
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a neurodelay.losses.Loss, got {type(loss).__name__}")
        network[output]  # raises a clear KeyError for unknown populations
        keys = tuple(sorted((check_key(network, tuple(k)) for k in keys), key=key_name))
        if not keys:
            raise ValueError("a classifier needs at least one trained parameter key")
        per_trial = [k for k in keys if k[-1] == "trial"]
        if per_trial:
            raise ValueError(f"keys: {per_trial} name per-trial initial-state gradients, which a classifier "
                             f"cannot train; train the description's ('pop', 'v_init') instead")
        if len(set(keys)) != len(keys):
            raise ValueError(f"a parameter key is listed twice: {[key_name(k) for k in keys]}")
        if decision == "window_max_voltage":
            w = np.asarray(windows if windows is not None else np.zeros((0, 2)), dtype=float)
            if w.ndim != 2 or w.shape[1] != 2 or w.shape[0] < 1 or np.any(w[:, 1] < w[:, 0]) or np.any(w < 0):
                raise ValueError(f"windows must be (start, stop) pairs in s for decision 'window_max_voltage', "
                                 f"got {windows!r}")
            windows = w
        elif windows is not None:
            raise ValueError(f"windows is only used by the 'window_max_voltage' decision, not {decision!r}")
        if input_noise < 0:
            raise ValueError(f"input_noise must be >= 0 s, got {input_noise}")
        self._network = network
        self._keys = keys
        self.loss = loss
        self.output = output
        self.decision = decision
        self.duration = duration
        self.tau_weight = tau_weight
        self.windows = windows
        self.label_key = label_key
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
        self.psp_normalised = bool(psp_normalised)
        if self.psp_normalised:
            if rule is not None:
                raise ValueError("psp_normalised applies to exact gradients, not to a three-factor rule")
            odd = [k for k in keys if len(k) != 2]
            if odd:
                raise ValueError(f"psp_normalised needs per-neuron keys; got {[key_name(k) for k in odd]}")

    # ---- PSP-normalised weights ------------------------------------------------------------------
    def _peaks(self, net: Network, post: str, h: float = 1e-6):
        """(peak, dlog peak / dlog tau_m, dlog peak / dlog tau_s) per neuron of population `post`."""
        pop = net[post]
        tm = np.broadcast_to(np.asarray(pop.tau_m, float), (pop.n,))
        ts = np.broadcast_to(np.asarray(pop.tau_s, float), (pop.n,))
        peak = np.array([psp_peak(a, b) for a, b in zip(tm, ts)])
        d_m = np.array([(np.log(psp_peak(a * (1 + h), b)) - np.log(psp_peak(a * (1 - h), b))) / (2 * h)
                        for a, b in zip(tm, ts)])
        d_s = np.array([(np.log(psp_peak(a, b * (1 + h))) - np.log(psp_peak(a, b * (1 - h)))) / (2 * h)
                        for a, b in zip(tm, ts)])
        return peak, d_m, d_s

    def _synapse_peaks(self, net: Network, key) -> np.ndarray:
        proj = net.projection(*key[0].split("->"))
        return self._peaks(net, proj.post)[0][proj.post_idx]

    def _to_psp_grads(self, net: Network, grads: dict) -> dict:
        """Raw-parameter gradients -> gradients of (PSP-unit weights, time constants at fixed PSP height)."""
        out = dict(grads)
        for key in self._keys:
            if key[1] != "weight" or key not in grads:
                continue
            proj = net.projection(*key[0].split("->"))
            peak, d_m, d_s = self._peaks(net, proj.post)
            g = np.asarray(grads[key], float)
            out[key] = g / peak[proj.post_idx]
            wg = np.bincount(proj.post_idx, weights=np.asarray(proj.weight, float) * g, minlength=net[proj.post].n)
            for kind, d in (("tau_m", d_m), ("tau_s", d_s)):
                tkey = (proj.post, kind)
                if tkey in out:
                    tau = np.broadcast_to(np.asarray(getattr(net[proj.post], kind), float), (net[proj.post].n,))
                    out[tkey] = np.asarray(out[tkey], float) - d * wg / tau
        return out

    # ---- Model interface ----------------------------------------------------------------------
    @property
    def keys(self) -> tuple:
        return self._keys

    @property
    def network(self) -> Network:
        return self._network

    def values(self) -> dict:
        vals = {k: get_param(self._network, k) for k in self._keys}
        if self.psp_normalised:
            for k in self._keys:
                if k[1] == "weight":
                    vals[k] = vals[k] * self._synapse_peaks(self._network, k)
        return vals

    def with_values(self, values: dict) -> "SpikingClassifier":
        net = self._network
        chosen = {key: values[key] for key in self._keys if key in values}
        if self.psp_normalised:   # weights not given keep their PSP heights
            chosen = {**{k: v for k, v in self.values().items() if k[1] == "weight"}, **chosen}
        for name, taus in _time_constants_kept_apart(net, chosen).items():
            net = net.with_population(name, **taus)
        for key, value in chosen.items():
            if key[1] not in TIME_CONSTANTS:
                if self.psp_normalised and key[1] == "weight":   # PSP heights kept: raw w at the new taus
                    value = np.asarray(value, float) / self._synapse_peaks(net, key)
                net = set_param(net, key, value)
        return self.with_network(net)

    def with_network(self, network: Network) -> "SpikingClassifier":
        """The same classifier on another network (same populations and projections)."""
        clone = object.__new__(SpikingClassifier)
        clone.__dict__.update(self.__dict__)
        clone._network = network
        return clone

    def labels_of(self, data) -> np.ndarray:
        """The labels the loss and the accuracy use: ``data.labels`` or ``data.trial_meta[label_key]``."""
        if self.label_key is None:
            return data.labels
        if self.label_key not in data.trial_meta:
            raise ValueError(f"label_key {self.label_key!r} is not in the data's trial_meta "
                             f"({sorted(data.trial_meta)})")
        return np.asarray(data.trial_meta[self.label_key])

    def _decide(self, record) -> np.ndarray:
        return decide(record, self.output, self.decision, self.tau_weight, self.windows)

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
        labels = self.labels_of(batch)
        if self.rule is not None:
            from ..plasticity import three_factor_gradients
            result = three_factor_gradients(self._network, self.rule, inputs, duration, self.loss, labels,
                                            n_threads=self.n_threads)
        else:
            result = loss_and_grad(self._network, inputs, duration, self.loss, labels, params=self._keys,
                                   n_threads=self.n_threads, engine=self.engine)
        pred = self._decide(result.record)
        grads = self._to_psp_grads(self._network, result.grads) if self.psp_normalised else result.grads
        # with per-window labels every (trial, window) decision counts as one "trial" of the accuracy
        return BatchResult(result.loss, grads, int(np.sum(pred == labels)), int(np.size(labels)))

    def _simulate(self, inputs: SpikeTrains, duration: float):
        engine = get_engine(self.engine, self._network)
        return engine.simulate(self._network, inputs, duration, n_threads=self.n_threads)

    def evaluate(self, data) -> Evaluation:
        duration = self._duration(data)
        losses, preds = [], []
        for start in range(0, len(data), self.eval_chunk):
            part = data.select(np.arange(start, min(start + self.eval_chunk, len(data))))
            record = self._simulate(part.inputs, duration)
            losses.append(self.loss.value(record, self.labels_of(part)))
            preds.append(self._decide(record))
        losses = np.concatenate(losses) if losses else np.zeros(0)
        labels = self.labels_of(data)
        preds = np.concatenate(preds) if preds else np.zeros(np.shape(labels), np.int64)
        accuracy = float(np.mean(preds == labels)) if len(data) else float("nan")
        extra = {}
        if np.ndim(labels) == 2 and len(data):
            extra["window_accuracy"] = np.mean(preds == labels, axis=0)
        return Evaluation(float(np.mean(losses)) if len(losses) else float("nan"), accuracy, preds, extra)

    def predict(self, inputs: SpikeTrains, duration: float) -> np.ndarray:
        """Predicted class of each trial of `inputs` (no labels needed; -1 = undecided)."""
        preds = []
        for start in range(0, inputs.n_trials, self.eval_chunk):
            part = inputs.select_trials(np.arange(start, min(start + self.eval_chunk, inputs.n_trials)))
            record = self._simulate(part, duration)
            preds.append(self._decide(record))
        return np.concatenate(preds) if preds else np.zeros(0, np.int64)
