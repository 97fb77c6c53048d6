"""histograms — pairwise-cosine histograms across time (GLPR Fig. 1 analogue, simulated SA).

Each cell is one (d, n, β): ``realizations`` uniform starts; at every save time
the density histogram of ⟨x_i, x_j⟩ (i < j) on ``bins`` bins of [−1, 1] averaged
over realizations, and the second moment m₂ = mean ⟨x_i,x_j⟩² per realization.

Checks
- *initial spread*: for uniform points E⟨x, y⟩² = 1/d exactly; the measured
  m₂(0) must be within 4 Monte-Carlo standard errors (from the realization
  spread) of 1/d for every d.
- *collapse*: for d ≥ n and β with t*(β) ≤ T/2, at least 90% of the pairs fall
  in the top bin at t = T (Thm 6.3; the top bin is [1 − 2/bins, 1]).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from sinkflow import theory
from sinkflow.attention import Attention
from sinkflow.checks import compare
from sinkflow.dynamics.attention import attention_field
from sinkflow.observables import cosine_histogram, pairwise_cosines
from sinkflow.options import SolverOptions, SpanReductionOptions, float_dtype, time_grid
from sinkflow.plots import new_figure, save_figure
from sinkflow.solve import solve
from sinkflow.sphere import normalize, span_coordinates, uniform
from sinkflow.study import Study, param


@dataclasses.dataclass(frozen=True)
class Config(SolverOptions, SpanReductionOptions):
    d: tuple = param((2, 8, 32, 128), "ambient dimension", swept=True, static=True, kind=int, lo=2)
    n: tuple = param((32,), "number of tokens", swept=True, static=True, kind=int, lo=2)
    beta: tuple = param((1.0, 4.0), "inverse temperature β ≥ 0", swept=True, kind=float, lo=0.0)
    T: float = param(15.0, "final time", kind=float, lo=0.0, open="lo")
    n_times: int = param(16, "number of save times in [0, T]", kind=int, lo=2)
    realizations: int = param(256, "i.i.d. uniform starts per cell", kind=int, lo=1)
    bins: int = param(40, "histogram bins on [−1, 1]", kind=int, lo=2, hi=10_000)


PRESETS = {
    "tiny": {"realizations": 16, "d": (2, 4), "n": (4,), "beta": (1.0,), "T": 20.0, "n_times": 3, "bins": 10},
    "paper": {"realizations": 1024, "d": (2, 8, 32, 128, 512), "beta": (1.0, 4.0, 9.0), "T": 30.0, "n_times": 31},
    "small": {"realizations": 64, "d": (2, 8, 32)},
}


def make_cell(cfg: Config, static: dict):
    d, n = static["d"], static["n"]
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_times)
    solver = cfg.solver_config()
    R = cfg.realizations
    iu = np.triu_indices(n, k=1)

    def observable(t, x, args):
        hist = jnp.mean(cosine_histogram(x, cfg.bins), axis=0)
        c = pairwise_cosines(x)[:, iu[0], iu[1]]
        m2 = jnp.mean(c * c, axis=-1)  # (R,)
        return hist, jnp.stack([jnp.mean(m2), jnp.std(m2) / math.sqrt(max(R - 1, 1))])

    def cell(values, key):
        x0 = uniform(key, (R, n), d, dtype)
        if cfg.reduces(d, n):  # the same draw in coordinates of its span: every cosine is kept
            x0 = span_coordinates(x0)
        params = Attention(beta=values["beta"])
        sol = solve(attention_field, x0, ts, params, config=solver, observable=observable, project=normalize, batch_ndim=1)
        hist, m2 = sol.ys
        return {"hist": hist, "m2": m2[:, 0], "m2_se": m2[:, 1], "status": sol.status, "num_steps": sol.num_steps}

    return cell


def coords(cfg: Config):
    edges = np.linspace(-1.0, 1.0, cfg.bins + 1)
    return {"t": time_grid(cfg.T, cfg.n_times), "bin": 0.5 * (edges[1:] + edges[:-1])}


def plot(ds, cfg, outdir):
    t = ds["t"].values
    centers = ds["bin"].values
    width = centers[1] - centers[0]
    pick = np.unique(np.linspace(0, len(t) - 1, 6).round().astype(int))
    paths = []
    for n in ds["n"].values:
        for b in ds["beta"].values:
            dims = ds["d"].values
            fig, axes = new_figure(len(dims), len(pick), size=(2.1, 1.6), sharex=True)
            for r, d in enumerate(dims):
                h = ds["hist"].sel(d=d, n=n, beta=b).values
                for c, k in enumerate(pick):
                    ax = axes[r][c]
                    ax.bar(centers, h[k], width=width, color="C0")
                    ax.set_yticks([])
                    if r == 0:
                        ax.set_title(f"t = {t[k]:.1f}", fontsize=9)
                    if c == 0:
                        ax.set_ylabel(f"d = {int(d)}", fontsize=9)
            for ax in axes[-1]:
                ax.set_xlabel(r"$\langle x_i, x_j\rangle$", fontsize=8)
            fig.suptitle(f"Pairwise cosines under SA (n = {int(n)}, β = {b:g})")
            paths.append(save_figure(fig, outdir, f"histograms_n{int(n)}_beta{b:g}"))
    return paths


def checks(ds, cfg):
    T, bins = float(cfg.T), int(cfg.bins)
    out = []
    worst, detail = 0.0, ""
    for d in ds["d"].values:
        m2 = ds["m2"].sel(d=d).isel(t=0).values
        se = ds["m2_se"].sel(d=d).isel(t=0).values
        z = np.max(np.abs(m2 - 1.0 / d) / se)
        if z > worst:
            worst, detail = float(z), f"d={int(d)}: m2(0)={float(np.ravel(m2)[0]):.5f} vs 1/d={1 / d:.5f}"
    out.append(compare("initial spread E⟨x,y⟩² = 1/d", "uniform measure on S^{d-1}", 0.0, worst, 4.0, "|m₂(0) − 1/d| in Monte-Carlo standard errors", mode="le", detail=detail))
    for n in ds["n"].values:
        big = [d for d in ds["d"].values if d >= n]
        betas = [b for b in ds["beta"].values if float(theory.transition_time(float(b), float(n), 2.0 / bins)) <= T / 2]
        if big and betas:
            top = ds["hist"].sel(n=n, d=big, beta=betas).isel(t=-1, bin=-1).values * (2.0 / bins)
            out.append(compare(f"collapse into the top bin (n={int(n)}, d ≥ n)", "GLPR Thm 6.3", 1.0, float(np.min(top)), 0.1, "≥ 90% of pairs in the top bin at T", mode="ge"))
    return out


def cell_bytes(cfg: Config, static: dict) -> int:
    """Peak working memory of a cell: all realizations as one state, each with its n×n logits and
    weights and the RK stages of its n×d' state (d' = n in the span, else d; ~12 arrays at the peak)."""
    n, d = int(static["n"]), int(static["d"])
    d = min(d, n) if cfg.reduces(d, n) else d
    return cfg.realizations * 12 * (n * n + n * d) * np.dtype(cfg.dtype).itemsize

STUDY = Study(
    name="histograms",
    title="Pairwise-cosine histograms across time (GLPR Fig. 1 analogue)",
    source="GLPR Fig. 1; Thm 6.3",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    cell_bytes=cell_bytes,
    output_dims={"hist": ("t", "bin"), "m2": ("t",), "m2_se": ("t",), "status": (), "num_steps": ()},
    output_attrs={
        "hist": {"long_name": "density histogram of ⟨x_i, x_j⟩ over pairs i < j on equal bins of [−1, 1], mean over realizations", "units": "1"},
        "m2": {"long_name": "second moment mean_{i<j} ⟨x_i, x_j⟩², mean over realizations", "units": "1"},
        "t": {"long_name": "time (continuous depth)", "units": "1"},
    },
    coords=coords,
    plot=plot,
    checks=checks,
)

