"""Benchmark: the wall time of every study's ``paper`` preset on this machine, extrapolated from a measured sample.

Running every paper preset takes days on a 2-core CPU, so each study runs a systematic sample of
its paper grid through the real engine (``run_sweep`` with ``shard=(0, N)``: cells 0, N, 2N, …, N
a prime that divides no axis length, so every axis's values are visited rather than aliased) in a
subprocess with a time limit, and the full preset is extrapolated as

    T_paper ≈ (run time of the sample − its compile time) · M / k + (compile time per program) · P

with M the grid's cells, k the sampled cells and P the programs the full run compiles (one per
static group, or per program key for studies that pack groups, ``Study.program``). Compile and
run time are measured apart (the engine compiles ahead of each call). The sample runs its cells in
smaller chunks than the full run (often one cell per chunk), so on a CPU the estimate is an upper
one for studies whose cells batch well. A study whose sample does not finish within the limit is
reported as taking longer than the limit (the cells it finished are listed). Ends with one JSON line.

Usage: python benchmarks/paper_walltime.py [STUDY ...] [--cells 6] [--limit 300] [--dtype-x64]
(default: every study; ``--limit`` seconds per study's sample).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % q for q in range(2, int(math.isqrt(p)) + 1))


def sample_stride(total: int, cells: int, axis_lengths: list[int]) -> int:
    """The shard count N of a systematic sample of about ``cells`` of ``total`` cells: 1 if the grid is
    that small, else the smallest prime ≥ total/cells that divides no axis length."""
    if total <= cells:
        return 1
    n = max(2, math.ceil(total / cells))
    while not (_is_prime(n) and all(L % n for L in axis_lengths)):
        n += 1
    return n


def _programs(study, cfg) -> int:
    """Programs a full run compiles: its distinct program keys (one per static group unless packed)."""
    from sinkflow.sweep import grid_cells, program_of

    static_names = [a[0] for a in study.axes(cfg) if a[2]]
    groups = {tuple(c.values[s] for s in static_names) for c in grid_cells(study, cfg)}
    if study.program is None:
        return len(groups)
    return len({json.dumps(program_of(study, cfg, dict(zip(static_names, g)))[0], sort_keys=True) for g in groups})


def measure_one(name: str, cells: int, out: str) -> dict:
    """Run the sample of one study's paper preset (in this process) and return the measurements."""
    import jax

    from sinkflow import studies
    from sinkflow.sweep import grid_cells, run_sweep

    study = studies.get(name)
    cfg = study.config("paper")
    if cfg.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    grid = grid_cells(study, cfg)
    lengths = [len(a[1]) for a in study.axes(cfg)]
    stride = sample_stride(len(grid), cells, lengths)
    rep = run_sweep(study, cfg, out, shard=(0, stride), progress=False)
    programs = _programs(study, cfg)
    run_s = rep.seconds - rep.compile_seconds
    per_program = rep.compile_seconds / max(rep.compiles, 1)
    total = run_s * len(grid) / max(rep.computed, 1) + per_program * programs
    return {
        "study": name, "cells": len(grid), "sampled": rep.computed, "stride": stride, "sample_s": rep.seconds,
        "sample_compile_s": rep.compile_seconds, "sample_compiles": rep.compiles, "programs": programs,
        "compile_per_program_s": per_program, "paper_s": total, "compile_share": per_program * programs / total if total else 0.0,
        "failed": rep.failed, "bound": "estimate",
    }


def _partial(name: str, out: Path, limit: float) -> dict:
    """A sample killed at the time limit. The full run does all the sample's work and more, so the
    limit is a lower bound of its wall time; nothing is extrapolated (compile time, which does not
    grow with the cells, may have taken most of it)."""
    from sinkflow import studies
    from sinkflow.store import Store
    from sinkflow.sweep import grid_cells

    study = studies.get(name)
    done = len(Store(out).finished_labels()) if out.exists() else 0
    return {"study": name, "cells": len(grid_cells(study, study.config("paper"))), "sampled": done, "paper_s": limit, "bound": "lower", "limit_s": limit}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("studies", nargs="*", help="study names (default: all)")
    ap.add_argument("--cells", type=int, default=6, help="cells sampled per study (about)")
    ap.add_argument("--limit", type=float, default=300.0, help="seconds allowed per study's sample")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one study, print its JSON
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cells < 1 or args.limit <= 0:
        ap.error("--cells must be ≥ 1 and --limit > 0")
    if args.one:
        print("RESULT " + json.dumps(measure_one(args.one, args.cells, args.out)))
        return

    from sinkflow import studies

    names = args.studies or studies.names()
    unknown = [n for n in names if n not in studies.names()]
    if unknown:
        ap.error(f"unknown studies {unknown}; known: {', '.join(studies.names())}")
    import jax

    rows = []
    print(f"{'study':26s} {'cells':>6s} {'sampled':>7s} {'programs':>8s} {'compile/prog s':>14s} {'sample s':>9s} {'paper (est.)':>14s} {'compile %':>9s}", flush=True)
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            t0 = time.perf_counter()
            try:
                proc = subprocess.run([sys.executable, __file__, "--one", name, "--cells", str(args.cells), "--out", str(out)], capture_output=True, text=True, timeout=args.limit)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                row = json.loads(lines[-1][7:]) if lines else {"study": name, "error": proc.stderr.strip().splitlines()[-1:] or ["no output"]}
            except subprocess.TimeoutExpired:
                row = _partial(name, out, args.limit)
            row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        if "error" in row:
            print(f"{name:26s} error: {row['error']}", flush=True)
        elif row["bound"] == "lower":
            print(f"{name:26s} {row['cells']:6d} {row['sampled']:7d} {'':>8s} {'':>14s} {'>' + str(int(args.limit)):>9s} {'> ' + _fmt(row['paper_s']):>14s}", flush=True)
        else:
            print(f"{name:26s} {row['cells']:6d} {row['sampled']:7d} {row['programs']:8d} {row['compile_per_program_s']:14.1f} {row['sample_s']:9.1f} {_fmt(row['paper_s']):>14s} {100 * row['compile_share']:8.0f}%", flush=True)
    print(json.dumps({"benchmark": "paper_walltime", "machine": platform.processor() or platform.machine(), "devices": [str(d) for d in jax.devices()], "cores": __import__("os").cpu_count(), "cells_sampled": args.cells, "limit_s": args.limit, "results": rows}))


def _fmt(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


if __name__ == "__main__":
    main()
