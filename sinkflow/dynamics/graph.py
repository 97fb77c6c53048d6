"""Graph heat flow ρ' = −Lρ (MATH.md §3) on node values or particle positions.

- :func:`laplacian_field`: the vector field ``f(t, y, L) = −L y`` for y of shape
  (n,) (node values) or (n, d) (positions x' = −Lx, column by column), to be
  solved by :func:`sinkflow.solve.solve` (diffrax).
- :func:`heat_kernel`: the reference solution e^{−Lt} y₀ at every save time by
  the matrix exponential (``jax.scipy.linalg.expm``, Padé with scaling and squaring).

Its limit and rates are spectral facts of L: :mod:`sinkflow.spectra`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import expm
from jaxtyping import Array, Float

__all__ = ["laplacian_field", "heat_kernel"]


def laplacian_field(t, y: Float[Array, "n ..."], L: Float[Array, "n n"]) -> Float[Array, "n ..."]:
    """ρ' = −Lρ (node values) or x' = −Lx (positions, shape (n, d))."""
    del t
    return -jnp.tensordot(L, y, axes=1)


def heat_kernel(L: Float[Array, "n n"], y0: Float[Array, "n ..."], ts) -> Float[Array, "T n ..."]:
    """e^{−L t} y₀ for every t in ``ts`` by the matrix exponential."""
    L = jnp.asarray(L)
    return jax.vmap(lambda t: jnp.tensordot(expm(-t * L), y0, axes=1))(jnp.asarray(ts, L.dtype))
