"""sinkformer-heat's mean-field regime: the kernel-neighbour count and the checks it gates."""

import json

import numpy as np
import pytest
import xarray as xr

from sinkflow.studies import sinkformer_heat as S


@pytest.mark.parametrize("dim,eps,width", [(1, 0.3, 1.0), (2, 0.1, 1.0), (3, 0.4, 4.0)])
def test_kernel_neighbours_is_the_mean_kernel_mass(dim, eps, width):
    """n·E exp(−‖x − y‖²/(wε)) over x, y i.i.d. N(0, s₀I) by Monte Carlo (2·10⁶ pairs: relative se < 0.3%)."""
    rng = np.random.default_rng(0)
    s0 = 1.5
    z = rng.normal(scale=np.sqrt(s0), size=(2, 2_000_000, dim))
    mc = np.exp(-np.sum((z[0] - z[1]) ** 2, axis=-1) / (width * eps))
    m = S.kernel_neighbours(1000, dim, eps, width, s0)
    assert m == pytest.approx(1000 * mc.mean(), rel=4 * mc.std() / mc.mean() / np.sqrt(mc.size))


def _dataset(bias_unresolved: float, bias_resolved: float = 0.0):
    """Final-time softmax data on the ODE with a 1/n bias, n ∈ {500, 1000}, dim ∈ {1, 3}, ε ∈ {0.05, 0.8}:
    at n = 1000, (dim 3, ε 0.05) has m = 1.4 kernel neighbours, the others ≥ 68."""
    cfg = {"T": 2.0, "width": 1.0, "s0": 1.0}
    dims, epss, ns = [1, 3], [0.05, 0.8], [500, 1000]
    t = np.array([0.0, 2.0])
    shape = (len(dims), len(epss), len(ns), len(t))
    var, gain = np.empty(shape), np.empty(shape)
    ds0 = xr.Dataset(attrs={"config": json.dumps(cfg)}, coords={"t": t})
    for i, d in enumerate(dims):
        for j, e in enumerate(epss):
            s = S._ode(ds0, S.Config(**cfg), "softmax", e)
            for k, n in enumerate(ns):
                off = 0.3 / n + (bias_unresolved if (d, e) == (3, 0.05) else bias_resolved if (d, e) == (1, 0.8) else 0.0)
                var[i, j, k] = s + np.array([0.0, off])
                gain[i, j, k] = 0.5 * d * np.log(var[i, j, k] / var[i, j, k, 0])
    dimsn = ("normalizer", "dim", "epsilon", "n", "t")
    se = np.full((1, *shape), 1e-5)
    ent = np.cumsum(np.ones((1, *shape)), axis=-1)
    return xr.Dataset(
        {"var": (dimsn, var[None]), "var_se": (dimsn, se), "entropy": (dimsn, ent), "entropy_se": (dimsn, se),
         "entropy_gain": (dimsn, gain[None]), "entropy_gain_se": (dimsn, se), "status": (("normalizer", "dim", "epsilon", "n"), np.zeros((1, *shape[:3]), int))},
        coords={"normalizer": ["softmax"], "dim": dims, "epsilon": epss, "n": ns, "t": t}, attrs={"config": json.dumps(cfg)})


def _verdicts(ds):
    return {c.name: c for c in S.STUDY.run_checks(ds)}


def test_unresolved_cells_are_listed_not_checked_and_wrong_resolved_data_still_fails():
    good = _verdicts(_dataset(bias_unresolved=-0.8))  # far off, where the particles do not resolve the kernel
    var = good["variance follows ds/dt = (2/ε)(1 − λ)s"]
    assert var.passed and "dim=3 ε=0.05 (m=1.4)" in var.detail
    assert good["entropy gain = Gaussian entropy of the ODE variance"].passed
    bad = _verdicts(_dataset(bias_unresolved=0.0, bias_resolved=0.05))  # a resolved cell off by 0.05
    assert not bad["variance follows ds/dt = (2/ε)(1 − λ)s"].passed
    assert not bad["entropy gain = Gaussian entropy of the ODE variance"].passed
