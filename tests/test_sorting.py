"""grouped_lexsort equals np.lexsort((secondary, primary, group)) on every kind of input: ties in every
key, clustered keys (large buckets), groups of equal or non-finite keys, empty and one-entry groups,
groups already in order; counting_sort equals a stable argsort; and SpikeTrains.sort_order / flatten's
synapse order still match numpy's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodelay._sorting import LARGE_BUCKET, THREADED_ENTRIES, counting_sort, grouped_lexsort
from neurodelay.delays import Delays
from neurodelay.flat import flatten
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.spikes import SpikeTrains


def _check(group, n_groups, primary, secondary):
    want = np.lexsort((secondary, primary, group))
    got = grouped_lexsort(group, n_groups, primary, secondary)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", ["uniform", "ties", "clustered", "equal", "sorted", "reversed", "inf", "sparse"])
def test_matches_numpy_lexsort(case):
    rng = np.random.default_rng(7)
    n, n_groups = 20_000, 37
    group = rng.integers(0, n_groups, n)
    secondary = rng.integers(0, 50, n)
    primary = rng.uniform(0.0, 1.0, n)
    if case == "ties":
        primary = np.round(primary, 2)
    elif case == "clustered":          # most keys in a few values: buckets far above LARGE_BUCKET
        primary = np.where(rng.random(n) < 0.9, rng.integers(0, 3, n) * 0.5, primary)
    elif case == "equal":
        primary = np.full(n, 0.25)
    elif case == "sorted":
        order = np.lexsort((secondary, primary, group))
        group, primary, secondary = group[order], primary[order], secondary[order]
    elif case == "reversed":
        order = np.lexsort((secondary, primary, group))[::-1]
        group, primary, secondary = group[order], primary[order], secondary[order]
    elif case == "inf":
        primary[::5] = np.inf
    elif case == "sparse":             # most groups empty or of one entry
        n_groups = 50_000
        group = rng.integers(0, n_groups, n)
    _check(group, n_groups, primary, secondary)


def test_buckets_far_above_the_insertion_limit_are_exact():
    """Keys clustered into two values: two buckets of n/2 entries, which take the mergesort path."""
    rng = np.random.default_rng(1)
    n = 40 * LARGE_BUCKET * 100
    primary = rng.integers(0, 2, n).astype(float)
    _check(np.zeros(n, np.int64), 1, primary, rng.integers(0, 3, n))


def test_refuses_groups_out_of_range_and_unequal_lengths():
    with pytest.raises(ValueError, match=r"group index out of range \[0, 3\): min 0, max 3"):
        grouped_lexsort(np.array([0, 3]), 3, np.zeros(2), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="one length"):
        grouped_lexsort(np.array([0, 1]), 3, np.zeros(3), np.zeros(2, np.int64))


def test_empty_input():
    assert len(grouped_lexsort(np.zeros(0, np.int64), 3, np.zeros(0), np.zeros(0, np.int64))) == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([0.0, 0.1, 0.1000001, 0.5, 1.0, 7.0]),
                          st.integers(0, 3)), max_size=200))
def test_matches_numpy_lexsort_on_small_inputs(entries):
    group = np.array([e[0] for e in entries], np.int64)
    primary = np.array([e[1] for e in entries], float)
    secondary = np.array([e[2] for e in entries], np.int64)
    if len(entries):
        _check(group, 5, primary, secondary)


def test_spike_trains_and_synapse_table_keep_numpys_order():
    rng = np.random.default_rng(3)
    n = 30_000
    spikes = SpikeTrains(rng.integers(0, 12, n), rng.integers(0, 40, n), np.round(rng.uniform(0, 0.2, n), 4), 12, 40)
    order = spikes.sort_order()
    np.testing.assert_array_equal(order, np.lexsort((spikes.neuron, spikes.time, spikes.trial)))
    net = (Network().add(SpikeSource("inp", 30), LIF("out", 20))
           .connect("inp", "out", rng.normal(0, 1, 600), delays=Delays(synaptic=np.round(rng.uniform(0, 5e-3, 600), 4))))
    flat = flatten(net)
    proj = net.projections[0]
    want = np.lexsort((proj.post_idx, proj.total_delay(), proj.pre_idx))
    np.testing.assert_array_equal(flat.out_syn, want)


@pytest.mark.parametrize("n_groups", [1, 5, 3000])
def test_counting_sort_is_a_stable_argsort_with_group_bounds(n_groups):
    group = np.random.default_rng(n_groups).integers(0, n_groups, 10_000)
    order, ptr = counting_sort(group, n_groups)
    np.testing.assert_array_equal(order, np.argsort(group, kind="stable"))
    np.testing.assert_array_equal(ptr, np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))]))
    empty_order, empty_ptr = counting_sort(np.zeros(0, np.int64), 2)
    assert len(empty_order) == 0 and list(empty_ptr) == [0, 0, 0]
    with pytest.raises(ValueError, match=r"group index out of range \[0, 2\): min -1, max 1"):
        counting_sort(np.array([1, -1]), 2)


@pytest.mark.parametrize("n_groups", [1, 3, 64])
def test_threads_sort_ranges_of_groups_with_the_same_result(n_groups):
    rng = np.random.default_rng(n_groups)
    n = THREADED_ENTRIES + 999
    group = rng.integers(0, n_groups, n)
    primary, secondary = rng.integers(0, 50, n) / 7.0, rng.integers(0, 4, n)
    want = np.lexsort((secondary, primary, group))
    for threads in (1, 2, 5):
        got = grouped_lexsort(group, n_groups, primary, secondary, n_threads=threads)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="n_threads must be a positive integer, got 0"):
        grouped_lexsort(group, n_groups, primary, secondary, n_threads=0)
