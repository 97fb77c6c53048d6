"""Benchmark: the phase-diagram workload, sinkflow vs baselines measured in the same run.

Workload (issue #2): n = 32 tokens, d = 16, 8 values of β × R realizations
(R = 1024 by default), SA dynamics, RK4 with dt = 0.1 to T = 30 (300 steps),
31 saves of the δ-close pair fraction; and the same with adaptive Tsit5 at
rtol 1e-5.

Baselines, timed here on the same machine:
- numpy loop: a Python loop over realizations, each step vectorised over the
  particles (how research scripts are written);
- numpy vectorised: the whole batch as one array;
- torch batched RK4, if torch is installed (``pip install -e .[bench]``), eager
  (the target's baseline) and with the field under ``torch.compile`` (reported beside it);
  on the CPU, or on CUDA in float32 proper (torch's default, no TF32) when JAX runs on a GPU.
Every baseline computes what sinkflow computes: the same RK4 with re-normalisation and the
δ-close pair fraction at the same 31 save times (a phase diagram needs it), and their fields are
checked against sinkflow's on one shared state before timing (``field_agreement``).
Baselines run on a subset of realizations and report trajectories per second; the batched ones
(numpy vectorised, torch) at several batch sizes, reported at their best (torch eager ran 1.4×
faster on 256 trajectories than on 2048: the full benchmark used to time it at 2048 only);
all of them (sinkflow, the ceiling and the baselines) are timed in interleaved
rounds (``--rounds``, default 3) and the best of each is kept, because this shared
machine's speed drifts by ±30% over minutes (the f32 matmul peak read 140–257
GFLOP/s on different days); the matmul peak is measured in every round too
(best of 5 each) and the best is kept.

FLOP model: one field evaluation costs 4·n²·d flops (logits X Xᵀ and W X, two
flops per multiply-add); softmax, normalisation and projections are not counted.
RK4 = 4 evaluations per step. The peak is this machine's float32 matmul
throughput (2048² jnp matmul) measured in the same run.

What limits it (measured on the 2-core AVX-512 CPU, XLA:CPU of jax 0.10, which
fuses a whole RK4 step into one YNNPACK graph): the two batched products alone
(``dots_only`` below, same shapes, no softmax) run at 25–46% of the matmul peak;
what costs the rest was measured in a stand-alone RK4 kernel by dropping one piece at a time
(best of 6 interleaved rounds, 2026-11-23): the n² exps 1.22×, the softmax row sum (a reduction
over 32 numbers) 1.07×, the tangent projection's ⟨a_i, x_i⟩ (over 16) 1.08×; the RK4 combinations
and re-normalisation the remainder. So the field runs at 12–27% of peak (varies by day on this
shared machine). Formulations tried and measured slower: a ones column
appended to x (the concatenation splits the fused graph, 3×), broadcast-and-sum
products (7×), batch-last layouts (3×), normalising the stage states inside the field
(1.4×: it split the step into four graphs; hence ``attention_field_unnormalized``
for fixed steps), XNNPACK/oneDNN flags (no gain). Also measured, no consistent gain:
the row sums taken as column sums (E is symmetric for Q = K = I, so the reduction runs
over the strided axis), ⟨a_i, x_i⟩ = Σ_j w_ij ⟨x_i, x_j⟩ from the Gram matrix instead of a
reduction over d, ``--xla_cpu_prefer_vector_width=512``, the YNNPACK fusion types
(dot/eltwise/reduce, individual_dot); and smaller pieces of the batch solved one after the
other (1024 → 16 trajectories: 1.2–3× slower, so the fused graph is not bandwidth-bound at
8192); without YNNPACK fusion (``--xla_cpu_experimental_ynn_fusion_type=``) it is 4× slower.
XLA:CPU already keeps both cores busy (process CPU time / wall = 1.94), so two host devices
(``JAX_NUM_CPU_DEVICES=2``, cells sharded) only oversubscribe them: 1.7× slower, with or without
single-threaded Eigen. A (B, d, n) layout (tokens minor) is 2.7× slower; the second product
contracted over the logits' first axis (E symmetric) 3.9× slower; unrolling the step loop
(``fori_loop(..., unroll=2)`` or 5) 1.6–1.9× slower, as the fused step graph splits. The
XLA flags measured with no gain (2026-11-23, two interleaved
passes): ``--xla_cpu_enable_fast_math`` (with or without honouring functions and division),
``--xla_cpu_enable_concurrency_optimized_scheduler``, ``--xla_cpu_experimental_xnn_graph_fusion_mode
=XNN_GRAPH_FUSION_MODE_GREEDY``, ``--xla_cpu_use_fusion_emitters=false``,
``--xla_cpu_enable_platform_dependent_math``. Measured 2026-11-23 (second session, interleaved
rounds): β·log₂e folded into the tokens so the Gram product gives the exponent of ``exp2``
directly, 0.96×; normalising after the projection, (u − ⟨u,x⟩x)/Z, 0.91×; a minimal hand-written
RK4 kernel with the same 31 saves ran 1.11× sinkflow's chunk (584 against 528 traj/s; pieces of
1024/2048/8192 within 6% of each other), so the library adds at most ~10% over the bare
formulation, and the gap to the products alone is the field itself. The
observables saved between steps (31 pair-fraction evaluations) cost about 6% of the sinkflow
run (one measurement); the baselines pay them too. The issue's prototype figure (1000–1080 traj/s)
was not reproduced by any bare formulation (2026-11-23, third session: a per-trajectory RK4 with
``x @ x.T``, ``jax.nn.softmax`` and the projection, ``jit(vmap(...))`` over a flat batch of
1024–8192, best of 3 interleaved rounds): 417–493 traj/s under jax 0.10.2, with or without the
re-normalisation and the saves, with or without the softmax's max subtraction; the same script
under jax 0.4.30 ran 217–242 traj/s, under jax 0.7.2 71 traj/s (B = 256, where 0.10.2 ran 154–219).
jax 0.10 is the fastest XLA:CPU of the three for this workload.

On a GPU (one H100, jax 0.11.2, torch 2.11, 2026-11-23): sinkflow RK4 47.9k traj/s, Tsit5 63.5k,
the two products alone 103k, torch eager on CUDA 25.6k (1.87×), compiled 22.6k (2.12×; 22–42k
between runs), 7.5% of the 50.5 TFLOP/s float32 matmul peak. A chunk of 8192 trajectories
takes 0.17 s (0.57 ms per RK4 step), and 8× the trajectories (R = 8192) gains only 9% (52.3k):
the GPU's throughput is saturated, not its launches. The products need 2.1 GFLOP per step at
8192 trajectories (0.04 ms at peak), but the n×n logits and weights are 32 MB each there, and
several passes through HBM per stage (about 0.5 GB per step, ≈ 0.2 ms at H100 bandwidth) are
the estimated limit: a kernel that keeps each trajectory's state on chip for the whole solve is
what would remove it (not written: it needs a GPU to develop and measure). Unrolling the inner step loop (2, 5, 10 steps per
iteration; the predicate of a while loop costs a device-to-host copy each iteration) changed
nothing measurable (< 1%). sinkflow's products run at HIGHEST precision on GPUs
(sinkflow.precision); the peak is measured at the same precision.

Usage: python benchmarks/phase_diagram.py [--realizations R] [--quick]
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
import timeit

import jax
import jax.numpy as jnp
import numpy as np

N, D, BETAS, T, DT, NSAVE, DELTA = 32, 16, np.arange(8.0), 30.0, 0.1, 31, 1e-3
STEPS = int(round(T / DT))  # 300
SAVE_EVERY = STEPS // (NSAVE - 1)  # steps between saves


def _unit_starts(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """float32 tokens uniform on S^{D−1}, shape (*shape, N, D), for the baselines (numpy, no sinkflow)."""
    x = np.random.default_rng(seed).standard_normal((*shape, N, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def best(fn, repeat=3):
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def matmul_peak():
    """A callable returning this machine's float32 matmul GFLOP/s (best of 5), compiled once:
    2048² on a CPU, 8192² on an accelerator (2048² does not fill a GPU), at float32 proper
    (HIGHEST: on a GPU the default would use TF32 tensor cores, which sinkflow does not)."""
    m = 2048 if jax.default_backend() == "cpu" else 8192
    a = jax.random.normal(jax.random.key(0), (m, m), jnp.float32)
    f = jax.jit(lambda x: jnp.matmul(x, x, precision="highest"))
    f(a).block_until_ready()
    return lambda: 2 * m**3 / best(lambda: f(a).block_until_ready(), 5) / 1e9


def sinkflow_chunk(R: int, method: str):
    """(run-once callable, trajectories per run, info) for one compiled phase-diagram chunk."""
    from sinkflow.studies.phase_diagram import STUDY
    from sinkflow.precision import with_exact_matmuls
    from sinkflow.sweep import cell_keys

    cfg = STUDY.config("small", d=(D,), n=(N,), beta=tuple(map(float, BETAS)), realizations=R, T=T, n_times=NSAVE, delta=DELTA, method=method, dt=DT, rtol=1e-5, atol=1e-7, dtype="float32")
    # float32 proper, as the sweep engine runs it (no TF32 on GPUs; sinkflow.precision)
    fn = jax.jit(with_exact_matmuls(STUDY.make_chunk(cfg, {"d": D, "n": N})))
    vals = {"beta": jnp.asarray(BETAS, jnp.float32)}
    keys = cell_keys(0, [f"beta={b}" for b in BETAS])
    # Trace + compile timed on their own: "first call − best run" would also count the machine's drift.
    t0 = time.perf_counter()
    compiled = fn.lower(vals, keys).compile()
    compile_s = time.perf_counter() - t0
    out = jax.block_until_ready(compiled(vals, keys))  # warm-up run, untimed
    info = {"compile_s": compile_s, "steps": int(np.max(out["num_steps"])), "status": int(np.max(out["status"]))}
    return (lambda: jax.block_until_ready(compiled(vals, keys))), len(BETAS) * R, info


def dots_only(B: int = 2048):
    """Ceiling for this structure: RK4 over x ↦ (x xᵀ) x − x alone (the field's two batched products,
    no exp, no reductions), renormalised after each step like the real solve (unbounded growth
    would overflow); same shapes and step count. Returns (run-once callable, trajectories per run)."""
    x = jax.random.normal(jax.random.key(0), (B, N, D), jnp.float32)
    x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)

    def f(y):
        return jnp.einsum("bij,bjd->bid", jnp.einsum("bid,bjd->bij", y, y), y) - y

    def body(i, y):
        k1 = f(y)
        k2 = f(y + DT / 2 * k1)
        k3 = f(y + DT / 2 * k2)
        k4 = f(y + DT * k3)
        y = y + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y / jnp.linalg.norm(y, axis=-1, keepdims=True)

    g = jax.jit(lambda y: jax.lax.fori_loop(0, STEPS, body, y))
    g(x).block_until_ready()
    return (lambda: g(x).block_until_ready()), B


def _np_field(x, beta):
    # x: (..., n, d)
    # `@` (BLAS), not np.einsum: einsum without optimize= does not call BLAS and made this baseline
    # 1.3–2.5× slower than a competent research script.
    lg = beta * (x @ np.swapaxes(x, -1, -2))
    lg -= lg.max(-1, keepdims=True)
    w = np.exp(lg)
    w /= w.sum(-1, keepdims=True)
    a = w @ x
    return a - np.sum(a * x, -1, keepdims=True) * x


def _np_close_fraction(x):
    """δ-close ordered-pair fraction of x (..., n, d): the observable every implementation saves."""
    hit = (x @ np.swapaxes(x, -1, -2)) >= 1 - DELTA
    return (hit.sum((-2, -1)) - N) / (N * (N - 1))  # the diagonal is always close


def _np_rk4(x, beta):
    """RK4 with re-normalisation; returns the final state and the observable at the NSAVE save times."""
    saved = [_np_close_fraction(x)]
    for i in range(1, STEPS + 1):
        k1 = _np_field(x, beta)
        k2 = _np_field(x + DT / 2 * k1, beta)
        k3 = _np_field(x + DT / 2 * k2, beta)
        k4 = _np_field(x + DT * k3, beta)
        x = x + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        x /= np.linalg.norm(x, axis=-1, keepdims=True)
        if i % SAVE_EVERY == 0:
            saved.append(_np_close_fraction(x))
    return x, saved


def numpy_loop(R_sub: int):
    """(run-once callable, trajectories per run): a Python loop over 2·R_sub realizations."""
    starts = _unit_starts(0, (2, R_sub))

    def run():
        for b, xs in zip(BETAS[:2], starts):
            for x in xs:
                _np_rk4(x, np.float32(b))

    return run, 2 * R_sub


def numpy_vectorised(R_sub: int):
    x = _unit_starts(0, (len(BETAS) * R_sub,))
    beta = np.repeat(BETAS, R_sub).astype(np.float32)[:, None, None]
    return (lambda: _np_rk4(x, beta)), x.shape[0]


def _torch_field(y, beta):
    import torch

    w = torch.softmax(beta * torch.bmm(y, y.transpose(1, 2)), dim=-1)
    a = torch.bmm(w, y)
    return a - (a * y).sum(-1, keepdim=True) * y


def field_agreement() -> dict[str, float]:
    """Largest difference between each baseline's field and sinkflow's (float32) on one shared batch
    of unit-vector states, β = 0…7: the baselines must compute the same vector field."""
    from sinkflow.attention import Attention
    from sinkflow.dynamics.attention import attention_field_unnormalized
    from sinkflow.precision import exact_matmuls

    x = _unit_starts(1, (len(BETAS),))
    beta = BETAS.astype(np.float32)[:, None, None]
    with exact_matmuls():
        ref = np.asarray(attention_field_unnormalized(0.0, jnp.asarray(x), Attention(beta=jnp.asarray(beta))))
    out = {"numpy": float(np.abs(_np_field(x, beta) - ref).max())}
    try:
        import torch
    except ImportError:
        return out
    out["torch"] = float(np.abs(_torch_field(torch.from_numpy(x), torch.from_numpy(beta)).numpy() - ref).max())
    return out


def torch_device() -> str | None:
    """Where the torch baseline runs: CUDA when JAX runs on a GPU and torch sees one (the fair
    comparison on an accelerator), else the CPU; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def torch_batched(R_sub: int, compiled: bool = False):
    """(run-once callable, trajectories per run), or None without torch (or, with ``compiled``,
    when torch.compile cannot build its kernels here, e.g. no C++ compiler). On a GPU the
    baseline runs on CUDA in float32 proper (torch's default: no TF32 in matmuls)."""
    dev = torch_device()
    if dev is None:
        return None
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(BETAS) * R_sub, N, D, generator=g).to(dev)
    x = x / x.norm(dim=-1, keepdim=True)
    beta = torch.repeat_interleave(torch.tensor(BETAS, dtype=torch.float32), R_sub)[:, None, None].to(dev)

    def f(y):
        return _torch_field(y, beta)

    if compiled:
        f = torch.compile(f, dynamic=False)  # one static specialisation per batch size

    def close_fraction(y):
        hit = torch.bmm(y, y.transpose(1, 2)) >= 1 - DELTA
        return (hit.sum((1, 2)) - N) / (N * (N - 1))

    def run():
        y = x
        with torch.no_grad():
            saved = [close_fraction(y)]
            for i in range(1, STEPS + 1):
                k1 = f(y)
                k2 = f(y + DT / 2 * k1)
                k3 = f(y + DT / 2 * k2)
                k4 = f(y + DT * k3)
                y = y + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
                y = y / y.norm(dim=-1, keepdim=True)
                if i % SAVE_EVERY == 0:
                    saved.append(close_fraction(y))
        if dev == "cuda":
            torch.cuda.synchronize()
        return saved

    if compiled:
        try:
            run()  # compile outside the timed rounds
        except Exception as e:  # inductor needs a working C++ toolchain
            print(f"torch.compile baseline skipped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            return None
    return run, x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--realizations", type=int, default=1024)
    ap.add_argument("--quick", action="store_true", help="R = 128 and small baseline subsets")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; the best of each is kept")
    args = ap.parse_args()
    R = 128 if args.quick else args.realizations
    flops_per_traj = 4 * STEPS * 4 * N * N * D
    res = {"device": str(jax.devices()[0]), "R": R}
    runners = {}
    agree = field_agreement()
    # f32 round-off is at most ~β·n·ε ≈ 7·32·6e-8 ≈ 1.3e-5 (measured 2e-7); a different field (another β
    # scale, a missing projection or normalisation) differs by O(0.1), since |ẋ_i| is O(1) here.
    if max(agree.values()) > 1e-4:
        raise SystemExit(f"a baseline computes a different field from sinkflow's: max differences {agree}")
    res["baseline_field_max_diff"] = agree
    runners["sinkflow_rk4"] = sinkflow_chunk(R, "rk4")
    runners["sinkflow_tsit5"] = sinkflow_chunk(R, "tsit5")
    runners["dots_only"] = (*dots_only(512 if args.quick else 2048), {})
    runners["numpy_loop"] = (*numpy_loop(4 if args.quick else 8), {})
    # Batched baselines are timed at several batch sizes and reported at their best: torch's eager
    # kernels run 1.4× faster on 256 trajectories than on 2048 (cache-resident intermediates,
    # measured), and handicapping a baseline would flatter sinkflow. R_sub realizations per β.
    subs = (4, 16, 64) if args.quick else (4, 16, 32, 64, 256)
    for r in subs:
        runners[f"numpy_vec@{len(BETAS) * r}"] = (*numpy_vectorised(r), {})
    # On a GPU the torch baseline also gets the whole batch (accelerators want large batches).
    torch_subs = tuple(sorted({*subs, R})) if torch_device() == "cuda" else subs
    for compiled, name in ((False, "torch"), (True, "torch_compile")):
        for r in torch_subs:
            tb = torch_batched(r, compiled=compiled)
            if tb is None:
                break
            runners[f"{name}@{len(BETAS) * r}"] = (*tb, {})
    # Interleaved rounds, best of each: the machine's speed drifts, and a ratio of two timings taken
    # minutes apart would measure the drift.
    best_s = {k: math.inf for k in runners}
    peak, measure_peak = 0.0, matmul_peak()
    for _ in range(args.rounds):
        peak = max(peak, measure_peak())
        for k, (run, _, _) in runners.items():
            t0 = time.perf_counter()
            run()
            best_s[k] = min(best_s[k], time.perf_counter() - t0)
    rate = {k: runners[k][1] / best_s[k] for k in runners}
    for family in ("numpy_vec", "torch", "torch_compile"):
        sized = {int(k.split("@")[1]): v for k, v in rate.items() if k.split("@")[0] == family}
        if sized:
            size = max(sized, key=sized.get)
            rate[family] = sized[size]
            res[f"{family}_batch"] = size
            res[f"{family}_traj_per_s_by_batch"] = sized
    res["peak_f32_gflops"] = peak
    fixed = {**runners["sinkflow_rk4"][2], "run_s": best_s["sinkflow_rk4"], "traj_per_s": rate["sinkflow_rk4"]}
    adaptive = {**runners["sinkflow_tsit5"][2], "run_s": best_s["sinkflow_tsit5"], "traj_per_s": rate["sinkflow_tsit5"]}
    res["sinkflow_rk4"] = fixed
    res["sinkflow_tsit5"] = adaptive
    res["dots_only_traj_per_s"] = rate["dots_only"]
    res["numpy_loop_traj_per_s"] = rate["numpy_loop"]
    res["numpy_vec_traj_per_s"] = rate["numpy_vec"]
    res["torch_traj_per_s"] = rate.get("torch")
    res["torch_compile_traj_per_s"] = rate.get("torch_compile")
    gflops = fixed["traj_per_s"] * flops_per_traj / 1e9
    res["sinkflow_rk4_gflops"] = gflops
    res["fraction_of_peak"] = gflops / peak
    res["dots_only_fraction_of_peak"] = res["dots_only_traj_per_s"] * flops_per_traj / 1e9 / peak
    res["ratio_vs_numpy_loop"] = fixed["traj_per_s"] / res["numpy_loop_traj_per_s"]
    res["ratio_vs_numpy_vec"] = fixed["traj_per_s"] / res["numpy_vec_traj_per_s"]
    res["ratio_vs_torch"] = fixed["traj_per_s"] / res["torch_traj_per_s"] if res["torch_traj_per_s"] else None
    res["ratio_vs_torch_compile"] = fixed["traj_per_s"] / res["torch_compile_traj_per_s"] if res["torch_compile_traj_per_s"] else None
    res["adaptive_vs_fixed"] = adaptive["traj_per_s"] / fixed["traj_per_s"]
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"device {res['device']}, f32 matmul peak {peak:.1f} GFLOP/s, R = {R}, FLOP model {flops_per_traj / 1e6:.1f} MFLOP/trajectory")
    print(f"{'implementation':<40}{'traj/s':>10}{'sinkflow ×':>12}")
    at = {f: f" (best batch {res[f + '_batch']})" if f + "_batch" in res else "" for f in ("numpy_vec", "torch", "torch_compile")}
    rows = [("sinkflow RK4 (scan)", fixed["traj_per_s"]), ("sinkflow Tsit5 rtol 1e-5", adaptive["traj_per_s"]), ("ceiling: the two products", res["dots_only_traj_per_s"]), ("numpy loop", res["numpy_loop_traj_per_s"]), ("numpy vectorised" + at["numpy_vec"], res["numpy_vec_traj_per_s"]), ("torch batched" + at["torch"], res["torch_traj_per_s"]), ("torch compiled" + at["torch_compile"], res["torch_compile_traj_per_s"])]
    for name, v in rows:
        print(f"{name:<40}{(v or float('nan')):>10.1f}{(fixed['traj_per_s'] / v if v else float('nan')):>12.2f}")
    print(f"sinkflow RK4: {gflops:.1f} GFLOP/s = {100 * gflops / peak:.1f}% of peak (the products alone: {100 * res['dots_only_fraction_of_peak']:.0f}%); compile {fixed['compile_s']:.1f} s (RK4), {adaptive['compile_s']:.1f} s (Tsit5); Tsit5 took {adaptive['steps']} steps; peak RSS {res['peak_rss_mb']:.0f} MB")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
