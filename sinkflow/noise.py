"""Noisy tokens: SDEs on the sphere (MF §7; MATH.md §1).

    dX_i = P_{X_i}(f_i(X)) dt + √(2/κ) ∘ P_{X_i} dW_i      (Stratonovich)

is Brownian motion on S^{d−1} with generator κ^{-1}Δ_S plus the attention drift;
its forward equation is ∂_tμ = κ^{-1}Δμ − ∇·(μ v[μ]) (MATH.md notes MF's printed
signs are flipped). :func:`solve_sde` integrates the equivalent Itô form

    dX = [P_X f(X) − ((d−1)/κ) X] dt + √(2/κ) P_X dW

with diffrax: a ``MultiTerm`` of the drift and a ``ControlTerm`` whose vector
field is a lineax ``FunctionLinearOperator`` w ↦ √(2/κ)(w − ⟨X, w⟩X) (O(nd), no
(nd)² matrix), driven by a ``VirtualBrownianTree`` built from an explicit key
(so the same key gives the same Brownian path at every step size: strong and
weak convergence can be measured), stepped by Euler–Maruyama and wrapped in
:class:`sinkflow.solve.ProjectedSolver`, which renormalises every token after
each step. The noise is tangent by construction and the projection keeps
|X_i| = 1 exactly (tested); the Itô correction −((d−1)/κ)X is radial, so after
renormalisation it does not change directions (it makes the unprojected SDE
preserve |X| in mean-square, which keeps the projection an O(dt) correction).
"""

from __future__ import annotations

from typing import Callable

import diffrax
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from .precision import with_exact_matmuls
from .solve import ProjectedSolver, Solution, solver_code, with_finiteness
from .sphere import normalize, project_tangent

__all__ = ["solve_sde", "order_parameter", "kuramoto_branch"]


@with_exact_matmuls
def solve_sde(
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
) -> Solution:
    """Projected Euler–Maruyama for the noisy attention dynamics on the sphere (see the module docstring).

    ``y0``: (..., n, d) unit vectors; ``ts``: concrete save times (ts[0] the start);
    ``kappa`` > 0 may be traced; ``key``: the Brownian path's PRNG key.
    """
    ts_np = np.asarray(ts, float)
    if ts_np.ndim != 1 or ts_np.size < 2 or np.any(np.diff(ts_np) <= 0):
        raise ValueError("solve_sde needs ts as an increasing 1-D array with at least two times.")
    if not (dt > 0):
        raise ValueError(f"solve_sde needs dt > 0, got {dt!r}.")
    d = y0.shape[-1]
    dtype = y0.dtype
    kappa = jnp.asarray(kappa, dtype)
    sigma = jnp.sqrt(2.0 / kappa)

    def drift(t, y, a):
        return field(t, y, a) - ((d - 1) / kappa) * y

    def diffusion(t, y, a):
        return lx.FunctionLinearOperator(lambda w: sigma * project_tangent(y, w), jax.ShapeDtypeStruct(y.shape, dtype))

    t0, t1 = float(ts_np[0]), float(ts_np[-1])
    bm = diffrax.VirtualBrownianTree(t0, t1, tol=dt / 4, shape=jax.ShapeDtypeStruct(y0.shape, dtype), key=key)
    terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
    # saves are interpolated inside a step from the solver's dense output: put them back on the sphere
    fn = (lambda t, y, a: normalize(y)) if observable is None else (lambda t, y, a: observable(t, normalize(y), a))
    steps = int(np.ceil((t1 - t0) / dt - 1e-9)) + 1 if max_steps is None else max_steps
    sol = diffrax.diffeqsolve(
        terms,
        ProjectedSolver(diffrax.Euler(), normalize),
        t0=t0,
        t1=t1,
        dt0=dt,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(ts=jnp.asarray(ts_np, dtype), fn=fn),
        stepsize_controller=diffrax.ConstantStepSize(),
        max_steps=steps,
        throw=False,
    )
    code = solver_code(sol.result)
    return Solution(sol.ts, sol.ys, code, with_finiteness(code, sol.ys), sol.stats["num_accepted_steps"])


def order_parameter(x: jax.Array) -> jax.Array:
    """r = |(1/n) Σ_i x_i| for tokens ``(..., n, d)``."""
    return jnp.linalg.norm(jnp.mean(x, axis=-2), axis=-1)


def kuramoto_branch(kappa: float, *, tol: float = 1e-14) -> float:
    """The synchronised branch r = I₁(κr)/I₀(κr) of the noisy Kuramoto model (β = 0, d = 2); 0 for κ ≤ 2.

    Solved by bisection on g(r) = I₁(κr)/I₀(κr) − r over (0, 1): g > 0 near 0⁺ iff κ > 2 and g(1) < 0.
    """
    from scipy.special import i0e, i1e

    if kappa <= 2.0:
        return 0.0

    def g(r):
        return i1e(kappa * r) / i0e(kappa * r) - r

    lo, hi = 1e-9, 1.0
    if g(lo) <= 0:  # κ barely above 2: the branch is within 1e-9 of 0
        return 0.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)
