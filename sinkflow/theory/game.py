"""Closed forms of the N-player barycenter game (MATH.md §5; seed 001 §2.5, seed 000 §4.1), derived here.

1-D Gaussian clouds μ_i = N(m_i, σ_i²) with weights w_i (Σw_i = 1):

- :func:`gaussian_barycenter_1d`: the W₂ barycenter is N(Σw_im_i, (Σw_iσ_i)²) (quantile functions
  average in 1-D), and T_i(x) = m̄ + (σ̄/σ_i)(x − m_i);
- :func:`relaxation_1d`: with f = 0 the coupled flow dX = λ(T_i(X) − X)dt + s dW keeps the clouds
  Gaussian with m_i' = λ(m̄ − m_i) and σ_i' = λ(σ̄ − σ_i) + s²/(2σ_i) (from the variance law
  (σ_i²)' = 2λσ_i(σ̄ − σ_i) + s²); without noise m̄ and σ̄ are conserved and every gap decays like
  e^{−λt}: m_i(t) = m̄ + e^{−λt}(m_i(0) − m̄), the same for σ_i, and Σ_iw_iW₂²(μ_i, μ̄) ∝ e^{−2λt}
  (:func:`dispersion_1d`). With noise the ODEs are integrated (scipy, rtol 1e-12); noise alone
  (λ = 0) adds s² per unit time to each variance.

The linear–quadratic game (each player's particles follow ẋ = u, running cost ½|u|² + (b/2)|x − x̄|²
per particle over [0, T], x̄ the matched barycenter point, no terminal cost):

- :func:`riccati_gain`: the equilibrium feedback is u = −P(t)(x − x̄) with P' = P² − c, P(T) = 0,
  i.e. P(t) = √c·tanh(√c(T − t)). Mean field (a player too small to move the barycenter):
  c = b, from the HJB equation of a player tracking the barycenter, which the equilibrium keeps
  constant (Σ_iw_i(x_i − x̄) = 0). Open-loop Nash among N players with weights w_i (the
  Pontryagin system that :func:`sinkflow.equilibrium.forward_backward` solves): player i's
  own cloud moves the barycenter, ∂_{x_i}(b/2)|x_i − x̄|² = b(1 − w_i)(x_i − x̄), so c = b(1 − w_i);
  with w_i = 1/N, P_N → P like 1/N.
- :func:`equilibrium_cost`: a player's equilibrium cost from the gap e₀: with a = √c,
  e(t) = e₀cosh(a(T − t))/cosh(aT) and J = e₀²/(2cosh²(aT))·∫₀ᵀ(c·sinh²(as) + b·cosh²(as))ds,
  which is ½P(0)e₀² when c = b (the value function).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

__all__ = ["gaussian_barycenter_1d", "relaxation_1d", "dispersion_1d", "riccati_gain", "equilibrium_cost"]


def _weights(w, N):
    w = np.asarray(w, float)
    if w.shape != (N,) or np.any(w < 0) or abs(w.sum() - 1) > 1e-9:
        raise ValueError(f"weights must be {N} non-negative numbers summing to 1, got {w.tolist()}.")
    return w


def gaussian_barycenter_1d(m, sd, w):
    """(m̄, σ̄) of the W₂ barycenter of N(m_i, sd_i²) with weights w."""
    m, sd = np.asarray(m, float), np.asarray(sd, float)
    w = _weights(w, len(m))
    return float(w @ m), float(w @ sd)


def relaxation_1d(m0, sd0, w, lam, t, noise: float = 0.0):
    """Means and standard deviations (each (len(t), N)) of the 1-D Gaussian game with f = 0 (module docstring)."""
    m0, sd0, t = np.asarray(m0, float), np.asarray(sd0, float), np.asarray(t, float)
    w = _weights(w, len(m0))
    mb, sb = w @ m0, w @ sd0
    decay = np.exp(-lam * t)[:, None]
    m = mb + decay * (m0 - mb)
    if noise == 0.0:
        return m, sb + decay * (sd0 - sb)

    def rhs(_, s):
        return lam * (w @ s - s) + noise**2 / (2 * s)

    sol = solve_ivp(rhs, (0.0, float(t[-1])), sd0, t_eval=t, rtol=1e-12, atol=1e-14, method="DOP853")
    return m, sol.y.T


def dispersion_1d(m, sd, w):
    """Σ_i w_i W₂²(μ_i, μ̄) for Gaussians N(m_i, sd_i²) (arrays (..., N))."""
    m, sd = np.asarray(m, float), np.asarray(sd, float)
    w = np.asarray(w, float)
    mb, sb = m @ w, sd @ w
    return ((m - mb[..., None]) ** 2 + (sd - sb[..., None]) ** 2) @ w


def riccati_gain(t, b: float, T: float, own_weight: float = 0.0):
    """P(t) = √c·tanh(√c(T − t)), c = b(1 − own_weight): the equilibrium feedback gain (mean field: own_weight = 0)."""
    if not (b >= 0 and 0 <= own_weight < 1 and T > 0):
        raise ValueError(f"riccati_gain needs b ≥ 0, 0 ≤ own_weight < 1, T > 0; got b={b}, own_weight={own_weight}, T={T}.")
    a = np.sqrt(b * (1.0 - own_weight))
    return a * np.tanh(a * (T - np.asarray(t, float)))


def equilibrium_cost(e0, b: float, T: float, own_weight: float = 0.0):
    """J = ∫₀ᵀ ½u² + (b/2)e² dt along the equilibrium from the gap e₀ (module docstring)."""
    c = b * (1.0 - own_weight)
    a = np.sqrt(c)
    if a == 0:
        return 0.5 * b * np.asarray(e0, float) ** 2 * T
    x = 2 * a * T
    int_sinh2 = np.sinh(x) / (4 * a) - T / 2
    int_cosh2 = np.sinh(x) / (4 * a) + T / 2
    return np.asarray(e0, float) ** 2 * (c * int_sinh2 + b * int_cosh2) / (2 * np.cosh(a * T) ** 2)
