"""Estimators: numbers read off saved trajectories, with the model each one assumes.

One home for what studies fit or extrapolate, so that two studies measuring the same
thing measure it the same way:

- :func:`decay_rate` — *the* decay-rate fitter: λ of v(t) ≈ C·t^k·e^{−λt} over the saves where
  v lies in a window (with a b/t term for a polynomial prefactor), with where it was read and
  how much it drifts between the window's halves; :func:`window_log_slope` is its bare slope;
- :func:`log_log_slope` — the exponent of a power law v ≈ C·x^p;
- :func:`transition_times` — first crossing of a level, linearly interpolated;
- :func:`power_law_limit_test` and :func:`richardson_inverse_n` — n → ∞ limits of
  finite-particle measurements, with the bias model each assumes.

All take and return numpy (they run on saved results, never inside a jitted loop).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["DecayFit", "decay_rate", "window_log_slope", "log_log_slope", "transition_times", "transition_time_errors", "power_law_limit_test", "power_law_limit_power", "richardson_inverse_n"]


class DecayFit(NamedTuple):
    """A decay rate read off v(t) (:func:`decay_rate`). All NaN (points 0) when too few saves qualify.

    rate: λ; t_lo, t_hi: the first and last save used; points: how many; drift: |λ₂ − λ₁|/|λ₂| for
    the rates of the first and second half of those saves (large while the decay is still a
    changing mixture of modes; NaN if a half has fewer than 5 saves); mask: the saves used."""

    rate: float
    t_lo: float
    t_hi: float
    points: int
    drift: float
    mask: np.ndarray


def decay_rate(t, v, window, *, min_points: int = 5, keep=None, power: float = 0.0, inverse_t: bool | None = None, sigma=None, drift: bool = True) -> DecayFit:
    """The decay rate λ of v(t) ≈ C·t^power·e^{−λt} over the saves where v lies in ``window``
    (arguments as :func:`window_log_slope`, whose slope is −λ), with the diagnostics of :class:`DecayFit`.
    ``drift=False`` skips the two half-window fits (drift NaN) where a caller fits thousands of
    realizations and does not read it."""
    t = np.asarray(t, float)
    slope, sel = window_log_slope(t, v, window, min_points=min_points, keep=keep, power=power, inverse_t=inverse_t, sigma=sigma)
    if not math.isfinite(slope):
        return DecayFit(math.nan, math.nan, math.nan, 0, math.nan, sel)
    idx = np.flatnonzero(sel)
    if not drift:
        return DecayFit(-slope, float(t[idx[0]]), float(t[idx[-1]]), int(idx.size), math.nan, sel)
    first, second = np.zeros_like(sel), np.zeros_like(sel)
    first[idx[: len(idx) // 2]], second[idx[len(idx) // 2 :]] = True, True
    r1 = -window_log_slope(t, v, window, keep=first, power=power, inverse_t=inverse_t, sigma=sigma)[0]
    r2 = -window_log_slope(t, v, window, keep=second, power=power, inverse_t=inverse_t, sigma=sigma)[0]
    return DecayFit(-slope, float(t[idx[0]]), float(t[idx[-1]]), int(idx.size), float(abs(r2 - r1) / abs(r2)), sel)


def log_log_slope(x, v, keep=None) -> float:
    """Least-squares exponent p of v ≈ C·x^p (slope of log v against log x) over ``keep`` (x, v > 0)."""
    x, v = np.asarray(x, float), np.asarray(v, float)
    sel = np.ones(x.shape, bool) if keep is None else np.asarray(keep, bool)
    return float(np.polyfit(np.log(x[sel]), np.log(v[sel]), 1)[0])


def window_log_slope(t, v, window, *, min_points: int = 5, keep=None, power: float = 0.0, inverse_t: bool | None = None, sigma=None):
    """Least-squares slope of log v − power·log t against t over the saves where v lies in ``window``.

    For a decay v ≈ C·t^power·e^{−λt} the slope is −λ. With ``inverse_t`` (default: when
    power ≥ 1, i.e. for a polynomial prefactor) the fit also has a b/t term (needs t > 0): for v = |c_k t^k + c_{k−1} t^{k−1} + …|·e^{−λt} the lower powers add
    log(1 + (c_{k−1}/c_k)/t + …) to log v, which without it biases λ by ≈ (c_{k−1}/c_k)/(t_lo·t_hi),
    unbounded over random starts; with it the bias is O(t^−3). Only finite v in [window[0], window[1]]
    count, and only where ``keep`` (a boolean mask over the saves) is true. Returns
    ``(slope, mask)``: the slope is NaN when fewer than ``min_points`` saves are selected.
    The window is the study's statement of where the asymptotic regime is visible: above it
    faster modes remain, below it the solver's floor. ``sigma`` (per save): the standard error of
    log v, for a weighted fit where saves are unequally noisy (Monte-Carlo means near zero).
    """
    t, v = np.asarray(t, float), np.asarray(v, float)
    with np.errstate(invalid="ignore"):
        sel = np.isfinite(v) & (v >= window[0]) & (v <= window[1])
    if keep is not None:
        sel &= np.asarray(keep, bool)
    if sel.sum() < max(min_points, 2):
        return math.nan, sel
    y = np.log(v[sel]) - power * np.log(t[sel]) if power else np.log(v[sel])
    if inverse_t is None:
        inverse_t = power >= 1
    w = None if sigma is None else 1.0 / np.asarray(sigma, float)[sel]
    if inverse_t:
        A = np.stack([np.ones(int(sel.sum())), t[sel], 1.0 / t[sel]], axis=1)
        if w is not None:
            A, y = A * w[:, None], y * w
        return float(np.linalg.lstsq(A, y, rcond=None)[0][1]), sel
    return float(np.polyfit(t[sel], y, 1, w=w)[0]), sel


def transition_times(P: np.ndarray, t: np.ndarray, level: float = 0.5) -> np.ndarray:
    """First time P(t) ≥ level (linear interpolation), NaN if never; P has time as its last axis."""
    P = np.asarray(P)
    out = np.full(P.shape[:-1], np.nan)
    for idx in np.ndindex(*P.shape[:-1]):
        p = P[idx]
        k = np.flatnonzero(p >= level)
        if k.size == 0:
            continue
        k = k[0]
        if k == 0:
            out[idx] = t[0]
        else:
            f = (level - p[k - 1]) / (p[k] - p[k - 1])
            out[idx] = t[k - 1] + f * (t[k] - t[k - 1])
    return out


def transition_time_errors(P: np.ndarray, P_se: np.ndarray, t: np.ndarray, level: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The two errors of :func:`transition_times` (P, P_se with time as the last axis, equal save
    spacing): the Monte-Carlo standard error se_P/P' at the crossing (the larger se_P of its two
    saves over the interval's slope), and the linear interpolation's bound Δt²|P''|/(8P') (P'' by
    the second difference around the crossing). NaN where P never crosses; inf where it does not rise."""
    P, P_se, t = np.asarray(P, float), np.asarray(P_se, float), np.asarray(t, float)
    h = float(t[1] - t[0])
    se = np.full(P.shape[:-1], np.nan)
    interp = np.full(P.shape[:-1], np.nan)
    for idx in np.ndindex(*P.shape[:-1]):
        p, s = P[idx], P_se[idx]
        k = np.flatnonzero(p >= level)
        if k.size == 0 or k[0] == 0:
            continue
        k = int(k[0])
        slope = (p[k] - p[k - 1]) / h
        if not slope > 0:
            se[idx] = interp[idx] = np.inf
            continue
        c = min(max(k, 1), p.size - 2)
        se[idx] = max(s[k - 1], s[k]) / slope
        interp[idx] = h * h / 8.0 * abs(p[c + 1] - 2.0 * p[c] + p[c - 1]) / (h * h) / slope
    return se, interp


def power_law_limit_test(values, se, n, predicted, alphas=(0.25, 2.0)) -> tuple[float, float, float]:
    """Is ``predicted`` the n → ∞ limit of y(n)? A likelihood-ratio test in the local model
    y(n) = y_∞ + c·n^{−α} on the three largest n, by weighted least squares with the exponent
    α profiled over ``alphas``.

    For finite-sample biases whose rate is not yet the asymptotic one: kernel estimates on
    Gaussian samples are biased by the sparsely sampled tails, ~(log n)^k·n^{−p}, whose local
    exponent drifts (measured for softmax on N(0, 2 I_3) at ε = 0.5: 0.58 over n = 1000–4000,
    0.75 from 4000 to 8000; a 1/n fit there was off by 30 standard errors). One power law does
    not fit a drifting exponent over a wide range of n (over n = 1000–8000 it missed the exact
    limit by z = 4.2), so the model is local: the three largest n, the closest to the limit.
    Returns (z, y_∞, α): z = √(χ²(y_∞ = predicted) − χ²_min), the deviation in standard errors
    (4 ↔ a 4σ test), and the best fit. With one sample size z = |y − predicted|/se; with two the
    model fits every limit whose bias ratio is a power 2^−α with α in range (z = 0) and rejects
    only the others, so the test has its power from three sample sizes on.
    """
    values, se, n = (np.asarray(a, float) for a in (values, se, n))
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(se))):
        return math.nan, math.nan, math.nan  # a failed cell (NaN) is no evidence either way
    keep = np.argsort(n)[-3:]
    values, se, n = values[keep], se[keep], n[keep]
    if n.size == 1:
        return abs(float(values[0]) - predicted) / float(se[0]), float(values[0]), math.nan
    w = 1.0 / np.maximum(se, 1e-300) ** 2
    alpha = np.linspace(alphas[0], alphas[1], 351)
    u = n[None, :] ** -alpha[:, None]  # (α, n): every exponent at once, weighted least squares in closed form
    S0, Su, Suu = np.sum(w), u @ w, (u * u) @ w
    Sy, Suy = np.sum(w * values), u @ (w * values)
    det = S0 * Suu - Su * Su
    c0 = (Suu * Sy - Su * Suy) / det  # the free fit y_∞ + c·u
    c1 = (S0 * Suy - Su * Sy) / det
    chi_free = np.sum(w * (values[None, :] - c0[:, None] - c1[:, None] * u) ** 2, axis=1)
    c = (u @ (w * (values - predicted))) / Suu  # the fit with y_∞ = predicted
    chi_fixed = np.sum(w * (values[None, :] - predicted - c[:, None] * u) ** 2, axis=1)
    k = int(np.argmin(chi_free))
    return math.sqrt(max(0.0, float(np.min(chi_fixed) - chi_free[k]))), float(c0[k]), float(alpha[k])


def power_law_limit_power(values, se, n, predicted, z: float = 4.0, alphas=(0.25, 2.0)) -> float:
    """The power of :func:`power_law_limit_test` on these data: the smallest |δ| for which the
    limit ``predicted + δ`` (either sign) is rejected at ``z``, found by bracketing and bisection
    (to 1% of δ). 0 if ``predicted`` itself is rejected, inf if no shift up to 10⁶·(largest se) is,
    NaN for data with a NaN (a failed cell) or no positive standard error."""
    test = lambda p: power_law_limit_test(values, se, n, p, alphas)[0]  # noqa: E731
    z0 = test(predicted)
    scale = float(np.max(np.asarray(se, float)))
    if not (math.isfinite(z0) and math.isfinite(scale) and scale > 0):
        return math.nan
    if z0 > z:
        return 0.0
    best = math.inf
    for sign in (1.0, -1.0):
        lo, hi = 0.0, scale
        while test(predicted + sign * hi) <= z:  # at most log2(10⁶) ≈ 20 doublings
            lo, hi = hi, 2.0 * hi
            if hi > 1e6 * scale:
                break
        else:
            while hi - lo > 0.01 * hi:
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if test(predicted + sign * mid) <= z else (lo, mid)
            best = min(best, hi)
    return best


def richardson_inverse_n(values, se, n, *, two_n_error: str = "zero") -> tuple[float, float, float]:
    """Richardson extrapolation to n = ∞ on the two largest n, assuming y(n) = y_∞ + a/n locally.

    Returns (y_∞, its standard error, an estimate of its extrapolation error): the
    change of the Richardson value from the previous pair of n. With two n nothing
    tests the 1/n model: ``two_n_error="zero"`` trusts it (for biases known to be 1/n),
    ``"step"`` takes the extrapolation step |y_∞ − y(n_max)| itself as the error.
    For biases that are 1/n only up to slowly varying factors (e.g. the
    (log n)^k/n of kernel particle methods whose Gaussian tails are sparsely
    sampled), this is the honest error bar, where a global 1/n fit would claim a
    precision it does not have. With a single n it returns (y, se, 0).
    """
    values, se, n = (np.asarray(a, float) for a in (values, se, n))
    order = np.argsort(n)
    values, se, n = values[order], se[order], n[order]
    if n.size == 1:
        return float(values[0]), float(se[0]), 0.0

    def pair(i, j):
        w1, w2 = n[i] / (n[j] - n[i]), n[j] / (n[j] - n[i])  # y_∞ = w2·y_j − w1·y_i
        return w2 * values[j] - w1 * values[i], math.hypot(w2 * se[j], w1 * se[i])

    if two_n_error not in ("zero", "step"):
        raise ValueError(f"two_n_error must be 'zero' or 'step', got {two_n_error!r}")
    y, e = pair(-2, -1)
    if n.size >= 3:
        model = abs(y - pair(-3, -2)[0])
    else:
        model = abs(y - values[-1]) if two_n_error == "step" else 0.0
    return float(y), float(e), float(model)
