"""Tests of neurodelay.data: task generators, HDF5 loaders and augmentations."""

import math

import h5py
import numpy as np
import pytest

from neurodelay.data import (TASKS, TaskData, blend, channel_shift, concatenate, digit_permutation, digits,
                             load_braille, load_shd, load_spikes_hdf5, load_ssc, mts_xor, sequence,
                             write_shd_like, yinyang, yinyang_class)
from neurodelay.spikes import SpikeTrains


# ---------------------------------------------------------------- helpers

def first_times(data: TaskData) -> np.ndarray:
    """(n_trials, n_inputs) time of each neuron's first spike (inf if silent)."""
    out = np.full((len(data), data.n_inputs), np.inf)
    np.minimum.at(out, (data.inputs.trial, data.inputs.neuron), data.inputs.time)
    return out


def random_samples(rng, n, n_units=700, max_spikes=40, t_max=1.2):
    times, units = [], []
    for _ in range(n):
        m = int(rng.integers(0, max_spikes))
        times.append(np.sort(rng.uniform(0, t_max, m)).astype(np.float32))
        units.append(rng.integers(0, n_units, m))
    return times, units


# ---------------------------------------------------------------- TaskData

def small_task():
    inputs = SpikeTrains([0, 0, 1, 2, 2, 2], [0, 1, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.0, 0.05, 0.4], 3, 2)
    return TaskData(inputs, [0, 1, 1], 2, 0.5, "toy", {"a": 1}, {"tag": np.array([10, 11, 12])})


def test_taskdata_select_renumbers_trials_and_metadata():
    d = small_task()
    s = d.select([2, 0])
    assert len(s) == 2 and s.labels.tolist() == [1, 0]
    assert s.trial_meta["tag"].tolist() == [12, 10]
    assert sorted(s.inputs.time[s.inputs.trial == 0].tolist()) == [0.0, 0.05, 0.4]
    assert s.inputs.time[s.inputs.trial == 1].tolist() == [0.1, 0.2]
    with pytest.raises(ValueError, match="unique"):
        d.select([1, 1])
    with pytest.raises(IndexError):
        d.select([3])


def test_taskdata_batches_cover_every_trial_once():
    d = yinyang("test", n=23)
    seen = []
    for b in d.batches(5, rng=1):
        assert len(b) <= 5
        seen.extend(b.trial_meta["points"][:, 0].tolist())
    assert sorted(seen) == sorted(d.trial_meta["points"][:, 0].tolist())
    assert [len(b) for b in d.batches(5, rng=1, drop_last=True)] == [5, 5, 5, 5]
    order1 = [b.labels.tolist() for b in d.batches(5, rng=3)]
    order2 = [b.labels.tolist() for b in d.batches(5, rng=3)]
    assert order1 == order2


def test_taskdata_validation():
    inputs = SpikeTrains([0], [0], [0.6], 1, 1)
    with pytest.raises(ValueError, match="after the trial duration"):
        TaskData(inputs, [0], 2, 0.5, "x")
    with pytest.raises(ValueError, match="out of range"):
        TaskData(inputs, [2], 2, 1.0, "x")
    with pytest.raises(ValueError, match="shape"):
        TaskData(inputs, [0, 1], 2, 1.0, "x")
    with pytest.raises(ValueError, match="trial_meta"):
        TaskData(inputs, [0], 2, 1.0, "x", trial_meta={"bad": np.zeros(3)})


def test_concatenate_offsets_trials():
    d = small_task()
    c = concatenate([d, d.select([1])])
    assert len(c) == 4 and c.labels.tolist() == [0, 1, 1, 1]
    assert c.inputs.counts()[3].tolist() == d.inputs.counts()[1].tolist()
    assert c.trial_meta["tag"].tolist() == [10, 11, 12, 11]


# ---------------------------------------------------------------- Yin-Yang

def test_yinyang_class_rule_known_points():
    cases = {
        (0.75, 0.5): 2, (0.25, 0.5): 2, (0.78, 0.45): 2,      # inside the dots
        (0.25, 0.68): 1, (0.25, 0.32): 1,                     # ring around the left dot
        (0.25, 0.73): 1, (0.25, 0.27): 1, (0.25, 0.23): 0,    # its outer edge (radius 0.25)
        (0.5, 0.9): 1, (0.6, 0.85): 1,                        # upper half away from the right dot
        (0.5, 0.1): 0, (0.4, 0.15): 0,                        # lower half away from the left dot
        (0.75, 0.68): 0, (0.75, 0.32): 0,                     # ring around the right dot
    }
    for (x, y), c in cases.items():
        assert yinyang_class(x, y) == c, (x, y)
    xs, ys = np.array(list(cases)).T
    assert yinyang_class(xs, ys).tolist() == list(cases.values())


def _which_class(x, y, r_small=0.1, r_big=0.5):
    """The class rule of tasks-and-targets.md, written independently with plain floats."""
    d_right = math.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = math.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    is_yin = (d_right <= r_small or (r_small < d_left <= 0.5 * r_big)
              or (y > r_big and d_right > 0.5 * r_big))
    if d_right < r_small or d_left < r_small:
        return 2
    return int(is_yin)


def _official_procedure(n, seed, r_small=0.1, r_big=0.5):
    """Independent re-implementation of the official generator's sampling loop."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if math.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            c = _which_class(float(x), float(y), r_small, r_big)
            if c == goal:
                break
        out.append((float(x), float(y), c))
    return out


def test_yinyang_class_rule_matches_independent_rule_on_grid():
    g = np.linspace(0, 1, 81)
    xs, ys = np.meshgrid(g, g)
    expected = [_which_class(float(x), float(y)) for x, y in zip(xs.ravel(), ys.ravel())]
    np.testing.assert_array_equal(yinyang_class(xs.ravel(), ys.ravel()), expected)
    assert set(expected) == {0, 1, 2}


def test_yinyang_test_split_matches_independent_procedure():
    expected = _official_procedure(8, seed=40)
    d = yinyang("test")
    got = [(p[0], p[1], c) for p, c in zip(d.trial_meta["points"][:8], d.labels[:8])]
    assert got == expected
    assert yinyang("test", n=8).trial_meta["points"].tolist() == [[x, y] for x, y, _ in expected]
    val = _official_procedure(3, seed=41)
    assert yinyang("validation", n=3).labels.tolist() == [c for _, _, c in val]


def test_yinyang_splits_deterministic_sized_and_balanced():
    train = yinyang("train")
    again = yinyang("train")
    assert len(train) == 5000 and len(yinyang("validation")) == 1000
    np.testing.assert_array_equal(train.trial_meta["points"], again.trial_meta["points"])
    np.testing.assert_array_equal(train.labels, again.labels)
    frac = train.class_counts() / len(train)
    assert np.all(np.abs(frac - 1 / 3) < 0.03), frac
    pts = train.trial_meta["points"]
    assert np.all(np.hypot(pts[:, 0] - 0.5, pts[:, 1] - 0.5) <= 0.5)
    np.testing.assert_array_equal(yinyang_class(pts[:, 0], pts[:, 1]), train.labels)
    assert not np.array_equal(yinyang("test", n=20).trial_meta["points"],
                              yinyang("validation", n=20).trial_meta["points"])
    with pytest.raises(ValueError, match="split"):
        yinyang("dev")


def test_yinyang_latency_encoding_bounds():
    tau_s = 5e-3
    d = yinyang("validation", n=300)
    assert d.n_inputs == 5 and len(d.inputs) == 5 * 300
    np.testing.assert_array_equal(d.inputs.counts(), np.ones((300, 5), dtype=int))
    t = first_times(d)
    t_early, t_late = 0.15 * tau_s, 2 * tau_s
    assert np.all(t[:, :4] >= t_early) and np.all(t[:, :4] <= t_late)
    np.testing.assert_allclose(t[:, 4], 0.9 * tau_s)
    pts = d.trial_meta["points"]
    features = np.column_stack([pts, 1 - pts])
    np.testing.assert_allclose((t[:, :4] - t_early) / (t_late - t_early), features, atol=1e-12)
    assert d.duration == pytest.approx(4 * tau_s)
    d2 = yinyang("validation", n=50, t_early=1e-3, t_late=3e-3, bias=False)
    t2 = first_times(d2)
    assert d2.n_inputs == 4 and t2.min() >= 1e-3 and t2.max() <= 3e-3
    with pytest.raises(ValueError, match="t_early"):
        yinyang("test", n=5, t_early=3e-3, t_late=1e-3)


# ---------------------------------------------------------------- sequence

@pytest.mark.parametrize("jitter", [0.0, 3e-3])
def test_sequence_labels_match_input_order(jitter):
    d = sequence(200, jitter=jitter, onset=jitter, seed=3)
    t = first_times(d)
    assert np.all(np.isfinite(t))
    assert np.array_equal((t[:, 1] < t[:, 0]).astype(int), d.labels)
    assert set(d.labels.tolist()) == {0, 1}
    gap = np.abs(t[:, 1] - t[:, 0])
    if jitter:
        assert gap.std() > 0 and np.all(gap > 10e-3 - 2 * jitter)
    else:
        np.testing.assert_allclose(gap, 10e-3)
    assert t.max() <= d.duration


def test_sequence_rejects_jitter_that_could_swap_order():
    with pytest.raises(ValueError, match="jitter"):
        sequence(10, interval=4e-3, jitter=2e-3, onset=2e-3)


# ---------------------------------------------------------------- MTS-XOR

def test_mts_xor_labels_are_xor_of_rate_bits_and_rates_visible():
    d = mts_xor(400, seed=5)
    bits = d.trial_meta["bits"]
    np.testing.assert_array_equal(d.labels, bits[:, 0] ^ bits[:, 1])
    assert len(np.unique(bits, axis=0)) == 4
    m = d.meta
    counts = d.inputs.counts()
    a = counts[:, m["channel_a"][0]:m["channel_a"][1]].sum(1)
    b = counts[:, m["channel_b"][0]:m["channel_b"][1]].sum(1)
    expected_high = m["rate_high"] * m["window"] * m["n_per_channel"]
    expected_low = m["rate_low"] * m["window"] * m["n_per_channel"]
    for cnt, bit in ((a, bits[:, 0]), (b, bits[:, 1])):
        assert cnt[bit == 1].mean() == pytest.approx(expected_high, rel=0.1)
        assert cnt[bit == 0].mean() == pytest.approx(expected_low, rel=0.3)
        assert cnt[bit == 1].min() > cnt[bit == 0].mean()
    x = d.inputs
    (a0, a1), (b0, b1) = m["windows"]
    in_a = (x.neuron < m["channel_a"][1])
    in_b = (x.neuron >= m["channel_b"][0]) & (x.neuron < m["channel_b"][1])
    assert np.all((x.time[in_a] >= a0) & (x.time[in_a] < a1))
    assert np.all((x.time[in_b] >= b0) & (x.time[in_b] < b1))
    noise = x.neuron >= m["noise"][0]
    assert noise.sum() > 0 and x.time[noise].max() > b1
    np.testing.assert_array_equal(mts_xor(50, seed=5).labels, mts_xor(50, seed=5).labels)


# ---------------------------------------------------------------- digits

def test_digits_shapes_split_and_permutation_seed():
    train = digits("train", n_levels=3)
    test = digits("test", n_levels=3)
    assert train.n_inputs == 2 * 3 * 8 + 1 and train.n_classes == 10       # default: 8 pixels per step
    assert digits("test", n=2, n_levels=3, pixels_per_step=1, cue=False).n_inputs == 6
    assert train.duration == pytest.approx(9 * 8e-3)
    assert len(train) + len(test) == 1797
    assert not set(train.trial_meta["index"]) & set(test.trial_meta["index"])
    assert train.trial_meta["sequence"].shape == (len(train), 64)
    p0 = digits("test", n=5, permutation_seed=7).meta["permutation"]
    np.testing.assert_array_equal(p0, digits("train", n=2, permutation_seed=7).meta["permutation"])
    np.testing.assert_array_equal(p0, digit_permutation(7))
    assert sorted(p0.tolist()) == list(range(64))
    assert not np.array_equal(p0, digit_permutation(8))
    np.testing.assert_array_equal(digits("test", split_seed=1).trial_meta["index"],
                                  digits("test", split_seed=1).trial_meta["index"])
    assert not np.array_equal(digits("test", split_seed=1).trial_meta["index"], test.trial_meta["index"])


@pytest.mark.parametrize("per_step", [1, 8])
def test_digits_spikes_encode_quantised_permuted_pixels(per_step):
    from sklearn.datasets import load_digits

    n_levels, dt = 3, 2e-3      # thresholds 4/16, 8/16, 12/16: pixels can equal a threshold exactly
    n_steps = 64 // per_step
    d = digits("test", n=12, n_levels=n_levels, dt_step=dt, permutation_seed=3, pixels_per_step=per_step)
    assert d.n_inputs == 2 * n_levels * per_step + 1 and d.duration == pytest.approx((n_steps + 1) * dt)
    images = load_digits().data / 16.0
    perm = digit_permutation(3)
    thresholds = np.arange(1, n_levels + 1) / (n_levels + 1)
    for k in range(len(d)):
        seq = images[d.trial_meta["index"][k]][perm].reshape(n_steps, per_step)     # (step, slot)
        level = (seq[:, :, None] >= thresholds).sum(2)                  # quantised pixel of each slot and step
        mask = d.inputs.trial == k
        step = np.rint(d.inputs.time[mask] / dt).astype(int)
        nrn = d.inputs.neuron[mask]
        cue = nrn == d.n_inputs - 1
        assert cue.sum() == 1 and step[cue][0] == n_steps
        slot, within = np.divmod(nrn[~cue], 2 * n_levels)
        sign = np.where(within % 2 == 0, 1, -1)
        change = np.zeros((n_steps, per_step), int)
        np.add.at(change, (step[~cue], slot), sign)
        np.testing.assert_array_equal(np.cumsum(change, axis=0), level)


def test_digits_rejects_a_step_size_that_does_not_divide_64():
    with pytest.raises(ValueError, match="pixels_per_step"):
        digits("test", n=2, pixels_per_step=3)


# ---------------------------------------------------------------- HDF5

def test_hdf5_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    times, units = random_samples(rng, 12)
    labels = rng.integers(0, 20, 12)
    path = tmp_path / "shd_small.h5"
    write_shd_like(path, times, units, labels, speakers=np.arange(12) % 3, keys=[f"w{i}" for i in range(20)])
    d = load_shd(path)
    assert d.name == "shd" and d.n_inputs == 700 and d.n_classes == 20 and len(d) == 12
    np.testing.assert_array_equal(d.labels, labels)
    np.testing.assert_array_equal(d.trial_meta["speaker"], np.arange(12) % 3)
    assert d.meta["keys"][3] == "w3"
    for k in range(12):
        got = d.select([k]).inputs.sorted()
        order = np.lexsort((units[k], times[k].astype(float)))
        np.testing.assert_array_equal(got.neuron, np.asarray(units[k])[order])
        np.testing.assert_array_equal(got.time, times[k].astype(float)[order])
    part = load_shd(path, max_samples=4, max_time=0.5)
    assert len(part) == 4 and part.duration == 0.5 and part.inputs.time.max() <= 0.5
    assert len(part.inputs) == sum(int((t <= 0.5).sum()) for t in times[:4])
    ssc = load_ssc(path)
    assert ssc.n_classes == 35 and len(ssc.inputs) == len(d.inputs)


def test_hdf5_drops_non_finite_times_with_warning(tmp_path):
    rng = np.random.default_rng(1)
    times, units = random_samples(rng, 5, max_spikes=10)
    times = [np.concatenate([t, [0.3]]).astype(np.float32) for t in times]
    units = [np.concatenate([u, [5]]) for u in units]
    times[1][-1] = np.nan
    times[3][0] = np.inf
    path = tmp_path / "nan.h5"
    write_shd_like(path, times, units, np.zeros(5, int))
    with pytest.warns(UserWarning, match=r"samples?\(s\): \[1, 3\]"):
        d = load_shd(path)
    assert np.all(np.isfinite(d.inputs.time))
    assert d.inputs.counts().sum(1).tolist() == [len(t) - (k in (1, 3)) for k, t in enumerate(times)]
    assert d.meta["non_finite_samples"] == (1, 3)


def test_hdf5_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_shd(tmp_path / "nope.h5")


def test_hdf5_wrong_layout(tmp_path):
    rng = np.random.default_rng(2)
    times, units = random_samples(rng, 4)
    p = tmp_path / "nolabels.h5"
    write_shd_like(p, times, units, [0, 1, 2, 3])
    with h5py.File(p, "a") as f:
        del f["labels"]
    with pytest.raises(ValueError, match=r"nolabels\.h5.*missing dataset.*/labels"):
        load_shd(p)

    p = tmp_path / "lengths.h5"
    write_shd_like(p, times, units, [0, 1, 2, 3])
    with h5py.File(p, "a") as f:
        del f["labels"]
        f["labels"] = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="different lengths"):
        load_shd(p)

    p = tmp_path / "sample.h5"
    bad_units = [u.copy() for u in units]
    bad_units[2] = np.concatenate([bad_units[2], [1]])
    write_shd_like(p, times, bad_units, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="sample 2 has"):
        load_shd(p)

    p = tmp_path / "range.h5"
    bad_units = [u.copy() for u in units]
    bad_units[1] = np.full(len(times[1]), 700)
    write_shd_like(p, times, bad_units, [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"sample 1 has units out of range \[0, 700\)"):
        load_shd(p)

    p = tmp_path / "labels.h5"
    write_shd_like(p, times, units, [0, 1, 25, 3])
    with pytest.raises(ValueError, match="labels out of range"):
        load_shd(p)


def test_hdf5_truncated_and_corrupt_file(tmp_path):
    rng = np.random.default_rng(3)
    times, units = random_samples(rng, 30)
    good = tmp_path / "good.h5"
    write_shd_like(good, times, units, rng.integers(0, 20, 30))
    assert len(load_shd(good)) == 30
    raw = good.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut\.h5.*truncated or corrupt"):
        load_shd(cut)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file" * 100)
    with pytest.raises(ValueError, match=r"junk\.h5.*cannot be read as HDF5"):
        load_shd(junk)


def test_braille_layout(tmp_path):
    rng = np.random.default_rng(4)
    times, units = random_samples(rng, 6, n_units=24)
    p = tmp_path / "braille.h5"
    write_shd_like(p, times, units, [0, 26, 3, 4, 5, 6])
    d = load_braille(p)
    assert d.n_inputs == 24 and d.n_classes == 27 and d.labels.tolist() == [0, 26, 3, 4, 5, 6]
    bad = [u.copy() for u in units]
    bad[0] = np.full(len(times[0]), 24)
    write_shd_like(p, times, bad, [0, 1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="out of range"):
        load_braille(p)
    assert load_spikes_hdf5(p, n_units=30).n_classes == 6


# ---------------------------------------------------------------- augmentations

def shd_like_task(tmp_path, n=40):
    rng = np.random.default_rng(5)
    times, units = random_samples(rng, n, max_spikes=60)
    labels = rng.integers(0, 4, n)
    p = tmp_path / "aug.h5"
    write_shd_like(p, times, units, labels, speakers=np.arange(n))
    return load_spikes_hdf5(p, n_units=700, n_classes=4, name="shd")


def test_channel_shift_preserves_labels_and_keeps_units_in_range(tmp_path):
    d = shd_like_task(tmp_path)
    s = channel_shift(d, 300, seed=1)
    np.testing.assert_array_equal(s.labels, d.labels)
    assert s.inputs.neuron.min() >= 0 and s.inputs.neuron.max() < 700
    shifts = s.trial_meta["channel_shift"]
    assert np.abs(shifts).max() <= 300 and len(np.unique(shifts)) > 1
    assert 0 < len(s.inputs) < len(d.inputs)                       # big shifts push some spikes out
    for k in range(5):
        old = d.inputs.neuron[d.inputs.trial == k] + shifts[k]
        expected = np.sort(old[(old >= 0) & (old < 700)])
        np.testing.assert_array_equal(np.sort(s.inputs.neuron[s.inputs.trial == k]), expected)
    same = channel_shift(d, 0, seed=1)
    np.testing.assert_array_equal(same.inputs.counts(), d.inputs.counts())
    np.testing.assert_array_equal(channel_shift(d, 5, seed=2).inputs.neuron,
                                  channel_shift(d, 5, seed=2).inputs.neuron)


def test_blend_preserves_labels_and_ranges(tmp_path):
    d = shd_like_task(tmp_path)
    b = blend(d, 30, p_blend=0.5, seed=2)
    assert len(b) == len(d) + 30
    np.testing.assert_array_equal(b.labels[:len(d)], d.labels)
    src = b.trial_meta["blend_source"]
    np.testing.assert_array_equal(src[:len(d), 0], np.arange(len(d)))
    new = src[len(d):]
    np.testing.assert_array_equal(b.labels[len(d):], d.labels[new[:, 0]])
    np.testing.assert_array_equal(d.labels[new[:, 0]], d.labels[new[:, 1]])
    assert b.inputs.neuron.min() >= 0 and b.inputs.neuron.max() < 700
    assert b.inputs.time.min() >= 0 and b.inputs.time.max() <= d.duration
    np.testing.assert_array_equal(b.trial_meta["speaker"][len(d):], d.trial_meta["speaker"][new[:, 0]])
    counts = d.inputs.counts().sum(1)
    new_counts = b.inputs.counts().sum(1)[len(d):]
    assert np.all(new_counts <= counts[new[:, 0]] + counts[new[:, 1]])
    assert new_counts.sum() > 0
    only = blend(d, 10, p_blend=0.0, seed=2, append=False)
    assert len(only) == 10 and len(only.inputs) == 0
    # a trial blended with itself at p_blend = 1 is that trial again
    one = d.select([int(np.argmax(counts))])
    self_blend = blend(one, 1, p_blend=1.0, seed=0, append=False)
    assert self_blend.inputs.counts().sum() == 2 * counts.max()
    np.testing.assert_array_equal(np.sort(self_blend.inputs.neuron), np.sort(np.repeat(one.inputs.neuron, 2)))


def test_blend_aligns_centres_of_mass():
    # trial 0: channels 10, 12 (mean 11) at 0.1, 0.3 s (mean 0.2); trial 1: channels 15, 22 (mean 18.5)
    # at 0.5, 0.7 s (mean 0.6). Half-differences: 3.75 channels -> trunc 3, and 0.2 s.
    inputs = SpikeTrains([0, 0, 1, 1], [10, 12, 15, 22], [0.1, 0.3, 0.5, 0.7], 2, 40)
    d = TaskData(inputs, [0, 0], 1, 1.0, "toy")
    b = blend(d, 30, p_blend=1.0, seed=0, append=False)
    pairs = b.trial_meta["blend_source"]
    assert {tuple(p) for p in pairs.tolist()} >= {(0, 1), (1, 0)}
    for k, (i, j) in enumerate(pairs):
        spikes = sorted(zip(b.inputs.neuron[b.inputs.trial == k].tolist(),
                            np.round(b.inputs.time[b.inputs.trial == k], 12).tolist()))
        if i == j:
            own = sorted(zip(inputs.neuron[inputs.trial == i].tolist(), inputs.time[inputs.trial == i].tolist()))
            assert spikes == sorted(own + own)
        else:
            assert spikes == [(12, 0.3), (13, 0.3), (15, 0.5), (19, 0.5)]


# ---------------------------------------------------------------- registry

def test_registry_generators_return_named_taskdata():
    small = {"yinyang": dict(n=10), "sequence": dict(n=10), "mts_xor": dict(n=10), "digits": dict(n=10)}
    assert set(TASKS) == set(small)
    for name, gen in TASKS.items():
        d = gen(**small[name])
        assert isinstance(d, TaskData) and d.name == name and len(d) == 10
        assert d.inputs.time.max() <= d.duration
