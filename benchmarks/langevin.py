"""Benchmark: Langevin particles, sinkflow against a plain numpy loop and an unrolled-jit loop, in one run.

Workload (issue 20): n = 10⁴ particles in R^16, dX = −∇U dt + √(2ν) dW with the double well
U = h(x₁² − 1)² + ½Σ_{k≥2}x_k² (h = 1, ν = 0.5), Euler–Maruyama with dt = 10⁻³ for 10³ steps,
the final state saved, float32 and float64.

Implementations timed here (all the same scheme and step; each its own random numbers):
- sinkflow: :func:`sinkflow.dynamics.langevin.solve_langevin` (``brownian="steps"``: a
  ``lax.scan`` of ``fori_loop`` steps, the drift by ``jax.grad`` of the potential module, jit);
- numpy: the same Euler–Maruyama in a Python loop over steps with the analytic gradient
  (vectorised over particles);
- unrolled jit: the data-generator style of JKOnet* — a Python ``for`` loop over the steps
  traced into one ``jax.jit`` (the loop unrolled into the graph), the drift ``vmap``-ed over
  particles. Its compile time grows superlinearly with the step count (measured on 2 cores:
  10 steps 1.2 s, 50 steps 34 s; 10³ steps did not compile within 10 minutes), so it is timed
  on ``UNROLL`` = 25 steps and its run time scaled to the workload's step count (the run time of
  an unrolled graph is linear in its steps); its compile time at 25 steps is reported.

Accuracy is equal by construction (the same scheme at the same step); as a sanity check the
mean of x₁² at the end is printed for sinkflow and numpy (they agree to Monte-Carlo error, ≈ 1%).
Reports seconds per run after compilation and the ratios numpy / sinkflow and unrolled /
sinkflow; ends with one JSON line.

Usage: python benchmarks/langevin.py [--quick]  (``--quick``: n = 2000, 200 steps)
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow.dynamics.langevin import DoubleWell, solve_langevin


UNROLL = 25


def timed(fn, repeats=3):
    fn()  # compile / warm up
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n, d, steps = (2000, 16, 200) if a.quick else (10_000, 16, 1000)
    h_well, nu, dt = 1.0, 0.5, 1e-3
    T = steps * dt
    record = {"benchmark": "langevin", "n": n, "d": d, "steps": steps, "dt": dt, "machine": platform.processor() or platform.machine(), "devices": [str(x) for x in jax.devices()], "results": {}}
    print(f"Langevin double well, n = {n}, d = {d}, {steps} Euler–Maruyama steps (dt = {dt:g}); devices {jax.devices()}")
    print(f"unrolled: timed on {UNROLL} steps, run time scaled to {steps}; compile time at {UNROLL} steps")
    print(f"{'dtype':>8} {'sinkflow s':>11} {'numpy s':>9} {'unrolled s':>11} {'compile s':>10} {'numpy/sf':>9} {'unroll/sf':>10}   E x1² (sf, np)")
    for dtype_name in ("float32", "float64"):
        jax.config.update("jax_enable_x64", dtype_name == "float64")
        dtype = jnp.dtype(dtype_name)
        x0 = jax.random.normal(jax.random.key(0), (n, d), dtype)
        U = DoubleWell(h=jnp.asarray(h_well, dtype))
        ts = np.array([0.0, T])

        @jax.jit
        def run_sf(x0, key):
            return solve_langevin(U, x0, ts, nu=nu, key=key, dt=dt, brownian="steps").ys[-1]

        key = jax.random.key(1)
        t_sf = timed(lambda: run_sf(x0, key).block_until_ready())
        x_sf = np.asarray(run_sf(x0, key))

        x0_np = np.asarray(x0)
        rng = np.random.default_rng(2)

        def run_np():
            x = x0_np.copy()
            s = np.sqrt(2 * nu * dt)
            for _ in range(steps):
                g = x.copy()
                g[:, 0] = 4 * h_well * x[:, 0] * (x[:, 0] ** 2 - 1)
                x = x - dt * g + s * rng.standard_normal(x.shape).astype(x.dtype)
            return x

        t_np = timed(run_np, repeats=1)
        x_np = run_np()

        def grad_one(x):
            return jax.grad(U)(x)

        def unrolled(x, key):
            s = jnp.sqrt(2 * nu * dt).astype(dtype)
            for i in range(UNROLL):  # traced: one graph node per step
                x = x - dt * jax.vmap(grad_one)(x) + s * jax.random.normal(jax.random.fold_in(key, i), x.shape, dtype)
            return x

        unrolled_jit = jax.jit(unrolled)
        t0 = time.perf_counter()
        unrolled_jit(x0, key).block_until_ready()
        t_compile = time.perf_counter() - t0
        t_un = timed(lambda: unrolled_jit(x0, key).block_until_ready()) * steps / UNROLL  # scaled to the workload
        x_un = np.asarray(unrolled_jit(x0, key))  # after UNROLL steps only: its x₁² is not comparable
        m = [float(np.mean(v[:, 0] ** 2)) for v in (x_sf, x_np)]
        print(f"{dtype_name:>8} {t_sf:11.4f} {t_np:9.3f} {t_un:11.4f} {t_compile:10.2f} {t_np / t_sf:9.1f} {t_un / t_sf:10.2f}   {m[0]:.4f} {m[1]:.4f}")
        record["results"][dtype_name] = {"sinkflow_s": t_sf, "numpy_s": t_np, "unrolled_s": t_un, "unrolled_compile_s": t_compile, "unrolled_steps_compiled": UNROLL, "numpy_over_sinkflow": t_np / t_sf, "unrolled_over_sinkflow": t_un / t_sf, "mean_x1_squared": m}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
