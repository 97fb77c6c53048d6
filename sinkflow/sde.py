"""Stochastic differential equations dY = a(t, Y) dt + B(t, Y) dW in R^d or on the sphere, through diffrax.

Contract. :func:`solve_sde` takes a drift ``drift(t, y, args) -> dy/dt`` and a diffusion
``diffusion(t, y, args) -> lineax operator`` (applied to the Brownian increment, which has
the state's shape: use a ``FunctionLinearOperator`` for structured noise, O(size) instead of
a (size)² matrix), in the **Itô** sense, and integrates them with Euler–Maruyama (strong
order ½, weak order 1) at the fixed step ``dt``. Failures come back as data
(``Solution.status``, :data:`sinkflow.solve.STATUS`, which also tests the final state), never as
an exception inside a vmapped sweep.

Brownian paths, both from the explicit ``key`` (the same key gives the same numbers):

- ``brownian="tree"`` (default): a ``diffrax.VirtualBrownianTree``; the same key gives the same
  *path* at every step size, so strong and weak errors can be measured against a finer solve
  of the same path. Each step queries the tree (about log₂(T/dt) normal draws of the state's
  size), which dominates the cost of cheap drifts.
- ``brownian="steps"``: increments drawn directly, N(0, h) from ``fold_in(key, step index)``, in
  a ``lax.scan`` over the steps (no diffrax loop): several times faster (the Langevin tests), the
  same law, but another step size gives another path. Use it when no coupling across step sizes
  is needed.

Schemes (``method``, tree paths only):

- ``"euler"`` (default): Euler–Maruyama, strong order ½ (1 with additive noise), weak order 1.
- ``"shark"``: diffrax's ShARK (Foster–dos Reis–Strange 2023), for **additive** noise only (the
  diffusion may depend on t, not on the state): strong order 1.5 and weak order 2, from two drift
  evaluations per step and the space-time Lévy area of the tree. It pays where the drift is
  smooth and the noise additive (Langevin in R^d): the pf-ode-parity study measures both weak
  slopes in one run. Not for the sphere (its tangent noise is multiplicative).

Manifolds. ``manifold=None`` solves in R^d. ``manifold="sphere"`` treats the last axis as a
point of S^{d−1}: every step is followed by re-normalisation (:class:`~sinkflow.solve.ProjectedSolver`)
and saves (interpolated inside a step) are put back on the sphere. The drift and diffusion are
the caller's: for Brownian motion on S^{d−1} with generator ν Δ_S, :func:`sphere_brownian` gives
the tangent noise √(2ν) P_Y dW and its Itô correction −(d − 1)ν Y, which is radial, so after the
projection it does not change directions (it keeps |Y| in mean square, so the projection stays
an O(dt) correction).
"""

from __future__ import annotations

from typing import Callable

import diffrax
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from .precision import with_exact_matmuls
from .solve import ProjectedSolver, Solution, save_intervals, solver_code, with_finiteness
from .sphere import normalize, project_tangent

__all__ = ["solve_sde", "sphere_brownian", "MANIFOLDS", "BROWNIAN", "METHODS"]

MANIFOLDS = (None, "sphere")
BROWNIAN = ("tree", "steps")
#: scheme name → (diffrax solver, Lévy area the tree must carry); see the module docstring
METHODS = {"euler": (diffrax.Euler, diffrax.BrownianIncrement), "shark": (diffrax.ShARK, diffrax.SpaceTimeLevyArea)}


def sphere_brownian(sigma, shape, dtype):
    """Brownian motion on S^{d−1} with amplitude σ = √(2ν) (generator ν Δ_S) in Itô form: returns
    ``(ito_drift(y), diffusion(t, y, args))`` with ito_drift(y) = (d − 1)(σ²/2) y (to be *subtracted*
    from the drift) and diffusion the operator w ↦ σ(w − ⟨y, w⟩y) on states of ``shape``."""
    sigma = jnp.asarray(sigma, dtype)
    d = shape[-1]

    def ito_drift(y):
        return ((d - 1) * 0.5 * sigma * sigma) * y

    def diffusion(t, y, a):
        return lx.FunctionLinearOperator(lambda w: sigma * project_tangent(y, w), jax.ShapeDtypeStruct(y.shape, dtype))

    return ito_drift, diffusion


@with_exact_matmuls
def solve_sde(
    drift: Callable,
    diffusion: Callable,
    y0: jax.Array,
    ts,
    args,
    *,
    key,
    dt: float,
    manifold: str | None = None,
    observable: Callable | None = None,
    max_steps: int | None = None,
    brownian: str = "tree",
    method: str = "euler",
) -> Solution:
    """Euler–Maruyama (or ``method="shark"``) for dY = drift dt + diffusion dW from ``y0`` (see the module docstring).

    ``ts``: concrete, increasing save times (ts[0] the start); ``key``: the Brownian path's PRNG
    key; ``observable(t, y, args)`` is saved instead of the state if given.
    """
    ts_np = np.asarray(ts, float)
    if ts_np.ndim != 1 or ts_np.size < 2 or np.any(np.diff(ts_np) <= 0):
        raise ValueError("solve_sde needs ts as an increasing 1-D array with at least two times.")
    if not (dt > 0):
        raise ValueError(f"solve_sde needs dt > 0, got {dt!r}.")
    if manifold not in MANIFOLDS:
        raise ValueError(f"solve_sde(manifold={manifold!r}): use None (R^d) or 'sphere'.")
    if brownian not in BROWNIAN:
        raise ValueError(f"solve_sde(brownian={brownian!r}): use 'tree' (paths consistent across step sizes) or 'steps' (fast).")
    if method not in METHODS:
        raise ValueError(f"solve_sde(method={method!r}): use one of {sorted(METHODS)}.")
    if method != "euler" and (brownian != "tree" or manifold is not None):
        raise ValueError(f"solve_sde(method={method!r}) needs brownian='tree' (it uses the tree's Lévy area) and manifold=None (additive noise only).")
    if brownian == "steps":
        return _solve_steps(drift, diffusion, y0, ts_np, args, key=key, dt=dt, manifold=manifold, observable=observable)
    dtype = y0.dtype
    t0, t1 = float(ts_np[0]), float(ts_np[-1])
    scheme, levy = METHODS[method]
    bm = diffrax.VirtualBrownianTree(t0, t1, tol=dt / 4, shape=jax.ShapeDtypeStruct(y0.shape, dtype), key=key, levy_area=levy)
    terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
    if manifold == "sphere":
        solver = ProjectedSolver(diffrax.Euler(), normalize)
        # saves are interpolated inside a step from the solver's dense output: put them back on the sphere
        fn = (lambda t, y, a: normalize(y)) if observable is None else (lambda t, y, a: observable(t, normalize(y), a))
    else:
        solver = scheme()
        fn = (lambda t, y, a: y) if observable is None else observable
    steps = int(np.ceil((t1 - t0) / dt - 1e-9)) + 1 if max_steps is None else max_steps
    sol = diffrax.diffeqsolve(
        terms,
        solver,
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


def _solve_steps(drift, diffusion, y0, ts_np, args, *, key, dt, manifold, observable) -> Solution:
    """Euler–Maruyama with increments N(0, h) drawn from ``fold_in(key, step index)``: each save
    interval [t_k, t_{k+1}] is split into ⌈Δ/dt⌉ equal steps (saves need no interpolation)."""
    dtype = y0.dtype
    counts, hs = save_intervals(ts_np, dt)  # ts are strictly increasing here
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
    proj = normalize if manifold == "sphere" else (lambda y: y)
    fn = (lambda t, y, a: y) if observable is None else observable

    def interval(y, inp):
        t_start, h, m, first = inp

        def body(i, yy):
            t = t_start + i * h
            dw = jnp.sqrt(h) * jax.random.normal(jax.random.fold_in(key, first + i), yy.shape, dtype)
            return proj(yy + h * drift(t, yy, args) + diffusion(t, yy, args).mv(dw))

        y = jax.lax.fori_loop(0, m, body, y)
        return y, fn(t_start + m * h, y, args)

    xs = (jnp.asarray(ts_np[:-1], dtype), jnp.asarray(hs, dtype), jnp.asarray(counts), jnp.asarray(offsets))
    final, rest = jax.lax.scan(interval, y0, xs)
    first = fn(jnp.asarray(ts_np[0], dtype), y0, args)
    ys = jax.tree.map(lambda f, r: jnp.concatenate([f[None], r], axis=0), first, rest)
    code = jnp.array(0, jnp.int32)
    return Solution(jnp.asarray(ts_np, dtype), ys, code, with_finiteness(code, ys, final), jnp.array(int(counts.sum())), final)
