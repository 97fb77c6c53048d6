"""The generic SDE solver: Euler–Maruyama in R^d against the exact discrete OU law, and Brownian
motion on the sphere against its closed-form mean decay."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from sinkflow.sde import solve_sde, sphere_brownian
from sinkflow.sphere import uniform


def test_euler_maruyama_ou_matches_the_discrete_chain():
    """dX = −θX dt + σ dW by EM with step h is the AR(1) chain X ← (1 − θh)X + σ√h ξ: its mean is
    (1 − θh)^k m₀ and its stationary variance σ²/(θ(2 − θh)) (0.5263 here, against 0.5 for the SDE
    itself: the test sees the EM bias, so it would fail for a solver that is not EM at step h)."""
    jax.config.update("jax_enable_x64", True)
    theta, sigma, h, N = 1.0, 1.0, 0.1, 40_000
    y0 = jnp.full((N,), 2.0)
    ts = np.array([0.0, 1.0, 8.0])  # (1 − θh)^160 ≈ 5e-8: stationary by T

    def drift(t, y, a):
        return -a * y

    def diffusion(t, y, a):
        return lx.FunctionLinearOperator(lambda w: sigma * w, jax.ShapeDtypeStruct(y.shape, y.dtype))

    sol = solve_sde(drift, diffusion, y0, ts, theta, key=jax.random.key(0), dt=h)
    assert int(sol.status) == 0
    y1, yT = np.asarray(sol.ys[1]), np.asarray(sol.ys[2])
    m1 = 2.0 * (1 - theta * h) ** 10
    v1 = sigma**2 * h * (1 - (1 - theta * h) ** 20) / (1 - (1 - theta * h) ** 2)
    assert abs(y1.mean() - m1) < 4 * np.sqrt(v1 / N)
    v_inf = sigma**2 / (theta * (2 - theta * h))
    se = v_inf * np.sqrt(2.0 / N)
    assert abs(yT.var() - v_inf) < 4 * se
    assert abs(yT.var() - 0.5) > 4 * se  # and it is not the continuous-time variance


def test_brownian_motion_on_the_sphere_mean_decays_at_rate_d_minus_1_times_nu():
    """With zero drift, E⟨X_t, e⟩ = e^{−(d−1)νt}⟨X₀, e⟩ (the first spherical harmonic is an
    eigenfunction of Δ_S with eigenvalue −(d − 1)); projected EM has an O(dt) bias."""
    jax.config.update("jax_enable_x64", True)
    d, nu, dt, N = 3, 0.5, 0.005, 4000
    e = jnp.zeros(d).at[0].set(1.0)
    y0 = jnp.broadcast_to(e, (N, d))
    ts = np.array([0.0, 0.5, 1.0])
    ito, diffusion = sphere_brownian(jnp.sqrt(2.0 * nu), y0.shape, y0.dtype)
    sol = solve_sde(lambda t, y, a: -ito(y), diffusion, y0, ts, None, key=jax.random.key(1), dt=dt, manifold="sphere")
    assert int(sol.status) == 0
    norms = np.linalg.norm(np.asarray(sol.ys), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-12)
    for k, t in enumerate(ts):
        mean = float(np.mean(np.asarray(sol.ys[k])[:, 0]))
        pred = np.exp(-(d - 1) * nu * t)
        se = np.sqrt(max(1e-12, 1 - pred**2) / N)
        assert abs(mean - pred) < 4 * se + 2 * dt, (t, mean, pred)


def test_bad_input_is_refused():
    y0 = uniform(jax.random.key(0), (4,), 3)
    op = lambda t, y, a: lx.IdentityLinearOperator(jax.ShapeDtypeStruct(y.shape, y.dtype))  # noqa: E731
    with pytest.raises(ValueError, match="manifold"):
        solve_sde(lambda t, y, a: y, op, y0, [0.0, 1.0], None, key=jax.random.key(0), dt=0.1, manifold="torus")
    with pytest.raises(ValueError, match="dt > 0"):
        solve_sde(lambda t, y, a: y, op, y0, [0.0, 1.0], None, key=jax.random.key(0), dt=0.0)
    with pytest.raises(ValueError, match="increasing"):
        solve_sde(lambda t, y, a: y, op, y0, [1.0, 0.0], None, key=jax.random.key(0), dt=0.1)


def test_per_step_increments_have_the_same_law_and_are_reproducible():
    """brownian="steps" draws N(0, h) from fold_in(key, step): the EM chain's law is the same as with
    the Brownian tree (the AR(1) stationary variance σ²/(θ(2 − θh))), the same key gives bitwise the
    same numbers, another key other numbers."""
    jax.config.update("jax_enable_x64", True)
    theta, sigma, h, N = 1.0, 1.0, 0.1, 40_000

    def diffusion(t, y, a):
        return lx.FunctionLinearOperator(lambda w: sigma * w, jax.ShapeDtypeStruct(y.shape, y.dtype))

    run = lambda k: solve_sde(lambda t, y, a: -a * y, diffusion, jnp.full((N,), 2.0), np.array([0.0, 8.0]), theta, key=jax.random.key(k), dt=h, brownian="steps")  # noqa: E731
    a, b, c = run(0), run(0), run(1)
    assert int(a.status) == 0 and int(a.num_steps) == 80
    assert np.array_equal(np.asarray(a.ys), np.asarray(b.ys)) and not np.array_equal(np.asarray(a.ys), np.asarray(c.ys))
    v_inf = sigma**2 / (theta * (2 - theta * h))
    assert abs(float(np.var(np.asarray(a.ys[-1]))) - v_inf) < 4 * v_inf * np.sqrt(2.0 / N)
    with pytest.raises(ValueError, match="brownian"):
        solve_sde(lambda t, y, a: y, diffusion, jnp.ones(3), [0.0, 1.0], None, key=jax.random.key(0), dt=0.1, brownian="fast")
