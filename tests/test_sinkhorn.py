"""Sinkhorn attention: marginals, the k = 1 softmax identity, backends agree, gradients, masks, no recompile."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import attention as A
from sinkflow.dynamics.attention import attention_field, sinkformer
from sinkflow.sinkhorn import Sinkhorn, marginal_error, sink_functional, sinkhorn
from sinkflow.sphere import uniform


def _sim(n=9, d=4, seed=0, batch=()):
    x = uniform(jax.random.key(seed), (*batch, n), d, jnp.float64)
    return 3.0 * jnp.einsum("...id,...jd->...ij", x, x)


@pytest.mark.parametrize("backend", ["native", "ott"])
def test_balanced_is_doubly_stochastic_to_threshold(backend):
    c = _sim(batch=(3,))
    W, info = sinkhorn(c, Sinkhorn(epsilon=0.8, threshold=1e-10, backend=backend))
    np.testing.assert_allclose(W.sum(-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(W.sum(-2), 1.0, atol=1e-9)
    assert bool(jnp.all(info.converged)) and float(jnp.max(info.error)) <= 1e-10 * 1.01
    np.testing.assert_allclose(info.error, marginal_error(W))
    assert info.iterations.shape == (3,)


def test_fixed_k1_is_softmax_and_k2_column_exact():
    c = _sim()
    W1, _ = sinkhorn(c, Sinkhorn(epsilon=0.5, mode="fixed", iterations=1))
    np.testing.assert_allclose(W1, jax.nn.softmax(c / 0.5, axis=-1), atol=1e-15)
    W2, _ = sinkhorn(c, Sinkhorn(epsilon=0.5, mode="fixed", iterations=2))
    np.testing.assert_allclose(W2.sum(-2), 1.0, atol=1e-13)
    # many fixed iterations reach the balanced solution
    Wk, info = sinkhorn(c, Sinkhorn(epsilon=0.5, mode="fixed", iterations=4001))
    Wb, ib = sinkhorn(c, Sinkhorn(epsilon=0.5, threshold=1e-13, iterations=20000))
    assert bool(ib.converged)
    np.testing.assert_allclose(Wk, Wb, atol=1e-11)
    assert int(info.iterations) == 4001


def test_backends_agree_balanced_and_unbalanced():
    c = _sim(n=11, seed=3)
    for kw in ({}, {"mode": "unbalanced", "tau": 0.5}):
        Wn, inf_n = sinkhorn(c, Sinkhorn(epsilon=0.7, threshold=1e-12, **kw))
        Wo, inf_o = sinkhorn(c, Sinkhorn(epsilon=0.7, threshold=1e-12, backend="ott", **kw))
        np.testing.assert_allclose(Wn, Wo, atol=1e-10)
        assert bool(inf_n.converged) and bool(inf_o.converged)


def test_unbalanced_rows_exact_and_tau_interpolates():
    c = _sim(n=10, seed=5)
    soft = jax.nn.softmax(c / 0.7, axis=-1)
    Wb, _ = sinkhorn(c, Sinkhorn(epsilon=0.7, threshold=1e-12))
    errs = []
    for tau in (1e-4, 0.3, 0.7, 1.0):
        W, _ = sinkhorn(c, Sinkhorn(epsilon=0.7, mode="unbalanced", tau=tau, threshold=1e-12))
        np.testing.assert_allclose(W.sum(-1), 1.0, atol=1e-12)
        errs.append(float(jnp.sum(jnp.abs(W.sum(-2) - 1.0))))
        if tau == 1e-4:
            np.testing.assert_allclose(W, soft, atol=1e-3)
        if tau == 1.0:
            np.testing.assert_allclose(W, Wb, atol=1e-10)
    assert errs == sorted(errs, reverse=True)  # column marginal tightens as τ → 1


@pytest.mark.parametrize("spec", [
    Sinkhorn(epsilon=0.6, threshold=1e-13),
    Sinkhorn(epsilon=0.6, threshold=1e-13, backend="ott"),
    Sinkhorn(epsilon=0.6, mode="fixed", iterations=5),
    Sinkhorn(epsilon=0.6, mode="unbalanced", tau=0.6, threshold=1e-13),
])
def test_gradient_matches_finite_differences(spec):
    c = _sim(n=7, seed=2)
    probe = jnp.sin(jnp.arange(49.0).reshape(7, 7))

    def loss(c):
        return jnp.sum(sinkhorn(c, spec)[0] * probe)

    loss = jax.jit(loss)
    g = jax.jit(jax.grad(loss))(c)
    rng = np.random.default_rng(0)
    for _ in range(3):
        E = jnp.asarray(rng.normal(size=(7, 7)))
        h = 1e-6
        fd = (loss(c + h * E) - loss(c - h * E)) / (2 * h)
        np.testing.assert_allclose(jnp.sum(g * E), fd, rtol=1e-6, atol=1e-8)


def test_gradient_wrt_epsilon():
    c = _sim(n=6, seed=4)
    probe = jnp.cos(jnp.arange(36.0).reshape(6, 6))
    f = jax.jit(lambda e: jnp.sum(sinkhorn(c, Sinkhorn(epsilon=e, threshold=1e-13))[0] * probe))
    g = jax.jit(jax.grad(f))(0.9)
    fd = (f(0.9 + 1e-6) - f(0.9 - 1e-6)) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_masked_entries_exactly_zero_and_balanced_triangular_collapses_to_identity():
    n = 6
    c = _sim(n=n, seed=1)
    mask = jnp.tril(jnp.ones((n, n), bool))
    W, info = sinkhorn(c, Sinkhorn(epsilon=1.0, mode="fixed", iterations=2000), mask=mask)
    assert bool(jnp.all(W[~mask] == 0.0))
    # a doubly stochastic matrix on a triangular pattern is I: off-diagonal mass → 0 like 1/k
    off = lambda k: float(jnp.sum(sinkhorn(c, Sinkhorn(epsilon=1.0, mode="fixed", iterations=k), mask=mask)[0] * (1 - jnp.eye(n))))  # noqa: E731
    o1, o2 = off(201), off(2001)
    assert o2 < o1 and 5.0 < o1 / o2 < 20.0  # ~10× for 10× iterations (1/k)
    assert float(jnp.sum(W * (1 - jnp.eye(n)))) < 0.05


def test_epsilon_sweep_compiles_once():
    c = _sim(n=8)
    traces = []

    @jax.jit
    def f(e):
        traces.append(1)
        return sinkhorn(c, Sinkhorn(epsilon=e, threshold=1e-9))[0]

    for e in (0.3, 0.5, 1.7):
        f(jnp.asarray(e))
    assert len(traces) == 1
    batched = jax.jit(jax.vmap(lambda e: sinkhorn(c, Sinkhorn(epsilon=e, threshold=1e-9, iterations=5000))[1].converged))
    assert bool(jnp.all(batched(jnp.array([0.4, 1.0, 4.0]))))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="mode"):
        Sinkhorn(mode="doubly")
    with pytest.raises(ValueError, match="tau"):
        Sinkhorn(mode="unbalanced", tau=1.5)
    with pytest.raises(ValueError, match="balanced"):
        Sinkhorn(tau=0.5)
    with pytest.raises(ValueError, match="epsilon"):
        Sinkhorn(epsilon=0.0)
    with pytest.raises(ValueError, match="native"):
        Sinkhorn(mode="fixed", backend="ott")
    with pytest.raises(ValueError, match="sinkhorn="):
        A.Attention(beta=1.0, normalization="sinkhorn")
    with pytest.raises(ValueError, match="square"):
        sinkhorn(jnp.zeros((3, 4)), Sinkhorn())


def test_sinkformer_field_tangent_and_attention_matrix_doubly_stochastic():
    x = uniform(jax.random.key(9), (2, 12), 5, jnp.float64)
    p = sinkformer(2.0, epsilon=1.0, threshold=1e-12)
    W = A.attention_matrix(x, p)
    np.testing.assert_allclose(W.sum(-2), 1.0, atol=1e-10)
    v = attention_field(0.0, x, p)
    np.testing.assert_allclose(jnp.sum(v * x, -1), 0.0, atol=1e-13)
    # β/ε is what matters
    q = sinkformer(1.0, epsilon=0.5, threshold=1e-12)
    np.testing.assert_allclose(attention_field(0.0, x, q), v, atol=1e-10)


def test_sink_functional_closed_form_for_constant_similarity():
    # c ≡ 0: K⁰ = 1, W = 1/n, F = −½ Σ_ij (1/n²)... = −(1/2n) Σ_ij (1/n) log 1 = 0
    n = 5
    W, _ = sinkhorn(jnp.zeros((n, n)), Sinkhorn(threshold=1e-12))
    np.testing.assert_allclose(sink_functional(jnp.zeros((n, n)), W, 1.0), 0.0, atol=1e-14)
    # general case equals −½ ∫ k^∞ log(k^∞/k⁰) d(μ⊗μ) written out by hand
    c = _sim(n=n, seed=8)
    W, _ = sinkhorn(c, Sinkhorn(epsilon=0.5, threshold=1e-12))
    kinf = n * np.asarray(W)
    k0 = np.exp(np.asarray(c) / 0.5)
    ref = -0.5 * np.mean(kinf * np.log(kinf / k0))
    np.testing.assert_allclose(sink_functional(c, W, 0.5), ref, rtol=1e-12)


def test_iterate_errors_match_fixed_iterations_and_obey_birkhoff_rate():
    from sinkflow.sinkhorn import hilbert_contraction, iterate_errors

    c = _sim(n=8, seed=6)
    rows, cols = iterate_errors(c, 0.8, 40)
    for k in (1, 2, 7, 40):
        W, _ = sinkhorn(c, Sinkhorn(epsilon=0.8, mode="fixed", iterations=k))
        np.testing.assert_allclose(
            [rows[k - 1], cols[k - 1]], [jnp.sum(jnp.abs(W.sum(-1) - 1)) / 8, jnp.sum(jnp.abs(W.sum(-2) - 1)) / 8], atol=1e-13
        )
    assert float(rows[0]) < 1e-14 and float(cols[1]) < 1e-14
    # column error after row normalisations contracts at least by Birkhoff's tanh(Δ/4)² per pair
    lam = float(hilbert_contraction(c, 0.8))
    odd = np.asarray(cols[0::2])
    rate = (odd[15] / odd[5]) ** (1 / 10)  # asymptotic linear rate per pair (any norm)
    assert 0 < rate <= lam**2, (rate, lam**2)


def test_symmetric_loop_matches_alternation_and_is_much_faster_on_a_gaussian_cloud():
    from sinkflow.dynamics.heat import sq_distances

    x = jax.random.normal(jax.random.key(3), (120, 2), jnp.float64)
    c = -sq_distances(x)
    Wa, ia = sinkhorn(c, Sinkhorn(epsilon=0.5, threshold=1e-11, iterations=50000))
    Ws, is_ = sinkhorn(c, Sinkhorn(epsilon=0.5, threshold=1e-11, iterations=50000, symmetric=True))
    assert bool(ia.converged) and bool(is_.converged)
    np.testing.assert_allclose(Ws, Wa, atol=1e-9)  # the doubly stochastic scaling is unique
    np.testing.assert_allclose(Ws.sum(-1), 1.0, atol=1e-14)  # ends on a row update
    assert int(is_.iterations) * 5 < int(ia.iterations)  # measured 26 vs ~300
    # at small ε alternation stalls (slow mixing of the Gaussian kernel); the averaged loop does not
    _, ia = sinkhorn(c, Sinkhorn(epsilon=0.1, threshold=1e-9, iterations=2000))
    _, is_ = sinkhorn(c, Sinkhorn(epsilon=0.1, threshold=1e-9, iterations=2000, symmetric=True))
    assert not bool(ia.converged) and bool(is_.converged) and int(is_.iterations) < 100
    # a non-symmetric kernel is reported as not converged, never silently accepted
    cn = c + 0.5 * jax.random.normal(jax.random.key(4), c.shape, jnp.float64)
    _, bad = sinkhorn(cn, Sinkhorn(epsilon=0.5, threshold=1e-9, iterations=500, symmetric=True))
    assert not bool(bad.converged)
    with pytest.raises(ValueError, match="symmetric"):
        Sinkhorn(mode="unbalanced", tau=0.5, symmetric=True)
    with pytest.raises(ValueError, match="symmetric"):
        Sinkhorn(backend="ott", symmetric=True)


def test_pair_iterates_match_fixed_mode_and_collapse_to_identity_on_causal_mask():
    """Iterate k of pair_iterates is the fixed-mode Sinkhorn with 2k − 1 normalisations; on the causal
    mask the balanced iterates lose their off-diagonal mass (the identity collapse, MATH.md §3)."""
    from sinkflow import graphs as G
    from sinkflow.sinkhorn import pair_iterates

    n = 6
    x = jax.random.normal(jax.random.key(2), (n, 3), jnp.float64)
    c = x @ x.T
    mask = jnp.asarray(G.causal_mask(n))
    Ws = pair_iterates(c, 0.7, 40, lambda W: W, mask)
    for k in (1, 2, 7, 40):
        Wf, _ = sinkhorn(c, Sinkhorn(epsilon=0.7, mode="fixed", iterations=2 * k - 1), mask)
        np.testing.assert_allclose(np.asarray(Ws[k - 1]), np.asarray(Wf), atol=1e-13)
    assert np.all(np.asarray(Ws)[:, ~np.asarray(mask)] == 0.0)
    off = pair_iterates(c, 0.7, 20000, lambda W: (jnp.sum(W) - jnp.trace(W)) / n, mask)
    off = np.asarray(off)
    assert np.all(np.diff(off) <= 1e-15) and off[-1] < 1e-3


def test_warm_started_sinkhorn_meets_the_same_threshold_in_fewer_iterations():
    """A potential from a nearby kernel (one RK step of the flow earlier) as the start: the plan is the
    same to the threshold and the loop is shorter, most on clustered tokens where alternation crawls."""
    import jax.numpy as jnp

    from sinkflow.attention import logits
    from sinkflow.dynamics.attention import attention_field_unnormalized, sinkformer, sinkformer_warm
    from sinkflow.solve import SolverConfig, solve
    from sinkflow.sphere import normalize, uniform

    x0 = uniform(jax.random.key(0), (4, 16), 8, jnp.float64)
    p = sinkformer(jnp.asarray(6.0), epsilon=1.0, threshold=1e-6, iterations=20000)
    xs = solve(attention_field_unnormalized, x0, np.array([0.0, 4.0, 4.1]), p, config=SolverConfig(method="rk4", dt=0.1), project=normalize).ys
    W_prev, prev = sinkhorn(logits(xs[1], p), p.sinkhorn)
    W_cold, cold = sinkhorn(logits(xs[2], p), p.sinkhorn)
    W_warm, warm = sinkhorn(logits(xs[2], p), p.sinkhorn, init=prev.potential)
    assert bool(jnp.all(warm.converged)) and float(warm.error.max()) <= 1e-6
    assert float(jnp.abs(W_warm - W_cold).max()) < 1e-4
    assert float(warm.iterations.mean()) < 0.75 * float(cold.iterations.mean())  # measured 0.51 here
    # the warm flow: same trajectory as the cold one to the threshold's effect, state (x, v) on the sphere
    ts = np.linspace(0.0, 2.0, 3)
    w = sinkformer_warm(p)
    cold_x = solve(attention_field_unnormalized, x0[:2], ts, p, config=SolverConfig(method="rk4", dt=0.1), project=normalize).ys
    warm_x = solve(w.field, w.start(x0[:2]), ts, p, config=SolverConfig(method="rk4", dt=0.1), project=w.project, observable=lambda t, y, a: y[0]).ys
    assert float(jnp.abs(warm_x - cold_x).max()) < 1e-4
    np.testing.assert_allclose(np.asarray(jnp.linalg.norm(warm_x, axis=-1)), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="warm-starts"):
        sinkhorn(logits(xs[2], p), Sinkhorn(epsilon=1.0, mode="fixed", iterations=3), init=prev.potential)
    with pytest.raises(ValueError, match="sinkformer_warm"):
        sinkformer_warm(sinkformer(jnp.asarray(1.0), mode="fixed", iterations=3))
