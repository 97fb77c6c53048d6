"""The barycenter game (sinkflow.dynamics.game), its closed forms (sinkflow.theory.game) and the equilibrium sweep."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import theory
from sinkflow.dynamics.attention import attention_field, sa
from sinkflow.dynamics.game import Game, Player, solve_game
from sinkflow.equilibrium import feedback_gain, forward_backward, lq_damping
from sinkflow.solve import SolverConfig, solve
from sinkflow.sphere import normalize, uniform
from sinkflow.transport import OT, sorted_barycenter

jax.config.update("jax_enable_x64", True)


def _gauss(N, n, key=0):
    i = jnp.arange(N, dtype=jnp.float64)[:, None, None]
    return i * 1.0 + (1.0 + 0.5 * i) * jax.random.normal(jax.random.PRNGKey(key), (N, n, 1), jnp.float64)


def test_1d_relaxation_is_the_heun_recursion_of_the_closed_form():
    N, lam, h = 3, 1.5, 0.02
    w = jnp.array([0.5, 0.3, 0.2])
    X0 = _gauss(N, 400)
    ts = np.linspace(0.0, 2.0, 11)
    sol = solve_game(Game(players=(Player(None),) * N, weights=w, lam=lam, b=0.7), X0, ts, dt=h)
    D = np.asarray(sol.w2 @ w)
    R = 1 - lam * h + 0.5 * (lam * h) ** 2
    assert np.allclose(D, D[0] * R ** (2 * np.round(ts / h)), rtol=1e-10)
    assert np.allclose(D, D[0] * np.exp(-2 * lam * ts), rtol=2e-3)  # and the scheme is close to the flow
    # every sorted gap decays: the clouds' quantiles relax to the (fixed) barycenter
    bar0 = sorted_barycenter(X0, w)
    q = jnp.sort(sol.final[..., 0], axis=1)
    assert np.allclose(q - bar0.x[:, 0], R ** (2 / h * 1.0) * (jnp.sort(X0[..., 0], axis=1) - bar0.x[:, 0]), atol=1e-12)
    # the moments follow theory.relaxation_1d (sample moments as start); the means exactly up to the scheme
    m, s = theory.relaxation_1d(np.asarray(X0[..., 0].mean(1)), np.asarray(X0[..., 0].std(1)), np.asarray(w), lam, ts)
    assert np.allclose(sol.ys[..., 0].mean(-1), m, atol=1e-3)
    assert np.allclose(sol.ys[..., 0].std(-1), s, atol=0.05)


def test_noise_adds_sigma_squared_per_unit_time_to_each_variance():
    N, n, sigma, T = 2, 8000, 0.6, 1.0
    X0 = _gauss(N, n)
    ts = np.linspace(0.0, T, 3)
    g = Game(players=(Player(None),) * N, weights=jnp.ones(N) / N, lam=0.0, sigma=sigma)
    sol = solve_game(g, X0, ts, dt=0.05, key=jax.random.PRNGKey(1))
    var0 = np.asarray(X0[..., 0].var(1))
    var = np.asarray(sol.ys[-1, ..., 0].var(1))
    se = var * math.sqrt(2 / n)
    assert np.all(np.abs(var - (var0 + sigma**2 * T)) < 4 * se)
    # with coupling, against the noisy moment ODE of theory.relaxation_1d
    g = Game(players=(Player(None),) * N, weights=jnp.ones(N) / N, lam=1.0, sigma=sigma)
    sol = solve_game(g, X0, ts, dt=0.02, key=jax.random.PRNGKey(2))
    _, s = theory.relaxation_1d(np.asarray(X0[..., 0].mean(1)), np.sqrt(var0), np.ones(N) / N, 1.0, ts, noise=sigma)
    sd = np.asarray(sol.ys[..., 0].std(-1))
    assert np.all(np.abs(sd[-1] - s[-1]) < 4 * s[-1] / math.sqrt(2 * n))
    # the wrong law (noise ignored) is rejected at this size
    _, s0 = theory.relaxation_1d(np.asarray(X0[..., 0].mean(1)), np.sqrt(var0), np.ones(N) / N, 1.0, ts)
    assert np.all(np.abs(sd[-1] - s0[-1]) > 4 * s0[-1] / math.sqrt(2 * n))


def test_outside_the_window_each_cloud_moves_by_its_own_field():
    N, n, d, h = 2, 10, 3, 0.05
    X0 = uniform(jax.random.PRNGKey(3), (N, n), d, jnp.float64)
    players = (Player(attention_field, sa(jnp.asarray(1.0))), Player(attention_field, sa(jnp.asarray(4.0))))
    g = Game(players=players, weights=jnp.ones(N) / N, lam=2.0, windows=((0.0, 1.0),), ot=OT(epsilon=0.1, threshold=1e-3), manifold="sphere", target="pairwise")
    full = solve_game(g, X0, np.linspace(0.0, 2.0, 5), dt=h)
    head = solve_game(g, X0, np.array([0.0, 1.0]), dt=h)
    cfg = SolverConfig(method="heun", dt=h)
    ref = jnp.stack([solve(p.field, head.final[i], np.array([1.0, 2.0]), p.params, config=cfg, project=normalize).ys[-1] for i, p in enumerate(players)])
    assert float(jnp.max(jnp.abs(full.final - ref))) < 1e-12
    # inside the window the coupling acts: the uncoupled game ends elsewhere, and is farther apart
    free = solve_game(Game(players=players, weights=jnp.ones(N) / N, lam=0.0, ot=g.ot, manifold="sphere", target="pairwise"), X0, np.array([0.0, 1.0]), dt=h)
    assert float(jnp.max(jnp.abs(free.final - head.final))) > 1e-2
    assert float(head.w2[-1].sum()) < float(free.w2[-1].sum())
    assert np.all(np.asarray(full.kinetic[3:]) == 0.0) and np.all(np.asarray(full.kinetic[:2]) > 0)


def test_barycenter_and_pairwise_targets_both_contract_the_clouds_on_the_sphere():
    N, n, d = 2, 8, 3
    X0 = uniform(jax.random.PRNGKey(4), (N, n), d, jnp.float64)
    ot = OT(epsilon=0.1, threshold=1e-4, barycenter_tol=1e-5, barycenter_iterations=30, cold_iterations=300)
    kw = dict(players=(Player(None),) * N, weights=jnp.ones(N) / N, lam=1.0, ot=ot, manifold="sphere")
    a = solve_game(Game(**kw, target="barycenter"), X0, np.array([0.0, 0.4]), dt=0.1)
    b = solve_game(Game(**kw, target="pairwise"), X0, np.array([0.0, 0.4]), dt=0.1)
    # both contract the clouds towards each other; they are not the same drift in d > 1 (maps do not
    # compose): with 3 clouds of 8 uniform tokens the two end states differed by 60% of the displacement
    for s in (a, b):
        assert float(s.w2[-1].sum()) < 0.8 * float(s.w2[0].sum())
    # pairwise needs no fixed point; the warm barycenter fixed point converges linearly (rate ≈ 0.85 per
    # iteration here), so within 30 warm iterations its last step is small but above 1e-5
    assert bool(b.converged) and float(a.barycenter_change) < 1e-3
    rms = lambda v: float(jnp.sqrt(jnp.mean(v**2)))
    assert 0.0 < rms(a.final - b.final) < rms(a.final - X0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(players=(Player(None),), weights=jnp.ones(1)), "N ≥ 2"),
        (dict(players=(Player(None),) * 2, weights=jnp.array([0.7, 0.7])), "sum to 1"),
        (dict(players=(Player(None),) * 2, weights=jnp.array([1.5, -0.5])), "non-negative"),
        (dict(players=(Player(None),) * 2, weights=jnp.ones(2) / 2, lam=-1.0), "lam"),
    ],
)
def test_bad_games_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Game(**kwargs)


@pytest.mark.parametrize(
    "windows, message",
    [(((0.0, 3.0),), "≤ T"), (((0.0, 1.0), (0.5, 1.5)), "overlap"), (((1.0, 0.5),), "start < end"), (((0.0, 0.33),), "multiple of dt")],
)
def test_bad_windows_are_refused(windows, message):
    g = Game(players=(Player(None),) * 2, weights=jnp.ones(2) / 2, windows=windows)
    with pytest.raises(ValueError, match=message):
        solve_game(g, _gauss(2, 4), np.linspace(0.0, 2.0, 3), dt=0.1)


def test_mismatched_clouds_are_refused():
    g = Game(players=(Player(None),) * 2, weights=jnp.ones(2) / 2)
    with pytest.raises(ValueError, match="N = 2 players"):
        solve_game(g, _gauss(3, 4), np.linspace(0.0, 1.0, 3), dt=0.1)
    with pytest.raises(ValueError, match="1-D only"):
        solve_game(g, jnp.zeros((2, 4, 2)), np.linspace(0.0, 1.0, 3), dt=0.1)


def _lq(N, K, b=1.0, T=2.0, n=8):
    w = jnp.ones(N) / N
    X0 = _gauss(N, n, key=N)
    cost = lambda X: 0.5 * b * sorted_barycenter(X, w).w2
    eq = forward_backward(cost, X0, T, K, damping=lq_damping(b * (1 - 1 / N), T), tol=1e-13, max_iterations=5000)
    E = jax.vmap(lambda X: X - sorted_barycenter(X, w).maps)(eq.X)
    return eq, np.asarray(feedback_gain(eq.U, E)), E


def test_sweep_reproduces_the_riccati_gain_at_second_order_and_the_cost():
    b, T = 1.0, 2.0
    errs = []
    for K in (25, 50, 100):
        eq, P, E = _lq(3, K, b, T)
        assert bool(eq.converged)
        Pth = theory.riccati_gain(eq.ts, b, T, 1 / 3)
        errs.append(np.max(np.abs(P[:-1] - Pth[:-1])))
    slope = np.polyfit(np.log([25, 50, 100]), np.log(errs), 1)[0]
    assert abs(slope + 2) < 0.1 and errs[-1] < 2e-5, (errs, slope)
    # the mean-field gain is a different answer, far outside the solver's error
    assert np.max(np.abs(theory.riccati_gain(eq.ts, b, T) - Pth)) > 100 * errs[-1]
    # the equilibrium cost of each player from its initial gaps, against the closed form
    J_th = np.mean(theory.equilibrium_cost(np.asarray(E[0, ..., 0]), b, T, 1 / 3), axis=-1)
    assert np.allclose(np.asarray(eq.J), J_th, rtol=1e-3)


def test_n_player_equilibrium_approaches_mean_field_like_one_over_n():
    gaps = []
    Ns = (2, 4, 8)
    for N in Ns:
        eq, P, _ = _lq(N, 50, n=4)
        gaps.append(abs(P[0] - theory.riccati_gain(0.0, 1.0, 2.0)))
    slope = np.polyfit(np.log(Ns), np.log(gaps), 1)[0]
    slope_th = np.polyfit(np.log(Ns), np.log([abs(theory.riccati_gain(0.0, 1.0, 2.0, 1 / N) - theory.riccati_gain(0.0, 1.0, 2.0)) for N in Ns]), 1)[0]
    assert abs(slope - slope_th) < 0.02 and -1.2 < slope < -0.9, (slope, slope_th)


def test_theory_closed_forms():
    m, s = theory.gaussian_barycenter_1d([0.0, 2.0], [1.0, 3.0], [0.25, 0.75])
    assert (m, s) == (1.5, 2.5)
    t = np.linspace(0, 3, 7)
    mm, ss = theory.relaxation_1d([0.0, 2.0], [1.0, 3.0], [0.5, 0.5], 2.0, t)
    D = theory.dispersion_1d(mm, ss, [0.5, 0.5])
    assert np.allclose(D, D[0] * np.exp(-4.0 * t))
    P = lambda tt: theory.riccati_gain(tt, 2.0, 1.5, 0.25)
    tt = np.linspace(0, 1.4, 50)
    dP = (P(tt + 1e-6) - P(tt - 1e-6)) / 2e-6
    assert np.allclose(dP, P(tt) ** 2 - 2.0 * 0.75, atol=1e-6)
    assert theory.equilibrium_cost(1.0, 2.0, 1.5) == pytest.approx(0.5 * theory.riccati_gain(0.0, 2.0, 1.5))
    with pytest.raises(ValueError, match="sum"):
        theory.relaxation_1d([0.0, 1.0], [1.0, 1.0], [0.5, 0.6], 1.0, t)
