"""random-weights — GLPR Fig. 5: clustering phase diagrams with random Q, K, V and with weights redrawn every layer.

Each cell is one (d, n, weights, β): ``realizations`` i.i.d. uniform starts, each
with its own random weights (:func:`sinkflow.attention.random_matrix`), solved
on the sphere with the SA (or USA) field. Saved: P(⟨x_i, x_j⟩ ≥ 1 − δ) over
time (the phase-diagram estimator, averaged over realizations) and, per
realization, log of the mean pair gap 1 − ⟨x_i, x_j⟩ (computed as ‖x_i − x_j‖²/2,
accurate near consensus).

Weights (``--weights``):
- ``identity``: Q = K = V = I (the phase diagram of GLPR Fig. 3, for reference).
- ``qk-gaussian``: Q, K with i.i.d. N(0, 1/d) entries, V = I.
- ``qk-goe``: Q, K independent GOE matrices (G + Gᵀ)/√(2d), V = I.
- ``v-wishart``: Q = K = I, V = GGᵀ/d (``--v-scale d``, mean eigenvalue 1) or
  GGᵀ/√d (``--v-scale sqrt-d``, the issue's normalisation). The two differ by
  the time change t ↦ √d t; GGᵀ/√d has spectral scale ~√d, which makes the d
  panels incomparable in t and stiff for fixed steps, hence the default ``d``.
- ``v-qk``, ``v-minus-qk``: Q, K Gaussian as above and V = ±QᵀK/‖QᵀK‖₂.
- ``layerwise``: Q, K Gaussian redrawn at every unit of time (a layer),
  V = I, solved layer by layer (:func:`sinkflow.solve.solve_layers`).

Cells with V = I (identity, qk-gaussian, qk-goe, layerwise) and d > n are solved in the
n-dimensional span of their start, with Q, K acting through the form UᵀKᵀQU on it
(:func:`sinkflow.attention.restrict_to_span`; exact, ``--reduce off`` to compare). The V ≠ I
kinds move tokens out of that span and are solved in R^d.

Checks
- *exponential clustering for d ≥ n, V = I, arbitrary Q, K* (GLPR Thm 6.3; the
  cone-collapse argument of Lemma 6.4 only uses that attention weights are
  positive, so it covers weights that change every layer too). Derived here
  (SA): near consensus x_j = x* + y_j, the weights are 1/n + O(β‖Q‖‖K‖|y|)
  whatever Q, K, so ẏ_i = ȳ − y_i + O(|y|²): the gap decays like e^{−2t}. For
  every realization of those cells whose mean gap passes through
  [1e-24, 1e-10] (where the O(|y|) correction is ≤ 1e-4 relative) at ≥ 5 saves,
  the fitted slope of log gap vs t is −2 ± 0.05. The check also requires that
  some realization of every such (d, weights) reaches that window, so it cannot
  pass vacuously.
- *collapse*: in those cells, P(T) ≥ 0.99 wherever every realization has
  reached the window by T (Thm 6.3: one cluster).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow import theory
from sinkflow.attention import Attention, random_matrix, restrict_to_span
from sinkflow.checks import compare, worst_case
from sinkflow.dynamics import MODELS
from sinkflow.dynamics.attention import attention_field
from sinkflow.estimators import decay_rate
from sinkflow.grid import parse_grid
from sinkflow.observables import close_pair_fraction, one_minus_cosine
from sinkflow.options import SolverOptions, SpanReductionOptions, float_dtype, time_grid
from sinkflow.plots import new_figure, save_figure
from sinkflow.solve import solve, solve_layers, with_finiteness
from sinkflow.sphere import normalize, span_basis, uniform
from sinkflow.study import Study, param, require

WEIGHTS = ("identity", "qk-gaussian", "qk-goe", "v-wishart", "v-qk", "v-minus-qk", "layerwise")
V_IDENTITY = ("identity", "qk-gaussian", "qk-goe", "layerwise")
GAP_WINDOW = (1e-24, 1e-10)


@dataclasses.dataclass(frozen=True)
class Config(SolverOptions, SpanReductionOptions):
    d: tuple = param((2, 8, 32, 128), "ambient dimension (sphere S^{d-1})", swept=True, static=True, kind=int, lo=2)
    n: tuple = param((32,), "number of tokens", swept=True, static=True, kind=int, lo=2)
    weights: tuple = param(WEIGHTS, f"random weights: {', '.join(WEIGHTS)}", swept=True, static=True, kind=str, choices=WEIGHTS)
    beta: tuple = param(parse_grid("lin:0:9:19"), "inverse temperature β ≥ 0", swept=True, kind=float, lo=0.0)
    delta: float = param(1e-3, "closeness threshold: pairs with ⟨x_i,x_j⟩ ≥ 1 − δ", kind=float, lo=0.0, hi=1.0, open="both")
    T: float = param(30.0, "final time (an integer number of layers for --weights layerwise)", kind=float, lo=0.0, open="lo")
    n_times: int = param(301, "number of save times in [0, T]", kind=int, lo=2)
    realizations: int = param(256, "i.i.d. starts (each with its own weights) per cell", kind=int, lo=1)
    model: str = param("sa", "dynamics: sa (softmax) or usa (1/n)", kind=str, choices=("sa", "usa"))
    v_scale: str = param("d", "V = GGᵀ/d (d) or GGᵀ/√d (sqrt-d) for --weights v-wishart", kind=str, choices=("d", "sqrt-d"))
    dtype: str = param("float64", "floating point precision (float64: the e^{−2t} check reads gaps down to 1e-24)", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        if "layerwise" in self.weights:
            require(float(self.T).is_integer(), f"--weights layerwise redraws weights every unit of time; --T must be an integer, got {self.T}.")
            require((self.n_times - 1) % int(self.T) == 0, f"--weights layerwise needs the same saves in every layer: (n_times − 1) must be a multiple of T, got n_times={self.n_times}, T={self.T}.")


PRESETS = {
    "tiny": {"d": (4,), "beta": (0.0, 2.0), "realizations": 3, "n": (3,), "weights": ("qk-goe", "layerwise"), "T": 20.0, "n_times": 41},
    "paper": {},
    "small": {"d": (8, 32), "beta": (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0), "realizations": 16},
}


def draw_weights(key, d: int, kind: str, v_scale: str, dtype):
    """(Q, K, V) for one realization; None means the identity."""
    kq, kk, kv = jax.random.split(key, 3)
    if kind == "identity":
        return None, None, None
    if kind in ("qk-gaussian", "v-qk", "v-minus-qk"):
        Q, K = random_matrix(kq, d, "gaussian", dtype), random_matrix(kk, d, "gaussian", dtype)
        if kind == "qk-gaussian":
            return Q, K, None
        A = Q.T @ K
        V = A / jnp.linalg.norm(A, ord=2)
        return Q, K, V if kind == "v-qk" else -V
    if kind == "qk-goe":
        return random_matrix(kq, d, "goe", dtype), random_matrix(kk, d, "goe", dtype), None
    if kind == "v-wishart":
        V = random_matrix(kv, d, "wishart", dtype)
        return None, None, V * (math.sqrt(d) if v_scale == "sqrt-d" else 1.0)
    raise ValueError(f"unknown weights {kind!r}; use one of {WEIGHTS}.")


def make_cell(cfg: Config, static: dict):
    d, n, kind = static["d"], static["n"], static["weights"]
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_times)
    solver = cfg.solver_config()
    normalization = MODELS[cfg.model]
    R = cfg.realizations
    L = int(round(cfg.T))

    def observable(t, x, a):
        return {"P": close_pair_fraction(x, cfg.delta), "log_gap": jnp.log(one_minus_cosine(x))}

    def one(key, beta):
        kx, kw = jax.random.split(key)
        x0 = uniform(kx, (n,), d, dtype)
        reduced = cfg.reduces(d, n) and kind in V_IDENTITY
        if reduced:  # the same draw in coordinates of its span, Q and K as the form UᵀKᵀQU on it: exact
            U, x0 = span_basis(x0)
        if kind == "layerwise":
            keys = jax.random.split(kw, L)
            Qs = jax.vmap(lambda k: random_matrix(jax.random.fold_in(k, 0), d, "gaussian", dtype))(keys)
            Ks = jax.vmap(lambda k: random_matrix(jax.random.fold_in(k, 1), d, "gaussian", dtype))(keys)
            params = Attention(beta=jnp.full((L,), beta), Q=Qs, K=Ks, value_scale=jnp.ones((L,), dtype), normalization=normalization)
            params = restrict_to_span(params, U) if reduced else params
            ts_layer = np.linspace(0.0, 1.0, (cfg.n_times - 1) // L + 1)
            sol = solve_layers(attention_field, x0, ts_layer, params, config=solver, observable=observable, project=normalize)
        else:
            Q, K, V = draw_weights(kw, d, kind, cfg.v_scale, dtype)
            params = Attention(beta=beta, Q=Q, K=K, V=V, normalization=normalization)
            params = restrict_to_span(params, U) if reduced else params
            sol = solve(attention_field, x0, ts, params, config=solver, observable=observable, project=normalize)
        return sol.ys, sol.final_status(), sol.num_steps

    def cell(values, key):
        beta = values["beta"].astype(dtype)
        ys, code, steps = jax.vmap(one, in_axes=(0, None))(jax.random.split(key, R), beta)
        P = ys["P"]  # (R, t)
        return {
            "P": jnp.mean(P, axis=0),
            "P_se": jnp.std(P, axis=0) / math.sqrt(max(R - 1, 1)),
            "log_gap": ys["log_gap"],  # (R, t); −inf once a realization is exactly one point
            "status": with_finiteness(jnp.max(code), P),
            "num_steps": jnp.max(steps),
        }

    return cell


def coords(cfg: Config):
    return {"t": time_grid(cfg.T, cfg.n_times), "realization": np.arange(cfg.realizations)}



def plot(ds, cfg, outdir):
    t = ds["t"].values
    betas = ds["beta"].values
    kinds = list(ds["weights"].values)
    dims = ds["d"].values
    paths = []
    for n in ds["n"].values:
        fig, axes = new_figure(len(kinds), len(dims), size=(2.8, 2.2), sharex=True, sharey=True)
        fine = np.linspace(float(np.min(betas)), float(np.max(betas)), 200)
        tstar = np.asarray(theory.transition_time(fine, float(n), cfg.delta, cfg.model))
        for r, kind in enumerate(kinds):
            for c, d in enumerate(dims):
                ax = axes[r][c]
                P = ds["P"].sel(d=d, n=n, weights=kind).values  # (beta, t)
                mesh = ax.pcolormesh(t, betas, P, vmin=0, vmax=1, cmap="viridis", shading="nearest")
                ax.plot(tstar, fine, color="w", lw=1.0, ls="--")
                ax.set_xlim(t[0], t[-1])
                if r == 0:
                    ax.set_title(f"d = {int(d)}")
                if r == len(kinds) - 1:
                    ax.set_xlabel("t")
                if c == 0:
                    ax.set_ylabel(f"{kind}\nβ", fontsize=8)
        fig.colorbar(mesh, ax=axes.ravel().tolist(), label=r"$P(\langle x_1,x_2\rangle \geq 1-\delta)$", shrink=0.6)
        fig.suptitle(f"random weights (n = {int(n)}; dashed: Γ for Q = K = V = I)")
        paths.append(save_figure(fig, outdir, f"random_weights_n{int(n)}"))
    return paths


def _slope_rows(ds, cfg):
    """(|slope + 2| − 0.05, detail) per realization in the e^{−2t} window, and the (d, n, weights) groups reached."""
    t = ds["t"].values
    rows, reached = [], {}
    for n in ds["n"].values:
        for d in ds["d"].values:
            if d < n:
                continue
            for kind in ds["weights"].values:
                if kind not in V_IDENTITY:
                    continue
                g = (int(d), int(n), str(kind))
                reached.setdefault(g, 0)
                lg = ds["log_gap"].sel(d=d, n=n, weights=kind).values  # (beta, R, t)
                for i, b in enumerate(ds["beta"].values):
                    for r in range(lg.shape[1]):
                        fit = decay_rate(t, np.exp(lg[i, r]), GAP_WINDOW, drift=False)
                        if not math.isfinite(fit.rate):
                            continue
                        slope = -fit.rate
                        reached[g] += 1
                        rows.append((abs(slope + 2.0) - 0.05, f"d={g[0]} n={g[1]} {g[2]} β={b:g} r={r}: slope {slope:.4f} over {fit.points} saves"))
    return rows, reached


def checks(ds, cfg):
    out = []
    if cfg.model != "sa":
        return out
    rows, reached = _slope_rows(ds, cfg)
    if reached:
        worst, detail = worst_case(rows)
        empty = sorted(g for g, k in reached.items() if k == 0)
        out.append(compare("e^{−2t} clustering, d ≥ n, V = I, any Q, K", "GLPR Thm 6.3 + derived local rate", 0.0, worst if rows else math.inf, 0.0, "every realization in the gap window [1e-24, 1e-10]: |fitted slope + 2| ≤ 0.05", mode="le", detail=f"{len(rows)} realizations; worst {detail}"))
        out.append(compare("every (d ≥ n, V = I) weight kind reaches the window", "non-vacuity", 0, len(empty), 0, "some realization of each group gets to gap ≤ 1e-10 by T", mode="le", detail=f"missing: {empty}" if empty else f"groups: {sorted(reached)}"))
        lo = math.log(GAP_WINDOW[1])
        worst_p, where = math.inf, ""
        for d, n, kind in reached:
            lg = ds["log_gap"].sel(d=d, n=n, weights=kind).values
            done = np.all(np.nanmin(np.where(np.isfinite(lg), lg, -np.inf), axis=-1) <= lo, axis=-1)  # (beta,)
            for i in np.flatnonzero(done):
                p = float(ds["P"].sel(d=d, n=n, weights=kind).values[i, -1])
                if p < worst_p:
                    worst_p, where = p, f"d={d} n={n} {kind} β={ds['beta'].values[i]:g}"
        if math.isfinite(worst_p):
            out.append(compare("collapse where every realization reached the window", "GLPR Thm 6.3", 1.0, worst_p, 0.01, "P(T) ≥ 0.99", mode="ge", detail=f"worst {where}"))
    return out


def cell_bytes(cfg: Config, static: dict) -> int:
    """Peak working memory of a cell: its realizations vmapped, each with its n×n logits and weights,
    the RK stages of its n×d state and its d×d weights (per layer for ``layerwise``)."""
    n, d, kind = int(static["n"]), int(static["d"]), static["weights"]
    layers = int(round(cfg.T)) if kind == "layerwise" else 1
    return cfg.realizations * (12 * (n * n + n * d) + 3 * layers * d * d) * np.dtype(cfg.dtype).itemsize

STUDY = Study(
    name="random-weights",
    title="phase diagrams with random and layer-wise weights (GLPR Fig. 5)",
    source="GLPR Fig. 5, Thm 6.3, Lemma 6.4",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    cell_bytes=cell_bytes,
    output_dims={"P": ("t",), "P_se": ("t",), "log_gap": ("realization", "t"), "status": (), "num_steps": ()},
    output_attrs={
        "P": {"long_name": "fraction of token pairs closer than δ, mean over realizations (GLPR's clustering probability)", "units": "1"},
        "log_gap": {"long_name": "log of the mean over pairs i ≠ j of 1 − ⟨x_i, x_j⟩ (−inf once a realization is one point)", "units": "1"},
        "t": {"long_name": "time (continuous depth)", "units": "1"},
    },
    coords=coords,
    plot=plot,
    checks=checks,
)
