import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

from sinkflow import theory
from sinkflow.sphere import uniform

# MATH.md §1 reference values of t*(β) for n = 32, δ = 1e-3 (6 decimals).
TSTAR = {0: 5.186261, 0.5: 5.220213, 1: 5.270284, 2: 5.458394, 3: 5.897609, 4: 6.953502, 5: 9.544329, 6: 15.995314, 7: 32.233105, 8: 73.445676, 9: 178.730930}


def test_transition_time_table_and_beta0_formula():
    b = jnp.asarray(list(TSTAR), jnp.float64)
    np.testing.assert_allclose(theory.transition_time(b, 32, 1e-3), list(TSTAR.values()), atol=1e-6)
    for n, delta in [(2, 0.1), (32, 1e-3), (100, 1e-6)]:
        np.testing.assert_allclose(theory.transition_time(0.0, n, delta), 0.5 * np.log(n / delta - n + 1), rtol=1e-12)


def test_transition_time_is_the_ode_crossing():
    for model in theory.MODELS:
        ts = theory.transition_time(2.0, 8, 1e-3, model, rho0=0.2)
        g = theory.equiangular_gamma(jnp.asarray([0.0, float(ts)]), 2.0, 8, model, rho0=0.2)
        np.testing.assert_allclose(1 - g[-1], 1e-3, rtol=1e-8)


def test_equiangular_ode_beta0_closed_form():
    t = jnp.linspace(0, 8, 81)
    for model in theory.MODELS:
        np.testing.assert_allclose(theory.equiangular_gamma(t, 0.0, 10, model), theory.gamma_beta0(t, 10), atol=1e-11)


@pytest.mark.parametrize("n", [3, 5, 32])
@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_bound_d8_holds_for_n_ge_3(n, beta):
    t = jnp.linspace(0, 40, 401)
    eps = 1 - theory.equiangular_gamma(t, beta, n, "sa")
    # γ is solved to ~1e-12 absolute, so compare only where 1 − γ ≫ that.
    ok = eps > 1e-9
    assert jnp.all((eps <= theory.bound_d8(t, beta, n))[ok])


def test_bound_d8_fails_marginally_for_n2_small_t():
    # MATH.md: (D.8) fails marginally for n = 2, β = 0, t < 0.07.
    t = jnp.asarray([0.0, 0.03, 0.06])
    eps = 1 - theory.equiangular_gamma(t, 0.0, 2, "sa")
    assert jnp.any(eps > theory.bound_d8(t, 0.0, 2))


@pytest.mark.parametrize("n,beta", [(3, 0.0), (8, 1.0), (32, 3.0)])
def test_remark_d1_usa_bound(n, beta):
    t = jnp.linspace(0, 40, 401)
    eps = 1 - theory.equiangular_gamma(t, beta, n, "usa")
    ok = eps > 1e-9
    assert jnp.all((eps <= theory.bound_remark_d1(t, beta, n))[ok])


def _in_open_hemisphere(x: np.ndarray) -> bool:
    # max t s.t. <w, x_i> >= t, -1 <= w <= 1: feasible with t > 0 iff in an open hemisphere.
    n, d = x.shape
    c = np.zeros(d + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-x, np.ones((n, 1))])
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n), bounds=[(-1, 1)] * d + [(None, 1)], method="highs")
    return -res.fun > 1e-9


@pytest.mark.parametrize("n,d", [(4, 2), (6, 3)])
def test_wendel_by_monte_carlo(n, d):
    N = 1500
    xs = np.asarray(uniform(__import__("jax").random.key(n * 10 + d), (N, n), d, jnp.float64))
    p = np.mean([_in_open_hemisphere(x) for x in xs])
    exact = theory.wendel(n, d)
    se = np.sqrt(exact * (1 - exact) / N)
    assert abs(p - exact) <= 4 * se
    assert theory.wendel(5, 5) == 1.0 and theory.wendel(4, 2) == 0.5


def test_rates_and_bad_model():
    assert float(theory.local_rate(3.0, "sa")) == 2.0
    np.testing.assert_allclose(theory.local_rate(3.0, "usa"), 2 * np.exp(3.0))
    with pytest.raises(ValueError, match="model"):
        theory.transition_time(1.0, 4, 0.1, "ssa")


def test_long_context_formula_against_a_direct_layer_and_published_values():
    from sinkflow.attention import Attention, attend, attend_rows
    from sinkflow.sphere import equiangular

    n, rho, gamma = 40, 0.3, 1.7
    beta = gamma * np.log(n)
    x = equiangular(n, n + 3, rho, key=jax.random.key(0), dtype=jnp.float64)  # a rotated realisation
    y = attend(x, Attention(beta=beta))
    cos = float(y[0] @ y[1] / (jnp.linalg.norm(y[0]) * jnp.linalg.norm(y[1])))
    assert abs(cos - float(theory.long_context_cosine(n, rho, beta))) < 1e-13
    np.testing.assert_allclose(attend_rows(x, Attention(beta=beta), jnp.array([5, 1])), y[jnp.array([5, 1])], atol=1e-14)
    for m, v in ((1e2, 0.8028), (1e4, 0.80003), (1e8, 0.8000)):
        assert abs(float(theory.long_context_cosine(m, 0.5, 2 * np.log(m))) - v) < 0.5 * 10 ** -(len(str(v).split(".")[1]))


@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0])
def test_long_context_limits_are_approached_at_the_derived_power(gamma):
    ns = np.logspace(6, 12, 13)
    c = np.asarray(theory.long_context_cosine(ns, 0.5, gamma * np.log(ns)))
    gap = np.abs(c - theory.long_context_limit(0.5, gamma))
    slope = np.polyfit(np.log(ns), np.log(gap), 1)[0]
    assert abs(slope + theory.long_context_rate(0.5, gamma)) < 0.02
    assert theory.long_context_limit(0.5, 2.0) == pytest.approx(0.8)


def test_usa_layer_map_two_tokens_on_the_circle_against_numpy():
    """The projected Euler USA layer for n = 2 in d = 2, iterated in plain numpy, vs sinkflow's
    solve(euler, project=normalize) and the per-layer contraction 2 log|1 − η·rate/2|."""
    from sinkflow.attention import Attention
    from sinkflow.dynamics.attention import attention_field
    from sinkflow.solve import SolverConfig, solve
    from sinkflow.sphere import normalize

    beta, h = 1.5, 0.1
    eta = float(theory.usa_corrected_step(h, beta))
    assert eta == pytest.approx(h / (np.sqrt(beta) * np.exp(beta - 0.5)))
    assert float(theory.usa_corrected_step(h, 0.2)) == h  # max(·, 1) keeps small-β steps
    x = np.array([[1.0, 0.0], [np.cos(0.3), np.sin(0.3)]])
    traj = [x]
    for _ in range(60):
        w = np.exp(beta * x @ x.T) / 2.0
        a = w @ x
        f = a - np.sum(a * x, axis=1, keepdims=True) * x
        x = x + eta * f
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        traj.append(x)
    traj = np.array(traj)
    sol = solve(attention_field, jnp.asarray(traj[0]), np.arange(61.0), Attention(beta=beta, normalization="none", value_scale=eta),
                config=SolverConfig(method="euler", dt=1.0), observable=lambda t, y, a: y, project=normalize)
    np.testing.assert_allclose(np.asarray(sol.ys), traj, atol=1e-13)
    gap = 1.0 - np.sum(traj[:, 0] * traj[:, 1], axis=1)
    per_layer = np.diff(np.log(gap))[-10:]
    np.testing.assert_allclose(per_layer, float(theory.layer_log_contraction(eta, beta, "usa")), rtol=2e-3)
