"""Learnable DAG masks: SEM data, the straight-through estimator, recovery of a tiny known DAG, metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import graphs as G
from sinkflow.dag_learn import MaskLearner, edge_metrics, fit_mask, linear_sem, ste_mask


def test_linear_sem_follows_its_structural_equations():
    A = G.erdos_renyi_dag(6, 0.5, 3, permute=True)
    X, B = linear_sem(jax.random.key(0), A, 50000)
    X, B = np.asarray(X), np.asarray(B)
    assert np.all(B[~A] == 0) and np.all(np.abs(B[A]) >= 0.5)
    resid = X - X @ B.T  # z = X − X Bᵀ is the unit-variance noise
    np.testing.assert_allclose(resid.var(axis=0), 1.0, rtol=0.03)
    np.testing.assert_allclose(np.corrcoef(resid.T), np.eye(6), atol=0.03)


def test_straight_through_gradients_flow():
    """Forward: hard 0/1 mask. Backward: σ'(θ) — the logits of closed entries still get gradients."""
    theta = jnp.array([[-1.0, 0.3], [2.0, -0.2]])
    m = ste_mask(theta)
    assert np.array_equal(np.asarray(m), [[0.0, 1.0], [1.0, 0.0]])
    g = jax.grad(lambda t: jnp.sum(ste_mask(t) * jnp.array([[1.0, 2.0], [3.0, 4.0]])))(theta)
    s = jax.nn.sigmoid(theta)
    np.testing.assert_allclose(np.asarray(g), np.asarray(s * (1 - s) * jnp.array([[1.0, 2.0], [3.0, 4.0]])), rtol=1e-12)
    p = MaskLearner(logits=theta, weights=jnp.ones((2, 2)))
    gp = jax.grad(lambda q: jnp.sum(q.adjacency() ** 2))(p)
    assert float(jnp.abs(gp.logits[1, 0])) > 0 and float(gp.logits[0, 0]) == 0.0  # diagonal is never an edge


def test_tiny_known_dag_is_recovered_exactly():
    A = G.path(3, directed=True) | np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0]], bool)  # 0 → 1 → 2 and 0 → 2
    X, _ = linear_sem(jax.random.key(1), A, 3000)
    est, info = jax.jit(fit_mask)(jax.random.key(2), X)
    m = edge_metrics(A, est)
    assert m["shd"] == 0 and m["tpr"] == 1.0 and m["fdr"] == 0.0
    assert float(info["h"]) < 1e-8 and G.is_dag(np.asarray(est))


def test_edge_metrics_counts_reversals_once():
    T = G.path(4, directed=True)
    E = T.copy()
    E[1, 0], E[0, 1] = False, True  # reverse 0 → 1
    E[3, 0] = True  # extra 0 → 3
    E[3, 2] = False  # missing 2 → 3
    m = edge_metrics(T, E)
    assert m["shd"] == 3 and m["tpr"] == pytest.approx(1 / 3) and m["fdr"] == pytest.approx(2 / 3)


def test_sem_refuses_a_cyclic_graph():
    with pytest.raises(ValueError, match="not a DAG"):
        linear_sem(jax.random.key(0), G.cycle(3, directed=True), 10)
