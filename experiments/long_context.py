"""long-context — the long-context phase transition of one attention layer (MF; Chen et al. 2025).

Each cell is one (n, ρ, γ): n equiangular unit tokens ⟨x_i, x_j⟩ = ρ (the
symmetric square root of the Gram matrix, d = n; :func:`sinkflow.sphere.equiangular`)
pass through one softmax attention layer (Q = K = V = I) at β = γ log n, and the
cosine between the outputs of tokens 1 and 2 is measured
(:func:`sinkflow.attention.attend_rows`: two query rows against all n keys, so
the cost is the n × n input itself — 2 GB at n = 16384 in float64; the exact
formula carries the curves on to n = 10¹²).

Theory (:func:`sinkflow.theory.long_context_cosine` and friends): with
a = e^β/Z, b = e^{βρ}/Z, cos_n = [ρ + (1−ρ)(2ab + (n−2)b²)] / [ρ + (1−ρ)(a² + (n−1)b²)],
and with κ = γ(1−ρ), cos_n → 1 (κ < 1), 4ρ/(1+3ρ) (κ = 1), ρ (κ > 1).

Checks
- *exact formula*: max over cells of |cos_sim − cos_n| ≤ 1e-10 (float64; 1e-4 in float32).
- *limits*: per (ρ, γ), the exact cosine approaches its limit as a power law
  n^{−p} with p = 2(1−κ), 1, κ − 1 for κ <, =, > 1 (derived from a/b = n^κ);
  the log-log slope of |cos_n − limit| over n ∈ [10⁶, 10¹²] must equal −p within
  0.02 (the next-order terms are relatively O(n^{−min(κ, |1−κ|)}) and at most 2%
  there for the default γ; a wrong limit gives slope 0).
- *published values*: cos at ρ = ½, γ = 2 for n = 10², 10⁴, 10⁸ are 0.8028,
  0.80003, 0.8000 (MATH.md), to the printed digits.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from sinkflow import theory
from sinkflow.attention import Attention, attend_rows
from sinkflow.checks import compare, worst_case
from sinkflow.options import float_dtype
from sinkflow.plots import new_figure, save_figure
from sinkflow.sphere import equiangular_gram_root
from sinkflow.study import Study, StudyConfig, param

N_THEORY = np.logspace(1, 12, 111)


@dataclasses.dataclass(frozen=True)
class Config(StudyConfig):
    n: tuple = param((16, 64, 256, 1024, 4096, 8192), "tokens (the input is n × n: 8n² bytes per cell in float64, times --chunk-size)", swept=True, static=True, kind=int, lo=3)
    rho: tuple = param((0.5,), "input cosine ρ ∈ (0, 1)", swept=True, kind=float, lo=0.0, hi=1.0, open="both")
    gamma: tuple = param((1.0, 1.5, 2.0, 3.0, 4.0), "β = γ log n (critical γ = 1/(1−ρ))", swept=True, kind=float, lo=0.0)
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))



PRESETS = {
    "tiny": {"n": (8, 32, 128), "gamma": (1.0, 2.0, 3.0)},
    "paper": {},
    "small": {"n": (16, 64, 256, 1024, 4096)},
}


def make_cell(cfg: Config, static: dict):
    n = static["n"]
    dtype = float_dtype(cfg)

    def cell(values, key):
        del key  # deterministic
        rho, gamma = values["rho"].astype(dtype), values["gamma"].astype(dtype)
        beta = gamma * math.log(n)
        x = equiangular_gram_root(n, rho, dtype)  # sphere.equiangular with d = n and ρ traced
        y = attend_rows(x, Attention(beta=beta), jnp.arange(2))
        cos = jnp.dot(y[0], y[1]) / (jnp.linalg.norm(y[0]) * jnp.linalg.norm(y[1]))
        exact = theory.long_context_cosine(n, rho, beta).astype(dtype)
        return {"cos": cos, "cos_exact": exact, "beta": beta, "status": jnp.where(jnp.isfinite(cos), 0, 1).astype(jnp.int32)}

    return cell



def plot(ds, cfg, outdir):
    paths = []
    for rho in ds["rho"].values:
        fig, axes = new_figure(1, 1, size=(6.0, 4.2))
        ax = axes[0][0]
        for k, g in enumerate(ds["gamma"].values):
            sel = ds.sel(rho=rho, gamma=g)
            curve = np.asarray(theory.long_context_cosine(N_THEORY, rho, g * np.log(N_THEORY)))
            ax.plot(N_THEORY, curve, color=f"C{k}", lw=1.2, label=f"γ = {g:g} (κ = {g * (1 - rho):g})")
            ax.plot(ds["n"].values, sel["cos"].values, "o", color=f"C{k}", ms=4)
        for lim, name in ((1.0, "1"), (4 * rho / (1 + 3 * rho), "4ρ/(1+3ρ)"), (rho, "ρ")):
            ax.axhline(lim, color="k", ls=":", lw=0.8)
            ax.annotate(name, (N_THEORY[-1], lim), fontsize=8, ha="right", va="bottom")
        ax.set_xscale("log")
        ax.set_xlabel("n (context length)")
        ax.set_ylabel("cosine between outputs")
        ax.set_title(f"one attention layer, equiangular ρ = {rho:g}, β = γ log n\n(dots: simulated, lines: exact formula; critical γ = {1 / (1 - rho):g})")
        ax.legend(fontsize=7, loc="center right", bbox_to_anchor=(1.0, 0.64))
        paths.append(save_figure(fig, outdir, f"long_context_rho{rho:g}"))
    return paths


def checks(ds, cfg):
    tol = 1e-10 if cfg.dtype == "float64" else 1e-4
    err = np.abs(ds["cos"].values - ds["cos_exact"].values)
    i = np.unravel_index(int(np.nanargmax(err)), err.shape)
    where = ", ".join(f"{dim}={ds[dim].values[j]:g}" for dim, j in zip(ds["cos"].dims, i))
    out = [compare("simulated cosine = exact finite-n formula", "MF (long context)", 0.0, float(np.nanmax(err)), tol, f"max |cos_sim − cos_n| ({cfg.dtype})", mode="le", detail=f"worst at {where}")]

    big = np.logspace(6, 12, 13)

    def slope_rows():
        for rho in ds["rho"].values:
            for g in ds["gamma"].values:
                lim, p = theory.long_context_limit(rho, g), theory.long_context_rate(rho, g)
                gap = np.abs(np.asarray(theory.long_context_cosine(big, rho, g * np.log(big))) - lim)
                if np.any(gap <= 0):
                    yield math.inf, f"ρ={rho:g}, γ={g:g}: cos_n hits the limit exactly (float64 underflow of the gap)"
                    continue
                slope = np.polyfit(np.log(big), np.log(gap), 1)[0]
                yield abs(slope + p), f"ρ={rho:g}, γ={g:g}: slope {slope:.4f} vs −{p:g} toward limit {lim:.5f}"

    worst, detail = worst_case(slope_rows())
    out.append(compare("cos_n → 1, 4ρ/(1+3ρ), ρ as n^{−p}", "MF (long context), rates derived", 0.0, worst, 0.02, "worst |log-log slope + p| over n ∈ [1e6, 1e12]", mode="le", detail=detail))
    published = {1e2: 0.8028, 1e4: 0.80003, 1e8: 0.8000}
    miss = max(abs(float(theory.long_context_cosine(n, 0.5, 2.0 * math.log(n))) - v) / (0.5 * 10.0 ** -(len(f"{v}".split(".")[1]))) for n, v in published.items())
    out.append(compare("published values (ρ = ½, γ = 2)", "MATH.md §1", 0.0, miss, 1.0, "worst |cos_n − printed| in half-units of the last printed digit", mode="le"))
    return out


STUDY = Study(
    name="long-context",
    title="Long-context phase transition of one attention layer",
    source="MF (long context); Chen et al. 2025",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={"cos": (), "cos_exact": (), "beta": (), "status": ()},
    output_attrs={
        "cos": {"long_name": "cosine between two tokens' outputs after one attention layer on the equiangular input of cosine ρ", "units": "1"},
        "cos_exact": {"long_name": "closed form of that cosine (sinkflow.theory.long_context_cosine)", "units": "1"},
        "beta": {"long_name": "inverse temperature β = γ log n", "units": "1"},
    },
    coords=lambda cfg: {},
    plot=plot,
    checks=checks,
)
