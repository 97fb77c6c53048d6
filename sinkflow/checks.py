"""Theorem checks: predicted (closed form) vs measured, with a tolerance and its reason.

A :class:`Check` is data. Studies return lists of them from saved results;
:func:`table` prints them, :func:`save` writes ``checks.json`` and
``checks.csv`` beside the results, and the CLI exits with status 1 if any fails.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

from .store import atomic_write_bytes

__all__ = ["Check", "table", "save", "compare", "status_check", "sinkhorn_check", "worst_case"]


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    source: str
    predicted: float
    measured: float
    tolerance: float
    reason: str
    passed: bool
    detail: str = ""
    #: The check's power on this data: the smallest shift of the prediction that would make it fail
    #: (negative when it fails; NaN when not computed). A check whose margin is far above the
    #: data's own precision cannot see errors of the size that matter.
    margin: float = math.nan

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("predicted", "measured", "tolerance", "margin"):
            v = d[k]
            d[k] = None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)
        return d


def compare(name: str, source: str, predicted: float, measured: float, tolerance: float, reason: str, *, mode: str = "abs", detail: str = "") -> Check:
    """Build a check. Modes: ``abs`` |m − p| ≤ tol; ``rel`` |m − p| ≤ tol·|p|; ``le`` m ≤ p + tol; ``ge`` m ≥ p − tol."""
    p, m = float(predicted), float(measured)
    if mode not in ("abs", "rel", "le", "ge"):
        raise ValueError(f"compare(mode={mode!r}) is not known; use abs, rel, le or ge.")
    if not (math.isfinite(m) and math.isfinite(p)):
        return Check(name, source, p, m, float(tolerance), reason, False, detail, -math.inf)
    if mode == "abs":
        margin = tolerance - abs(m - p)
    elif mode == "rel":  # the shift δ of p with |m − p − δ| = tol·|p + δ| on the near side
        margin = (tolerance * abs(p) - abs(m - p)) / (1.0 + tolerance)
    elif mode == "le":
        margin = p + tolerance - m
    else:
        margin = m - (p - tolerance)
    return Check(name, source, p, m, float(tolerance), reason, bool(margin >= 0), detail, float(margin))


def table(checks: list[Check]) -> str:
    rows = [("verdict", "check", "source", "predicted", "measured", "tol", "detects", "reason")]
    for c in checks:
        detects = f"{c.margin:.2g}" if math.isfinite(c.margin) and c.passed else "—"
        rows.append(("PASS" if c.passed else "FAIL", c.name, c.source, f"{c.predicted:.6g}", f"{c.measured:.6g}", f"{c.tolerance:.2g}", detects, c.reason))
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("  ".join(s[:60].ljust(w) for s, w in zip(r, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    n_fail = sum(not c.passed for c in checks)
    lines.append(f"{len(checks) - n_fail} passed, {n_fail} failed")
    lines.append("(detects: the smallest shift of the prediction that would fail the check, in its units)")
    return "\n".join(lines)


def save(checks: list[Check], out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    jpath, cpath = out / "checks.json", out / "checks.csv"
    atomic_write_bytes(jpath, json.dumps([c.as_dict() for c in checks], indent=2).encode())
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[f.name for f in dataclasses.fields(Check)])
    w.writeheader()
    for c in checks:
        w.writerow(c.as_dict())
    atomic_write_bytes(cpath, buf.getvalue().encode())
    return jpath, cpath


def status_check(ds) -> Check:
    """Every cell of a merged result solved (status 0); the engine puts it before every study's checks.

    The detail counts the failed cells by code (:data:`sinkflow.solve.STATUS`): a failed cell
    invalidates every check that reads it.
    """
    import numpy as np

    from .solve import STATUS

    status = np.asarray(ds["status"].values)
    failed = int(np.count_nonzero(status != 0))
    codes, counts = np.unique(status[status != 0], return_counts=True)
    detail = ", ".join(f"{int(n)} {STATUS.get(int(c), f'code {int(c)}')}" for c, n in zip(codes, counts))
    return compare("all cells solved", "solver status", 0, failed, 0, "failed cells invalidate every other check", mode="le", detail=detail)


def sinkhorn_check(ds, threshold: float, **sel) -> Check:
    """Every saved Sinkhorn call (of ``ds.sel(**sel)``) met its marginal threshold.

    Uses the solver's own verdict where the study saved it (``sinkhorn_converged``, a fraction
    of calls; must be 1), else the worst saved L1 marginal error against the threshold; the
    detail gives the worst error and, where saved, the most iterations.
    """
    sub = ds.sel(**sel) if sel else ds
    detail = f"worst marginal error {float(sub['sinkhorn_error'].max()):.2e}"
    if "sinkhorn_iterations" in sub:
        detail += f", most iterations {int(sub['sinkhorn_iterations'].max())}"
    name, source = "Sinkhorn converged in every call", f"threshold {float(threshold):g}"
    if "sinkhorn_converged" in sub:
        return compare(name, source, 1.0, float(sub["sinkhorn_converged"].min()), 0.0, "fraction of calls that met the threshold", mode="ge", detail=detail)
    return compare(name, source, 0.0, float(sub["sinkhorn_error"].max()), float(threshold), "worst L1 marginal error", mode="le", detail=detail)


def worst_case(rows) -> tuple[float, str]:
    """The (score, detail) with the largest score from an iterable of them; (−inf, "") if empty."""
    best = (-math.inf, "")
    for score, detail in rows:
        if score > best[0]:
            best = (float(score), detail)
    return best
