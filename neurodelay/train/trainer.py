"""The training loop: epochs of shuffled minibatches, validation, early stopping, checkpoints.

:func:`fit` trains any :class:`~neurodelay.train.model.Model` with
:class:`~neurodelay.train.optim.Adam` under per-key
:class:`~neurodelay.train.constraints.Constraint` s. It is deterministic
given the seed (one numpy Generator draws the batch order and any training
noise; its state is checkpointed), writes a checkpoint after every epoch
(``last.nc`` in the output folder), the best one by validation accuracy
(``best.nc``) and the history (``history.nc``), all three as one atomic
group (Ctrl-C is held back while they are written, last.nc is renamed
last), and never loses finished epochs: a KeyboardInterrupt (Ctrl-C) stops
the run after leaving the last checkpoint intact and returns the history so
far. Resuming from a checkpoint continues bit for bit as if the run had not
stopped (with the checkpoint's settings: changing others is refused, see
:data:`RESUMABLE_CHANGES`); temporaries of a killed process are removed.

The history is an xarray Dataset along ``epoch`` (1-based): ``train_loss``,
``train_accuracy`` (running means over the epoch's batches),
``validation_loss``, ``validation_accuracy`` (NaN without validation data),
``epoch_time`` and ``elapsed`` (s) and ``learning_rate`` (epoch, param),
``param`` being the dotted key names.

Constraints with a grid schedule (:class:`~neurodelay.train.constraints.Constraint`
``grid_from``, ``grid_ramp``, ``stochastic``, ``stochastic_before``) hand the network the values of
the current epoch: continuous during a warm-up, a growing step during a
ramp, stochastically rounded in training minibatches. Only epochs on the
final grid compete for ``best.nc`` and count towards early stopping, so the
best checkpoint is a network the hardware can store.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from ..io import remove_stale_temporaries, to_json, write_netcdfs
from .checkpoint import Checkpoint, checkpoint_to_dataset, load_checkpoint
from .constraints import UNBOUNDED, Constraint
from .model import Evaluation, Model
from .optim import Adam, key_name

__all__ = ["fit", "TrainResult", "empty_history", "check_resume_config", "LAST", "BEST", "HISTORY",
           "RESUMABLE_CHANGES"]

LAST = "last.nc"
BEST = "best.nc"
HISTORY = "history.nc"

#: settings a resumed run may change (the others must equal the checkpoint's, or resuming would
#: silently ignore them while recording them as used)
RESUMABLE_CHANGES = ("epochs", "patience", "quantise", "n_test")


def check_resume_config(checkpoint_config: dict, config: dict, where) -> None:
    """Raise ValueError naming the settings in which `config` differs from the checkpoint's
    (except :data:`RESUMABLE_CHANGES`): resuming continues with the checkpoint's settings."""
    old = json.loads(to_json(checkpoint_config))
    new = json.loads(to_json(config))
    differ = [k for k in sorted(set(old) | set(new))
              if k not in RESUMABLE_CHANGES and k in new and old.get(k) != new.get(k)]
    if differ:
        shown = ", ".join(f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in differ[:4])
        raise ValueError(f"cannot resume {where} with changed settings: it was trained with {shown}; "
                         f"resume with the same settings (only {', '.join(RESUMABLE_CHANGES)} may change) "
                         f"or start a new run in another folder")


@contextmanager
def _sigint_deferred():
    """Hold Ctrl-C (SIGINT) back until the block ends, so that files written together stay consistent."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield  # signals go to the main thread only; None: a handler not set from Python, left alone
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        if callable(previous):
            previous(signal.SIGINT, None)
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt


@dataclass
class TrainResult:
    """What :func:`fit` returns: the trained model, the history, and why it stopped.

    stop_reason: 'completed', 'early_stopping' or 'interrupted'; checkpoint:
    path of the last checkpoint (None when no output folder was given).
    """

    model: Model
    history: xr.Dataset
    stop_reason: str
    epoch: int
    checkpoint: Path | None = None
    best_epoch: int = 0
    best_validation_accuracy: float = float("nan")
    extra: dict = field(default_factory=dict)


def empty_history(keys) -> xr.Dataset:
    """A history with no epochs yet (the variables of the module docstring)."""
    keys = list(keys)
    e = np.zeros(0)
    return xr.Dataset(
        {name: ("epoch", e.copy(), attrs) for name, attrs in (
            ("train_loss", {"description": "mean minibatch loss during the epoch"}),
            ("train_accuracy", {"description": "fraction correct over the epoch's minibatches"}),
            ("validation_loss", {"description": "loss on the validation set after the epoch"}),
            ("validation_accuracy", {"description": "fraction correct on the validation set after the epoch"}),
            ("epoch_time", {"units": "s", "description": "wall time of the epoch (training + validation)"}),
            ("elapsed", {"units": "s", "description": "wall time since the run started (summed over resumes)"}))}
        | {"learning_rate": (("epoch", "param"), np.zeros((0, len(keys))), {"description": "scheduled lr"})},
        coords={"epoch": ("epoch", np.zeros(0, np.int64)),
                "param": ("param", np.asarray([key_name(k) for k in keys], dtype=str))})


def _append(history: xr.Dataset, row: dict, lrs: np.ndarray) -> xr.Dataset:
    new = xr.Dataset({k: ("epoch", [v]) for k, v in row.items() if k != "epoch"}
                     | {"learning_rate": (("epoch", "param"), lrs[None, :])},
                     coords={"epoch": ("epoch", np.array([row["epoch"]], np.int64)),
                             "param": history["param"]})
    out = xr.concat([history, new], dim="epoch", data_vars="all", coords="minimal", compat="override",
                    join="outer", combine_attrs="override")
    for name in history.data_vars:
        out[name].attrs = history[name].attrs
    return out


def _check_constraints(model: Model, constraints: dict | None) -> dict:
    constraints = dict(constraints or {})
    unknown = set(constraints) - set(model.keys)
    if unknown:
        raise KeyError(f"constraints given for {sorted(unknown)}, which are not trained; trained keys: "
                       f"{list(model.keys)}")
    return {k: constraints.get(k, UNBOUNDED) for k in model.keys}


def _check_grid_schedule(constraints: dict, epochs: int) -> None:
    """Refuse a grid schedule that would end training before the network reaches its final grid."""
    for key, c in constraints.items():
        if c.final_epoch and c.final_epoch >= epochs:
            raise ValueError(f"{key_name(key)}: the delays reach their final grid in epoch {c.final_epoch + 1} "
                             f"(grid_from {c.grid_from} + grid_ramp {c.grid_ramp}), after the last epoch "
                             f"{epochs}; shorten the warm-up / ramp or train longer")


def fit(model: Model, train, *, epochs: int, batch_size: int, optimiser: Adam | None = None,
        constraints: dict | None = None, validation=None, seed: int = 0, out_dir=None,
        resume: bool | str | Path = False, patience: int | None = None,
        callbacks: tuple[Callable, ...] = (), progress: bool = True, config: dict | None = None) -> TrainResult:
    """Train `model` on `train` (a TaskData) for up to `epochs` epochs in total.

    batch_size: trials per minibatch (the last one may be smaller);
    optimiser: an :class:`Adam` (default lr 1e-3); constraints: ``{key: Constraint}``
    (default unbounded); validation: a TaskData evaluated after each epoch;
    seed: seeds the generator of batch order and training noise;
    out_dir: folder for ``last.nc`` / ``best.nc`` checkpoints and ``history.nc`` (None: none written);
    resume: True to continue from ``out_dir/last.nc`` if it exists, or a checkpoint path;
    patience: stop when validation accuracy has not improved for this many epochs;
    callbacks: functions ``cb(event, info)`` called with event 'batch' (info: epoch,
    batch, loss) and 'epoch' (info: the history row); raising KeyboardInterrupt in
    one stops the run like Ctrl-C; config: stored in checkpoints (JSON-able).
    """
    if int(epochs) < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if patience is not None and int(patience) < 1:
        raise ValueError(f"patience must be >= 1 epoch or None, got {patience}")
    optimiser = optimiser if optimiser is not None else Adam()
    constraints = _check_constraints(model, constraints)
    out_dir = Path(out_dir) if out_dir is not None else None
    keys = tuple(model.keys)
    _check_grid_schedule(constraints, int(epochs))

    # ---- start or resume --------------------------------------------------------------------------
    resume_path = None
    if resume is True and out_dir is not None and (out_dir / LAST).exists():
        resume_path = out_dir / LAST
    elif resume not in (False, True, None):
        resume_path = Path(resume)
    if out_dir is not None:  # left by a process killed while writing (SIGKILL, power loss)
        remove_stale_temporaries([out_dir / LAST, out_dir / BEST, out_dir / HISTORY])
    config = dict(config or {}, seed=seed, batch_size=int(batch_size), epochs=int(epochs))
    if resume_path is not None:
        ckpt = load_checkpoint(resume_path)
        check_resume_config(ckpt.config, config, resume_path)
        if set(ckpt.raw) != set(keys):
            raise ValueError(f"checkpoint {resume_path} trains {sorted(ckpt.raw)}, the model trains {list(keys)}")
        raw = {k: ckpt.raw[k] for k in keys}
        constraints = {k: Constraint(**ckpt.constraints[k]) for k in keys}
        _check_grid_schedule(constraints, int(epochs))
        optimiser = Adam.from_config(ckpt.optimiser_config, ckpt.optimiser_state)
        rng = ckpt.rng()
        start_epoch, history = ckpt.epoch, ckpt.history
        best = dict(epoch=int(ckpt.extra.get("best_epoch", 0)),
                    accuracy=float(ckpt.extra.get("best_validation_accuracy", -np.inf)))
        model = model.with_values({k: constraints[k].value(raw[k]) for k in keys})
    else:
        values = model.values()
        raw = {k: constraints[k].raw(values[k], k) for k in keys}
        model = model.with_values({k: constraints[k].value(raw[k]) for k in keys})
        rng = np.random.default_rng(seed)
        start_epoch, history = 0, empty_history(keys)
        best = dict(epoch=0, accuracy=-np.inf)
    elapsed0 = float(history["elapsed"].values[-1]) if history.sizes["epoch"] else 0.0
    scheduled = any(c.final_epoch > 0 for c in constraints.values())
    stochastic = any(c.stochastic or c.stochastic_before for c in constraints.values())
    final_epoch = max([c.final_epoch for c in constraints.values()], default=0)

    def values_at(epoch_index: int, noise: np.random.Generator | None = None) -> dict:
        return {k: constraints[k].value(raw[k], epoch_index, noise) for k in keys}

    def checkpoint(epoch: int, hist: xr.Dataset, extra: dict) -> Checkpoint:
        return Checkpoint(network=model.network, raw=raw, constraints={k: c.to_dict() for k, c in constraints.items()},
                          optimiser_config=optimiser.config(), optimiser_state=optimiser.state,
                          rng_state=rng.bit_generator.state, epoch=epoch, history=hist, config=config,
                          extra=extra)

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=int(epochs), initial=start_epoch, desc="training", unit="epoch", leave=True)
    stop_reason = "completed"
    epoch = start_epoch
    started = time.perf_counter()
    last_path = None
    finished = (model, history, epoch)   # state after the last completed (and saved) epoch
    try:
        for epoch_index in range(start_epoch, int(epochs)):
            t0 = time.perf_counter()
            loss_sum, correct, seen = 0.0, 0, 0
            if scheduled:   # this epoch's grid (continuous in a warm-up, a growing step in a ramp)
                model = model.with_values(values_at(epoch_index))
            for b, batch in enumerate(train.batches(batch_size, rng)):
                if stochastic:
                    model = model.with_values(values_at(epoch_index, rng))
                result = model.loss_and_grad(batch, rng)
                raw_grads = {k: constraints[k].raw_gradient(raw[k], result.grads[k]) for k in keys}
                stepped = optimiser.step(raw, raw_grads, epoch_index)
                raw = {k: constraints[k].project(stepped[k]) for k in keys}
                model = model.with_values(values_at(epoch_index))
                loss_sum += result.loss * result.n_trials
                correct += result.n_correct
                seen += result.n_trials
                for cb in callbacks:
                    cb("batch", dict(epoch=epoch_index + 1, batch=b, loss=result.loss))
            val: Evaluation | None = model.evaluate(validation) if validation is not None else None
            epoch = epoch_index + 1
            now = time.perf_counter()
            row = dict(epoch=epoch, train_loss=loss_sum / max(seen, 1), train_accuracy=correct / max(seen, 1),
                       validation_loss=val.loss if val else math.nan,
                       validation_accuracy=val.accuracy if val else math.nan,
                       epoch_time=now - t0, elapsed=elapsed0 + now - started)
            lrs = np.array([optimiser.learning_rate(k, epoch_index) for k in keys])
            history = _append(history, row, lrs)
            on_final_grid = epoch_index >= final_epoch
            improved = val is not None and on_final_grid and val.accuracy > best["accuracy"]
            if improved:
                best = dict(epoch=epoch, accuracy=val.accuracy)
            extra = dict(best_epoch=best["epoch"], best_validation_accuracy=best["accuracy"])
            with _sigint_deferred():  # Ctrl-C waits until the epoch's files agree
                if out_dir is not None:
                    state = checkpoint_to_dataset(checkpoint(epoch, history, extra))
                    # last.nc, renamed last, marks the epoch as done; a kill between the renames
                    # leaves best.nc / history.nc one epoch ahead, and resuming redoes that epoch
                    # bit for bit and writes them again
                    files = [(state, out_dir / BEST)] if improved else []
                    files += [(history.assign_attrs(config=to_json(config)), out_dir / HISTORY),
                              (state, out_dir / LAST)]
                    last_path = write_netcdfs(files)[-1]
                finished = (model, history, epoch)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row['train_loss']:.4g}", acc=f"{row['train_accuracy']:.3f}",
                                val=f"{row['validation_accuracy']:.3f}")
            for cb in callbacks:
                cb("epoch", row)
            if (patience is not None and val is not None and on_final_grid
                    and epoch - best["epoch"] >= int(patience)):
                stop_reason = "early_stopping"
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
        # the model may have taken steps of an unfinished epoch: go back to the last finished one
        model, history, epoch = finished
    finally:
        if bar is not None:
            bar.close()
    if last_path is None and out_dir is not None and (out_dir / LAST).exists():
        last_path = out_dir / LAST
    return TrainResult(model=model, history=history, stop_reason=stop_reason, epoch=epoch, checkpoint=last_path,
                       best_epoch=best["epoch"],
                       best_validation_accuracy=best["accuracy"] if best["epoch"] else float("nan"))
