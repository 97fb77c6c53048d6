"""Piecewise (phased) solves and hybrid attention/MLP blocks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import sphere
from sinkflow.attention import Attention
from sinkflow.dynamics.attention import attention_field
from sinkflow.dynamics.hybrid import mlp_field, random_mlp, solve_hybrid
from sinkflow.solve import SolverConfig, solve, solve_layers


def test_phases_alternate_exactly_against_expm():
    """Two linear phases per layer: y(L) = Π_l e^{B_l τ} e^{A_l τ} y0, saved after every phase."""
    from scipy.linalg import expm

    rng = np.random.default_rng(0)
    L, tau = 3, 0.5
    A, B = rng.normal(size=(L, 3, 3)), rng.normal(size=(L, 3, 3))
    y0 = rng.normal(size=3)
    lin = lambda t, y, M: M @ y  # noqa: E731
    sol = solve_layers((lin, lin), jnp.asarray(y0), np.linspace(0, tau, 2), (jnp.asarray(A), jnp.asarray(B)), config=SolverConfig("tsit5", dt=0.01, rtol=1e-11, atol=1e-12))
    np.testing.assert_allclose(np.asarray(sol.ts), np.arange(2 * L + 1) * tau, atol=1e-14)
    y = y0
    for l in range(L):
        y = expm(A[l] * tau) @ y
        np.testing.assert_allclose(np.asarray(sol.ys[2 * l + 1]), y, rtol=1e-8)
        y = expm(B[l] * tau) @ y
        np.testing.assert_allclose(np.asarray(sol.ys[2 * l + 2]), y, rtol=1e-8)


def test_switch_times_are_step_boundaries():
    """A fixed-step hybrid solve equals attention and MLP solves chained by hand at l and l + ½."""
    n, d, L = 5, 3, 2
    x0 = sphere.uniform(jax.random.key(0), (n,), d, jnp.float64)
    att = Attention(beta=jnp.full((L,), 2.0), value_scale=jnp.ones((L,)))
    mlp = random_mlp(jax.random.key(1), d, 8, 1.5, layers=L, dtype=jnp.float64)
    cfg = SolverConfig("rk4", dt=0.05)
    sol = solve_hybrid(x0, att, mlp, np.linspace(0, 0.5, 3), config=cfg)
    x = x0
    half = np.array([0.0, 0.5])
    for l in range(L):
        x = solve(attention_field, x, half, jax.tree.map(lambda v: v[l], att), config=cfg, project=sphere.normalize).final
        x = solve(mlp_field, x, half, jax.tree.map(lambda v: v[l], mlp), config=cfg, project=sphere.normalize).final
        np.testing.assert_allclose(np.asarray(sol.ys[4 * (l + 1)]), np.asarray(x), atol=1e-13)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(sol.ys), axis=-1), 1.0, atol=1e-12)


def test_mlp_field_is_tangent_and_position_wise():
    x = sphere.uniform(jax.random.key(2), (6,), 4, jnp.float64)
    p = random_mlp(jax.random.key(3), 4, 16, 1.0, dtype=jnp.float64)
    v = np.asarray(mlp_field(0.0, x, p))
    np.testing.assert_allclose(np.sum(v * np.asarray(x), -1), 0.0, atol=1e-14)
    v0 = np.asarray(mlp_field(0.0, x[:1], p))
    np.testing.assert_allclose(v[:1], v0, atol=1e-14)  # token 0 ignores the others
    zero = random_mlp(jax.random.key(3), 4, 16, 0.0, dtype=jnp.float64)
    assert np.all(np.asarray(mlp_field(0.0, x, zero)) == 0.0)


def test_bad_phase_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="layer_args"):
        solve_layers((mlp_field, mlp_field), jnp.zeros((2, 3)), np.linspace(0, 0.5, 2), (1.0,))
    with pytest.raises(ValueError, match="1/2"):
        solve_hybrid(jnp.zeros((2, 3)), None, None, np.linspace(0, 1, 2))
