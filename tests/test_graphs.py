"""Graphs, Laplacians, spectra and the NOTEARS acyclicity (MATH.md §3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import graphs as G
from sinkflow import spectra


@pytest.mark.parametrize("name,n", [("path", 5), ("path", 10), ("cycle", 5), ("cycle", 12), ("complete", 7), ("star", 9), ("hypercube", 16)])
def test_fiedler_closed_forms(name, n):
    A = G.family(name, n)
    lam2, v = spectra.fiedler(G.laplacian(A))
    assert lam2 == pytest.approx(spectra.fiedler_closed_form(name, n), abs=1e-12)
    assert spectra.spectral_gap(G.laplacian(A)) == pytest.approx(lam2, abs=1e-12)


def test_published_values():
    assert spectra.fiedler_closed_form("path", 5) == pytest.approx(0.381966, abs=1e-6)
    assert spectra.fiedler_closed_form("path", 10) == pytest.approx(0.097887, abs=1e-6)
    assert spectra.fiedler_closed_form("cycle", 5) == pytest.approx(1.381966, abs=1e-6)


@pytest.mark.parametrize("A", [G.erdos_renyi_dag(12, 0.4, 3), G.erdos_renyi_dag(12, 0.4, 3, permute=True), G.scale_free_dag(15, 2, 1), G.kary_tree(3, 2, directed=True), G.path(6, directed=True)])
def test_dag_laplacian_eigenvalues_are_in_degrees(A):
    assert G.is_dag(A)
    L = G.laplacian(A, "in")
    np.testing.assert_allclose(np.sort(spectra.eigenvalues(L).real), np.sort(A.sum(axis=1)), atol=1e-8)
    np.testing.assert_allclose(spectra.eigenvalues(L).imag, 0.0, atol=1e-8)
    Lo = G.laplacian(A, "out")
    np.testing.assert_allclose(np.sort(spectra.eigenvalues(Lo).real), np.sort(A.sum(axis=0)), atol=1e-8)


def test_non_normality_measures():
    und = G.laplacian(G.cycle(6))
    assert spectra.henrici(und) == pytest.approx(0.0, abs=1e-12) and spectra.eigenvector_condition(und) == pytest.approx(1.0, abs=1e-9)
    L = G.laplacian(G.path(4, directed=True))  # in-degrees 0,1,1,1: eigenvalue 1 defective
    assert spectra.henrici(L) > 0.3
    assert spectra.eigenvector_condition(L) > 1e6


def test_acyclicity_values_and_gradient():
    a, b = 0.7, 1.3
    W = jnp.array([[0.0, a], [b, 0.0]])
    assert float(G.acyclicity(W)) == pytest.approx(2 * np.cosh(a * b) - 2, abs=1e-12)
    assert float(G.acyclicity(W)) == pytest.approx(0.886847, abs=1e-6)
    dag = jnp.asarray(G.erdos_renyi_dag(8, 0.5, 0), float) * 0.9
    assert abs(float(G.acyclicity(dag))) < 1e-12
    W = jax.random.normal(jax.random.key(0), (6, 6), jnp.float64)
    np.testing.assert_allclose(np.asarray(G.acyclicity_grad(W)), np.asarray(jax.grad(G.acyclicity)(W)), rtol=1e-10, atol=1e-12)


def test_closures_masks_and_dag_checks():
    A = G.path(4, directed=True)
    R = G.transitive_closure(A)
    assert R[3, 0] and not R[0, 3] and not np.any(np.diag(R))
    assert np.array_equal(G.skeleton(A), G.path(4))
    assert np.array_equal(G.mask_from_graph(G.complete(5, directed=True)), G.causal_mask(5))
    assert not G.is_dag(G.cycle(4, directed=True))
    with pytest.raises(ValueError, match="not a DAG"):
        G.check_dag(G.cycle(4, directed=True))
    with pytest.raises(ValueError, match="square"):
        G.check_dag(np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="binary"):
        G.check_dag(np.array([[0, 2], [0, 0]]))
    with pytest.raises(ValueError, match="family"):
        G.family("wheel", 5)
    with pytest.raises(ValueError, match="edge probability"):
        G.erdos_renyi_dag(5, 1.5, 0)
    with pytest.raises(ValueError, match="undirected"):
        spectra.fiedler(G.laplacian(G.path(3, directed=True)))


def test_seeded_random_families_are_reproducible():
    assert np.array_equal(G.erdos_renyi_dag(20, 0.2, 7), G.erdos_renyi_dag(20, 0.2, 7))
    assert not np.array_equal(G.erdos_renyi_dag(20, 0.2, 7), G.erdos_renyi_dag(20, 0.2, 8))
    sf = G.scale_free_dag(30, 2, 0)
    assert sf.sum() == 1 + 2 * 28  # node 1 gets one parent, later nodes two


def test_named_graphs_parse_one_syntax():
    """FAMILY[:ARG][-dag|-directed] builds exactly the family graph with that parameter; bad names say the form."""
    assert np.array_equal(G.named("path", 6), G.family("path", 6))
    assert np.array_equal(G.named("path-dag", 6), G.family("path", 6, directed=True))
    assert np.array_equal(G.named("path", 6, directed=True), G.family("path", 6, directed=True))
    assert np.array_equal(G.named("tree:3-dag", 13), G.family("tree", 13, directed=True, k=3))
    assert np.array_equal(G.named("er:0.5", 9, seed=4), G.erdos_renyi_dag(9, 0.5, 4))
    assert np.array_equal(G.named("sf:1", 9, seed=2), G.scale_free_dag(9, 1, 2))
    assert np.array_equal(G.named("cycle-directed", 5), G.family("cycle", 5, directed=True))
    for bad, match in [("wheel", "FAMILY"), ("path:3", "only tree"), ("tree:x", "arity"), ("er:1.5", r"\(0, 1\]"), ("sf:0", "≥ 1")]:
        with pytest.raises(ValueError, match=match):
            G.named(bad, 8)


def test_topological_order_puts_every_parent_first():
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(12)
        A = G.erdos_renyi_dag(12, 0.4, seed)[np.ix_(perm, perm)]  # relabelled: index order is no longer topological
        pos = np.empty(12, int)
        pos[G.topological_order(A)] = np.arange(12)
        i, j = np.nonzero(A)  # edges j → i
        assert np.all(pos[j] < pos[i])
    with pytest.raises(ValueError, match="not a DAG"):
        G.topological_order(G.cycle(4, directed=True))
