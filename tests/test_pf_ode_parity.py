"""pf-ode-parity: its checks detect a wrong probability-flow field, and its weak-slope estimator
recovers known orders."""

import json

import numpy as np
import pytest

from sinkflow import theory
from sinkflow.cli import main
from sinkflow.studies import pf_ode_parity as study


def test_a_wrong_score_fails_the_parity_checks(tmp_path, monkeypatch):
    """The PF-ODE with the score of the wrong variance (ν doubled inside it) moves the ensemble to
    the wrong law: the one-sample KS against the Fokker–Planck marginal and the flow-map check
    must fail. (The two-sample ODE–SDE test has √2 less power and, at this tiny size, does not
    see a variance error of this size at T = 1: measured KS 0.046 against 0.068.)"""
    right = study._flow_moments
    monkeypatch.setattr(study, "_flow_moments", lambda theta, nu, s0, m0, t: right(theta, 2.0 * nu, s0, m0, t))
    out = tmp_path / "wrong"
    main(["run", "pf-ode-parity", "--preset", "tiny", "--spread", "2", "--n", "1500", "--out", str(out), "--no-plot"])
    checks = {c["name"]: c["passed"] for c in json.loads((out / "checks.json").read_text())}
    assert checks["all cells solved"]
    assert not checks["each ensemble has the exact Gaussian marginal (KS)"]
    assert not checks["PF-ODE solve equals the closed-form Gaussian flow map"]


def test_weak_slope_recovers_the_order_of_a_synthetic_bias():
    """φ_K = c·h_K^p + common noise per path (the coupling) + small independent noise: the fitted
    slope is p and its bootstrap interval covers it."""
    rng = np.random.default_rng(0)
    hs = 1.0 / np.array([8, 16, 32, 64, 128])
    for p in (1.0, 2.0):
        common = rng.normal(size=5000)
        phi = 0.7 * hs[:, None] ** p + common[None, :] + 1e-2 * hs[:, None] ** p * rng.normal(size=(5, 5000))
        slope, lo, hi = study.weak_slope(phi, hs, bootstrap=300)
        assert slope == pytest.approx(p, abs=0.03) and lo <= p <= hi


def test_euler_maruyama_weak_error_has_the_chain_slope():
    """The exact AR(1) chain used by the weak-error check has slope → 1 (so the check's 0.2 band is about the scheme)."""
    Ks = np.array([16, 32, 64, 128, 256])
    E = np.array([theory.em_ou_moments(1.0, 0.1, 1.0, 0.5, 2.0 / K, K) for K in Ks])
    second = E[:, 0] ** 2 + E[:, 1]
    D = second[:-1] - second[1:]
    slope = np.polyfit(np.log(2.0 / Ks[:-1]), np.log(np.abs(D)), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.06)
