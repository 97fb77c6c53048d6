"""What a study is: a validated config, a grid of cells, a cell function, figures and checks.

A study is one module in the studies package (:mod:`sinkflow.studies`; the files live
in the repository's top-level ``experiments/`` folder) that defines

- ``Config``: a frozen dataclass subclassing :class:`StudyConfig`. Every field is
  made with :func:`param`, which carries its help text, whether it is *swept* (a
  tuple of values, grid syntax on the command line), whether it is *static*
  (shape-changing, e.g. d or n: one compile per value) and its allowed values
  (``choices``, ``lo``/``hi``/``open``, ``integer``). :class:`StudyConfig`
  validates every field from that metadata before any compute; a study's own
  ``__post_init__`` states only cross-field rules.
- ``STUDY``, a :class:`Study`: presets (``tiny`` for the test suite, ``small`` for
  the README, ``paper`` for the published parameters), how to build the cell (or
  chunk) function for given static values, output dimensions and coordinates,
  ``plot(ds, cfg, outdir)`` and ``checks(ds, cfg)``.

The cell function ``cell(values, key) -> dict[str, Array]`` is pure: ``values``
maps each traced swept parameter to a scalar, ``key`` is the cell's PRNG key.
Each output has the dims named in ``Study.output_dims`` (shapes must not depend on
static values). A ``status`` output (int per cell, codes of
:data:`sinkflow.solve.STATUS`) says whether the cell solved; the engine declares
it, fills it from the outputs' finiteness where a study does not return one, and
puts the "all cells solved" check before the study's checks
(:meth:`Study.run_checks`). Figures and checks receive the typed config rebuilt
from the saved attributes (:meth:`Study.config_from_attrs`), never a raw dict.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "param",
    "StudyConfig",
    "Study",
    "swept_fields",
    "require",
    "check_values",
    "PRESETS",
    "mask_failed",
    "solved",
]

#: Preset names every study defines: seconds (test suite), minutes (README), the published grid.
PRESETS = ("tiny", "small", "paper")

_OPEN = (None, "lo", "hi", "both")


def param(
    default: Any,
    help: str,
    *,
    swept: bool = False,
    static: bool = False,
    kind: type | None = None,
    choices=None,
    lo: float | None = None,
    hi: float | None = None,
    open: str | None = None,
    integer: bool | None = None,
):
    """A config field with its CLI metadata and allowed values.

    ``choices``: the allowed values (strings). ``lo``/``hi``: the range, closed unless
    ``open`` is ``"lo"``, ``"hi"`` or ``"both"``. ``integer``: values must be integral
    (default: when ``kind`` is int). Numbers must be finite whenever a range or an
    integer constraint is given, and for every ``kind=float`` field.
    """
    if open not in _OPEN:
        raise ValueError(f"param(open={open!r}): use one of {_OPEN}.")
    meta = {"help": help, "swept": swept, "static": static, "kind": kind, "choices": choices, "lo": lo, "hi": hi, "open": open, "integer": kind is int if integer is None else integer}
    if isinstance(default, (list, tuple)):
        default = tuple(default)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Fields every study has; validates every field from its :func:`param` metadata."""

    seed: int = param(0, "base PRNG seed; cell keys are fold_in(seed, cell id)", kind=int, lo=0, hi=2**31 - 1)
    dtype: str = param("float32", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _validate_field(f, getattr(self, f.name))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def solver_provenance(self) -> dict[str, Any]:
        """How cells are integrated, recorded in the results' attributes (solver mixins extend it)."""
        return {}


def _validate_field(f: dataclasses.Field, value) -> None:
    meta, flag = f.metadata, _flag(f.name)
    if meta.get("swept"):
        require(isinstance(value, tuple) and len(value) > 0, f"{flag}: empty grid; give at least one value.")
        values = value
    else:
        values = value if isinstance(value, tuple) else (value,)
    choices = meta.get("choices")
    if choices is not None:
        for item in values:
            require(item in choices, f"{flag}: {item!r} is not known; use any of {', '.join(map(str, choices))}.")
        return
    kind = meta.get("kind")
    numeric = kind in (int, float) or meta.get("lo") is not None or meta.get("hi") is not None or meta.get("integer")
    if numeric:
        opn = meta.get("open")
        check_values(f.name, values, lo=meta.get("lo"), hi=meta.get("hi"), lo_open=opn in ("lo", "both"), hi_open=opn in ("hi", "both"), integer=bool(meta.get("integer")))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def require(ok: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``ok`` (boundary validation)."""
    if not ok:
        raise ValueError(message)


def check_values(name: str, values, *, lo=None, hi=None, lo_open=False, hi_open=False, integer=False) -> None:
    """Check that every value is a finite number inside [lo, hi] (or open ends); messages name the allowed range."""
    flag = _flag(name)
    for v in values if isinstance(values, (tuple, list)) else (values,):
        require(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), f"{flag}: {v!r} is not a finite number.")
        if integer:
            require(float(v).is_integer(), f"{flag}: {v!r} must be an integer.")
        allowed = f"allowed {'(' if lo_open or lo is None else '['}{lo if lo is not None else '−∞'}, {hi if hi is not None else '∞'}{')' if hi_open or hi is None else ']'}"
        if lo is not None:
            require(not (v <= lo if lo_open else v < lo), f"{flag}: {v!r} is out of range; {allowed}.")
        if hi is not None:
            require(not (v >= hi if hi_open else v > hi), f"{flag}: {v!r} is out of range; {allowed}.")


def swept_fields(cfg_cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cfg_cls) if f.metadata.get("swept")]


@dataclasses.dataclass(frozen=True)
class Study:
    """A registered study (see module docstring).

    name: CLI name (the module name with ``-`` for ``_``). title, source: what it
    reproduces and where it is from (the papers, by name). config_cls: the Config
    dataclass. presets: ``{"tiny": {...}, "small": {...}, "paper": {...}}`` field
    overrides of the Config defaults.
    make_cell: ``(config, static_values: dict) -> cell(values, key) -> dict``.
    output_dims: output name → dims (after the cell axis); ``status`` is added by the engine.
    coords: ``config -> {dim: values}`` for the output dims.
    plot: ``(dataset, config, outdir) -> list[paths]`` from saved data only.
    checks: ``(dataset, config) -> list[sinkflow.checks.Check]`` (the status check is the engine's).
    make_chunk: optional ``(config, static_values) -> chunk(values, keys) -> dict``
    working on a whole chunk at once (values are ``(C,)`` arrays, outputs have a
    leading ``C`` axis). Use it when flattening cells × realizations into one batch
    beats ``vmap`` of ``make_cell`` (XLA's CPU dot is ~2× slower with two batch
    dimensions than with one flat batch; see benchmarks/phase_diagram.py).
    cell_bytes: optional ``(config, static_values) -> int``, an upper estimate of one
    cell's peak working memory; the sweep then caps a group's chunk so that the cells
    run together fit half the device's memory (:func:`sinkflow.sweep.memory_budget`).
    output_attrs: optional CF-style attributes (``long_name``, ``units``) of outputs and of
    output coordinates such as ``t``, written into ``results.nc`` so the file explains itself.
    program: optional ``(config, static_values) -> (program_key: dict, data)`` that packs
    several static groups into one compiled program. ``program_key`` holds what fixes the
    program (shapes, flags: JSON-serialisable values), ``data`` a pytree of arrays of the
    same shapes for every group with that key (e.g. one graph's Laplacian). ``make_cell`` /
    ``make_chunk`` are then called with the *program key* instead of the static values and
    return ``cell(values, key, data)`` / ``chunk(values, keys, data)``, so they cannot depend
    on anything else; the engine compiles once per key and passes each group's ``data``.
    Use it where static values only change data, not shapes (graph-heat: one program per
    node count instead of one per graph).
    """

    name: str
    title: str
    source: str
    config_cls: type
    presets: Mapping[str, Mapping[str, Any]]
    make_cell: Callable | None
    output_dims: Mapping[str, tuple[str, ...]]
    coords: Callable
    plot: Callable
    checks: Callable
    make_chunk: Callable | None = None
    cell_bytes: Callable | None = None
    output_attrs: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    program: Callable | None = None

    def __post_init__(self):
        missing = [p for p in PRESETS if p not in self.presets]
        if missing:
            raise ValueError(f"study {self.name!r} must define the presets {PRESETS}; missing {missing}.")
        if (self.make_cell is None) == (self.make_chunk is None):
            raise ValueError(f"study {self.name!r}: give exactly one of make_cell and make_chunk.")
        dims = dict(self.output_dims)
        dims.setdefault("status", ())
        object.__setattr__(self, "output_dims", dims)

    @property
    def module_file(self) -> str:
        """The file of the module that defines the study's Config (part of the run's code hash)."""
        mod = sys.modules.get(self.config_cls.__module__)
        return str(Path(mod.__file__)) if mod is not None and getattr(mod, "__file__", None) else ""

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

    def config_from_attrs(self, attrs: Mapping[str, Any]) -> StudyConfig:
        """The typed config of a saved result (its ``config`` attribute, JSON), validated again."""
        raw = json.loads(attrs["config"]) if isinstance(attrs["config"], str) else dict(attrs["config"])
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        vals = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names}
        return self.config_cls(**vals)

    def run_checks(self, ds) -> list:
        """The "all cells solved" check, then the study's own checks on its typed config, which see
        failed cells' outputs as NaN (:func:`mask_failed`)."""
        from .checks import status_check

        return [status_check(ds)] + list(self.checks(mask_failed(ds), self.config_from_attrs(ds.attrs)))

    def make_figures(self, ds, outdir) -> list:
        """The study's figures from the saved result only; failed cells are NaN there (drawn as gaps)."""
        return list(self.plot(mask_failed(ds), self.config_from_attrs(ds.attrs), outdir))


def solved(ds, dim: str) -> list:
    """The values of the cell axis ``dim`` whose cells solved (status 0): the cells a plot or check
    of a study with that one cell axis may read."""
    import numpy as np

    status = ds["status"]
    if status.dims != (dim,):
        raise ValueError(f"solved(ds, {dim!r}): the status has cell axes {status.dims}; use mask_failed for several.")
    return [v for v, s in zip(ds[dim].values, np.asarray(status.values)) if int(s) == 0]


def mask_failed(ds):
    """``ds`` with every floating output of a failed cell (``status`` ≠ 0) set to NaN, so that no plot
    or check reads a failed cell's numbers as data: a finite observable of a NaN state (a pair
    fraction, a count) is not a result. The status itself is kept; integer outputs are kept too
    (they cannot hold NaN; the status check fails first whenever a cell failed)."""
    import numpy as np

    if "status" not in ds or not bool((ds["status"] != 0).any()):
        return ds
    ok = ds["status"] == 0
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if name != "status" and np.issubdtype(var.dtype, np.floating) and set(ok.dims) <= set(var.dims):
            out[name] = var.where(ok).transpose(*var.dims)
    return out
