"""Command line: ``sinkflow run | plot | check | merge | list``.

    sinkflow list
    sinkflow run STUDY [--preset paper|small] [--PARAM GRID ...] --out DIR
                 [--chunk-size K] [--devices N] [--shard i/N] [--no-resume]
                 [--distributed auto|on|off] [--coordinator HOST:PORT
                  --num-processes N --process-id I]
                 [--no-plot] [--no-check] [--progress|--no-progress]
    sinkflow plot DIR          figures from DIR/results.nc only (never re-simulates)
    sinkflow check DIR         theorem checks; exit status 1 if any fails
    sinkflow merge DIR         merge chunk files (after sharded runs)

Options of ``run`` are the study's parameters, named as the mathematical
symbols (``--beta``, ``--d``, ``--n``, ``--delta``, ``--T``...). Swept parameters
take grid syntax (``2,8,32``, ``lin:0:9:46``, ``log:1e-2:1:10``); explicit
options override the preset. The grid is printed before anything runs, and any
bad value is reported before any compute (exit status 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_study_options(p: argparse.ArgumentParser, study) -> None:
    from .grid import GRID_HELP

    for f in dataclasses.fields(study.config_cls):
        meta = f.metadata
        kind = meta.get("kind") or type(f.default)
        paper = study.presets.get("paper", {}).get(f.name, f.default)
        small = study.presets.get("small", {}).get(f.name, f.default)
        shown = ",".join(map(str, paper)) if isinstance(paper, tuple) else paper
        if isinstance(paper, tuple) and len(paper) > 8:
            shown = f"{paper[0]},…,{paper[-1]} ({len(paper)} values)"
        extra = f" [paper: {shown}"
        if small != paper:
            s_shown = ",".join(map(str, small)) if isinstance(small, tuple) else small
            extra += f"; small: {s_shown}"
        extra += "]"
        if meta.get("swept"):
            p.add_argument(_flag(f.name), dest=f.name, metavar="GRID", default=None, help=f"{meta.get('help', '')}; {GRID_HELP}{extra}")
        elif isinstance(f.default, tuple):  # a list that is not a grid axis (e.g. masked-sinkhorn's --tau)
            p.add_argument(_flag(f.name), dest=f.name, metavar="LIST", default=None, help=f"{meta.get('help', '')}; {GRID_HELP}{extra}")
        else:
            choices = meta.get("choices")
            p.add_argument(
                _flag(f.name),
                dest=f.name,
                metavar=kind.__name__.upper() if not choices else None,
                type=None if kind is str else _typed(kind, f.name),
                choices=choices,
                default=None,
                help=f"{meta.get('help', '')}{extra}",
            )


def _typed(kind, name):
    def conv(text):
        try:
            v = kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_flag(name)} takes a {kind.__name__}, got {text!r}") from None
        return v

    conv.__name__ = kind.__name__
    return conv


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only`` (a study name) just that study's ``run`` options are built, so
    ``sinkflow run STUDY …`` imports one study module, not all of them."""
    from . import studies

    parser = argparse.ArgumentParser(prog="sinkflow", description="Simulate transformers as particle systems on the sphere; sweep, plot and check theorems.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="{run,plot,check,merge,list}")

    run = sub.add_parser("run", help="run (or resume) a study's sweep into --out", description="Run a study's sweep. Each study has its own options: sinkflow run STUDY --help.")
    sub_studies = run.add_subparsers(dest="study", required=True, metavar="STUDY")
    if only is None:  # `sinkflow --help`, `sinkflow run --help`: names and one-line summaries, no study imported
        for name in studies.names():
            sub_studies.add_parser(name, help=studies.summary(name), description=f"{studies.summary(name)}. Options: sinkflow run {name} --help.")
    for name in [only] if only is not None else []:
        study = studies.get(name)
        sp = sub_studies.add_parser(name, help=study.title, description=f"{study.title}. Source: {study.source}.")
        sp.add_argument("--preset", choices=sorted(study.presets), default="small", help="parameter preset (default: small; tiny = seconds, for tests; paper = the published parameters)")
        sp.add_argument("--out", required=True, help="output directory (created; an interrupted run resumes here)")
        sp.add_argument("--chunk-size", type=int, default=None, help="cells per compiled call (default: 8 per device)")
        sp.add_argument("--devices", type=int, default=None, help="use the first N visible devices (default: all)")
        sp.add_argument("--shard", default="0/1", help="i/N: this process runs every N-th cell from the i-th (merge with `sinkflow merge`)")
        sp.add_argument("--distributed", choices=("auto", "on", "off"), default="auto", help="one sweep over many processes/hosts through jax.distributed: on, off, or auto (on under srun/mpirun with several tasks or with JAX_COORDINATOR_ADDRESS set)")
        sp.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="distributed: process 0's address (with --num-processes and --process-id; default: detected from the cluster)")
        sp.add_argument("--num-processes", type=int, default=None, help="distributed: number of processes")
        sp.add_argument("--process-id", type=int, default=None, help="distributed: this process's index in [0, N)")
        sp.add_argument("--no-resume", dest="resume", action="store_false", help="refuse to continue a directory that has finished chunks")
        sp.add_argument("--no-plot", dest="plot", action="store_false", help="do not draw figures after the run")
        sp.add_argument("--no-check", dest="check", action="store_false", help="do not run theorem checks after the run")
        sp.add_argument("--progress", dest="progress", action="store_true", default=None, help="force the progress bar")
        sp.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
        _add_study_options(sp, study)

    for verb, text in (("plot", "draw figures from DIR/results.nc"), ("check", "run theorem checks on DIR/results.nc (exit 1 on failure)"), ("merge", "merge finished chunks of DIR into results.nc")):
        p = sub.add_parser(verb, help=text, description=text)
        p.add_argument("dir", help="a directory written by `sinkflow run`")
    sub.add_parser("list", help="list studies, their parameters and presets")
    return parser


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/N with integers, e.g. 0/4.") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard {text!r}: need N ≥ 1 and 0 ≤ i < N.")
    return i, n


#: where ``sinkflow run`` keeps compiled programs across runs (env SINKFLOW_COMPILATION_CACHE; "off" disables)
DEFAULT_CACHE = "~/.cache/sinkflow/jax"


def _compilation_cache(jax) -> None:
    """JAX's persistent compilation cache for ``sinkflow run``: a program compiled once (any that took
    ≥ 0.5 s) is read back by later runs, resumes and sweeps of the same shapes, instead of being
    compiled again. Keyed by JAX on the program, the compiler options and the versions, so stale
    entries are never used. ``SINKFLOW_COMPILATION_CACHE`` sets the folder, ``off`` disables it.
    (Programs with host callbacks are not cached: dag-recovery's NOTEARS call.)"""
    import os

    where = os.environ.get("SINKFLOW_COMPILATION_CACHE", DEFAULT_CACHE)
    if where.strip().lower() in ("", "off", "0", "no", "false"):
        return
    path = Path(where).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"sinkflow: note: no compilation cache ({path}: {e.strerror}); set SINKFLOW_COMPILATION_CACHE to a writable folder or off.", file=sys.stderr)
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # JAX's own setting wins
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _cluster(args):
    """This process's :class:`~sinkflow.distributed.Cluster`: jax.distributed started when asked
    (``--distributed on``, or ``auto`` in a detected multi-process launch or with --coordinator)."""
    from . import distributed

    explicit = any(v is not None for v in (args.coordinator, args.num_processes, args.process_id))
    if args.distributed == "off":
        if explicit:
            raise ValueError("--coordinator/--num-processes/--process-id describe a distributed run; drop --distributed off.")
        return distributed.LOCAL
    if args.distributed == "on" or explicit or distributed.detected():
        return distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    return distributed.LOCAL


def _config_from_args(study, args):
    from .grid import parse_grid

    overrides = {}
    for f in dataclasses.fields(study.config_cls):
        v = getattr(args, f.name, None)
        if v is None:
            continue
        if f.metadata.get("swept") or isinstance(f.default, tuple):
            v = parse_grid(v, f.metadata.get("kind") or float, f.name)
        overrides[f.name] = v
    return study.config(args.preset, **overrides)


def _describe_grid(study, cfg) -> str:
    axes = study.axes(cfg)
    total = 1
    parts = []
    for name, vals, static in axes:
        total *= len(vals)
        shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals)
        parts.append(f"  {name:>12} = [{shown}]  ({len(vals)}{', static' if static else ''})")
    return "grid:\n" + "\n".join(parts) + f"\n  → {total} cells, precision {cfg.dtype}"


def _stop_on_signals() -> None:
    """From the start of the ``sinkflow`` command, SIGINT and SIGTERM end it at once (exit 130, a
    one-line message), except while a sweep runs (then: after the chunk in flight). Outside the
    sweep nothing is in flight that an atomic write does not protect, so the handler leaves by
    ``os._exit`` rather than raising: a KeyboardInterrupt raised inside a garbage-collector
    callback is swallowed (seen in CI), and leaving skips tearing the interpreter down under XLA's
    compile threads. Installed even where SIGINT was inherited as ignored (a job a script starts
    with ``&``), so that ``kill -INT`` acts the same at every moment of a run."""
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, frame):
        sys.stdout.flush()
        os.write(2, f"\nsinkflow: stopped by {signal.Signals(signum).name}; finished chunks are kept (every file is written atomically): run the same command to resume.\n".encode())
        os._exit(130)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _cmd_run(args) -> int:
    import jax

    from . import studies

    _compilation_cache(jax)  # before anything compiles: JAX reads the setting once
    study = studies.get(args.study)
    cfg = _config_from_args(study, args)
    shard = _parse_shard(args.shard)
    cluster = _cluster(args)
    if cluster.leader:
        print(f"study {study.name}: {study.title}")
        print(_describe_grid(study, cfg), flush=True)
    if cluster.count > 1:
        print(f"process {cluster.index} of {cluster.count} (jax.distributed)", flush=True)
    if cfg.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    from .sweep import run_sweep

    rep = run_sweep(study, cfg, args.out, chunk_size=args.chunk_size, devices=args.devices, shard=shard, resume=args.resume, progress=args.progress, argv=args.argv, cluster=cluster)
    print(
        f"{rep.computed} cells computed, {rep.skipped} already finished, {rep.failed} failed, "
        f"{rep.chunks} chunks, {rep.compiles} compiles ({rep.compile_seconds:.1f} s), {rep.seconds:.1f} s → {rep.out}"
    )
    status = 0
    if rep.failed:
        print(f"warning: {rep.failed} cell(s) failed (non-finite state or solver failure); see the 'status' variable.", file=sys.stderr)
        status = 1
    if not cluster.leader:
        print(f"process {cluster.index}: its chunks are written; process 0 merges, plots and checks.")
        return status
    if not rep.merged:
        print(f"this shard is done; the grid is incomplete until all shards finish, then run `sinkflow merge {args.out}`.")
        return status
    if args.plot:
        status = max(status, _cmd_plot(args.out))
    if args.check:
        status = max(status, _cmd_check(args.out))
    return status


def _load(dirpath):
    import jax

    jax.config.update("jax_enable_x64", True)  # theory curves in float64
    from . import studies
    from .store import load_results

    ds = load_results(dirpath)
    return studies.get(ds.attrs["study"]), ds


def _cmd_plot(dirpath) -> int:
    study, ds = _load(dirpath)
    paths = study.make_figures(ds, Path(dirpath) / "figures")
    for p in paths:
        print(f"figure: {p}")
    return 0


def _cmd_check(dirpath) -> int:
    from . import checks as ck

    study, ds = _load(dirpath)
    results = study.run_checks(ds)
    print(ck.table(results))
    for c in results:
        if c.detail:
            print(f"  {c.name}: {c.detail}")
    ck.save(results, dirpath)
    return 0 if all(c.passed for c in results) else 1


def _cmd_merge(dirpath, argv: list[str]) -> int:
    from . import studies
    from .store import Store
    from .sweep import merge_results

    store = Store(dirpath)
    man = store.manifest()
    if man is None:
        raise ValueError(f"{dirpath} has no manifest.json: it is not a sinkflow run directory.")
    study = studies.get(man["study"])
    cfg = study.config_from_attrs({"config": man["config"]})
    if man["precision"] == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    merge_results(study, cfg, store, argv=man.get("argv"), devices=man.get("devices"), merged_by=argv)
    print(f"merged → {store.results_path}")
    return 0


def _cmd_list() -> int:
    from . import studies

    for name in studies.names():
        study = studies.get(name)
        print(f"{name}: {study.title}  [{study.source}]")
        for f in dataclasses.fields(study.config_cls):
            paper = study.presets["paper"].get(f.name, f.default)
            small = study.presets["small"].get(f.name, f.default)
            fmt = lambda v: (f"{v[0]}…{v[-1]} ({len(v)})" if isinstance(v, tuple) and len(v) > 8 else (",".join(map(str, v)) if isinstance(v, tuple) else str(v)))  # noqa: E731
            tag = "grid" if f.metadata.get("swept") else "    "
            line = f"    {_flag(f.name):<16} {tag}  paper={fmt(paper)}"
            if small != paper:
                line += f"  small={fmt(small)}"
            print(line)
        print()
    print("References:")
    for key, ref in studies.REFERENCES.items():
        print(f"  {key}: {ref}")
    return 0


def _only_study(argv: list[str]) -> str | None:
    """The study named by ``run STUDY …`` if it is a known name (old aliases mapped, with a note)."""
    from . import studies

    if len(argv) >= 2 and argv[0] == "run" and not argv[1].startswith("-"):
        if argv[1] in studies.names() or argv[1] in studies.ALIASES:
            return studies.canonical(argv[1])
    return None


def main(argv: list[str] | None = None) -> int:
    import os

    # A sweep keeps failures as data (a cell's status), so equinox's run-time checks (inside diffrax)
    # fill NaN instead of calling back to the host to raise: the engine reports those cells as
    # failed, and programs without host callbacks can be kept in the compilation cache. Read when
    # equinox is first imported; an explicit EQX_ON_ERROR wins.
    os.environ.setdefault("EQX_ON_ERROR", "nan")
    argv = list(sys.argv[1:] if argv is None else argv)
    only = _only_study(argv)
    if only is not None:
        argv[1] = only
    parser = build_parser(only)
    args = parser.parse_args(argv)
    args.argv = ["sinkflow", *argv]  # recorded as the run's command line
    try:
        if args.verb == "run":
            return _cmd_run(args)
        if args.verb == "plot":
            return _cmd_plot(args.dir)
        if args.verb == "check":
            return _cmd_check(args.dir)
        if args.verb == "merge":
            return _cmd_merge(args.dir, args.argv)
        return _cmd_list()
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"sinkflow: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        msg = str(e) or "interrupted; finished chunks are kept: run the same command to resume"
        print(f"\nsinkflow: {msg}.", file=sys.stderr)
        return 130
    except OSError as e:  # e.g. the output directory made read-only mid-run, a full disk
        print(f"sinkflow: error: {e.strerror or e} ({e.filename or 'output'}). Finished chunks are kept; fix the cause and run the same command again to resume.", file=sys.stderr)
        return 2


def entry() -> None:
    """The ``sinkflow`` command. SIGINT and SIGTERM stop it from its first moment (even when SIGINT
    was inherited as ignored, as by a job a script starts with ``&``); during a sweep the first one
    stops after the chunk in flight. After an interrupt it leaves at once (``os._exit``, streams
    flushed): XLA's compile threads may still be running, and tearing the interpreter down under
    them has crashed (a Ctrl-C during compilation)."""
    import os

    _stop_on_signals()
    try:
        code = main()
    except KeyboardInterrupt as e:  # before main's own handling (while parsing, importing the study)
        print(f"\nsinkflow: {e or 'interrupted'}.", file=sys.stderr)
        code = 130
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    entry()
