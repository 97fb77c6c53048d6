"""The sweep engine: grid → chunks of cells → ``jit(vmap(cell))`` sharded over devices → store.

Contract. :func:`run_sweep` takes a :class:`~sinkflow.study.Study`, a validated
config and an output directory. It

1. lists the grid's cells (cartesian product of the swept parameters), keeps
   this process's share (``shard=(i, N)``: every N-th cell from the i-th) and
   drops the cells already in the store (resume);
2. groups the rest by their *static* values (d, n, model…: one compile each, or
   one per *program key* for a study whose static values only change data,
   ``Study.program``: such groups are run next to each other and share one
   compiled program, their data passed as an argument);
3. runs each group in chunks of ``chunk_size`` cells as one jitted, vmapped call
   whose cell axis is sharded over a 1-D device mesh (chunks are padded to a
   fixed size, so every chunk of a group reuses one compiled program; programs
   are compiled ahead of their first call, and compile time is reported apart
   from run time, ``SweepReport.compile_seconds``); a study
   that declares ``cell_bytes`` gets smaller chunks where ``chunk_size`` cells
   would not fit :func:`memory_budget` (results do not depend on chunking);
4. writes each finished chunk to the store atomically, between chunks updates
   a progress line (only on a terminal) and counts failed cells (status ≠ 0);
5. when the whole grid is present, merges it into ``results.nc`` with
   provenance attributes.

In a ``jax.distributed`` run (``cluster``, :mod:`sinkflow.distributed`) process 0
opens the store, every process lists the finished chunks, and after a barrier
each computes every P-th chunk of the common ordered plan on its local devices;
process 0 merges after a second barrier. The chunks are a one-process run's, so
the results are that run's bit for bit.

Keys: ``key(seed)`` folded with two words of sha256(cell label), so a cell's
draws depend on its parameters and the seed only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .distributed import BARRIER_TIMEOUT_S, LOCAL, Cluster
from .precision import MATMUL_PRECISION, with_exact_matmuls
from .progress import Progress
from .store import Store, cell_label, code_hash, label_key_words, provenance
from .study import Study, StudyConfig

__all__ = ["Cell", "grid_cells", "run_sweep", "SweepReport", "SweepInterrupted", "base_hash", "cell_keys", "default_chunk_size", "memory_budget", "merge_results"]


@dataclass(frozen=True)
class Cell:
    values: dict[str, Any]
    label: str
    index: int


def grid_cells(study: Study, cfg: StudyConfig) -> list[Cell]:
    axes = study.axes(cfg)
    names = [a[0] for a in axes]
    cells = []
    for k, combo in enumerate(np.ndindex(*[len(a[1]) for a in axes])):
        values = {names[j]: axes[j][1][combo[j]] for j in range(len(axes))}
        cells.append(Cell(values, cell_label(values), k))
    return cells


def base_hash(study: Study, cfg: StudyConfig, code: str | None = None) -> str:
    """The run's identity: study name, every non-swept config value (precision included) and
    :func:`~sinkflow.store.code_hash` of the package and the study module (``code``, if the
    caller has it already: it reads every source file)."""
    swept = {a[0] for a in study.axes(cfg)}
    fixed = {k: v for k, v in cfg.to_dict().items() if k not in swept}
    code = code_hash(study.module_file) if code is None else code
    blob = json.dumps({"study": study.name, "config": fixed, "code": code}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cell_keys(seed: int, labels: list[str]) -> jax.Array:
    """Per-cell keys: fold the two label words into ``key(seed)`` (independent of chunking)."""
    words = np.asarray([label_key_words(lab) for lab in labels], dtype=np.uint32)
    base = jax.random.key(seed)
    return jax.vmap(lambda w: jax.random.fold_in(jax.random.fold_in(base, w[0]), w[1]))(jnp.asarray(words))


def memory_budget(devices: list[jax.Device]) -> int:
    """Bytes each device's share of a chunk may use: half an accelerator's memory limit, or on
    CPU half the host's physical memory split among the host devices, which share it (the rest
    is for XLA's temporaries, copies and the host)."""
    stats = devices[0].memory_stats() if devices[0].platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) // 2
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 // len(devices)


def _check_memory(study: Study, cfg: StudyConfig, devices: list) -> None:
    """Refuse, before compiling or writing anything, a grid with a cell that alone exceeds
    :func:`memory_budget` (by the study's ``cell_bytes`` estimate), naming the cell, the
    estimate and the budget. Cells that fit are batched so that a chunk fits too."""
    if study.cell_bytes is None:
        return
    budget = memory_budget(devices)
    static_axes = [(name, vals) for name, vals, static in study.axes(cfg) if static]
    for combo in np.ndindex(*[len(v) for _, v in static_axes]):
        static = {name: vals[k] for (name, vals), k in zip(static_axes, combo)}
        need = int(study.cell_bytes(cfg, static))
        if need > budget:
            where = ", ".join(f"{k}={v}" for k, v in static.items()) or "every cell"
            raise ValueError(
                f"one cell ({where}) needs about {need / 2**30:.3g} GiB of working memory, and a device here has "
                f"{budget / 2**30:.3g} GiB for it (half its memory); nothing was computed. Reduce that cell's sizes "
                f"(n, d, realizations…), or run on a device with more memory."
            )


def _fitting_chunk(size: int, nd: int, cell_bytes: int, budget: int) -> int:
    """The largest multiple of nd ≤ size whose per-device share of cells fits the budget (at least nd)."""
    per_device = max(1, budget // max(1, cell_bytes))
    return max(nd, min(size, per_device * nd))


def _balanced_chunk(cells: int, size: int, nd: int) -> int:
    """The smallest chunk (a multiple of nd, ≤ size) that covers ``cells`` in as few chunks as
    ``size`` does: the last chunk is padded with copies of a real cell (computed and dropped),
    so 10 cells in chunks of 8 did 16 cells' work; in chunks of 5 they do 10."""
    chunks = max(1, math.ceil(cells / size))
    return min(size, int(math.ceil(math.ceil(cells / chunks) / nd) * nd))


def default_chunk_size(n_devices: int) -> int:
    """8 cells per device: big enough batches for the CPU/GPU, small enough to resume often."""
    return 8 * max(1, n_devices)


@dataclass
class SweepReport:
    total: int
    mine: int
    skipped: int
    computed: int
    failed: int
    chunks: int
    compiles: int
    seconds: float
    compile_seconds: float
    merged: bool
    out: Path


def _dtype(cfg: StudyConfig):
    if cfg.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("--dtype float64 needs 64-bit JAX: call jax.config.update('jax_enable_x64', True) first (the CLI does).")
    return jnp.float64 if cfg.dtype == "float64" else jnp.float32


def _build_chunk_fn(study: Study, cfg: StudyConfig, static: dict, mesh: Mesh | None):
    """The jitted chunk function ``fn(values, keys[, data])``; its matrix products are traced at
    float32 proper on every backend (:mod:`sinkflow.precision`: GPUs would otherwise use TF32).
    For a study with ``program``, ``static`` is the program key and ``data`` (one group's arrays,
    shared by the chunk's cells) is a third, replicated argument."""
    packed = study.program is not None
    if study.make_chunk is not None:
        fn = study.make_chunk(cfg, static)
    else:
        fn = jax.vmap(study.make_cell(cfg, static), in_axes=(0, 0, None) if packed else (0, 0))
    fn = with_exact_matmuls(fn)
    if mesh is None:
        return jax.jit(fn)
    sh = NamedSharding(mesh, PartitionSpec("cells"))
    rep = NamedSharding(mesh, PartitionSpec())
    return jax.jit(fn, in_shardings=(sh, sh, rep) if packed else (sh, sh), out_shardings=sh)


def program_of(study: Study, cfg: StudyConfig, static: dict) -> tuple[dict, Any]:
    """(program key, data) of a static group: its own values and no data unless the study packs
    groups into shared programs (``Study.program``)."""
    if study.program is None:
        return static, None
    key, data = study.program(cfg, static)
    return json.loads(json.dumps(key, sort_keys=True)), data


def run_sweep(
    study: Study,
    cfg: StudyConfig,
    out: str | Path,
    *,
    chunk_size: int | None = None,
    devices: int | None = None,
    shard: tuple[int, int] = (0, 1),
    resume: bool = True,
    progress: bool | None = None,
    argv: list[str] | None = None,
    cluster: Cluster = LOCAL,
) -> SweepReport:
    """Run (or resume) a sweep into ``out``; see the module docstring. ``cluster``: this process's
    place in a ``jax.distributed`` run (:mod:`sinkflow.distributed`); each process computes every
    P-th chunk on its local devices and process 0 merges."""
    t_start = time.perf_counter()
    dtype = _dtype(cfg)
    all_devices = jax.local_devices()
    if devices is not None:
        if not (1 <= devices <= len(all_devices)):
            raise ValueError(f"--devices {devices}: this process sees {len(all_devices)} device(s); use 1..{len(all_devices)}.")
        all_devices = all_devices[:devices]
    nd = len(all_devices)
    i_shard, n_shard = shard
    if not (n_shard >= 1 and 0 <= i_shard < n_shard):
        raise ValueError(f"--shard {i_shard}/{n_shard}: need 0 ≤ i < N.")
    if cluster.count > 1 and n_shard > 1:
        raise ValueError("--shard splits a sweep by hand; a distributed run splits it itself: use one or the other.")
    if chunk_size is None:
        chunk_size = default_chunk_size(nd)
    if chunk_size < 1:
        raise ValueError(f"--chunk-size must be ≥ 1, got {chunk_size}.")
    chunk_size = int(math.ceil(chunk_size / nd) * nd)
    mesh = Mesh(np.asarray(all_devices), ("cells",)) if nd > 1 else None

    store = Store(out)
    axes = study.axes(cfg)
    _check_memory(study, cfg, all_devices)
    code = code_hash(study.module_file)
    manifest = {
        "study": study.name,
        "code_hash": code,
        "base_hash": base_hash(study, cfg, code),
        "config": cfg.to_dict(),
        "axes": {a[0]: list(a[1]) for a in axes},
        "precision": cfg.dtype,
        "matmul_precision": MATMUL_PRECISION,
        "solver": cfg.solver_provenance(),
        "argv": list(argv) if argv is not None else list(sys.argv),
        "devices": _devices_used(all_devices, cluster),
    }
    manifest = json.loads(json.dumps(manifest, default=str))
    try:
        _open_store(store, manifest, resume, cluster)
        with _StopAfterChunk() as stop:
            return _run_locked(study, cfg, store, manifest, stop, chunk_size=chunk_size, all_devices=all_devices, mesh=mesh, shard=shard, resume=resume, progress=progress, dtype=dtype, t_start=t_start, out=out, cluster=cluster)
    finally:
        store.close()


def _devices_used(local: list, cluster: Cluster) -> list[str]:
    """The devices a run uses: this process's, or in a distributed run the same number of local
    devices of every process (process 0 records them all)."""
    if cluster.count == 1:
        return [str(d) for d in local]
    per = defaultdict(list)
    for d in jax.devices():
        per[d.process_index].append(d)
    return [f"{d} (process {p})" for p in sorted(per) for d in per[p][: len(local)]]


def _open_store(store: Store, manifest: dict, resume: bool, cluster: Cluster) -> None:
    """Open the store: in a distributed run process 0 alone takes the lock and writes or checks the
    manifest, then tells the others whether it could (they refuse with its message if not)."""
    if cluster.count == 1:
        store.open(manifest, resume=resume)
        return
    if cluster.leader:
        try:
            store.open(manifest, resume=resume)
        except Exception as e:
            cluster.broadcast("open", f"error: {e}")
            raise
        cluster.broadcast("open", "ok")
    else:
        said = cluster.broadcast("open")
        if said != "ok":
            raise ValueError(f"process 0 could not open the store: {said.removeprefix('error: ')}")
        store.open(manifest, resume=resume, follower=True)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a sweep between chunks; every finished chunk, the one in flight included, is on disk."""


class _StopAfterChunk:
    """While a sweep runs in the main thread, the first Ctrl-C (SIGINT) or SIGTERM (what batch
    schedulers send before killing a job) asks it to stop after the chunk in flight (which is then
    written, not discarded); a second one stops at once."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __enter__(self):
        import signal
        import threading

        self.requested = False
        self._old = {}
        if threading.current_thread() is threading.main_thread():

            def handler(signum, frame):
                if self.requested:
                    raise KeyboardInterrupt
                self.requested = True
                name = signal.Signals(signum).name
                print(f"\nsinkflow: {name}: stopping after the chunk in flight ({name} again, or Ctrl-C, to stop now, losing it)", file=sys.stderr, flush=True)

            for name in self.SIGNALS:
                sig = getattr(signal, name)
                self._old[sig] = signal.getsignal(sig)
                signal.signal(sig, handler)
        return self

    def __exit__(self, *exc):
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        return False


def _plan_chunks(study, cfg, todo: list[Cell], chunk_size: int, all_devices: list) -> list[tuple[dict, int, list[Cell], dict, Any]]:
    """The ordered chunks (static values, padded size, cells, program key, group data) of the cells
    to compute: grouped by static values, each group cut into balanced chunks of one padded size,
    groups that share a compiled program (:func:`program_of`) next to each other."""
    nd = len(all_devices)
    static_names = [a[0] for a in study.axes(cfg) if a[2]]
    groups: dict[tuple, list[Cell]] = defaultdict(list)
    for c in todo:
        groups[tuple(c.values[s] for s in static_names)].append(c)
    programs = {k: program_of(study, cfg, dict(zip(static_names, k))) for k in groups}
    first: dict[str, int] = {}
    for i, k in enumerate(groups):
        first.setdefault(json.dumps(programs[k][0], sort_keys=True), i)
    order = sorted(groups, key=lambda k: first[json.dumps(programs[k][0], sort_keys=True)])  # stable
    plan = []
    for static_key in order:
        group = groups[static_key]
        static = dict(zip(static_names, static_key))
        pkey, data = programs[static_key]
        # A group smaller than a chunk is padded only to the next multiple of the device
        # count (padding a 1-cell group to 8 cells computed 8× the work); all chunks of a
        # group share one shape, so still one compile per group.
        size = min(chunk_size, int(math.ceil(len(group) / nd) * nd))
        if study.cell_bytes is not None:
            size = _fitting_chunk(size, nd, int(study.cell_bytes(cfg, static)), memory_budget(all_devices))
        size = _balanced_chunk(len(group), size, nd)
        plan += [(static, size, group[start : start + size], pkey, data) for start in range(0, len(group), size)]
    return plan


def _run_locked(study, cfg, store, manifest, stop, *, chunk_size, all_devices, mesh, shard, resume, progress, dtype, t_start, out, cluster) -> SweepReport:
    i_shard, n_shard = shard
    axes = study.axes(cfg)

    cells = grid_cells(study, cfg)
    mine = [c for c in cells if c.index % n_shard == i_shard]
    done = store.finished_labels() if resume else set()
    cluster.barrier("listed")  # every process has listed the finished chunks before any writes a new one
    todo = [c for c in mine if c.label not in done]
    static_names = [a[0] for a in axes if a[2]]
    traced_names = [a[0] for a in axes if not a[2]]
    plan = _plan_chunks(study, cfg, todo, chunk_size, all_devices)
    plan = plan[cluster.index :: cluster.count]  # a distributed run: every P-th chunk, the same chunks as one process would make
    if cluster.count > 1:
        mine = [c for c in mine if c.label in done] + [c for _, _, part, _, _ in plan for c in part]
    skipped = len(mine) - sum(len(part) for _, _, part, _, _ in plan)

    bar = Progress(total=len(mine), done=skipped, enabled=progress)
    failed = computed = n_chunks = compiles = 0
    fn, fn_key, executables = None, None, {}
    compile_s = 0.0
    for static, size, part, pkey, data in plan:  # ordered by program: one program's executables alive at a time
        if pkey != fn_key:
            fn, fn_key, executables = _build_chunk_fn(study, cfg, pkey, mesh), pkey, {}
        padded = part + [part[-1]] * (size - len(part))
        values = {k: jnp.asarray(np.asarray([c.values[k] for c in padded]), dtype=_axis_dtype(padded[0].values[k], dtype)) for k in traced_names}
        keys = cell_keys(cfg.seed, [c.label for c in padded])
        call = (values, keys) if study.program is None else (values, keys, data)
        if size not in executables:  # traced and compiled ahead of the call, so compile time is measured on its own
            t0 = time.perf_counter()
            executables[size] = fn.lower(*call).compile()
            compile_s += time.perf_counter() - t0
            compiles += 1
        res = executables[size](*call)
        res = jax.tree.map(lambda a: np.asarray(a)[: len(part)], res)
        res = _with_status(study, res, len(part))
        store.write_chunk(
            [c.label for c in part],
            {k: [c.values[k] for c in part] for k in static_names + traced_names},
            res,
            study.output_dims,
        )
        nfail = int(np.count_nonzero(res["status"] != 0))
        failed += nfail
        computed += len(part)
        n_chunks += 1
        bar.update(len(part), nfail)
        if stop.requested:
            bar.close()
            raise SweepInterrupted(f"interrupted: {computed} cells computed in {n_chunks} chunks this run, all written to {store.chunks}; run the same command to resume")
    bar.close()

    merged = False
    cluster.barrier("computed", BARRIER_TIMEOUT_S)  # process 0 merges once every process has written its chunks
    if not cluster.leader:
        return SweepReport(total=len(cells), mine=len(mine), skipped=skipped, computed=computed, failed=failed, chunks=n_chunks, compiles=compiles, seconds=time.perf_counter() - t_start, compile_seconds=compile_s, merged=False, out=Path(out))
    finished = store.finished_labels()
    if all(c.label in finished for c in cells):
        merge_results(study, cfg, store, argv=manifest["argv"], devices=manifest["devices"])
        merged = True
    return SweepReport(
        total=len(cells),
        mine=len(mine),
        skipped=skipped,
        computed=computed,
        failed=failed,
        chunks=n_chunks,
        compiles=compiles,
        seconds=time.perf_counter() - t_start,
        compile_seconds=compile_s,
        merged=merged,
        out=Path(out),
    )


def merge_results(study: Study, cfg: StudyConfig, store: Store, argv: list[str] | None = None, devices: list[str] | None = None, merged_by: list[str] | None = None):
    """Merge the store's chunks into ``results.nc`` with provenance and CF-style variable attributes.
    ``argv``/``devices``: the run's command line and the devices it used; ``merged_by``: the command
    of a separate ``sinkflow merge`` (recorded beside, never instead of, the run's)."""
    axes = study.axes(cfg)
    attrs = provenance(argv, devices)
    if merged_by is not None:
        attrs["merged_by"] = json.dumps(merged_by)
    attrs.update(
        {
            "study": study.name,
            "title": study.title,
            "source": study.source,
            "config": json.dumps(cfg.to_dict(), default=str),
            "precision": cfg.dtype,
            "matmul_precision": MATMUL_PRECISION,
            "solver": json.dumps(cfg.solver_provenance(), default=str),
            "base_hash": store.base_hash or base_hash(study, cfg),
        }
    )
    if store.base_hash is None:
        store.base_hash = attrs["base_hash"]  # `sinkflow merge`: every chunk must be of this run
    return store.merge(axes, dict(study.output_dims), study.coords(cfg), attrs, _variable_attrs(study, cfg))


def _variable_attrs(study: Study, cfg: StudyConfig) -> dict[str, dict]:
    """CF-style attributes: every swept coordinate's long_name is its parameter's help text, the
    status variable carries its legend (flag_values/flag_meanings), outputs their declared
    long_name/units (else their name)."""
    from .solve import STATUS

    out: dict[str, dict] = {}
    for f in dataclasses.fields(cfg):
        if f.metadata.get("swept"):
            out[f.name] = {"long_name": f.metadata.get("help", f.name)}
    for name in study.output_dims:
        out[name] = {"long_name": _default_long_name(name, study), **dict(study.output_attrs.get(name, {}))}
    for name, extra in study.output_attrs.items():
        if name not in study.output_dims:  # coordinates of output dimensions, e.g. t
            out[name] = dict(extra)
    out["status"] = {
        "long_name": "solver status of the cell (non-zero: every check that reads the cell is invalid)",
        "flag_values": np.asarray(sorted(STATUS), dtype=np.int32),
        "flag_meanings": " ".join(STATUS[k] for k in sorted(STATUS)),
    }
    return out


def _default_long_name(name: str, study: Study) -> str:
    """An undeclared output's long_name: the engine's meaning of the names every study uses alike
    (``num_steps``; ``X_se``, the standard error of ``X`` over the cell's realizations), else the name."""
    if name == "num_steps":
        return "time steps taken by the cell's solve (the most over its trajectories)"
    if name.endswith("_se") and name[:-3] in study.output_dims:
        return f"standard error of {name[:-3]} over the cell's realizations"
    return name


def _with_status(study: Study, res: dict, ncells: int) -> dict:
    """The outputs with a ``status`` per cell: the study's own (solver codes), else 3
    (:data:`sinkflow.solve.STATUS` "non_finite") where any floating output of the cell is not
    finite, else 0. Outputs the study did not declare are refused, so nothing unnamed is saved."""
    undeclared = sorted(set(res) - set(study.output_dims))
    if undeclared:
        raise RuntimeError(f"study {study.name!r}: its cell returned outputs {undeclared} that output_dims does not declare.")
    if "status" in res:
        return res
    finite = np.ones(ncells, dtype=bool)
    for a in res.values():
        if np.issubdtype(a.dtype, np.floating):
            finite &= np.isfinite(a.reshape(ncells, -1)).all(axis=1)
    return {**res, "status": np.where(finite, 0, 3).astype(np.int32)}


def _axis_dtype(example, float_dtype):
    if isinstance(example, bool):
        return jnp.bool_
    if isinstance(example, int):
        return jnp.int32
    return float_dtype
