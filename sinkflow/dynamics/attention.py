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
- :func:`mean_field`: the field at β = 0 with Q = K = V = I and no mask (SA and USA alike, the
  weights are all 1/n): ẋ_i = s·P_{x_i}(x̄), O(nd) per evaluation instead of O(n²d).
- :func:`circle_field`: the same dynamics for d = 2 in angle coordinates,
  θ_i' = ⟨e_{θ_i}, Attn(x)_i⟩ with x_i = (cos θ_i, sin θ_i) and e_θ = (−sin θ, cos θ);
  with Q = K = V = I this is θ_i' = Σ_j w_ij sin(θ_j − θ_i) (MATH.md §1, the
  circle model; USA at β = 0 is Kuramoto). No projection is needed, which suits
  the implicit long-horizon solves of the metastability study.
- :func:`sinkformer_warm`: the Sinkformer flow with its Sinkhorn loops warm-started: the state
  carries the column potential v of the last step's configuration, every stage starts its loop
  from it (the kernel moved by O(dt)), and the projection after each step re-solves at the new
  configuration from it. Same fixed points and stopping rule, fewer iterations.
- :func:`sa`, :func:`usa`, :func:`sinkformer`: the parameters of each model;
  :data:`MODELS` maps a flow's name to its normalisation.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..attention import Attention, attend, attention_matrix, logits
from ..sinkhorn import Sinkhorn, sinkhorn
from ..sphere import circle, normalize, project_tangent

__all__ = ["attention_field", "attention_field_unnormalized", "mean_field", "sinkformer_warm", "WarmSinkformer", "circle_field", "sa", "usa", "sinkformer", "MODELS"]

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


def mean_field(t, x: Float[Array, "... n d"], params: Attention) -> Float[Array, "... n d"]:
    """ẋ_i = s·P_{x_i}(x̄), x̄ = (1/n)Σ_j x_j at the normalised configuration: :func:`attention_field` at
    β = 0 with Q = K = V = I and no mask, where every weight is 1/n for SA and USA alike, in O(nd)
    instead of O(n²d) (the noisy study's Kuramoto cells; exact, not an approximation). ``params.beta``
    is not read: the caller vouches for β = 0 (a mask or Q, K, V is refused)."""
    del t
    if params.mask is not None or params.causal or params.Q is not None or params.K is not None or params.V is not None:
        raise ValueError("mean_field is the β = 0 field with Q = K = V = I and no mask; use attention_field otherwise.")
    if params.normalization == "sinkhorn":
        raise ValueError("mean_field covers SA and USA (weights 1/n at β = 0); a Sinkformer at β = 0 is too, but use attention_field.")
    xh = normalize(x)
    return project_tangent(xh, params.value_scale * jnp.mean(xh, axis=-2, keepdims=True))


class WarmSinkformer(NamedTuple):
    """What :func:`sinkformer_warm` returns: pass ``field``, ``start(x0)`` and ``project`` to
    :func:`sinkflow.solve.solve`; states are pairs (x, v) and observables read ``y[0]``."""

    field: object
    project: object
    start: object


def sinkformer_warm(params: Attention, *, unnormalized: bool = True) -> WarmSinkformer:
    """The Sinkformer flow on the sphere (:func:`attention_field` with ``normalization="sinkhorn"``)
    with warm-started Sinkhorn loops, for fixed-step projected solves (module docstring).

    The state is (x, v), v (..., n) the column potential of the Sinkhorn plan at x; the field is
    (ẋ, 0) with every stage's loop started from v, and ``project`` normalises x and replaces v by the
    potential converged at the new x (started from v). ``start(x0)`` solves once from zero.
    The stopping rule is the loop's own, so the plans meet the same threshold as cold starts."""
    if params.normalization != "sinkhorn" or params.sinkhorn is None:
        raise ValueError("sinkformer_warm needs Attention(normalization='sinkhorn', sinkhorn=Sinkhorn(...)).")
    if params.sinkhorn.mode == "fixed" or params.sinkhorn.backend != "native":
        raise ValueError("sinkformer_warm warm-starts the native balanced/unbalanced loops (mode='fixed' is k normalisations from zero by definition).")
    base = attention_field_unnormalized if unnormalized else attention_field

    def field(t, y, p):
        x, v = y
        warm = eqx.tree_at(lambda a: a.sinkhorn_init, p, v, is_leaf=lambda z: z is None)
        return base(t, x, warm), jnp.zeros_like(v)

    def potential(x, v):
        return sinkhorn(logits(x, params), params.sinkhorn, init=v)[1].potential

    def project(y):
        x, v = y
        xh = normalize(x)
        return xh, potential(xh, v)

    def start(x0):
        xh = normalize(x0)
        return xh, potential(xh, None)

    return WarmSinkformer(field, project, start)


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
