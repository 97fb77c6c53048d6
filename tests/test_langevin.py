"""Langevin dynamics against exact laws: the discrete Euler–Maruyama chain, the OU closed forms,
the free-energy dissipation identity, the KL decay rate 2θ, and the von Mises–Fisher law on S²."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import theory
from sinkflow.dynamics.langevin import DoubleWell, Features, Linear, Quadratic, drift, solve_langevin
from sinkflow.estimators import decay_rate
from sinkflow.sphere import uniform


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)


def test_ou_particles_follow_the_exact_euler_maruyama_law_and_the_closed_forms():
    """EM at step h maps N(m, sI) to N((1 − θh)m, (1 − θh)²s + 2νh): the sample moments must match
    that chain to Monte-Carlo error (an independent computation), and the continuous closed forms
    m₀e^{−θt}, ν/θ + (s₀ − ν/θ)e^{−2θt} to Monte-Carlo error plus the O(h) bias."""
    d, N, theta, nu, h, s0 = 2, 20000, 1.5, 0.7, 0.01, 0.25
    m0 = jnp.array([2.0, -1.0])
    x0 = m0 + jnp.sqrt(s0) * jax.random.normal(jax.random.key(3), (N, d))
    ts = np.array([0.0, 0.5, 1.0, 3.0])
    sol = solve_langevin(Quadratic(A=theta * jnp.eye(d), m=jnp.zeros(d)), x0, ts, nu=nu, key=jax.random.key(0), dt=h, brownian="steps")
    assert int(sol.status) == 0
    xs = np.asarray(sol.ys)
    emp_m0, emp_s0 = np.asarray(x0).mean(0), np.asarray(x0).var(0)
    for k, t in enumerate(ts):
        steps = int(round(t / h))
        a = (1 - theta * h) ** steps
        m_chain = a * emp_m0
        s_chain = a**2 * emp_s0 + 2 * nu * h * (1 - a**2) / (1 - (1 - theta * h) ** 2)
        se_m = np.sqrt(s_chain / N)
        se_s = s_chain * np.sqrt(2.0 / N)
        np.testing.assert_array_less(np.abs(xs[k].mean(0) - m_chain), 4 * se_m + 1e-12)
        np.testing.assert_array_less(np.abs(xs[k].var(0) - s_chain), 4 * se_s + 1e-12)
        s_exact = float(theory.ou_variance(s0, theta, nu, t))
        assert np.all(np.abs(xs[k].var(0) - s_exact) < 4 * se_s + 2 * nu * h)
        np.testing.assert_allclose(xs[k].mean(0), np.asarray(theory.ou_mean(m0, theta, t)), atol=4 * se_m.max() + 0.01)


def test_free_energy_decreases_with_its_exact_dissipation_and_kl_decays_at_two_theta():
    theta, nu, d = 0.8, 0.5, 3
    m0 = jnp.array([1.0, 0.0, -2.0])
    t = jnp.linspace(0.0, 6.0, 601)
    for s0 in (0.1, 3.0):  # below and above the stationary variance ν/θ = 0.625
        m, s = theory.ou_mean(m0[None], theta, t[:, None]), theory.ou_variance(s0, theta, nu, t)
        F = theory.ou_free_energy(m, s, theta, nu, d)

        def F_of(tt, s0=s0):
            return theory.ou_free_energy(theory.ou_mean(m0, theta, tt), theory.ou_variance(s0, theta, nu, tt), theta, nu, d)

        def H_of(tt, s0=s0):
            return theory.ou_entropy(theory.ou_variance(s0, theta, nu, tt), d)

        dF = jax.vmap(jax.grad(F_of))(t)  # the time derivative of the closed form, by autodiff
        np.testing.assert_allclose(dF, np.asarray(theory.ou_dissipation(m, s, theta, nu, d)), rtol=1e-12, atol=1e-14)
        assert np.all(np.diff(np.asarray(F)) <= 1e-15)
        dH = jax.vmap(jax.grad(H_of))(t)
        np.testing.assert_allclose(dH, np.asarray(theory.ou_entropy_rate(s, theta, nu, d)), rtol=1e-12, atol=1e-14)
        # the diffusive/contractive dichotomy: entropy rises from below ν/θ, falls from above
        assert (np.sign(dH[0]) > 0) == (s0 < nu / theta)
        kl = np.asarray(theory.ou_kl(m, s, theta, nu, d))
        fit = decay_rate(np.asarray(t), kl, (1e-12, 1e-3))
        assert fit.rate == pytest.approx(2 * theta, rel=2e-3)


def test_von_mises_fisher_is_the_stationary_law_of_linear_langevin_on_the_sphere():
    """U = −⟨a, x⟩ on S² with ν = 1: E⟨X, â⟩ → I_{3/2}(κ)/I_{1/2}(κ) = coth κ − 1/κ, κ = |a|/ν."""
    d, N, nu = 3, 4000, 1.0
    a = jnp.array([0.0, 2.0, 0.0])
    x0 = uniform(jax.random.key(5), (N,), d, jnp.float64)
    sol = solve_langevin(Linear(a=a), x0, np.array([0.0, 4.0, 6.0]), nu=nu, key=jax.random.key(6), dt=0.005, manifold="sphere", brownian="steps")
    assert int(sol.status) == 0
    np.testing.assert_allclose(np.linalg.norm(np.asarray(sol.ys), axis=-1), 1.0, atol=1e-12)
    kappa = 2.0
    pred = float(theory.vmf_mean_cosine(kappa, d))
    assert pred == pytest.approx(1 / np.tanh(kappa) - 1 / kappa, rel=1e-12)
    for k in (1, 2):
        cos = np.asarray(sol.ys[k])[:, 1]
        assert abs(cos.mean() - pred) < 4 * cos.std() / np.sqrt(N) + 0.01, (cos.mean(), pred)


def test_potential_gradients_and_validation():
    x = jnp.array([[0.3, -1.2, 0.5], [1.1, 0.0, -0.4]])
    g = -drift(DoubleWell(h=jnp.asarray(2.0)), x)
    expect = jnp.stack([2.0 * 4 * x[:, 0] * (x[:, 0] ** 2 - 1), x[:, 1], x[:, 2]], axis=-1)
    np.testing.assert_allclose(g, expect, rtol=1e-12)
    k = jax.random.split(jax.random.key(0), 3)
    V, b, w = jax.random.normal(k[0], (4, 3)), jax.random.normal(k[1], (4,)), jnp.abs(jax.random.normal(k[2], (4,)))
    Q = jnp.eye(3) * 0.5
    c = jnp.array([0.1, 0.2, -0.3])
    gf = -drift(Features(c=c, Q=Q, V=V, b=b, w=w), x)
    relu = jnp.maximum(0.0, x @ V.T + b)
    np.testing.assert_allclose(gf, c + x @ Q + (w * relu) @ V, rtol=1e-12)
    on_sphere = drift(Linear(a=jnp.array([1.0, 0.0, 0.0])), x / jnp.linalg.norm(x, axis=-1, keepdims=True), manifold="sphere")
    np.testing.assert_allclose(jnp.sum(on_sphere * x, axis=-1), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="symmetric"):
        Quadratic(A=jnp.array([[1.0, 2.0], [0.0, 1.0]]), m=jnp.zeros(2))
