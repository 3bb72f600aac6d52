"""The memory-free control of Moro et al.'s MTS-XOR (channel 1's evidence in every coding window), and
that one hidden layer trained by exact gradients learns the XOR of the two rate-coded bits."""

import numpy as np
import pytest

from neurodelay.analysis.hierarchy import ACTIVITY_OPTIONS, bit1_in_windows, hierarchy_point, relabel
from neurodelay.data import mts_xor, mts_xor_moro


def _rows(data, mask=None):
    s = data.inputs
    keep = np.ones(len(s.time), bool) if mask is None else mask(s)
    return set(zip(np.asarray(s.trial)[keep].tolist(), np.asarray(s.neuron)[keep].tolist(),
                   np.round(np.asarray(s.time)[keep], 12).tolist()))


def test_bit1_in_windows_moves_channel1_into_every_window():
    data = mts_xor_moro(300, seed=3)
    moved = relabel(data, "xor_static")
    assert moved.meta["bit1_in_windows"] and not data.meta.get("bit1_in_windows")
    np.testing.assert_array_equal(moved.trial_meta["segment_labels"], data.trial_meta["segment_labels"])
    m, (c1, c1_end), fw = data.meta, data.meta["channel_1"], data.meta["first_window"]
    s = moved.inputs
    t, ne, tr = np.asarray(s.time), np.asarray(s.neuron), np.asarray(s.trial)
    # nothing of channel 1 is left in the first window; channel 2 and the later background are untouched
    assert not np.any((ne < c1_end) & (t < fw[1]))
    ch2 = lambda x: np.asarray(x.neuron) >= c1_end
    assert _rows(moved, ch2) == _rows(data, ch2)
    late1 = lambda x: (np.asarray(x.neuron) < c1_end) & (np.asarray(x.time) >= fw[1])
    orig_first = lambda x: (np.asarray(x.neuron) < c1_end) & (np.asarray(x.time) < fw[1])
    src = data.inputs
    sel = orig_first(src)
    first = np.asarray(src.trial)[sel], np.asarray(src.neuron)[sel], np.asarray(src.time)[sel]
    expected = _rows(data, late1)
    for a, _ in m["active_windows"]:
        expected |= set(zip(first[0].tolist(), first[1].tolist(), np.round(first[2] + a, 12).tolist()))
    assert _rows(moved, late1) == expected
    # statistically: channel 1's count in each window follows bit 1 (20 neurons x 10 steps, a step fires with
    # 1 - (1 - p)(1 - p_noise)), plus that window's own background (p_noise per step)
    bit1 = data.trial_meta["bits"][:, 0]
    n_cells = (c1_end - c1) * m["first_steps"]
    for a, b in m["active_windows"]:
        inside = (ne < c1_end) & (t >= a) & (t < b)
        counts = np.bincount(tr[inside], minlength=len(data))
        for bit, p in ((0, m["p_low"]), (1, m["p_high"])):
            mean = n_cells * (1 - (1 - p) * (1 - m["p_noise"])) + n_cells * m["p_noise"]
            c = counts[bit1 == bit]
            assert abs(c.mean() - mean) < 5 * np.sqrt(mean / len(c)) + 1.0


def test_bit1_in_windows_needs_moro_data():
    with pytest.raises(ValueError, match="Moro"):
        bit1_in_windows(mts_xor(10, seed=0))


def test_one_hidden_layer_learns_the_static_xor():
    # the XOR of two rate-coded bits present in the same window: far above chance (50 %) with one hidden
    # layer of 20 (measured 85.0 % here in ~20 s; the default 2 hidden layers of 10 stay at 48 %, see
    # neurodelay.analysis.hierarchy's docstring)
    ds = hierarchy_point(0.0, 2, seed=0, labels="xor_static", tau_center=0.02, hidden=20, epochs=10,
                         n_train=256, n_test=256, batch_size=32)
    assert float(ds.accuracy) > 0.75
    assert np.all(ds.segment_accuracy.values > 0.65)


def test_activity_options_let_two_narrow_layers_learn_the_static_xor():
    # Moro et al.'s width (2 hidden layers of 10): at chance on the memory-free XOR from the default
    # initialisation (51.6 % on this seed, bench/xor_probe.py), learnt with every hidden neuron calibrated
    # to 20 Hz on training data and dead neurons penalised (ACTIVITY_OPTIONS; measured 94.1 % on this seed
    # in ~30 s)
    ds = hierarchy_point(0.0, 3, seed=0, labels="xor_static", n_segments=1, tau_center=0.02, hidden=10,
                         epochs=60, n_train=256, n_test=256, batch_size=32, **ACTIVITY_OPTIONS)
    assert float(ds.accuracy) > 0.85
    assert np.all(ds.silent_fraction.values < 0.5)
