"""Langevin dynamics dX = −∇U(X) dt + √(2ν) dW in R^d or on S^{d−1} (MATH.md §4).

Potentials are equinox modules whose array leaves are traced (a sweep over θ, a or ν is one
compile); each is evaluated per particle, ``U(x)`` for ``x`` of shape ``(d,)``, and its gradient
comes from :func:`jax.grad`, so a new potential is a module with a ``__call__``:

- :class:`Quadratic` U = ½(x − m)ᵀA(x − m) (A symmetric; A = θI is Ornstein–Uhlenbeck);
- :class:`Linear` U = −⟨a, x⟩ (on the sphere its Gibbs law is von Mises–Fisher with κ = |a|/ν);
- :class:`DoubleWell` U = h(x₁² − 1)² + ½Σ_{k≥2} x_k²;
- :class:`Features` U = cᵀx + ½xᵀQx + Σ_j w_j max(0, v_jᵀx + b_j)²/2 — affine, quadratic and
  ReLU-convex terms (convex for Q ⪰ 0, w ≥ 0), the feature map a fitted potential lives in.

:func:`drift` is −∇U on particle arrays ``(..., n, d)`` (projected to the tangent space on the
sphere); :func:`solve_langevin` integrates with :func:`sinkflow.sde.solve_sde` (Euler–Maruyama,
explicit key). On the sphere the noise is :func:`sinkflow.sde.sphere_brownian` with its Itô
correction. The interacting (McKean–Vlasov) case, where the drift depends on the empirical
measure, is the same solver with an interaction field: the noisy attention dynamics
(:mod:`sinkflow.dynamics.noisy`) are Langevin dynamics of the interaction energy on the sphere.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float

from ..sde import solve_sde, sphere_brownian
from ..solve import Solution
from ..sphere import project_tangent

__all__ = ["Quadratic", "Linear", "DoubleWell", "Features", "drift", "solve_langevin"]


class Quadratic(eqx.Module):
    """U(x) = ½(x − m)ᵀA(x − m); A symmetric (checked on concrete values)."""

    A: Float[Array, "d d"]
    m: Float[Array, " d"]

    def __check_init__(self):
        A = self.A
        if not isinstance(A, jax.core.Tracer) and not bool(jnp.allclose(A, jnp.swapaxes(A, -1, -2))):
            raise ValueError("Quadratic(A, m): A must be symmetric (only the symmetric part of A is a potential's Hessian).")

    def __call__(self, x):
        y = x - self.m
        return 0.5 * y @ (self.A @ y)


class Linear(eqx.Module):
    """U(x) = −⟨a, x⟩."""

    a: Float[Array, " d"]

    def __call__(self, x):
        return -jnp.dot(self.a, x)


class DoubleWell(eqx.Module):
    """U(x) = h(x₁² − 1)² + ½Σ_{k≥2} x_k²: wells at x₁ = ±1, barrier h."""

    h: Float[Array, ""]

    def __call__(self, x):
        return self.h * (x[0] ** 2 - 1.0) ** 2 + 0.5 * jnp.sum(x[1:] ** 2)


class Features(eqx.Module):
    """U(x) = cᵀx + ½xᵀQx + Σ_j w_j max(0, v_jᵀx + b_j)²/2 (V: (k, d), b, w: (k,))."""

    c: Float[Array, " d"]
    Q: Float[Array, "d d"]
    V: Float[Array, "k d"]
    b: Float[Array, " k"]
    w: Float[Array, " k"]

    def __call__(self, x):
        relu = jnp.maximum(0.0, self.V @ x + self.b)
        return self.c @ x + 0.5 * x @ (self.Q @ x) + 0.5 * jnp.sum(self.w * relu**2)


def drift(potential: Callable, x: Float[Array, "... d"], *, manifold: str | None = None) -> Float[Array, "... d"]:
    """−∇U at every particle of ``x`` (any leading axes); on the sphere its tangent part P_x(−∇U)."""
    g = jnp.vectorize(jax.grad(potential), signature="(d)->(d)")(x)
    return project_tangent(x, -g) if manifold == "sphere" else -g


def solve_langevin(
    potential: Callable,
    x0: Float[Array, "... d"],
    ts,
    *,
    nu,
    key,
    dt: float,
    manifold: str | None = None,
    observable: Callable | None = None,
    brownian: str = "tree",
    method: str = "euler",
) -> Solution:
    """Euler–Maruyama (``method="shark"``: ShARK, R^d and tree paths only) for dX = −∇U dt + √(2ν) dW from ``x0`` (particles on the last axis but one),
    in R^d or (``manifold="sphere"``) on S^{d−1}. ``nu`` ≥ 0 may be traced; ``observable(t, x, potential)``
    is saved instead of the particles if given; ``brownian`` as in :func:`sinkflow.sde.solve_sde`."""
    dtype = x0.dtype
    nu = jnp.asarray(nu, dtype)
    sigma = jnp.sqrt(2.0 * nu)
    if manifold == "sphere":
        ito, diffusion = sphere_brownian(sigma, x0.shape, dtype)

        def f(t, x, U):
            return drift(U, x, manifold="sphere") - ito(x)

    else:

        def diffusion(t, x, U):
            # a diagonal operator (not a FunctionLinearOperator): ShARK vmaps the diffusion over times
            return lx.DiagonalLinearOperator(jnp.broadcast_to(sigma, x.shape))

        def f(t, x, U):
            return drift(U, x)

    return solve_sde(f, diffusion, x0, ts, potential, key=key, dt=dt, manifold=manifold, observable=observable, brownian=brownian, method=method)
