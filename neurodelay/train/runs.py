"""One training run from a :class:`~neurodelay.train.config.RunConfig` to files on disk, and
the evaluation of a checkpoint.

Output folder of :func:`train_run`::

    config.json      the resolved configuration (every default filled in)
    last.nc          checkpoint after the last completed epoch (resume from it)
    best.nc          checkpoint of the best validation accuracy
    history.nc       the history (epoch dimension; see neurodelay.train.trainer)
    evaluation.nc    final evaluation on the test split (accuracy, loss, per-trial predictions)

Every file is written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import xarray as xr

from ..engines import get_engine
from ..io import atomic_output, remove_stale_temporaries, to_json, write_netcdf
from .checkpoint import load_checkpoint
from .classifier import SpikingClassifier
from .config import RunConfig
from .constraints import quantise_delays
from .model import Evaluation
from .recipes import build_model, get_recipe, make_constraints, make_optimiser, resolve_config
from .trainer import HISTORY, LAST, TrainResult, check_resume_config, fit

__all__ = ["train_run", "evaluate_model", "evaluate_checkpoint", "evaluation_to_dataset", "model_from_checkpoint",
           "SPLITS"]

SPLITS = ("train", "validation", "test")


def evaluation_to_dataset(ev: Evaluation, data, *, split: str, config: dict, quantise: float | None = None,
                          wall_time: float | None = None) -> xr.Dataset:
    """An evaluation as a Dataset: per-trial ``prediction`` and ``label`` (-1 = undecided), accuracy and
    loss as attributes."""
    attrs = dict(split=split, accuracy=float(ev.accuracy), loss=float(ev.loss), n_trials=len(data),
                 task=data.name, config=json.dumps(config, sort_keys=True, default=str),
                 quantise_step=float(quantise) if quantise else 0.0)
    if wall_time is not None:
        attrs["wall_time"] = float(wall_time)
    return xr.Dataset({"prediction": ("trial", np.asarray(ev.predictions, np.int64)),
                       "label": ("trial", np.asarray(data.labels, np.int64))},
                      coords={"trial": np.arange(len(data))}, attrs=attrs)


def evaluate_model(model: SpikingClassifier, data, quantise: float | None = None) -> Evaluation:
    """Evaluate `model` on `data`, with its delays rounded to multiples of `quantise` s if given."""
    if quantise:
        model = model.with_values(quantise_delays(model.values(), quantise))
    return model.evaluate(data)


def model_from_checkpoint(path) -> tuple[SpikingClassifier, RunConfig]:
    """The classifier stored in a checkpoint written by :func:`train_run`, and its configuration."""
    ckpt = load_checkpoint(path)
    try:
        cfg = resolve_config(RunConfig.from_dict(ckpt.config))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the checkpoint's configuration is not a neurodelay train configuration "
                         f"({exc})") from None
    return build_model(cfg).with_network(ckpt.network), cfg


def evaluate_checkpoint(path, split: str = "test", quantise: float | None = None, engine="auto") -> xr.Dataset:
    """Evaluate the network of a checkpoint on one split of its task (simulated on `engine`, a name of
    :mod:`neurodelay.engines` or an engine object); returns :func:`evaluation_to_dataset`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    model, cfg = model_from_checkpoint(path)
    get_engine(engine, model.network)
    model.engine = engine
    data = dict(zip(SPLITS, get_recipe(cfg.task).splits(cfg)))[split]
    start = time.perf_counter()
    ev = evaluate_model(model, data, quantise)
    ds = evaluation_to_dataset(ev, data, split=split, config=cfg.to_dict(), quantise=quantise,
                               wall_time=time.perf_counter() - start)
    ds.attrs["epoch"] = load_checkpoint(path).epoch
    return ds


def train_run(cfg: RunConfig, out_dir=None, *, resume: bool = False, progress: bool = True,
              callbacks=(), n_threads: int | None = None, engine="auto") -> tuple[TrainResult, xr.Dataset]:
    """Train one configuration; returns the TrainResult and the test evaluation Dataset.

    out_dir: folder for the files of the module docstring (None: nothing written);
    resume: continue from ``out_dir/last.nc`` when it exists. The test
    evaluation uses the final network (``cfg.quantise``: delays rounded first);
    engine: the engine that simulates and differentiates (a name of
    :mod:`neurodelay.engines` or an engine object; default "auto").
    """
    cfg = resolve_config(cfg)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"output folder {out} is a file")
        if resume and (out / LAST).exists():  # refuse changed settings before recording them
            check_resume_config(load_checkpoint(out / LAST).config, cfg.to_dict(), out / LAST)
        remove_stale_temporaries([out / "config.json", out / "evaluation.nc"])
        with atomic_output(out / "config.json") as tmp:
            tmp.write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
    train, validation, test = get_recipe(cfg.task).splits(cfg)
    model = build_model(cfg)
    get_engine(engine, model.network)  # unknown names fail before any work
    model.n_threads = n_threads
    model.engine = engine
    fit_config = cfg.to_dict()
    result = fit(model, train, epochs=cfg.epochs, batch_size=cfg.batch_size, optimiser=make_optimiser(cfg),
                 constraints=make_constraints(cfg, model.keys), validation=validation, seed=cfg.seed,
                 out_dir=out, resume=bool(resume) and out is not None and (out / LAST).exists(),
                 patience=cfg.patience, callbacks=callbacks, progress=progress, config=fit_config)
    start = time.perf_counter()
    ev = evaluate_model(result.model, test, cfg.quantise)
    evaluation = evaluation_to_dataset(ev, test, split="test", config=cfg.to_dict(), quantise=cfg.quantise,
                                       wall_time=time.perf_counter() - start)
    evaluation.attrs.update(epoch=result.epoch, stop_reason=result.stop_reason,
                            train_time=float(result.history["elapsed"].values[-1]) if result.epoch else 0.0)
    if out is not None:  # fit writes history.nc with each checkpoint
        if not (out / HISTORY).exists():
            write_netcdf(result.history.assign_attrs(config=to_json(fit_config)), out / HISTORY)
        write_netcdf(evaluation, out / "evaluation.nc")
    return result, evaluation
