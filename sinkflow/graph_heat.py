"""Graph heat flow ρ' = −Lρ (MATH.md §3) on node values or particle positions.

- :func:`laplacian_field`: the vector field ``f(t, y, L) = −L y`` for y of shape
  (n,) (node values) or (n, d) (positions x' = −Lx, column by column), to be
  solved by :func:`sinkflow.solve.solve` (diffrax).
- :func:`heat_kernel`: the reference solution e^{−Lt} y₀ at every save time by
  the matrix exponential (``jax.scipy.linalg.expm``, Padé with scaling and squaring).
- :func:`limit_projector`: Π = lim_{t→∞} e^{−Lt}, the spectral projector onto
  ker L along range L (0 is a semisimple eigenvalue of every graph Laplacian,
  and all other eigenvalues have positive real part), built from left and right
  null spaces: Π = V (WᵀV)⁻¹ Wᵀ. For a DAG with a single source s, Π = 1 e_sᵀ:
  every node converges to the source's (the leader's) value.
- :func:`jordan_index`: the size of the largest Jordan block of an eigenvalue
  (the power k + 1 in the transient t^k e^{−λt} of a defective L), from the
  ranks of (L − λI)^m; exact for the integer spectra of DAG Laplacians.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import expm
from jaxtyping import Array, Float

__all__ = ["laplacian_field", "heat_kernel", "limit_projector", "eigenspace", "left_eigenspace", "jordan_index"]


def laplacian_field(t, y: Float[Array, "n ..."], L: Float[Array, "n n"]) -> Float[Array, "n ..."]:
    """ρ' = −Lρ (node values) or x' = −Lx (positions, shape (n, d))."""
    del t
    return -jnp.tensordot(L, y, axes=1)


def heat_kernel(L: Float[Array, "n n"], y0: Float[Array, "n ..."], ts) -> Float[Array, "T n ..."]:
    """e^{−L t} y₀ for every t in ``ts`` by the matrix exponential."""
    L = jnp.asarray(L)
    return jax.vmap(lambda t: jnp.tensordot(expm(-t * L), y0, axes=1))(jnp.asarray(ts, L.dtype))


def limit_projector(L, tol: float = 1e-9) -> np.ndarray:
    """Π = lim e^{−Lt} = V (WᵀV)⁻¹ Wᵀ, V and W bases of the right and left null spaces of L (host side)."""
    V = eigenspace(L, 0.0, tol)
    W = left_eigenspace(L, 0.0, tol)
    if V.shape[1] != W.shape[1] or V.shape[1] == 0:
        raise ValueError(f"limit_projector: left and right null spaces differ in dimension ({W.shape[1]} vs {V.shape[1]}); is L a graph Laplacian?")
    return V @ np.linalg.solve(W.T @ V, W.T)


def eigenspace(L, lam: float, tol: float = 1e-9, *, left: bool = False) -> np.ndarray:
    """Orthonormal columns (n, m) spanning the right (Lv = lam·v) or, with ``left``, the left
    (wᵀL = lam·wᵀ) eigenspace of L at the real eigenvalue ``lam``; m is the geometric multiplicity,
    singular values of L − lam below ``tol``·s_max/max(1, max|L|) (≈ ``tol``) count as zero (host side). ``lam`` should be exact
    (``sinkflow.graphs.eigenvalues`` is, on acyclic masks): a general eigensolver returns an
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
