"""map_trials: order, the one-time warm-up of a run function, and parallel 2-trial batches."""

import threading

from neurodelay.events import batch
from neurodelay.events.batch import map_trials


def _make_run(log, barrier=None):
    def run(k):
        log.append((k, threading.get_ident()))
        if barrier is not None:
            barrier.wait(timeout=5)  # raises BrokenBarrierError unless both trials run at once
        return k * k
    return run


def test_map_trials_warms_up_once_then_runs_every_trial_in_the_pool(monkeypatch):
    monkeypatch.setattr(batch, "_WARM", set(), raising=False)   # as in a fresh process
    main = threading.get_ident()
    first = []
    assert map_trials(_make_run(first), 3, n_threads=2) == [0, 1, 4]
    assert first[0] == (0, main)                      # first call: trial 0 alone, in this thread
    assert all(t != main for k, t in first[1:])
    second = []
    barrier = threading.Barrier(2)
    assert map_trials(_make_run(second, barrier), 2, n_threads=2) == [0, 1]   # same code: warmed
    assert sorted(k for k, _ in second) == [0, 1]
    assert len({t for _, t in second}) == 2 and main not in {t for _, t in second}


def test_map_trials_serial_and_empty():
    log = []
    assert map_trials(_make_run(log), 4, n_threads=1) == [0, 1, 4, 9]
    assert [k for k, _ in log] == [0, 1, 2, 3]
    assert map_trials(_make_run([]), 0, n_threads=2) == []
