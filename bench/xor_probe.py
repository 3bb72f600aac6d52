"""Issue 12 probe: why Moro et al.'s MTS-XOR stays at chance. One :func:`~neurodelay.analysis.hierarchy.hierarchy_point`
run with optional surgery, then (``--diag``) what the trained network computes.

* ``--static``: the memory-free XOR (``labels="xor_static"``: channel 1's spikes copied into every coding
  window, :func:`~neurodelay.analysis.hierarchy.bit1_in_windows`); ``--n-segments 1`` makes such a trial
  0.25 s instead of 1 s (4x faster);
* ``--delay D``: fixed synaptic delays U[0, D] s on every projection into a hidden layer (``--delay-input-only``:
  on input -> h1 only), the memory of the real task;
* ``--delay-structured``: instead, input -> h1 synapses from channel 1 onto hidden neuron i get the start of
  coding window ``i mod n_segments`` as delay (channel 1's 0.1 s of evidence lands exactly in that window),
  all other synapses none (``--structured-by pre``: by channel-1 *input* neuron j, window ``j mod n_segments``,
  so every hidden neuron gets the same share of channel 1 in every window);
* ``--train REGEX``: train only the keys whose name matches (e.g. ``'input->h1|output'`` freezes h1 -> h2);
* ``--lr-scale NAME=FACTOR ...``: multiply the learning rate of an Adam key (e.g. ``h1->h2.weight=0.1``);
* ``--grad``: median |gradient| and sign consistency (|mean| / std over 8 batches of 32) per key, before and
  after training;
* ``--curve``: the training accuracy (running mean over each epoch's batches) every 5 epochs;
* ``--diag``: per (bit 1, bit 2) condition, every hidden neuron's mean spike count inside the coding windows,
  logistic-regression probes of XOR / bit 1 / bit 2 from those counts (first half of 512 test trials fits,
  second half scores), and the readout's score difference per condition.

Usage: ``python bench/xor_probe.py '{"n_layers": 2, "hidden": 20, "epochs": 60}' --static --n-segments 1``
(the JSON: keyword arguments of ``hierarchy_point``, ``"delta_tau"`` included, with ``"net"`` for its
``network_options``; defaults
tau_center 0.02 s, hidden 10, 10 epochs, 256 trials, batch 32, seed 0). Prints one line per run.
"""

from __future__ import annotations

import argparse
import json
import re
import time

import numpy as np

import neurodelay.analysis.hierarchy as H
import neurodelay.data as D
import neurodelay.train as T


def _grad_stats(model, data, tag):
    rng = np.random.default_rng(0)
    grads = {}
    for b in range(8):
        r = model.loss_and_grad(data.select(np.arange(32 * b, 32 * b + 32)), rng)
        for k, g in r.grads.items():
            grads.setdefault(k, []).append(np.asarray(g).ravel())
    for k, gs in grads.items():
        g = np.stack(gs)
        snr = np.median(np.abs(g.mean(0)) / (g.std(0) + 1e-30))
        print(f"  grad[{tag}] {k[0]}.{k[1]}: median |g| {np.median(np.abs(g)):.2e}, max |g| {np.abs(g).max():.2e}, "
              f"median |mean|/std {snr:.2f}")


def _diagnose(model, n_segments, labels):
    from sklearn.linear_model import LogisticRegression

    from neurodelay.engines import get_engine

    net = model.network
    test = H.relabel(D.mts_xor_moro(512, seed=1, n_segments=n_segments), labels)
    rec = get_engine("auto", net).simulate(net, test.inputs, test.duration)
    bits, windows, off = test.trial_meta["bits"], test.meta["active_windows"], net.offsets()
    b1 = np.repeat(bits[:, 0], len(windows))
    b2 = bits[:, 1:].ravel()
    for name in [p.name for p in net.populations if p.name.startswith("h")]:
        n = net[name].n
        local = np.asarray(rec.neuron) - off[name]
        ok = (local >= 0) & (local < n)
        tr, ne, ti = np.asarray(rec.trial)[ok], local[ok], np.asarray(rec.time)[ok]
        counts = np.zeros((len(test), len(windows), n))
        for k, (a, b) in enumerate(windows):
            m = (ti >= a) & (ti < b)
            np.add.at(counts[:, k], (tr[m], ne[m]), 1)
        x = counts.reshape(-1, n)
        half = len(x) // 2

        def probe(y):
            return LogisticRegression(max_iter=2000).fit(x[:half], y[:half]).score(x[half:], y[half:])

        print(f"  {name}: probe XOR {probe(b1 ^ b2):.3f}, bit 1 {probe(b1):.3f}, bit 2 {probe(b2):.3f}")
        for u in range(n):
            c = [x[(b1 == i) & (b2 == j), u].mean() for i in (0, 1) for j in (0, 1)]
            print(f"    {name}[{u}] counts 00 {c[0]:.2f}  01 {c[1]:.2f}  10 {c[2]:.2f}  11 {c[3]:.2f}")
    task = next(t for t in getattr(model.loss, "terms", (model.loss,)) if hasattr(t, "scores"))  # not the regularisers
    v, _ = task.scores(rec)
    d = (v[..., 1] - v[..., 0]).ravel()
    for i in (0, 1):
        for j in (0, 1):
            m = (b1 == i) & (b2 == j)
            print(f"  readout V1 - V0, condition {i}{j}: mean {d[m].mean():.3f}, sd {d[m].std():.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("options", nargs="?", default="{}")
    p.add_argument("--static", action="store_true")
    p.add_argument("--n-segments", type=int, default=6)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--delay-input-only", action="store_true")
    p.add_argument("--delay-structured", action="store_true")
    p.add_argument("--structured-by", choices=["post", "pre"], default="post")
    p.add_argument("--train", default=None)
    p.add_argument("--lr-scale", nargs="*", default=[])
    p.add_argument("--grad", action="store_true")
    p.add_argument("--diag", action="store_true")
    p.add_argument("--curve", action="store_true")
    a = p.parse_args(argv)
    options = json.loads(a.options)
    net_options = dict(H.NETWORK_OPTIONS, **options.pop("net", {}))
    kw = dict(seed=0, tau_center=0.02, spread=0.1, hidden=10, epochs=10, n_train=256, n_test=256, batch_size=32,
              labels="xor_static" if a.static else "xor")
    kw.update(options)
    n_layers = kw.pop("n_layers", 3)

    kw["n_segments"] = a.n_segments
    # surgery through the names hierarchy_point looks up at call time
    if a.delay > 0:
        make = H.hierarchy_network

        def delayed(taus, **o):
            net, names = make(taus, **o)
            rng = np.random.default_rng(123)
            for pr in [pr for pr in net.projections if pr.post in names
                       and (not a.delay_input_only or pr.pre == "input")]:
                net = net.with_projection(pr.pre, pr.post, synaptic=rng.uniform(0, a.delay, pr.n_syn))
            return net, names
        H.hierarchy_network = delayed
        kw.setdefault("d_max", a.delay)
    if a.delay_structured:
        make_s = H.hierarchy_network
        starts = np.array([w[0] for w in D.mts_xor_moro(1, seed=0).meta["active_windows"]])

        def structured(taus, **o):
            net, names = make_s(taus, **o)
            pr = next(pr for pr in net.projections if pr.pre == "input" and pr.post == names[0])
            half = o.get("n_inputs", 40) // 2
            idx = pr.post_idx if a.structured_by == "post" else pr.pre_idx
            d = np.where(pr.pre_idx < half, starts[idx % len(starts)], 0.0)
            return net.with_projection(pr.pre, pr.post, synaptic=d), names
        H.hierarchy_network = structured
        kw.setdefault("d_max", 1.0)
    if a.train:
        classifier = T.SpikingClassifier
        T.SpikingClassifier = lambda net, keys, *x, **o: classifier(
            net, [k for k in keys if re.search(a.train, f"{k[0]}.{k[1]}")], *x, **o)
    if a.lr_scale:
        adam = T.Adam

        def scaled(lr=1e-3, lr_by=None, **o):
            lr_by = dict(lr_by or {})
            for item in a.lr_scale:
                name, factor = item.split("=")
                lr_by[name] = lr_by.get(name, lr) * float(factor)
            return adam(lr=lr, lr_by=lr_by, **o)
        T.Adam = scaled
    captured = {}
    fit = T.fit

    def fit_and_keep(model, data, **o):
        if o.get("constraints"):
            o["constraints"] = {k: c for k, c in o["constraints"].items() if k in set(model.keys)}
        if a.grad:
            _grad_stats(model, data, "init")
        r = fit(model, data, **o)
        captured["model"] = r.model
        if a.curve:
            h = r.history
            print("  training accuracy by epoch: " + " ".join(
                f"{int(e)}:{float(x):.2f}" for e, x in zip(h.epoch.values, h.train_accuracy.values) if int(e) % 5 == 0))
        if a.grad:
            _grad_stats(r.model, data, "trained")
        return r
    T.fit = fit_and_keep

    t0 = time.perf_counter()
    ds = H.hierarchy_point(kw.pop("delta_tau", 0.0), n_layers, network_options=net_options, **kw)
    print(f"{'static' if a.static else 'task'} n_layers={n_layers} {options} delay={a.delay} train={a.train} "
          f"lr_scale={a.lr_scale}: accuracy {float(ds.accuracy):.3f}, per segment "
          f"{np.round(ds.segment_accuracy.values, 2).tolist()}, hidden spikes/neuron/trial "
          f"{np.round(ds.hidden_spikes.values, 1).tolist()}, wall {time.perf_counter() - t0:.0f} s", flush=True)
    if a.diag:
        _diagnose(captured["model"], a.n_segments, kw["labels"])


if __name__ == "__main__":
    main()
