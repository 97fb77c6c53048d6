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


def test_random_query_key_forms_restrict_exactly_to_the_span():
    """⟨Qx_i, Kx_j⟩ = ⟨A c_i, c_j⟩ with A = UᵀKᵀQU: the reduced solve keeps the Gram trajectory for
    non-symmetric Q, K (a transposed form fails this), per-layer stacks included; V ≠ I is refused."""
    from sinkflow.attention import Attention, random_matrix, restrict_to_span
    from sinkflow.solve import solve_layers
    from sinkflow.sphere import span_basis

    n, d = 4, 11
    x0 = uniform(jax.random.key(1), (n,), d, jnp.float64)
    U, c0 = span_basis(x0)
    np.testing.assert_allclose(np.asarray(c0 @ U.T), np.asarray(x0), atol=1e-14)
    ks = jax.random.split(jax.random.key(2), 4)
    Q, K = (random_matrix(k, d, "gaussian", jnp.float64) for k in ks[:2])
    gram = lambda t, x, p: x @ x.T  # noqa: E731
    cfg = SolverConfig(method="rk4", dt=0.05)
    ts = np.linspace(0.0, 3.0, 7)
    p = Attention(beta=jnp.asarray(2.0), Q=Q, K=K)
    full = solve(attention_field, x0, ts, p, config=cfg, observable=gram, project=normalize).ys
    red = solve(attention_field, c0, ts, restrict_to_span(p, U), config=cfg, observable=gram, project=normalize).ys
    np.testing.assert_allclose(np.asarray(red), np.asarray(full), atol=1e-12)
    wrong = Attention(beta=jnp.asarray(2.0), Q=U.T @ Q.T @ K @ U)  # the transposed form
    bad = solve(attention_field, c0, ts, wrong, config=cfg, observable=gram, project=normalize).ys
    assert float(jnp.abs(bad - full).max()) > 1e-3
    L = 3
    Qs = jax.vmap(lambda k: random_matrix(k, d, "gaussian", jnp.float64))(jax.random.split(ks[2], L))
    Ks = jax.vmap(lambda k: random_matrix(k, d, "gaussian", jnp.float64))(jax.random.split(ks[3], L))
    pl = Attention(beta=jnp.full((L,), 1.5), Q=Qs, K=Ks, value_scale=jnp.ones((L,)))
    tl = np.linspace(0.0, 1.0, 5)
    full = solve_layers(attention_field, x0, tl, pl, config=cfg, observable=gram, project=normalize).ys
    red = solve_layers(attention_field, c0, tl, restrict_to_span(pl, U), config=cfg, observable=gram, project=normalize).ys
    np.testing.assert_allclose(np.asarray(red), np.asarray(full), atol=1e-12)
    with pytest.raises(ValueError, match="V = I"):
        restrict_to_span(Attention(beta=1.0, V=Q), U)


REDUCED_STUDIES = [  # (study, overrides, static of one d > n cell, swept values)
    ("random-weights", {"weights": ("qk-goe",), "T": 3.0, "n_times": 7}, {"d": 9, "n": 3, "weights": "qk-goe"}, {"beta": 1.0}),
    ("random-weights", {"weights": ("layerwise",), "T": 2.0, "n_times": 5}, {"d": 9, "n": 3, "weights": "layerwise"}, {"beta": 1.0}),
    ("causal-leader", {"T": 4.0, "n_times": 5}, {"d": 9, "n": 4, "weights": "qk-gaussian"}, {"beta": 1.0}),
    ("orthogonal-start", {"d": 9, "T": 2.0}, {"n": 3, "model": "sa"}, {"beta": 1.0}),
    ("energy", {"d": 9, "T": 2.0}, {"model": "usa-repulsive"}, {"beta": 1.0}),
    ("sinkformer-phase-diagram", {"T": 1.0, "n_times": 3, "realizations": 2}, {"d": 9, "n": 6, "model": "sinkformer"}, {"beta": 2.0}),
]


@pytest.mark.parametrize("name,over,static,values", REDUCED_STUDIES, ids=[f"{r[0]}-{r[2].get('weights', r[2].get('model'))}" for r in REDUCED_STUDIES])
def test_every_v_identity_study_gives_the_same_outputs_reduced_and_full(name, over, static, values, monkeypatch):
    import importlib

    from sinkflow.studies import module_name

    mod = importlib.import_module(f"sinkflow.studies.{module_name(name)}")
    calls = []
    for fn in ("span_basis", "span_coordinates"):  # the reduced run must really solve in the span
        if hasattr(mod, fn):
            real = getattr(mod, fn)
            monkeypatch.setattr(mod, fn, lambda x, _real=real: calls.append(x.shape) or _real(x))
    out = {}
    for reduce in ("auto", "off"):
        calls.clear()
        cfg = mod.STUDY.config("tiny", dtype="float64", reduce=reduce, **over)
        assert (cfg.solver_provenance()["span_reduction"] == "off") == (reduce == "off")
        cell = mod.make_cell(cfg, static)
        out[reduce] = cell({k: jnp.asarray(v, jnp.float64) for k, v in values.items()}, jax.random.key(5))
        assert bool(calls) == (reduce == "auto"), (reduce, calls)
    for k in out["off"]:
        a, b = np.asarray(out["auto"][k], float), np.asarray(out["off"][k], float)
        if k == "num_steps":
            continue
        np.testing.assert_allclose(a, b, atol=1e-10, rtol=1e-10, err_msg=f"{name}: output {k}")
