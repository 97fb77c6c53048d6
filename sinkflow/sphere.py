"""Points on the unit sphere S^{d-1} ⊂ R^d.

A configuration of n tokens is an array ``x`` of shape ``(..., n, d)`` whose rows
are unit vectors; leading axes are batch axes (realizations, cells) and every
function here maps over them. All functions are pure, jit- and vmap-able, and
NaN-safe at the origin (``normalize(0)`` returns 0 with a finite gradient rather
than NaN).

Special starts (each returns ``(n, d)`` unless a batch is requested):

- ``uniform``: i.i.d. uniform points (normalised Gaussians).
- ``orthonormal_frame``: n ≤ d mutually orthogonal points (Thm 6.8), optionally
  randomly rotated.
- ``equiangular``: n points with all pairwise inner products equal to ρ₀,
  ρ₀ ∈ (−1/(n−1), 1) (needs d ≥ n).
- ``regular_simplex``: the equiangular start with ρ₀ = −1/(n−1), an (unstable)
  equilibrium of SA and USA.
- ``circle``: the embedding θ ↦ (cos θ, sin θ) of angles on S¹ (the d = 2 case
  in angle coordinates, see :func:`sinkflow.dynamics.attention.circle_field`).
- ``hemisphere``: uniform points conditioned on ⟨x, e₁⟩ > 0 (reflection), and
  ``cone``: uniform points in the spherical cap of angular radius θ around e₁.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = [
    "normalize",
    "project_tangent",
    "uniform",
    "geodesic_distance",
    "orthonormal_frame",
    "equiangular",
    "equiangular_gram_root",
    "regular_simplex",
    "hemisphere",
    "cone",
    "random_orthogonal",
    "circle",
    "tangent_divergence",
    "span_basis",
    "span_coordinates",
]

_TINY = 1e-30


def normalize(x: Float[Array, "... d"]) -> Float[Array, "... d"]:
    """Scale each row to unit norm; zero rows stay zero (no NaN, finite gradient)."""
    sq = jnp.sum(x * x, axis=-1, keepdims=True)
    ok = sq > _TINY
    return x * jnp.where(ok, jax.lax.rsqrt(jnp.where(ok, sq, 1.0)), 0.0)


def project_tangent(x: Float[Array, "... d"], v: Float[Array, "... d"]) -> Float[Array, "... d"]:
    """P_x v = v − ⟨x, v⟩ x, the projection of v onto the tangent space at the unit vector x."""
    return v - jnp.sum(x * v, axis=-1, keepdims=True) * x


def uniform(key: PRNGKeyArray, shape: tuple[int, ...], d: int, dtype=jnp.float32) -> Float[Array, "*shape d"]:
    """I.i.d. uniform points on S^{d-1}, as an array of shape ``(*shape, d)``."""
    _check_dim(d)
    return normalize(jax.random.normal(key, (*shape, d), dtype=dtype))


def geodesic_distance(x: Float[Array, "... d"], y: Float[Array, "... d"]) -> Float[Array, "..."]:
    """Great-circle distance arccos⟨x, y⟩, computed as 2·atan2(|x−y|, |x+y|) (accurate near 0 and π)."""
    a = jnp.linalg.norm(x - y, axis=-1)
    b = jnp.linalg.norm(x + y, axis=-1)
    return 2.0 * jnp.arctan2(a, b)


def random_orthogonal(key: PRNGKeyArray, d: int, dtype=jnp.float32) -> Float[Array, "d d"]:
    """A Haar-distributed orthogonal matrix (QR of a Gaussian matrix with sign fix)."""
    g = jax.random.normal(key, (d, d), dtype=dtype)
    q, r = jnp.linalg.qr(g)
    return q * jnp.sign(jnp.diagonal(r))[None, :]


def orthonormal_frame(n: int, d: int, key: PRNGKeyArray | None = None, dtype=jnp.float32) -> Float[Array, "n d"]:
    """n mutually orthogonal unit vectors in R^d (requires n ≤ d).

    Without a key these are the first n standard basis vectors; with a key they
    are rotated by a Haar-random orthogonal matrix.
    """
    _check_dim(d)
    if n > d:
        raise ValueError(f"orthonormal_frame needs n ≤ d, got n={n}, d={d}; use d ≥ n.")
    e = jnp.eye(n, d, dtype=dtype)
    if key is None:
        return e
    return e @ random_orthogonal(key, d, dtype).T


def equiangular(n: int, d: int, rho0: float, key: PRNGKeyArray | None = None, dtype=jnp.float32) -> Float[Array, "n d"]:
    """n unit vectors with ⟨x_i, x_j⟩ = ρ₀ for all i ≠ j (requires d ≥ n).

    Construction: the rows of the symmetric square root of the target Gram matrix
    G = (1−ρ₀)I + ρ₀11ᵀ, padded with zeros to dimension d; G's eigenvalues
    1−ρ₀ (multiplicity n−1) and 1+(n−1)ρ₀ must be ≥ 0: ρ₀ ∈ [−1/(n−1), 1).
    """
    _check_dim(d)
    if n > d:
        raise ValueError(f"equiangular needs n ≤ d, got n={n}, d={d}.")
    if not (-1.0 / (n - 1) - 1e-12 <= rho0 < 1.0):
        raise ValueError(f"equiangular needs ρ₀ in [−1/(n−1), 1) = [{-1.0 / (n - 1):.6g}, 1), got {rho0}.")
    root = equiangular_gram_root(n, rho0, dtype)
    x = jnp.concatenate([root, jnp.zeros((n, d - n), dtype=dtype)], axis=1)
    if key is not None:
        x = x @ random_orthogonal(key, d, dtype).T
    return x


def equiangular_gram_root(n: int, rho, dtype=jnp.float32) -> Float[Array, "n n"]:
    """G^{1/2} for G = (1−ρ)I + ρ11ᵀ, rows unit vectors with pairwise cosine ρ (ρ may be traced; no validation).

    G = (1−ρ)(I − J) + (1+(n−1)ρ) J with J = 11ᵀ/n an orthogonal projector, so
    G^{1/2} = √(1−ρ)(I − J) + √(1+(n−1)ρ) J.
    """
    J = jnp.full((n, n), 1.0 / n, dtype)
    lam_top = jnp.maximum(1.0 + (n - 1) * jnp.asarray(rho, dtype), 0.0)
    return jnp.sqrt(1.0 - jnp.asarray(rho, dtype)) * (jnp.eye(n, dtype=dtype) - J) + jnp.sqrt(lam_top) * J


def regular_simplex(n: int, d: int, key: PRNGKeyArray | None = None, dtype=jnp.float32) -> Float[Array, "n d"]:
    """Vertices of the regular simplex, ⟨x_i, x_j⟩ = −1/(n−1) (requires d ≥ n)."""
    return normalize(equiangular(n, d, -1.0 / (n - 1), key, dtype))


def hemisphere(key: PRNGKeyArray, shape: tuple[int, ...], d: int, dtype=jnp.float32) -> Float[Array, "*shape d"]:
    """Uniform points on the open hemisphere {⟨x, e₁⟩ > 0} (by reflecting uniform points)."""
    x = uniform(key, shape, d, dtype)
    s = jnp.where(x[..., :1] < 0, -1.0, 1.0).astype(dtype)
    return x * jnp.concatenate([s, jnp.ones_like(x[..., 1:])], axis=-1)


def cone(key: PRNGKeyArray, shape: tuple[int, ...], d: int, half_angle: float, dtype=jnp.float32) -> Float[Array, "*shape d"]:
    """Points in the spherical cap of angular radius ``half_angle`` around e₁.

    The polar angle is drawn uniformly in [0, half_angle] and the direction in the
    orthogonal complement uniformly; this is not the uniform law on the cap, but
    every point lies in it, so pairwise angles are < 2·half_angle.
    """
    _check_dim(d)
    k1, k2 = jax.random.split(key)
    theta = jax.random.uniform(k1, (*shape, 1), dtype=dtype, maxval=half_angle)
    w = uniform(k2, shape, d - 1, dtype) if d > 2 else jnp.where(
        jax.random.bernoulli(k2, 0.5, (*shape, 1)), 1.0, -1.0
    ).astype(dtype)
    return jnp.concatenate([jnp.cos(theta), jnp.sin(theta) * w], axis=-1)


def _check_dim(d: int) -> None:
    if not isinstance(d, int) or d < 2:
        raise ValueError(f"the sphere S^{{d-1}} needs an integer dimension d ≥ 2, got d={d!r}.")


def circle(theta: Float[Array, "..."]) -> Float[Array, "... 2"]:
    """Angles θ on S¹ as unit vectors (cos θ, sin θ)."""
    return jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)


def tangent_divergence(f, x: Float[Array, " d"]) -> Float[Array, ""]:
    """Divergence on S^{d−1} of the tangent field v(x) = P_x f(x), f: R^d → R^d (ambient, unprojected):
    div_S v = tr(P_x Df(x)) − (d − 1)⟨x, f(x)⟩ (derived: the normal part of Dv has no tangential trace,
    and d/dx of ⟨x, f⟩x contributes ⟨x, f⟩ times the tangential identity). For a flow ẋ = v(x) the
    entropy of the transported law changes at the rate E[div_S v] (continuity equation)."""
    fx, J = f(x), jax.jacfwd(f)(x)
    d = x.shape[-1]
    trPJ = jnp.trace(J) - x @ J @ x
    return trPJ - (d - 1) * jnp.dot(x, fx)


def span_basis(x: Float[Array, "... n d"]) -> tuple[Float[Array, "... d n"], Float[Array, "... n n"]]:
    """An orthonormal basis U (d × n) of the span of n points of R^d (d > n) and their coordinates
    c = xU in it: with xᵀ = UR (reduced QR), x = RᵀUᵀ and c = Rᵀ. Every inner product is kept,
    ⟨c_i, c_j⟩ = ⟨x_i, x_j⟩, and x = cUᵀ recovers the points.

    Why: with V = I (any Q, K, any normalisation, masks included) every attention velocity lies in
    span{x_j}, so the span of the start is invariant and the dynamics of c are the same ODE in R^n
    with the bilinear form UᵀQᵀKU (:func:`sinkflow.attention.restrict_to_span`; = I when Q = K = I):
    exact, not an approximation, at O(n³) instead of O(n²d) per step. It does not apply with V ≠ I,
    nor with noise in the ambient space (the noise leaves the span)."""
    if x.shape[-1] <= x.shape[-2]:
        raise ValueError(f"the span reduction needs d > n; got n = {x.shape[-2]}, d = {x.shape[-1]}.")
    u, r = jnp.linalg.qr(jnp.swapaxes(x, -1, -2))  # (…, d, n) = U (…, d, n) · R (…, n, n)
    return u, jnp.swapaxes(r, -1, -2)


def span_coordinates(x: Float[Array, "... n d"]) -> Float[Array, "... n n"]:
    """The coordinates c = xU of :func:`span_basis` alone (enough when Q = K = V = I)."""
    return span_basis(x)[1]
