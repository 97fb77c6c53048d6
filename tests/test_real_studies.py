"""The real-model studies' own pieces: the attention analysis on matrices with known answers, and
the text input's validation (a user's file or folder)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import bert
from sinkflow.studies import real_attention, real_latents


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)


def test_attention_analysis_on_known_matrices():
    n = 6
    # a doubly stochastic A (a convex combination of permutations): column sd 0, Sinkhorn KL 0
    P = np.eye(n)[np.roll(np.arange(n), 1)]
    A = 0.5 * np.eye(n) + 0.3 * P + 0.2 * P @ P
    x = np.asarray(jax.random.normal(jax.random.key(0), (n, 4)))
    xh = x / np.linalg.norm(x, axis=-1, keepdims=True)
    z = 2.5 * xh @ xh.T + np.arange(n)[:, None] * 0.7  # logits exactly β⟨x̂_i, x̂_j⟩ + a_i with β = 2.5
    col_sd, col_dev, kl, ent, beta, r2, err, conv, _, _ = real_attention.analyse(jnp.asarray(A[None]), jnp.asarray(z[None]), jnp.asarray(x), 1e-10)
    assert float(col_sd[0]) < 1e-12 and float(kl[0]) == pytest.approx(0.0, abs=1e-9) and bool(conv[0])
    assert float(beta[0]) == pytest.approx(2.5, rel=1e-10) and float(r2[0]) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(float(ent[0]), -np.sum(A * np.log(A + 1e-300), axis=-1).mean(), rtol=1e-9)
    # a row-stochastic A far from doubly stochastic: all rows on token 0 (an "attention sink")
    B = np.full((n, n), 0.02)
    B[:, 0] = 1 - 0.02 * (n - 1)
    col_sd, col_dev, kl, *_ = real_attention.analyse(jnp.asarray(B[None]), jnp.asarray(z[None]), jnp.asarray(x), 1e-10)
    assert float(col_dev[0]) == pytest.approx(n * B[0, 0] - 1) and float(kl[0]) > 0.5


def test_text_input_is_validated(tmp_path):
    (tmp_path / "one.txt").write_text("Some plain prose. And more of it.", encoding="utf-8")
    (tmp_path / "two.txt").write_text("Another passage here.", encoding="utf-8")
    assert sorted(bert.load_texts(tmp_path)) == ["one", "two"]
    assert list(bert.load_texts(tmp_path / "one.txt")) == ["one"]
    real_latents.validate_passages(("one",), str(tmp_path))
    with pytest.raises(ValueError, match="--passage three: not in"):
        real_latents.validate_passages(("three",), str(tmp_path))
    with pytest.raises(ValueError, match="no such file"):
        real_latents.validate_passages(("one",), str(tmp_path / "missing"))
    (tmp_path / "empty.txt").write_text("   ", encoding="utf-8")
    with pytest.raises(ValueError, match="empty text"):
        bert.load_texts(tmp_path)
    assert len(bert.load_texts()) == 7  # the bundled corpus


def test_the_sa_fit_recovers_beta_and_the_layer_time_from_sa_data():
    """Layers made by SA itself (β = 2, layer l at t = 0.3l from uniform tokens): the grid fit
    finds β = 2 and Δ = 0.3 with a residual at the solver's error and W₁ = 0 in every layer."""
    from sinkflow.dynamics.attention import attention_field, sa
    from sinkflow.solve import SolverConfig, solve
    from sinkflow.sphere import normalize, uniform

    cfg = real_latents.STUDY.config("tiny", beta_grid=(1.0, 2.0, 4.0), T=3.0, n_times=61, dt=0.05, bins=20)
    x0 = uniform(jax.random.key(0), (24,), 8, jnp.float64)
    layers = solve(attention_field, x0, np.arange(7) * 0.3, sa(2.0), config=SolverConfig("rk4", dt=0.05), project=normalize).ys
    fit = real_latents.sa_fit(layers, jnp.asarray(cfg.beta_grid), np.linspace(0.0, 3.0, 61), cfg)
    assert float(fit["beta_fit"]) == 2.0 and float(fit["delta_fit"]) == pytest.approx(0.3)
    assert float(fit["rms_fit"]) < 1e-6 and float(np.max(fit["w1"])) < 1e-6
    # and a wrong grid (β = 2 absent) leaves a visible residual
    bad = real_latents.sa_fit(layers, jnp.asarray([0.5, 6.0]), np.linspace(0.0, 3.0, 61), cfg)
    assert float(bad["rms_fit"]) > 1e-3


def test_an_edited_text_changes_the_run_identity(tmp_path):
    """The configs record a digest of the passages used, so a resume after editing the text is refused."""
    f = tmp_path / "mine.txt"
    f.write_text("First version of a passage.", encoding="utf-8")
    a = real_latents.STUDY.config("tiny", text=str(f), passage=("mine",))
    f.write_text("Second version of the passage.", encoding="utf-8")
    b = real_latents.STUDY.config("tiny", text=str(f), passage=("mine",))
    assert a.text_digest and a.text_digest != b.text_digest
    assert real_attention.STUDY.config("tiny").text_digest == real_latents.STUDY.config("tiny", passage=("darwin", "austen")).text_digest  # same source
