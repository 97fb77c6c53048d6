"""Transport diagnostics of attention trajectories (seed 003, P0–P4; MATH.md §6).

Attention rows are probability vectors p = softmax(z) over the keys; a trajectory gives one
row per (layer, query). The diagnostics read where the continuous-depth (PF-ODE) picture of a
trajectory holds and where it breaks.

Mobility (the softmax Jacobian). J(p) = Diag(p) − ppᵀ = ∂softmax/∂z: symmetric PSD, J1 = 0,

- :func:`mobility_stats` per row, never forming J: tr J = 1 − ‖p‖², ‖J‖_F² = Σp² + (Σp²)² − 2Σp³
  and ‖J‖_op, the largest root of the secular equation Σ_i p_i²/(p_i − λ) = 1 (rank-one
  downdate of Diag(p); it lies between the two largest p_i), found by bisection. ‖J‖_op ≤ ½ with
  equality at p = (½, ½, 0, …) (seed 003 App. J.2 prints ¼; its own main text says ½: ½ is right).
- :func:`mobility` forms J for row blocks where a spectrum is wanted (:func:`jax.numpy.linalg.eigvalsh`).
- Temperature law: J^τ(z) = ∂softmax(z/τ)/∂z = τ⁻¹J(softmax(z/τ)) (tested with ``jax.jacfwd``).

P0, bounded variation (:func:`bv_statistics`, numpy, accumulated in float64 whatever the input):
per layer ‖Δz^{(l)}‖₂² and ‖Δz^{(l)}‖_∞ of the logits, S_L = Σ_l ‖Δz^{(l)}‖₂² and
Ξ_L = α₁ max_l ‖Δz‖_∞ + α₂ Σ_l ‖Δz‖_∞²; :func:`detect_bv_violations` is seed 003 App. K
Algorithm 1 verbatim (window W of ‖Δz‖₂, local mean of squares against τ₀(1 + 0.1·std/mean),
severity, s > 2 "segment") and :func:`segment_depth` its K.2 segmentation (violations within
3 layers clustered; segments at least 5 layers long).

P2, locking (:func:`locking_constant`, :func:`locking_ratio`). To first order
‖softmax(z + Δz) − softmax(z)‖₁ = ‖JΔz‖₁ = Σ_i p_i|Δz_i − ⟨p, Δz⟩| ≤ c(δ)‖Δz‖_∞ with δ = 1 − max p
the tail mass and the sharp constant c(δ) = 4δ(1 − δ) for δ ≤ ½, 1 for δ ≥ ½ (derived: the mean
absolute deviation of a variable in [−a, a] with an atom of mass 1 − δ is largest for two atoms
at ±a; attained by p = (1 − δ, δ), Δz = (−a, a)). Seed 003 and MATH.md state min{1, 2δ} for the
ℓ₁ norm: that is off by a factor 2 (p = (0.9, 0.1) gives 0.36 against 0.2); it holds for the
total variation ½‖·‖₁.

P3, curvature (:func:`ollivier_curvature`): κ(i, i') = 1 − W₁(P_i, P_i')/d(i, i') between attention
rows i, i' with the token distances as ground cost (Ollivier–Ricci), W₁ by ott-jax's Sinkhorn at
a small ε on the full support (softmax rows have full support; masked rows share the mask's).

P3, EVI surrogate (:func:`evi_surrogate`, seed 003 eq. 22 and Fig. 7): each attention row is a
measure ρ_i^{(ℓ)} = Σ_j P_ij^{(ℓ)} δ_{x_j^{(ℓ)}} on the tokens of its layer; the surrogate is the
debiased Sinkhorn divergence S_ε(ρ_i^{(ℓ)}, ρ_i^{(L)}) to the last layer's row (ott-jax, through
:func:`sinkflow.transport.sinkhorn_divergence`), whose decrease across layers is the
"proximal progress" signature of the discrete EVI. The seed gives no objective F_i or drift term
Δ_drift for attention flows, so eq. 22 itself is not testable here; the surrogate is reported.

P4, rotational energy (:func:`rotational_energy`, seed 003 Thm 7.2 with b_R = 0, a = aI or a tensor): the
weighted least-squares Hodge split of a velocity field sampled at particles against gradients of
polynomials, R = Σ_kw_k (u_k − a∇θ(x_k))ᵀa⁻¹(u_k − a∇θ(x_k)) at the best θ (a a scalar, or in R^d a
constant or per-particle SPD tensor).

P4, rotation (:func:`rotational_fraction`): a tangent field u on the configuration manifold
(S^{d−1})^n is a Riemannian gradient iff its covariant derivative A = P·Du·P (P the
block-diagonal tangent projection, Du the ambient Jacobian) is symmetric; the fraction
‖A − Aᵀ‖_F/‖A + Aᵀ‖_F is 0 for USA with V = I (Ẋ = n∇E_β), for SA at n = 2, and > 0 for SA at
n ≥ 3 — a local curl, exact to round-off, where the seed's R = ∫‖w‖² would need a Poisson solve
on (S^{d−1})^n.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .fit import gradient_features
from .transport import OT, sinkhorn_divergence

__all__ = [
    "MobilityStats",
    "mobility",
    "mobility_stats",
    "bv_statistics",
    "BVStatistics",
    "detect_bv_violations",
    "segment_depth",
    "evi_surrogate",
    "locking_constant",
    "locking_ratio",
    "ollivier_curvature",
    "rotational_fraction",
    "rotational_energy",
]


def mobility(p: Float[Array, "... n"]) -> Float[Array, "... n n"]:
    """J = Diag(p) − ppᵀ (forms n × n per row: use on row blocks)."""
    return jnp.einsum("...i,ij->...ij", p, jnp.eye(p.shape[-1], dtype=p.dtype)) - p[..., :, None] * p[..., None, :]


class MobilityStats(NamedTuple):
    """Per row: ``trace`` = 1 − ‖p‖², ``frobenius`` = ‖J‖_F, ``op_norm`` = ‖J‖_op (≤ ½)."""

    trace: Array
    frobenius: Array
    op_norm: Array


def _op_norm(p, iterations: int = 60):
    top2 = jax.lax.top_k(p, 2)[0]
    lo, hi = top2[1], top2[0]

    def secular(lam):  # Σ p_i²/(p_i − λ) − 1, increasing on (p_(2), p_(1))
        return jnp.sum(p**2 / (p - lam)) - 1.0

    def body(_, bounds):
        a, b = bounds
        mid = 0.5 * (a + b)
        val = secular(mid)
        return jnp.where(val > 0, a, mid), jnp.where(val > 0, mid, b)

    a, b = jax.lax.fori_loop(0, iterations, body, (lo, hi))
    return jnp.where(hi - lo > 0, 0.5 * (a + b), hi)  # a repeated largest entry is itself the root


def mobility_stats(p: Float[Array, "... n"]) -> MobilityStats:
    """Trace, Frobenius and operator norms of J(p) per row, O(n) memory per row."""
    s2, s3 = jnp.sum(p**2, axis=-1), jnp.sum(p**3, axis=-1)
    op = jnp.vectorize(_op_norm, signature="(n)->()")(p)
    return MobilityStats(1.0 - s2, jnp.sqrt(jnp.maximum(s2 + s2**2 - 2.0 * s3, 0.0)), op)


class BVStatistics(NamedTuple):
    """``dz2``: ‖Δz^{(l)}‖₂² per layer; ``dzinf``: ‖Δz^{(l)}‖_∞; ``S``: Σ dz2; ``Xi``: α₁ max dzinf + α₂ Σ dzinf²."""

    dz2: np.ndarray
    dzinf: np.ndarray
    S: float
    Xi: float


def bv_statistics(z, *, alpha1: float = 1.0, alpha2: float = 1.0) -> BVStatistics:
    """P0 statistics of logits ``z`` with layers on axis 0 ((L + 1, ...) → L increments), in float64."""
    z = np.asarray(z, np.float64)
    if z.ndim < 2 or z.shape[0] < 2:
        raise ValueError(f"bv_statistics needs logits with at least two layers on axis 0, got shape {z.shape}.")
    dz = np.diff(z, axis=0).reshape(z.shape[0] - 1, -1)
    dz2 = np.sum(dz * dz, axis=1)
    dzinf = np.max(np.abs(dz), axis=1)
    return BVStatistics(dz2, dzinf, math.fsum(dz2.tolist()), float(alpha1 * dzinf.max() + alpha2 * math.fsum((dzinf**2).tolist())))


def detect_bv_violations(dz_norms, *, window: int, tau0: float):
    """Seed 003 App. K Algorithm 1 on the stream ‖Δz^{(l)}‖₂ (``dz_norms``, one per layer).

    Returns ``(flag, severity, threshold)`` per layer: S_local is the sum of squares over the last
    ``window`` norms (buffer B), the threshold τ₀(1 + 0.1·std(B)/mean(B)), a violation where
    S_local/|B| exceeds it, with severity (S_local/|B|)/threshold (> 2: segment at once)."""
    if not (isinstance(window, int) and window >= 1) or not (tau0 > 0):
        raise ValueError(f"detect_bv_violations needs window ≥ 1 and tau0 > 0, got {window!r}, {tau0!r}.")
    norms = np.asarray(dz_norms, np.float64)
    flags, severity, thresholds = np.zeros(norms.size, bool), np.zeros(norms.size), np.zeros(norms.size)
    buf: list[float] = []
    s_local = 0.0
    for l, v in enumerate(norms):
        s_local += v * v
        buf.append(float(v))
        if len(buf) > window:
            s_local -= buf[0] ** 2
            buf.pop(0)
        b = np.asarray(buf)
        mean = b.mean()
        thr = tau0 * (1.0 + 0.1 * (b.std() / mean if mean > 0 else 0.0))
        level = s_local / len(buf)
        thresholds[l], severity[l] = thr, level / thr
        flags[l] = level > thr
    return flags, severity, thresholds


def segment_depth(flags, *, cluster: int = 3, min_length: int = 5) -> list[tuple[int, int]]:
    """Seed 003 App. K.2: layers [start, end) where BV holds, cutting at violation clusters
    (violations within ``cluster`` layers are one), dropping segments shorter than ``min_length``."""
    flags = np.asarray(flags, bool)
    L = flags.size
    cuts: list[list[int]] = []
    for l in np.flatnonzero(flags):
        if cuts and l - cuts[-1][-1] <= cluster:
            cuts[-1].append(int(l))
        else:
            cuts.append([int(l)])
    segments, start = [], 0
    for c in cuts:
        if c[0] - start >= min_length:
            segments.append((start, c[0]))
        start = c[-1] + 1
    if L - start >= min_length:
        segments.append((start, L))
    return segments


def locking_constant(delta):
    """Sharp c(δ) with ‖J(p)Δz‖₁ ≤ c(δ)‖Δz‖_∞: 4δ(1 − δ) for δ ≤ ½, else 1 (δ = 1 − max p)."""
    delta = jnp.asarray(delta)
    return jnp.where(delta <= 0.5, 4.0 * delta * (1.0 - delta), 1.0)


def locking_ratio(z: Float[Array, "... n"], dz: Float[Array, "... n"]):
    """(‖softmax(z + Δz) − softmax(z)‖₁/‖Δz‖_∞, c(δ(softmax z))) per row: the first stays below the second
    up to o(‖Δz‖) (the finite step's curvature), which is what locking means at small tail mass δ."""
    p = jax.nn.softmax(z, axis=-1)
    q = jax.nn.softmax(z + dz, axis=-1)
    size = jnp.max(jnp.abs(dz), axis=-1)
    ratio = jnp.where(size > 0, jnp.sum(jnp.abs(q - p), axis=-1) / jnp.where(size > 0, size, 1.0), 0.0)  # a row that does not move: 0
    return ratio, locking_constant(1.0 - jnp.max(p, axis=-1))


def ollivier_curvature(P: Float[Array, "n n"], dist: Float[Array, "n n"], *, epsilon: float = 1e-3, threshold: float = 1e-6, pairs: Int[Array, "M 2"] | None = None) -> Array:
    """κ(i, i') = 1 − W₁(P_i, P_i')/d(i, i') for every pair of rows (NaN on the diagonal), W₁ with ground cost
    ``dist`` by ott-jax's Sinkhorn at ``epsilon`` relative to the mean cost (its bias is O(ε log n)).
    ``pairs`` (M, 2) of distinct row indices: κ for those pairs only, shape (M,) (n² transport
    problems are too many for long sequences)."""
    from ott.geometry import geometry
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    eps = epsilon * jnp.mean(dist)
    geom = geometry.Geometry(cost_matrix=dist, epsilon=eps)
    solver = sinkhorn.Sinkhorn(threshold=threshold, max_iterations=20000)

    def w1(a, b):
        out = solver(linear_problem.LinearProblem(geom, a=a, b=b))
        return jnp.sum(out.matrix * dist)

    if pairs is not None:
        i, j = pairs[:, 0], pairs[:, 1]
        return 1.0 - jax.vmap(w1)(P[i], P[j]) / dist[i, j]
    W = jax.vmap(lambda a: jax.vmap(lambda b: w1(a, b))(P))(P)
    n = P.shape[0]
    off = ~jnp.eye(n, dtype=bool)
    return jnp.where(off, 1.0 - W / jnp.where(off, dist, 1.0), jnp.nan)


def evi_surrogate(P: Float[Array, "L n n"], x: Float[Array, "L n d"], *, epsilon: float = 0.05, threshold: float = 1e-4) -> Float[Array, "L n"]:
    """S_ε(ρ_i^{(ℓ)}, ρ_i^{(L)}) for every layer ℓ and query i (see the module docstring); P's rows sum to 1."""
    ot = OT(epsilon=epsilon, threshold=threshold)
    last_x, last_P = x[-1], P[-1]

    def one(Pl, xl):
        return jax.vmap(lambda a, b: sinkhorn_divergence(xl, last_x, ot, a=a, b=b))(Pl, last_P)

    return jax.vmap(one)(P, x)


def rotational_energy(
    x: Float[Array, "N d"], u: Float[Array, "N d"], *, degree: int, weights: Float[Array, " N"] | None = None, diffusivity=1.0, manifold: str | None = None
):
    """Seed 003 Thm 7.2's rotational energy of a velocity field sampled at particles, with b_R = 0:
    R = min_θ Σ_k w_k (u_k − a_k∇θ(x_k))ᵀ a_k⁻¹ (u_k − a_k∇θ(x_k)) over polynomial θ of degree ≤ ``degree``
    (tangent gradients on the sphere), the weighted least-squares form of the a-weighted Poisson problem
    ∇·(μa∇θ) = ∇·(μu) on the empirical measure μ = Σw_kδ_{x_k} (uniform when ``weights`` is None). Returns
    (R, E) with E = Σw_k u_kᵀa_k⁻¹u_k the field's energy, so R/E ∈ [0, 1] is the rotational share.

    ``diffusivity`` a: a scalar (a = aI), or in R^d (``manifold=None``) a symmetric positive definite
    (d, d) tensor or one per particle (N, d, d): the split is then orthogonal in the a⁻¹ metric, solved as
    least squares for a^{1/2}∇θ against a^{−1/2}u. A field u = a∇θ has R = 0 for its own a and, in
    general, R > 0 under the isotropic metric (tested). On the sphere a is a scalar.

    The polynomial degree is the resolution: with as many coefficients as particles any sample fits, so
    keep dim(basis) ≪ N (the test measures a rotation field's share at 0.99 with N = 3000, degree 3).
    For a fixed token cloud both SA and USA give per-token fields that are exact sphere gradients
    (u = ∇_S β⁻¹log Σ_je^{β⟨x,x_j⟩}, resp. ∇_S (nβ)⁻¹Σ_je^{β⟨x,x_j⟩}), so R at the token level does not
    separate them; the configuration-space test :func:`rotational_fraction` does.
    """
    N, d = x.shape
    w = jnp.full((N,), 1.0 / N, x.dtype) if weights is None else weights / jnp.sum(weights)
    G = gradient_features(x, degree, sphere=manifold == "sphere")  # (N, d, K): columns −∇ψ_k
    a = jnp.asarray(diffusivity, x.dtype)
    if a.ndim == 0:
        S = Sinv = None
    elif manifold is None and a.shape in ((d, d), (N, d, d)):
        lam, V = jnp.linalg.eigh(jnp.broadcast_to(a, (N, d, d)))
        try:
            bad = bool(jnp.min(lam) <= 0)
        except jax.errors.ConcretizationTypeError:  # traced: cannot be checked here
            bad = False
        if bad:
            raise ValueError("rotational_energy: the diffusivity tensor must be symmetric positive definite.")
        S = jnp.einsum("nij,nj,nkj->nik", V, jnp.sqrt(lam), V)  # a^{1/2}
        Sinv = jnp.einsum("nij,nj,nkj->nik", V, 1.0 / jnp.sqrt(lam), V)  # a^{−1/2}
    else:
        raise ValueError(f"rotational_energy: diffusivity must be a scalar{'' if manifold == 'sphere' else f', a ({d}, {d}) tensor or one per particle ({N}, {d}, {d})'}; got shape {a.shape}.")
    if S is not None:
        G = jnp.einsum("nij,njk->nik", S, G)
        v = jnp.einsum("nij,nj->ni", Sinv, u)
        scale = 1.0
    else:
        v, scale = u, a
    sw = jnp.sqrt(w)[:, None, None]
    A = (sw * G).reshape(N * d, -1)
    b = (sw[..., 0] * v).reshape(-1)
    coef, *_ = jnp.linalg.lstsq(A, b)
    r = v - G @ coef
    return jnp.sum(w * jnp.sum(r * r, axis=-1)) / scale, jnp.sum(w * jnp.sum(v * v, axis=-1)) / scale


def rotational_fraction(field: Callable, x: Float[Array, "n d"], args, t=0.0) -> Array:
    """‖A − Aᵀ‖_F/‖A + Aᵀ‖_F with A = P·Du·P the covariant derivative of the tangent field
    ``field(t, x, args)`` on (S^{d−1})^n at the configuration ``x`` (0: a gradient field there)."""
    n, d = x.shape
    Du = jax.jacrev(lambda v: field(t, v.reshape(n, d), args).reshape(-1))(x.reshape(-1))  # reverse mode: Sinkhorn fields have a custom VJP
    proj = jnp.eye(d, dtype=x.dtype)[None] - x[:, :, None] * x[:, None, :]  # (n, d, d): P is block diagonal
    A = jnp.einsum("iab,ibjc,jcd->iajd", proj, Du.reshape(n, d, n, d), proj).reshape(n * d, n * d)
    return jnp.linalg.norm(A - A.T) / jnp.maximum(jnp.linalg.norm(A + A.T), jnp.finfo(x.dtype).tiny)
