"""Transport diagnostics: every identity against a dense or independent computation, and each
shown to fail on a perturbed input (the seed's misprinted constants included)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import diagnostics as dg
from sinkflow.dynamics.attention import attention_field, sa, usa
from sinkflow.sphere import geodesic_distance, uniform


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)


def _rows(key, shape, scale=3.0):
    return jax.nn.softmax(scale * jax.random.normal(key, shape, jnp.float64), axis=-1)


def test_mobility_stats_match_the_dense_matrix():
    p = _rows(jax.random.key(0), (6, 4, 9))
    J = dg.mobility(p)
    st = dg.mobility_stats(p)
    eig = np.linalg.eigvalsh(np.asarray(J))
    np.testing.assert_allclose(st.trace, np.trace(np.asarray(J), axis1=-2, axis2=-1), atol=1e-14)
    np.testing.assert_allclose(st.frobenius, np.linalg.norm(np.asarray(J), axis=(-2, -1)), atol=1e-13)
    np.testing.assert_allclose(st.op_norm, eig[..., -1], atol=1e-12)
    assert np.all(np.asarray(st.op_norm) <= 0.5 + 1e-15) and np.allclose(np.asarray(J).sum(-1), 0.0, atol=1e-15)
    assert np.all(eig[..., 0] > -1e-15)  # PSD


def test_the_operator_norm_bound_is_one_half_and_attained():
    """‖J‖_op = ½ at (½, ½, 0, …): the ¼ printed in seed 003 App. J.2 is exceeded."""
    st = dg.mobility_stats(jnp.array([0.5, 0.5, 0.0, 0.0]))
    assert float(st.op_norm) == pytest.approx(0.5, abs=1e-12) and float(st.op_norm) > 0.25
    # repeated largest entries: the root is the entry itself
    assert float(dg.mobility_stats(jnp.array([0.3, 0.3, 0.3, 0.1])).op_norm) == pytest.approx(np.linalg.eigvalsh(np.asarray(dg.mobility(jnp.array([0.3, 0.3, 0.3, 0.1]))))[-1], abs=1e-12)


def test_temperature_law_of_the_mobility():
    z = jax.random.normal(jax.random.key(1), (7,), jnp.float64)
    for tau in (0.3, 1.0, 4.0):
        jac = jax.jacfwd(lambda v: jax.nn.softmax(v / tau))(z)
        np.testing.assert_allclose(jac, dg.mobility(jax.nn.softmax(z / tau)) / tau, atol=1e-14)
        if tau != 1.0:  # the prose of seed 003 Prop. L.2 (J^τ = J(z/τ) without τ⁻¹) is wrong
            assert not np.allclose(jac, dg.mobility(jax.nn.softmax(z / tau)), atol=1e-3)


def test_bv_statistics_and_the_online_detector():
    z = np.cumsum(np.full((21, 3, 4), 0.1, np.float32), axis=0)
    z[12:] += 2.0  # one jump between layers 11 and 12
    st = dg.bv_statistics(z, alpha1=2.0, alpha2=0.5)
    assert st.dz2.dtype == np.float64 and st.dz2.size == 20
    jump = 12 * (0.1 + 2.0) ** 2
    assert st.S == pytest.approx(19 * 12 * 0.01 + jump, rel=1e-6)
    assert st.Xi == pytest.approx(2.0 * 2.1 + 0.5 * (19 * 0.01 + 2.1**2), rel=1e-6)
    flags, sev, thr = dg.detect_bv_violations(np.sqrt(st.dz2), window=4, tau0=1.0)
    assert flags[11] and not flags[:11].any() and sev[11] > 2  # the jump is flagged at once, severe
    assert dg.segment_depth(flags, cluster=3, min_length=5) == [(0, 11), (15, 20)]
    with pytest.raises(ValueError):
        dg.bv_statistics(z[:1])


def test_locking_bound_is_sharp_and_the_seed_constant_is_too_small():
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(300):
        n = rng.integers(2, 9)
        z = jnp.asarray(rng.normal(size=n) * rng.uniform(0, 6))
        dz = jnp.asarray(rng.choice([-1.0, 1.0], size=n) * rng.uniform(0.2, 1.0, size=n) * 1e-6)
        ratio, c = dg.locking_ratio(z, dz)
        worst = max(worst, float(ratio / c))
    assert worst <= 1.0 + 1e-5
    # attained by p = (0.9, 0.1), Δz = (−a, a): 4δ(1 − δ) = 0.36, where min{1, 2δ} = 0.2 would claim less
    z = jnp.log(jnp.array([0.9, 0.1]))
    ratio, c = dg.locking_ratio(z, jnp.array([-1e-7, 1e-7]))
    assert float(ratio) == pytest.approx(0.36, rel=1e-5) and float(c) == pytest.approx(0.36) and float(ratio) > 0.2


def test_ollivier_curvature_limits():
    """Identical rows are at W₁ = 0 (κ = 1); point masses at their own tokens are at W₁ = d(i, i') (κ = 0)."""
    x = uniform(jax.random.key(2), (6,), 3, jnp.float64)
    D = geodesic_distance(x[:, None, :], x[None, :, :])
    same = dg.ollivier_curvature(jnp.full((6, 6), 1 / 6), D)
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(np.asarray(same)[off], 1.0, atol=1e-2)
    P = jnp.eye(6) * 0.999 + 0.001 / 6
    kappa = np.asarray(dg.ollivier_curvature(P / P.sum(1, keepdims=True), D))
    np.testing.assert_allclose(kappa[off], 0.0, atol=2e-2)
    assert np.isnan(np.diag(kappa)).all()


@pytest.mark.parametrize("n", [2, 3, 5])
def test_rotational_fraction_usa_is_a_gradient_and_sa_is_not(n):
    x = uniform(jax.random.key(n), (n,), 4, jnp.float64)
    r_usa = float(dg.rotational_fraction(attention_field, x, usa(1.5)))
    r_sa = float(dg.rotational_fraction(attention_field, x, sa(1.5)))
    assert r_usa < 1e-13
    if n == 2:
        assert r_sa < 1e-13  # two tokens: the field is g(⟨x₁, x₂⟩)∇⟨x₁, x₂⟩, a gradient
    else:
        assert r_sa > 1e-2
    # the ambient Jacobian without the projections is no test: it is asymmetric for USA too (0.28 measured)
    Du = jax.jacfwd(lambda v: attention_field(0.0, v.reshape(n, 4), usa(1.5)).reshape(-1))(x.reshape(-1))
    assert float(jnp.linalg.norm(Du - Du.T) / jnp.linalg.norm(Du + Du.T)) > 1e-2


def test_evi_surrogate_on_point_masses_is_the_squared_distance():
    """Rows that are point masses at the query's own token: ρ_i^(ℓ) = δ_{x_i^(ℓ)}, and the Sinkhorn divergence of two
    Diracs is exactly |x − y|² (OT_ε(δ_x, δ_y) = |x − y|², OT_ε(δ_x, δ_x) = 0); with a wrong reference it is not."""
    L, n, d = 4, 3, 3
    x = jax.random.normal(jax.random.PRNGKey(0), (L, n, d), jnp.float64)
    P = jnp.broadcast_to(jnp.eye(n, dtype=jnp.float64), (L, n, n))
    S = dg.evi_surrogate(P, x, epsilon=0.05, threshold=1e-9)
    expected = jnp.sum((x - x[-1]) ** 2, axis=-1)
    assert float(jnp.max(jnp.abs(S - expected))) < 1e-6
    assert float(jnp.max(jnp.abs(S[-1]))) < 1e-9
    wrong = jnp.sum((x - x[0]) ** 2, axis=-1)
    assert float(jnp.max(jnp.abs(S - wrong))) > 0.1


def test_rotational_energy_splits_gradients_from_rotations_on_the_sphere():
    """R/E is 0 for a tangent gradient of a polynomial, ≈ 1 for a rotation field (divergence-free under the
    uniform law, orthogonal to every gradient), and ε²-weighted for a mixture."""
    from sinkflow.fit import gradient_features

    N, d = 3000, 3
    x = uniform(jax.random.PRNGKey(1), (N,), d, jnp.float64)
    G = gradient_features(x, 2, sphere=True)
    grad = G @ jnp.array([0.3, -1.0, 0.5, 0.7, 0.2, -0.4, 0.1, 0.9, -0.6])
    Aanti = jnp.array([[0.0, 1.0, -0.5], [-1.0, 0.0, 0.3], [0.5, -0.3, 0.0]])
    rot = x @ Aanti.T  # A x is tangent for antisymmetric A
    R0, E0 = dg.rotational_energy(x, grad, degree=3, manifold="sphere")
    assert float(R0 / E0) < 1e-20
    R1, E1 = dg.rotational_energy(x, rot, degree=3, manifold="sphere")
    assert float(R1 / E1) > 0.98
    eps = 0.1
    R2, _ = dg.rotational_energy(x, grad + eps * rot, degree=3, manifold="sphere", diffusivity=2.0)
    assert float(R2) == pytest.approx(eps**2 * float(R1) / 2.0, rel=1e-6)


def test_rotational_energy_with_a_diffusion_tensor_is_the_split_in_its_metric():
    """u = a∇θ with an anisotropic SPD a: R = 0 in a's metric (a constant tensor or one per particle),
    but R > 0 in the isotropic one (a wrong metric reads part of the gradient as rotation); a ∝ I
    reproduces the scalar case; a non-SPD tensor is refused."""
    from sinkflow.fit import gradient_features

    N, d = 2000, 3
    x = jax.random.normal(jax.random.PRNGKey(3), (N, d), jnp.float64)
    G = gradient_features(x, 2, sphere=False)
    grad = G @ jax.random.normal(jax.random.PRNGKey(4), (G.shape[-1],), jnp.float64)
    B = jnp.array([[1.0, 0.8, 0.0], [0.0, 1.0, 0.5], [0.3, 0.0, 1.0]])
    a = B @ B.T + 0.1 * jnp.eye(d)
    u = grad @ a.T  # a∇θ
    R, E = dg.rotational_energy(x, u, degree=2, diffusivity=a)
    assert float(R / E) < 1e-20
    Riso, Eiso = dg.rotational_energy(x, u, degree=2)
    assert float(Riso / Eiso) > 1e-2
    per = jnp.broadcast_to(a, (N, d, d))
    Rp, Ep = dg.rotational_energy(x, u, degree=2, diffusivity=per)
    assert float(Rp / Ep) < 1e-20 and float(Ep) == pytest.approx(float(E), rel=1e-12)
    rot = x @ jnp.array([[0.0, 1.0, -0.5], [-1.0, 0.0, 0.3], [0.5, -0.3, 0.0]]).T
    R1, _ = dg.rotational_energy(x, rot, degree=2, diffusivity=2.0)
    R2, _ = dg.rotational_energy(x, rot, degree=2, diffusivity=2.0 * jnp.eye(d))
    assert float(R2) == pytest.approx(float(R1), rel=1e-10)
    with pytest.raises(ValueError, match="positive definite"):
        dg.rotational_energy(x, u, degree=2, diffusivity=-jnp.eye(d))
    with pytest.raises(ValueError, match="scalar"):
        dg.rotational_energy(x / jnp.linalg.norm(x, axis=-1, keepdims=True), u, degree=2, diffusivity=a, manifold="sphere")


def test_ollivier_curvature_on_sampled_pairs_is_the_full_matrix_there():
    x = uniform(jax.random.PRNGKey(5), (6,), 3, jnp.float64)
    dist = jnp.arccos(jnp.clip(x @ x.T, -1.0, 1.0))
    P = jax.nn.softmax(2.0 * x @ x.T, axis=-1)
    full = dg.ollivier_curvature(P, dist)
    pairs = jnp.array([[0, 1], [3, 5], [4, 2]])
    np.testing.assert_allclose(np.asarray(dg.ollivier_curvature(P, dist, pairs=pairs)), np.asarray(full[pairs[:, 0], pairs[:, 1]]), rtol=1e-10)
