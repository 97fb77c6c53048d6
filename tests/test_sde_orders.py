"""Convergence orders of Euler–Maruyama as regression slopes over step sizes, on one Brownian path
family per key (the virtual Brownian tree gives the same path at every step, so errors against a
fine solve of the same paths are measured without Monte-Carlo noise in the comparison)."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from sinkflow.estimators import log_log_slope
from sinkflow.sde import solve_sde, sphere_brownian
from sinkflow.sphere import uniform

HS = np.array([0.2, 0.1, 0.05, 0.025])
H_REF = 0.025 / 16


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)


def _ou(h, key, N=2000):
    theta, sigma = 1.0, 0.8

    def diffusion(t, y, a):
        return lx.FunctionLinearOperator(lambda w: sigma * w, jax.ShapeDtypeStruct(y.shape, y.dtype))

    y0 = jnp.linspace(-2.0, 2.0, N)
    return solve_sde(lambda t, y, a: -theta * y + jnp.sin(y), diffusion, y0, np.array([0.0, 1.0]), None, key=key, dt=h).ys[-1]


def test_euler_maruyama_has_strong_order_one_with_additive_noise():
    """dX = (−X + sin X)dt + σ dW: with additive noise EM coincides with Milstein, so its strong
    order is 1. (The weak error's Monte-Carlo error shrinks like the strong error, so at 2000 paths a
    weak slope is noise; the weak bias is tested exactly on OU in tests/test_sde.py.)"""
    key = jax.random.key(0)
    ref = np.asarray(_ou(H_REF, key))
    strong = [np.mean(np.abs(np.asarray(_ou(h, key)) - ref)) for h in HS]
    assert log_log_slope(HS, np.asarray(strong)) == pytest.approx(1.0, abs=0.15)


def test_projected_euler_maruyama_has_strong_order_one_half_on_the_sphere():
    """Brownian motion on S² (multiplicative noise σP_X dW): strong order ½."""
    d, N = 3, 1000
    key = jax.random.key(1)
    y0 = uniform(jax.random.key(2), (N,), d, jnp.float64)
    ito, diffusion = sphere_brownian(jnp.sqrt(2.0 * 0.5), y0.shape, y0.dtype)

    def run(h):
        return np.asarray(solve_sde(lambda t, y, a: -ito(y), diffusion, y0, np.array([0.0, 1.0]), None, key=key, dt=h, manifold="sphere").ys[-1])

    ref = run(H_REF)
    strong = [np.mean(np.linalg.norm(run(h) - ref, axis=-1)) for h in HS]
    assert log_log_slope(HS, np.asarray(strong)) == pytest.approx(0.5, abs=0.15)


def test_shark_has_strong_order_one_and_a_half_with_additive_noise():
    """The same nonlinear additive-noise SDE through diffrax's ShARK (space-time Lévy area on the
    same tree): strong order 1.5, against 1 for Euler–Maruyama."""
    theta, sigma = 1.0, 0.8

    def diffusion(t, y, a):
        return lx.DiagonalLinearOperator(jnp.full(y.shape, sigma, y.dtype))

    y0 = jnp.linspace(-2.0, 2.0, 2000)
    key = jax.random.key(0)

    def run(h):
        return np.asarray(solve_sde(lambda t, y, a: -theta * y + jnp.sin(y), diffusion, y0, np.array([0.0, 1.0]), None, key=key, dt=h, method="shark").ys[-1])

    ref = run(H_REF)
    strong = [np.mean(np.abs(run(h) - ref)) for h in HS]
    assert log_log_slope(HS, np.asarray(strong)) == pytest.approx(1.5, abs=0.2)


def test_shark_is_refused_where_it_does_not_apply():
    y0 = jnp.ones((4, 3))
    ito, diffusion = sphere_brownian(1.0, y0.shape, y0.dtype)
    with pytest.raises(ValueError, match="additive noise only"):
        solve_sde(lambda t, y, a: -ito(y), diffusion, y0, np.array([0.0, 1.0]), None, key=jax.random.key(0), dt=0.1, manifold="sphere", method="shark")
    with pytest.raises(ValueError, match="brownian='tree'"):
        solve_sde(lambda t, y, a: -y, diffusion, y0, np.array([0.0, 1.0]), None, key=jax.random.key(0), dt=0.1, method="shark", brownian="steps")
    with pytest.raises(ValueError, match="method='rk4'"):
        solve_sde(lambda t, y, a: -y, diffusion, y0, np.array([0.0, 1.0]), None, key=jax.random.key(0), dt=0.1, method="rk4")
