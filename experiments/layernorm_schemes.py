"""layernorm-schemes — LayerNorm placement: normalisation schemes as speed factors (MF §6.2, NORM; MATH.md §1).

Not to be confused with ``kernel-normalizations`` (softmax vs Sinkhorn *attention*
normalisation): this study is about where LayerNorm sits in the residual stream.

Each cell is one (scheme, start, β): n tokens x = rθ evolved by
:func:`sinkflow.dynamics.layernorm.layernorm_field` (Post-LN, Pre-LN, Mix-LN, Peri-LN,
nGPT, sqrt-scaling) with an adaptive solver and no sphere projection (the radius
is part of the state). Starts: ``orthonormal`` (ρ₀ = 0, a Haar-rotated frame,
needs d ≥ n) or ``random`` (``realizations`` uniform starts on S^{d−1}). Saved on a
log-spaced time grid up to T, per realization: log(1 − ρ(t)), 1 − ρ the mean over
pairs of ‖θ_i − θ_j‖²/2 (:func:`sinkflow.dynamics.layernorm.one_minus_cosine`; accurate
near consensus, where 1 − ⟨θ_i, θ_j⟩ cancels), and the mean radius. Slopes are
fitted per realization (a realization-mean would mix transients of different
lengths into the fitting window).

Checks (MATH.md §1; fitting windows stated per check)
- *scalar ODE*: from the orthonormal start, log(1 − ρ) of the particles equals the
  equiangular reduction :func:`sinkflow.dynamics.layernorm.equiangular_path` to 1e-5 where
  1 − ρ ≥ 1e-9 (the solver runs at rtol 1e-10; the ODE at 1e-12).
- *Post-LN*: slope of log(1 − ρ) vs t over the window 1e-9 ≤ 1 − ρ ≤ 1e-3 is −2 ± 0.05.
- *nGPT*: the same slope is −2α ± 0.05 (‖A‖ → 1 at consensus).
- *sqrt-scaling*: slope of log(1 − ρ) vs √(t+1) over the same window is −4 ± 0.05.
- *Pre-LN, Peri-LN, Mix-LN*: log-log slope of 1 − ρ vs t over [T/10, T] is −2 ± 0.05;
  at n = d = 8, β = 1 from the orthonormal start, c = t²(1 − ρ) at T is within 5%
  of 1.55 (Pre-LN) and 1.53 (Peri-LN).
  The approach to t^{−2} carries a relative correction ~log t/t (measured: the
  Mix-LN random-start slope is −2.066 at T = 400, −2.027 at T = 1000), so the
  default T is 1000; shorter runs fail this check honestly.
Random starts are held to the same slope checks (the local rate near consensus
does not depend on the configuration); c is only checked for the equiangular start.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow.attention import Attention
from sinkflow.checks import compare, worst_case
from sinkflow.dynamics.layernorm import (
    SCHEMES,
    LayerNorm,
    equiangular_path,
    layernorm_field,
)
from sinkflow.observables import one_minus_cosine
from sinkflow.options import PreciseSolverOptions, float_dtype
from sinkflow.plots import new_figure, save_figure
from sinkflow.solve import solve, with_finiteness
from sinkflow.sphere import orthonormal_frame, uniform
from sinkflow.study import Study, param, require

STARTS = ("orthonormal", "random")
EXPONENTIAL = {"post-ln": "t", "ngpt": "t", "sqrt": "sqrt"}
POWER = ("pre-ln", "peri-ln", "mix-ln")
PUBLISHED_C = {"pre-ln": 1.55, "peri-ln": 1.53}
WINDOW = (1e-9, 1e-3)


@dataclasses.dataclass(frozen=True)
class Config(PreciseSolverOptions):
    scheme: tuple = param(SCHEMES, "normalisation scheme(s)", swept=True, static=True, kind=str, choices=SCHEMES)
    start: tuple = param(STARTS, "initial configuration: orthonormal frame (equiangular ρ₀ = 0) or uniform random", swept=True, static=True, kind=str, choices=STARTS)
    beta: tuple = param((1.0,), "inverse temperature β", swept=True, kind=float, lo=0.0)
    n: int = param(8, "tokens", kind=int, lo=2)
    d: int = param(8, "dimension (orthonormal start needs d ≥ n)", kind=int, lo=2)
    alpha: float = param(1.0, "nGPT speed α (s = ‖A‖/α)", kind=float, lo=0.0, open="lo")
    switch: float = param(1.0, "Mix-LN switch time t_s (Post-LN before, Pre-LN after)", kind=float, lo=0.0)
    T: float = param(1000.0, "final time (Pre-LN's c/t² needs T ≳ 10³)", kind=float, lo=0.0, open="lo")
    n_times: int = param(241, "save times: half uniform on [0, min(30, T/2)), half log-spaced up to T", kind=int, lo=8)
    realizations: int = param(4, "random starts per cell (orthonormal: 1 frame)", kind=int, lo=1)
    def __post_init__(self):
        super().__post_init__()
        require("orthonormal" not in self.start or self.d >= self.n, f"--start orthonormal needs d ≥ n, got d={self.d}, n={self.n}.")


PRESETS = {
    "tiny": {"n": 4, "d": 4, "scheme": ("post-ln", "pre-ln", "sqrt"), "realizations": 2, "T": 1000.0, "n_times": 121},
    "paper": {"beta": (0.5, 1.0, 2.0), "realizations": 16, "T": 3000.0, "n_times": 321},
    "small": {},
}


def time_grid(T: float, n_times: int) -> np.ndarray:
    """Half the saves uniform on [0, t₁) with t₁ = min(30, T/2) (the exponential schemes cross
    1e-3..1e-9 there), half log-spaced on [t₁, T] (the c/t² tails)."""
    t1 = min(30.0, T / 2.0)
    k = n_times // 2
    return np.concatenate([np.linspace(0.0, t1, k, endpoint=False), np.logspace(math.log10(t1), math.log10(T), n_times - k)])


def make_cell(cfg: Config, static: dict):
    scheme, start = static["scheme"], static["start"]
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_times)
    solver = dataclasses.replace(cfg.solver_config(), max_steps=2**18)
    R = cfg.realizations

    def observable(t, x, args):
        return jnp.log(one_minus_cosine(x)), jnp.mean(jnp.linalg.norm(x, axis=-1), axis=-1)

    def cell(values, key):
        if start == "orthonormal":  # R Haar-rotated frames: the same equiangular dynamics, a round-off check
            x0 = jax.vmap(lambda k: orthonormal_frame(cfg.n, cfg.d, k, dtype))(jax.random.split(key, R))
        else:
            x0 = uniform(key, (R, cfg.n), cfg.d, dtype)
        p = LayerNorm(Attention(beta=values["beta"].astype(dtype)), scheme=scheme, alpha=float(cfg.alpha), switch=float(cfg.switch))
        sol = solve(layernorm_field, x0, ts, p, config=solver, observable=observable, batch_ndim=1)
        log_gap, radius = sol.ys  # (t, R)
        return {
            "log_gap": log_gap,
            "radius": radius,
            "status": with_finiteness(sol.status, log_gap[:1]),
            "num_steps": sol.num_steps,
        }

    return cell


def coords(cfg: Config):
    return {"t": time_grid(cfg.T, cfg.n_times), "realization": np.arange(cfg.realizations)}



def _theory(ds, cfg, scheme, beta):
    gap, _ = equiangular_path(ds["t"].values, float(beta), cfg.n, str(scheme), alpha=cfg.alpha, switch=cfg.switch)
    return np.asarray(gap)


def plot(ds, cfg, outdir):
    t = ds["t"].values
    fig, axes = new_figure(1, len(ds["start"].values), size=(5.0, 3.8))
    for ax, start in zip(axes[0], ds["start"].values):
        for k, sch in enumerate(ds["scheme"].values):
            for b in ds["beta"].values[:1]:
                lg = ds["log_gap"].sel(scheme=sch, start=start, beta=b).values  # (t, realization)
                for r in range(lg.shape[1] if start == "random" else 1):
                    ax.loglog(t[1:], np.exp(lg[1:, r]), color=f"C{k}", lw=1.2, alpha=0.8, label=str(sch) if r == 0 else None)
                if start == "orthonormal":
                    ax.loglog(t[1:], _theory(ds, cfg, sch, b)[1:], color="k", lw=0.6, ls=":")
        tt = t[t > 10]
        ax.loglog(tt, 1.55 / tt**2, "k--", lw=0.8, label="1.55/t²")
        ax.set_ylim(1e-16, 2)
        ax.set_xlabel("t")
        ax.set_ylabel("1 − ρ(t)")
        ax.set_title(f"{start} start (n = {cfg.n}, d = {cfg.d}, β = {ds['beta'].values[0]:g})" + ("\ndotted: equiangular ODE" if start == "orthonormal" else ""), fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Normalisation schemes as speed factors: exponential (Post-LN, nGPT), exp(−4√t) (sqrt), c/t² (Pre/Peri/Mix-LN)", fontsize=9)
    return [save_figure(fig, outdir, "normalization_schemes")]


def _window(t, gap):
    return (gap >= WINDOW[0]) & (gap <= WINDOW[1]) & (t > 0)


def checks(ds, cfg):
    t = ds["t"].values
    out = []
    schemes, starts = list(ds["scheme"].values), list(ds["start"].values)
    if "orthonormal" in starts:
        def ode_rows():
            for sch in schemes:
                for b in ds["beta"].values:
                    sim = ds["log_gap"].sel(scheme=sch, start="orthonormal", beta=b).values  # (t, R)
                    ref = _theory(ds, cfg, sch, b)
                    ok = (ref >= WINDOW[0]) & (t > 0)
                    dev = np.abs(sim[ok] - np.log(ref[ok])[:, None])
                    yield float(np.max(dev)), f"{sch}, β={b:g}"
        worst, detail = worst_case(ode_rows())
        out.append(compare("particles follow the equiangular (ρ, r) ODE", "MF §6.2 (reduction derived)", 0.0, worst, 1e-5, "max |log(1−ρ)_sim − log(1−ρ)_ODE| where 1−ρ ≥ 1e-9", mode="le", detail=f"worst: {detail}"))

    def slope(x, y):
        return float(np.polyfit(x, y, 1)[0]) if x.size >= 6 else math.nan  # too few saves in the window: refine --n-times

    for sch in schemes:
        rows = []
        for start in starts:
            for b in ds["beta"].values:
                for r, lg in enumerate(ds["log_gap"].sel(scheme=sch, start=start, beta=b).values.T):  # per realization
                    if sch in EXPONENTIAL:
                        w = _window(t, np.exp(lg))
                        x = np.sqrt(t[w] + 1.0) if EXPONENTIAL[sch] == "sqrt" else t[w]
                        rows.append((slope(x, lg[w]), f"{start} #{r}, β={b:g}: {w.sum()} points in 1e-9 ≤ 1−ρ ≤ 1e-3"))
                    else:
                        w = t >= t[-1] / 10
                        rows.append((slope(np.log(t[w]), lg[w]), f"{start} #{r}, β={b:g}"))
        pred = {"post-ln": -2.0, "ngpt": -2.0 * float(cfg.alpha), "sqrt": -4.0}.get(sch, -2.0)
        what = {"sqrt": "d log(1−ρ)/d√(t+1)", "post-ln": "d log(1−ρ)/dt", "ngpt": "d log(1−ρ)/dt"}.get(sch, "d log(1−ρ)/d log t on [T/10, T]")
        miss, detail = worst_case((abs(s - pred) if math.isfinite(s) else math.inf, f"{d}: slope {s:.4f}") for s, d in rows)
        out.append(compare(f"{sch}: {what} = {pred:g}", "MF §6.2 / NORM (sqrt derived)", 0.0, miss, 0.05, "worst |fitted slope − predicted|", mode="le", detail=detail))
        if sch in PUBLISHED_C and "orthonormal" in starts and cfg.n == 8 and cfg.d == 8 and 1.0 in ds["beta"].values:
            c = float(t[-1] ** 2 * np.exp(ds["log_gap"].sel(scheme=sch, start="orthonormal", beta=1.0).values[-1, 0]))
            out.append(compare(f"{sch}: c = lim t²(1 − ρ)", "MATH.md §1 (MF §6.2, n = d = 8, β = 1)", PUBLISHED_C[sch], c, 0.05, "relative, c read at T", mode="rel", detail=f"T = {t[-1]:g}"))
    return out


STUDY = Study(
    name="layernorm-schemes",
    title="LayerNorm placement (Post/Pre/Mix/Peri-LN, nGPT, sqrt) as speed factors",
    source="MF §6.2; NORM",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={"log_gap": ("t", "realization"), "radius": ("t", "realization"), "status": (), "num_steps": ()},
    output_attrs={
        "log_gap": {"long_name": "log of the mean over pairs i ≠ j of 1 − ⟨θ_i, θ_j⟩, θ = x/‖x‖ (−inf once the cloud is one point)", "units": "1"},
        "radius": {"long_name": "mean token norm (1/n) Σ_i ‖x_i‖ (1 for schemes that keep tokens on the sphere)", "units": "1"},
        "t": {"long_name": "time (continuous depth)", "units": "1"},
    },
    coords=coords,
    plot=plot,
    checks=checks,
)
