"""Vector fields ``f(t, x, params) -> dx/dt`` (diffrax's signature).

Each field takes the token configuration ``x`` of shape ``(..., n, d)`` and
parameters as an equinox module (array leaves traced, so sweeps over β, Q, K, V
compile once). Fields on the sphere evaluate at ``normalize(x)`` and return the
tangent projection, so that the exact flow preserves norms and a
:class:`sinkflow.solve.ProjectedSolver` is consistent with FSAL stages.

- :func:`attention_field`: SA (``Attention(normalization="softmax")``) and USA
  (``"none"``): ẋ_i = P_{x_i}( Σ_j w_ij V x_j ), GLPR (SA)/(USA).
"""

from __future__ import annotations

from jaxtyping import Array, Float

from .attention import Attention, attend
from .sphere import normalize, project_tangent

__all__ = ["attention_field", "sa", "usa"]


def attention_field(t, x: Float[Array, "... n d"], params: Attention) -> Float[Array, "... n d"]:
    """ẋ_i = P_{x_i}(Attn(x)_i) at the normalised configuration."""
    del t
    xh = normalize(x)
    return project_tangent(xh, attend(xh, params, unit=True))


def sa(beta, **kwargs) -> Attention:
    """Parameters of the SA dynamics (row softmax); keyword arguments go to :class:`Attention`."""
    return Attention(beta=beta, normalization="softmax", **kwargs)


def usa(beta, **kwargs) -> Attention:
    """Parameters of the USA dynamics (1/n normalisation); keyword arguments go to :class:`Attention`."""
    return Attention(beta=beta, normalization="none", **kwargs)
