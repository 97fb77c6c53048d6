"""The circle model (d = 2 in angles), its two-cluster reduction and the stiff long-horizon solver."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import sphere, theory
from sinkflow.dynamics.attention import attention_field, circle_field, sa, usa
from sinkflow.solve import SolverConfig, solve

TIGHT = SolverConfig("tsit5", dt=1e-3, rtol=1e-11, atol=1e-13)


def _numpy_circle(theta, beta, model):
    """MATH.md §1: θ_i' = Σ_j w_ij sin(θ_j − θ_i), w = softmax_j(β cos(θ_j − θ_i)) (SA) or e^{β cos}/n (USA)."""
    diff = theta[None, :] - theta[:, None]
    e = np.exp(beta * np.cos(diff))
    w = e / e.sum(axis=1, keepdims=True) if model == "sa" else e / theta.size
    return np.sum(w * np.sin(diff), axis=1)


@pytest.mark.parametrize("model", ["sa", "usa"])
def test_circle_field_matches_the_explicit_formula(model):
    theta = np.random.default_rng(0).uniform(0, 2 * np.pi, 9)
    params = sa(2.5) if model == "sa" else usa(2.5)
    got = np.asarray(circle_field(0.0, jnp.asarray(theta), params))
    np.testing.assert_allclose(got, _numpy_circle(theta, 2.5, model), rtol=1e-12, atol=1e-14)


def test_circle_field_is_the_sphere_dynamics_in_angles():
    theta0 = jnp.asarray(np.random.default_rng(1).uniform(0, 2 * np.pi, 7))
    ts = np.linspace(0, 6, 13)
    params = sa(3.0)
    th = solve(circle_field, theta0, ts, params, config=TIGHT).ys
    x = solve(attention_field, sphere.circle(theta0), ts, params, config=TIGHT, project=sphere.normalize).ys
    np.testing.assert_allclose(np.asarray(sphere.circle(th)), np.asarray(x), atol=1e-9)


@pytest.mark.parametrize("model,beta", [("sa", 4.0), ("usa", 2.0)])
def test_two_cluster_reduction_merge_time(model, beta):
    """Two exact point clusters stay point clusters; their separation closes in the quadrature time."""
    n, k, phi0, phi1 = 8, 2, 2.6, 0.3
    m = k / n
    t_merge = float(theory.two_cluster_merge_time(phi0, phi1, beta, m, model))
    theta0 = jnp.asarray([0.0] * k + [phi0] * (n - k))
    params = sa(beta) if model == "sa" else usa(beta)
    cfg = SolverConfig("kvaerno5", dt=1e-2, rtol=1e-10, atol=1e-12)
    th = np.asarray(solve(circle_field, theta0, np.array([0.0, t_merge]), params, config=cfg).ys[-1])
    np.testing.assert_allclose(th[k:] - th[:k].mean(), phi1, rtol=1e-6)
    np.testing.assert_allclose(np.ptp(th[:k]), 0.0, atol=1e-12)


def test_two_cluster_rhs_near_antipodal_is_exponentially_slow():
    """H(π − ψ) → e^{−2β}(m/(1−m) + (1−m)/m) (SA), e^{−β} (USA), ψ → 0: lifetimes e^{cβ}."""
    psi, m = 1e-6, 0.3
    for beta in (4.0, 9.0):
        h_sa = -float(theory.two_cluster_rhs(np.pi - psi, beta, m, "sa")) / np.sin(psi)
        assert h_sa == pytest.approx(np.exp(-2 * beta) * (m / (1 - m) + (1 - m) / m), rel=np.exp(-2 * beta) * 10 + 1e-6)
        h_usa = -float(theory.two_cluster_rhs(np.pi - psi, beta, m, "usa")) / np.sin(psi)
        assert h_usa == pytest.approx(np.exp(-beta), rel=1e-6)


def test_implicit_solver_crosses_long_stiff_horizons():
    """Clustered states are stiff: Tsit5 runs out of 2·10⁴ steps before t = 10⁵, Kvaerno5 needs a few hundred."""
    n = 24
    theta0 = jax.random.uniform(jax.random.key(3), (n,), jnp.float64, 0, 2 * np.pi)
    ts = np.array([0.0, 1e5])
    params = sa(9.0)
    explicit = solve(circle_field, theta0, ts, params, config=SolverConfig("tsit5", dt=1e-2, rtol=1e-8, atol=1e-10, max_steps=20_000))
    implicit = solve(circle_field, theta0, ts, params, config=SolverConfig("kvaerno5", dt=1e-2, rtol=1e-8, atol=1e-10, max_steps=20_000))
    assert int(explicit.status) == 1
    assert int(implicit.status) == 0 and int(implicit.num_steps) < 3000
    # Same trajectory where both can go: t = 50.
    short = np.array([0.0, 50.0])
    a = solve(circle_field, theta0, short, params, config=SolverConfig("tsit5", dt=1e-2, rtol=1e-10, atol=1e-12)).ys[-1]
    b = solve(circle_field, theta0, short, params, config=SolverConfig("kvaerno5", dt=1e-2, rtol=1e-10, atol=1e-12)).ys[-1]
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_circle_field_general_weights_is_the_tangent_component():
    """With Q, K, V ≠ I the angle velocity is the e_θ component of the sphere field."""
    from sinkflow.attention import random_matrix

    theta = jnp.asarray(np.random.default_rng(2).uniform(0, 2 * np.pi, 6))
    ks = jax.random.split(jax.random.key(4), 3)
    params = sa(1.7, Q=random_matrix(ks[0], 2, "gaussian", jnp.float64), K=random_matrix(ks[1], 2, "goe", jnp.float64), V=random_matrix(ks[2], 2, "wishart", jnp.float64))
    v = np.asarray(attention_field(0.0, sphere.circle(theta), params))
    e = np.stack([-np.sin(theta), np.cos(theta)], -1)
    np.testing.assert_allclose(np.asarray(circle_field(0.0, theta, params)), np.sum(v * e, -1), atol=1e-13)
    np.testing.assert_allclose(np.sum(v * np.asarray(sphere.circle(theta)), -1), 0.0, atol=1e-13)
