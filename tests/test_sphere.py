import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import sphere


def test_normalize_nan_safe_value_and_gradient():
    x = jnp.zeros((3, 4))
    assert jnp.all(sphere.normalize(x) == 0)
    g = jax.grad(lambda v: jnp.sum(sphere.normalize(v)))(x)
    assert jnp.all(jnp.isfinite(g))
    y = jax.random.normal(jax.random.key(0), (5, 7))
    np.testing.assert_allclose(jnp.linalg.norm(sphere.normalize(y), axis=-1), 1.0, atol=1e-14)


def test_project_tangent_is_orthogonal_projection():
    k1, k2 = jax.random.split(jax.random.key(1))
    x = sphere.uniform(k1, (6,), 5, jnp.float64)
    v = jax.random.normal(k2, (6, 5))
    p = sphere.project_tangent(x, v)
    np.testing.assert_allclose(jnp.sum(p * x, -1), 0.0, atol=1e-14)
    np.testing.assert_allclose(sphere.project_tangent(x, p), p, atol=1e-14)


def test_uniform_moments():
    x = sphere.uniform(jax.random.key(2), (20000,), 4, jnp.float64)
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=-1), 1.0, atol=1e-14)
    # E[x xᵀ] = I/d; Monte-Carlo error ~ 1/sqrt(N) ≈ 0.007
    np.testing.assert_allclose(x.T @ x / x.shape[0], np.eye(4) / 4, atol=0.01)


def test_geodesic_distance():
    e1, e2 = jnp.eye(3)[0], jnp.eye(3)[1]
    np.testing.assert_allclose(sphere.geodesic_distance(e1, e2), np.pi / 2, atol=1e-15)
    np.testing.assert_allclose(sphere.geodesic_distance(e1, -e1), np.pi, atol=1e-15)
    np.testing.assert_allclose(sphere.geodesic_distance(e1, e1), 0.0, atol=1e-15)


@pytest.mark.parametrize("key", [None, jax.random.key(3)])
def test_special_starts_gram_matrices(key):
    n, d = 5, 7
    f = sphere.orthonormal_frame(n, d, key, jnp.float64)
    np.testing.assert_allclose(f @ f.T, np.eye(n), atol=1e-13)
    rho = 0.3
    e = sphere.equiangular(n, d, rho, key, jnp.float64)
    np.testing.assert_allclose(e @ e.T, (1 - rho) * np.eye(n) + rho, atol=1e-13)
    s = sphere.regular_simplex(n, d, key, jnp.float64)
    np.testing.assert_allclose(s @ s.T, (1 + 1 / (n - 1)) * np.eye(n) - 1 / (n - 1), atol=1e-13)


def test_hemisphere_and_cone():
    h = sphere.hemisphere(jax.random.key(4), (1000,), 3, jnp.float64)
    assert jnp.all(h[:, 0] >= 0)
    c = sphere.cone(jax.random.key(5), (1000,), 4, 0.3, jnp.float64)
    np.testing.assert_allclose(jnp.linalg.norm(c, axis=-1), 1.0, atol=1e-14)
    assert jnp.all(c[:, 0] >= np.cos(0.3) - 1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="d ≥ 2"):
        sphere.uniform(jax.random.key(0), (3,), 1)
    with pytest.raises(ValueError, match="n ≤ d"):
        sphere.orthonormal_frame(5, 3)
    with pytest.raises(ValueError, match="ρ₀"):
        sphere.equiangular(4, 4, -0.5)


def test_tangent_divergence_against_closed_forms():
    """f(x) = e₁ (constant): v = P_x e₁ = ∇⟨x, e₁⟩ on S^{d−1}, whose divergence is the Laplacian of the
    linear function x₁: −(d − 1)x₁. f(x) = Ax with A antisymmetric: a rotation, divergence 0."""
    from sinkflow.sphere import tangent_divergence

    d = 4
    x = sphere.uniform(jax.random.key(0), (), d, jnp.float64)
    e1 = jnp.zeros(d, jnp.float64).at[0].set(1.0)
    assert float(tangent_divergence(lambda y: e1, x)) == pytest.approx(-(d - 1) * float(x[0]), abs=1e-13)
    G = jax.random.normal(jax.random.key(1), (d, d), jnp.float64)
    A = G - G.T
    assert float(tangent_divergence(lambda y: A @ y, x)) == pytest.approx(0.0, abs=1e-12)
