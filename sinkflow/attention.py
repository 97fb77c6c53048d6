"""Self-attention on token configurations.

Contract. An :class:`Attention` module holds the parameters of one attention
head: the inverse temperature β, optional query/key/value matrices (``None``
means the identity and costs nothing), a value scale (V ↦ s·V, so V = −I is
``value_scale=-1`` without a d×d matmul), the normalisation and an optional mask.
Array leaves (β, Q, K, V, value_scale, mask) are traced, so a β sweep is one
compile under ``vmap``; the normalisation name and chunk size are static.

For a configuration ``x`` of shape ``(..., n, d)`` the head computes, for every
query i,

    logits  ℓ_ij = β ⟨Q x_i, K x_j⟩          (−∞ where mask_ij is False)
    softmax w_ij = e^{ℓ_ij} / Σ_k e^{ℓ_ik}    ("softmax": SA, rows sum to 1)
    none    w_ij = e^{ℓ_ij} / n               ("none": USA)
    sinkhorn w = n·P, P the Sinkhorn plan of exp(ℓ/ε) ("sinkhorn": Sinkformer;
             ε, mode, τ, iterations in ``Attention.sinkhorn``, see sinkflow.sinkhorn)
    out_i  = s · Σ_j w_ij V x_j.

Masked entries are exactly zero (−∞ logits, never −1e9). Every row must keep
at least one allowed entry (validated by :func:`check_mask`).

Memory. The dense path materialises the ``(..., n, n)`` logits. With
``chunk=c`` the head instead loops over blocks of c queries (``lax.map``) and,
inside, over blocks of c keys with an online (running-max) softmax
(``lax.scan``), so memory is O(c² + n d) whatever n is: one million tokens run
in a few hundred MB. Query chunking alone would still hold c×n logits, which at
n = 10⁶ is gigabytes, which is why both loops are chunked. The two paths agree
to round-off (tested).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .sinkhorn import Sinkhorn, sinkhorn

__all__ = [
    "Attention",
    "attend_rows",
    "restrict_to_span",
    "attend_at",
    "NORMALIZATIONS",
    "logits",
    "attention_matrix",
    "attend",
    "check_mask",
    "random_matrix",
    "WEIGHT_KINDS",
]

NORMALIZATIONS = ("softmax", "none", "sinkhorn")
WEIGHT_KINDS = ("identity", "gaussian", "goe", "wishart")


class Attention(eqx.Module):
    """Parameters of one attention head (see the module docstring)."""

    beta: Float[Array, ""]
    Q: Float[Array, "d d"] | None = None
    K: Float[Array, "d d"] | None = None
    V: Float[Array, "d d"] | None = None
    value_scale: Float[Array, ""] | float = 1.0
    mask: Bool[Array, "n n"] | None = None
    normalization: str = eqx.field(static=True, default="softmax")
    causal: bool = eqx.field(static=True, default=False)
    chunk: int | None = eqx.field(static=True, default=None)
    sinkhorn: Sinkhorn | None = None
    #: column potential a "sinkhorn" head's Sinkhorn loop starts from (``SinkhornInfo.potential`` of a
    #: nearby configuration; :func:`sinkflow.dynamics.attention.sinkformer_warm`), None: from zero
    sinkhorn_init: Float[Array, "... n"] | None = None

    def __check_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"Attention(normalization={self.normalization!r}) is not known; use one of {NORMALIZATIONS}."
            )
        if self.normalization == "sinkhorn":
            if self.sinkhorn is None:
                raise ValueError("Attention(normalization='sinkhorn') needs sinkhorn=Sinkhorn(epsilon=…, mode=…).")
            if self.chunk is not None:
                raise ValueError("Attention(normalization='sinkhorn') normalises columns too and needs the full n×n kernel; use chunk=None.")
        if self.chunk is not None and (not isinstance(self.chunk, int) or self.chunk < 1):
            raise ValueError(f"Attention(chunk={self.chunk!r}) must be a positive integer or None.")


def _queries(y: Array, p: Attention) -> Array:
    return y if p.Q is None else y @ p.Q.T


def _keys(x: Array, p: Attention) -> Array:
    return x if p.K is None else x @ p.K.T


def _qk(x: Array, p: Attention) -> tuple[Array, Array]:
    return _queries(x, p), _keys(x, p)


def _values(x: Array, p: Attention) -> Array:
    v = x if p.V is None else x @ p.V.T
    return p.value_scale * v


def restrict_to_span(p: Attention, U: Float[Array, "d m"]) -> Attention:
    """The head acting on coordinates c ∈ R^m of points x = cUᵀ in the span of U's orthonormal columns
    (:func:`sinkflow.sphere.span_basis`): ⟨Qx_i, Kx_j⟩ = ⟨A c_i, c_j⟩ with A = UᵀKᵀQU (m × m), so the
    reduced head has Q = A and K = I. Stacked per-layer Q, K (L, d, d) give A of shape (L, m, m).
    Exact only with V = I (``value_scale`` may be any scalar): with V ≠ I the velocity leaves the span,
    so such a head is refused."""
    if p.V is not None:
        raise ValueError("restrict_to_span needs V = I (V = None): with V ≠ I the velocities leave the span of the tokens.")
    if p.Q is None and p.K is None:
        return p
    QU = U if p.Q is None else p.Q @ U
    KU = U if p.K is None else p.K @ U
    A = jnp.swapaxes(KU, -1, -2) @ QU  # UᵀKᵀQU
    return eqx.tree_at(lambda a: (a.Q, a.K), p, (A, None), is_leaf=lambda v: v is None)


def _allowed(p: Attention, n: int, rows: Array | None = None, cols: Array | None = None) -> Array | None:
    """Boolean allowed-pattern for the given query rows / key cols (None = everything)."""
    if rows is None:
        rows = jnp.arange(n)
    if cols is None:
        cols = jnp.arange(n)
    allowed = None
    if p.mask is not None:
        allowed = p.mask[rows[:, None], cols[None, :]]
    if p.causal:
        c = cols[None, :] <= rows[:, None]
        allowed = c if allowed is None else allowed & c
    return allowed


def logits(x: Float[Array, "... n d"], p: Attention) -> Float[Array, "... n n"]:
    """ℓ_ij = β⟨Qx_i, Kx_j⟩, with −∞ where the mask (or causality) forbids j for i."""
    q, k = _qk(x, p)
    lg = p.beta * jnp.einsum("...id,...jd->...ij", q, k)
    allowed = _allowed(p, x.shape[-2])
    if allowed is not None:
        lg = jnp.where(allowed, lg, -jnp.inf)
    return lg


def _kernel(x: Float[Array, "... n d"], p: Attention, unit: bool) -> tuple[Array, Array]:
    """Unnormalised softmax kernel e_ij = exp(ℓ_ij − m_i) and its shift m_i (row max, or β; see below)."""
    lg = logits(x, p)
    fast = unit and p.Q is None and p.K is None and p.mask is None and not p.causal
    if fast:
        shift = p.beta
    else:
        shift = jax.lax.stop_gradient(jnp.max(lg, axis=-1, keepdims=True))
        shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
    return jnp.exp(lg - shift), shift


def attention_matrix(x: Float[Array, "... n d"], p: Attention, *, unit: bool = False) -> Float[Array, "... n n"]:
    """The weights w_ij (row-stochastic for "softmax", e^{ℓ}/n for "none"); masked entries exactly 0.

    ``unit=True`` promises that the rows of x are (near) unit vectors. With Q = K = I and no
    mask the largest logit of row i is then ℓ_ii = β, so the softmax shift is β
    itself and the row-max reduction is skipped (a measured ~25% of the field on CPU).
    Near is enough: the shift only guards against overflow, and for |x_i|² = 1 + η the
    largest term is e^{βη} (the stage states of a projected solve have η = O(h²)).
    """
    if p.normalization == "sinkhorn":
        return sinkhorn(logits(x, p), p.sinkhorn, init=p.sinkhorn_init)[0]
    e, shift = _kernel(x, p, unit)
    if p.normalization == "softmax":
        return e / jnp.sum(e, axis=-1, keepdims=True)
    return e * (jnp.exp(shift) / x.shape[-2])


def attend(x: Float[Array, "... n d"], p: Attention, *, unit: bool = False) -> Float[Array, "... n d"]:
    """out_i = s Σ_j w_ij V x_j for every token (dense or chunked by ``p.chunk``); ``unit`` as in :func:`attention_matrix`."""
    n = x.shape[-2]
    if p.chunk is None or p.chunk >= n:
        if p.normalization == "sinkhorn":
            return p.value_scale * _apply_v(jnp.einsum("...ij,...jd->...id", attention_matrix(x, p), x), p)
        return _finish(*_kernel(x, p, unit), x, p)
    batch = x.shape[:-2]
    flat = x.reshape((-1, n, x.shape[-1]))
    out = jax.vmap(lambda y: _attend_chunked(y, p))(flat)
    return out.reshape((*batch, n, x.shape[-1]))


def attend_rows(x: Float[Array, "... n d"], p: Attention, rows: Int[Array, " r"]) -> Float[Array, "... r d"]:
    """out_i for the query rows ``rows`` only, against all n keys: O(r·n·d) work and memory.

    For observables of a few tokens at large n (the long-context study reads two
    outputs among n = 10⁴ equiangular tokens). Softmax and 1/n normalisations;
    Sinkhorn needs every row and is refused.
    """
    if p.normalization == "sinkhorn":
        raise ValueError("attend_rows: Sinkhorn normalises columns over every query row; use attend().")
    rows = jnp.asarray(rows)
    q, k = _qk(x, p)
    n = x.shape[-2]
    lg = p.beta * jnp.einsum("...id,...jd->...ij", q[..., rows, :], k)
    allowed = _allowed(p, n, rows=rows)
    if allowed is not None:
        lg = jnp.where(allowed, lg, -jnp.inf)
    return _attend_logits(lg, x, p)


def attend_at(y: Float[Array, "... m d"], x: Float[Array, "... n d"], p: Attention) -> Float[Array, "... m d"]:
    """The attention velocity at query points y that are not tokens: s Σ_j w_j(y) V x_j, with
    w_j(y) ∝ e^{β⟨Q y, K x_j⟩} over the cloud x (softmax), or e^{β⟨Qy, Kx_j⟩}/n (USA).

    This is v[μ](y) for the empirical measure μ = (1/n) Σ_j δ_{x_j}, the field a frozen cloud
    exerts on a test particle; ``attend_at(x, x, p) == attend(x, p)``. Used where the field is
    needed as a function of a free point (its divergence at y, in the hybrid study). A mask or
    causality refers to token pairs (i, j), and Sinkhorn couples all queries, so both are refused.
    """
    if p.normalization == "sinkhorn":
        raise ValueError("attend_at: Sinkhorn normalises over all queries jointly; use attend() on the tokens.")
    if p.mask is not None or p.causal:
        raise ValueError("attend_at: masks and causality refer to token pairs, not to free query points.")
    return _attend_logits(p.beta * jnp.einsum("...id,...jd->...ij", _queries(y, p), _keys(x, p)), x, p)


def _attend_logits(lg: Array, x: Array, p: Attention) -> Array:
    """s·V Σ_j w_ij x_j from logits (..., m, n) (−∞ where forbidden), softmax or 1/n weights."""
    shift = jax.lax.stop_gradient(jnp.max(lg, axis=-1, keepdims=True))
    shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
    return _finish(jnp.exp(lg - shift), shift, x, p)


def _finish(e: Array, shift: Array, x: Array, p: Attention) -> Array:
    """s·V Σ_j w_ij x_j from the shifted kernel e_ij = e^{ℓ_ij − shift_i} (..., m, n): the one
    finishing step of every dense softmax / 1/n path. It normalises after the product,
    (Σ_j e_ij x_j)/Σ_j e_ij, so the division touches m·d numbers instead of m·n (measured 1.1×
    on the whole field, CPU)."""
    out = jnp.einsum("...ij,...jd->...id", e, x)
    if p.normalization == "softmax":
        out = out / jnp.sum(e, axis=-1, keepdims=True)
    else:
        out = out * (jnp.exp(shift) / x.shape[-2])
    return p.value_scale * _apply_v(out, p)


def _apply_v(y: Array, p: Attention) -> Array:
    return y if p.V is None else y @ p.V.T


def _attend_chunked(x: Float[Array, "n d"], p: Attention) -> Float[Array, "n d"]:
    n, d = x.shape
    c = p.chunk
    nb = -(-n // c)
    pad = nb * c - n
    q, k = _qk(x, p)
    qp = jnp.pad(q, ((0, pad), (0, 0))).reshape(nb, c, d)
    kp = jnp.pad(k, ((0, pad), (0, 0))).reshape(nb, c, d)
    vp = jnp.pad(x, ((0, pad), (0, 0))).reshape(nb, c, d)
    idx = jnp.arange(nb * c).reshape(nb, c)
    neg_inf = jnp.array(-jnp.inf, x.dtype)

    def query_block(args):
        qb, rows = args

        def key_step(carry, kargs):
            m, s, acc = carry
            kb, vb, cols = kargs
            lg = p.beta * (qb @ kb.T)
            ok = (cols < n)[None, :]
            extra = _allowed(p, n, jnp.minimum(rows, n - 1), jnp.minimum(cols, n - 1))
            if extra is not None:
                ok = ok & extra
            lg = jnp.where(ok, lg, neg_inf)
            m_new = jnp.maximum(m, jnp.max(lg, axis=-1))
            m_ref = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
            scale = jnp.exp(jnp.where(jnp.isfinite(m), m - m_ref, neg_inf))
            e = jnp.exp(lg - m_ref[:, None])
            s = s * scale + jnp.sum(e, axis=-1)
            acc = acc * scale[:, None] + e @ vb
            return (m_new, s, acc), None

        init = (jnp.full((c,), -jnp.inf, x.dtype), jnp.zeros((c,), x.dtype), jnp.zeros((c, d), x.dtype))
        (m, s, acc), _ = jax.lax.scan(key_step, init, (kp, vp, idx))
        if p.normalization == "softmax":
            return acc / s[:, None]
        m_ref = jnp.where(jnp.isfinite(m), m, 0.0)
        return acc * (jnp.exp(m_ref) / n)[:, None]

    out = jax.lax.map(query_block, (qp, idx)).reshape(nb * c, d)[:n]
    return p.value_scale * _apply_v(out, p)


def check_mask(mask, n: int | None = None) -> None:
    """Validate a boolean attention mask at the boundary (host-side, before any compute)."""
    import numpy as np

    m = np.asarray(mask)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"an attention mask must be a square (n, n) array, got shape {m.shape}.")
    if n is not None and m.shape[0] != n:
        raise ValueError(f"the mask is {m.shape[0]}×{m.shape[0]} but there are n={n} tokens.")
    if m.dtype != bool and not np.isin(m, (0, 1)).all():
        raise ValueError("an attention mask must be boolean (or 0/1): entry (i, j) says whether token i may attend to j.")
    empty = np.flatnonzero(~m.astype(bool).any(axis=1))
    if empty.size:
        raise ValueError(
            f"mask rows {empty[:10].tolist()} allow no key at all; every token must at least see itself (set the diagonal)."
        )


def random_matrix(key: PRNGKeyArray, d: int, kind: str, dtype=jnp.float32) -> Float[Array, "d d"]:
    """Random weight matrices in the normalisations of GLPR Fig. 5.

    - ``identity``: I.
    - ``gaussian``: i.i.d. N(0, 1/d) entries (operator norm ≈ 2).
    - ``goe``: (G + Gᵀ)/√(2d), G standard Gaussian (symmetric, semicircle on [−2, 2]).
    - ``wishart``: G Gᵀ / d, G standard Gaussian d×d (PSD, mean eigenvalue 1).
    """
    if kind == "identity":
        return jnp.eye(d, dtype=dtype)
    g = jax.random.normal(key, (d, d), dtype=dtype)
    if kind == "gaussian":
        return g / math.sqrt(d)
    if kind == "goe":
        return (g + g.T) / math.sqrt(2 * d)
    if kind == "wishart":
        return g @ g.T / d
    raise ValueError(f"random_matrix(kind={kind!r}) is not known; use one of {WEIGHT_KINDS}.")
