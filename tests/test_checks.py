"""Helpers of the theorem checks: the n → ∞ limit test with an unknown bias exponent."""

import numpy as np
import pytest

from sinkflow.estimators import power_law_limit_test
from sinkflow.theory import lambda_sinkhorn, lambda_softmax

N = np.array([1000.0, 2000.0, 4000.0])
# sinkhorn-gaussian, paper preset, dim = 3, s = 2, ε = 0.5 (64 realizations each, float64, H100,
# 2026-11-23): mean gains and their standard errors at n = 1000, 2000, 4000. The bias decays like
# n^−0.58 (softmax) and n^−0.83 (Sinkhorn), not 1/n: a 1/n fit missed the closed forms by 29 and
# 11 standard errors.
SOFTMAX = ([0.9155852, 0.9067313, 0.9008457], [3.0652e-4, 2.0561e-4, 1.7863e-4])
SINKHORN = ([0.9473185, 0.9443107, 0.9426156], [1.7335e-4, 1.1850e-4, 1.0225e-4])


def test_power_law_limit_test_accepts_the_closed_forms_on_measured_data():
    for (v, se), exact in ((SOFTMAX, float(lambda_softmax(2.0, 0.5))), (SINKHORN, float(lambda_sinkhorn(2.0, 0.5)))):
        z, y_inf, alpha = power_law_limit_test(v, se, N, exact)
        assert z < 1.0 and abs(y_inf - exact) < 2e-3 and 0.5 < alpha < 1.0
    # and rejects a limit 0.005 above Sinkhorn's (the data approach from above)
    assert power_law_limit_test(*SINKHORN, N, float(lambda_sinkhorn(2.0, 0.5)) + 0.005)[0] > 4.0


def test_power_law_limit_test_on_synthetic_biases():
    rng = np.random.default_rng(0)
    n = np.array([250.0, 500.0, 1000.0, 2000.0, 4000.0])  # the test reads the three largest
    se = np.full(n.size, 1e-5)
    for c, alpha in ((0.3, 0.6), (2.0, 1.0), (200.0, 1.7)):
        y = 0.7 + c * n**-alpha + se * rng.standard_normal(n.size)
        z, y_inf, a = power_law_limit_test(y, se, n, 0.7)
        assert z < 3.0 and abs(a - alpha) < 0.25, (c, alpha, z, a)
        assert power_law_limit_test(y, se, n, 0.7 + 0.01)[0] > 4.0
        assert power_law_limit_test(y, se, n, 0.7 - 0.01)[0] > 4.0
    # one sample size: a plain z-score; two: every limit reachable with α in [0.25, 2] fits exactly
    assert abs(power_law_limit_test([0.5], [0.01], [100.0], 0.47)[0] - 3.0) < 1e-12
    assert power_law_limit_test([0.52, 0.41], [1e-4, 1e-4], [100.0, 200.0], 0.3)[0] < 1e-6  # α = 1
    assert power_law_limit_test([0.52, 0.51], [1e-4, 1e-4], [100.0, 200.0], 0.3)[0] > 4.0  # would need α = 0.07


def test_power_law_limit_power_is_the_shift_at_which_the_test_turns():
    """The reported power is where z crosses 4: just above it the shifted limit is rejected, just
    below it is not; tighter data (smaller se) detect proportionally smaller shifts."""
    from sinkflow.estimators import power_law_limit_power

    v, se = SINKHORN
    exact = float(lambda_sinkhorn(2.0, 0.5))
    d = power_law_limit_power(v, se, N, exact)
    assert 0.0 < d < 0.005  # the test above rejects 0.005
    z = lambda p: power_law_limit_test(v, se, N, p)[0]  # noqa: E731
    assert max(z(exact + 1.02 * d), z(exact - 1.02 * d)) > 4.0
    assert max(z(exact + 0.97 * d), z(exact - 0.97 * d)) <= 4.0
    n = np.array([250.0, 500.0, 1000.0])
    y = 0.7 + 2.0 / n
    d1, d2 = power_law_limit_power(y, np.full(3, 1e-4), n, 0.7), power_law_limit_power(y, np.full(3, 1e-5), n, 0.7)
    assert 5.0 < d1 / d2 < 20.0
    assert power_law_limit_power(y, np.full(3, 1e-4), n, 0.8) == 0.0  # a wrong limit is rejected as it stands
    # a failed cell (NaN) is no evidence: NaN, never a pass (z = 0) and never a hang
    bad = np.array([np.nan, y[1], y[2]])
    assert np.isnan(power_law_limit_test(bad, np.full(3, 1e-4), n, 0.7)[0])
    assert np.isnan(power_law_limit_power(bad, np.full(3, 1e-4), n, 0.7))
    assert np.isnan(power_law_limit_power(y, np.zeros(3), n, 0.7))


def test_window_log_slope_with_inverse_t_removes_the_lower_prefactor_powers():
    """v = (t² + c₁t + c₀)e^{−λt}, a defective mode with k = 2 (Jordan index 3): the plain fit with
    t² known is biased by ≈ c₁/(t_lo·t_hi); the b/t term removes it to O(t^−3)."""
    from sinkflow.estimators import window_log_slope

    t = np.linspace(0.1, 40.0, 400)
    lam = 1.0
    for c1, c0 in ((8.0, 3.0), (-6.0, 20.0)):
        v = np.abs(t**2 + c1 * t + c0) * np.exp(-lam * t)
        plain, sel = window_log_slope(t, v, (1e-9, 1e-4), keep=t > 0, power=2, inverse_t=False)
        fixed, _ = window_log_slope(t, v, (1e-9, 1e-4), keep=t > 0, power=2)  # b/t by default for power ≥ 1
        t_lo, t_hi = t[sel][0], t[sel][-1]
        assert abs(-plain / lam - 1) > 0.5 * abs(c1) / (t_lo * t_hi)  # the bias the b/t term removes
        assert abs(-fixed / lam - 1) < 2e-3


def test_decay_rate_reads_the_rate_where_it_is_visible_and_reports_its_drift():
    from sinkflow.estimators import decay_rate, log_log_slope

    t = np.linspace(0.0, 40.0, 401)
    pure = 3.0 * np.exp(-0.7 * t)
    fit = decay_rate(t, pure, (1e-10, 1e-2))
    assert fit.rate == pytest.approx(0.7, rel=1e-12) and fit.drift < 1e-10
    assert fit.t_lo == pytest.approx(t[fit.mask][0]) and fit.points == int(fit.mask.sum()) > 100
    # a two-mode mixture still drifting inside the window: the drift says so
    mixed = np.exp(-0.7 * t) + 50.0 * np.exp(-0.9 * t)
    assert decay_rate(t, mixed, (1e-6, 1e-1)).drift > 10 * decay_rate(t, pure, (1e-6, 1e-1)).drift + 1e-3
    # a Jordan prefactor t²(1 + 5/t): known power with the b/t term gives the rate to O(t^-3)
    jordan = t**2 * (1.0 + 5.0 / np.maximum(t, 1e-9)) * np.exp(-0.5 * t)
    assert decay_rate(t, jordan, (1e-8, 1e-1), keep=t > 0, power=2).rate == pytest.approx(0.5, rel=2e-3)
    # too few saves in the window: NaN, not a number from two points
    assert np.isnan(decay_rate(t, pure, (1e-3, 1.2e-3)).rate)  # 3 saves
    k = np.arange(1.0, 200.0)
    assert log_log_slope(k, 4.0 * k**-1.5) == pytest.approx(-1.5, rel=1e-12)


@pytest.mark.parametrize("mode,p,m,tol", [("abs", 1.0, 1.02, 0.05), ("rel", 2.0, 2.05, 0.05), ("le", 0.0, 0.3, 1.0), ("ge", 1.0, 0.995, 0.01)])
def test_a_check_reports_the_smallest_shift_of_its_prediction_that_fails_it(mode, p, m, tol):
    from sinkflow.checks import compare

    c = compare("x", "s", p, m, tol, "r", mode=mode)
    assert c.passed and c.margin > 0
    shifted = [compare("x", "s", p + s * c.margin * f, m, tol, "r", mode=mode).passed for f in (0.999, 1.001) for s in (1, -1)]
    assert shifted[:2] == [True, True] and not all(shifted[2:])  # inside the margin passes; just beyond, one side fails
    assert compare("x", "s", p, float("nan"), tol, "r", mode=mode).margin == float("-inf")


def test_the_extrapolated_transition_check_resolves_what_the_data_resolve():
    """Synthetic P-curves whose transition sits at t* + c/d (the measured finite-d law) with small
    Monte-Carlo noise: the d → ∞ check passes at the true t* and fails when t* is 0.05 off, a shift
    the calibrated band (±2t*/√d ≈ 0.3 here) cannot see."""
    import xarray as xr

    from sinkflow.studies import phase_diagram as pd

    t = np.linspace(0.0, 12.0, 121)
    betas = np.array([0.5, 1.0, 2.0])
    tstar = np.array([5.2, 5.3, 5.5])
    ds_list = []
    for d in (512, 1024):
        centre = tstar[:, None] + 3.0 / d
        P = 1.0 / (1.0 + np.exp(-(t[None, :] - centre) / 0.3))
        ds_list.append(xr.Dataset({"P": (("beta", "t"), P), "P_se": (("beta", "t"), np.full(P.shape, 1e-3))}, coords={"beta": betas, "t": t}).expand_dims(d=[d], n=[32]))
    ds = xr.concat(ds_list, dim="d")
    ok = np.ones(3, bool)
    good = pd._extrapolated_transition(ds, 32, 512, 1024, tstar, ok, betas, t)
    bad = pd._extrapolated_transition(ds, 32, 512, 1024, tstar + 0.05, ok, betas, t)
    assert good.passed and not bad.passed
    assert 2 * 5.5 / np.sqrt(1024) > 0.3  # the old band would have passed both
