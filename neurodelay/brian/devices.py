"""Brian2 devices for neurodelay: cache folders, preferences, and one private device per build.

Three devices are supported:

* ``runtime``: Brian2's default device, code compiled with Cython; the Cython
  cache lives in ``<cache>/cython``;
* ``cpp_standalone``: a C++ project compiled once into ``<cache>/brian/...``
  and re-run with new values through ``run_args``;
* ``cuda_standalone``: the same through brian2cuda, with everything CUDA 13
  needs set up here (C++17, cuRAND from the ``nvidia-curand`` wheel, the
  compute capability when no GPU is visible, no ``-use_fast_math`` in
  precise mode).

Brian2 keeps the active device and the preferences as global state. Every
standalone build here gets a *fresh device object* of its own, made active
only while its objects are created and compiled (then the previous device is
restored), so several builds in one process are independent and each can be
re-run later. Preferences are changed only inside context managers that
restore them.

The cache root is :func:`neurodelay.cache_root`: ``$NEURODELAY_CACHE``,
else the per-user cache folder (``$XDG_CACHE_HOME/neurodelay`` or
``~/.cache/neurodelay``), shared with numba's cache.
"""

from __future__ import annotations

import copy
import fcntl
import functools
import os
import shutil
import subprocess
import sysconfig
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .._cache import cache_root

__all__ = ["DEVICES", "cache_root", "build_directory", "runtime_preferences", "runtime_context",
           "standalone_device", "gpu_compute_capability", "gpu_visible", "nvcc_path", "curand_paths",
           "directory_lock"]

DEVICES = ("runtime", "cpp_standalone", "cuda_standalone")

#: compute capability compiled for when no GPU is visible (H100 / H200)
DEFAULT_COMPUTE_CAPABILITY = 9.0


def build_directory(device: str, mode: str, key: str) -> Path:
    """Project folder of one standalone build: <cache>/brian/<device>/<mode>-<key>."""
    if device not in DEVICES[1:]:
        raise ValueError(f"build folders exist for standalone devices {DEVICES[1:]}, not {device!r}")
    return cache_root() / "brian" / device / f"{mode}-{key}"


@contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Exclusive lock on a build folder (a lock file next to it), for builds and runs."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def _preferences(values: dict) -> Iterator[None]:
    """Set Brian2 preferences (name -> value) for the duration of the block, then restore them."""
    from brian2 import prefs

    old = {name: copy.deepcopy(prefs[name]) for name in values}
    try:
        for name, value in values.items():
            prefs[name] = value
        yield
    finally:
        for name, value in old.items():
            prefs[name] = value


def runtime_preferences() -> dict:
    """Preferences of the runtime device: Cython code, compiled into the project cache."""
    folder = cache_root() / "cython"
    folder.mkdir(parents=True, exist_ok=True)
    return {"codegen.target": "cython", "codegen.runtime.cython.cache_dir": str(folder)}


@contextmanager
def runtime_context() -> Iterator[None]:
    """Runtime-device preferences for building and running (restored afterwards)."""
    with _preferences(runtime_preferences()):
        yield


# ---- CUDA -----------------------------------------------------------------------------------

def nvcc_path() -> str | None:
    """Path of nvcc ($CUDA_PATH/bin, then PATH, then /usr/local/cuda/bin), or None."""
    candidates = []
    if os.environ.get("CUDA_PATH"):
        candidates.append(Path(os.environ["CUDA_PATH"]) / "bin" / "nvcc")
    found = shutil.which("nvcc")
    if found:
        candidates.append(Path(found))
    candidates.append(Path("/usr/local/cuda/bin/nvcc"))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


@functools.lru_cache(maxsize=1)
def gpu_compute_capability() -> float | None:
    """Compute capability of GPU 0 as reported by nvidia-smi, or None when no GPU is visible."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        return float(out.stdout.split()[0])
    except (IndexError, ValueError):
        return None


def gpu_visible() -> bool:
    """True when nvidia-smi runs and reports a GPU."""
    return gpu_compute_capability() is not None


def curand_paths(link_folder: Path) -> tuple[Path, Path]:
    """(include dir, library dir) of cuRAND from the nvidia-curand wheel (site-packages/nvidia/cu13).

    The wheel ships ``libcurand.so.10`` only; the linker needs ``libcurand.so``,
    so a symlink is made in `link_folder` (inside the build cache, never in
    site-packages) and that folder is returned as the library dir.
    """
    site = Path(sysconfig.get_paths()["purelib"])
    base = site / "nvidia" / "cu13"
    include, lib = base / "include", base / "lib"
    if not (include / "curand.h").is_file():
        raise RuntimeError(f"cuRAND headers not found in {include}; install the 'nvidia-curand' package "
                           f"(pip install nvidia-curand, or neurodelay[cuda])")
    if (lib / "libcurand.so").exists():
        return include, lib
    versioned = sorted(lib.glob("libcurand.so.*"))
    if not versioned:
        raise RuntimeError(f"no libcurand.so.* in {lib}; reinstall the 'nvidia-curand' package")
    link_folder.mkdir(parents=True, exist_ok=True)
    link = link_folder / "libcurand.so"
    target = versioned[0].resolve()
    if not (link.is_symlink() and link.resolve() == target):
        tmp = link_folder / f".libcurand.so.{os.getpid()}"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, link)
    return include, link_folder


def _cuda_preferences(precise: bool) -> dict:
    """Preferences brian2cuda needs with CUDA 13 on this machine (see the module docstring)."""
    import brian2cuda  # noqa: F401  (registers the cuda_standalone preferences)
    from brian2 import prefs

    gcc = [("-std=c++17" if a.startswith("-std=") else a) for a in prefs["codegen.cpp.extra_compile_args_gcc"]]
    if "-std=c++17" not in gcc:
        gcc.append("-std=c++17")
    nvcc = [a for a in prefs["devices.cuda_standalone.cuda_backend.extra_compile_args_nvcc"]
            if not a.startswith("-std=") and not (precise and a == "-use_fast_math")]
    nvcc.append("-std=c++17")
    include, lib = curand_paths(cache_root() / "cuda-libs")
    capability = gpu_compute_capability()
    path = nvcc_path()
    values = {
        "codegen.cpp.extra_compile_args_gcc": gcc,
        "devices.cuda_standalone.cuda_backend.extra_compile_args_nvcc": nvcc,
        "codegen.cpp.include_dirs": list(prefs["codegen.cpp.include_dirs"]) + [str(include)],
        "codegen.cpp.library_dirs": list(prefs["codegen.cpp.library_dirs"]) + [str(lib)],
        "codegen.cpp.runtime_library_dirs": list(prefs["codegen.cpp.runtime_library_dirs"]) + [str(lib)],
        # brian2cuda 1.0b1 declares t and dt twice in event-driven (reset) kernels when loop-invariant
        # expressions are hoisted into scalar code: do not hoist
        "codegen.loop_invariant_optimisations": False,
        "devices.cuda_standalone.cuda_backend.detect_gpus": False,
        # spike queues live on the device heap (brian2cuda's default of 128 MB is small for 10^5 synapses)
        "devices.cuda_standalone.cuda_backend.gpu_heap_size": 1024,
        "devices.cuda_standalone.cuda_backend.gpu_id": 0,
        "devices.cuda_standalone.cuda_backend.compute_capability":
            capability if capability is not None else DEFAULT_COMPUTE_CAPABILITY,
    }
    if path is not None:
        values["devices.cuda_standalone.cuda_backend.cuda_path"] = str(Path(path).parent.parent)
    return values


def _new_device(kind: str):
    if kind == "cpp_standalone":
        from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
        return CPPStandaloneDevice()
    if kind == "cuda_standalone":
        if nvcc_path() is None:
            raise RuntimeError("cuda_standalone needs nvcc (CUDA toolkit); none found in $CUDA_PATH/bin, "
                               "on PATH or in /usr/local/cuda/bin")
        from brian2cuda.device import CUDAStandaloneDevice
        return CUDAStandaloneDevice()
    raise ValueError(f"unknown standalone device {kind!r}; expected one of {DEVICES[1:]}")


@contextmanager
def standalone_device(kind: str, precise: bool) -> Iterator[object]:
    """A fresh standalone device made active (build_on_run=False) with neurodelay's preferences.

    Yields the device object; on exit the previously active device is restored.
    Create the Brian2 objects, call ``device.build(...)`` inside the block; the
    device object stays usable for ``device.run(run_args=...)`` afterwards.
    """
    from brian2.devices.device import reset_device, set_device

    device = _new_device(kind)
    values = _cuda_preferences(precise) if kind == "cuda_standalone" else {}
    with _preferences(values):
        set_device(device, build_on_run=False)
        try:
            yield device
        finally:
            reset_device()
