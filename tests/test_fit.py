"""Drift and diffusivity recovered from simulated trajectories, inside their confidence intervals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow.fit import fit_drift


def _em_ou(theta, nu, dt, N, d, seed, rotation=0.0):
    """One Euler–Maruyama step of dX = (−θX + rotation·JX)dt + √(2ν)dW from a spread-out cloud."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, d)) * 1.5 + 0.3
    J = np.zeros((d, d))
    J[0, 1], J[1, 0] = -rotation, rotation
    b = -theta * x + x @ J.T
    return x, x + b * dt + np.sqrt(2 * nu * dt) * rng.normal(size=(N, d))


@pytest.mark.parametrize("seed", [0, 1])
def test_ou_drift_and_diffusivity_are_recovered_within_their_intervals(seed):
    theta, nu, dt, N, d = 1.3, 0.4, 0.05, 20000, 3
    x, y = _em_ou(theta, nu, dt, N, d, seed)
    fit = fit_drift(x, y, dt, bootstrap=100, seed=seed)
    # 4 standard errors (the bootstrap 95% interval is ±1.96 SE): 9 entries and ν tested jointly
    se_nu = (fit.nu_ci[1] - fit.nu_ci[0]) / 3.92
    assert abs(fit.nu - nu) <= 4 * se_nu and se_nu < 0.02 * nu
    se_S = (fit.S_ci[1] - fit.S_ci[0]) / 3.92
    assert np.all(np.abs(fit.S + theta * np.eye(d)) <= 4 * se_S) and se_S.max() < 0.05 * theta
    assert fit.rotation < 0.05 and 0.0 < fit.r2 < 1.0 and np.isfinite(fit.heldout)


def test_the_rotational_part_is_reported_not_taken_for_a_gradient():
    x, y = _em_ou(1.0, 0.2, 0.02, 20000, 2, 3, rotation=0.8)
    fit = fit_drift(x, y, 0.02, bootstrap=0)
    assert fit.rotation == pytest.approx(0.8 / np.hypot(1.0, 0.8), abs=0.05)
    np.testing.assert_allclose(np.linalg.eigvalsh(fit.S), [-1.0, -1.0], atol=0.1)


def test_r2_rises_to_one_as_the_noise_falls_on_a_known_field():
    """The velocity noise has variance 2ν/dt against the drift's θ²Var(x): R² → 1 as that ratio
    falls (here ν → 0 at fixed dt), the trend the fit-potential study is to report."""
    r2 = [fit_drift(*_em_ou(1.0, nu, 0.05, 5000, 2, 4), 0.05, bootstrap=0).r2 for nu in (1.0, 0.1, 0.01, 1e-4)]
    assert all(a < b for a, b in zip(r2, r2[1:])) and r2[-1] > 0.99


def test_on_the_sphere_velocities_are_tangent_and_nu_uses_the_intrinsic_dimension():
    from sinkflow.dynamics.langevin import Linear, solve_langevin
    from sinkflow.sphere import uniform

    jax.config.update("jax_enable_x64", True)
    d, N, nu, dt = 3, 20000, 0.3, 0.01
    x0 = uniform(jax.random.key(1), (N,), d, jnp.float64)
    sol = solve_langevin(Linear(a=jnp.zeros(d)), x0, np.array([0.0, dt]), nu=nu, key=jax.random.key(2), dt=dt, manifold="sphere", brownian="steps")
    x, y = np.asarray(sol.ys[0]), np.asarray(sol.ys[1])
    fit = fit_drift(x, y, dt, bootstrap=100, manifold="sphere")
    # the projected step renormalises: the tangent residual variance is 2ν(d−1)dt to O(dt)
    assert fit.nu_ci[0] * (1 - 4 * nu * dt) <= nu <= fit.nu_ci[1] * (1 + 4 * nu * dt)


def test_bad_input_is_refused():
    x = np.zeros((20, 2))
    with pytest.raises(ValueError, match="same shape"):
        fit_drift(x, np.zeros((20, 3)), 0.1)
    with pytest.raises(ValueError, match="dt > 0"):
        fit_drift(x, x, 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        fit_drift(x, np.full((20, 2), np.nan), 0.1)
    with pytest.raises(ValueError, match="particles"):
        fit_drift(np.zeros((3, 2)), np.zeros((3, 2)), 0.1)
