"""Attention flows on the sphere: SA, USA and the Sinkformer as vector fields ``f(t, x, params)``.

Each field takes the token configuration ``x`` of shape ``(..., n, d)`` and an
:class:`~sinkflow.attention.Attention` (array leaves traced, so sweeps over β, Q, K, V
compile once). Fields evaluate at ``normalize(x)`` and return the tangent projection,
so that the exact flow preserves norms and a :class:`sinkflow.solve.ProjectedSolver`
is consistent with FSAL stages.

- :func:`attention_field`: SA (``Attention(normalization="softmax")``), USA
  (``"none"``) and the Sinkformer on the sphere (``"sinkhorn"``):
  ẋ_i = P_{x_i}( Σ_j w_ij V x_j ), GLPR (SA)/(USA), SINK.
- :func:`attention_field_unnormalized`: the same field without the input
  normalisation (another extension off the sphere, same flow on it), the fast
  choice for fixed-step projected sweeps.
- :func:`circle_field`: the same dynamics for d = 2 in angle coordinates,
  θ_i' = ⟨e_{θ_i}, Attn(x)_i⟩ with x_i = (cos θ_i, sin θ_i) and e_θ = (−sin θ, cos θ);
  with Q = K = V = I this is θ_i' = Σ_j w_ij sin(θ_j − θ_i) (MATH.md §1, the
  circle model; USA at β = 0 is Kuramoto). No projection is needed, which suits
  the implicit long-horizon solves of the metastability study.
- :func:`sa`, :func:`usa`, :func:`sinkformer`: the parameters of each model;
  :data:`MODELS` maps a flow's name to its normalisation.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..attention import Attention, attend, attention_matrix
from ..sinkhorn import Sinkhorn
from ..sphere import circle, normalize, project_tangent

__all__ = ["attention_field", "attention_field_unnormalized", "circle_field", "sa", "usa", "sinkformer", "MODELS"]

#: Attention flow name → the normalisation of its weights (:class:`~sinkflow.attention.Attention`).
MODELS = {"sa": "softmax", "usa": "none", "sinkformer": "sinkhorn"}


def attention_field(t, x: Float[Array, "... n d"], params: Attention) -> Float[Array, "... n d"]:
    """ẋ_i = P_{x_i}(Attn(x)_i) at the normalised configuration."""
    del t
    xh = normalize(x)
    return project_tangent(xh, attend(xh, params, unit=True))


def attention_field_unnormalized(t, x: Float[Array, "... n d"], params: Attention) -> Float[Array, "... n d"]:
    """ẋ_i = a_i − ⟨x_i, a_i⟩ x_i, a = Attn(x) at x itself: :func:`attention_field` without the normalisation.

    The same field on the sphere, extended off it differently: here d|x_i|²/dt = 2⟨x_i, a_i⟩(1 − |x_i|²),
    so the sphere is invariant and the exact flows agree there; a projected Runge–Kutta step
    keeps its order with either. Stage states of a projected solve lie O(h²) off the sphere,
    where the softmax shift β of the identity-weight fast path stays safe (logits ≤ β|x_i||x_j|).
    Use it for fixed-step sweeps: skipping the normalisation lets XLA:CPU fuse a whole RK4
    step into one graph, 1.4× faster on the phase-diagram workload (benchmarks/phase_diagram.py).
    Prefer :func:`attention_field` for FSAL adaptive methods (Tsit5/Dopri5 reuse f at the
    unprojected end point, which is exact only for the 0-homogeneous extension) and for
    inputs not on the sphere.
    """
    del t
    return project_tangent(x, attend(x, params, unit=True))


def circle_field(t, theta: Float[Array, "... n"], params: Attention) -> Float[Array, "... n"]:
    """θ_i' = ⟨(−sin θ_i, cos θ_i), Attn(x)_i⟩, x_i = (cos θ_i, sin θ_i): :func:`attention_field` for d = 2 in angles.

    With V = I this is evaluated as s·Σ_j w_ij sin(θ_j − θ_i), exact to relative precision as the
    tokens merge (the projected form cos θ_i·a₂ − sin θ_i·a₁ cancels to O(10⁻¹⁶) noise there, which
    tripled Kvaerno5's step count on collapsing clouds; measured).
    """
    del t
    x = circle(theta)
    if params.V is None:
        w = attention_matrix(x, params, unit=True)
        diff = theta[..., None, :] - theta[..., :, None]
        return params.value_scale * jnp.sum(w * jnp.sin(diff), axis=-1)
    a = attend(x, params, unit=True)
    return jnp.cos(theta) * a[..., 1] - jnp.sin(theta) * a[..., 0]


def sa(beta, **kwargs) -> Attention:
    """Parameters of the SA dynamics (row softmax); keyword arguments go to :class:`Attention`."""
    return Attention(beta=beta, normalization="softmax", **kwargs)


def usa(beta, **kwargs) -> Attention:
    """Parameters of the USA dynamics (1/n normalisation); keyword arguments go to :class:`Attention`."""
    return Attention(beta=beta, normalization="none", **kwargs)


def sinkformer(beta, epsilon=1.0, **kwargs) -> Attention:
    """Parameters of the Sinkformer on the sphere: logits β⟨Qx_i, Kx_j⟩, kernel exp(logits/ε),
    Sinkhorn-normalised. Keywords of :class:`sinkflow.sinkhorn.Sinkhorn` (mode, tau,
    iterations, threshold, backend, symmetric) are split off; the rest go to :class:`Attention`."""
    sk_keys = {"mode", "tau", "iterations", "threshold", "backend", "symmetric"}
    sk = {k: kwargs.pop(k) for k in list(kwargs) if k in sk_keys}
    return Attention(beta=beta, normalization="sinkhorn", sinkhorn=Sinkhorn(epsilon=epsilon, **sk), **kwargs)
