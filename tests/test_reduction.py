"""Exact dimension reduction (issue 24): with V = I the span of the start is invariant, so a solve in
the coordinates of that span keeps every inner product of the full solve."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow.dynamics.attention import attention_field, sa, usa
from sinkflow.observables import close_pair_fraction
from sinkflow.solve import SolverConfig, solve
from sinkflow.sphere import normalize, span_coordinates, uniform


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)


@pytest.mark.parametrize("d", [6, 20])  # n + 1 and 4n
@pytest.mark.parametrize("params", [sa(2.0), usa(1.0)])
def test_gram_trajectories_of_the_reduced_and_full_solves_agree(d, params):
    n = 5
    x0 = uniform(jax.random.key(d), (3, n), d, jnp.float64)
    c0 = span_coordinates(x0)
    np.testing.assert_allclose(np.asarray(c0 @ jnp.swapaxes(c0, -1, -2)), np.asarray(x0 @ jnp.swapaxes(x0, -1, -2)), atol=1e-14)
    ts = np.linspace(0.0, 6.0, 31)
    cfg = SolverConfig(method="rk4", dt=0.05)
    gram = lambda t, x, p: x @ jnp.swapaxes(x, -1, -2)  # noqa: E731
    full = solve(attention_field, x0, ts, params, config=cfg, observable=gram, project=normalize).ys
    red = solve(attention_field, c0, ts, params, config=cfg, observable=gram, project=normalize).ys
    np.testing.assert_allclose(np.asarray(red), np.asarray(full), atol=1e-12)
    # and the observable the phase diagram saves is the same number
    P = lambda x: close_pair_fraction(x, 1e-3)  # noqa: E731
    assert float(jnp.abs(P(normalize(c0)) - P(normalize(x0))).max()) == 0.0


def test_reduction_is_refused_where_it_does_not_reduce():
    with pytest.raises(ValueError, match="d > n"):
        span_coordinates(jnp.ones((4, 4)))


def test_phase_diagram_reduced_and_full_give_the_same_P(tmp_path):
    from sinkflow.studies import phase_diagram as pd

    out = {}
    for reduce in ("auto", "off"):
        cfg = pd.STUDY.config("tiny", d=(9,), beta=(1.0,), dtype="float64", reduce=reduce)
        chunk = pd.make_chunk(cfg, {"d": 9, "n": 4})
        out[reduce] = chunk({"beta": jnp.asarray([1.0])}, jax.random.split(jax.random.key(0), 1))
    np.testing.assert_allclose(np.asarray(out["auto"]["P"]), np.asarray(out["off"]["P"]), atol=1e-12)


def test_histograms_reduced_and_full_agree():
    from sinkflow.studies import histograms as hs

    out = {}
    for reduce in ("auto", "off"):
        cfg = hs.STUDY.config("tiny", d=(10,), dtype="float64", reduce=reduce, T=4.0)
        out[reduce] = hs.make_cell(cfg, {"d": 10, "n": 4})({"beta": jnp.asarray(1.0)}, jax.random.key(3))
    np.testing.assert_allclose(np.asarray(out["auto"]["m2"]), np.asarray(out["off"]["m2"]), atol=1e-12)
    np.testing.assert_allclose(np.asarray(out["auto"]["hist"]), np.asarray(out["off"]["hist"]), atol=1e-12)
