"""Noisy tokens on the sphere: tangent noise, exact norms, reproducible paths, the noise-free limit, the Kuramoto branch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import i0, i1

from sinkflow.attention import Attention
from sinkflow.dynamics.attention import attention_field
from sinkflow.dynamics.noisy import solve_noisy
from sinkflow.observables import order_parameter
from sinkflow.solve import SolverConfig, solve
from sinkflow.sphere import normalize, uniform
from sinkflow.theory import kuramoto_branch


def _run(kappa, key=1, dt=0.01, d=3, T=1.0, beta=1.0):
    x0 = uniform(jax.random.key(0), (2, 6), d, jnp.float64)
    ts = np.linspace(0.0, T, 11)
    return x0, ts, solve_noisy(attention_field, x0, ts, Attention(beta=jnp.asarray(beta), normalization="none"), kappa=kappa, key=jax.random.key(key), dt=dt)


def test_norms_exact_paths_reproducible_and_key_dependent():
    x0, ts, sol = _run(2.0)
    assert int(sol.status) == 0 and sol.ys.shape == (11, 2, 6, 3)
    np.testing.assert_allclose(jnp.linalg.norm(sol.ys, axis=-1), 1.0, atol=1e-14)
    _, _, again = _run(2.0)
    np.testing.assert_array_equal(np.asarray(sol.ys), np.asarray(again.ys))
    _, _, other = _run(2.0, key=2)
    assert float(jnp.max(jnp.abs(other.ys[-1] - sol.ys[-1]))) > 1e-2


def test_noise_is_tangent_and_has_the_brownian_variance():
    """One step from x with zero drift: the increment before projection is √(2/κ)P_x ΔW minus the radial Itô term,
    so its tangent part has covariance (2/κ)dt·P_x: E|tangent increment|² = (2/κ)(d−1)dt."""
    d, kappa, dt, m = 4, 0.5, 1e-3, 4000
    x0 = jnp.tile(jnp.eye(d, dtype=jnp.float64)[:1], (m, 1))[:, None, :]  # m independent tokens at e₁
    zero = lambda t, y, a: jnp.zeros_like(y)  # noqa: E731
    sol = solve_noisy(zero, x0, np.array([0.0, dt]), None, kappa=kappa, key=jax.random.key(3), dt=dt)
    step = sol.ys[-1, :, 0, :] - x0[:, 0, :]
    tangent = step[:, 1:]
    mean_sq = float(jnp.mean(jnp.sum(tangent**2, axis=-1)))
    expected = 2.0 / kappa * (d - 1) * dt
    assert abs(mean_sq - expected) < 4 * expected * np.sqrt(2.0 / ((d - 1) * m))  # chi-square spread
    # the normal part is second order (renormalisation), not a first-order kick
    assert float(jnp.max(jnp.abs(step[:, 0]))) < 50 * expected


def test_large_kappa_recovers_the_ode():
    x0, ts, sol = _run(1e12, dt=0.005)
    ode = solve(attention_field, x0, ts, Attention(beta=jnp.asarray(1.0), normalization="none"), config=SolverConfig(method="euler", dt=0.005), project=normalize)
    np.testing.assert_allclose(np.asarray(sol.ys), np.asarray(ode.ys), atol=1e-5)


@pytest.mark.parametrize("kappa", [2.5, 3.0, 6.0, 20.0])
def test_kuramoto_branch_solves_the_self_consistency(kappa):
    r = kuramoto_branch(kappa)
    assert 0 < r < 1 and abs(i1(kappa * r) / i0(kappa * r) - r) < 1e-12
    assert kuramoto_branch(2.0) == 0.0 and kuramoto_branch(1.0) == 0.0
    assert float(order_parameter(jnp.ones((3, 2)) / np.sqrt(2))) == pytest.approx(1.0)
