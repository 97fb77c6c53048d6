"""The Sinkformer heat flow in R^d (MATH.md §2): ẋ_i = (σ/ε)(Σ_j W_ij x_j − x_i),
W the normalised kernel exp(−‖x_i − x_j‖²/(wε)) (:func:`heat_field`, parameters :class:`HeatFlow`).

Heat-flow convention. With width w, a Gaussian N(0, sI) is mapped by the
Sinkhorn-normalised kernel to λx, λ = 4s/(wε + √((wε)² + 16s²)) (MATH.md §2 with
ε ↦ wε), so for σ = −1 and ε → 0 the particle velocity tends to −(w/4)∇log ρ
and the mean-field limit is ∂_tρ = (w/4)Δρ. w = 1 (the default, MATH.md's
kernel exp(−‖x−y‖²/ε)) gives ¼Δ; w = 4 gives ∂_tρ = Δρ, the form in which seeds
000/001 quote SINK Thm 1 (velocity −∇log ρ). We could not read SINK's own scaling
of ε in the theorem; the two statements differ only by ε ↦ 4ε, and both are tested.
"""
from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..sinkhorn import Sinkhorn, sinkhorn

__all__ = ["HeatFlow", "heat_field", "sq_distances", "whiten"]


class HeatFlow(eqx.Module):
    """Parameters of :func:`heat_field`: the normaliser (``kernel.epsilon`` is ε; mode
    ``"fixed"`` with k = 1 is softmax, i.e. mean shift), the sign σ (−1 diffusion, +1
    attraction) and the kernel width w (static; see the module docstring)."""

    kernel: Sinkhorn
    sign: float = -1.0
    width: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        if not self.width > 0:
            raise ValueError(f"HeatFlow(width={self.width!r}) must be > 0.")


def sq_distances(x: Float[Array, "... n d"]) -> Float[Array, "... n n"]:
    """‖x_i − x_j‖² (expanded form, clipped at 0, exact zeros on the diagonal)."""
    sq = jnp.sum(x * x, axis=-1)
    d2 = sq[..., :, None] + sq[..., None, :] - 2.0 * jnp.einsum("...id,...jd->...ij", x, x)
    n = x.shape[-2]
    return jnp.where(jnp.eye(n, dtype=bool), 0.0, jnp.maximum(d2, 0.0))


def heat_field(t, x: Float[Array, "... n d"], params: HeatFlow) -> Float[Array, "... n d"]:
    """ẋ_i = (σ/ε)(Σ_j W_ij x_j − x_i), W = normalised exp(−‖x_i − x_j‖²/(wε)) (R^d, no projection)."""
    del t
    W, _ = sinkhorn(-sq_distances(x) / params.width, params.kernel)
    eps = jnp.asarray(params.kernel.epsilon, x.dtype)
    return (params.sign / eps) * (jnp.einsum("...ij,...jd->...id", W, x) - x)


def whiten(x: Float[Array, "... n dim"]) -> Float[Array, "... n dim"]:
    """Moment-match clouds ``(..., n, dim)``: empirical mean 0 and unbiased covariance I exactly (n > dim).

    An i.i.d. N(0, I) cloud has sample variance 1 ± √(2/(n·dim)); at n = 400 in dim 2 that is
    ±0.05, larger than the finite-n biases that sinkformer-heat and sinkhorn-gaussian resolve, and
    it carries straight into their observables (a Gaussian's gain and its heat-flow variance depend
    on s to first order). Whitening removes that noise; the whitened cloud still tends to N(0, I)
    as n → ∞, so every mean-field limit is unchanged (the finite-n bias changes, at O(1/n)).
    """
    n = x.shape[-2]
    xc = x - jnp.mean(x, axis=-2, keepdims=True)
    cov = jnp.einsum("...ni,...nj->...ij", xc, xc) / (n - 1)
    w, v = jnp.linalg.eigh(cov)
    inv_sqrt = jnp.einsum("...ij,...j,...kj->...ik", v, 1.0 / jnp.sqrt(w), v)
    return xc @ inv_sqrt
