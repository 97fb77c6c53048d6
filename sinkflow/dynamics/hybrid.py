"""Hybrid attention/MLP blocks (seed 001; MATH.md §3).

A block is one unit of time: attention on [l, l + ½), then a position-wise MLP on
[l + ½, l + 1), for l = 0..L−1. The MLP acts on each token separately,

    ẋ_i = P_{x_i}( s · W_out ReLU(W_in x_i + b) ),

projected to the sphere's tangent space (so norms are kept), with strength s
(s = 0: attention alone). Weights are per block: shared (the same W for every l)
or redrawn (``random_mlp(..., layers=L)``); attention parameters likewise.
:func:`solve_hybrid` runs the blocks with :func:`sinkflow.solve.solve_layers` in
two phases, so the switch times l and l + ½ are step boundaries exactly.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..solve import Solution, SolverConfig, solve_layers
from ..sphere import normalize, project_tangent
from .attention import attention_field

__all__ = ["MLP", "mlp_field", "random_mlp", "solve_hybrid"]


class MLP(eqx.Module):
    """Position-wise MLP W_out ReLU(W_in x + b) with strength s (array leaves; stack them over blocks)."""

    W_in: Float[Array, "h d"]
    W_out: Float[Array, "d h"]
    b: Float[Array, " h"]
    strength: Float[Array, ""] | float = 1.0

    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, "... d"]:
        """s · W_out ReLU(W_in x + b), token by token (no projection)."""
        hidden = jax.nn.relu(jnp.einsum("hd,...d->...h", self.W_in, x) + self.b)
        return self.strength * jnp.einsum("dh,...h->...d", self.W_out, hidden)


def mlp_field(t, x: Float[Array, "... n d"], p: MLP) -> Float[Array, "... n d"]:
    """ẋ_i = P_{x_i}(s · W_out ReLU(W_in x_i + b)) at the normalised configuration."""
    del t
    xh = normalize(x)
    return project_tangent(xh, p(xh))


def random_mlp(key: PRNGKeyArray, d: int, hidden: int, strength, *, layers: int | None = None, dtype=jnp.float32) -> MLP:
    """Gaussian weights W_in ~ N(0, 1/d), W_out ~ N(0, 1/hidden), b = 0; with ``layers`` = L, L independent
    draws stacked along a leading axis (weights redrawn every block)."""
    if layers is not None:
        keys = jax.random.split(key, layers)
        return jax.vmap(lambda k: random_mlp(k, d, hidden, strength, dtype=dtype))(keys)
    k1, k2 = jax.random.split(key)
    W_in = jax.random.normal(k1, (hidden, d), dtype) / math.sqrt(d)
    W_out = jax.random.normal(k2, (d, hidden), dtype) / math.sqrt(hidden)
    return MLP(W_in, W_out, jnp.zeros((hidden,), dtype), jnp.asarray(strength, dtype))


def solve_hybrid(x0: Float[Array, "n d"], attention, mlp: MLP, ts_half, *, config: SolverConfig = SolverConfig(), observable=None) -> Solution:
    """L hybrid blocks: attention (args stacked over L) on [l, l + ½), ``mlp`` (stacked over L) on [l + ½, l + 1).

    ``ts_half``: concrete save times within a half block, from 0 to ½. Saves follow every half block
    (see :func:`sinkflow.solve.solve_layers`). ``observable(t, x, (attention_l, mlp_l))`` receives the
    block's parameters of both phases (so it can evaluate either field at every save)."""
    ts_half = np.asarray(ts_half, float)
    if not math.isclose(float(ts_half[-1]), 0.5):
        raise ValueError(f"solve_hybrid: ts_half must run from 0 to 1/2 (a half block), got end {ts_half[-1]}.")
    pair = (attention, mlp)
    fields = (lambda t, x, a: attention_field(t, x, a[0]), lambda t, x, a: mlp_field(t, x, a[1]))
    return solve_layers(fields, x0, ts_half, (pair, pair), config=config, observable=observable, project=normalize)
