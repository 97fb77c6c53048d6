"""What a study is: a validated config, a grid of cells, a cell function, figures and checks.

A study (one module in ``experiments/``) defines

- ``Config``: a frozen dataclass subclassing :class:`StudyConfig`. Fields made
  with :func:`param` carry their help text, whether they are *swept* (a tuple of
  values, grid syntax on the command line) and whether they are *static*
  (shape-changing, e.g. d or n: one compile per value). Swept non-static
  parameters (β, …) are traced: a whole chunk of cells runs as one
  ``jit(vmap(cell))``. ``__post_init__`` validates with the helpers below, so a
  bad value is an error before any compute.
- a :class:`Study` instance ``STUDY`` that names the presets (``paper`` and
  ``small``), how to build the cell function for given static values, the
  output dimensions and coordinates, the figures and the checks.

The cell function ``cell(values, key) -> dict[str, Array]`` is pure: ``values``
maps each traced swept parameter to a scalar, ``key`` is the cell's PRNG key.
Each output has the dims named in ``Study.output_dims`` (shapes must not depend
on static values), and a ``status`` output (int, see ``sinkflow.solve.STATUS``)
is required.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "param",
    "StudyConfig",
    "Study",
    "swept_fields",
    "require",
    "check_values",
]


def param(default: Any, help: str, *, swept: bool = False, static: bool = False, kind: type | None = None, choices=None):
    """A config field with CLI metadata (see module docstring)."""
    meta = {"help": help, "swept": swept, "static": static, "kind": kind, "choices": choices}
    if isinstance(default, (list, tuple)):
        default = tuple(default)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Fields every study has."""

    seed: int = param(0, "base PRNG seed; cell keys are fold_in(seed, cell id)", kind=int)
    dtype: str = param("float32", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        require(isinstance(self.seed, int) and 0 <= self.seed < 2**31, f"--seed must be an integer in [0, 2^31), got {self.seed!r}.")
        require(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype!r}.")
        for f in dataclasses.fields(self):
            if f.metadata.get("swept"):
                v = getattr(self, f.name)
                require(isinstance(v, tuple) and len(v) > 0, f"--{_flag(f.name)}: empty grid; give at least one value.")
                check_values(f.name, v)
                choices = f.metadata.get("choices")
                for item in v if choices is not None else ():
                    require(item in choices, f"--{_flag(f.name)}: {item!r} is not known; use any of {', '.join(map(str, choices))}.")
            elif f.metadata.get("choices") is not None:
                v = getattr(self, f.name)
                require(v in f.metadata["choices"], f"--{_flag(f.name)} must be one of {', '.join(map(str, f.metadata['choices']))}, got {v!r}.")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _flag(name: str) -> str:
    return name.replace("_", "-")


def require(ok: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``ok`` (boundary validation)."""
    if not ok:
        raise ValueError(message)


def check_values(name: str, values, *, lo=None, hi=None, lo_open=False, hi_open=False, integer=False) -> None:
    """Check that every value is finite (numbers) and inside [lo, hi] (or open ends); messages name the allowed range."""
    flag = f"--{_flag(name)}"
    for v in values if isinstance(values, (tuple, list)) else (values,):
        if isinstance(v, str):
            continue
        require(isinstance(v, (int, float)) and math.isfinite(v), f"{flag}: {v!r} is not a finite number.")
        if integer:
            require(float(v).is_integer(), f"{flag}: {v!r} must be an integer.")
        if lo is not None:
            bad = v <= lo if lo_open else v < lo
            require(not bad, f"{flag}: {v!r} is out of range; allowed {'(' if lo_open else '['}{lo}, {hi if hi is not None else '∞'}{')' if hi_open or hi is None else ']'}.")
        if hi is not None:
            bad = v >= hi if hi_open else v > hi
            require(not bad, f"{flag}: {v!r} is out of range; allowed {'(' if lo_open else '['}{lo if lo is not None else '−∞'}, {hi}{')' if hi_open else ']'}.")


def swept_fields(cfg_cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cfg_cls) if f.metadata.get("swept")]


@dataclasses.dataclass(frozen=True)
class Study:
    """A registered study (see module docstring).

    name: CLI name. title, source: what it reproduces and where it is from.
    config_cls: the Config dataclass. presets: ``{"paper": {...}, "small": {...}}``
    field overrides of the Config defaults.
    make_cell: ``(config, static_values: dict) -> cell(values, key) -> dict``.
    output_dims: output name → dims (after the cell axis).
    coords: ``config -> {dim: values}`` for the output dims.
    plot: ``(dataset, outdir) -> list[paths]`` from saved data only.
    checks: ``dataset -> list[sinkflow.checks.Check]``.
    solver_of: ``config -> dict`` of solver settings (recorded as provenance).
    make_chunk: optional ``(config, static_values) -> chunk(values, keys) -> dict``
    working on a whole chunk at once (values are ``(C,)`` arrays, outputs have a
    leading ``C`` axis). Use it when flattening cells × realizations into one batch
    beats ``vmap`` of ``make_cell`` (XLA's CPU dot is ~2× slower with two batch
    dimensions than with one flat batch; see benchmarks/phase_diagram.py).
    cell_bytes: optional ``(config, static_values) -> int``, an upper estimate of one
    cell's peak working memory; the sweep then caps a group's chunk so that the cells
    run together fit half the device's memory (:func:`sinkflow.sweep.memory_budget`).
    Studies with n×n work per realization at large n declare it.
    """

    name: str
    title: str
    source: str
    config_cls: type
    presets: Mapping[str, Mapping[str, Any]]
    make_cell: Callable
    output_dims: Mapping[str, tuple[str, ...]]
    coords: Callable
    plot: Callable
    checks: Callable
    solver_of: Callable = lambda cfg: {}
    module_file: str = ""
    make_chunk: Callable | None = None
    cell_bytes: Callable | None = None

    def config(self, preset: str = "small", **overrides) -> StudyConfig:
        if preset not in self.presets:
            raise ValueError(f"study {self.name!r} has no preset {preset!r}; presets: {', '.join(self.presets)}.")
        values = dict(self.presets[preset])
        values.update(overrides)
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"study {self.name!r} has no parameter(s) {unknown}; it has {sorted(names)}.")
        return self.config_cls(**values)

    def axes(self, cfg: StudyConfig) -> list[tuple[str, tuple, bool]]:
        """[(name, values, static)] for every swept field, in declaration order."""
        return [(f.name, getattr(cfg, f.name), bool(f.metadata.get("static"))) for f in swept_fields(self.config_cls)]
