"""Noisy tokens: attention dynamics with Brownian motion on the sphere (MF §7; MATH.md §1).

    dX_i = P_{X_i}(f_i(X)) dt + √(2/κ) ∘ P_{X_i} dW_i      (Stratonovich)

is Brownian motion on S^{d−1} with generator κ^{-1}Δ_S plus the attention drift; its
forward equation is ∂_tμ = κ^{-1}Δμ − ∇·(μ v[μ]) (MATH.md notes MF's printed signs are
flipped). It is the McKean–Vlasov instance of Langevin dynamics on the sphere: the drift
depends on the empirical measure through the attention weights. :func:`solve_noisy` is
:func:`sinkflow.sde.solve_sde` on the sphere with ν = 1/κ and the noise and Itô correction of
:func:`sinkflow.sde.sphere_brownian`, in the equivalent Itô form

    dX = [P_X f(X) − ((d−1)/κ) X] dt + √(2/κ) P_X dW.

The noise is tangent by construction and the projection keeps |X_i| = 1 exactly (tested).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ..sde import solve_sde, sphere_brownian
from ..solve import Solution

__all__ = ["solve_noisy"]


def solve_noisy(
    field: Callable,
    y0: jax.Array,
    ts,
    args,
    *,
    kappa,
    key,
    dt: float,
    observable: Callable | None = None,
    max_steps: int | None = None,
    brownian: str = "tree",
) -> Solution:
    """Projected Euler–Maruyama for the noisy attention dynamics on the sphere (see the module docstring).

    ``field(t, x, args)``: the tangent drift (e.g. :func:`~sinkflow.dynamics.attention.attention_field`);
    ``y0``: (..., n, d) unit vectors; ``ts``: concrete save times (ts[0] the start);
    ``kappa`` > 0 may be traced (κ = ∞ gives the deterministic projected Euler scheme); ``key``: the
    Brownian path's PRNG key; ``brownian`` as in :func:`sinkflow.sde.solve_sde`.
    """
    dtype = y0.dtype
    d = y0.shape[-1]
    kappa = jnp.asarray(kappa, dtype)
    _, diffusion = sphere_brownian(jnp.sqrt(2.0 / kappa), y0.shape, dtype)

    def drift(t, y, a):
        # sphere_brownian's Itô drift (d − 1)(σ²/2)y with σ² = 2/κ, written in κ: the same
        # floating-point operations as the solver this one replaced, so results are bitwise equal
        return field(t, y, a) - ((d - 1) / kappa) * y

    return solve_sde(drift, diffusion, y0, ts, args, key=key, dt=dt, manifold="sphere", observable=observable, max_steps=max_steps, brownian=brownian)
