"""Learnable DAG masks (seed 001 §2.6; MATH.md §3): a masked linear attention layer trained on SEM data.

Data (:func:`linear_sem`): N samples of n node values ("tokens") from a linear
structural equation model over a known DAG, X_i = Σ_{j → i} B_ij X_j + z_i with
Gaussian noise z ~ N(0, σ²), edge weights |B_ij| ∈ [0.5, 2] with random signs
(the usual benchmark of NOTEARS/DAGMA), generated in topological order.

Model (:class:`MaskLearner`): token i is predicted from the others by one
value-only, linear attention layer X̂ = X Aᵀ with A = M ∘ W ∘ (1 − I), where W
are edge weights and M the binary mask. M is the hard threshold 1[θ > 0] of
mask logits θ in the forward pass and passes gradients as σ(θ) in the backward
pass (straight-through estimator, :func:`ste_mask`). Objective

    (1/2N)‖X − X Aᵀ‖²_F + λ₁ Σ σ(θ_ij) + λ_w ‖A‖₁ + α h(A) + (ρ/2) h(A)²,

with h the NOTEARS acyclicity :func:`sinkflow.graphs.acyclicity`. The
acyclicity term is handled by the **augmented Lagrangian** (NOTEARS): ``outer``
rounds of ``inner`` Adam steps (optax), then α ← α + ρh and ρ ← 10ρ when h did
not fall below a quarter of its previous value. Everything is one jitted
``lax.scan``. The estimated graph keeps the edges with M = 1 and
|W| > ``w_threshold``.

Metrics (:func:`edge_metrics`): structural Hamming distance (missing, extra and
reversed edges, a reversal counting once), TPR and FDR, in the
:mod:`sinkflow.graphs` convention A[i, j] = edge j → i.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .graphs import acyclicity, check_dag, topological_order

__all__ = ["linear_sem", "ste_mask", "MaskLearner", "fit_mask", "edge_metrics"]


def linear_sem(key: PRNGKeyArray, A: Bool[Array, "n n"], N: int, noise: float = 1.0, dtype=jnp.float64) -> tuple[Array, Array]:
    """(X of shape (N, n), weights B) from the linear SEM over the DAG A (A[i, j] = edge j → i).

    Nodes are generated in a topological order of A (host-side sort), so any labelling works."""
    A = check_dag(A)
    n = A.shape[0]
    order = topological_order(A)
    kw, ks, kz = jax.random.split(key, 3)
    mag = jax.random.uniform(kw, (n, n), dtype, 0.5, 2.0)
    sign = jnp.where(jax.random.bernoulli(ks, 0.5, (n, n)), 1.0, -1.0)
    B = jnp.where(jnp.asarray(A), mag * sign, 0.0).astype(dtype)
    Z = noise * jax.random.normal(kz, (N, n), dtype)
    X = jnp.zeros((N, n), dtype)
    for i in order:
        X = X.at[:, i].set(X @ B[i] + Z[:, i])
    return X, B


def ste_mask(logits: Float[Array, "n n"]) -> Float[Array, "n n"]:
    """Forward 1[θ > 0], backward σ(θ) (straight-through estimator)."""
    soft = jax.nn.sigmoid(logits)
    hard = (logits > 0).astype(logits.dtype)
    return soft + jax.lax.stop_gradient(hard - soft)


class MaskLearner(eqx.Module):
    """Mask logits θ and edge weights W of the masked linear attention layer (A[i, j]: j → i)."""

    logits: Float[Array, "n n"]
    weights: Float[Array, "n n"]

    def adjacency(self) -> Float[Array, "n n"]:
        n = self.logits.shape[0]
        return ste_mask(self.logits) * self.weights * (1.0 - jnp.eye(n, dtype=self.weights.dtype))


def _fit_loss(p: MaskLearner, X, lam_mask, lam_w, alpha, rho):
    A = p.adjacency()
    resid = X - X @ A.T
    fit = 0.5 * jnp.mean(jnp.sum(resid * resid, axis=1))
    h = acyclicity(A)
    return fit + lam_mask * jnp.sum(jax.nn.sigmoid(p.logits)) + lam_w * jnp.sum(jnp.abs(A)) + alpha * h + 0.5 * rho * h * h


def fit_mask(
    key: PRNGKeyArray,
    X: Float[Array, "N n"],
    *,
    lam_mask: float = 0.01,
    lam_w: float = 0.02,
    outer: int = 12,
    inner: int = 2000,
    lr: float = 0.01,
    rho0: float = 1.0,
    w_threshold: float = 0.3,
) -> tuple[Array, dict]:
    """Train the mask learner on X (N, n); returns (estimated boolean graph, diagnostics)."""
    N, n = X.shape
    X = X - jnp.mean(X, axis=0)
    dtype = X.dtype
    init = MaskLearner(logits=jnp.full((n, n), 0.5, dtype), weights=0.01 * jax.random.normal(key, (n, n), dtype))
    opt = optax.adam(lr)
    grad = jax.grad(_fit_loss)

    def inner_step(carry, _):
        p, state, alpha, rho = carry
        g = grad(p, X, lam_mask, lam_w, alpha, rho)
        updates, state = opt.update(g, state, p)
        return (optax.apply_updates(p, updates), state, alpha, rho), None

    def outer_step(carry, _):
        p, state, alpha, rho, h_prev = carry
        (p, state, _, _), _ = jax.lax.scan(inner_step, (p, state, alpha, rho), None, length=inner)
        h = acyclicity(p.adjacency())
        alpha = alpha + rho * h
        rho = jnp.where(h > 0.25 * h_prev, rho * 10.0, rho)
        return (p, state, alpha, jnp.minimum(rho, 1e16), h), h

    carry = (init, opt.init(init), jnp.asarray(0.0, dtype), jnp.asarray(rho0, dtype), jnp.asarray(jnp.inf, dtype))
    (p, _, alpha, rho, h), hs = jax.lax.scan(outer_step, carry, None, length=outer)
    A = p.adjacency()
    est = (jnp.abs(A) > w_threshold) & (p.logits > 0)
    return est, {"h": h, "h_path": hs, "rho": rho, "alpha": alpha, "weights": A}


def edge_metrics(true_A, est_A) -> dict:
    """SHD (missing + extra + reversed, a reversal once), TPR and FDR of an estimated graph (A[i, j]: j → i)."""
    T = np.asarray(true_A, bool)
    E = np.array(est_A, bool)
    np.fill_diagonal(E, False)
    shd = 0
    n = T.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            t = (T[i, j], T[j, i])
            e = (E[i, j], E[j, i])
            if t != e:
                shd += 1
    tp = int(np.sum(T & E))
    pred, cond = int(E.sum()), int(T.sum())
    return {"shd": shd, "tpr": tp / cond if cond else 1.0, "fdr": (pred - tp) / pred if pred else 0.0, "pred": pred}
