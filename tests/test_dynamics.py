"""Particle simulations against the closed forms and theorems of MATH.md §1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import sphere, theory
from sinkflow.attention import Attention
from sinkflow.dynamics.attention import attention_field, sa, usa
from sinkflow.observables import (
    interaction_energy,
    offdiag_cosine_stats,
    pairwise_cosines,
)
from sinkflow.solve import SolverConfig, solve

TIGHT = SolverConfig("tsit5", dt=1e-3, rtol=1e-11, atol=1e-13)


def _gamma_stats(x0, params, ts, config=TIGHT):
    sol = solve(attention_field, x0, ts, params, config=config, observable=lambda t, x, a: jnp.stack(offdiag_cosine_stats(x)), project=sphere.normalize)
    assert int(sol.status) == 0
    return np.asarray(sol.ys)


@pytest.mark.parametrize("model", ["sa", "usa"])
@pytest.mark.parametrize("beta", [0.0, 1.5])
def test_orthonormal_start_follows_scalar_ode(model, beta):
    n, d = 4, 6
    ts = np.linspace(0, 4, 41)
    x0 = sphere.orthonormal_frame(n, d, jax.random.key(0), jnp.float64)
    params = sa(beta) if model == "sa" else usa(beta)
    g = _gamma_stats(x0, params, ts)
    ode = np.asarray(theory.equiangular_gamma(jnp.asarray(ts), beta, n, model))
    np.testing.assert_allclose(g[:, 0], ode, atol=1e-9)
    np.testing.assert_allclose(g[:, 2] - g[:, 1], 0.0, atol=1e-9)
    if beta == 0.0:
        np.testing.assert_allclose(g[:, 0], theory.gamma_beta0(ts, n), atol=1e-9)


def test_regular_simplex_stays_put():
    n = 5
    x0 = sphere.regular_simplex(n, n, None, jnp.float64)
    g = _gamma_stats(x0, sa(2.0), np.linspace(0, 3, 4))
    np.testing.assert_allclose(g[:, 1:], -1.0 / (n - 1), atol=1e-12)


@pytest.mark.parametrize("model", ["sa", "usa"])
def test_cone_collapse_exponential_with_rate_at_least_the_bound(model):
    n, d, beta = 6, 3, 2.0
    x0 = sphere.cone(jax.random.key(3), (n,), d, 0.5, jnp.float64)
    alpha0 = float(jnp.min(pairwise_cosines(x0)))
    assert alpha0 > 0
    ts = np.linspace(0, 6, 61)
    params = sa(beta) if model == "sa" else usa(beta)
    gmin = _gamma_stats(x0, params, ts)[:, 1]
    lam = float(theory.cone_collapse_rate(alpha0, beta, n, model))
    bound = (1 - alpha0) * np.exp(-lam * ts)
    assert np.all(1 - gmin <= bound * (1 + 1e-9))
    ok = (1 - gmin) > 1e-10
    slope = np.polyfit(ts[ok], np.log(1 - gmin[ok]), 1)[0]
    assert -slope >= lam


@pytest.mark.parametrize("model,beta", [("sa", 0.0), ("sa", 3.0), ("usa", 1.0)])
def test_local_rate_near_consensus(model, beta):
    """ε = 1 − γ decays like e^{−rate·t}: rate 2 for SA (any β), 2e^β for USA."""
    n = 4
    rate = float(theory.local_rate(beta, model))
    x0 = sphere.equiangular(n, n, 1 - 1e-3, None, jnp.float64)
    ts = np.linspace(0, 10.0 / rate, 41)
    g = _gamma_stats(x0, sa(beta) if model == "sa" else usa(beta), ts)[:, 0]
    eps = 1 - g
    ok = (eps < 1e-5) & (eps > 1e-11)
    slope = np.polyfit(ts[ok], np.log(eps[ok]), 1)[0]
    np.testing.assert_allclose(-slope, rate, rtol=0.01)


@pytest.mark.parametrize("normalization", ["softmax", "none"])
@pytest.mark.parametrize("scale", [1.0, -1.0])
def test_energy_identity_against_autodiff(normalization, scale):
    """dE/dt = ∇E·ẋ (autodiff) equals the closed-form dissipation (MATH.md §1)."""
    from sinkflow.studies.energy import dissipation

    x = sphere.uniform(jax.random.key(9), (7,), 3, jnp.float64)
    p = Attention(beta=jnp.asarray(1.7), value_scale=jnp.asarray(scale), normalization=normalization)
    v = attention_field(0.0, x, p)
    dEdt = jnp.sum(jax.grad(lambda y: interaction_energy(y, p.beta))(x) * v)
    np.testing.assert_allclose(dissipation(x, p), dEdt, rtol=1e-12)
    assert np.sign(float(dEdt)) == np.sign(scale)


def test_usa_is_gradient_flow_of_energy():
    """USA: Ẋ = n P_X ∇_X E_β."""
    n = 6
    x = sphere.uniform(jax.random.key(4), (n,), 4, jnp.float64)
    g = jax.grad(lambda y: interaction_energy(y, 2.0))(x)
    np.testing.assert_allclose(attention_field(0.0, x, usa(2.0)), n * sphere.project_tangent(x, g), atol=1e-13)


def test_field_is_tangent_and_scale_invariant():
    x = sphere.uniform(jax.random.key(5), (3, 8), 5, jnp.float64)
    v = attention_field(0.0, x, sa(1.0))
    np.testing.assert_allclose(jnp.sum(v * x, -1), 0.0, atol=1e-14)
    np.testing.assert_allclose(attention_field(0.0, 3.0 * x, sa(1.0)), v, atol=1e-14)


def test_causal_attention_converges_to_the_first_token():
    """CAUSAL theorem on a small case: token 1 never moves, every token converges to x_1(0), token 2 at rate 1/2."""
    from sinkflow.attention import random_matrix

    n, d = 4, 3
    x0 = sphere.uniform(jax.random.key(5), (n,), d, jnp.float64)
    ks = jax.random.split(jax.random.key(6), 2)
    params = Attention(beta=1.5, Q=random_matrix(ks[0], d, "gaussian", jnp.float64), K=random_matrix(ks[1], d, "gaussian", jnp.float64), causal=True)
    ts = np.linspace(0, 60, 61)
    sol = solve(attention_field, x0, ts, params, config=TIGHT, project=sphere.normalize)
    dist = np.linalg.norm(np.asarray(sol.ys) - np.asarray(x0[0]), axis=-1)  # (t, n)
    assert np.max(dist[:, 0]) < 1e-13
    assert np.max(dist[-1]) < 1e-8
    sel = (dist[:, 1] > 1e-9) & (dist[:, 1] < 1e-4)
    slope = np.polyfit(ts[sel], np.log(dist[sel, 1]), 1)[0]
    assert slope == pytest.approx(-0.5, rel=0.01)
