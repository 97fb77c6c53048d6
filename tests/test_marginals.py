"""Marginal distances between particle ensembles against scipy and exact values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from sinkflow.marginals import ks_critical, ks_normal, ks_two_sample, tv_histogram


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)


def test_ks_two_sample_matches_scipy_per_leading_index():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4, 500))
    b = rng.normal(0.1, 1.2, size=(3, 4, 300))
    got = np.asarray(ks_two_sample(jnp.asarray(a), jnp.asarray(b)))
    want = np.array([[stats.ks_2samp(a[i, j], b[i, j]).statistic for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_ks_normal_matches_scipy_kstest():
    rng = np.random.default_rng(1)
    a = rng.normal(0.3, 2.0, size=(5, 800))
    mu, sd = np.array([0.0, 0.3, 0.3, 1.0, 0.3]), np.array([2.0, 2.0, 1.0, 2.0, 2.0])
    got = np.asarray(ks_normal(jnp.asarray(a), jnp.asarray(mu), jnp.asarray(sd)))
    want = np.array([stats.kstest(a[i], "norm", args=(mu[i], sd[i])).statistic for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_ks_critical_is_kolmogorovs_asymptotic_quantile():
    # c(0.05) = 1.3581, the 95% quantile of the Kolmogorov distribution
    assert ks_critical(0.05, 10**6) * 1e3 == pytest.approx(stats.kstwobign.ppf(0.95), rel=1e-4)
    assert ks_critical(0.01, 400, 400) == pytest.approx(stats.kstwobign.ppf(0.99) * np.sqrt(2 / 400), rel=1e-4)
    with pytest.raises(ValueError, match="alpha"):
        ks_critical(1.5, 10)


def test_tv_histogram_exact_cases_and_sampling_floor():
    a = jnp.linspace(0.0, 1.0, 1000)
    assert float(tv_histogram(a, a, 16)) == 0.0
    assert float(tv_histogram(a, a + 2.0, 16)) == pytest.approx(1.0)
    # two samples of one law: the floor ≈ √(bins/(πn)) (module docstring), well above 0
    rng = np.random.default_rng(2)
    n, bins = 4000, 32
    tv = np.asarray(tv_histogram(jnp.asarray(rng.normal(size=(200, n))), jnp.asarray(rng.normal(size=(200, n))), bins))
    assert tv.mean() == pytest.approx(np.sqrt(bins / (np.pi * n)), rel=0.35)
    with pytest.raises(ValueError, match="bins"):
        tv_histogram(a, a, 0)
