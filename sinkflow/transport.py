"""Optimal transport between token clouds: W₂, entropic maps, barycenters, the Bures geometry.

Contract. Clouds are arrays ``(n, d)`` of equally weighted points (the empirical measures
(1/n)Σδ_{x_k}) and the ground cost is the squared Euclidean distance of R^d (on the sphere:
the squared chordal distance 2 − 2⟨x, y⟩ of the embedding, so W₂ and barycenters are those of
the clouds as measures in R^d). ott-jax does the entropic work; ε is always explicit and
absolute (never ott's relative default), and every solve reports its convergence.

- :class:`OT` holds the options: ε, the Sinkhorn threshold (ott's L1 marginal error) and
  iteration cap, and the free-support barycenter's iteration cap and tolerance.
- :func:`plan`: the entropic plan P (ott :class:`~ott.solvers.linear.sinkhorn.Sinkhorn`, log
  domain) with its transport cost ⟨C, P⟩ (an upper bound of W₂², → W₂² as ε → 0).
- :func:`entropic_map`: the barycentric projection T(x_k) = n Σ_j P_kj y_j, the entropic
  estimate of the Monge map (Pooladian–Niles-Weed 2021); ``tests/test_transport.py``
  measures its convergence to the Gaussian affine map in ε and n.
- :func:`sinkhorn_divergence`: S_ε(μ, ν) = OT_ε(μ, ν) − ½OT_ε(μ, μ) − ½OT_ε(ν, ν) (ott), ≥ 0 and
  0 iff μ = ν.
- :func:`free_barycenter`: the free-support barycenter with as many points as the clouds, by
  the fixed point X̄ ← Σ_i w_i T_{X̄→i}(X̄) (Cuturi–Doucet 2014, Alg. 2; Álvarez-Esteban et al.
  2016 for its fixed-point form), started from the cloud of largest weight (the first of
  equals) or from ``init``. (Not from the index-order average of the clouds: for unordered
  clouds it collapses towards their mean, and re-expanding it took > 50 iterations, measured.)
  The problem is not convex in the support, so the start is part of the definition. Written here rather than through ott's
  ``FreeWassersteinBarycenter`` because the game's drift needs the plans *at* the returned
  barycenter (ott's output holds those of the previous iterate) and a fixed, small budget of
  iterations inside a vmapped right-hand side; each plan is still ott's Sinkhorn. Returns the
  maps T_i of every cloud onto the barycenter and W₂²(μ_i, μ̄) with convergence data.
- :func:`fixed_barycenter`: the barycenter of histograms on one common support (ott's
  ``FixedBarycenter``, debiased by default), for measures given as weights on a grid.
- :func:`pairwise_maps`: T_i = Σ_j w_j T_{i→j} from the plans between the clouds, equal to the maps
  onto the barycenter whenever optimal maps compose (1-D, commuting Gaussians), and in general the
  W₂ gradient of the Fréchet function; no fixed point, so much cheaper inside a vector field.
- :func:`sorted_barycenter`, :func:`w2_sorted`: the exact 1-D case (equal sizes): the
  monotone rearrangement is optimal, so W₂²(μ, ν) = mean (x_(k) − y_(k))², the barycenter is the
  weighted average of the sorted clouds and T_i maps x_(k) of cloud i to x̄_(k). No ε, no
  iterations: the reference for the entropic route and the backend of the 1-D game.
- Gaussians: :func:`bures_w2` (the closed form), :func:`bures_barycenter` (ott's fixed point
  S = Σ_i w_i (S^{1/2}Σ_iS^{1/2})^{1/2}), :func:`gaussian_map` (the affine Monge map
  T(x) = m₂ + A(x − m₁), A = Σ₁^{−1/2}(Σ₁^{1/2}Σ₂Σ₁^{1/2})^{1/2}Σ₁^{−1/2}).

All functions are pure and jit/vmap-able; input checks (shapes, weights) happen at trace time.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int
from ott.geometry import costs, pointcloud
from ott.problems.linear import barycenter_problem, linear_problem
from ott.solvers.linear import discrete_barycenter
from ott.solvers.linear import sinkhorn as ott_sinkhorn
from ott.tools import sinkhorn_divergence as ott_divergence

__all__ = [
    "OT",
    "Plan",
    "Barycenter",
    "plan",
    "entropic_map",
    "sinkhorn_divergence",
    "free_barycenter",
    "pairwise_maps",
    "FixedBarycenter",
    "fixed_barycenter",
    "sorted_barycenter",
    "w2_sorted",
    "bures_w2",
    "bures_barycenter",
    "gaussian_map",
    "check_weights",
]


class OT(eqx.Module):
    """Options of the entropic solves. ε is a traced leaf (an ε sweep compiles once); the rest is static."""

    epsilon: Float[Array, ""] | float = 0.05
    threshold: float = eqx.field(static=True, default=1e-4)
    max_iterations: int = eqx.field(static=True, default=10000)
    barycenter_iterations: int = eqx.field(static=True, default=10)
    barycenter_tol: float = eqx.field(static=True, default=1e-6)
    cold_iterations: int = eqx.field(static=True, default=200)

    def __check_init__(self):
        if isinstance(self.epsilon, (int, float)) and not self.epsilon > 0:
            raise ValueError(f"OT(epsilon={self.epsilon!r}): ε must be > 0 (an absolute regularisation in units of squared distance).")
        if not self.threshold > 0:
            raise ValueError(f"OT(threshold={self.threshold!r}): the Sinkhorn threshold must be > 0.")
        if int(self.max_iterations) < 1 or int(self.barycenter_iterations) < 1:
            raise ValueError("OT: max_iterations and barycenter_iterations must be ≥ 1.")


class Plan(NamedTuple):
    """An entropic plan: ``matrix`` (n, m) with marginals a, b; ``cost`` = ⟨C, P⟩; ``converged``; ``iterations``."""

    matrix: Float[Array, "n m"]
    cost: Float[Array, ""]
    converged: Bool[Array, ""]
    iterations: Int[Array, ""]


class Barycenter(NamedTuple):
    """A free-support barycenter of N clouds.

    ``x`` (n, d) its points; ``maps`` (N, n, d) the image T_i(x) of every point of cloud i on the
    barycenter; ``w2`` (N,) W₂²(μ_i, μ̄) (transport costs of the plans); ``change`` the last
    fixed-point step max|ΔX̄|; ``iterations`` taken; ``converged`` (fixed point within tolerance and
    every Sinkhorn converged).
    """

    x: Float[Array, "n d"]
    maps: Float[Array, "N n d"]
    w2: Float[Array, " N"]
    change: Float[Array, ""]
    iterations: Int[Array, ""]
    converged: Bool[Array, ""]


def _check_cloud(name: str, x) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} must be a cloud of shape (n, d), got shape {x.shape}.")


def check_weights(weights, N: int) -> None:
    """Refuse barycentric weights that are not N non-negative numbers summing to 1 (concrete inputs only)."""
    try:
        w = np.asarray(weights, float)
    except (TypeError, jax.errors.TracerArrayConversionError):
        return  # traced: checked by the caller at the boundary
    if w.shape != (N,):
        raise ValueError(f"weights must have shape ({N},) (one per cloud), got {w.shape}.")
    if np.any(w < 0) or not abs(w.sum() - 1.0) < 1e-9:
        raise ValueError(f"weights must be non-negative and sum to 1, got {w.tolist()} (sum {w.sum():.6g}).")


def plan(x: Float[Array, "n d"], y: Float[Array, "m d"], ot: OT = OT()) -> Plan:
    """Entropic OT plan between the uniform clouds x and y for the cost |x − y|² at ε = ``ot.epsilon``."""
    _check_cloud("x", x)
    _check_cloud("y", y)
    geom = pointcloud.PointCloud(x, y, epsilon=ot.epsilon, relative_epsilon=None)
    out = ott_sinkhorn.Sinkhorn(threshold=ot.threshold, max_iterations=ot.max_iterations)(linear_problem.LinearProblem(geom))
    P = out.matrix
    cost = jnp.sum(P * geom.cost_matrix)
    return Plan(P, cost, out.converged, out.n_iters)


def entropic_map(x: Float[Array, "n d"], y: Float[Array, "m d"], ot: OT = OT()) -> tuple[Float[Array, "n d"], Plan]:
    """The barycentric projection T(x_k) = Σ_j P_kj y_j / Σ_j P_kj of the entropic plan from x to y, and the plan."""
    p = plan(x, y, ot)
    T = (p.matrix @ y) / jnp.sum(p.matrix, axis=1, keepdims=True)
    return T, p


def sinkhorn_divergence(x: Float[Array, "n d"], y: Float[Array, "m d"], ot: OT = OT(), a: Float[Array, " n"] | None = None, b: Float[Array, " m"] | None = None) -> Float[Array, ""]:
    """The debiased Sinkhorn divergence S_ε(μ, ν) (ott) of μ = Σa_kδ_{x_k}, ν = Σb_lδ_{y_l} (uniform when a, b are
    None), in units of squared distance."""
    _check_cloud("x", x)
    _check_cloud("y", y)
    out = ott_divergence.sinkhorn_divergence(
        pointcloud.PointCloud,
        x,
        y,
        a=a,
        b=b,
        epsilon=ot.epsilon,
        relative_epsilon=None,
        solve_kwargs={"threshold": ot.threshold, "max_iterations": ot.max_iterations},
    )
    div = out[0] if isinstance(out, tuple) else out.divergence
    return div


def _average(clouds: Float[Array, "N n d"], weights: Float[Array, " N"]) -> Float[Array, "n d"]:
    return jnp.tensordot(weights, clouds, axes=1)


def free_barycenter(
    clouds: Float[Array, "N n d"],
    weights: Float[Array, " N"],
    ot: OT = OT(),
    init: Float[Array, "n d"] | None = None,
) -> Barycenter:
    """Free-support entropic W₂ barycenter of N clouds of n points (see the module docstring)."""
    if clouds.ndim != 3:
        raise ValueError(f"clouds must have shape (N, n, d), got {clouds.shape}.")
    N = clouds.shape[0]
    check_weights(weights, N)
    weights = jnp.asarray(weights, clouds.dtype)
    x0 = clouds[jnp.argmax(weights)] if init is None else init

    def plans(xb):
        return jax.vmap(lambda y: plan(xb, y, ot))(clouds)  # rows: barycenter points, columns: cloud points

    def update(xb):
        ps = plans(xb)
        # T_{X̄→i}(x̄_j) = n Σ_k P_jk y_k (uniform marginals, rows sum to 1/n)
        images = jnp.einsum("inm,imd->ind", ps.matrix, clouds) * xb.shape[0]
        return _average(images, weights), ps

    def cond(state):
        _, change, it = state
        return (it < ot.barycenter_iterations) & (change > ot.barycenter_tol)

    def body(state):
        xb, _, it = state
        new, _ = update(xb)
        return new, jnp.max(jnp.abs(new - xb)), it + 1

    big = jnp.asarray(jnp.inf, clouds.dtype)
    xb, change, it = jax.lax.while_loop(cond, body, (x0, big, jnp.asarray(0, jnp.int32)))
    ps = plans(xb)
    # the map of cloud i onto the barycenter: T_i(y_k) = n Σ_j P_jk x̄_j (columns sum to 1/n)
    maps = jnp.einsum("inm,nd->imd", ps.matrix, xb) * clouds.shape[1]
    converged = (change <= ot.barycenter_tol) & jnp.all(ps.converged)
    return Barycenter(xb, maps, ps.cost, change, it, converged)


def pairwise_maps(clouds: Float[Array, "N n d"], weights: Float[Array, " N"], ot: OT = OT()) -> Barycenter:
    """The barycenter maps without the barycenter: T_i = Σ_j w_j T_{i→j} from the N(N−1)/2 entropic plans between the clouds.

    If the optimal maps compose (T_{i→j} = T_{μ̄→j}∘T_{i→μ̄}: every 1-D problem, Gaussians with commuting
    covariances), the barycenter's fixed point X̄ = Σ_j w_j T_{μ̄→j}(X̄) gives Σ_j w_j T_{i→j} = T_{i→μ̄} exactly;
    in general T_i − id is the W₂ gradient of −½Σ_j w_j W₂²(·, μ_j) at μ_i, whose zero set is consensus.
    No fixed point, so N(N−1)/2 Sinkhorn solves in place of (iterations + 1)·N. ``x`` is the image of the
    cloud of largest weight, ``w2`` the mean |T_i(x) − x|² (W₂²(μ_i, μ̄) when the maps compose).
    """
    if clouds.ndim != 3:
        raise ValueError(f"clouds must have shape (N, n, d), got {clouds.shape}.")
    N, n = clouds.shape[:2]
    check_weights(weights, N)
    weights = jnp.asarray(weights, clouds.dtype)
    I, J = np.triu_indices(N, 1)
    ps = jax.vmap(lambda x, y: plan(x, y, ot))(clouds[I], clouds[J])
    fwd = jnp.einsum("pkl,pld->pkd", ps.matrix, clouds[J]) * n  # T_{I→J}(x_I)
    bwd = jnp.einsum("pkl,pkd->pld", ps.matrix, clouds[I]) * n  # T_{J→I}(x_J)
    maps = clouds * weights[:, None, None]  # the j = i term: w_i·id
    maps = maps.at[I].add(weights[J][:, None, None] * fwd)
    maps = maps.at[J].add(weights[I][:, None, None] * bwd)
    w2 = jnp.mean(jnp.sum((maps - clouds) ** 2, axis=-1), axis=-1)
    zero = jnp.zeros((), clouds.dtype)
    return Barycenter(maps[jnp.argmax(weights)], maps, w2, zero, jnp.asarray(0, jnp.int32), jnp.all(ps.converged))


class FixedBarycenter(NamedTuple):
    """A fixed-support barycenter: ``histogram`` (m,) on the given support, its ``error`` (ott's marginal violation), ``converged``."""

    histogram: Float[Array, " m"]
    error: Float[Array, ""]
    converged: Bool[Array, ""]


def fixed_barycenter(
    histograms: Float[Array, "N m"], support: Float[Array, "m d"], weights: Float[Array, " N"], ot: OT = OT(), *, debiased: bool = True
) -> FixedBarycenter:
    """The entropic W₂ barycenter of N histograms on one support (ott's ``FixedBarycenter``, Janati et al. 2020;
    ``debiased`` removes the entropic blur). Converged when ott's marginal violation ≤ ``ot.threshold``."""
    _check_cloud("support", support)
    if histograms.ndim != 2 or histograms.shape[1] != support.shape[0]:
        raise ValueError(f"histograms must have shape (N, m) with m = {support.shape[0]} support points, got {histograms.shape}.")
    N = histograms.shape[0]
    check_weights(weights, N)
    geom = pointcloud.PointCloud(support, support, epsilon=ot.epsilon, relative_epsilon=None)
    problem = barycenter_problem.FixedBarycenterProblem(geom, histograms, jnp.asarray(weights, histograms.dtype))
    out = discrete_barycenter.FixedBarycenter(threshold=ot.threshold, max_iterations=ot.max_iterations, debiased=debiased)(problem)
    errs = out.errors
    last = jnp.min(jnp.where(errs >= 0, errs, jnp.inf))
    return FixedBarycenter(out.histogram, last, last <= ot.threshold)


def sorted_barycenter(clouds: Float[Array, "N n 1"], weights: Float[Array, " N"]) -> Barycenter:
    """The exact W₂ barycenter of N 1-D clouds of n points: the weighted average of the sorted clouds."""
    if clouds.ndim != 3 or clouds.shape[-1] != 1:
        raise ValueError(f"sorted_barycenter takes 1-D clouds of shape (N, n, 1), got {clouds.shape}.")
    N = clouds.shape[0]
    check_weights(weights, N)
    weights = jnp.asarray(weights, clouds.dtype)
    order = jnp.argsort(clouds[..., 0], axis=1)
    srt = jnp.take_along_axis(clouds[..., 0], order, axis=1)  # (N, n)
    xb = weights @ srt  # (n,)
    ranks = jnp.argsort(order, axis=1)
    maps = xb[ranks][..., None]  # point k of cloud i ↦ x̄ at its rank
    w2 = jnp.mean((srt - xb) ** 2, axis=1)
    zero = jnp.zeros((), clouds.dtype)
    return Barycenter(xb[:, None], maps, w2, zero, jnp.asarray(0, jnp.int32), jnp.asarray(True))


def w2_sorted(x: Float[Array, "n 1"], y: Float[Array, "n 1"]) -> Float[Array, ""]:
    """Exact W₂² between two 1-D clouds of equal size (monotone rearrangement)."""
    if x.shape != y.shape or x.ndim != 2 or x.shape[-1] != 1:
        raise ValueError(f"w2_sorted takes two 1-D clouds of equal shape (n, 1), got {x.shape} and {y.shape}.")
    return jnp.mean((jnp.sort(x[:, 0]) - jnp.sort(y[:, 0])) ** 2)


def _sqrtm(S):
    """Symmetric PSD square root by an eigendecomposition (exact to round-off; d is small here)."""
    w, V = jnp.linalg.eigh(0.5 * (S + jnp.swapaxes(S, -1, -2)))
    return (V * jnp.sqrt(jnp.clip(w, 0.0))[..., None, :]) @ jnp.swapaxes(V, -1, -2)


def bures_w2(m1: Float[Array, " d"], S1: Float[Array, "d d"], m2: Float[Array, " d"], S2: Float[Array, "d d"]) -> Float[Array, ""]:
    """W₂²(N(m₁, S₁), N(m₂, S₂)) = |m₁ − m₂|² + tr S₁ + tr S₂ − 2 tr (S₁^{1/2}S₂S₁^{1/2})^{1/2}.

    The closed form with eigendecomposition square roots: ott's ``costs.Bures`` agrees to 1e-15 at d = 2
    but fails on d = 1 inputs (ott 0.6), and its iterative square roots stop near 1e-8."""
    r = _sqrtm(S1)
    return jnp.sum((m1 - m2) ** 2) + jnp.trace(S1) + jnp.trace(S2) - 2.0 * jnp.trace(_sqrtm(r @ S2 @ r))


def bures_barycenter(
    means: Float[Array, "N d"], covs: Float[Array, "N d d"], weights: Float[Array, " N"], *, tol: float = 1e-10, max_iterations: int = 500
) -> tuple[Float[Array, " d"], Float[Array, "d d"]]:
    """The W₂ barycenter N(Σw_im_i, S) of Gaussians, S the fixed point of S = Σ_i w_i (S^{1/2}Σ_iS^{1/2})^{1/2} (ott)."""
    N, d = means.shape
    check_weights(weights, N)
    cost = costs.Bures(d)
    xs = jnp.concatenate([means, covs.reshape(N, d * d)], axis=1)
    bar, _ = cost.barycenter(jnp.asarray(weights, means.dtype), xs, tolerance=tol, max_iterations=max_iterations)
    return bar[:d], bar[d:].reshape(d, d)


def gaussian_map(m1: Float[Array, " d"], S1: Float[Array, "d d"], m2: Float[Array, " d"], S2: Float[Array, "d d"]) -> tuple[Float[Array, "d d"], Float[Array, " d"]]:
    """The Monge map between N(m₁, S₁) and N(m₂, S₂): T(x) = A x + c, returned as (A, c)."""
    r1 = _sqrtm(S1)
    r1_inv = jnp.linalg.inv(r1)
    A = r1_inv @ _sqrtm(r1 @ S2 @ r1) @ r1_inv
    A = 0.5 * (A + A.T)
    return A, m2 - A @ m1
