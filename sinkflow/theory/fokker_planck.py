"""Closed forms of Langevin / Fokker–Planck dynamics (MATH.md §4; seed 000 §3.1 and its footnote 17).

Ornstein–Uhlenbeck in R^d, dX = −θX dt + √(2ν) dW (U = θ|x|²/2, stationary N(0, (ν/θ)I)),
from N(m₀, s₀I): the law stays N(m(t), s(t)I) with

- :func:`ou_mean` m(t) = m₀e^{−θt}, :func:`ou_variance` s(t) = ν/θ + (s₀ − ν/θ)e^{−2θt};
- :func:`ou_entropy` H = (d/2) log(2πe s), :func:`ou_entropy_rate` dH/dt = d(ν/s − θ): entropy
  rises while s < ν/θ (diffusion dominates) and falls while s > ν/θ (the drift contracts);
- :func:`ou_free_energy` F = ∫U dρ + ν∫ρ log ρ = (θ/2)(|m|² + d s) − ν H and its exact
  dissipation :func:`ou_dissipation` dF/dt = −∫ρ‖∇U + ν∇log ρ‖² = −[(θ − ν/s)² d s + θ²|m|²]
  (derived: ∇U + ν∇log ρ = (θ − ν/s)(x − m) + θm);
- :func:`ou_kl` KL(ρ_t ‖ ρ_∞) = ½[d s/s_∞ + |m|²/s_∞ − d + d log(s_∞/s)], which decays like
  e^{−2θt} (Bakry–Émery with the Hessian ∇²U = θI; seed 000 fn 17 writes ΔU where ∇²U is meant);
- :func:`em_ou_moments`: Euler–Maruyama at step h is the AR(1) chain X ← (1 − θh)X + √(2νh)ξ:
  after k steps from N(m₀, s₀) it is N(a m₀, a² s₀ + 2νh(1 − a²)/(1 − (1 − θh)²)), a = (1 − θh)^k;
  :func:`em_stationary_variance` its limit 2ν/(θ(2 − θh)), whose error against ν/θ is
  σ²h/(2(2 − θh)) with σ² = 2ν (weak order 1).

JKO (ρ_{k+1} = argmin W₂²(ρ, ρ_k)/(2τ) + F[ρ]) from a Gaussian, :func:`gaussian_jko_step`
(derived): per coordinate of N(m, σ²), the step is N(m', σ'²) with m' = m/(1 + θτ) and σ' the
positive root of (1 + θτ)σ'² − σσ' − ντ = 0 — the first-order conditions of
(m' − m)²/(2τ) + θm'²/2 and (σ' − σ)²/(2τ) + θσ'²/2 − ν log σ' (W₂² between Gaussians is
|m − m'|² + d(σ − σ')²; the minimiser over all densities is this Gaussian, the optimal map being
affine). Its iterates approach the OU solution at first order in τ (tested as a slope).

On S^{d−1} with Brownian motion of generator νΔ_S:

- :func:`sphere_mean_decay`: with U = 0, E⟨X_t, e⟩ = e^{−(d−1)νt}⟨X₀, e⟩ (first harmonic);
- :func:`vmf_mean_cosine`: with U = −⟨a, x⟩ the stationary law is von Mises–Fisher with
  κ = |a|/ν and E⟨X, a/|a|⟩ = I_{d/2}(κ)/I_{d/2−1}(κ) (scipy's exponentially scaled Bessel functions).

All are numpy/jax.numpy and broadcast over their arguments.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

__all__ = [
    "ou_mean",
    "ou_variance",
    "ou_entropy",
    "ou_entropy_rate",
    "ou_free_energy",
    "ou_dissipation",
    "ou_kl",
    "em_ou_moments",
    "em_stationary_variance",
    "gaussian_jko_step",
    "sphere_mean_decay",
    "vmf_mean_cosine",
]


def ou_mean(m0, theta, t):
    """m(t) = m₀ e^{−θt} (m₀ may be a vector)."""
    return jnp.asarray(m0) * jnp.exp(-theta * jnp.asarray(t))


def ou_variance(s0, theta, nu, t):
    """Per-coordinate variance s(t) = ν/θ + (s₀ − ν/θ) e^{−2θt}."""
    s_inf = nu / theta
    return s_inf + (s0 - s_inf) * jnp.exp(-2.0 * theta * jnp.asarray(t))


def ou_entropy(s, d: int):
    """Differential entropy of N(m, sI_d): (d/2) log(2πe s)."""
    return 0.5 * d * jnp.log(2.0 * math.pi * math.e * jnp.asarray(s))


def ou_entropy_rate(s, theta, nu, d: int):
    """dH/dt = d(ν/s − θ) along the OU flow (positive below the stationary variance ν/θ)."""
    return d * (nu / jnp.asarray(s) - theta)


def ou_free_energy(m, s, theta, nu, d: int):
    """F = ∫U dρ + ν∫ρ log ρ = (θ/2)(|m|² + d s) − ν H for ρ = N(m, sI_d), U = θ|x|²/2."""
    m2 = jnp.sum(jnp.asarray(m) ** 2, axis=-1)
    return 0.5 * theta * (m2 + d * s) - nu * ou_entropy(s, d)


def ou_dissipation(m, s, theta, nu, d: int):
    """dF/dt = −∫ρ‖∇U + ν∇log ρ‖² = −[(θ − ν/s)² d s + θ²|m|²] (≤ 0; 0 only at the stationary law)."""
    m2 = jnp.sum(jnp.asarray(m) ** 2, axis=-1)
    return -((theta - nu / s) ** 2 * d * s + theta**2 * m2)


def ou_kl(m, s, theta, nu, d: int):
    """KL(N(m, sI_d) ‖ N(0, (ν/θ)I_d)) = ½[d s/s_∞ + |m|²/s_∞ − d + d log(s_∞/s)]."""
    s_inf = nu / theta
    m2 = jnp.sum(jnp.asarray(m) ** 2, axis=-1)
    return 0.5 * (d * s / s_inf + m2 / s_inf - d + d * jnp.log(s_inf / s))


def em_ou_moments(m0, s0, theta, nu, h, steps):
    """Mean and per-coordinate variance of the OU Euler–Maruyama chain at step h after ``steps`` steps from N(m₀, s₀)."""
    a = (1.0 - theta * h) ** np.asarray(steps)
    return a * m0, a**2 * s0 + 2.0 * nu * h * (1.0 - a**2) / (1.0 - (1.0 - theta * h) ** 2)


def em_stationary_variance(theta, nu, h):
    """Stationary variance of Euler–Maruyama at step h for OU: 2ν/(θ(2 − θh)) (needs 0 < θh < 2)."""
    return 2.0 * nu / (theta * (2.0 - theta * h))


def gaussian_jko_step(m, s, theta, nu, tau):
    """One JKO step of F = ∫θ|x|²/2 dρ + ν∫ρ log ρ from N(m, sI): returns (m', s') (see the module docstring)."""
    sig = jnp.sqrt(jnp.asarray(s))
    a = 1.0 + theta * tau
    sig_new = (sig + jnp.sqrt(sig**2 + 4.0 * nu * tau * a)) / (2.0 * a)
    return jnp.asarray(m) / a, sig_new**2


def sphere_mean_decay(t, nu, d: int):
    """E⟨X_t, e⟩/⟨X₀, e⟩ = e^{−(d−1)νt} for Brownian motion on S^{d−1} with generator νΔ_S."""
    return jnp.exp(-(d - 1) * nu * jnp.asarray(t))


def vmf_mean_cosine(kappa, d: int):
    """E⟨X, μ⟩ = I_{d/2}(κ)/I_{d/2−1}(κ) for the von Mises–Fisher law on S^{d−1} with concentration κ."""
    from scipy.special import ive

    kappa = np.asarray(kappa, float)
    return ive(d / 2.0, kappa) / ive(d / 2.0 - 1.0, kappa)
