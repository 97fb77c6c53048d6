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
    col_sd, col_dev, kl, ent, beta, r2, err, conv = real_attention.analyse(jnp.asarray(A[None]), jnp.asarray(z[None]), jnp.asarray(x), 1e-10)
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
    assert len(bert.load_texts()) == 6  # the bundled corpus
