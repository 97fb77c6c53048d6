"""Benchmark: work–precision of the phase-diagram observable, sinkflow against its peers, in one run.

Throughput at one step size says little when methods differ in accuracy, so every implementation
and setting is placed by (wall time, error) on the same problem, and the comparison is made at
equal accuracy.

Problem: SA on S^{15} (n = 32, d = 16), β ∈ {1, 3, 5, 7}, R starts per β (the same starts for every
implementation, drawn once in numpy), T = 30, the δ-close pair fraction P(t, β) (δ = 1e-3, the
phase diagram's estimator) at 31 save times. Reference: sinkflow Tsit5 at rtol 1e-10, float64.
Error: max over (t, β) of |P − P_ref| (P counts pairs on either side of a threshold, so an
inaccurate solve shows as pair flips). Accuracy target: the Monte-Carlo standard error of the
P-curves, σ_MC = the median over (t, β) with 0 < P_ref < 1 of sd/√R; a setting whose error is
within σ_MC changes no P-curve by more than its own sampling noise.

Implementations and settings:
- sinkflow RK4 (fixed steps, the sweep's kernel) at dt ∈ {1, 0.5, 0.25, 0.1, 0.05}, float32 and float64;
- sinkflow Tsit5 with per-trajectory error control (``batch_ndim=1``, what the sweeps use) and with
  one step size shared by the batch (``batch_ndim=0``), at several rtol, float32 and float64;
- torch batched RK4 (eager, float32) at the same dt, if torch is installed (``pip install -e .[bench]``);
- torchdiffeq's dopri5 at several rtol, if torchdiffeq is installed;
- numpy vectorised RK4 (float32) at dt ∈ {0.5, 0.25, 0.1}.
Each is run once untimed (compiles, warm-up), then timed as the best of ``--repeats`` runs;
compile times are reported apart. Output: ``work_precision.png`` (error against seconds, the σ_MC
line), a table, and one JSON line with, at the accuracy target, the fastest adequate setting of
each implementation and the ratio of sinkflow's fastest to the fastest peer's.

Usage: python benchmarks/work_precision.py [--quick] [--out DIR]  (``--quick``: R = 32)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import phase_diagram as _pd  # noqa: E402
from phase_diagram import _np_close_fraction, _np_field, _torch_field  # noqa: E402  (the phase-diagram benchmark's baselines)

N, D, BETAS, T, NSAVE, DELTA = 32, 16, np.array([1.0, 3.0, 5.0, 7.0]), 30.0, 31, 1e-3
TS = np.linspace(0.0, T, NSAVE)
assert (N, D, DELTA) == (_pd.N, _pd.D, _pd.DELTA), "the shared baselines assume the phase-diagram benchmark's n, d and δ"


def starts(R: int) -> np.ndarray:
    """(len(BETAS)·R, N, D) float64 unit vectors, β-major (the same for every implementation)."""
    x = np.random.default_rng(0).standard_normal((len(BETAS) * R, N, D))
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def curves(frac: np.ndarray, R: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-trajectory fractions (T, B) → P and its standard error, each (len(BETAS), T)."""
    f = np.asarray(frac, np.float64).reshape(len(TS), len(BETAS), R)
    return f.mean(-1).T, (f.std(-1) / np.sqrt(max(R - 1, 1))).T


def sinkflow_setting(x0: np.ndarray, method: str, dt: float, rtol: float, dtype, per_trajectory: bool = True):
    """(run-once callable returning (T, B) fractions, compile seconds)."""
    from sinkflow.attention import Attention
    from sinkflow.dynamics.attention import attention_field, attention_field_unnormalized
    from sinkflow.observables import close_pair_fraction
    from sinkflow.precision import with_exact_matmuls
    from sinkflow.solve import SolverConfig, solve
    from sinkflow.sphere import normalize

    R = x0.shape[0] // len(BETAS)
    cfg = SolverConfig(method=method, dt=dt, rtol=rtol, atol=rtol * 1e-2)
    field = attention_field_unnormalized if cfg.use_scan else attention_field
    beta = jnp.asarray(np.repeat(BETAS, R)[:, None, None], dtype)
    x = jnp.asarray(x0, dtype)

    @jax.jit
    @with_exact_matmuls
    def run(x, beta):
        sol = solve(field, x, TS, Attention(beta=beta), config=cfg, observable=lambda t, y, a: close_pair_fraction(y, DELTA), project=normalize, batch_ndim=1 if per_trajectory else 0)
        return sol.ys, sol.num_steps

    t0 = time.perf_counter()
    compiled = run.lower(x, beta).compile()
    compile_s = time.perf_counter() - t0
    return (lambda: np.asarray(jax.block_until_ready(compiled(x, beta))[0])), compile_s


def _rk4_saves(f, y, dt, steps, every, frac, normalize):
    """Projected RK4 (the baselines' loop, torch or numpy arrays): frac(y) at the start and every ``every`` steps."""
    out = [frac(y)]
    for i in range(1, steps + 1):
        k1 = f(y)
        k2 = f(y + dt / 2 * k1)
        k3 = f(y + dt / 2 * k2)
        k4 = f(y + dt * k3)
        y = normalize(y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
        if i % every == 0:
            out.append(frac(y))
    return np.stack(out)


def torch_rk4(x0: np.ndarray, dt: float):
    import torch

    R = x0.shape[0] // len(BETAS)
    x = torch.from_numpy(x0.astype(np.float32))
    beta = torch.from_numpy(np.repeat(BETAS, R).astype(np.float32))[:, None, None]
    steps, every = int(round(T / dt)), int(round((TS[1] - TS[0]) / dt))

    def run():
        with torch.no_grad():
            return _rk4_saves(lambda y: _torch_field(y, beta), x, dt, steps, every, lambda y: _np_close_fraction(y.numpy()), lambda y: y / y.norm(dim=-1, keepdim=True))

    return run, 0.0


def torchdiffeq_dopri5(x0: np.ndarray, rtol: float):
    import torch
    import torchdiffeq

    R = x0.shape[0] // len(BETAS)
    x = torch.from_numpy(x0.astype(np.float32))
    beta = torch.from_numpy(np.repeat(BETAS, R).astype(np.float32))[:, None, None]
    t = torch.from_numpy(TS.astype(np.float32))

    def f(_, y):
        yh = y / y.norm(dim=-1, keepdim=True)
        w = torch.softmax(beta * torch.bmm(yh, yh.transpose(1, 2)), dim=-1)
        a = torch.bmm(w, yh)
        return a - (a * yh).sum(-1, keepdim=True) * yh

    def run():
        with torch.no_grad():
            ys = torchdiffeq.odeint(f, x, t, method="dopri5", rtol=rtol, atol=rtol * 1e-2)
            ys = ys / ys.norm(dim=-1, keepdim=True)
            hit = torch.einsum("tbid,tbjd->tbij", ys, ys) >= 1 - DELTA
            return ((hit.sum((2, 3)) - N) / (N * (N - 1))).numpy()

    return run, 0.0


def numpy_rk4(x0: np.ndarray, dt: float):
    R = x0.shape[0] // len(BETAS)
    x = x0.astype(np.float32)
    beta = np.repeat(BETAS, R).astype(np.float32)[:, None, None]
    steps, every = int(round(T / dt)), int(round((TS[1] - TS[0]) / dt))

    return (lambda: _rk4_saves(lambda y: _np_field(y, beta), x, dt, steps, every, _np_close_fraction, lambda y: y / np.linalg.norm(y, axis=-1, keepdims=True))), 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="figures", help="folder of work_precision.png")
    a = ap.parse_args()
    R = 32 if a.quick else 256
    x0 = starts(R)

    ref_run, _ = sinkflow_setting(x0, "tsit5", 0.1, 1e-10, jnp.float64)
    P_ref, se_ref = curves(ref_run(), R)
    inside = (P_ref > 0) & (P_ref < 1)
    sigma = float(np.median(se_ref[inside])) if inside.any() else float(1.0 / (R * N * (N - 1)))
    print(f"reference: sinkflow Tsit5 rtol 1e-10 float64; σ_MC (median standard error of P) = {sigma:.4f} at R = {R} per β", flush=True)

    settings = []
    for prec, dtype in (("float32", jnp.float32), ("float64", jnp.float64)):
        for dt in (1.0, 0.5, 0.25, 0.1, 0.05):
            settings.append(("sinkflow RK4", f"dt={dt} {prec}", lambda dt=dt, dtype=dtype: sinkflow_setting(x0, "rk4", dt, 1e-6, dtype)))
        for rtol in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
            settings.append(("sinkflow Tsit5 (per trajectory)", f"rtol={rtol:g} {prec}", lambda rtol=rtol, dtype=dtype: sinkflow_setting(x0, "tsit5", 0.1, rtol, dtype)))
        for rtol in (1e-4, 1e-5):
            settings.append(("sinkflow Tsit5 (shared steps)", f"rtol={rtol:g} {prec}", lambda rtol=rtol, dtype=dtype: sinkflow_setting(x0, "tsit5", 0.1, rtol, dtype, per_trajectory=False)))
    try:
        import torch  # noqa: F401

        for dt in (1.0, 0.5, 0.25, 0.1, 0.05):
            settings.append(("torch RK4", f"dt={dt} float32", lambda dt=dt: torch_rk4(x0, dt)))
    except ImportError:
        print("torch not installed: its baseline is skipped (pip install -e .[bench])")
    try:
        import torchdiffeq  # noqa: F401

        for rtol in (1e-2, 1e-3, 1e-4, 1e-5):
            settings.append(("torchdiffeq dopri5", f"rtol={rtol:g} float32", lambda rtol=rtol: torchdiffeq_dopri5(x0, rtol)))
    except ImportError:
        print("torchdiffeq not installed: its baseline is skipped (pip install torchdiffeq)")
    for dt in (0.5, 0.25, 0.1):
        settings.append(("numpy RK4", f"dt={dt} float32", lambda dt=dt: numpy_rk4(x0, dt)))

    rows = []
    for impl, label, make in settings:
        run, compile_s = make()
        frac = run()  # warm-up (and the result)
        secs = min(_timed(run) for _ in range(a.repeats))
        P, _ = curves(frac, R)
        err = float(np.max(np.abs(P - P_ref)))
        rows.append({"implementation": impl, "setting": label, "seconds": secs, "compile_s": compile_s, "error": err, "adequate": err <= sigma})
        print(f"{impl:32s} {label:22s} {secs:8.3f} s (compile {compile_s:5.1f} s)  max|ΔP| = {err:.2e}{'  ✓' if err <= sigma else ''}", flush=True)

    fastest = {}
    for r in rows:
        if r["adequate"] and (r["implementation"] not in fastest or r["seconds"] < fastest[r["implementation"]]["seconds"]):
            fastest[r["implementation"]] = r
    ours = [r for k, r in fastest.items() if k.startswith("sinkflow")]
    peers = [r for k, r in fastest.items() if not k.startswith("sinkflow")]
    ratio = (min(p["seconds"] for p in peers) / min(o["seconds"] for o in ours)) if ours and peers else None
    _figure(rows, sigma, R, Path(a.out))
    for k, r in sorted(fastest.items(), key=lambda kv: kv[1]["seconds"]):
        print(f"fastest within σ_MC: {k:32s} {r['setting']:22s} {r['seconds']:.3f} s")
    if ratio is not None:
        print(f"at equal accuracy (max|ΔP| ≤ σ_MC = {sigma:.4f}): fastest peer / fastest sinkflow = {ratio:.2f}×")
    print(json.dumps({"benchmark": "work_precision", "machine": platform.processor() or platform.machine(), "jax": jax.__version__, "R_per_beta": R,
                      "sigma_mc": sigma, "speedup_at_equal_accuracy": ratio, "fastest": fastest, "rows": rows}))


def _timed(run) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def _figure(rows, sigma, R: int, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    floor = 1.0 / (R * N * (N - 1))  # half of one pair flip in one realization: an exact match is drawn here
    for k, impl in enumerate(dict.fromkeys(r["implementation"] for r in rows)):
        for prec, marker in (("float32", "o"), ("float64", "s")):
            sel = [r for r in rows if r["implementation"] == impl and r["setting"].endswith(prec)]
            if sel:
                ax.plot([r["seconds"] for r in sel], [max(r["error"], floor) for r in sel], marker=marker, color=f"C{k}", ls="-" if prec == "float32" else ":", label=f"{impl} ({prec})")
    ax.axhline(sigma, color="k", lw=0.8, ls="--", label="σ_MC (Monte-Carlo error of P)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("max |P − P_ref| over (t, β)  (0 drawn at half a pair flip)")
    ax.legend(fontsize=6)
    ax.set_title("phase-diagram observable: work–precision", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "work_precision.png", dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()
