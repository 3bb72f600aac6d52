"""Sweep configuration files (TOML or JSON) for ``neurodelay sweep CONFIG``.

Example (TOML)::

    function = "mypackage.experiments:rate_point"   # module:function, importable here and on the workers
    seeds = 5                                        # seeds per grid point (default 1)
    root_seed = 0                                    # default 0
    retries = 1                                      # default 1
    out = "build/sweeps/rates"                       # sweep folder (default: build/sweeps/<config name>)

    [grid]                                           # one dimension per key, in this order
    rate = [5.0, 10.0, 20.0]
    mode = ["weights", "delays"]

    [fixed]                                          # passed unchanged to every call (optional)
    duration = 0.5

    [slurm]                                          # used with --slurm (SlurmExecutor's arguments)
    cores = 8
    memory = "16GB"
    walltime = "02:00:00"
    queue = "compute"
    account = "mylab"
    jobs = 4
"""

from __future__ import annotations

import importlib
import json
import tomllib
from pathlib import Path

__all__ = ["load_sweep_config", "resolve_function", "CONFIG_KEYS"]

CONFIG_KEYS = ("function", "grid", "seeds", "root_seed", "retries", "out", "fixed", "slurm")


def resolve_function(spec: str):
    """The function named ``"module:function"`` (or ``"module.function"``)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"function must be a string 'module:function', got {spec!r}")
    module_name, _, name = spec.partition(":") if ":" in spec else spec.rpartition(".")
    if not module_name or not name:
        raise ValueError(f"function must be given as 'module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} of function {spec!r} ({exc})") from None
    func = getattr(module, name, None)
    if not callable(func):
        raise ValueError(f"module {module_name!r} has no function {name!r}")
    return func


def load_sweep_config(path) -> dict:
    """A checked sweep configuration: keys of :data:`CONFIG_KEYS` with defaults, ``function`` resolved.

    Raises FileNotFoundError for a missing file and ValueError (one line, naming the
    file and the key) for anything wrong in it; the grid itself is checked by run_sweep.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep configuration {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix == ".json":
            raw = json.loads(text)
        else:
            raise ValueError("configuration files must end in .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a table of keys {', '.join(CONFIG_KEYS)}")
    unknown = sorted(set(raw) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; allowed: {', '.join(CONFIG_KEYS)}")
    if "function" not in raw:
        raise ValueError(f"{path}: the key 'function' (\"module:function\") is required")
    cfg = dict(grid={}, seeds=1, root_seed=0, retries=1, out=None, fixed={}, slurm={})
    cfg.update(raw)
    for key in ("seeds", "root_seed", "retries"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int):
            raise ValueError(f"{path}: {key} must be an integer, got {cfg[key]!r}")
    for key in ("grid", "fixed", "slurm"):
        if not isinstance(cfg[key], dict):
            raise ValueError(f"{path}: [{key}] must be a table, got {cfg[key]!r}")
    if cfg["out"] is not None and not isinstance(cfg["out"], str):
        raise ValueError(f"{path}: out must be a folder name, got {cfg['out']!r}")
    try:
        cfg["function"] = resolve_function(cfg["function"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    cfg["name"] = path.stem
    return cfg
