"""The results store of a sweep: one directory, resumable, never half-written.

Layout of ``OUT/``::

    manifest.json        study, base hash, config, precision (written once, atomically)
    chunks/chunk-*.nc    one netCDF file per finished chunk of cells (atomic rename)
    results.nc           the merged xarray Dataset (dims = swept parameters + output dims)
    checks.json/.csv     theorem checks (written by ``sinkflow check``)
    figures/*.png        figures (written by ``sinkflow plot``)

Identity. The *base hash* covers the study, every non-swept config value, the
precision and the code that computes cells: every ``.py`` file of the installed
``sinkflow`` package and the study's own module (:func:`code_hash`). The rule is
the whole package, not a list of "numerical" modules: a hand-kept list silently
missed modules that cells call (a Sinkhorn or graph change would have been merged
with chunks computed by the old code). Editing a figure helper therefore also
invalidates a run directory; that is the safe side. A cell is named by its swept values (:func:`cell_label`), so
a grid can be extended later and finished cells are reused, and its PRNG key
is derived from that label, so its result does not depend on chunking,
sharding or the rest of the grid. Resuming into a directory with another base
hash is refused with a message (nothing is overwritten). Every chunk file
carries the base hash too, and resume and merge refuse a chunk of another run,
so a lost or replaced manifest cannot mix results of different runs or code.

Writes go to a temporary file in the same directory followed by ``os.replace``,
so a killed process leaves either a whole chunk or nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "Store",
    "cell_label",
    "label_key_words",
    "code_hash",
    "provenance",
    "atomic_write_bytes",
    "load_results",
]


def cell_label(values: dict[str, Any]) -> str:
    """Canonical name of a cell from its swept values, e.g. ``beta=2.0|d=8``."""
    return "|".join(f"{k}={values[k]!r}" for k in sorted(values))


def label_key_words(label: str) -> tuple[int, int]:
    """Two 31-bit words from sha256(label), folded into the base key to make the cell key."""
    h = hashlib.sha256(label.encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF, int.from_bytes(h[4:8], "little") & 0x7FFFFFFF


def code_hash(study_file: str | os.PathLike = "") -> str:
    """sha256 over every ``.py`` file of the ``sinkflow`` package (sorted by relative path,
    each prefixed by that path) and over the study module ``study_file``."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in sorted(here.rglob("*.py")):
        rel = path.relative_to(here).as_posix()
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    if study_file:
        h.update(b"study\0" + Path(study_file).read_bytes())
    return h.hexdigest()[:16]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: str, path: Path) -> None:
    """Give a finished temporary file the permissions of a normally created one (mkstemp makes
    0600), flush it to disk, and rename it into place (atomic on POSIX)."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_to_netcdf(ds: xr.Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".nc")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _git_info() -> tuple[str, bool]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return "unknown", False
        return commit.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def provenance(argv: list[str] | None = None, devices: list[str] | None = None) -> dict[str, str]:
    """Attributes recorded on every merged result (all strings, netCDF-safe): the command line,
    code (git commit, dirty flag, package versions), the devices used (default: all visible), the
    creation time (ISO 8601, UTC) and the CF ``Conventions`` and ``history`` attributes."""
    import datetime
    import importlib.metadata as md

    import jax

    versions = {}
    for pkg in ("sinkflow", "jax", "jaxlib", "diffrax", "equinox", "ott-jax", "numpy", "xarray", "h5netcdf"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    commit, dirty = _git_info()
    argv = argv if argv is not None else sys.argv
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {
        "Conventions": "CF-1.10",
        "date_created": now,
        "history": f"{now} {' '.join(map(str, argv))}",
        "argv": json.dumps(argv),
        "git_commit": commit,
        "git_dirty": str(dirty),
        "versions": json.dumps(versions),
        "devices": json.dumps(devices if devices is not None else [str(d) for d in jax.devices()]),
        "python": sys.version.split()[0],
    }


def _what_differs(old: dict, new: dict) -> str:
    """Which part of the run identity changed, in words (for the refusal message)."""
    reasons = []
    if old.get("study") != new.get("study"):
        reasons.append(f"the study differs ({old.get('study')!r} → {new.get('study')!r})")
    if old.get("code_hash") != new.get("code_hash"):
        reasons.append(f"the code differs (sinkflow package + study module hash {old.get('code_hash')} → {new.get('code_hash')}: chunks computed by other code are never merged)")
    swept = set(new.get("axes", {}))
    changed = sorted(k for k in set(old.get("config", {})) | set(new.get("config", {})) if k not in swept and old.get("config", {}).get(k) != new.get("config", {}).get(k))
    if changed:
        reasons.append("non-swept parameter(s) differ: " + ", ".join(f"{k} {old.get('config', {}).get(k)!r} → {new.get('config', {}).get(k)!r}" for k in changed))
    return "; ".join(reasons) or "the run identity differs"


class Store:
    """A sweep's directory (see module docstring)."""

    def __init__(self, root: str | os.PathLike):
        if not str(root).strip():
            raise ValueError("--out is empty; give a directory for the run (it is created if missing).")
        self.root = Path(root)
        self.chunks = self.root / "chunks"
        #: The run identity every chunk read or written here must carry (set by :meth:`open`).
        self.base_hash: str | None = None
        self._lock_fd: int | None = None

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def results_path(self) -> Path:
        return self.root / "results.nc"

    def manifest(self) -> dict | None:
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_text())

    def open(self, manifest: dict, resume: bool = True, follower: bool = False) -> None:
        """Create the store or check that it belongs to the same base hash. ``follower``: another
        process of the same distributed run (process 0) has opened it; check that its manifest is
        this run's, and take no lock and write nothing."""
        self.base_hash = manifest["base_hash"]
        if follower:
            old = self.manifest()
            if old is None or old.get("base_hash") != manifest["base_hash"]:
                raise ValueError(
                    f"{self.root}: process 0 of this distributed run opened it, but its manifest is "
                    f"{'missing' if old is None else 'of run ' + str(old.get('base_hash'))} (this process: {manifest['base_hash']}). "
                    "Every process must run the same command with the same code, and see the same shared --out directory."
                )
            return
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"--out {self.root} is a file, not a directory; give a directory (it is created if missing).")
        writable_parent = next((q for q in [self.root, *self.root.parents] if q.exists()), Path("."))
        if not os.access(writable_parent, os.W_OK | os.X_OK):
            raise ValueError(f"--out {self.root}: {writable_parent} is not writable; choose a directory you can write to.")
        self._lock()
        old = self.manifest()
        if old is not None:
            if old.get("base_hash") != manifest["base_hash"]:
                raise ValueError(
                    f"{self.root} holds results of a different run (study {old.get('study')!r}, base hash "
                    f"{old.get('base_hash')}; this run is {manifest['base_hash']}): {_what_differs(old, manifest)}. Nothing was "
                    f"computed or overwritten. Use another --out directory, or delete {self.root} to start over."
                )
            if not resume and any(self.chunks.glob("chunk-*.nc")):
                raise ValueError(
                    f"{self.root} already has finished chunks and --no-resume was given; use another --out directory "
                    "or drop --no-resume to continue where it stopped."
                )
            # Keep the manifest current (grids may have been extended).
            atomic_write_bytes(self.manifest_path, json.dumps(manifest, indent=2).encode())
            return
        self.finished_labels()  # chunks without a manifest: refuse foreign ones before writing anything
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.manifest_path, json.dumps(manifest, indent=2).encode())

    def _lock(self) -> None:
        """Take the directory's lock (``.lock``, an advisory ``flock`` released when the process ends,
        even by SIGKILL) or refuse, naming the process that holds it: two runs into one directory
        would both do all the work."""
        import datetime
        import fcntl
        import socket

        if self._lock_fd is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ValueError(f"{self.root} is in use by another sinkflow run ({holder}); wait for it to finish, or use another --out directory.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {datetime.datetime.now().isoformat(timespec='seconds')}".encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        """Release the directory's lock (also released when the process exits)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def chunk_files(self) -> list[Path]:
        return sorted(self.chunks.glob("chunk-*.nc"))

    def _check_chunk(self, path: Path, ds: xr.Dataset) -> None:
        """Refuse a chunk that another run wrote (its ``base_hash`` attribute differs from this run's):
        the manifest alone does not bind chunks to a run, and a lost manifest must not let them mix."""
        theirs = ds.attrs.get("base_hash")
        if self.base_hash is not None and theirs != self.base_hash:
            who = f"base hash {theirs}" if theirs else "no run identity (written by an older sinkflow)"
            raise ValueError(
                f"{path} belongs to another run ({who}; this run is {self.base_hash}: another non-swept value, precision "
                f"or code). Nothing was merged. Move the foreign chunk files out of {self.chunks}, or use another --out directory."
            )

    @contextlib.contextmanager
    def _open_chunk(self, path: Path):
        """A chunk file, opened lazily (variables are read when used) and checked to be of this run;
        a damaged one, at opening or while reading, is an error that says what to do."""

        def damaged(e):
            return ValueError(
                f"{path} cannot be read ({type(e).__name__}: {e}); it is damaged (a disk fault or a copy cut short: sinkflow "
                f"writes chunks atomically). Delete it and run the same command again: only its cells are recomputed."
            )

        try:
            ds = xr.open_dataset(path, engine="h5netcdf")
        except Exception as e:  # h5py/h5netcdf raise OSError, ValueError or KeyError on damaged files
            raise damaged(e) from None
        with ds:
            self._check_chunk(path, ds)
            try:
                yield ds
            except (OSError, KeyError) as e:
                raise damaged(e) from None

    def finished_labels(self) -> set[str]:
        done: set[str] = set()
        for p in self.chunk_files():
            with self._open_chunk(p) as ds:
                done.update(str(s) for s in ds["label"].values)
        return done

    def write_chunk(self, labels: list[str], axis_values: dict[str, list], outputs: dict[str, np.ndarray], output_dims: dict[str, tuple]) -> Path:
        data_vars = {"label": (("cell",), np.asarray(labels, dtype=object))}
        for name, vals in axis_values.items():
            data_vars[f"axis_{name}"] = (("cell",), np.asarray(vals))
        for name, arr in outputs.items():
            data_vars[name] = (("cell", *output_dims[name]), np.asarray(arr))
        ds = xr.Dataset(data_vars, attrs={"base_hash": self.base_hash or ""})
        name = hashlib.sha256("\n".join(labels).encode()).hexdigest()[:20]
        path = self.chunks / f"chunk-{name}.nc"
        _atomic_to_netcdf(ds, path)
        return path

    def merge(self, axes: list[tuple[str, tuple, bool]], output_dims: dict[str, tuple], coords: dict[str, Any], attrs: dict[str, str], var_attrs: dict[str, dict] | None = None) -> xr.Dataset:
        """Assemble the current grid from chunk files into ``results.nc`` (missing cells raise);
        ``var_attrs`` maps variable and coordinate names to their attributes (long_name, units, …)."""
        names = [a[0] for a in axes]
        shape = tuple(len(a[1]) for a in axes)
        index = {}
        for flat, combo in enumerate(np.ndindex(*shape)):
            values = {names[k]: axes[k][1][combo[k]] for k in range(len(axes))}
            index[cell_label(values)] = combo
        arrays: dict[str, np.ndarray] = {}
        filled = np.zeros(shape, dtype=bool)
        for p in self.chunk_files():
            with self._open_chunk(p) as ds:
                labels = [str(s) for s in ds["label"].values]
                for var in output_dims:
                    if var not in arrays:
                        tail = ds[var].shape[1:]
                        dt = ds[var].dtype
                        fill = -1 if np.issubdtype(dt, np.integer) else np.nan
                        arrays[var] = np.full(shape + tail, fill, dtype=dt if np.issubdtype(dt, np.integer) else np.float64)
                    vals = ds[var].values
                    if vals.shape[1:] != arrays[var].shape[len(shape):]:
                        raise ValueError(
                            f"output {var!r} has shape {vals.shape[1:]} per cell in {p.name} but {arrays[var].shape[len(shape):]} in "
                            f"another chunk: a study whose outputs' shapes depend on a static parameter must pad them to one "
                            f"shape in its cell (NaN beyond, as causal-leader and normalizations do)."
                        )
                    for row, lab in enumerate(labels):
                        if lab in index:
                            arrays[var][index[lab]] = vals[row]
                for lab in labels:
                    if lab in index:
                        filled[index[lab]] = True
        if not filled.all():
            raise RuntimeError(f"{int((~filled).sum())} of {filled.size} cells of the grid are not finished; run the sweep (it resumes).")
        data_vars = {var: (tuple(names) + tuple(output_dims[var]), arr) for var, arr in arrays.items()}
        coord_vars = {a[0]: list(a[1]) for a in axes}
        coord_vars.update({k: np.asarray(v) for k, v in coords.items()})
        ds = xr.Dataset(data_vars, coords=coord_vars, attrs=attrs)
        for name, extra in (var_attrs or {}).items():
            if name in ds.variables:
                ds[name].attrs.update(extra)
        _atomic_to_netcdf(ds, self.results_path)
        return ds


def load_results(root: str | os.PathLike) -> xr.Dataset:
    """Open a merged result (``OUT/results.nc``) fully into memory."""
    path = Path(root) / "results.nc"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `sinkflow run STUDY --out {root}` first (it resumes if interrupted).")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
