"""Closed forms of MATH.md §2: Gaussian data under Sinkhorn and softmax kernels.

For data N(0, sI_d) and the kernel exp(−‖x − y‖²/ε) (ε here is the *effective*
width wε of :class:`sinkflow.fields.HeatFlow`), the normalised attention maps x to λx:

- :func:`lambda_sinkhorn`: λ = 4s/(ε + √(ε² + 16s²)) (doubly stochastic; derived);
- :func:`lambda_softmax`:  λ = s/(s + ε/2) (row-stochastic; the Gaussian posterior mean).

Under the heat-flow-scaled field ẋ = (σ/ε)(Σ_j W_ij x_j − x), σ = −1, the
per-coordinate variance of a Gaussian cloud obeys (Gaussians are preserved
because the map is linear) :func:`variance_rhs`:
ds/dt = (2/ε)(1 − λ(s; wε)) s, whose ε → 0 limit is ds/dt = w/2 (Sinkhorn; heat
equation ∂_tρ = (w/4)Δρ) and w (softmax; ½-heat for w = 1). :func:`variance_path`
integrates it (diffrax Tsit5, tight tolerances).

All functions are jax.numpy and broadcast over s and ε.
"""

from __future__ import annotations

import functools

import diffrax
import jax
import jax.numpy as jnp

from .entropy import gaussian_entropy

__all__ = ["lambda_sinkhorn", "lambda_softmax", "variance_rhs", "variance_path", "heat_limit_rate", "entropy_path"]

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
