"""JKO steps: the entropic grid solver against the derived Gaussian step, the Gaussian iterates against
the exact Fokker–Planck solution at first order in τ, and the Gibbs law of a double well as the limit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import theory
from sinkflow.estimators import log_log_slope
from sinkflow.jko import entropic_jko


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)


def _grid(h=0.02, L=5.0):
    return jnp.arange(-L, L + h / 2, h)[:, None], h


@pytest.mark.parametrize("s0", [0.3, 1.5])
def test_grid_jko_reproduces_the_gaussian_jko_step(s0):
    """From N(m₀, s₀) with U = θx²/2 the exact JKO step is Gaussian (theory.gaussian_jko_step); the
    entropic grid solver matches its mean to the Sinkhorn tolerance and its variance to the entropic
    blur, below γ per step."""
    x, h = _grid(h=0.03, L=7.0)  # the start's tails inside the grid (s₀ = 1.5: 4.9σ, 5e-7 of the mass beyond)
    m0, theta, nu, tau, gamma, steps = 1.0, 1.0, 0.5, 0.1, 4e-3, 3
    p0 = jnp.exp(-((x[:, 0] - m0) ** 2) / (2 * s0))
    r = entropic_jko(p0 / p0.sum(), x, theta * x[:, 0] ** 2 / 2, nu=nu, tau=tau, gamma=gamma, steps=steps, volume=h, tol=1e-9)
    assert np.all(np.asarray(r.change) <= 1e-9)
    m, s = m0, s0
    for k in range(1, steps + 1):
        m, s = theory.gaussian_jko_step(m, s, theta, nu, tau)
        q = np.asarray(r.masses[k])
        mq = float(q @ np.asarray(x[:, 0]))
        sq = float(q @ (np.asarray(x[:, 0]) - mq) ** 2)
        assert abs(q.sum() - 1) < 1e-6 and abs(mq - float(m)) < 1e-5
        assert 0.0 <= sq - float(s) <= k * gamma, (k, sq, float(s))


def test_gaussian_jko_iterates_converge_to_fokker_planck_at_first_order_in_tau():
    theta, nu, m0, s0, T = 1.2, 0.4, 1.5, 2.0, 1.0
    taus = np.array([0.1, 0.05, 0.025, 0.0125, 0.00625])
    errs = []
    for tau in taus:
        m, s = m0, s0
        for _ in range(int(round(T / tau))):
            m, s = theory.gaussian_jko_step(m, s, theta, nu, tau)
        errs.append(abs(float(m) - float(theory.ou_mean(m0, theta, T))) + abs(float(s) - float(theory.ou_variance(s0, theta, nu, T))))
    assert log_log_slope(taus, np.asarray(errs)) == pytest.approx(1.0, abs=0.05)


def test_double_well_jko_flows_to_the_gibbs_law_and_lowers_the_free_energy():
    """U = (x² − 1)², ν = 0.4: the iterates from a Gaussian in one well approach e^{−U/ν}/Z (both
    wells, a non-Gaussian law) and the discrete free energy Σq(U + ν log(q/h)) never increases.
    Large implicit steps (τ = 2) cross the barrier: JKO is unconditionally stable."""
    x, h = _grid(h=0.05, L=2.5)
    U = (x[:, 0] ** 2 - 1.0) ** 2
    nu = 0.4
    p0 = jnp.exp(-((x[:, 0] - 1.0) ** 2) / 0.1)
    r = entropic_jko(p0 / p0.sum(), x, U, nu=nu, tau=2.0, gamma=1e-2, steps=24, volume=h, tol=1e-9)
    gibbs = np.exp(-np.asarray(U) / nu)
    gibbs /= gibbs.sum()
    q = np.asarray(r.masses)
    assert np.abs(q[-1] - gibbs).sum() < 0.02 and np.abs(q[0] - gibbs).sum() > 0.5
    F = (q * (np.asarray(U)[None] + nu * np.log(np.maximum(q, 1e-300) / h))).sum(axis=1)
    assert np.all(np.diff(F) <= 1e-9)
