"""kernel-normalizations — K⁰ / K¹ / K^∞: the unnormalised kernel, softmax and Sinkhorn on one configuration (SINK, MATH.md §2).

Each cell is one (n, β, ε): ``realizations`` uniform configurations on S^{d−1};
for the first one the three matrices are saved (K⁰ = exp(β⟨x_i,x_j⟩/ε)/n, the
USA weights; K¹ its row softmax; K^∞ its Sinkhorn limit), and for all of them
the row and column L1 marginal errors of the fixed-iteration iterates
k = 1..``K`` (odd k after a row normalisation, even after a column one), their
median over realizations, Birkhoff's contraction ratio tanh(Δ/4) of the kernel
and SINK's functional F(μ).

Checks
- *K¹ is softmax*: rows of K¹ sum to 1 to 1e-12 and K¹ equals softmax(β⟨x,x⟩/ε).
- *K^∞ doubly stochastic*: L1 marginal error ≤ the Sinkhorn threshold.
- *Birkhoff rate*: the asymptotic linear rate of the column error per row+column
  pair, fitted on the last half of the iterates above 1e-13, is ≤ tanh(Δ/4)²
  (Franklin & Lorenz 1989), for every realization.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow.checks import compare
from sinkflow.estimators import decay_rate
from sinkflow.options import SinkhornOptions, float_dtype
from sinkflow.plots import new_figure, save_figure
from sinkflow.sinkhorn import (
    hilbert_contraction,
    iterate_errors,
    sink_functional,
    sinkhorn,
)
from sinkflow.sphere import uniform
from sinkflow.study import Study, param, require


@dataclasses.dataclass(frozen=True)
class Config(SinkhornOptions):
    n: tuple = param((16,), "number of tokens", swept=True, static=True, kind=int, lo=2)
    d: int = param(8, "ambient dimension", kind=int, lo=2)
    beta: tuple = param((1.0, 4.0), "inverse temperature β ≥ 0", swept=True, kind=float, lo=0.0)
    epsilon: tuple = param((1.0,), "Sinkhorn ε: kernel exp(β⟨x_i,x_j⟩/ε)", swept=True, kind=float, lo=0.0, open="lo")
    K: int = param(200, "fixed-iteration iterates traced (k = 1..K)", kind=int, lo=2, hi=100_000)
    realizations: int = param(16, "random configurations per cell", kind=int, lo=1)
    threshold: float = param(1e-12, "Sinkhorn stopping threshold on the L1 marginal error", kind=float)
    iterations: int = param(20000, "max Sinkhorn normalisations for K^∞", kind=int)
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        require(self.sinkhorn_mode == "balanced", "kernel-normalizations compares K⁰, K¹ and the balanced K^∞: use --sinkhorn-mode balanced.")


PRESETS = {
    "tiny": {"n": (4, 6), "beta": (1.0, 3.0), "K": 60, "realizations": 4},
    "paper": {"n": (16, 64), "beta": (0.5, 1.0, 2.0, 4.0, 8.0), "realizations": 64},
    "small": {},
}


def make_cell(cfg: Config, static: dict):
    n = static["n"]
    dtype = float_dtype(cfg)

    def one(x, beta, eps):
        c = beta * x @ x.T
        Kinf, info = sinkhorn(c, cfg.sinkhorn_spec(eps))  # bounded kernel on the sphere: alternation is fast
        rows, cols = iterate_errors(c, eps, cfg.K)
        return c, Kinf, info, rows, cols, hilbert_contraction(c, eps), sink_functional(c, Kinf, eps)

    def cell(values, key):
        beta, eps = values["beta"].astype(dtype), values["epsilon"].astype(dtype)
        x = uniform(key, (cfg.realizations, n), cfg.d, dtype)
        c, Kinf, info, rows, cols, lam, F = jax.vmap(lambda y: one(y, beta, eps))(x)
        K0 = jnp.exp(c[0] / eps) / n
        K1 = jax.nn.softmax(c[0] / eps, axis=-1)
        ok = jnp.all(jnp.isfinite(rows)) & jnp.all(jnp.isfinite(Kinf))
        pad = max(cfg.n) - n  # one (i, j) axis pair for every n: NaN beyond n×n

        def padded(m):
            return jnp.pad(m, ((0, pad), (0, pad)), constant_values=jnp.nan)

        return {
            "K0": padded(K0),
            "K1": padded(K1),
            "Kinf": padded(Kinf[0]),
            "row_error": jnp.median(rows, axis=0),
            "col_error": jnp.median(cols, axis=0),
            "col_error_all": cols,
            "contraction": lam,
            "sink_F": F,
            "kinf_error": info.error,
            "kinf_converged": info.converged,
            "status": jnp.where(ok & jnp.all(info.converged), 0, jnp.where(ok, 1, 3)).astype(jnp.int32),
        }

    return cell


def coords(cfg: Config):
    return {"k": np.arange(1, cfg.K + 1), "i": np.arange(max(cfg.n)), "j": np.arange(max(cfg.n)), "realization": np.arange(cfg.realizations)}


def _rate(err: np.ndarray) -> float:
    """Asymptotic linear rate per row+column pair of the column error after row normalisations."""
    odd = err[0::2]
    good = np.flatnonzero(odd > 1e-13)
    if good.size < 4:
        return float("nan")
    half = np.zeros(odd.shape, bool)
    half[good[good.size // 2 :]] = True
    return float(np.exp(-decay_rate(np.arange(odd.size), odd, (0.0, np.inf), keep=half, min_points=2, drift=False).rate))


def plot(ds, cfg, outdir):
    paths = []
    for n in ds["n"].values:
        for eps in ds["epsilon"].values:
            betas = ds["beta"].values
            fig, axes = new_figure(len(betas), 4, size=(2.9, 2.6))
            for r, b in enumerate(betas):
                sel = ds.sel(n=n, beta=b, epsilon=eps)
                m = int(n)
                for c, (name, title) in enumerate((("K0", "K⁰ = exp(βc/ε)/n"), ("K1", "K¹ softmax"), ("Kinf", "K^∞ Sinkhorn"))):
                    ax = axes[r][c]
                    ax.imshow(sel[name].values[:m, :m], cmap="magma")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_title(f"{title} (β={b:g})", fontsize=8)
                ax = axes[r][3]
                k = ds["k"].values
                err = sel["row_error"].values + sel["col_error"].values  # one side is exact after each step
                ax.semilogy(k, np.maximum(err, 1e-17), label="marginal error of the other side")
                lam = float(np.median(sel["contraction"].values))
                e0 = float(sel["col_error"].values[0])
                ax.semilogy(k, e0 * lam ** (k - 1), "k:", lw=1, label="Birkhoff tanh(Δ/4)^k")
                ax.set_ylim(1e-16, 10)
                ax.set_xlabel("normalisations k")
                ax.legend(fontsize=6)
            fig.suptitle(f"Normalisations of one configuration (n = {int(n)}, ε = {eps:g}); errors: median over realizations")
            paths.append(save_figure(fig, outdir, f"normalizations_n{int(n)}_eps{eps:g}"))
    return paths


def checks(ds, cfg):
    out = []
    real_rows = ds["i"] < ds["n"]  # the matrices are NaN-padded to the largest n
    rowsum = float(np.abs(ds["K1"].sum("j") - 1.0).where(real_rows).max())
    out.append(compare("K¹ rows sum to 1", "softmax = one row normalisation", 0.0, rowsum, 1e-12, "round-off", mode="le"))
    err = float(ds["kinf_error"].max())
    out.append(compare("K^∞ doubly stochastic", "Sinkhorn (balanced)", 0.0, err, float(cfg.threshold), "L1 marginal error ≤ threshold", mode="le"))
    worst, detail = -np.inf, ""
    cols = ds["col_error_all"].values  # (..., realization, k)
    lam = ds["contraction"].values  # (..., realization)
    for idx in np.ndindex(*lam.shape):
        rate = _rate(cols[idx])
        if np.isfinite(rate) and rate - lam[idx] ** 2 > worst:
            worst, detail = rate - lam[idx] ** 2, f"fitted rate {rate:.4f} vs tanh(Δ/4)² = {lam[idx] ** 2:.4f}"
    out.append(compare("Sinkhorn linear rate ≤ tanh(Δ/4)²", "Birkhoff; Franklin & Lorenz 1989", 0.0, worst, 0.0, "fitted rate − bound, worst realization", mode="le", detail=detail))
    return out


STUDY = Study(
    name="kernel-normalizations",
    title="K⁰ / K¹ / K^∞: unnormalised, softmax and Sinkhorn attention",
    source="SINK",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={
        "K0": ("i", "j"), "K1": ("i", "j"), "Kinf": ("i", "j"),
        "row_error": ("k",), "col_error": ("k",), "col_error_all": ("realization", "k"),
        "contraction": ("realization",), "sink_F": ("realization",),
        "kinf_error": ("realization",), "kinf_converged": ("realization",), "status": (),
    },
    output_attrs={
        "K0": {"long_name": "unnormalised kernel K⁰ = exp(β⟨x_i, x_j⟩/ε)/n of the first realization (NaN beyond n×n)", "units": "1"},
        "K1": {"long_name": "row softmax K¹ of β⟨x_i, x_j⟩/ε, first realization (NaN beyond n×n)", "units": "1"},
        "Kinf": {"long_name": "Sinkhorn limit K^∞ (doubly stochastic, times n), first realization (NaN beyond n×n)", "units": "1"},
        "row_error": {"long_name": "median over realizations of the L1 row-marginal error after k alternate normalisations", "units": "1"},
        "col_error": {"long_name": "median over realizations of the L1 column-marginal error after k alternate normalisations", "units": "1"},
        "col_error_all": {"long_name": "L1 column-marginal error after k alternate normalisations, per realization", "units": "1"},
        "contraction": {"long_name": "Birkhoff's contraction ratio tanh(Δ/4) of the kernel (Δ its Hilbert projective diameter)", "units": "1"},
        "sink_F": {"long_name": "SINK's functional F(μ) at the Sinkhorn limit", "units": "1"},
        "kinf_error": {"long_name": "L1 marginal error of the returned Sinkhorn limit", "units": "1"},
        "kinf_converged": {"long_name": "whether Sinkhorn reached its threshold (1) or its iteration cap (0)", "units": "1"},
        "k": {"long_name": "number of alternate normalisations (odd: after a row normalisation)", "units": "1"},
    },
    coords=coords,
    plot=plot,
    checks=checks,
)
