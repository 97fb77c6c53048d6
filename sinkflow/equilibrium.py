"""Equilibria of differential games among token clouds, by a damped forward–backward sweep.

Contract. N players, player i's particles X_i (any shape (n, …) per player, stacked as X of shape
(N, n, …)) follow Ẋ_i = f_i(X_i) + u_i on [0, T] from X(0), and player i minimises

    J_i(u) = ∫₀ᵀ ( ½·mean_k |u_ik|² + c_i(X) ) dt,

with ``cost(X) -> (N,)`` the running state costs (e.g. (b/2)·W₂²(μ_i, μ̄), through
:mod:`sinkflow.transport`, so that player i's own effect on the barycenter is part of its
gradient). An open-loop Nash equilibrium satisfies the Pontryagin system (seed 001 eqs. 3–5
without noise; :mod:`sinkflow.theory.game` derives the LQ case)::

    Ẋ_i = f_i(X_i) + u_i,   Ẏ_i = −n·∂_{X_i}c_i(X) − (∂f_i)ᵀY_i,   Y_i(T) = 0,   u_i = −Y_i,

(n the particles per player: the mean in J_i puts 1/n on each particle's control). The sweep
iterates U ← (1 − θ)U + θ·(−Y[X[U]]): a forward Heun pass with the current controls on the time
grid, a backward Heun pass of the adjoint (vector–Jacobian products by autodiff), then a damped
best response. It is a Picard iteration of the forward–backward system (fictitious play with
inertia θ); for the LQ game the undamped map U ↦ −Y[X[U]] is linear, symmetric and negative
with spectrum in [−L, 0], L = c(2T/π)² (c the Riccati constant), so θ = 2/(2 + L) contracts by
L/(2 + L) per sweep (:func:`lq_damping`). With f = 0 both passes are the trapezoid rule and the
discrete equilibrium is the Crank–Nicolson discretisation of the Pontryagin system: second order
in the time step (tested as a slope). Stops when max|ΔU| ≤ ``tol``·max(1, max|U|).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["Equilibrium", "forward_backward", "lq_damping", "feedback_gain"]


class Equilibrium(NamedTuple):
    """``ts`` (K+1,); ``X`` and ``U`` (K+1, N, n, …) states and controls; ``Y`` adjoints; ``J`` (N,) costs
    (trapezoid rule); ``iterations``; ``residual`` the last relative max|ΔU|; ``converged``."""

    ts: np.ndarray
    X: Array
    U: Array
    Y: Array
    J: Array
    iterations: Array
    residual: Array
    converged: Array


def lq_damping(c: float, T: float) -> float:
    """The contracting damping θ = 2/(2 + c(2T/π)²) of the LQ sweep (module docstring)."""
    return 2.0 / (2.0 + c * (2.0 * T / np.pi) ** 2)


def _own_gradients(cost: Callable, X):
    """∂_{X_i} c_i(X) for every i: the diagonal blocks of the Jacobian of ``cost``."""
    N = X.shape[0]
    jac = jax.jacrev(cost)(X)  # (N, N, n, …)
    return jac[jnp.arange(N), jnp.arange(N)]


def forward_backward(
    cost: Callable,
    X0: Float[Array, "N n ..."],
    T: float,
    steps: int,
    *,
    drift: Callable | None = None,
    damping: float = 0.5,
    tol: float = 1e-10,
    max_iterations: int = 500,
    U0=None,
) -> Equilibrium:
    """Open-loop Nash equilibrium of the game (module docstring) on ``steps`` equal steps of [0, T].

    ``drift(X) -> (N, n, …)`` stacks the players' own fields f_i(X_i) (None: f = 0).
    """
    if X0.ndim < 2 or X0.shape[0] < 2:
        raise ValueError(f"X0 must stack N ≥ 2 players' particles, shape (N, n, …); got {X0.shape}.")
    if not (T > 0 and int(steps) >= 1):
        raise ValueError(f"forward_backward needs T > 0 and steps ≥ 1, got T={T}, steps={steps}.")
    if not 0 < damping <= 1:
        raise ValueError(f"damping θ must lie in (0, 1], got {damping}.")
    K = int(steps)
    h = T / K
    n = X0.shape[1]
    f = (lambda X: jnp.zeros_like(X)) if drift is None else drift

    def forward(U):
        def body(X, u):
            u0, u1 = u
            k1 = f(X) + u0
            k2 = f(X + h * k1) + u1
            Xn = X + 0.5 * h * (k1 + k2)
            return Xn, Xn

        _, Xs = jax.lax.scan(body, X0, (U[:-1], U[1:]))
        return jnp.concatenate([X0[None], Xs], axis=0)

    def adjoint_rhs(X, Y):
        g = n * _own_gradients(cost, X)
        _, vjp = jax.vjp(f, X)
        return -(g + vjp(Y)[0])

    def backward(Xs):
        def body(Y, x):
            x1, x0 = x  # later and earlier grid states
            k1 = adjoint_rhs(x1, Y)
            k2 = adjoint_rhs(x0, Y - h * k1)
            Yn = Y - 0.5 * h * (k1 + k2)
            return Yn, Yn

        YT = jnp.zeros_like(X0)
        _, Ys = jax.lax.scan(body, YT, (Xs[1:][::-1], Xs[:-1][::-1]))
        return jnp.concatenate([Ys[::-1], YT[None]], axis=0)

    def sweep(U):
        Xs = forward(U)
        Ys = backward(Xs)
        return (1.0 - damping) * U + damping * (-Ys), Xs, Ys

    def cond(state):
        _, it, res = state
        return (it < max_iterations) & (res > tol)

    def body(state):
        U, it, _ = state
        Un, _, _ = sweep(U)
        res = jnp.max(jnp.abs(Un - U)) / jnp.maximum(1.0, jnp.max(jnp.abs(Un)))
        return Un, it + 1, res

    U_init = jnp.zeros((K + 1,) + X0.shape, X0.dtype) if U0 is None else U0
    U, it, res = jax.lax.while_loop(cond, body, (U_init, jnp.asarray(0, jnp.int32), jnp.asarray(jnp.inf, X0.dtype)))
    Xs = forward(U)
    Ys = backward(Xs)
    reduce = tuple(range(2, U.ndim))
    run = 0.5 * jnp.mean(U * U, axis=reduce) * (U[0, 0].size / n) + jax.vmap(cost)(Xs)  # (K+1, N); mean over particles of |u|²
    J = h * (jnp.sum(run, axis=0) - 0.5 * (run[0] + run[-1]))
    return Equilibrium(np.linspace(0.0, T, K + 1), Xs, U, Ys, J, it, res, res <= tol)


def feedback_gain(U: Float[Array, "t N n ..."], E: Float[Array, "t N n ..."]) -> Float[Array, " t"]:
    """The least-squares feedback gain P̂(t) = −⟨U, E⟩/⟨E, E⟩ over players and particles (E = X − x̄, the gaps)."""
    axes = tuple(range(1, U.ndim))
    return -jnp.sum(U * E, axis=axes) / jnp.sum(E * E, axis=axes)
