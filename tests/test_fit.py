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


# --- fit_field: the JAX fitter (polynomial features, gradient or general form) ---------------

from sinkflow.fit import fit_field, monomials  # noqa: E402


def test_monomials_count_and_degree():
    E = monomials(3, 3)
    assert E.shape == (19, 3) and set(E.sum(axis=1)) == {1, 2, 3}
    assert monomials(2, 2, constant=True).shape == (6, 2)
    with pytest.raises(ValueError, match="degree"):
        monomials(2, 0)


def test_gradient_fit_recovers_the_ou_potential_and_nu():
    jax.config.update("jax_enable_x64", True)
    theta, nu, dt, N, d = 1.3, 0.4, 0.05, 20000, 3
    x, y = _em_ou(theta, nu, dt, N, d, 5)
    f = fit_field(jnp.asarray(x), jnp.asarray(y), dt, degree=2, gradient=True, key=jax.random.key(0), true_drift=jnp.asarray(-theta * x))
    E = monomials(d, 2)
    coef = np.asarray(f.coef)
    squares = [k for k, e in enumerate(E) if e.max() == 2]
    # U = θ|x|²/2: the x_j² coefficients are θ/2, all others 0 (to the OLS noise, ~ 1e-2 here)
    np.testing.assert_allclose(coef[squares], theta / 2, atol=0.02)
    assert np.max(np.abs(np.delete(coef, squares))) < 0.03
    se = (float(f.nu_hi) - float(f.nu_lo)) / 3.92
    assert abs(float(f.nu) - nu) <= 4 * se and float(f.r2_true) > 0.999


def test_only_the_general_form_carries_a_rotation():
    """b = −x + 0.8Jx (J a rotation generator) is not a gradient: the general fit reaches the noise
    floor, the gradient fit keeps the rotational part as error."""
    jax.config.update("jax_enable_x64", True)
    x, y = _em_ou(1.0, 0.05, 0.02, 10000, 2, 6, rotation=0.8)
    J = np.array([[0.0, -0.8], [0.8, 0.0]])
    b = -x + x @ J.T
    fits = {g: fit_field(jnp.asarray(x), jnp.asarray(y), 0.02, degree=2, gradient=g, key=jax.random.key(1), bootstrap=20, true_drift=jnp.asarray(b)) for g in (True, False)}
    assert float(fits[False].r2_true) > 0.99
    # the gradient part of −x + 0.8Jx is −x (J is antisymmetric): R² = 1 − |0.8Jx|²/|b − b̄|² ≈ 1 − 0.64/1.64
    assert float(fits[True].r2_true) == pytest.approx(1 - 0.64 / 1.64, abs=0.05)


def test_on_the_sphere_the_linear_potential_and_nu_are_recovered():
    """Langevin on S² with U = −⟨a, x⟩ (one projected EM step from uniform points): the gradient
    fit of degree 1 finds U = θ·x with θ = −a, and ν from the intrinsic dimension 2."""
    jax.config.update("jax_enable_x64", True)
    from sinkflow.dynamics.langevin import Linear, solve_langevin
    from sinkflow.sphere import uniform

    a, nu, dt = jnp.array([1.5, -0.5, 0.0]), 0.3, 0.01
    x0 = uniform(jax.random.key(2), (40000,), 3, jnp.float64)
    x1 = solve_langevin(Linear(a=a), x0, np.array([0.0, dt]), nu=nu, key=jax.random.key(3), dt=dt, manifold="sphere", brownian="steps").ys[-1]
    f = fit_field(x0, x1, dt, degree=1, gradient=True, manifold="sphere", key=jax.random.key(4))
    np.testing.assert_allclose(np.asarray(f.coef), -np.asarray(a), atol=0.08)
    se = (float(f.nu_hi) - float(f.nu_lo)) / 3.92
    # projected EM: the tangent step is shortened by 1 + O(dt); allow ν·dt·(d − 1) on top of 4 SE
    assert abs(float(f.nu) - nu) <= 4 * se + 2 * nu * dt


def test_the_sa_field_is_minus_the_tangent_gradient_of_its_layer_potential():
    """The fit-potential study's claim: P_x Σ_j softmax_j(β⟨x, x_j⟩)x_j = −P_x∇U(x),
    U(x) = −β⁻¹ log Σ_j e^{β⟨x, x_j⟩} with the tokens x_j held fixed."""
    jax.config.update("jax_enable_x64", True)
    from sinkflow.dynamics.attention import attention_field, sa
    from sinkflow.sphere import project_tangent, uniform
    from sinkflow.studies.fit_potential import _sa_potential

    x = uniform(jax.random.key(5), (30,), 4, jnp.float64)
    beta = 2.5
    field = attention_field(0.0, x, sa(beta))
    grad = jax.vmap(jax.grad(lambda z: _sa_potential(z[None, :], x, beta)[0]))(x)
    np.testing.assert_allclose(np.asarray(field), np.asarray(project_tangent(x, -grad)), atol=1e-12)


def test_fit_field_refuses_bad_input():
    x = jnp.zeros((100, 3))
    with pytest.raises(ValueError, match="degree"):
        fit_field(x, x, 0.1, degree=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="same shape"):
        fit_field(x, x[:50], 0.1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="dt > 0"):
        fit_field(x, x, -1.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="too few"):
        fit_field(x[:6], x[:6], 0.1, degree=3, gradient=False, key=jax.random.key(0))
