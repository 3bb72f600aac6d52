"""Loaders for spike datasets stored as HDF5 in the SHD layout (SHD, SSC, Braille).

SHD / SSC layout (Cramer et al. 2020), one entry per sample:

* ``/spikes/times``: variable-length float arrays, spike times in seconds;
* ``/spikes/units``: variable-length int arrays, input channel 0..699;
* ``/labels``: int class (SHD 20 classes, SSC 35);
* ``/extra/speaker`` (optional): int speaker id per sample;
* ``/extra/keys`` (optional): class names.

Braille (Mueller-Cleve et al. 2022) has no official HDF5 file; this module
defines one analogous to SHD: ``/spikes/times`` (seconds), ``/spikes/units``
and ``/labels`` (27 classes: space + A..Z). The units are 12 taxels x ON/OFF
= 24 channels, ``unit = 2 * taxel + polarity`` (polarity 0 = ON, 1 = OFF);
pass ``n_units`` for another channel count. :func:`write_shd_like` writes
that layout.

Spike times stay exact (no time binning). Spikes with a non-finite time are
dropped with a warning naming the samples. Problems with the file raise
FileNotFoundError (no file) or ValueError naming the path and what is wrong
(not HDF5 / truncated / corrupt, missing dataset, mismatched lengths, units or
labels out of range, negative times).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..spikes import SpikeTrains
from .base import TaskData

__all__ = ["load_spikes_hdf5", "load_shd", "load_ssc", "load_braille", "write_shd_like",
           "SHD_UNITS", "BRAILLE_UNITS"]

SHD_UNITS = 700
BRAILLE_UNITS = 24


def _decode(values) -> tuple:
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).reshape(-1))


def load_spikes_hdf5(path, *, n_units: int, n_classes: int | None = None, max_samples: int | None = None,
                     max_time: float | None = None, name: str = "hdf5") -> TaskData:
    """Samples of an SHD-layout HDF5 file as a TaskData (times in seconds, no binning).

    Parameters
    ----------
    path : file path.
    n_units : number of input channels; units must lie in ``[0, n_units)``.
    n_classes : number of classes (default: largest label + 1).
    max_samples : read only the first ``max_samples`` samples.
    max_time : crop: drop spikes later than ``max_time`` s; the trial
        duration is then ``max_time``, otherwise the latest spike time.
    name : task name of the result.

    ``trial_meta['speaker']`` holds ``/extra/speaker`` if present,
    ``meta['keys']`` the class names of ``/extra/keys``.
    """
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file (expected an HDF5 file with /spikes/times, "
                                f"/spikes/units and /labels)")
    if max_samples is not None and int(max_samples) < 0:
        raise ValueError(f"max_samples must be >= 0, got {max_samples}")
    if max_time is not None and not (np.isfinite(max_time) and max_time >= 0):
        raise ValueError(f"max_time must be a finite number of seconds >= 0, got {max_time}")
    stop = None if max_samples is None else int(max_samples)
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("spikes/times", "spikes/units", "labels")
                       if not isinstance(f.get(k), h5py.Dataset)]
            if missing:
                raise ValueError(f"{path}: wrong layout, missing dataset(s) {', '.join('/' + m for m in missing)} "
                                 f"(expected /spikes/times, /spikes/units, /labels)")
            ds_t, ds_u, ds_l = f["spikes/times"], f["spikes/units"], f["labels"]
            for label, ds in (("/spikes/times", ds_t), ("/spikes/units", ds_u), ("/labels", ds_l)):
                if ds.ndim != 1:
                    raise ValueError(f"{path}: wrong layout, {label} must be a 1-d dataset with one entry per "
                                     f"sample, got a {'scalar' if ds.ndim == 0 else f'{ds.ndim}-d'} dataset")
            lengths = (len(ds_t), len(ds_u), len(ds_l))
            if len(set(lengths)) != 1:
                raise ValueError(f"{path}: wrong layout, /spikes/times, /spikes/units and /labels have "
                                 f"different lengths {lengths}")
            times_list = list(ds_t[:stop])
            units_list = list(ds_u[:stop])
            labels = np.asarray(ds_l[:stop])
            speaker = keys = None
            if isinstance(f.get("extra/speaker"), h5py.Dataset):
                speaker = np.asarray(f["extra/speaker"][:stop])
                if len(f["extra/speaker"]) != lengths[0]:
                    raise ValueError(f"{path}: wrong layout, /extra/speaker has {len(f['extra/speaker'])} "
                                     f"entries for {lengths[0]} samples")
            if isinstance(f.get("extra/keys"), h5py.Dataset):
                keys = _decode(f["extra/keys"][()])
    except (OSError, RuntimeError, KeyError) as err:  # h5py's errors for unreadable files and objects
        raise ValueError(f"{path}: cannot be read as HDF5 (truncated or corrupt file?): {err}") from err

    n = len(labels)
    if labels.ndim != 1 or (n and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"{path}: /labels must be a 1-d integer dataset, got shape {labels.shape}, "
                         f"dtype {labels.dtype}")
    trial, neuron, time = [], [], []
    non_finite = []
    for k, (t, u) in enumerate(zip(times_list, units_list)):
        t_raw = np.asarray(t)
        if not (np.issubdtype(t_raw.dtype, np.number) or t_raw.dtype == object):
            raise ValueError(f"{path}: /spikes/times of sample {k} are not numbers (dtype {t_raw.dtype}); "
                             f"spike times must be floats in seconds")
        try:
            t = np.asarray(t, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: /spikes/times of sample {k} are not numbers; spike times must be floats "
                             f"in seconds") from None
        u = np.asarray(u).reshape(-1)
        if t.shape != u.shape:
            raise ValueError(f"{path}: wrong layout, sample {k} has {t.size} spike times but {u.size} units")
        if u.size and not np.issubdtype(u.dtype, np.integer):
            raise ValueError(f"{path}: /spikes/units of sample {k} are not integers (dtype {u.dtype})")
        finite = np.isfinite(t)
        if not finite.all():
            non_finite.append(k)
            t, u = t[finite], u[finite]
        if u.size and (u.min() < 0 or u.max() >= n_units):
            raise ValueError(f"{path}: sample {k} has units out of range [0, {n_units}): "
                             f"min {u.min()}, max {u.max()}")
        if t.size and t.min() < 0:
            raise ValueError(f"{path}: sample {k} has negative spike times (min {t.min()} s)")
        if max_time is not None:
            keep = t <= max_time
            t, u = t[keep], u[keep]
        trial.append(np.full(t.size, k, dtype=np.int64))
        neuron.append(u.astype(np.int64))
        time.append(t)
    if non_finite:
        warnings.warn(f"{path}: dropped non-finite spike times in {len(non_finite)} sample(s): "
                      f"{non_finite[:20]}{' ...' if len(non_finite) > 20 else ''}", stacklevel=2)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    inputs = SpikeTrains(cat(trial, np.int64), cat(neuron, np.int64), cat(time, float), n, n_units).sorted()
    if n_classes is None:
        n_classes = int(labels.max()) + 1 if n else 1
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{path}: labels out of range [0, {n_classes}): min {labels.min()}, max {labels.max()}")
    if max_time is not None:
        duration = float(max_time)
    else:
        duration = float(inputs.time.max()) if len(inputs) else 0.0
    meta = dict(path=path, max_time=max_time, non_finite_samples=tuple(non_finite))
    if keys is not None:
        meta["keys"] = keys
    trial_meta = {} if speaker is None else {"speaker": speaker}
    return TaskData(inputs, labels.astype(np.int64), n_classes, duration, name, meta, trial_meta)


def load_shd(path, *, max_samples: int | None = None, max_time: float | None = None) -> TaskData:
    """Spiking Heidelberg Digits file (``shd_train.h5`` / ``shd_test.h5``): 700 units, 20 classes."""
    return load_spikes_hdf5(path, n_units=SHD_UNITS, n_classes=20, max_samples=max_samples,
                            max_time=max_time, name="shd")


def load_ssc(path, *, max_samples: int | None = None, max_time: float | None = None) -> TaskData:
    """Spiking Speech Commands file (``ssc_{train,valid,test}.h5``): 700 units, 35 classes."""
    return load_spikes_hdf5(path, n_units=SHD_UNITS, n_classes=35, max_samples=max_samples,
                            max_time=max_time, name="ssc")


def load_braille(path, *, n_units: int = BRAILLE_UNITS, max_samples: int | None = None,
                 max_time: float | None = None) -> TaskData:
    """Braille letters in this module's SHD-like layout (no official HDF5 exists).

    27 classes (space, A..Z); by default 24 units = 12 taxels x ON/OFF,
    ``unit = 2 * taxel + polarity``. Convert the published pickles to this
    layout with :func:`write_shd_like`.
    """
    return load_spikes_hdf5(path, n_units=n_units, n_classes=27, max_samples=max_samples,
                            max_time=max_time, name="braille")


def write_shd_like(path, times_list, units_list, labels, *, speakers=None, keys=None,
                   time_dtype=np.float32, unit_dtype=np.uint16) -> None:
    """Write samples in the SHD layout (variable-length ``/spikes/times`` in s and ``/spikes/units``,
    ``/labels``, optional ``/extra/speaker`` and ``/extra/keys``); overwrites ``path``."""
    import h5py

    if not (len(times_list) == len(units_list) == len(labels)):
        raise ValueError(f"times_list, units_list and labels need one length, got "
                         f"{len(times_list)}, {len(units_list)}, {len(labels)}")
    n = len(labels)
    with h5py.File(os.fspath(path), "w") as f:
        ds_t = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.dtype(time_dtype)))
        ds_u = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.dtype(unit_dtype)))
        for k in range(n):
            ds_t[k] = np.asarray(times_list[k], dtype=time_dtype)
            ds_u[k] = np.asarray(units_list[k], dtype=unit_dtype)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
        if speakers is not None:
            f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.int64))
        if keys is not None:
            f.create_dataset("extra/keys", data=np.asarray([str(k).encode() for k in keys]))
