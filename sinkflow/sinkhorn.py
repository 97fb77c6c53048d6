"""Sinkhorn normalisation of attention kernels (doubly stochastic attention).

Contract. For a similarity matrix c of shape ``(..., n, n)`` (c_ij = β⟨Qx_i, Kx_j⟩
for attention, −‖x_i − x_j‖² for the heat-flow analysis) and an explicit ε > 0,
the kernel is K⁰_ij = exp(c_ij / ε) (zero where a mask forbids j for i, exactly:
the log-kernel is −∞ there, never −1e9). :func:`sinkhorn` returns the attention
matrix W = n·P, where P is the entropic plan with uniform marginals a = b = 1/n
(rows of W sum to 1; columns sum to 1 when balanced), and a :class:`SinkhornInfo`.

Modes (``Sinkhorn.mode``):

- ``"balanced"``: alternate row and column normalisations until the L1 marginal
  error ‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁ ≤ ``threshold`` (or ``iterations`` reached);
  W is doubly stochastic to the threshold. The last update is a row
  normalisation, so rows are exact.
- ``"unbalanced"`` (semi-relaxed): rows hard, the column marginal relaxed by KL
  with weight τ = ``tau`` ∈ (0, 1] (ott-jax's ``tau_b``; ρ = ετ/(1−τ)): the column
  update is v ← τ(log b − LSE_i(log K⁰_ij + u_i)). τ = 1 is balanced, τ → 0 is
  softmax. Converged when the column potential moves by ≤ ``threshold``.
  With ``symmetric=True`` (for a symmetric kernel, c = cᵀ and a symmetric or no
  mask: the heat flow's −‖x_i − x_j‖², or β⟨Qx_i, Kx_j⟩ with QᵀK symmetric) the
  loop is the averaged symmetric fixed point f ← ½(f + T(f)),
  T(f)_i = −log n − LSE_j(log K⁰_ij + f_j) (Knight 2008; Feydy et al. 2019), whose
  fixed point P = diag(e^f) K⁰ diag(e^f) is doubly stochastic; one row update
  ends it, so rows are exact. On Gaussian clouds at small ε it needs far fewer
  iterations than alternation (measured in ``tests/test_sinkhorn.py``). On a
  non-symmetric kernel it does not converge, and ``converged`` says so.
- ``"fixed"``: exactly k = ``iterations`` alternating normalisations, rows first;
  k = 1 is the row softmax (tested), k even ends on a column normalisation.

Backends (``Sinkhorn.backend``): ``"native"`` is a log-domain loop written here,
meant for vector fields whose right-hand side calls it thousands of times
(see ``benchmarks/sinkformer.py``); the convergence loop is equinox's
checkpointed while loop, so reverse-mode gradients are exact derivatives of the
unrolled iterates. ``"ott"`` calls :class:`ott.solvers.linear.sinkhorn.Sinkhorn`
(log domain, ``lse_mode=True``) on a :class:`ott.geometry.geometry.Geometry`
with ``cost = −c`` and the same explicit ε (never ott's relative default), with
implicit differentiation. Both agree to the threshold (tested). ε is a traced
leaf, so an ε sweep compiles once; mode, τ, iterations, threshold and backend are
static (ott needs τ concrete to decide whether the problem is balanced).

Numerics. Potentials u, v (log scalings) are kept in float of the input; rows or
columns whose allowed set is empty are refused at the boundary
(:func:`sinkflow.attention.check_mask`); a balanced problem on a triangular mask
has only the identity as a solution and converges slowly (~1/k) — that is the
"identity collapse" the causal studies measure, not a bug here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

__all__ = [
    "Sinkhorn",
    "SinkhornInfo",
    "sinkhorn",
    "marginal_error",
    "MODES",
    "BACKENDS",
    "sink_functional",
    "iterate_errors",
    "pair_iterates",
    "hilbert_contraction",
]

MODES = ("balanced", "unbalanced", "fixed")
BACKENDS = ("native", "ott")


class Sinkhorn(eqx.Module):
    """Options of one Sinkhorn normalisation (see the module docstring)."""

    epsilon: Float[Array, ""] | float = 1.0
    mode: str = eqx.field(static=True, default="balanced")
    tau: float = eqx.field(static=True, default=1.0)
    iterations: int = eqx.field(static=True, default=1000)
    threshold: float = eqx.field(static=True, default=1e-6)
    backend: str = eqx.field(static=True, default="native")
    symmetric: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Sinkhorn(mode={self.mode!r}) is not known; use one of {MODES}.")
        if self.backend not in BACKENDS:
            raise ValueError(f"Sinkhorn(backend={self.backend!r}) is not known; use one of {BACKENDS}.")
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"Sinkhorn(iterations={self.iterations!r}) must be a positive integer.")
        if not (self.threshold > 0 and math.isfinite(self.threshold)):
            raise ValueError(f"Sinkhorn(threshold={self.threshold!r}) must be a finite number > 0.")
        if not (0.0 < self.tau <= 1.0):
            raise ValueError(f"Sinkhorn(tau={self.tau!r}) must lie in (0, 1]; 1 is balanced, → 0 is softmax.")
        if self.mode == "balanced" and self.tau != 1.0:
            raise ValueError("Sinkhorn(mode='balanced') uses tau = 1; for a relaxed column marginal use mode='unbalanced'.")
        if self.mode == "fixed" and self.backend == "ott":
            raise ValueError("Sinkhorn(mode='fixed') runs k normalisations exactly and is native only; use backend='native'.")
        if self.symmetric and (self.mode != "balanced" or self.backend != "native"):
            raise ValueError("Sinkhorn(symmetric=True) is the averaged iteration for a symmetric kernel: mode='balanced', backend='native' only.")
        if isinstance(self.epsilon, (int, float)) and not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ValueError(f"Sinkhorn(epsilon={self.epsilon!r}) must be a finite number > 0.")


class SinkhornInfo(NamedTuple):
    """Per-call diagnostics (leading batch dims of the input).

    ``iterations``: normalisations performed (row and column updates each count 1);
    ``error``: L1 marginal error ‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁ of the returned plan;
    ``residual``: the stopping criterion (= error when balanced, the last column
    potential change when unbalanced, 0 for fixed); ``converged``: residual ≤ threshold
    (always True for fixed); ``potential``: the column log-scaling v of the returned plan
    (P = diag(e^u) K⁰ diag(e^v) / n; the symmetric loop's f), the ``init`` that warm-starts the
    next call on a nearby kernel.
    """

    iterations: Int[Array, "..."]
    error: Float[Array, "..."]
    residual: Float[Array, "..."]
    converged: Bool[Array, "..."]
    potential: Float[Array, "... n"] | None = None


def _lse(a: Array, axis: int) -> Array:
    """log Σ exp along ``axis``, −∞ for an all-(−∞) slice, gradient-safe on −∞ entries."""
    m = jax.lax.stop_gradient(jnp.max(a, axis=axis, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return jnp.log(jnp.sum(jnp.exp(a - m), axis=axis)) + jnp.squeeze(m, axis)


def marginal_error(W: Float[Array, "... n n"]) -> Float[Array, "..."]:
    """‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁ for P = W/n and uniform a = b = 1/n."""
    n = W.shape[-1]
    rows = jnp.sum(jnp.abs(jnp.sum(W, axis=-1) - 1.0), axis=-1) / n
    cols = jnp.sum(jnp.abs(jnp.sum(W, axis=-2) - 1.0), axis=-1) / n
    return rows + cols


def sinkhorn(
    similarity: Float[Array, "... n n"], spec: Sinkhorn, mask: Bool[Array, "n n"] | None = None, init: Float[Array, "... n"] | None = None
) -> tuple[Float[Array, "... n n"], SinkhornInfo]:
    """W = n·P for the kernel exp(similarity/ε) (masked entries exactly 0) and its diagnostics.

    ``init``: a column potential to start from (``info.potential`` of a call on a nearby kernel, e.g.
    the previous stage or step of a flow), instead of zero; native balanced and unbalanced modes
    only. The fixed point and the stopping rule are the same, so only the iteration count changes."""
    if similarity.shape[-1] != similarity.shape[-2]:
        raise ValueError(f"sinkhorn needs a square (…, n, n) similarity, got shape {similarity.shape}.")
    if init is not None and (spec.mode == "fixed" or spec.backend != "native"):
        raise ValueError("sinkhorn(init=…) warm-starts the native balanced/unbalanced loops; mode='fixed' is k normalisations from zero by definition, and the ott backend is not warm-started here.")
    eps = jnp.asarray(spec.epsilon, similarity.dtype)
    log_k = similarity / eps
    if mask is not None:
        log_k = jnp.where(mask, log_k, -jnp.inf)
    batch = log_k.shape[:-2]
    n = log_k.shape[-1]
    flat = log_k.reshape((-1, n, n))
    if spec.backend == "ott":
        eps_b = jnp.broadcast_to(eps, batch).reshape(-1)
        W, info = jax.vmap(lambda lk, e: _ott(lk, e, spec))(flat, eps_b)
    else:
        v0 = jnp.zeros(flat.shape[:-1], flat.dtype) if init is None else jnp.broadcast_to(jnp.asarray(init, flat.dtype), batch + (n,)).reshape((-1, n))
        W, info = jax.vmap(lambda lk, v: _native(lk, spec, v))(flat, v0)
    W = W.reshape(log_k.shape)
    info = jax.tree.map(lambda a: a.reshape(batch + a.shape[1:]), info)
    return W, info


def _row(log_k: Array, v: Array) -> Array:
    """u with rows of exp(u + log_k + v) summing to 1/n."""
    n = log_k.shape[-1]
    return -math.log(n) - _lse(log_k + v[None, :], axis=1)


def _col(log_k: Array, u: Array, tau: float) -> Array:
    n = log_k.shape[-1]
    v = -math.log(n) - _lse(log_k + u[:, None], axis=0)
    return v if tau == 1.0 else tau * v


def _plan(log_k: Array, u: Array, v: Array) -> Array:
    n = log_k.shape[-1]
    return n * jnp.exp(u[:, None] + log_k + v[None, :])


def _native(log_k: Float[Array, "n n"], spec: Sinkhorn, v0: Float[Array, " n"]):
    n = log_k.shape[-1]
    dtype = log_k.dtype
    zero = jnp.zeros((n,), dtype)
    if spec.mode == "fixed":
        k = spec.iterations

        def pair(carry, _):
            u, v = carry
            v = _col(log_k, u, 1.0)
            u = _row(log_k, v)
            return (u, v), None

        u = _row(log_k, zero)
        v = zero
        (u, v), _ = jax.lax.scan(pair, (u, v), None, length=(k - 1) // 2)
        if k % 2 == 0:
            v = _col(log_k, u, 1.0)
        W = _plan(log_k, u, v)
        info = SinkhornInfo(jnp.asarray(k, jnp.int32), marginal_error(W), jnp.zeros((), dtype), jnp.asarray(True), v)
        return W, info

    if spec.symmetric:
        return _native_symmetric(log_k, spec, v0)
    tau = spec.tau
    pairs = max((spec.iterations - 1) // 2, 1)

    def residual_of(u, v, v_old):
        if tau == 1.0:
            return marginal_error(_plan(log_k, u, v))
        return jnp.max(jnp.abs(v - v_old))

    def cond(state):
        _, _, r, _ = state
        return r > spec.threshold

    def body(state):
        u, v, _, it = state
        v_new = _col(log_k, u, tau)
        u_new = _row(log_k, v_new)
        return u_new, v_new, residual_of(u_new, v_new, v), it + 1

    u0 = _row(log_k, v0)
    r0 = residual_of(u0, v0, v0) if tau == 1.0 else jnp.asarray(jnp.inf, dtype)
    init = (u0, v0, r0, jnp.asarray(0))
    u, v, r, it = eqxi.while_loop(cond, body, init, max_steps=pairs, kind="checkpointed")
    W = _plan(log_k, u, v)
    info = SinkhornInfo((1 + 2 * it).astype(jnp.int32), marginal_error(W), r, r <= spec.threshold, v)
    return W, info


def _native_symmetric(log_k: Float[Array, "n n"], spec: Sinkhorn, f_init: Float[Array, " n"]):
    def cond(state):
        return state[1] > spec.threshold

    def body(state):
        f, _, it = state
        f = 0.5 * (f + _row(log_k, f))
        return f, marginal_error(_plan(log_k, f, f)), it + 1

    f0 = _row(log_k, f_init)
    init = (f0, marginal_error(_plan(log_k, f0, f0)), jnp.asarray(0))
    f, r, it = eqxi.while_loop(cond, body, init, max_steps=max(spec.iterations - 2, 1), kind="checkpointed")
    u = _row(log_k, f)
    W = _plan(log_k, u, f)
    err = marginal_error(W)
    info = SinkhornInfo((2 + it).astype(jnp.int32), err, err, err <= spec.threshold, f)
    return W, info


def _ott(log_k: Float[Array, "n n"], eps: Float[Array, ""], spec: Sinkhorn):
    from ott.geometry import geometry
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn as ott_sinkhorn

    n = log_k.shape[-1]
    geom = geometry.Geometry(cost_matrix=-eps * log_k, epsilon=eps)
    prob = linear_problem.LinearProblem(geom, tau_a=1.0, tau_b=spec.tau)
    solver = ott_sinkhorn.Sinkhorn(threshold=spec.threshold, max_iterations=spec.iterations, lse_mode=True)
    out = solver(prob)
    W = n * out.matrix
    errs = jnp.reshape(out.errors, (-1,))
    residual = jnp.min(jnp.where(errs >= 0, errs, jnp.inf))  # ott fills unreached slots with −1
    err = marginal_error(W)
    info = SinkhornInfo((2 * out.n_iters).astype(jnp.int32), err, residual, out.converged, out.g / eps)
    return W, info


def sink_functional(similarity: Float[Array, "... n n"], W: Float[Array, "... n n"], epsilon) -> Float[Array, "..."]:
    """SINK's F(μ) = −½ ∫ k^∞ log(k^∞/k⁰) d(μ⊗μ) for the empirical measure of n points.

    With μ = (1/n)Σδ_{x_i}, k⁰_ij = exp(c_ij/ε) and k^∞_ij = n W_ij (so that
    ∫k^∞(x_i, ·)dμ = 1): F = −(1/2n) Σ_ij W_ij (log(n W_ij) − c_ij/ε), with 0·log 0 = 0.
    """
    n = W.shape[-1]
    eps = jnp.asarray(epsilon, W.dtype)
    pos = W > 0
    term = jnp.where(pos, W * (jnp.log(jnp.where(pos, n * W, 1.0)) - jnp.where(pos, similarity / eps, 0.0)), 0.0)
    return -0.5 / n * jnp.sum(term, axis=(-2, -1))


def iterate_errors(similarity: Float[Array, "n n"], epsilon, k: int, mask: Bool[Array, "n n"] | None = None):
    """Row and column L1 errors (‖W1 − 1‖₁/n, ‖Wᵀ1 − 1‖₁/n) of the fixed-iteration iterates W⁽¹⁾..W⁽ᵏ⁾
    (odd: after a row normalisation, even: after a column one), in one scan; shapes (k,), (k,)."""
    log_k = similarity / jnp.asarray(epsilon, similarity.dtype)
    if mask is not None:
        log_k = jnp.where(mask, log_k, -jnp.inf)
    n = log_k.shape[-1]

    def errs(u, v):
        W = _plan(log_k, u, v)
        return jnp.sum(jnp.abs(W.sum(-1) - 1.0)) / n, jnp.sum(jnp.abs(W.sum(-2) - 1.0)) / n

    def step(carry, i):
        u, v = carry
        u, v = jax.lax.cond(i % 2 == 0, lambda: (_row(log_k, v), v), lambda: (u, _col(log_k, u, 1.0)))
        return (u, v), errs(u, v)

    zero = jnp.zeros((n,), log_k.dtype)
    _, (rows, cols) = jax.lax.scan(step, (zero, zero), jnp.arange(k))
    return rows, cols


def pair_iterates(similarity: Float[Array, "n n"], epsilon, pairs: int, observable, mask: Bool[Array, "n n"] | None = None):
    """``observable(W)`` after each of ``pairs`` (column, row) normalisation pairs, starting from the row softmax:
    W⁽¹⁾ (softmax), W⁽³⁾, …, W⁽²ᵖᵃⁱʳˢ⁻¹⁾ (every iterate ends on a row update, so rows are exact); stacked
    along a leading axis of length ``pairs``. One scan: the identity-collapse curves of masked balanced
    Sinkhorn (≈ 1/k off-diagonal mass) run to 10⁵ pairs in a fraction of a second."""
    log_k = similarity / jnp.asarray(epsilon, similarity.dtype)
    if mask is not None:
        log_k = jnp.where(mask, log_k, -jnp.inf)
    n = log_k.shape[-1]
    zero = jnp.zeros((n,), log_k.dtype)
    u0 = _row(log_k, zero)

    def step(carry, _):
        u, v = carry
        v = _col(log_k, u, 1.0)
        u = _row(log_k, v)
        return (u, v), observable(_plan(log_k, u, v))

    first = observable(_plan(log_k, u0, zero))
    _, rest = jax.lax.scan(step, (u0, zero), None, length=pairs - 1)
    return jax.tree.map(lambda f, r: jnp.concatenate([f[None], r], axis=0), first, rest)


def hilbert_contraction(similarity: Float[Array, "n n"], epsilon) -> Float[Array, ""]:
    """Birkhoff's contraction ratio tanh(Δ/4) of the positive kernel K = exp(c/ε), Δ = max log(K_ik K_jl / (K_jk K_il))
    its projective diameter. Sinkhorn's marginal errors contract at least by tanh(Δ/4)² per row+column pair
    (Franklin & Lorenz 1989); dense kernels only (a zero entry makes Δ infinite)."""
    lk = similarity / jnp.asarray(epsilon, similarity.dtype)
    # Δ = max_{i,j,k,l} (lk_ik − lk_jk) − (lk_il − lk_jl) = max_{i,j} [max_k (lk_ik − lk_jk) + max_l (lk_jl − lk_il)]
    diff = lk[:, None, :] - lk[None, :, :]  # (i, j, k)
    delta = jnp.max(jnp.max(diff, axis=-1) + jnp.max(-diff, axis=-1))
    return jnp.tanh(delta / 4.0)
