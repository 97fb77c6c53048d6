"""The N-player barycenter game: N token clouds, each moved by its own model, coupled by a drift to their W₂ barycenter.

Contract (MATH.md §5). Clouds X^1..X^N of n points each, in R^d or on S^{d−1}, stacked as
``X`` of shape (N, n, d)::

    dX^i = ( f^i(X^i) + g(t)·λ·P( T_i(X^i) − X^i ) ) dt + σ P dW^i,

with f^i the i-th player's own field (any ``field(t, x, params)`` of :mod:`sinkflow.dynamics`:
SA/USA/Sinkformer/causal/hybrid, each with its own β, Q, K, V, mask), T_i the OT map from cloud i
onto the current barycenter μ̄ of the clouds with weights w (:mod:`sinkflow.transport`: the exact
sorted barycenter in 1-D when ``ot is None``, otherwise the entropic free-support one), so that
λ(T_i(x) − x) is the particle gradient of −(λ/2)W₂²(μ_i, μ̄); P the tangent projection on the
sphere (the identity in R^d); g(t) ∈ {0, 1} the indicator of the coupling windows (``windows``:
ordered, non-overlapping (start, end) pairs in [0, T]; ``None`` couples throughout).
``target="pairwise"`` replaces T_i by Σ_j w_jT_{i→j} (:func:`sinkflow.transport.pairwise_maps`):
the same map whenever optimal maps compose (1-D, commuting Gaussians), the W₂ gradient of the
Fréchet function in general, and several times cheaper (no fixed point; measured in the
barycenter-game study, which reports both).

Per-player running cost (recorded): ρ_i = ½·mean_k|u^i_k|² + (b/2)·W₂²(μ_i, μ̄), u^i the coupling
velocity (the control; the own field is the model, not a control), and J^i = ∫₀ᵀ ρ_i dt.

Time stepping (:func:`solve_game`): a fixed step ``dt`` in one ``lax.scan``, the stochastic Heun
scheme (increments ΔW from ``fold_in(key, step)``): X̃ = X + h·v(X) + σPₓΔW, then
X' = X + (h/2)(v(X) + v(X̃)) + (σ/2)(Pₓ + P_X̃)ΔW, re-normalised on the sphere. With σ = 0 it is
Heun's method (2nd order); with additive noise in R^d it is Itô = Stratonovich; on the sphere it
solves the Stratonovich equation σPₓ∘dW, which is Brownian motion with generator (σ²/2)Δ_S (no
Itô correction needed: the Stratonovich projection is the intrinsic one). Window edges and save times must lie on the step grid, so the
switch times are step boundaries and each step is wholly coupled or uncoupled. The barycenter of
each evaluation starts the next one's fixed point (it moves by O(dt)), so the warm fixed point
takes one or two iterations; the result is the barycenter to ``ot.barycenter_tol`` whatever the
start (up to the local minimum the start selects, which the warm start keeps continuous in time).
J^i is accumulated by the trapezoid rule over each step's two stages.

Closed forms to test against (:mod:`sinkflow.theory.game`): with f = 0 and σ = 0 in 1-D the
sorted clouds relax as q_i(t) = q̄ + e^{−λt}(q_i(0) − q̄) with q̄ constant, so Σ_i w_iW₂²(μ_i, μ̄)
decays exactly as e^{−2λt}.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..precision import with_exact_matmuls
from ..solve import with_finiteness
from ..sphere import normalize, project_tangent
from ..transport import OT, Barycenter, check_weights, free_barycenter, pairwise_maps, sorted_barycenter

__all__ = ["TARGETS", "Player", "Game", "GameSolution", "solve_game", "coupling", "check_windows", "window_gates", "MANIFOLDS"]

MANIFOLDS = (None, "sphere")
#: what T_i maps onto: the barycenter (free-support fixed point; exact sorted in 1-D) or Σ_j w_j T_{i→j}
TARGETS = ("barycenter", "pairwise")


class Player(eqx.Module):
    """One player's own field ``field(t, x, params)`` on a cloud x of shape (n, d); ``field=None`` is f = 0."""

    field: Callable | None = eqx.field(static=True)
    params: Any = None


class Game(eqx.Module):
    """The coupled system (see the module docstring). λ, σ, b and the weights are traced leaves."""

    players: tuple
    weights: Float[Array, " N"]
    lam: Float[Array, ""] | float = 1.0
    sigma: Float[Array, ""] | float = 0.0
    b: Float[Array, ""] | float = 1.0
    windows: tuple | None = eqx.field(static=True, default=None)
    ot: OT | None = None
    manifold: str | None = eqx.field(static=True, default=None)
    target: str = eqx.field(static=True, default="barycenter")

    def __check_init__(self):
        N = len(self.players)
        if N < 2:
            raise ValueError(f"a game needs N ≥ 2 players (clouds), got {N}.")
        check_weights(self.weights, N)
        for name in ("lam", "sigma", "b"):
            v = getattr(self, name)
            if isinstance(v, (int, float)) and not v >= 0:
                raise ValueError(f"Game({name}={v!r}) must be ≥ 0.")
        if self.target not in TARGETS:
            raise ValueError(f"Game(target={self.target!r}): use one of {TARGETS}.")
        if self.manifold not in MANIFOLDS:
            raise ValueError(f"Game(manifold={self.manifold!r}): use None (R^d) or 'sphere'.")


class GameSolution(NamedTuple):
    """Saves of :func:`solve_game` at ``ts``: ``ys`` the observable (default: the state (N, n, d)); ``w2`` (t, N)
    W₂²(μ_i, μ̄); ``kinetic`` (t, N) ½·mean|u^i|² of the coupling velocity (0 outside windows); ``cost`` (t, N)
    J^i accumulated up to each save; ``barycenter_change`` the largest last fixed-point step over the run;
    ``converged`` whether every barycenter met its tolerance; ``status`` 0 ok, 3 non-finite."""

    ts: np.ndarray
    ys: Any
    w2: Float[Array, "t N"]
    kinetic: Float[Array, "t N"]
    cost: Float[Array, "t N"]
    barycenter_change: Float[Array, ""]
    converged: Array
    status: Array
    final: Float[Array, "N n d"]


def check_windows(windows, T: float) -> tuple:
    """Refuse windows that are not ordered, non-overlapping sub-intervals of [0, T]; return them as a sorted tuple of pairs."""
    out = []
    for w in windows:
        if len(w) != 2:
            raise ValueError(f"a coupling window is a pair (start, end), got {w!r}.")
        a, b = float(w[0]), float(w[1])
        if not (0.0 <= a < b <= T):
            raise ValueError(f"coupling window ({a:g}, {b:g}) must satisfy 0 ≤ start < end ≤ T = {T:g}.")
        out.append((a, b))
    out.sort()
    for (a0, b0), (a1, b1) in zip(out, out[1:]):
        if a1 < b0:
            raise ValueError(f"coupling windows ({a0:g}, {b0:g}) and ({a1:g}, {b1:g}) overlap; merge them into one.")
    return tuple(out)


def _on_grid(x: float, dt: float) -> bool:
    return abs(x / dt - round(x / dt)) < 1e-9 * max(1.0, abs(x / dt))


def window_gates(windows, T: float, dt: float) -> np.ndarray:
    """g per step of size dt on [0, T]: 1.0 where the step lies in a coupling window. Edges must be on the step grid."""
    steps = int(round(T / dt))
    g = np.zeros(steps)
    for a, b in windows:
        for edge in (a, b):
            if not _on_grid(edge, dt):
                raise ValueError(f"coupling window edge {edge:g} is not a multiple of dt = {dt:g}; switch times must be step boundaries (choose dt dividing every edge).")
        g[int(round(a / dt)) : int(round(b / dt))] = 1.0
    return g


def _barycenter(X, game: Game, init) -> Barycenter:
    if game.ot is None:
        return sorted_barycenter(X, game.weights)
    if game.target == "pairwise":
        return pairwise_maps(X, game.weights, game.ot)
    return free_barycenter(X, game.weights, game.ot, init=init)


def coupling(X: Float[Array, "N n d"], game: Game, init=None) -> tuple[Float[Array, "N n d"], Barycenter]:
    """λ·P(T_i(X^i) − X^i) for every player, and the barycenter it used (warm-started at ``init``)."""
    bar = _barycenter(X, game, init)
    v = bar.maps - X
    if game.manifold == "sphere":
        v = project_tangent(X, v)
    return game.lam * v, bar


def own_velocity(t, X: Float[Array, "N n d"], game: Game) -> Float[Array, "N n d"]:
    """The players' own fields, f^i(X^i), stacked."""
    rows = [jnp.zeros_like(X[i]) if p.field is None else p.field(t, X[i], p.params) for i, p in enumerate(game.players)]
    return jnp.stack(rows)


@with_exact_matmuls
def solve_game(
    game: Game,
    X0: Float[Array, "N n d"],
    ts,
    *,
    dt: float,
    key: PRNGKeyArray | None = None,
    observable: Callable | None = None,
    gates: Float[Array, " steps"] | None = None,
) -> GameSolution:
    """Integrate the game from ``X0`` on [ts[0] = 0, ts[-1]] and save at ``ts`` (see the module docstring).

    ``gates``: per-step coupling indicators (traced, length T/dt) replacing ``game.windows``, for windows
    that depend on the state (e.g. around an entropy saddle found by a pilot run).
    """
    ts_np = np.asarray(ts, float)
    if X0.ndim != 3 or X0.shape[0] != len(game.players):
        raise ValueError(f"X0 must have shape (N, n, d) with N = {len(game.players)} players, got {X0.shape}.")
    if game.ot is None and X0.shape[-1] != 1:
        raise ValueError(f"the exact (sorted) barycenter is 1-D only; clouds have d = {X0.shape[-1]}: pass ot=OT(epsilon=…).")
    if ts_np.ndim != 1 or ts_np.size < 2 or ts_np[0] != 0.0 or np.any(np.diff(ts_np) <= 0):
        raise ValueError("solve_game needs ts increasing from 0 with at least two times.")
    if not dt > 0:
        raise ValueError(f"solve_game needs dt > 0, got {dt!r}.")
    T = float(ts_np[-1])
    for t in ts_np:
        if not _on_grid(float(t), dt):
            raise ValueError(f"save time {t:g} is not a multiple of dt = {dt:g}.")
    windows = ((0.0, T),) if game.windows is None else check_windows(game.windows, T)
    steps_total = int(round(T / dt))
    if gates is None:
        gates = jnp.asarray(window_gates(windows, T, dt), X0.dtype)
    elif gates.shape != (steps_total,):
        raise ValueError(f"gates must have one value per step, shape ({steps_total},), got {gates.shape}.")
    noisy = not (isinstance(game.sigma, (int, float)) and game.sigma == 0.0)  # a traced σ = 0 adds exact zeros
    if noisy and key is None:
        raise ValueError("solve_game with σ > 0 needs a PRNG key.")
    dtype = X0.dtype
    h = jnp.asarray(dt, dtype)
    sphere = game.manifold == "sphere"
    proj = normalize if sphere else (lambda x: x)
    fn = (lambda x: x) if observable is None else observable
    half_b = 0.5 * jnp.asarray(game.b, dtype)

    def rho(u, bar):
        return 0.5 * jnp.mean(jnp.sum(u * u, axis=-1), axis=-1) + half_b * bar.w2

    def step(carry, inp):
        X, xb, J, change, ok = carry
        k, g = inp
        t = k * h
        u1, bar1 = coupling(X, game, xb)
        u1 = g * u1
        v1 = own_velocity(t, X, game) + u1
        Xp = X + h * v1  # the predictor is not projected (as diffrax's Heun inside ProjectedSolver)
        if noisy:
            dw = jnp.sqrt(h) * jax.random.normal(jax.random.fold_in(key, k), X.shape, dtype)
            Xp = Xp + game.sigma * (project_tangent(X, dw) if sphere else dw)
        u2, bar2 = coupling(Xp, game, bar1.x)
        u2 = g * u2
        v2 = own_velocity(t + h, Xp, game) + u2
        Xn = X + 0.5 * h * (v1 + v2)
        if noisy:
            Xn = Xn + game.sigma * (0.5 * (project_tangent(X, dw) + project_tangent(Xp, dw)) if sphere else dw)
        Xn = proj(Xn)
        Jn = J + 0.5 * h * (rho(u1, bar1) + rho(u2, bar2))
        bar_last = bar2
        change = jnp.maximum(change, jnp.maximum(bar1.change, bar_last.change))
        ok = ok & bar1.converged & bar_last.converged
        return (Xn, bar_last.x, Jn, change, ok), None

    per = np.round(np.diff(ts_np) / dt).astype(int)
    if np.any(per != per[0]):
        raise ValueError("solve_game saves at equally spaced times (ts = linspace(0, T, k)).")
    m = int(per[0])
    # the gate in force at each save: that of the step starting there (at T: of the step ending there)
    save_gates = gates[np.array([min(int(round(t / dt)), steps_total - 1) for t in ts_np])]

    def save(X, xb, J, g, gm=game):
        u, bar = coupling(X, gm, xb)
        return fn(X), bar.w2, g * g * 0.5 * jnp.mean(jnp.sum(u * u, axis=-1), axis=-1), J, bar

    def interval(carry, inp):
        ks, gs, g_save = inp
        carry, _ = jax.lax.scan(step, carry, (ks, gs))
        y, w, kin, J, bar = save(carry[0], carry[1], carry[2], g_save)
        carry = carry[:4] + (carry[4] & bar.converged,)
        return carry, (y, w, kin, J)

    zeroN = jnp.zeros(len(game.players), dtype)
    y0, w0, k0, _, bar0 = save(X0, None, zeroN, save_gates[0], _cold(game))
    carry = (X0, bar0.x, zeroN, jnp.zeros((), dtype), bar0.converged)
    n_int = len(per)
    ks = jnp.arange(n_int * m).reshape(n_int, m)
    xs = (ks, gates.reshape(n_int, m).astype(dtype), save_gates[1:].astype(dtype))
    carry, (ys, w2, kin, J) = jax.lax.scan(interval, carry, xs)
    cat = lambda f, r: jnp.concatenate([f[None], r], axis=0)
    ys = jax.tree.map(cat, y0, ys)
    w2, kinetic, J = cat(w0, w2), cat(k0, kin), cat(zeroN, J)
    final, change, ok = carry[0], carry[3], carry[4]
    code = with_finiteness(jnp.array(0, jnp.int32), final, w2, J)
    return GameSolution(ts_np, ys, w2, kinetic, J, change, ok, code, final)


def _cold(game: Game) -> Game:
    """The game whose first barycenter (no warm start) may take ``ot.cold_iterations``."""
    if game.ot is None:
        return game
    ot = game.ot
    return eqx.tree_at(lambda g: g.ot, game, dataclasses.replace(ot, barycenter_iterations=ot.cold_iterations))
