"""Benchmark: the Sinkformer right-hand side and a full trajectory, sinkflow vs POT in the same run.

Workload (issue #4): n tokens uniform on S^{d−1}, d = 16, β = 1, ε = 1, balanced
Sinkhorn to an L1 marginal error of 1e-6 inside the field
ẋ_i = P_{x_i}(Σ_j W_ij x_j); a trajectory is RK4 with dt = 0.1 to T = 1
(10 steps, 40 field evaluations), float64.

Implementations timed here:
- sinkflow native: the log-domain loop of :mod:`sinkflow.sinkhorn` (jit);
- sinkflow ott: the same field with ``backend="ott"`` (ott-jax's Sinkhorn, jit);
- sinkflow native symmetric: ``symmetric=True`` (the averaged loop for symmetric
  kernels; here Q = K = I), printed on its own line;
- POT: ``ot.sinkhorn(..., method="sinkhorn_log")`` (numpy) inside a numpy RK4,
  if POT is installed (``pip install -e .[bench]``). POT's stopping rule is its own
  (marginal error checked every 10 iterations), set to the same 1e-6.

Reports seconds per RHS and per trajectory, ratios POT / sinkflow and
ott / native, and the Sinkhorn iteration counts (where the time goes: each
iteration is two n×n log-sum-exps).

Clustered tokens. Uniform tokens are the easy case; attention dynamics cluster them, and there
alternation crawls. The second table times one Sinkhorn normalisation at β = 6 on tokens in
three tight clusters (angular spread 0.02, the state the sinkformer-phase-diagram reaches),
alternating against the averaged symmetric loop, to the same threshold. On this 2-core CPU
(2026-12-02, float64, threshold 1e-6): n = 16, 32, 256 needed 1393, 929, 439 alternating
iterations against 8, 8, 6 averaged, 13×, 14× and 36× the time; the tighter clusters the
sinkformer-phase-diagram reaches by t = 15 at β = 6 needed 8 000–12 000 against 6–10. Ends with
one JSON line.

Warm starts. The third table times whole cells of the sinkformer-phase-diagram study (its small
preset's shapes): SA, the Sinkformer with every Sinkhorn loop started from zero, and warm-started
(:func:`sinkflow.dynamics.attention.sinkformer_warm`: from the last step's potential), with the
worst marginal error of the saved plans.

Usage: python benchmarks/sinkformer.py [--quick] [--sizes 32,256,1024,4096]
POT trajectories are skipped above n = 1024 (minutes each); its RHS is still timed.
"""

from __future__ import annotations

import argparse
import json
import time
import timeit

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from sinkflow.dynamics.attention import attention_field, sinkformer  # noqa: E402
from sinkflow.sinkhorn import sinkhorn  # noqa: E402
from sinkflow.solve import SolverConfig, solve  # noqa: E402
from sinkflow.sphere import normalize, uniform  # noqa: E402

D, BETA, EPS, THR, DT, T = 16, 1.0, 1.0, 1e-6, 0.1, 1.0


def best(fn, repeat=3):
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def sinkflow_times(x, backend, symmetric=False):
    p = sinkformer(BETA, epsilon=EPS, threshold=THR, iterations=20000, backend=backend, symmetric=symmetric)
    rhs = jax.jit(lambda y: attention_field(0.0, y, p))
    rhs(x).block_until_ready()
    t_rhs = best(lambda: rhs(x).block_until_ready())
    ts = np.linspace(0.0, T, 2)
    traj = jax.jit(lambda y: solve(attention_field, y, ts, p, config=SolverConfig(method="rk4", dt=DT), project=normalize).ys)
    traj(x).block_until_ready()
    t_traj = best(lambda: traj(x).block_until_ready(), 2)
    iters = int(sinkhorn(BETA * x @ x.T, p.sinkhorn)[1].iterations)
    return t_rhs, t_traj, iters, np.asarray(traj(x))[-1]


def clustered(n: int, key) -> jax.Array:
    """n tokens on S^{D−1} in three clusters of angular spread ≈ 0.02 around random centres."""
    kc, kx = jax.random.split(key)
    centres = uniform(kc, (3,), D, jnp.float64)
    x = centres[jnp.arange(n) % 3] + 0.02 * jax.random.normal(kx, (n, D), jnp.float64)
    return normalize(x)


def clustered_times(x, symmetric: bool, beta: float = 6.0):
    p = sinkformer(beta, epsilon=EPS, threshold=THR, iterations=200000, symmetric=symmetric)
    f = jax.jit(lambda y: sinkhorn(beta * y @ y.T, p.sinkhorn))
    W, info = f(x)
    W.block_until_ready()
    return best(lambda: f(x)[0].block_until_ready(), 2), int(info.iterations), float(info.error)


def pot_rhs_factory():
    import ot

    def rhs(x):
        n = x.shape[0]
        a = np.full(n, 1.0 / n)
        M = -BETA * (x @ x.T)
        P = ot.sinkhorn(a, a, M, EPS, method="sinkhorn_log", stopThr=THR, numItermax=20000)
        out = n * P @ x
        return out - np.sum(out * x, axis=1, keepdims=True) * x

    def traj(x):
        for _ in range(int(round(T / DT))):
            k1 = rhs(x)
            k2 = rhs(x + 0.5 * DT * k1)
            k3 = rhs(x + 0.5 * DT * k2)
            k4 = rhs(x + DT * k3)
            x = x + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
        return x

    return rhs, traj


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="32,256,1024,4096")
    ap.add_argument("--quick", action="store_true", help="sizes 32,256,1024")
    args = ap.parse_args()
    sizes = [32, 256, 1024] if args.quick else [int(s) for s in args.sizes.split(",")]
    try:
        pot_rhs, pot_traj = pot_rhs_factory()
    except ImportError:
        pot_rhs = pot_traj = None
        print("POT not installed: pip install -e .[bench]")
    record = {"device": str(jax.devices()[0]), "d": D, "beta": BETA, "epsilon": EPS, "threshold": THR, "sizes": {}}
    print(f"{'n':>6} {'iters':>6} {'native rhs':>11} {'ott rhs':>9} {'POT rhs':>9} {'POT/native':>10} {'ott/native':>10} {'native traj':>11} {'POT traj':>9} {'ratio':>7}")
    for n in sizes:
        x = uniform(jax.random.key(n), (n,), D, jnp.float64)
        rn, tn, iters, xn = sinkflow_times(x, "native")
        ro, to, _, _ = sinkflow_times(x, "ott")
        rs, ts_, iters_s, xs = sinkflow_times(x, "native", symmetric=True)
        rec = {"iterations": iters, "native_rhs_s": rn, "ott_rhs_s": ro, "native_traj_s": tn, "ott_traj_s": to,
               "symmetric_iterations": iters_s, "symmetric_rhs_s": rs, "symmetric_traj_s": ts_, "symmetric_vs_native_state_difference": float(np.max(np.abs(np.asarray(xs) - np.asarray(xn))))}
        rp = tp = None
        if pot_rhs is not None:
            xh = np.asarray(x)
            rp = best(lambda: pot_rhs(xh), 2 if n <= 1024 else 1)
            rec["pot_rhs_s"] = rp
            if n <= 1024:
                t0 = time.perf_counter()
                xp = pot_traj(xh)
                tp = time.perf_counter() - t0
                rec["pot_traj_s"] = tp
                rec["max_state_difference"] = float(np.max(np.abs(xp - xn)))
        fmt = lambda v: f"{v:9.4f}" if v is not None else f"{'—':>9}"  # noqa: E731
        ratio = lambda a, b: f"{a / b:10.1f}" if a is not None else f"{'—':>10}"  # noqa: E731
        print(f"{n:>6} {iters:>6} {rn:11.4f} {ro:9.4f} {fmt(rp)} {ratio(rp, rn)} {ratio(ro, rn)} {tn:11.3f} {fmt(tp)} {ratio(tp, tn)[3:]:>7}")
        print(f"{'':>6} symmetric loop (Q = K, balanced): {iters_s} iterations, rhs {rs:.4f} s ({rn / rs:.1f}x native), trajectory {ts_:.3f} s")
        record["sizes"][str(n)] = rec
    print(f"\nclustered tokens (3 clusters, spread 0.02), β = 6, threshold {THR:g}:")
    print(f"{'n':>6} {'alt iters':>10} {'alt s':>9} {'sym iters':>10} {'sym s':>9} {'alt/sym time':>13}")
    record["clustered"] = {}
    for n in [16] + [m for m in sizes if m <= 1024]:
        x = clustered(n, jax.random.key(100 + n))
        ta, ia, ea = clustered_times(x, symmetric=False)
        ts_, is_, es = clustered_times(x, symmetric=True)
        print(f"{n:>6} {ia:>10} {ta:9.4f} {is_:>10} {ts_:9.4f} {ta / ts_:13.1f}")
        record["clustered"][str(n)] = {"alternating_iterations": ia, "alternating_s": ta, "alternating_error": ea, "symmetric_iterations": is_, "symmetric_s": ts_, "symmetric_error": es}
    print("\nsinkformer-phase-diagram cells (small preset: n = 16, d = 8, R = 16, T = 15, RK4 dt = 0.1, threshold 1e-5), cost against the softmax (SA) cell:")
    record["cells"] = phase_diagram_cells()
    print(json.dumps(record))


def phase_diagram_cells(betas=(1.0, 6.0)):
    """One cell of the sinkformer-phase-diagram study per (model, warm start, β), jitted and timed
    (best of 2 after a warm-up run): the Sinkformer cell against the SA one, cold and warm-started."""
    from sinkflow.precision import with_exact_matmuls
    from sinkflow.studies import sinkformer_phase_diagram as spd

    out = {}
    print(f"{'β':>4} {'SA s':>8} {'cold s':>8} {'warm s':>8} {'cold/SA':>8} {'warm/SA':>8} {'warm gain':>9} {'max marginal error (warm)':>26}")
    for beta in betas:
        times, errs = {}, {}
        for label, model, warm in (("sa", "sa", "off"), ("cold", "sinkformer", "off"), ("warm", "sinkformer", "on")):
            cfg = spd.STUDY.config("small", d=(8,), n=(16,), beta=(beta,), model=(model,), warm_start=warm, dtype="float64")
            cell = jax.jit(with_exact_matmuls(spd.make_cell(cfg, {"d": 8, "n": 16, "model": model})))
            vals = {"beta": jnp.asarray(beta, jnp.float64)}
            res = jax.block_until_ready(cell(vals, jax.random.key(0)))
            times[label] = best(lambda: jax.block_until_ready(cell(vals, jax.random.key(0))), 2)
            errs[label] = float(np.max(res["sinkhorn_error"]))
        rec = {"sa_s": times["sa"], "cold_s": times["cold"], "warm_s": times["warm"], "cold_over_sa": times["cold"] / times["sa"], "warm_over_sa": times["warm"] / times["sa"], "warm_error": errs["warm"], "cold_error": errs["cold"]}
        out[str(beta)] = rec
        print(f"{beta:>4g} {times['sa']:8.3f} {times['cold']:8.3f} {times['warm']:8.3f} {rec['cold_over_sa']:8.1f} {rec['warm_over_sa']:8.1f} {times['cold'] / times['warm']:9.2f} {errs['warm']:26.1e}")
    return out


if __name__ == "__main__":
    main()
