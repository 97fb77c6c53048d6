"""Closed forms of the attention dynamics (GLPR, MF) and of the Sinkformer heat flow (MATH.md §1–2).

Every function is pure and written with ``jax.numpy`` so it can be jitted,
vmapped over β or n and compared with simulations inside tests and checks.
For accuracy use float64 (``jax.config.update("jax_enable_x64", True)``).

- :func:`equiangular_rhs`, :func:`equiangular_gamma`: the SA/USA ODEs (GLPR 6.9,
  6.10) for the common inner product γ(t) from an equiangular start ρ₀.
- :func:`gamma_beta0`: their β = 0 closed form (from ρ₀ = 0).
- :func:`transition_time`: t*(β) with γ(t*) = 1 − δ (the curve Γ_{∞,δ}, eq. 6.12),
  computed as t* = ∫ dγ/γ' after the substitution u = −log(1 − γ), which removes
  the endpoint stiffness, with 256-point Gauss–Legendre quadrature (machine
  precision against the table in MATH.md).
- :func:`bound_d8` (GLPR (D.8), SA) and :func:`bound_remark_d1` (USA).
- :func:`wendel`: P(n uniform points on S^{d−1} lie in an open hemisphere).
- :func:`local_rate`: ε' ≈ −rate·ε near consensus (2 for SA, 2e^β for USA).
- :func:`cone_collapse_rate`: a rate λ with 1 − min_{i≠j}⟨x_i,x_j⟩(t) ≤ (1 − α₀)e^{−λt}
  when all pairwise inner products start ≥ α₀ > 0 (the cone-collapse regime of
  GLPR Lemma 6.4). Derived here: at the minimising pair (i, j),
  d/dt⟨x_i,x_j⟩ ≥ (w_ij + w_ji)(1 − α²) and w_ij ≥ e^{β(α−1)}/n (SA) or e^{βα}/n
  (USA), giving λ = (2/n)(1 + α₀)e^{−β(1−α₀)} (SA), (2/n)(1 + α₀)e^{βα₀} (USA).
- :func:`usa_corrected_step`: the authors' time-rescaled USA layer step
  η = h / max(√β e^{β−½}, 1); :func:`layer_log_contraction`: per-layer change of
  log(1 − ρ) near consensus for the projected Euler layer x ← normalize(x + η·f(x)),
  2 log|1 − η·rate/2| (derived: token differences obey y ↦ (1 − η·rate/2) y to
  first order, rate = :func:`local_rate`); unstable where η·rate/2 > 2.
- :func:`long_context_cosine`, :func:`long_context_limit`, :func:`long_context_rate`:
  one softmax attention layer on n equiangular inputs (cosine ρ) at β = γ log n
  (MF long-context transition): the exact output cosine, its n → ∞ limit
  (1, 4ρ/(1+3ρ) or ρ as κ = γ(1−ρ) <, =, > 1) and the power n^{−p} at which it
  is approached (derived: p = 2(1−κ), 1, κ−1; the self-weight ratio a/b = n^κ).
- :func:`two_cluster_rhs`, :func:`two_cluster_merge_time`: the circle model
  (d = 2) reduced to two point clusters of masses m and 1 − m at angular
  separation φ, an exact invariant reduction of the particle system (derived
  here): φ' = −sin φ · H(φ) with
  H = e^{β cos φ}[m/((1−m)e^β + m e^{β cos φ}) + (1−m)/(m e^β + (1−m)e^{β cos φ})] (SA),
  H = e^{β cos φ} (USA). The time to close from φ₀ to φ₁ is
  ∫ du / H(φ(u)) with u = log tan(φ/2) (dφ/sin φ = du), a smooth integrand, by
  Gauss–Legendre quadrature. Near φ = π, H ≈ e^{−2β}(m/(1−m) + (1−m)/m) for SA
  (e^{−β} for USA): the lifetimes of metastable two-cluster states grow like
  e^{cβ}, c ≤ 2 (SA).

Sinkformer heat flow (MATH.md §2). For data N(0, sI_d) and the kernel exp(−‖x − y‖²/ε) (ε here is the *effective*
width wε of :class:`sinkflow.dynamics.heat.HeatFlow`), the normalised attention maps x to λx:

- :func:`lambda_sinkhorn`: λ = 4s/(ε + √(ε² + 16s²)) (doubly stochastic; derived);
- :func:`lambda_softmax`:  λ = s/(s + ε/2) (row-stochastic; the Gaussian posterior mean).

Under the heat-flow-scaled field ẋ = (σ/ε)(Σ_j W_ij x_j − x), σ = −1, the
per-coordinate variance of a Gaussian cloud obeys (Gaussians are preserved
because the map is linear) :func:`variance_rhs`:
ds/dt = (2/ε)(1 − λ(s; wε)) s, whose ε → 0 limit is ds/dt = w/2 (Sinkhorn; heat
equation ∂_tρ = (w/4)Δρ) and w (softmax; ½-heat for w = 1). :func:`variance_path`
integrates it (diffrax Tsit5, tight tolerances).

These are jax.numpy and broadcast over s and ε.

Noisy Kuramoto (MF §7): :func:`kuramoto_branch`, the synchronised branch r = I₁(κr)/I₀(κr).
"""

from __future__ import annotations

import functools
import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ..entropy import gaussian_entropy

__all__ = [
    "NORMALIZERS",
    "lambda_sinkhorn",
    "lambda_softmax",
    "variance_rhs",
    "variance_path",
    "heat_limit_rate",
    "entropy_path",
    "kuramoto_branch",
    "MODELS",
    "equiangular_rhs",
    "equiangular_gamma",
    "gamma_beta0",
    "transition_time",
    "bound_d8",
    "bound_remark_d1",
    "wendel",
    "local_rate",
    "cone_collapse_rate",
    "usa_corrected_step",
    "layer_log_contraction",
    "equiangular_weights",
    "long_context_cosine",
    "long_context_limit",
    "long_context_rate",
    "two_cluster_rhs",
    "two_cluster_merge_time",
]

MODELS = ("sa", "usa")


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"model {model!r} is not known; use one of {MODELS}.")


def equiangular_rhs(gamma, beta, n, model: str = "sa"):
    """γ' for the equiangular reduction: SA (6.9) or USA (6.10)."""
    _check_model(model)
    core = (1.0 - gamma) * ((n - 1.0) * gamma + 1.0)
    if model == "sa":
        return 2.0 * core / (jnp.exp(beta * (1.0 - gamma)) + n - 1.0)
    return (2.0 / n) * jnp.exp(beta * gamma) * core


@functools.partial(jax.jit, static_argnames=("model", "rtol", "atol"))
def equiangular_gamma(ts, beta, n, model: str = "sa", rho0=0.0, rtol: float = 1e-12, atol: float = 1e-14):
    """γ(ts) solving the equiangular ODE from γ(0) = ρ₀ (Tsit5, tight tolerances); NaN where the
    solve failed (step budget), so callers report the cell instead of crashing.

    Jitted (β, n, ρ₀ traced): one compile per model and length of ``ts``; eager diffrax
    re-traced the solve on every call (~2 s each, measured in the orthogonal-start plots).
    """
    ts = jnp.asarray(ts)
    dtype = ts.dtype if jnp.issubdtype(ts.dtype, jnp.floating) else jnp.result_type(float)
    y0 = jnp.asarray(rho0, dtype)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, g, a: equiangular_rhs(g, a[0], a[1], model)),
        diffrax.Tsit5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=1e-3,
        y0=y0,
        args=(jnp.asarray(beta, dtype), jnp.asarray(n, dtype)),
        saveat=diffrax.SaveAt(ts=ts.astype(dtype)),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=2**20,
        throw=False,
    )
    # a reference that could not be computed is NaN, never an exception in a plot or check (USA at
    # β = 80 is stiff beyond any explicit budget: rate 2e^β)
    return jnp.where(sol.result == diffrax.RESULTS.successful, sol.ys, jnp.nan)


def gamma_beta0(t, n):
    """β = 0 closed form from an orthogonal start: γ(t) = (e^{2t} − 1)/(e^{2t} + n − 1)."""
    e = jnp.exp(2.0 * jnp.asarray(t))
    return (e - 1.0) / (e + n - 1.0)


@functools.lru_cache(maxsize=None)
def _gauss_legendre(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(nodes)


def _quad(f, a, b, nodes: int, dtype):
    """∫_a^b f(u) du by Gauss–Legendre with ``nodes`` nodes; a, b broadcast, f gets u with a trailing node axis."""
    x, w = (jnp.asarray(v, dtype) for v in _gauss_legendre(nodes))
    a, b = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
    u = 0.5 * (b - a)[..., None] * x + 0.5 * (b + a)[..., None]
    return 0.5 * (b - a) * jnp.sum(w * f(u), axis=-1)


def transition_time(beta, n, delta, model: str = "sa", rho0=0.0):
    """t* with γ(t*) = 1 − δ for the equiangular ODE started at ρ₀ (see module docstring)."""
    _check_model(model)
    beta = jnp.asarray(beta)
    dtype = jnp.result_type(beta.dtype, float) if jnp.issubdtype(beta.dtype, jnp.floating) else jnp.result_type(float)
    u0 = -jnp.log1p(-jnp.asarray(rho0, dtype))
    u1 = -jnp.log(jnp.asarray(delta, dtype))
    b = beta[..., None]

    def integrand(u):  # dt/du in u = −log(1 − γ)
        eps = jnp.exp(-u)  # 1 − γ
        core = 2.0 * ((n - 1.0) * (1.0 - eps) + 1.0)
        if model == "sa":
            return (jnp.exp(b * eps) + n - 1.0) / core
        return n / (jnp.exp(b * (1.0 - eps)) * core)

    return _quad(integrand, u0, u1, 256, dtype)


def bound_d8(t, beta, n):
    """GLPR (D.8), SA from an orthogonal start: 1 − γ(t) ≤ ½ exp(n²e^β/(2(n+e^{β/2})) − n t/(n+e^{β/2}))."""
    a = n + jnp.exp(beta / 2.0)
    return 0.5 * jnp.exp(n * n * jnp.exp(beta) / (2.0 * a) - n * jnp.asarray(t) / a)


def bound_remark_d1(t, beta, n):
    """GLPR Remark D.1, USA: 1 − γ(t) ≤ ½ exp(−e^{β/2}(t − n/2))."""
    return 0.5 * jnp.exp(-jnp.exp(beta / 2.0) * (jnp.asarray(t) - n / 2.0))


def wendel(n: int, d: int) -> float:
    """Wendel (GLPR Thm 6.7): P(n i.i.d. uniform points of S^{d−1} lie in an open hemisphere)."""
    if n < 1 or d < 1:
        raise ValueError(f"wendel needs n ≥ 1 and d ≥ 1, got n={n}, d={d}.")
    total = sum(math.comb(n - 1, k) for k in range(min(d, n)))
    return total / 2 ** (n - 1)


def local_rate(beta, model: str = "sa"):
    """Linear rate of 1 − γ near consensus (MF §6.1): 2 for SA, 2e^β for USA."""
    _check_model(model)
    return 2.0 * jnp.ones_like(jnp.asarray(beta, float)) if model == "sa" else 2.0 * jnp.exp(beta)


def cone_collapse_rate(alpha0, beta, n, model: str = "sa"):
    """Guaranteed exponential rate of 1 − min⟨x_i,x_j⟩ from a start with min⟨x_i,x_j⟩ ≥ α₀ > 0."""
    _check_model(model)
    alpha0 = jnp.asarray(alpha0)
    if model == "sa":
        return (2.0 / n) * (1.0 + alpha0) * jnp.exp(-beta * (1.0 - alpha0))
    return (2.0 / n) * (1.0 + alpha0) * jnp.exp(beta * alpha0)






def equiangular_weights(rho, beta, n):
    """Softmax weights (Q = K = I) on n equiangular unit vectors ⟨x_i, x_j⟩ = ρ: (a on itself, b on each other).

    a = e^β/Z, b = e^{βρ}/Z with Z = e^β + (n−1)e^{βρ}, computed with q = e^{−β(1−ρ)} so that
    e^β never overflows.
    """
    q = jnp.exp(-beta * (1.0 - rho))
    a = 1.0 / (1.0 + (n - 1.0) * q)
    return a, q * a


def long_context_cosine(n, rho, beta):
    """Exact cosine between two outputs of one softmax layer (Q = K = V = I) on n equiangular inputs ⟨x_i, x_j⟩ = ρ.

    With Z = e^β + (n−1)e^{βρ}, a = e^β/Z, b = e^{βρ}/Z (MF):
    cos_n = [ρ + (1−ρ)(2ab + (n−2)b²)] / [ρ + (1−ρ)(a² + (n−1)b²)].
    Computed with q = e^{−β(1−ρ)} so that e^β never overflows (n up to 1e12 and β ≫ 700 are fine).
    """
    n, rho, beta = (jnp.asarray(v, float) for v in (n, rho, beta))
    a, b = equiangular_weights(rho, beta, n)
    num = rho + (1.0 - rho) * (2.0 * a * b + (n - 2.0) * b * b)
    den = rho + (1.0 - rho) * (a * a + (n - 1.0) * b * b)
    return num / den


def long_context_limit(rho, gamma):
    """lim_{n→∞} cos_n at β = γ log n: 1 if γ(1−ρ) < 1, 4ρ/(1+3ρ) if = 1, ρ if > 1."""
    kappa = float(gamma) * (1.0 - float(rho))
    if math.isclose(kappa, 1.0, rel_tol=1e-12):
        return 4.0 * rho / (1.0 + 3.0 * rho)
    return 1.0 if kappa < 1.0 else float(rho)


def long_context_rate(rho, gamma) -> float:
    """Exponent p of |cos_n − limit| ~ n^{−p}, κ = γ(1−ρ) (derived): 2(1−κ) for κ < 1, 1 at κ = 1, κ − 1 for κ > 1.

    With a = weight on itself and b on each other token, a/b = n^κ. For κ < 1,
    1 − cos_n = (1−ρ)(a − b)²/den with a ~ n^{κ−1}; for κ > 1 the self-weight
    deficit 1 − a ~ n^{1−κ} enters linearly.
    """
    kappa = float(gamma) * (1.0 - float(rho))
    if math.isclose(kappa, 1.0, rel_tol=1e-12):
        return 1.0
    return 2.0 * (1.0 - kappa) if kappa < 1.0 else kappa - 1.0


def usa_corrected_step(h, beta):
    """η = h / max(√β e^{β−½}, 1): the USA layer step rescaled by max_θ β e^{β cos θ} sin θ ≈ √β e^{β−½}
    (the Lipschitz constant of the pairwise USA interaction for large β), as in the authors' scripts."""
    beta = jnp.asarray(beta, float)
    return h / jnp.maximum(jnp.sqrt(beta) * jnp.exp(beta - 0.5), 1.0)


def layer_log_contraction(eta, beta, model: str = "sa"):
    """Per-layer change of log(1 − ρ) near consensus for x ← normalize(x + η f(x)): 2 log|1 − η·rate/2|."""
    return 2.0 * jnp.log(jnp.abs(1.0 - eta * local_rate(beta, model) / 2.0))


def two_cluster_rhs(phi, beta, m, model: str = "sa"):
    """φ' for two point clusters (masses m, 1 − m) at separation φ ∈ (0, π) on the circle (see module docstring)."""
    _check_model(model)
    phi, beta, m = (jnp.asarray(v, float) for v in (phi, beta, m))
    if model == "usa":
        return -jnp.sin(phi) * jnp.exp(beta * jnp.cos(phi))
    q = jnp.exp(beta * (jnp.cos(phi) - 1.0))  # e^{β(cos φ − 1)}, overflow-free form
    h = q * (m / ((1.0 - m) + m * q) + (1.0 - m) / (m + (1.0 - m) * q))
    return -jnp.sin(phi) * h


def two_cluster_merge_time(phi0, phi1, beta, m, model: str = "sa", nodes: int = 512):
    """Time for the two-cluster reduction to close from separation φ₀ to φ₁ (0 < φ₁ ≤ φ₀ < π)."""
    _check_model(model)
    phi0, phi1 = jnp.asarray(phi0, float), jnp.asarray(phi1, float)
    u0, u1 = jnp.log(jnp.tan(phi0 / 2.0)), jnp.log(jnp.tan(phi1 / 2.0))

    def integrand(u):  # dt/du in u = log tan(φ/2), where du/dt = φ'/sin φ = −H(φ)
        phi = 2.0 * jnp.arctan(jnp.exp(u))
        return -jnp.sin(phi) / two_cluster_rhs(phi, jnp.asarray(beta, float)[..., None], jnp.asarray(m, float)[..., None], model)

    return _quad(integrand, u1, u0, nodes, u0.dtype)


#: Kernel normalisations with a Gaussian closed form (MATH.md §2).
NORMALIZERS = ("sinkhorn", "softmax")


def lambda_sinkhorn(s, eps):
    """Linear gain of balanced Sinkhorn attention on N(0, sI): 4s/(ε + √(ε² + 16s²))."""
    s, eps = jnp.asarray(s), jnp.asarray(eps)
    return 4.0 * s / (eps + jnp.sqrt(eps * eps + 16.0 * s * s))


def lambda_softmax(s, eps):
    """Linear gain of softmax attention on N(0, sI): s/(s + ε/2)."""
    s, eps = jnp.asarray(s), jnp.asarray(eps)
    return s / (s + 0.5 * eps)


def _lam(normalizer: str):
    if normalizer == "sinkhorn":
        return lambda_sinkhorn
    if normalizer == "softmax":
        return lambda_softmax
    raise ValueError(f"normalizer {normalizer!r} has no Gaussian closed form; use one of {NORMALIZERS}.")


def variance_rhs(s, eps, normalizer: str = "sinkhorn", width: float = 1.0, sign: float = -1.0):
    """ds/dt = −σ(2/ε)(1 − λ(s; wε)) s for the per-coordinate variance s."""
    lam = _lam(normalizer)(s, width * jnp.asarray(eps))
    return -sign * (2.0 / eps) * (1.0 - lam) * s


def heat_limit_rate(normalizer: str = "sinkhorn", width: float = 1.0) -> float:
    """lim_{ε→0} ds/dt: w/2 (Sinkhorn, ∂_tρ = (w/4)Δρ) and w (softmax)."""
    _lam(normalizer)
    return 0.5 * width if normalizer == "sinkhorn" else width


@functools.partial(jax.jit, static_argnames=("normalizer",))
def variance_path(s0, eps, ts, normalizer: str = "sinkhorn", width: float = 1.0, sign: float = -1.0):
    """s(t) at the times ``ts`` (ts[0] is the start) for scalar s0, ε (jitted; s0, ε, w, σ traced)."""
    term = diffrax.ODETerm(lambda t, s, a: variance_rhs(s, eps, normalizer, width, sign))
    ts = jnp.asarray(ts)
    sol = diffrax.diffeqsolve(
        term,
        diffrax.Tsit5(),
        ts[0],
        ts[-1],
        None,
        jnp.asarray(s0, ts.dtype),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-12),
        max_steps=100_000,
    )
    return sol.ys


def entropy_path(s, d: int):
    """Entropy of N(0, sI_d): (d/2) log(2πe s)."""
    return gaussian_entropy(d * jnp.log(jnp.asarray(s)), d)


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
