"""Temporal hierarchy: time constants (and delays) as a feedforward network's memory.

After Moro et al. 2024 ("The role of temporal hierarchy in spiking neural
networks"): feedforward SNNs whose membrane time constants grow from the input
towards the output (``delta_tau > 0``) do better on multi-time-scale tasks than
the reverse order, and trained time constants develop that order from a
homogeneous start. After Perez-Nieves et al. 2021: trained time constants
spread out in gamma / log-normal shapes.

* :func:`tau_profile` — layer-wise time constants (linear or tanh profile, optional per-neuron spread);
* :func:`hierarchy_network` — input -> hidden layers with a tau profile -> readout;
* :func:`hierarchy_point` — train one such network on Moro et al.'s MTS-XOR
  (:func:`neurodelay.data.mts_xor_moro`) and return its test accuracy (one sweep point);
* :func:`hierarchy_sweep` — accuracy against ``delta_tau`` and the number of layers through
  :func:`neurodelay.sweep.run_sweep`;
* :func:`learned_taus` — per-layer distribution of trained time constants (median, quartiles, slope);
* :func:`fit_tau_distribution` — gamma and log-normal fits with goodness of fit.

Times are in seconds. ``n_layers`` counts the layers *with* the readout (Moro
et al.'s convention): 3 layers = 2 hidden layers + readout. The profile spans the
hidden layers; the readout keeps ``readout_tau`` (0.05 s).

Readout (as Moro et al.: one label per segment): by default (``target="segments"``) the network is
trained and scored on all 6 segment labels, each read as the maximum readout voltage inside the
segment's coding window (the last 10 steps, where channel 2 codes its bit and where Moro et al. score
the per-step readout) (:class:`~neurodelay.losses.WindowedMaxVoltageCrossEntropy`, mean cross-entropy over
the segments, exact EventProp gradients); the accuracy counts every (trial, segment) decision (chance
50 %). ``target="last"``: only the last segment's label, read as the maximum over the whole trial. The
readouts' bias is trained (Moro et al.'s layers are ``nn.Linear`` with a bias): without it the two
readouts' window maxima can only be shifted against each other through the weights of always-positive
hidden activity, and a learnable target (the segment's channel-2 bit) stayed at 52-58 %.

Which time constant holds the memory (``NETWORK_OPTIONS['memory']``). Moro et al.'s hidden neurons
reset by *subtraction* (``V -= theta`` at a spike), so V stays a leaky integral of the input over
``tau_mem`` minus the spikes; ours reset V to 0, which erases whatever V held about channel 1 at the
first spike. Measured (seed 0, 2 hidden layers of 10, 20 epochs of 512 trials, ablation targets of
:func:`relabel`, ``bench/hierarchy_ablation.py``): with the profile on tau_m (tau_s 5 ms, the default,
Moro et al.'s literal mapping) the segment's channel-2 bit is read at 99.5 % but the channel-1 bit at
57.9 % (75 % in the first segment, chance from the fourth); with the profile on tau_s (the synaptic
current, which a spike does not reset; tau_m 20 ms; ``memory="tau_s"``) the channel-1 bit at 93.6 % but
the channel-2 bit at 49.9 % (a 0.3 s current smears the 0.15 s segments together). Each network holds one
of the two time scales the XOR needs, and the XOR stays at chance with either (49.9 % / 51.2 %), and with
``memory="mixed"`` (half of each layer in each form; 47.9 % with 10, 49.7 % with 20 per layer). Moro et
al. also batch-normalise every layer's input current and read a cross-entropy at every time step;
neither is in this model.

Memory alone does not explain the failure: with delays as the memory (``delay_max=1.0`` s on every
synapse into a hidden layer, hidden tau_m 20 ms, 20 per layer, 20 epochs of 256 trials, seed 0) the
channel-1 bit is read at 96.6 % (53.6 % without delays), but the XOR stays at 51.0 % (40 epochs). Nor
would a subtractive reset change our neurons: in continuous time with a synaptic current V is continuous
and equals theta at a spike, so ``V -= theta`` and ``V = 0`` are the same reset (they differ on a clock,
where one step can push V past theta and the surplus survives a subtractive reset).

Why the XOR stays at chance even with the memory (issue 12). ``labels="xor_static"`` (:func:`relabel`,
:func:`bit1_in_windows`) puts channel 1's evidence into every coding window, so the XOR needs no
memory. Measured (tau_center 0.02 s on tau_m, 256 training trials, batch 32, seed 0 unless stated,
``n_segments=1`` for the 60-epoch runs): the default 2 hidden layers of 10 stay at chance on it (48.3 %
with 6 segments and 10 epochs, 51.6 % with 60 epochs), 2 layers of 20 reach 72.7 / 94.9 % (seeds 0 / 1),
*one* hidden layer 90.2 % (10 neurons) and 97.7 / 94.1 / 98.0 % (20, seeds 0-2). The network, not the
memory, is what fails: two narrow hidden layers trained together at ``lr`` 0.02 do not learn the XOR
even when both bits are present (frozen h1 -> h2: 88.3 % on seed 0 but 50.8 % on seed 1; the trained
network's hidden-weight gradients fall from a median 4e-4 - 1.5e-3 to 1e-6 - 1e-5 as h1 falls silent to
1.8 spikes per neuron and trial, from whose window counts a logistic probe reads bit 1 / bit 2 at only
88 / 82 %). With one layer of 20 the window counts of h1 hold the XOR itself (probe 99.6 %). On the real
task (one hidden layer of 20, fixed synaptic delays U[0, 1] s on input -> h1 as the memory, 40 epochs):
66.3 / 56.3 / 51.7 % (seeds 0-2), 73.1 % with 40 neurons, 512 trials and 60 epochs; h1 then holds both
bits (probes 95.6 / 90.6 %) but not their XOR (56.0 %): random delays bring each coding window only the
channel-1 synapses whose delay lands there (expected 12 vs 4 arrivals per neuron and window, against 120 vs
40 from channel 2), and a different share in each window, while the weights that must put the
conjunction at threshold are shared by all windows. Delays that give every hidden neuron the same share
of channel 1 in every window (channel-1 input j delayed to the start of window j mod 6) reach 78.6 / 60.7
/ 54.6 % (seeds 0-2; per hidden neuron instead: 58.9 %): better on every seed, not yet reliable.
``bench/xor_probe.py`` runs these probes.

Keeping the narrow layers alive (issue 12; ``init_rate``, ``silent_penalty``, ``silent_scope``, ``max_rate``
of :func:`hierarchy_point`, preset :data:`ACTIVITY_OPTIONS`). Exact gradients give a silent neuron no
gradient; Moro et al.'s batch normalisation, which keeps every unit alive, is not in this model. From the
default initialisation h1 falls nearly silent (1.8 spikes per neuron and trial after training, seed 0);
from a calibrated start neurons still die in the failing runs (seed 1 at 20 Hz without penalty: 4 of h1's
10 and 5 of h2's 10 end below 0.3 spikes per trial in every (bit 1, bit 2) condition, and the readout
separates 3 of the 4 conditions: 71 %). Measured on the memory-free XOR (``xor_static``, ``n_segments=1``,
tau_center 0.02 s, 2 hidden layers of 10, 256 training trials, batch 32, lr 0.02, 60 epochs unless stated;
15-75 s per run; seeds 0 / 1 / 2 (/ 3 / 4)):

* default initialisation: 51.6 / 51.2 / 55.5 / 50.4 / 59.8 %;
* ``init_rate`` (:func:`~neurodelay.train.calibrate_rates`) 10 Hz: 66.4 / 98.0 / 94.5 %; 20 Hz: 96.5 / 71.1
  / 81.6 %; 40 Hz: 97.3 / 73.0 / 87.9 %; 20 Hz, 120 epochs: 98.0 / 84.4 / 55.9 %; 10 Hz, 120 epochs: 96.5 /
  50.8 / 98.0 %; 20 Hz, lr 0.005: 88.7 / 68.8 / 89.8 %; 10 Hz with ``max_rate`` 60 Hz: 67.6 / 97.7 / 94.9 %;
  ``init_fraction`` 0.5 (threshold at the median drive): 90.2 / 71.1 / 71.9 % (4 Hz), 71.5 / 73.4 / 90.2 % (20 Hz);
* per-trial silent-neuron penalty on top of 20 Hz: it *hurts* (it pushes every neuron to fire on every
  trial, against the selectivity the XOR needs): 94.5 / 46.9 / 88.7 % (strength 0.005), 73.8 / 53.5 /
  69.5 % (0.05), 80.1 / 58.2 / 75.8 % (0.01 with ``max_rate`` 100 Hz);
* the penalty on dead neurons only (``silent_scope="batch"``: silent in the whole minibatch), strength 0.1:
  alone 81.2 / 53.9 / 56.2 %; with 20 Hz (:data:`ACTIVITY_OPTIONS`) 94.1 / 86.3 / 93.8 / 85.2 / 74.2 %;
  with 10 Hz 79.3 / 73.0 / 96.5 / 98.8 / 95.3 %; with 20 Hz and 120 epochs 96.9 / 90.2 / 87.1 / 52.7 /
  97.7 %; with 20 Hz and lr 0.01 91.4 / 84.8 / 85.9 / 76.6 / 44.5 %; strength 0.3 with 20 Hz 91.8 / 90.6 /
  48.8 / 53.5 / 73.4 %;
* 3 hidden layers of 10 (``n_layers=4``): default 50.8 / 53.1 / 50.4 %, 20 Hz 55.1 / 53.1 / 56.2 %,
  :data:`ACTIVITY_OPTIONS` 69.5 / 68.4 / 55.5 %.

Calibrated starts with the dead-neuron penalty learn the static XOR with 2 hidden layers of 10 on seeds 0-2
(> 85 %) and beat the default on every seed measured (mean over 5 seeds 86.7 % against 53.7 %), but not
reliably (seed 4: 74.2 %; which seed fails moves with the rate and the number of epochs), nor with 3 hidden
layers. They stay off by default here; ``analyses/temporal_hierarchy.py`` uses them on every part. On the
6-segment task the network stays at chance with them; with one segment (``n_segments=1``: channel 1, a
50 ms gap, one coding window) 2 and 3 hidden layers of 10 with tau_m around 0.3 s learn it (README,
"Temporal hierarchy", for the measured numbers).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .common import check_int, check_positive, rng_from, with_provenance

__all__ = ["tau_profile", "hierarchy_network", "hierarchy_point", "hierarchy_sweep", "learned_taus",
           "fit_tau_distribution", "param_count", "matched_hidden", "budget_point", "PROFILES", "MEMORIES",
           "ACTIVITY_OPTIONS"]

#: the memories compared at a fixed parameter budget: learn string of each
MEMORIES = {"delays": "weight,synaptic", "taus": "weight,tau_m,tau_s", "both": "weight,synaptic,tau_m,tau_s"}

PROFILES = ("linear", "tanh")
#: initial weights of :func:`hierarchy_point`'s networks: in PSP units (a weight w gives a PSP of peak w
#: whatever the layer's tau_m, so a tau profile changes the memory, not the drive), zero-mean fan-in
#: normal (as Moro et al.'s default initialisation); the profile on tau_m (see the module docstring). Measured
#: after training (2 hidden layers of 10, 20 epochs, seed 0): 35-61 (h1) and 79-173 (h2) test spikes per neuron and 1 s trial.
NETWORK_OPTIONS = dict(psp_units=True, input_mean=0.0, input_gain=3.0, hidden_mean=0.0, gain=3.0, output_gain=0.3,
                       memory="tau_m")
MEMORY_CONSTANTS = ("tau_m", "tau_s", "mixed")
#: keyword arguments of :func:`hierarchy_point` that keep the hidden layers alive under exact gradients
#: (every hidden neuron calibrated to 20 Hz on training data, then a penalty on the neurons silent in a whole
#: minibatch): the best measured setting on the memory-free XOR with 2 hidden layers of 10 (see the module
#: docstring); off by default
ACTIVITY_OPTIONS = dict(init_rate=20.0, silent_penalty=0.1, silent_scope="batch")
MIN_TAU = 1e-3          # s: profiles are clipped here (Moro et al. clip at 0; a time constant must be > 0)


def tau_profile(tau_center, delta_tau, n_layers: int, profile: str = "linear", *, spread: float = 0.0,
                n_neurons: int | None = None, seed=None, min_tau: float = MIN_TAU):
    """Layer-wise time constants of Moro et al. (s).

    Parameters
    ----------
    tau_center : float
        Centre of the profile, s (> 0).
    delta_tau : float
        Difference last layer - first layer, s; negative: slow near the input, positive: slow near
        the output, 0: homogeneous.
    n_layers : int
        Number of layers the profile spans (>= 1).
    profile : {"linear", "tanh"}
        ``linear``: evenly from ``tau_center - delta/2`` to ``tau_center + delta/2``;
        ``tanh``: ``h = tanh(linspace(0, 1, n) - 0.5)`` rescaled to [-0.5, 0.5],
        ``tau = tau_center + delta_tau h``. Both give ``tau_center`` for one layer and agree for two.
    spread : float
        Relative per-neuron spread: with ``n_neurons``, neuron taus ~ N(tau_layer, (spread tau_layer)^2).
    n_neurons : int, optional
        Neurons per layer; if given, returns one array of per-neuron values per layer.
    seed : int
        Needed when ``spread > 0``.
    min_tau : float
        Every value is clipped to at least this, s.

    Returns
    -------
    ndarray (n_layers,) of s, or a list of n_layers arrays (n_neurons,) of s if ``n_neurons`` is given.
    """
    tau_center = float(check_positive(tau_center, "tau_center"))
    delta_tau = float(delta_tau)
    if not np.isfinite(delta_tau):
        raise ValueError(f"delta_tau must be a finite number of seconds, got {delta_tau}")
    n_layers = check_int(n_layers, "n_layers")
    spread = float(check_positive(spread, "spread", strictly=False))
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if n_layers == 1:
        h = np.zeros(1)
    elif profile == "linear":
        h = np.linspace(-0.5, 0.5, n_layers)
    else:
        t = np.tanh(np.linspace(0.0, 1.0, n_layers) - 0.5)
        h = t / (2.0 * np.tanh(0.5))
    layers = np.maximum(tau_center + delta_tau * h, min_tau)
    if n_neurons is None:
        if spread > 0:
            raise ValueError("spread > 0 needs n_neurons (per-neuron values)")
        return layers
    n_neurons = check_int(n_neurons, "n_neurons")
    if spread == 0:
        return [np.full(n_neurons, t) for t in layers]
    rng = rng_from(seed)
    return [np.maximum(rng.normal(t, spread * t, n_neurons), min_tau) for t in layers]


def hierarchy_network(taus, *, n_inputs: int = 40, hidden: int = 10, tau_s: float = 5e-3,
                      readout_tau: float = 0.05, input_gain: float = 1.0, gain: float = 1.0,
                      hidden_mean: float = 8.0, output_gain: float = 3.0, input_mean: float = 0.6,
                      psp_units: bool = False, tau_s_ratio: float | None = None, memory: str = "tau_m",
                      fast_tau: float = 0.02, delay_max: float = 0.0, seed=0):
    """A feedforward network ``input -> h1 -> ... -> hL -> output`` (``Readout``, 2 classes).

    taus: one tau_m (s) per hidden layer, scalars or arrays of ``hidden`` values (see :func:`tau_profile`).
    Weights: fan-in normal N(mean, gain / sqrt(n_pre)) (input mean 0.6, hidden -> hidden mean
    ``hidden_mean``: with 0.3 the second hidden layer of 10 neurons (tau_m 0.3 s) stayed silent on
    Moro's MTS-XOR, 8 keeps every layer firing a few spikes per trial; readout mean 0). psp_units:
    every projection's weights are divided by the PSP peak of its target (``psp_peak(tau_m, tau_s)``
    at the layer's mean tau_m), so a weight w gives a PSP of peak w whatever the time constants (as
    the current-based discrete-time neurons of Moro et al., where an input adds w to V). tau_s_ratio:
    if given, each hidden neuron's tau_s is this fraction of its tau_m (a synaptic current that keeps
    evidence across the reset of V at a spike), else ``tau_s`` s. memory: which time constant of the
    hidden neurons takes the profile's values ``taus``: ``"tau_m"`` (Moro et al.'s tau_mem on V; tau_s as
    above) or ``"tau_s"`` (the synaptic current I, which a spike does not reset, holds the layer's
    memory; tau_m = ``fast_tau`` s turns I into a firing rate: see the module docstring) or ``"mixed"``
    (the first half of each layer as ``"tau_m"``, the second as ``"tau_s"``). delay_max: every synapse of
    the projections into the hidden layers gets a synaptic delay drawn uniformly from [0, delay_max] s
    (drawn after the weights, so the weights do not depend on it; 0: no delays; the readout's synapses
    keep none). Returns (network, names of the hidden populations).
    """
    from ..network import LIF, Network, Readout, SpikeSource
    from ..train import init_weights
    from ..train.init import psp_peak

    rng = rng_from(seed)
    names = [f"h{i + 1}" for i in range(len(taus))]
    if memory not in MEMORY_CONSTANTS:
        raise ValueError(f"memory must be one of {MEMORY_CONSTANTS}, got {memory!r}")
    if tau_s_ratio is not None and not 0 < float(tau_s_ratio) < 1:
        raise ValueError(f"tau_s_ratio must lie in (0, 1), got {tau_s_ratio}")
    if tau_s_ratio is not None and memory == "tau_s":
        raise ValueError("tau_s_ratio applies to memory='tau_m' only")
    net = Network().add(SpikeSource("input", int(n_inputs)))
    for name, tau in zip(names, taus):
        tau = np.broadcast_to(np.asarray(tau, dtype=float), (hidden,)).copy()
        if memory == "tau_m":
            tm, ts = tau, (tau_s if tau_s_ratio is None else float(tau_s_ratio) * tau)
        elif memory == "mixed":
            # first half of the layer: the profile on tau_m (tau_s), second half: on tau_s (tau_m fast_tau)
            half = np.arange(hidden) < (hidden + 1) // 2
            tm = np.where(half, tau, float(check_positive(fast_tau, "fast_tau")))
            ts = np.where(half, tau_s, tau)
            near = np.abs(ts - tm) < 0.1 * tm
            ts = np.where(near, np.where(ts < tm, 0.9, 1.1) * tm, ts)
        else:
            # the profile on tau_s, kept at least 10 % away from tau_m (the Network refuses tau_m == tau_s)
            tm = np.full(hidden, float(check_positive(fast_tau, "fast_tau")))
            near = np.abs(tau - tm) < 0.1 * tm
            ts = np.where(near, np.where(tau < tm, 0.9, 1.1) * tm, tau)
        net = net.add(LIF(name, hidden, tau_m=tm, tau_s=ts, refractory=1e-3))
    net = net.add(Readout("output", 2, tau_m=readout_tau, tau_s=tau_s))
    pre, n_pre = "input", int(n_inputs)
    for i, name in enumerate(names):
        mean, g = (input_mean, input_gain) if i == 0 else (hidden_mean, gain)
        w = init_weights("fan_in", n_pre, n_pre * hidden, rng, mean=mean, gain=g)
        if psp_units:
            w = w / psp_peak(float(np.mean(net[name].tau_m)), float(np.mean(net[name].tau_s)))
        net = net.connect(pre, name, w)
        pre, n_pre = name, hidden
    w = init_weights("fan_in", n_pre, n_pre * 2, rng, gain=output_gain)
    net = net.connect(pre, "output", w / psp_peak(readout_tau, tau_s) if psp_units else w)
    delay_max = float(check_positive(delay_max, "delay_max", strictly=False))
    if delay_max > 0:
        for proj in [p for p in net.projections if p.post in names]:
            net = net.with_projection(proj.pre, proj.post, synaptic=rng.uniform(0.0, delay_max, proj.n_syn))
    return net, names


def _projections(names):
    pre = ["input"] + list(names)
    post = list(names) + ["output"]
    return [f"{a}->{b}" for a, b in zip(pre, post)]


def hierarchy_point(delta_tau: float = 0.0, n_layers: int = 3, *, seed: int, profile: str = "linear",
                    tau_center: float = 0.3, spread: float = 0.1, hidden: int = 10, learn: str = "weight",
                    epochs: int = 20, batch_size: int = 32, n_train: int = 400, n_test: int = 400,
                    lr: float = 0.02, lr_tau: float = 0.02, d_max: float = 0.2,
                    target: str = "segments", network_options: dict | None = None,
                    labels: str = "xor", readout_bias: bool = True, hidden_bias: bool = False,
                    lr_psp: bool = True, init_delay: float = 0.0, init_rate: float | None = None,
                    silent_penalty: float = 0.0, max_rate: float | None = None,
                    rate_strength: float = 0.01, n_segments: int = 6,
                    init_fraction: float | None = None, silent_scope: str = "trial") -> xr.Dataset:
    """Train one hierarchy network on Moro et al.'s MTS-XOR; its test accuracy and learned time constants.

    learn: comma-separated kinds (``weight``, ``tau_m``, ``synaptic`` ...). The data seeds are fixed
    (train 0, test 1), the network's initialisation and batch order follow ``seed``. target:
    ``"segments"`` (every segment's label read in its window) or ``"last"`` (see the module docstring).
    Returns a Dataset with ``accuracy`` (fraction of (trial, segment) decisions, or of trials for
    ``"last"``), ``segment_accuracy`` (segment) and ``tau_m`` / ``tau_s`` (layer, neuron) (s) after training.
    network_options: keyword arguments of :func:`hierarchy_network` (initial weights; default
    :data:`NETWORK_OPTIONS`). Time constants are trained in log space with Adam's second moment shared
    per layer (``Adam(shared_moment=...)``: each tau moves in proportion to its gradient).
    labels: ``"xor"`` (the task) or an ablation target of :func:`relabel`. readout_bias / hidden_bias:
    also train the readouts' / hidden layers' bias current. lr_psp: with PSP-unit weights
    (``psp_units``), ``lr`` is a step in PSP units for every projection (the raw weights' step is
    ``lr / psp_peak(target)``; without it the hidden weights, ~30 in raw units, moved by 0.07 % a step).
    With trained time constants the weights are trained as PSP heights (``psp_normalised``, see
    :class:`~neurodelay.train.SpikingClassifier`), whatever ``lr_psp``. init_delay: initial synaptic
    delays of the hidden layers' input synapses, uniform on [0, init_delay] s (``delay_max`` of
    :func:`hierarchy_network`; 0: none; at most ``d_max`` when delays are trained).
    Adds ``hidden_spikes`` and ``silent_fraction`` (layer) on the test set.

    Keeping the hidden layers alive (exact gradients give a silent neuron no gradient, see the module
    docstring; :data:`ACTIVITY_OPTIONS`): init_rate (Hz): before training, each hidden neuron's incoming
    weights are shifted so that it fires this rate on the first 128 training trials
    (:func:`~neurodelay.train.calibrate_rates`, data-dependent initialisation; with init_fraction: such
    that it fires at least ``max(1, init_rate duration)`` spikes in that fraction of those trials).
    silent_penalty: adds ``silent_penalty * (theta - max V)`` for every hidden neuron silent in a trial
    (:class:`~neurodelay.losses.SilentNeuronPenalty`, exact gradient; silent_scope ``"batch"``: only
    for a neuron silent in every trial of the minibatch). max_rate (Hz): adds an upper bound on each
    hidden neuron's spike count per trial, ``rate_strength / 2 (n - max_rate duration)^2`` above it
    (:class:`~neurodelay.losses.SpikeCountRegulariser`, surrogate gradient). n_segments: segments of
    the MTS-XOR (6, Moro et al.'s; 1 makes a trial 0.25 s,
    for the memory-free ``xor_static`` control).
    """
    from ..data import mts_xor_moro
    from ..losses import (MaxVoltageCrossEntropy, SilentNeuronPenalty, SpikeCountRegulariser,
                          WindowedMaxVoltageCrossEntropy)
    from ..train import Adam, Constraint, Schedule, SpikingClassifier, calibrate_rates, constraint_for, fit
    from ..train.init import psp_peak

    n_layers = check_int(n_layers, "n_layers", minimum=2)
    seed = int(seed)
    kinds = tuple(k.strip() for k in str(learn).split(",") if k.strip())
    n_segments = check_int(n_segments, "n_segments")
    train = relabel(mts_xor_moro(n_train, seed=0, n_segments=n_segments), labels)
    test = relabel(mts_xor_moro(n_test, seed=1, n_segments=n_segments), labels)
    taus = tau_profile(tau_center, delta_tau, n_layers - 1, profile, spread=spread, n_neurons=hidden,
                       seed=np.random.SeedSequence([seed, 7]))
    options = dict(NETWORK_OPTIONS if network_options is None else network_options)
    init_delay = float(check_positive(init_delay, "init_delay", strictly=False))
    if init_delay > 0:
        if "delay_max" in options:
            raise ValueError("give the initial delays once: init_delay or network_options['delay_max']")
        if any(k in ("axonal", "dendritic", "synaptic") for k in kinds) and init_delay > d_max:
            raise ValueError(f"init_delay ({init_delay} s) exceeds d_max ({d_max} s), the trained delays' range")
        options["delay_max"] = init_delay
    net, names = hierarchy_network(taus, n_inputs=train.n_inputs, hidden=hidden,
                                   seed=np.random.SeedSequence([seed, 1]), **options)
    if init_rate is not None:
        calib = train.select(np.arange(min(len(train), 128)))
        net, _ = calibrate_rates(net, names, calib.inputs, train.duration, float(init_rate), fraction=init_fraction)
    silent_penalty = float(check_positive(silent_penalty, "silent_penalty", strictly=False))
    rate_strength = float(check_positive(rate_strength, "rate_strength", strictly=False))
    extra = []
    if silent_penalty > 0:
        extra += [SilentNeuronPenalty(n, silent_penalty, silent_scope) for n in names]
    if max_rate is not None:
        cap = float(check_positive(max_rate, "max_rate")) * train.duration
        extra += [SpikeCountRegulariser(n, cap, rate_strength, strength_lower=0.0) for n in names]
    keys = []
    for kind in kinds:
        if kind == "weight" or kind in ("axonal", "dendritic", "synaptic"):
            keys += [(p, kind) for p in _projections(names)]
        elif kind in ("tau_m", "tau_s"):
            keys += [(n, kind) for n in names]
        else:
            raise ValueError(f"learn: unknown parameter kind {kind!r}")
    if readout_bias:
        keys.append(("output", "bias"))
    if hidden_bias:
        keys += [(n, "bias") for n in names]
    # trained time constants: weights trained as PSP heights (SpikingClassifier(psp_normalised=True)), so a
    # tau changes the PSP's shape, not its height; lr is then a step in PSP units already
    psp_normalised = any(k[1] in ("tau_m", "tau_s") for k in keys)
    weight_lr = {}
    if lr_psp and options.get("psp_units", False) and not psp_normalised:
        # weights are stored as w_psp / psp_peak(target): scale Adam's step by the same factor, so that
        # `lr` is a step in PSP units for every projection (without it the hidden weights, ~30 in raw
        # units, moved 0.07 % per step and only the readout learned)
        for proj in _projections(names):
            post = net[proj.split("->")[1]]
            peak = psp_peak(float(np.mean(post.tau_m)), float(np.mean(post.tau_s)))
            weight_lr[f"{proj}.weight"] = lr / peak
    if target == "segments":
        windows = train.meta["active_windows"]
        task = WindowedMaxVoltageCrossEntropy("output", windows)
        model = SpikingClassifier(net, keys, sum(extra, task), "output",
                                  "window_max_voltage", windows=windows, label_key="segment_labels",
                                  psp_normalised=psp_normalised)
    elif target == "last":
        model = SpikingClassifier(net, keys, sum(extra, MaxVoltageCrossEntropy("output")), "output", "max_voltage",
                                  psp_normalised=psp_normalised)
    else:
        raise ValueError(f"target must be 'segments' or 'last', got {target!r}")
    constraints = {k: (constraint_for(k, d_max) if k[1] != "weight" else Constraint()) for k in keys}
    opt = Adam(lr=lr, lr_by=dict(weight_lr, tau_m=lr_tau, tau_s=lr_tau, synaptic=1e-3, axonal=1e-3, dendritic=1e-3),
               schedule=Schedule("cosine", epochs=epochs, floor=0.1), shared_moment=("tau_m", "tau_s"))
    result = fit(model, train, epochs=epochs, batch_size=batch_size, optimiser=opt, constraints=constraints,
                 seed=seed, progress=False)
    ev = result.model.evaluate(test)
    n_seg = len(test.meta["segment_windows"])
    seg_acc = ev.extra.get("window_accuracy", np.full(n_seg, np.nan))
    tau = {k: np.stack([np.asarray(getattr(result.model.network[n], k), dtype=float) for n in names])
           for k in ("tau_m", "tau_s")}
    rates, silent = spikes_per_neuron(result.model.network, test, names)
    what = "per segment" if target == "segments" else "last segment"
    ds = xr.Dataset({"accuracy": ((), float(ev.accuracy), dict(units="1", long_name=f"test accuracy ({what})")),
                     "segment_accuracy": ("segment", np.asarray(seg_acc, float),
                                          dict(units="1", long_name="test accuracy of each segment")),
                     **{k: (("layer", "neuron"), v, dict(units="s", long_name=f"{k} after training"))
                        for k, v in tau.items()},
                     "hidden_spikes": ("layer", rates, dict(units="1", long_name="test spikes per neuron and trial")),
                     "silent_fraction": ("layer", silent, dict(units="1", long_name="fraction of hidden neurons silent on every test trial"))},
                    coords=dict(layer=np.arange(1, n_layers), neuron=np.arange(hidden),
                                segment=np.arange(1, n_seg + 1)))
    return ds


LABELS = ("xor", "channel2", "channel1", "xor_static")


def relabel(data, labels: str = "xor"):
    """Moro et al.'s MTS-XOR with other per-segment targets (ablations of the memory the task needs).

    ``"xor"``: the task (XOR of bit 1 and the segment's bit 2); ``"channel2"``: the segment's bit 2 (no
    memory: the evidence is inside the segment's window); ``"channel1"``: bit 1 in every segment (memory
    only: channel 1 is silent after the first 0.1 s). Returns a copy with ``trial_meta['segment_labels']``
    (and ``labels``, the last segment's) replaced. ``"xor_static"``: the XOR targets unchanged, but the
    *inputs* changed by :func:`bit1_in_windows` (channel 1's evidence present in every coding window: the
    XOR without the memory).
    """
    import dataclasses

    if labels not in LABELS:
        raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
    if labels == "xor":
        return data
    if labels == "xor_static":
        return bit1_in_windows(data)
    bits = np.asarray(data.trial_meta["bits"])
    seg = bits[:, 1:].copy() if labels == "channel2" else np.repeat(bits[:, :1], bits.shape[1] - 1, axis=1)
    seg = seg.astype(np.int64)
    return dataclasses.replace(data, labels=seg[:, -1].copy(), trial_meta=dict(data.trial_meta, segment_labels=seg))


def bit1_in_windows(data):
    """Moro et al.'s MTS-XOR with channel 1's evidence moved into every coding window (a memory-free XOR).

    Every channel-1 spike of the first window ``[0, first_steps dt)`` s (its bit and its background
    spikes) is removed there and copied into each segment's active window, shifted by that window's start
    (s); channel 2, the other background spikes, the labels and the windows are unchanged. Both bits are
    then present at the same time, so the XOR of each segment needs no memory: the control that tells a
    network that cannot hold bit 1 from one that cannot compute the XOR.
    """
    import dataclasses

    from ..spikes import SpikeTrains

    meta = data.meta
    if meta.get("variant") != "moro":
        raise ValueError("data must be Moro et al.'s MTS-XOR (neurodelay.data.mts_xor_moro)")
    s = data.inputs
    trial, neuron, time = np.asarray(s.trial), np.asarray(s.neuron), np.asarray(s.time, dtype=float)
    first = (neuron < meta["channel_1"][1]) & (time < meta["first_window"][1])
    parts = [(trial[~first], neuron[~first], time[~first])]
    parts += [(trial[first], neuron[first], time[first] + start) for start, _ in meta["active_windows"]]
    times = np.minimum(np.concatenate([p[2] for p in parts]), data.duration)
    inputs = SpikeTrains(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), times,
                         s.n_trials, s.n_neurons).sorted()
    return dataclasses.replace(data, inputs=inputs, meta=dict(meta, bit1_in_windows=True))


def spikes_per_neuron(network, data, names, chunk: int = 500):
    """Mean spikes per neuron and trial of each population in `names` on `data`, and the fraction of its
    neurons silent on every trial; two arrays (len(names),)."""
    from ..engines import get_engine

    engine = get_engine("auto", network)
    counts = {n: np.zeros(network[n].n) for n in names}
    offsets = network.offsets()
    for start in range(0, len(data), chunk):
        part = data.select(np.arange(start, min(start + chunk, len(data))))
        rec = engine.simulate(network, part.inputs, data.duration)
        for n in names:
            local = np.asarray(rec.neuron) - offsets[n]
            ok = (local >= 0) & (local < network[n].n)
            counts[n] += np.bincount(local[ok], minlength=network[n].n)
    mean = np.array([counts[n].sum() / (max(len(data), 1) * network[n].n) for n in names])
    silent = np.array([float(np.mean(counts[n] == 0)) for n in names])
    return mean, silent


def hierarchy_sweep(delta_taus=(-0.5, -0.2, 0.0, 0.2, 0.5), n_layers=(3, 4), *, seeds: int = 3, folder=None,
                    executor="serial", progress: bool = False, root_seed: int = 0, **point_options) -> xr.Dataset:
    """Accuracy against ``delta_tau`` (s) for each number of layers, over ``seeds`` seeds.

    Runs :func:`hierarchy_point` at every (delta_tau, n_layers) x seed through
    :func:`neurodelay.sweep.run_sweep` (``folder``: resumable results; ``point_options``: fixed
    arguments of :func:`hierarchy_point`, e.g. epochs, n_train). Returns the merged Dataset
    (``accuracy`` over delta_tau, n_layers, seed) with provenance.
    """
    from ..sweep import run_sweep

    grid = dict(delta_tau=[float(d) for d in delta_taus], n_layers=[int(n) for n in n_layers])
    ds = run_sweep(hierarchy_point, grid=grid, seeds=check_int(seeds, "seeds"), folder=folder,
                   root_seed=root_seed, executor=executor, progress=progress, fixed=dict(point_options))
    return with_provenance(ds, "hierarchy_sweep", dict(grid, seeds=seeds, **point_options), seed=root_seed)


def param_count(n_layers: int, hidden: int, learn: str, n_inputs: int = 40, n_out: int = 2) -> int:
    """Trained parameters of a :func:`hierarchy_network` (n_layers with the readout) learning `learn`:
    weights and synaptic delays one per synapse, tau_m / tau_s one per hidden neuron."""
    n_layers, hidden = check_int(n_layers, "n_layers", minimum=2), check_int(hidden, "hidden")
    synapses = n_inputs * hidden + (n_layers - 2) * hidden * hidden + hidden * n_out
    kinds = [k.strip() for k in str(learn).split(",") if k.strip()]
    per = dict(weight=synapses, synaptic=synapses, axonal=synapses, dendritic=synapses,
               tau_m=(n_layers - 1) * hidden, tau_s=(n_layers - 1) * hidden)
    unknown = [k for k in kinds if k not in per]
    if unknown:
        raise ValueError(f"learn: unknown parameter kind(s) {unknown}")
    return int(sum(per[k] for k in kinds))


def matched_hidden(budget: int, n_layers: int, learn: str, n_inputs: int = 40) -> int:
    """Largest hidden size per layer whose :func:`param_count` does not exceed `budget` (at least 1)."""
    budget = check_int(budget, "budget")
    h = 1
    while param_count(n_layers, h + 1, learn, n_inputs) <= budget:
        h += 1
    return h


def budget_point(memory: str = "taus", d_max: float = 0.2, *, seed: int, budget: int = 1040, n_layers: int = 3,
                 delta_tau: float = 0.0, **options) -> xr.Dataset:
    """One network of a given memory (``MEMORIES`` key) at a fixed parameter budget (hidden size matched by
    :func:`matched_hidden`), trained by :func:`hierarchy_point`; adds ``hidden`` and ``n_params``.

    A memory that learns delays starts from synaptic delays spread uniformly over [0, d_max] s on the
    hidden layers' input synapses (as delay-learning models are initialised: from zero, Adam's steps of
    ~1 ms could not reach the 0.1-0.9 s that separate channel 1 from the segments); ``"taus"`` has none.
    """
    if memory not in MEMORIES:
        raise ValueError(f"memory must be one of {sorted(MEMORIES)}, got {memory!r}")
    learn = MEMORIES[memory]
    hidden = matched_hidden(budget, n_layers, learn)
    init_delay = float(d_max) if "synaptic" in learn.split(",") else 0.0
    ds = hierarchy_point(delta_tau, n_layers, seed=seed, learn=learn, hidden=hidden, d_max=d_max,
                         init_delay=init_delay, **options)
    ds = ds.drop_vars(["tau_m", "tau_s", "hidden_spikes", "silent_fraction", "neuron", "layer"])
    ds["hidden"] = ((), hidden)
    ds["n_params"] = ((), param_count(n_layers, hidden, learn))
    return ds


def learned_taus(values, layers=None) -> xr.Dataset:
    """Per-layer distribution of learned time constants and the slope across layers.

    Parameters
    ----------
    values : array (n_runs, n_layers, n_neurons) or (n_layers, n_neurons) of s
        Learned time constants per run (seed), layer (input side first) and neuron.
    layers : sequence, optional
        Layer labels (default 1..n_layers).

    Returns
    -------
    Dataset over (run, layer): ``median``, ``q25``, ``q75`` (s); over run: ``slope`` (s per layer,
    least squares of the layer medians against the layer index; > 0: slower towards the output).
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise ValueError(f"values must have shape (runs, layers, neurons), got {np.shape(values)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("values must be finite")
    n_layers = arr.shape[1]
    layers = np.arange(1, n_layers + 1) if layers is None else np.asarray(layers)
    q25, med, q75 = np.percentile(arr, [25, 50, 75], axis=2)
    idx = np.arange(n_layers, dtype=float)
    if n_layers > 1:
        x = idx - idx.mean()
        slope = ((med - med.mean(axis=1, keepdims=True)) * x).sum(axis=1) / (x * x).sum()
    else:
        slope = np.full(arr.shape[0], np.nan)
    return xr.Dataset({"median": (("run", "layer"), med, dict(units="s")),
                       "q25": (("run", "layer"), q25, dict(units="s")),
                       "q75": (("run", "layer"), q75, dict(units="s")),
                       "slope": ("run", slope, dict(units="s", long_name="median tau per layer index"))},
                      coords=dict(run=np.arange(arr.shape[0]), layer=layers))


def fit_tau_distribution(samples) -> xr.Dataset:
    """Maximum-likelihood gamma and log-normal fits (location 0) of positive samples, with goodness of fit.

    Returns a Dataset over ``distribution`` = (gamma, lognormal): ``shape`` (gamma k; log-normal sigma),
    ``scale`` (s; gamma theta; log-normal exp(mu)), ``mean`` (s, of the fitted law),
    ``log_likelihood``, ``aic`` (2 * 2 parameters - 2 log L), ``ks_statistic`` and ``ks_pvalue``
    (Kolmogorov-Smirnov against the fitted law; the p-value is optimistic since the parameters were
    fitted to the same samples).
    """
    from scipy import stats

    x = np.asarray(samples, dtype=float).ravel()
    if x.size < 3 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"samples must be >= 3 finite positive values, got {x.size} values")
    rows = {}
    k, _, theta = stats.gamma.fit(x, floc=0)
    rows["gamma"] = (k, theta, k * theta, stats.gamma(k, scale=theta))
    sigma, _, scale = stats.lognorm.fit(x, floc=0)
    rows["lognormal"] = (sigma, scale, scale * np.exp(sigma ** 2 / 2), stats.lognorm(sigma, scale=scale))
    out = {name: [] for name in ("shape", "scale", "mean", "log_likelihood", "aic", "ks_statistic", "ks_pvalue")}
    for shape, scale, mean, law in rows.values():
        ll = float(np.sum(law.logpdf(x)))
        ks = stats.kstest(x, law.cdf)
        for name, v in zip(out, (shape, scale, mean, ll, 4.0 - 2.0 * ll, ks.statistic, ks.pvalue)):
            out[name].append(float(v))
    units = dict(shape="1", scale="s", mean="s", log_likelihood="1", aic="1", ks_statistic="1", ks_pvalue="1")
    ds = xr.Dataset({k: ("distribution", v, dict(units=units[k])) for k, v in out.items()},
                    coords=dict(distribution=list(rows)))
    ds.attrs["n_samples"] = int(x.size)
    return ds
