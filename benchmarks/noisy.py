"""Benchmark: the noisy-token SDE (USA drift + Brownian motion on the sphere), sinkflow against numpy, in one run.

Workload (issue 24 §4; the `noisy` study's cell): R = 8 clouds of n tokens on the circle S¹ (d = 2),
dX = [P_X f(X) − ((d−1)/κ) X] dt + √(2/κ) P_X dW, κ = 4, projected Euler–Maruyama at dt = 0.02 to
T = 10 (500 steps), the order parameter r = |mean_i x_i| saved every 0.1, float64 (the study's
precision) and float32. Two drifts:

- β = 0 (the study's checked cells, noisy Kuramoto): every weight is 1/n and f_i = x̄, O(n) per
  step. sinkflow: :func:`sinkflow.dynamics.attention.mean_field`, as the study uses it. numpy: the
  same projected scheme on vectors with the mean, and Euler–Maruyama on angles
  θ_i' = r sin(ψ − θ_i) + √(2/κ) dW (the plain script the issue timed), both O(n);
  n = 1000 and 4000.
- β = 1: f_i = (1/n) Σ_j e^{β⟨x_i,x_j⟩} x_j, O(n²) per step, the n×n kernel in both (numpy by
  ``@``); n = 200 and 1000.

sinkflow is timed with ``brownian="steps"`` (increments N(0, h) from ``fold_in(key, step)`` in a
``lax.scan`` of ``fori_loop`` steps: what the study uses) and ``brownian="tree"`` (diffrax's
VirtualBrownianTree: the same path at every step size, about log₂(T/dt) normal draws of the
state's size per step, in diffrax's loop). Accuracy is equal by construction (the same scheme at
the same step; the angle scheme is another weak-order-1 scheme at the same step); as a sanity
check the time-averaged r over the second half is printed for each (they agree to Monte-Carlo
error). Compile time is reported separately (first call minus the best later call). Ends with
one JSON line.

Usage: python benchmarks/noisy.py [--quick]  (``--quick``: the smaller n of each drift, T = 4)
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow.attention import Attention
from sinkflow.dynamics.attention import attention_field, mean_field
from sinkflow.dynamics.noisy import solve_noisy
from sinkflow.observables import order_parameter
from sinkflow.sphere import uniform


def timed(fn, repeats=3):
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best, max(first - best, 0.0)


def numpy_em(x0, beta, kappa, dt, steps, every, rng):
    """Projected Euler–Maruyama of the Itô form, vectorised over (R, n); returns r at the saves.
    β = 0: the mean field x̄ (O(n)); else the n×n kernel."""
    x = np.array(x0)
    R, n, d = x.shape
    s = np.sqrt(2.0 / kappa)
    out = [np.linalg.norm(x.mean(axis=1), axis=-1)]
    for k in range(steps):
        if beta == 0.0:
            f = np.broadcast_to(x.mean(axis=1, keepdims=True), x.shape)
        else:
            w = np.exp(beta * (x @ np.swapaxes(x, 1, 2))) / n  # (R, n, n)
            f = w @ x
        drift = f - np.sum(f * x, axis=-1, keepdims=True) * x - ((d - 1) / kappa) * x
        dw = np.sqrt(dt) * rng.standard_normal(x.shape).astype(x.dtype)
        noise = s * (dw - np.sum(dw * x, axis=-1, keepdims=True) * x)
        x = x + dt * drift + noise
        x /= np.linalg.norm(x, axis=-1, keepdims=True)
        if (k + 1) % every == 0:
            out.append(np.linalg.norm(x.mean(axis=1), axis=-1))
    return np.stack(out)  # (saves, R)


def numpy_angles(theta0, kappa, dt, steps, every, rng):
    """Euler–Maruyama for noisy Kuramoto on angles, dθ_i = r sin(ψ − θ_i) dt + √(2/κ) dW_i (β = 0)."""
    th = np.array(theta0)
    s = np.sqrt(2.0 / kappa)
    z = np.exp(1j * th).mean(axis=1)
    out = [np.abs(z)]
    for k in range(steps):
        z = np.exp(1j * th).mean(axis=1, keepdims=True)
        th = th + dt * np.imag(z * np.exp(-1j * th)) + s * np.sqrt(dt) * rng.standard_normal(th.shape).astype(th.dtype)
        if (k + 1) % every == 0:
            out.append(np.abs(z[:, 0]))
    return np.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    cases = [(0.0, 1000), (0.0, 4000), (1.0, 200), (1.0, 1000)]
    if a.quick:
        cases = [(0.0, 1000), (1.0, 200)]
    T, dt, R, d, kappa = (4.0 if a.quick else 10.0), 0.02, 8, 2, 4.0
    steps, every = int(round(T / dt)), 5
    ts = np.linspace(0.0, T, steps // every + 1)
    late = ts >= T / 2
    rows = []
    for dtype_name in ("float64", "float32"):
        jax.config.update("jax_enable_x64", dtype_name == "float64")
        dtype = jnp.float64 if dtype_name == "float64" else jnp.float32
        for beta, n in cases:
            x0 = uniform(jax.random.key(n), (R, n), d, dtype)
            params = Attention(beta=jnp.asarray(beta, dtype), normalization="none")
            field = mean_field if beta == 0.0 else attention_field
            obs = lambda t, y, p: order_parameter(y)  # noqa: E731

            def run(brownian):
                f = jax.jit(lambda x, k: solve_noisy(field, x, ts, params, kappa=kappa, key=k, dt=dt, observable=obs, brownian=brownian).ys)
                return lambda: jax.block_until_ready(f(x0, jax.random.key(1)))

            r_steps, r_tree = run("steps")(), run("tree")()
            t_steps, c_steps = timed(run("steps"))
            t_tree, c_tree = timed(run("tree"))
            rng = np.random.default_rng(0)
            x0n = np.asarray(x0)
            t_np, _ = timed(lambda: numpy_em(x0n, beta, kappa, dt, steps, every, rng), repeats=1)
            r_np = numpy_em(x0n, beta, kappa, dt, steps, every, rng)
            row = {
                "dtype": dtype_name, "beta": beta, "n": n, "R": R, "steps": steps,
                "sinkflow_steps_s": t_steps, "sinkflow_tree_s": t_tree, "numpy_s": t_np,
                "compile_steps_s": c_steps, "compile_tree_s": c_tree,
                "numpy_over_steps": t_np / t_steps, "tree_over_steps": t_tree / t_steps,
                "r_late": {"steps": float(np.mean(np.asarray(r_steps)[late])), "tree": float(np.mean(np.asarray(r_tree)[late])), "numpy": float(np.mean(r_np[late]))},
            }
            extra = ""
            if beta == 0.0:
                th0 = np.arctan2(x0n[..., 1], x0n[..., 0])
                t_ang, _ = timed(lambda: numpy_angles(th0, kappa, dt, steps, every, rng), repeats=1)
                row["numpy_angles_s"] = t_ang
                row["numpy_angles_over_steps"] = t_ang / t_steps
                row["r_late"]["numpy_angles"] = float(np.mean(numpy_angles(th0, kappa, dt, steps, every, rng)[late]))
                extra = f", angles {t_ang:6.3f} s ({t_ang / t_steps:5.1f}×)"
            rows.append(row)
            print(f"{dtype_name} β={beta:g} n={n:5d}: sinkflow steps {t_steps:7.3f} s (compile {c_steps:4.1f} s) | tree {t_tree:7.3f} s (compile {c_tree:4.1f} s, {t_tree / t_steps:4.1f}×) | "
                  f"numpy {t_np:7.3f} s ({t_np / t_steps:5.1f}×){extra} | ⟨r⟩ late " + ", ".join(f"{k} {v:.3f}" for k, v in row["r_late"].items()), flush=True)
    best_peer = lambda r: min(r["numpy_s"], r.get("numpy_angles_s", np.inf)) / r["sinkflow_steps_s"]  # noqa: E731
    print(json.dumps({"benchmark": "noisy", "machine": platform.processor() or platform.machine(), "cpus": jax.local_device_count(), "jax": jax.__version__,
                      "min_best_numpy_over_sinkflow": min(best_peer(r) for r in rows), "rows": rows}))


if __name__ == "__main__":
    main()
