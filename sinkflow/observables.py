"""Observables of token configurations: pure functions of ``x`` with shape ``(..., n, d)``.

Each maps over leading batch axes and is cheap enough to be a diffrax
``SaveAt(fn=...)`` so sweeps save statistics, not trajectories. Inputs are
normalised first (saved states from dense interpolation can be off the sphere
by the solver tolerance).

Cluster rule (:func:`cluster_count`): tokens i, j are linked when
⟨x_i, x_j⟩ ≥ 1 − δ; clusters are the connected components of that graph
(single linkage at angular scale arccos(1 − δ)). Components are found by
⌈log₂ n⌉ boolean squarings of the adjacency (transitive closure), which is
jittable with static shapes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .sphere import normalize

__all__ = [
    "order_parameter",
    "one_minus_cosine",
    "pairwise_cosines",
    "close_pair_fraction",
    "cluster_count",
    "interaction_energy",
    "cosine_histogram",
    "offdiag_cosine_stats",
]


def pairwise_cosines(x: Float[Array, "... n d"]) -> Float[Array, "... n n"]:
    """⟨x_i, x_j⟩ for all pairs (Gram matrix of the normalised tokens)."""
    xh = normalize(x)
    return jnp.einsum("...id,...jd->...ij", xh, xh)


def _offdiag(n: int) -> Array:
    return ~jnp.eye(n, dtype=bool)


def close_pair_fraction(x: Float[Array, "... n d"], delta) -> Float[Array, "..."]:
    """Fraction of ordered pairs i ≠ j with ⟨x_i, x_j⟩ ≥ 1 − δ (GLPR Fig. 3 estimator)."""
    n = x.shape[-2]
    c = pairwise_cosines(x)
    hit = (c >= 1.0 - delta) & _offdiag(n)
    return jnp.sum(hit, axis=(-2, -1)) / (n * (n - 1))


def cluster_count(x: Float[Array, "... n d"], delta) -> Float[Array, "..."]:
    """Number of connected components of the graph {⟨x_i, x_j⟩ ≥ 1 − δ} (see module docstring)."""
    n = x.shape[-2]
    a = (pairwise_cosines(x) >= 1.0 - delta) | jnp.eye(n, dtype=bool)
    r = a.astype(x.dtype)
    for _ in range(max(1, math.ceil(math.log2(n)))):
        r = (jnp.einsum("...ij,...jk->...ik", r, r) > 0).astype(x.dtype)
    # Component representative: the smallest index reachable; count representatives.
    idx = jnp.arange(n)
    rep = jnp.min(jnp.where(r > 0, idx, n), axis=-1)
    return jnp.sum(rep == idx, axis=-1).astype(x.dtype)


def interaction_energy(x: Float[Array, "... n d"], beta) -> Float[Array, "..."]:
    """E_β(X) − 1/(2β) = (1/(2βn²)) Σ_{i,j} (e^{β⟨x_i,x_j⟩} − 1)  (Q = K = V = I).

    The additive constant 1/(2β) is dropped so the energy is finite at β = 0, where it
    equals (1/(2n²)) Σ_{i,j} ⟨x_i, x_j⟩ = |mean x|²/2; time derivatives are unchanged.
    """
    n = x.shape[-2]
    c = pairwise_cosines(x)
    safe_beta = jnp.where(beta == 0, 1.0, beta)
    val = jnp.where(beta == 0, c, jnp.expm1(safe_beta * c) / safe_beta)
    return jnp.sum(val, axis=(-2, -1)) / (2.0 * n * n)


def cosine_histogram(x: Float[Array, "... n d"], bins: int) -> Float[Array, "... bins"]:
    """Density histogram of ⟨x_i, x_j⟩ over pairs i < j on ``bins`` equal bins of [−1, 1]."""
    n = x.shape[-2]
    c = pairwise_cosines(x)
    iu = jnp.triu_indices(n, k=1)
    vals = c[..., iu[0], iu[1]]
    which = jnp.clip(jnp.floor((vals + 1.0) / 2.0 * bins).astype(jnp.int32), 0, bins - 1)
    counts = jnp.sum(jax.nn.one_hot(which, bins, dtype=x.dtype), axis=-2)
    width = 2.0 / bins
    return counts / (vals.shape[-1] * width)


def offdiag_cosine_stats(x: Float[Array, "... n d"]) -> tuple[Array, Array, Array]:
    """(mean, min, max) of ⟨x_i, x_j⟩ over i ≠ j."""
    n = x.shape[-2]
    c = pairwise_cosines(x)
    off = _offdiag(n)
    mean = jnp.sum(jnp.where(off, c, 0.0), axis=(-2, -1)) / (n * (n - 1))
    lo = jnp.min(jnp.where(off, c, jnp.inf), axis=(-2, -1))
    hi = jnp.max(jnp.where(off, c, -jnp.inf), axis=(-2, -1))
    return mean, lo, hi


def one_minus_cosine(x: Float[Array, "... n d"]) -> Float[Array, "..."]:
    """Mean over pairs i ≠ j of 1 − ⟨θ_i, θ_j⟩ = ‖θ_i − θ_j‖²/2 (accurate to relative precision near consensus)."""
    theta = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    n = x.shape[-2]
    diff = theta[..., :, None, :] - theta[..., None, :, :]
    return jnp.sum(diff * diff, axis=(-3, -2, -1)) / (2.0 * n * (n - 1))


def order_parameter(x: jax.Array) -> jax.Array:
    """r = |(1/n) Σ_i x_i| for tokens ``(..., n, d)``."""
    return jnp.linalg.norm(jnp.mean(x, axis=-2), axis=-1)
