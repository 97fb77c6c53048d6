"""Normalisation schemes of the residual stream as speed factors (MF §6.2, NORM; MATH.md §1).

Write a token as x_i = r_i θ_i with θ_i on the sphere. Every scheme moves the
directions by the SA field slowed by a speed factor s_i(t),

    θ_i' = s_i^{-1} P_{θ_i} A_i(Θ),   A_i = Σ_j softmax_j(β⟨Qθ_i, Kθ_j⟩) V θ_j,

and some of them also move the radius r_i:

=========  ======================  =====================
scheme     s_i                     r_i'
=========  ======================  =====================
post-ln    1                       0
pre-ln     r_i                     ⟨θ_i, A_i⟩         (x_i' = A_i)
mix-ln     post-ln for t < t_s, then pre-ln (radius 1 at the switch)
peri-ln    r_i ‖A_i‖               ⟨θ_i, A_i⟩/‖A_i‖   (x_i' = A_i/‖A_i‖)
ngpt       ‖A_i‖/α                 0
sqrt       √(t + 1)                0
=========  ======================  =====================

:func:`layernorm_field` integrates the state x = rθ in R^d with
x' = r' θ + (r/s) P_θ A (so Pre-LN is literally x' = A(x/|x|) and Peri-LN
x' = A/‖A‖); solve it without sphere projection. On an equiangular
configuration all s_i and r_i agree and the common cosine obeys
ρ' = γ'_SA(ρ)/s(t) (:func:`sinkflow.theory.equiangular_rhs`) (GLPR 6.9 slowed by s), with r' from the table; that scalar
system is :func:`equiangular_path`. Asymptotics near consensus (s → 1, r ~ t for
Pre/Peri-LN): Post-LN 1 − ρ ~ e^{−2t}; Pre-LN, Peri-LN 1 − ρ ~ c/t²; nGPT
e^{−2αt}; sqrt-scaling e^{−4√(t+1)} (MATH.md §1).
"""

from __future__ import annotations

import functools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..theory import equiangular_weights
from .attention import Attention, attend

__all__ = ["SCHEMES", "LayerNorm", "layernorm_field", "speed_and_radial", "equiangular_path"]

SCHEMES = ("post-ln", "pre-ln", "mix-ln", "peri-ln", "ngpt", "sqrt")


class LayerNorm(eqx.Module):
    """A normalisation scheme around SA attention; ``alpha`` (nGPT) and ``switch`` (Mix-LN's t_s) are traced."""

    attention: Attention
    scheme: str = eqx.field(static=True, default="post-ln")
    alpha: Float[Array, ""] | float = 1.0
    switch: Float[Array, ""] | float = 1.0

    def __check_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"LayerNorm(scheme={self.scheme!r}) is not known; use one of {SCHEMES}.")
        if self.attention.normalization != "softmax":
            raise ValueError("LayerNorm wraps softmax (SA) attention, as in MF §6.2.")


def speed_and_radial(t, r, theta_dot_A, norm_A, p: LayerNorm):
    """(s, r') of the scheme from r, ⟨θ, A⟩ and ‖A‖ (all broadcastable arrays)."""
    one = jnp.ones_like(r)
    if p.scheme == "post-ln":
        return one, 0.0 * r
    if p.scheme == "pre-ln":
        return r, theta_dot_A
    if p.scheme == "mix-ln":
        pre = t >= p.switch
        return jnp.where(pre, r, one), jnp.where(pre, theta_dot_A, 0.0)
    if p.scheme == "peri-ln":
        return r * norm_A, theta_dot_A / norm_A
    if p.scheme == "ngpt":
        return norm_A / p.alpha, 0.0 * r
    return jnp.sqrt(t + 1.0) * one, 0.0 * r  # sqrt


def layernorm_field(t, x: Float[Array, "... n d"], p: LayerNorm) -> Float[Array, "... n d"]:
    """x' = r' θ + (r/s) P_θ A(θ) for x = rθ (see the module docstring)."""
    r = jnp.linalg.norm(x, axis=-1, keepdims=True)
    theta = x / r
    A = attend(theta, p.attention, unit=True)
    tA = jnp.sum(theta * A, axis=-1, keepdims=True)
    nA = jnp.linalg.norm(A, axis=-1, keepdims=True)
    s, rdot = speed_and_radial(t, r, tA, nA, p)
    return rdot * theta + (r / s) * (A - tA * theta)


def _equiangular_moments(rho, beta, n):
    """⟨θ_i, A_i⟩ and ‖A_i‖ on an equiangular configuration with cosine ρ (Q = K = V = I)."""
    a, b = equiangular_weights(rho, beta, n)
    m = a + (n - 1.0) * b * rho
    norm2 = a * a + 2.0 * a * b * (n - 1.0) * rho + b * b * ((n - 1.0) + (n - 1.0) * (n - 2.0) * rho)
    return m, jnp.sqrt(norm2)


@functools.partial(jax.jit, static_argnames=("n", "scheme", "rtol", "atol"))
def equiangular_path(ts, beta, n, scheme: str, *, rho0=0.0, alpha=1.0, switch=1.0, rtol=1e-12, atol=1e-14):
    """(1 − ρ(t), r(t)) of the scalar equiangular reduction at times ``ts`` (ts[0] is the start, r(ts[0]) = 1).

    The state is (u, r) with u = −log(1 − ρ), which keeps relative precision of
    1 − ρ down to 1e-300 (Post-LN reaches 1e-13 by t = 15).
    """
    p = LayerNorm(Attention(beta=beta), scheme=scheme, alpha=alpha, switch=switch)
    n = float(n)

    def rhs(t, y, args):
        u, r = y
        eps = jnp.exp(-u)
        m, nA = _equiangular_moments(1.0 - eps, beta, n)
        s, rdot = speed_and_radial(t, r, m, nA, p)
        # u' = γ'_SA/(1 − γ) = 2(n − (n−1)ε)/(e^{βε} + n − 1), written in ε to avoid 1 − (1 − ε)
        return jnp.stack([2.0 * (n - (n - 1.0) * eps) / (jnp.exp(beta * eps) + n - 1.0) / s, rdot])

    ts = jnp.asarray(ts, jnp.float64)
    y0 = jnp.array([-jnp.log1p(-jnp.asarray(rho0, jnp.float64)), 1.0])
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    if scheme == "mix-ln":  # the switch is a step boundary
        controller = diffrax.ClipStepSizeController(controller, jump_ts=jnp.asarray([switch], jnp.float64))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs), diffrax.Tsit5(), ts[0], ts[-1], None, y0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=1_000_000,
    )
    return jnp.exp(-sol.ys[:, 0]), sol.ys[:, 1]
