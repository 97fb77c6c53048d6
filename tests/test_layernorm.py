"""Normalisation schemes as speed factors (MF §6.2): fields, the equiangular reduction and its closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import theory
from sinkflow.attention import Attention, attend
from sinkflow.dynamics.attention import attention_field
from sinkflow.dynamics.layernorm import (
    SCHEMES,
    LayerNorm,
    equiangular_path,
    layernorm_field,
)
from sinkflow.observables import one_minus_cosine
from sinkflow.solve import SolverConfig, solve
from sinkflow.sphere import orthonormal_frame, uniform


def _x(n=6, d=5, seed=0):
    theta = uniform(jax.random.key(seed), (n,), d, jnp.float64)
    r = 1.0 + jax.random.uniform(jax.random.key(seed + 1), (n, 1), jnp.float64)
    return r * theta, theta


def test_fields_are_the_stated_residual_updates():
    x, theta = _x()
    att = Attention(beta=1.3)
    A = attend(theta, att)
    np.testing.assert_allclose(layernorm_field(0.0, x, LayerNorm(att, "pre-ln")), A, atol=1e-14)  # x' = A(x/|x|)
    np.testing.assert_allclose(layernorm_field(0.0, x, LayerNorm(att, "peri-ln")), A / jnp.linalg.norm(A, axis=-1, keepdims=True), atol=1e-14)
    post = layernorm_field(0.0, theta, LayerNorm(att, "post-ln"))
    np.testing.assert_allclose(post, attention_field(0.0, theta, att), atol=1e-14)  # SA on the sphere
    for scheme in ("post-ln", "ngpt", "sqrt"):
        v = layernorm_field(2.0, x, LayerNorm(att, scheme, alpha=0.7))
        np.testing.assert_allclose(jnp.sum(v * x, axis=-1), 0.0, atol=1e-13)  # radius is constant
    s_ngpt = layernorm_field(0.0, theta, LayerNorm(att, "ngpt", alpha=0.7))
    np.testing.assert_allclose(s_ngpt, 0.7 * post / jnp.linalg.norm(A, axis=-1, keepdims=True), atol=1e-14)
    np.testing.assert_allclose(layernorm_field(3.0, theta, LayerNorm(att, "sqrt")), post / 2.0, atol=1e-14)
    mix = LayerNorm(att, "mix-ln", switch=1.0)
    np.testing.assert_allclose(layernorm_field(0.5, x, mix), layernorm_field(0.5, x, LayerNorm(att, "post-ln")), atol=1e-14)
    np.testing.assert_allclose(layernorm_field(1.5, x, mix), A, atol=1e-14)
    with pytest.raises(ValueError, match="scheme"):
        LayerNorm(att, "layer-norm")
    with pytest.raises(ValueError, match="softmax"):
        LayerNorm(Attention(beta=1.0, normalization="none"))


def test_one_minus_cosine_is_accurate_near_consensus():
    v = jnp.array([[1.0, 0.0], [jnp.cos(1e-9), jnp.sin(1e-9)]], jnp.float64)
    assert float(one_minus_cosine(v)) == pytest.approx(0.5e-18, rel=1e-6)  # 1 − cos would round to 0


def test_beta0_closed_forms_of_the_reduction():
    ts = np.linspace(0.0, 6.0, 31)
    n = 8
    gap, r = equiangular_path(ts, 0.0, n, "post-ln")
    np.testing.assert_allclose(1.0 - np.asarray(gap), np.asarray(theory.gamma_beta0(ts, n)), atol=1e-10)
    gap, _ = equiangular_path(ts, 0.0, n, "sqrt")  # time change τ = 2(√(t+1) − 1)
    np.testing.assert_allclose(1.0 - np.asarray(gap), np.asarray(theory.gamma_beta0(2.0 * (np.sqrt(ts + 1.0) - 1.0), n)), atol=1e-10)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_particles_from_an_orthonormal_frame_follow_the_reduction(scheme):
    n, beta = 5, 1.5
    ts = np.array([0.0, 0.5, 1.0, 2.0, 4.0])
    x0 = orthonormal_frame(n, 7, jax.random.key(2), jnp.float64)
    p = LayerNorm(Attention(beta=beta), scheme, alpha=1.4, switch=0.7)
    cfg = SolverConfig(method="tsit5", rtol=1e-11, atol=1e-13)
    sol = solve(layernorm_field, x0, ts, p, config=cfg, observable=lambda t, x, a: (one_minus_cosine(x), jnp.mean(jnp.linalg.norm(x, axis=-1))))
    gap, r = equiangular_path(ts, beta, n, scheme, alpha=1.4, switch=0.7)
    np.testing.assert_allclose(sol.ys[0], gap, rtol=1e-8)
    np.testing.assert_allclose(sol.ys[1], r, rtol=1e-8)
