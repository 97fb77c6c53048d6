import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import attention as A
from sinkflow.sphere import uniform


def _x(n=13, d=5, batch=(), seed=0):
    return uniform(jax.random.key(seed), (*batch, n), d, jnp.float64)


def test_softmax_rows_sum_to_one_and_usa_scaling():
    x = _x()
    w = A.attention_matrix(x, A.Attention(beta=2.0))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-14)
    u = A.attention_matrix(x, A.Attention(beta=2.0, normalization="none"))
    np.testing.assert_allclose(u, np.exp(2.0 * (x @ x.T)) / x.shape[0], rtol=1e-13)


def test_unit_fast_path_matches_generic():
    x = _x(batch=(3,))
    p = A.Attention(beta=jnp.asarray(5.0))
    np.testing.assert_allclose(A.attend(x, p, unit=True), A.attend(x, p), atol=1e-14)


@pytest.mark.parametrize("normalization", ["softmax", "none"])
@pytest.mark.parametrize("causal", [False, True])
def test_chunked_equals_dense(normalization, causal):
    k = jax.random.key(7)
    x = _x(n=37, d=6, batch=(2,))
    d = x.shape[-1]
    Q = A.random_matrix(k, d, "gaussian", jnp.float64)
    K = A.random_matrix(jax.random.fold_in(k, 1), d, "goe", jnp.float64)
    V = A.random_matrix(jax.random.fold_in(k, 2), d, "wishart", jnp.float64)
    mask = jax.random.bernoulli(jax.random.fold_in(k, 3), 0.6, (37, 37)) | jnp.eye(37, dtype=bool)
    dense = A.Attention(beta=3.0, Q=Q, K=K, V=V, value_scale=-0.5, mask=mask, normalization=normalization, causal=causal)
    chunked = A.Attention(beta=3.0, Q=Q, K=K, V=V, value_scale=-0.5, mask=mask, normalization=normalization, causal=causal, chunk=8)
    np.testing.assert_allclose(A.attend(x, chunked), A.attend(x, dense), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("normalization", ["softmax", "none"])
def test_attend_at_free_points_matches_numpy_and_tokens(normalization):
    """v[μ](y) at off-cloud points against a plain numpy sum; at the tokens themselves it is attend()."""
    k = jax.random.key(11)
    x, y = _x(n=9, d=4, batch=(2,)), _x(n=5, d=4, batch=(2,), seed=3)
    Q = A.random_matrix(k, 4, "gaussian", jnp.float64)
    K = A.random_matrix(jax.random.fold_in(k, 1), 4, "goe", jnp.float64)
    V = A.random_matrix(jax.random.fold_in(k, 2), 4, "wishart", jnp.float64)
    p = A.Attention(beta=2.5, Q=Q, K=K, V=V, value_scale=-0.7, normalization=normalization)
    xn, yn, Qn, Kn, Vn = map(np.asarray, (x, y, Q, K, V))
    e = np.exp(2.5 * np.einsum("bmd,bnd->bmn", yn @ Qn.T, xn @ Kn.T))
    w = e / e.sum(-1, keepdims=True) if normalization == "softmax" else e / xn.shape[-2]
    expected = -0.7 * np.einsum("bmn,bnd->bmd", w, xn) @ Vn.T
    np.testing.assert_allclose(A.attend_at(y, x, p), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(A.attend_at(x, x, p), A.attend(x, p), rtol=1e-12, atol=1e-14)


def test_attend_at_refuses_token_pair_structure():
    x = _x(n=4)
    with pytest.raises(ValueError, match="token pairs"):
        A.attend_at(x, x, A.Attention(beta=1.0, causal=True))
    with pytest.raises(ValueError, match="Sinkhorn"):
        from sinkflow.sinkhorn import Sinkhorn

        A.attend_at(x, x, A.Attention(beta=1.0, normalization="sinkhorn", sinkhorn=Sinkhorn(epsilon=1.0)))


def test_masked_entries_exactly_zero():
    x = _x(n=6)
    w = A.attention_matrix(x, A.Attention(beta=50.0, causal=True))
    assert jnp.all(w[jnp.triu_indices(6, k=1)] == 0.0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-14)
    # token 1 attends to itself only
    assert w[0, 0] == 1.0


def test_check_mask_errors():
    with pytest.raises(ValueError, match="square"):
        A.check_mask(np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="at least see itself"):
        A.check_mask(np.array([[1, 0], [0, 0]], bool))
    with pytest.raises(ValueError, match="boolean"):
        A.check_mask(np.array([[1, 2], [0, 1]]))
    A.check_mask(np.tril(np.ones((4, 4), bool)), 4)


def test_random_matrix_kinds():
    k = jax.random.key(0)
    g = A.random_matrix(k, 200, "goe", jnp.float64)
    np.testing.assert_allclose(g, g.T)
    ev = np.linalg.eigvalsh(np.asarray(g))
    assert -2.3 < ev.min() < -1.7 and 1.7 < ev.max() < 2.3  # semicircle edge at ±2
    w = A.random_matrix(k, 50, "wishart", jnp.float64)
    assert np.linalg.eigvalsh(np.asarray(w)).min() > -1e-12
    np.testing.assert_allclose(A.random_matrix(k, 3, "identity"), np.eye(3))
    with pytest.raises(ValueError, match="not known"):
        A.random_matrix(k, 3, "bogus")
    with pytest.raises(ValueError, match="normalization"):
        A.Attention(beta=1.0, normalization="sinkhorn-typo")
