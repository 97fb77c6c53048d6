"""Spectra of graph Laplacians and attention matrices (MATH.md §3): the rates of the causal track.

Host-side numpy/scipy on small dense matrices (called when a cell is built or a check
runs, never inside a jitted loop).

- :func:`eigenvalues` (exact on acyclic off-diagonal support: the diagonal of a
  triangular form), :func:`spectral_gap`, :func:`fiedler` and its closed forms
  :func:`fiedler_closed_form`; non-normality: :func:`henrici`, :func:`eigenvector_condition`.
- :func:`eigenspace` / :func:`left_eigenspace`: orthonormal bases of right/left eigenspaces
  at an exact eigenvalue; :func:`jordan_index`: the size of the largest Jordan block (the
  power k + 1 in the transient t^k e^{−λt} of a defective L), from the ranks of (L − λI)^m.
- :func:`limit_projector`: Π = lim_{t→∞} e^{−Lt}, the spectral projector onto ker L along
  range L (0 is a semisimple eigenvalue of every graph Laplacian, and all other eigenvalues
  have positive real part), built from left and right null spaces: Π = V (WᵀV)⁻¹ Wᵀ. For a
  DAG with a single source s, Π = 1 e_sᵀ: every node converges to the leader's value.
"""

from __future__ import annotations

import math

import numpy as np

from .graphs import is_dag

__all__ = ["eigenvalues", "spectral_gap", "fiedler", "fiedler_closed_form", "henrici", "eigenvector_condition", "eigenspace", "left_eigenspace", "jordan_index", "limit_projector"]


def eigenvalues(L) -> np.ndarray:
    """Eigenvalues sorted by real part (then imaginary part).

    Exact for matrices whose off-diagonal support is acyclic (Laplacians and masked attention
    matrices of DAGs): a symmetric permutation makes them triangular, so the eigenvalues are the
    diagonal entries. A general eigensolver is only guaranteed ~ε^{1/J} accuracy on a Jordan block of
    size J (LAPACK's balancing usually finds the permutation, but that is not a contract), and the
    defective gaps of DAG dynamics are exactly the cases where this matters."""
    L = np.asarray(L, float)
    lam = np.diag(L).copy() if is_dag((L != 0) & ~np.eye(L.shape[0], dtype=bool)) else np.linalg.eigvals(L)
    return lam[np.lexsort((lam.imag, lam.real))]


def spectral_gap(L, tol: float = 1e-9) -> float:
    """Smallest real part among the eigenvalues with |λ| > tol (the asymptotic decay rate of e^{−Lt} off its kernel)."""
    lam = eigenvalues(L)
    nz = lam[np.abs(lam) > tol * max(1.0, np.max(np.abs(lam)))]
    return float(np.min(nz.real)) if nz.size else math.nan


def fiedler(L) -> tuple[float, np.ndarray]:
    """(λ₂, unit Fiedler vector) of a symmetric Laplacian."""
    L = np.asarray(L, float)
    if not np.allclose(L, L.T):
        raise ValueError("fiedler needs a symmetric (undirected) Laplacian; use spectral_gap for directed graphs.")
    w, V = np.linalg.eigh(L)
    return float(w[1]), V[:, 1]


def fiedler_closed_form(name: str, n: int) -> float:
    """λ₂ of D − A for undirected families (MATH.md §3): path 2 − 2cos(π/n), cycle 2 − 2cos(2π/n),
    complete n, star 1, hypercube (n = 2^k) 2."""
    if name == "path":
        return 2.0 - 2.0 * math.cos(math.pi / n)
    if name == "cycle":
        return 2.0 - 2.0 * math.cos(2.0 * math.pi / n)
    if name == "complete":
        return float(n)
    if name == "star":
        return 1.0
    if name == "hypercube":
        return 2.0
    raise ValueError(f"no closed-form λ₂ for family {name!r}; known: path, cycle, complete, star, hypercube.")


def henrici(L) -> float:
    """Henrici's departure from normality √(‖L‖_F² − Σ|λ_i|²) / ‖L‖_F (0 iff L is normal)."""
    from scipy.linalg import schur

    L = np.asarray(L, float)
    fro = float(np.linalg.norm(L))
    if fro == 0.0:
        return 0.0
    T, _ = schur(L, output="complex")  # L = Z T Z*, T = diag(λ) + N: the departure is ‖N‖_F (no cancellation)
    return float(np.linalg.norm(np.triu(T, k=1))) / fro


def eigenvector_condition(L) -> float:
    """2-norm condition number of the eigenvector matrix (1 for symmetric L; ∞ if L is defective).

    For symmetric L the orthonormal eigenbasis is used (a general eigensolver may return a
    non-orthogonal basis inside a repeated eigenspace)."""
    L = np.asarray(L, float)
    if np.allclose(L, L.T):
        return 1.0
    _, V = np.linalg.eig(L)
    s = np.linalg.svd(V, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 1e-12 * s[0] else math.inf


def eigenspace(L, lam: float, tol: float = 1e-9, *, left: bool = False) -> np.ndarray:
    """Orthonormal columns (n, m) spanning the right (Lv = lam·v) or, with ``left``, the left
    (wᵀL = lam·wᵀ) eigenspace of L at the real eigenvalue ``lam``; m is the geometric multiplicity,
    singular values of L − lam below ``tol``·s_max/max(1, max|L|) (≈ ``tol``) count as zero (host side). ``lam`` should be exact
    (:func:`eigenvalues` is, on acyclic masks): a general eigensolver returns an
    eigenvalue of a Jordan block of size J only to ~ε^{1/J}, and the null space of L − lam then misses it."""
    from scipy.linalg import null_space

    L = np.asarray(L, float)
    scale = max(1.0, float(np.max(np.abs(L))))
    B = L - lam * np.eye(L.shape[0])
    return null_space(B.T if left else B, rcond=tol / scale)


def left_eigenspace(L, lam: float, tol: float = 1e-9) -> np.ndarray:
    """The left eigenspace W of L at ``lam`` (:func:`eigenspace` with ``left``). Along ẏ = −Ly,
    Wᵀy decays exactly like e^{−lam·t}, whatever the other modes do."""
    return eigenspace(L, lam, tol, left=True)


def jordan_index(L, lam: float, tol: float = 1e-8) -> int:
    """Size of the largest Jordan block of the eigenvalue ``lam`` (0 if it is not an eigenvalue)."""
    L = np.asarray(L, float)
    n = L.shape[0]
    B = L - lam * np.eye(n)
    P = np.eye(n)
    ranks = [n]
    for _ in range(n):
        P = P @ B
        ranks.append(int(np.linalg.matrix_rank(P, tol=tol * max(1.0, np.max(np.abs(P))))))
        if ranks[-1] == ranks[-2]:
            break
    return len(ranks) - 2


def limit_projector(L, tol: float = 1e-9) -> np.ndarray:
    """Π = lim e^{−Lt} = V (WᵀV)⁻¹ Wᵀ, V and W bases of the right and left null spaces of L (host side)."""
    V = eigenspace(L, 0.0, tol)
    W = left_eigenspace(L, 0.0, tol)
    if V.shape[1] != W.shape[1] or V.shape[1] == 0:
        raise ValueError(f"limit_projector: left and right null spaces differ in dimension ({W.shape[1]} vs {V.shape[1]}); is L a graph Laplacian?")
    return V @ np.linalg.solve(W.T @ V, W.T)
