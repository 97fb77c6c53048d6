"""Graph heat flow: diffrax vs the matrix exponential, λ₂ decay, leader consensus, Jordan transients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import graphs as G
from sinkflow import spectra
from sinkflow.dynamics.graph import heat_kernel, laplacian_field
from sinkflow.solve import SolverConfig, solve
from sinkflow.spectra import eigenspace, jordan_index, left_eigenspace, limit_projector

TIGHT = SolverConfig("tsit5", dt=1e-3, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("A", [G.cycle(7), G.star(6, directed=True), G.erdos_renyi_dag(9, 0.4, 2), G.cycle(5, directed=True)])
def test_diffrax_matches_expm(A):
    L = jnp.asarray(G.laplacian(A))
    y0 = jax.random.normal(jax.random.key(0), (A.shape[0], 3), jnp.float64)
    ts = np.linspace(0, 6, 13)
    sol = solve(laplacian_field, y0, ts, L, config=TIGHT)
    np.testing.assert_allclose(np.asarray(sol.ys), np.asarray(heat_kernel(L, y0, ts)), atol=1e-10)


def test_fiedler_start_decays_exactly_at_lambda2():
    L = G.laplacian(G.path(10))
    lam2, v = spectra.fiedler(L)
    ts = np.linspace(0, 20, 11)
    ys = np.asarray(heat_kernel(jnp.asarray(L), jnp.asarray(v), ts))
    np.testing.assert_allclose(np.linalg.norm(ys, axis=1), np.exp(-lam2 * ts), rtol=1e-10)
    assert lam2 == pytest.approx(0.097887, abs=1e-6)


def test_undirected_limit_is_the_mean_and_single_source_dag_limit_is_the_leader():
    Pi = limit_projector(G.laplacian(G.hypercube(3)))
    np.testing.assert_allclose(Pi, np.full((8, 8), 1 / 8), atol=1e-12)
    for A in (G.kary_tree(2, 3, directed=True), G.path(5, directed=True), G.complete(6, directed=True)):
        Pi = limit_projector(G.laplacian(A))
        e0 = np.zeros(A.shape[0])
        e0[0] = 1.0
        np.testing.assert_allclose(Pi, np.outer(np.ones(A.shape[0]), e0), atol=1e-12)
        L = jnp.asarray(G.laplacian(A))
        y0 = np.random.default_rng(0).normal(size=A.shape[0])
        yT = np.asarray(heat_kernel(L, jnp.asarray(y0), [60.0]))[0]
        np.testing.assert_allclose(yT, y0[0], atol=1e-9)


def test_jordan_index_of_dag_laplacians():
    n = 6
    L = G.laplacian(G.path(n, directed=True))  # in-degrees 0, 1, …, 1: one Jordan block of size n − 1 at λ = 1
    assert jordan_index(L, 1.0) == n - 1 and jordan_index(L, 0.0) == 1 and jordan_index(L, 2.0) == 0
    assert jordan_index(G.laplacian(G.star(5, directed=True)), 1.0) == 1  # leaves do not feed each other


def test_eigenspaces_of_a_defective_laplacian():
    """Directed 6-path, λ = 1 with one Jordan block of size 5: each side has a single eigenvector,
    with Lv = v and uᵀL = uᵀ to round-off; λ = 0 (consensus) has v = 1 and u = e_leader."""
    n = 6
    L = G.laplacian(G.path(n, directed=True))
    V, U = eigenspace(L, 1.0), left_eigenspace(L, 1.0)
    assert V.shape == U.shape == (n, 1)
    np.testing.assert_allclose(L @ V, V, atol=1e-14)
    np.testing.assert_allclose(U.T @ L, U.T, atol=1e-14)
    np.testing.assert_allclose(np.abs(eigenspace(L, 0.0)[:, 0]), np.full(n, n**-0.5), atol=1e-14)
    np.testing.assert_allclose(np.abs(left_eigenspace(L, 0.0)[:, 0]), np.eye(n)[0], atol=1e-14)
    assert eigenspace(L, 2.0).shape == (n, 0)


def test_transient_power_for_defective_laplacian():
    """Directed path: ‖e^{−Lt} y0 − Π y0‖ ~ t^{n−2} e^{−t}; the fitted power is n − 2."""
    n = 5
    L = G.laplacian(G.path(n, directed=True))
    y0 = np.random.default_rng(1).normal(size=n)
    ts = np.linspace(20, 40, 21)
    dev = np.linalg.norm(np.asarray(heat_kernel(jnp.asarray(L), jnp.asarray(y0), ts)) - limit_projector(L) @ y0, axis=1)
    # power with the rate known, rate with the power known (the lower powers t^{k−1}, … bias a joint fit by O(1/t)).
    k = np.polyfit(np.log(ts), np.log(dev) + ts, 1)[0]
    lam = -np.polyfit(ts, np.log(dev) - (n - 2) * np.log(ts), 1)[0]
    assert k == pytest.approx(n - 2, abs=0.1) and lam == pytest.approx(1.0, abs=0.01)


def test_graphs_of_one_size_share_one_compile_and_match_expm(tmp_path):
    """The study packs graphs of one node count into one program (their Laplacians are data): the
    tiny preset's two graphs compile once, and every cell still matches the matrix exponential
    and decays its eigen-start at its own gap."""
    from sinkflow.store import load_results
    from sinkflow.studies import get
    from sinkflow.sweep import run_sweep

    study = get("graph-heat")
    cfg = study.config("tiny", graph=("cycle", "path-dag", "hypercube"), n=(6,))
    rep = run_sweep(study, cfg, tmp_path / "r", progress=False)
    assert rep.compiles == 2  # 6 nodes (cycle, path-dag) and 4 nodes (hypercube)
    ds = load_results(tmp_path / "r")
    assert float(ds["expm_err"].max()) < 1e-10
    for g, gap in (("cycle", 2 - 2 * np.cos(2 * np.pi / 6)), ("path-dag", 1.0), ("hypercube", 2.0)):
        c = ds.sel(graph=g, n=6)
        assert abs(float(c["gap"]) - gap) < 1e-12
        t = ds["u"].values * float(c["T_cell"])
        early = t * gap < 5  # before round-off and the Jordan amplification matter
        np.testing.assert_allclose(c["eig_norm"].values[early], np.exp(-gap * t[early]), rtol=1e-8)
