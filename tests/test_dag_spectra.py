"""The gap-mode amplitude ‖UᵀY‖ of dag-spectra decays at the gap even when the gap mode is barely
excited, where the farthest token's distance follows a faster mode (seen at β = 4, paper preset)."""

import numpy as np
from scipy.linalg import expm
from sinkflow.studies.dag_spectra import (
    effective_matrix,
    parse_graph,
    parse_normalization,
)

from sinkflow import graphs as G
from sinkflow import spectra
from sinkflow.spectra import left_eigenspace


def _leff(name, norm, n=8):
    mask = G.mask_from_graph(parse_graph(name, n, 0))
    return np.eye(mask.shape[0]) - effective_matrix(mask, parse_normalization(norm))


def test_left_eigenspace_at_the_gap():
    for name, norm in (("sf:1", "fixed-3"), ("sf:2", "softmax"), ("er:0.3", "softmax")):
        L = _leff(name, norm)
        gap = spectra.spectral_gap(L, tol=1e-7)
        U = left_eigenspace(L, gap, tol=1e-7)
        assert U.shape[1] == int(np.sum(np.abs(spectra.eigenvalues(L) - gap) < 1e-6))  # semisimple here: whole eigenspace
        assert np.abs(U.T @ U - np.eye(U.shape[1])).max() < 1e-12
        assert np.abs(U.T @ L - gap * U.T).max() < 1e-10


def test_gap_mode_rate_when_the_max_distance_misses_it():
    L = _leff("complete-dag", "softmax")  # gap 1/2, next 2/3, all simple (no Jordan transients in the max)
    gap = spectra.spectral_gap(L, tol=1e-7)
    u = left_eigenspace(L, gap, tol=1e-7)[:, 0]
    rng = np.random.default_rng(0)
    Y0 = rng.standard_normal((L.shape[0], 3))
    Y0 -= np.outer(u, u @ Y0) * (1 - 1e-6)  # the gap mode barely excited (amplitude 1e-6 of the rest)
    ell = left_eigenspace(L, 0.0)[:, 0]  # consensus: Y → 1·(ℓᵀY0)/(ℓᵀ1); remove it (uᵀ1 = 0 keeps uᵀY0), Y is the distance to the limit
    Y0 -= np.outer(np.ones(L.shape[0]), ell @ Y0) / ell.sum()
    t = np.linspace(10.0, 30.0, 9)
    Ys = [expm(-L * s) @ Y0 for s in t]
    rate = lambda v: -np.polyfit(t, np.log(v), 1)[0]  # noqa: E731
    mode = rate([np.linalg.norm(u @ Y) for Y in Ys])
    far = rate([np.linalg.norm(Y, axis=1).max() for Y in Ys])
    assert abs(mode / gap - 1) < 1e-4  # uᵀY is a pure exponential at the gap
    assert far / gap - 1 > 0.2  # the old observable reads a faster mode here: the check it replaces would fail


def _path_softmax(n):
    """I − W⁰ of the directed path 0 → 1 → … → n−1 under the causal row softmax: diagonal (0, ½, …, ½),
    −½ below it: one Jordan block of size n − 1 at the gap ½."""
    return np.eye(n) - effective_matrix(G.mask_from_graph(parse_graph("path-dag", n, 0)), None)


def test_eigenvalues_are_exact_on_permuted_triangular_matrices():
    L = _path_softmax(9)
    perm = np.random.default_rng(1).permutation(9)
    Lp = L[np.ix_(perm, perm)]  # not triangular in index order: the DAG's topological order is hidden
    assert np.array_equal(spectra.eigenvalues(Lp), np.sort(np.diag(L)))
    assert spectra.spectral_gap(Lp) == 0.5
    U = left_eigenspace(Lp, 0.5)
    assert U.shape[1] == 1 and np.abs(U[:, 0] @ Lp - 0.5 * U[:, 0]).max() < 1e-14  # geometric multiplicity 1
    cycle = np.eye(4) - np.roll(np.eye(4), 1, axis=0)  # a cycle: not triangular under any permutation
    assert np.allclose(spectra.eigenvalues(cycle), np.sort_complex(1 - np.exp(2j * np.pi * np.arange(4) / 4)), atol=1e-12)


def test_defective_gap_mode_is_a_pure_exponential():
    L = _path_softmax(8)  # Jordan block of size 7: the farthest token decays like t⁶e^{−t/2}
    u = left_eigenspace(L, 0.5)[:, 0]
    Y0 = np.random.default_rng(0).standard_normal((8, 3))
    Y0 -= Y0[0]  # consensus at the leader x_0 (row 0 of L is zero): Y is the distance to the limit
    t = np.linspace(10.0, 30.0, 9)
    Ys = [expm(-L * s) @ Y0 for s in t]
    rate = lambda v: -np.polyfit(t, np.log(v), 1)[0]  # noqa: E731
    assert abs(rate([np.linalg.norm(u @ Y) for Y in Ys]) / 0.5 - 1) < 1e-8
    assert abs(rate([np.linalg.norm(Y, axis=1).max() for Y in Ys]) / 0.5 - 1) > 0.3  # what a plain fit of the farthest token reads


def test_dag_spectra_checks_defective_gaps_end_to_end(tmp_path, capsys):
    import json

    from sinkflow.cli import main

    out = tmp_path / "ds"
    args = ["--graph", "path-dag", "--n", "5", "--normalization", "softmax,fixed-3", "--beta", "0,2", "--realizations", "2", "--n-times", "161"]
    assert main(["run", "dag-spectra", "--out", str(out), *args]) == 0, capsys.readouterr()
    (rate,) = [c for c in json.loads((out / "checks.json").read_text()) if c["name"].startswith("consensus rate")]
    assert rate["passed"] and rate["measured"] < 0.005
    # softmax on the path: a Jordan block of size 4 at ½, checked through the left eigenvector (4 runs)
    assert rate["detail"].startswith("8 runs (4 with a defective gap)"), rate["detail"]


def test_weight_sensitivity_softmax_closed_form_and_sinkhorn_finite_differences():
    import jax
    import jax.numpy as jnp
    from sinkflow.studies.dag_spectra import weight_sensitivity

    from sinkflow.sinkhorn import sinkhorn

    mask = G.mask_from_graph(parse_graph("er:0.6", 7, 0))
    S = weight_sensitivity(mask, None)
    # row softmax at equal logits, r = |N(i)|: ∂W_ij/∂ℓ_il = δ_jl/r − 1/r², so S_ii = 2(r−1)/r + 2(r−1)/r²
    # and S_ik = 2(r−1)/r² on the rest of i's mask row, 0 elsewhere (the softmax of row i is local)
    r = mask.sum(axis=1)
    expect = np.where(mask, (2 * (r - 1) / r**2)[:, None], 0.0) + np.diag(2 * (r - 1) / r)
    assert np.abs(S - expect).max() < 1e-12
    # Sinkhorn: the reverse-mode Jacobian through the checkpointed loop against central differences
    spec = parse_normalization("fixed-3")
    n, h = mask.shape[0], 1e-6
    W_of = jax.jit(lambda lg: sinkhorn(lg, spec, jnp.asarray(mask))[0])
    J = np.zeros((n, n, n, n))
    for k in range(n):
        for l in range(n):
            E = np.zeros((n, n))
            E[k, l] = h
            W = [np.asarray(W_of(jnp.asarray(s * E))) for s in (1, -1)]
            J[:, :, k, l] = (W[0] - W[1]) / (2 * h)
    J = np.abs(J)
    S_fd = J.sum(axis=(1, 3)) + J.sum(axis=(1, 2))
    assert np.abs(weight_sensitivity(mask, spec) - S_fd).max() < 1e-7
    assert np.any(S_fd[~mask] > 1e-3)  # column sums couple rows beyond the mask row
