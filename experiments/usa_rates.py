"""usa-rates — local rates near consensus (MF §6.1) and the time-rescaled USA layer step.

Each cell is one (model, start, β): n tokens on S^{d−1} from an equiangular start
(cosine ρ₀, Haar-rotated) or a random start in a cap of half-angle π/4
(``cone``), evolved three ways:

1. *continuous* — the SA/USA ODE, solved in the rescaled time τ = rate·t, where
   rate = 2 (SA) or 2e^β (USA) is the predicted local rate of 1 − ρ
   (:func:`sinkflow.theory.local_rate`): the field is multiplied by 1/rate
   (Attention.value_scale, traced, so a β sweep compiles once), and near
   consensus log(1 − ρ) must fall with slope exactly −1 in τ;
2. *naive layers* — x ← normalize(x + h·f(x)), the projected Euler layer with the
   raw step h (:func:`sinkflow.solve.solve`, method euler + sphere projection);
3. *corrected layers* — the same with the authors' step
   η = h / max(√β e^{β−½}, 1) (:func:`sinkflow.theory.usa_corrected_step`; for SA
   the step stays h).

1 − ρ is the mean over pairs of ‖x_i − x_j‖²/2 (accurate near consensus).

Checks (fits over the window 1e-10 ≤ 1 − ρ ≤ 1e-3, per realization)
- *continuous rate*: d log(1 − ρ)/dτ = −1 within 0.01 (i.e. the fitted rate is 2
  for SA and 2e^β for USA to 1%).
- *layer contraction*: for every layer variant whose predicted per-layer factor
  |1 − η·rate/2| is < 0.95 (stable and resolvable), the fitted per-layer slope of
  log(1 − ρ) equals 2 log|1 − η·rate/2| within 2% (derived linearisation;
  :func:`sinkflow.theory.layer_log_contraction`).
- *corrected step is stable*: with η every cell reaches 1 − ρ < 1e-10 within the
  layers given; the naive step's failures (η·rate/2 ≥ 1: no contraction or
  divergence, at β ≥ log(1/h) for USA) are reported, not hidden.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow import theory
from sinkflow.attention import Attention
from sinkflow.checks import compare, worst_case
from sinkflow.dynamics import MODELS
from sinkflow.dynamics.attention import attention_field
from sinkflow.estimators import decay_rate
from sinkflow.observables import one_minus_cosine
from sinkflow.options import PreciseSolverOptions, float_dtype
from sinkflow.plots import new_figure, save_figure
from sinkflow.solve import SolverConfig, solve, with_finiteness
from sinkflow.sphere import cone, equiangular, normalize
from sinkflow.study import Study, check_values, param, require

STARTS = ("equiangular", "cone")
WINDOW = (1e-10, 1e-3)


@dataclasses.dataclass(frozen=True)
class Config(PreciseSolverOptions):
    model: tuple = param(("sa", "usa"), "dynamics: sa (softmax) and/or usa (1/n)", swept=True, static=True, kind=str, choices=theory.MODELS)
    start: tuple = param(STARTS, "equiangular (cosine ρ₀) or random in a cap of half-angle π/4", swept=True, static=True, kind=str, choices=STARTS)
    beta: tuple = param((0.0, 0.5, 1.0, 2.0, 3.0, 4.0), "inverse temperature β", swept=True, kind=float, lo=0.0)
    n: int = param(8, "tokens", kind=int, lo=2)
    d: int = param(8, "dimension (equiangular needs d ≥ n)", kind=int, lo=2)
    rho0: float = param(0.5, "equiangular start cosine ρ₀", kind=float)
    h: float = param(0.1, "layer step h (naive), rescaled to η for USA", kind=float, lo=0.0, open="lo")
    layers: int = param(400, "number of layers of the discrete maps", kind=int, lo=10)
    tau: float = param(30.0, "continuous horizon in rescaled time τ = rate·t", kind=float, lo=0.0, open="lo")
    n_times: int = param(301, "save times in [0, τ]", kind=int, lo=2)
    realizations: int = param(4, "starts per cell (rotations of the equiangular frame, or cap samples)", kind=int, lo=1)
    def __post_init__(self):
        super().__post_init__()
        require("equiangular" not in self.start or self.d >= self.n, f"--start equiangular needs d ≥ n, got d={self.d}, n={self.n}.")
        check_values("rho0", self.rho0, lo=-1.0 / (self.n - 1), hi=1.0, hi_open=True)


PRESETS = {
    "tiny": {"beta": (0.0, 1.0, 3.0), "realizations": 2, "layers": 200, "n_times": 151},
    "paper": {"beta": (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0), "realizations": 16},
    "small": {},
}


def _eta(cfg, model, beta):
    return theory.usa_corrected_step(cfg.h, beta) if model == "usa" else jnp.asarray(cfg.h, beta.dtype) + 0.0 * beta


def make_cell(cfg: Config, static: dict):
    model, start = static["model"], static["start"]
    dtype = float_dtype(cfg)
    taus = np.linspace(0.0, cfg.tau, cfg.n_times)
    layers = np.arange(cfg.layers + 1, dtype=float)
    continuous = cfg.solver_config()
    discrete = SolverConfig(method="euler", dt=1.0)
    norm = MODELS[model]
    R = cfg.realizations

    def observable(t, x, args):
        return jnp.log(one_minus_cosine(normalize(x)))

    def cell(values, key):
        beta = values["beta"].astype(dtype)
        if start == "equiangular":
            x0 = jax.vmap(lambda k: equiangular(cfg.n, cfg.d, cfg.rho0, k, dtype))(jax.random.split(key, R))
        else:
            x0 = cone(key, (R, cfg.n), cfg.d, math.pi / 4, dtype)
        rate = theory.local_rate(beta, model).astype(dtype)
        cont = solve(attention_field, x0, taus, Attention(beta=beta, normalization=norm, value_scale=1.0 / rate), config=continuous, observable=observable, project=normalize)
        naive = solve(attention_field, x0, layers, Attention(beta=beta, normalization=norm, value_scale=jnp.asarray(cfg.h, dtype)), config=discrete, observable=observable, project=normalize)
        eta = _eta(cfg, model, beta).astype(dtype)
        corr = solve(attention_field, x0, layers, Attention(beta=beta, normalization=norm, value_scale=eta), config=discrete, observable=observable, project=normalize)
        return {
            "log_gap": cont.ys,  # (tau, R)
            "log_gap_naive": naive.ys,  # (layer, R)
            "log_gap_corrected": corr.ys,
            "eta": eta,
            "status": with_finiteness(cont.status, cont.ys[:1]),
            "num_steps": cont.num_steps,
        }

    return cell


def coords(cfg: Config):
    return {"tau": np.linspace(0.0, cfg.tau, cfg.n_times), "layer": np.arange(cfg.layers + 1), "realization": np.arange(cfg.realizations)}



def _fit(x, lg):
    """Slope of log(1 − ρ) over the window, or nan with fewer than 6 points in it."""
    fit = decay_rate(x, np.exp(lg), WINDOW, min_points=6, drift=False)
    return -fit.rate, int(fit.mask.sum())


def _factor(cfg, model, beta, eta):
    return abs(1.0 - eta * float(theory.local_rate(beta, model)) / 2.0)


def plot(ds, cfg, outdir):
    tau, layer = ds["tau"].values, ds["layer"].values
    start = ds["start"].values[0]
    models = list(ds["model"].values)
    fig, axes = new_figure(len(models), 3, size=(4.0, 3.0))
    for r, m in enumerate(models):
        for k, b in enumerate(ds["beta"].values):
            sel = ds.sel(model=m, start=start, beta=b)
            axes[r][0].semilogy(tau, np.exp(sel["log_gap"].values[:, 0]), color=f"C{k}", label=f"β={b:g}")
            axes[r][1].semilogy(layer, np.exp(sel["log_gap_naive"].values[:, 0]), color=f"C{k}")
            axes[r][2].semilogy(layer, np.exp(sel["log_gap_corrected"].values[:, 0]), color=f"C{k}")
        ref = np.exp(-tau) * 1e-3 / np.exp(-tau[len(tau) // 3])
        axes[r][0].semilogy(tau, ref, "k--", lw=0.8, label="slope −1")
        axes[r][0].set_title(f"{m.upper()} ODE in τ = rate·t (rate {'2' if m == 'sa' else '2e^β'})", fontsize=9)
        axes[r][1].set_title(f"{m.upper()} layers, step h = {cfg.h:g}", fontsize=9)
        axes[r][2].set_title(f"{m.upper()} layers, step η" + (" = h/max(√β e^{β−½}, 1)" if m == "usa" else " = h"), fontsize=9)
        for ax in axes[r]:
            ax.set_ylim(1e-16, 3)
            ax.set_ylabel("1 − ρ")
        axes[r][0].set_xlabel("τ")
        axes[r][1].set_xlabel("layer")
        axes[r][2].set_xlabel("layer")
        axes[r][0].legend(fontsize=6)
    fig.suptitle(f"Local rates near consensus and the rescaled USA step ({start} start, n = {cfg.n}, d = {cfg.d})")
    return [save_figure(fig, outdir, f"usa_rates_{start}")]


def checks(ds, cfg):
    tau, layer = ds["tau"].values, ds["layer"].values.astype(float)
    out = []

    def cont_rows():
        for m in ds["model"].values:
            for s in ds["start"].values:
                for b in ds["beta"].values:
                    for r, lg in enumerate(ds["log_gap"].sel(model=m, start=s, beta=b).values.T):
                        slope, pts = _fit(tau, lg)
                        yield (abs(slope + 1.0) if math.isfinite(slope) else math.inf), f"{m}, {s} #{r}, β={b:g}: slope {slope:.4f} ({pts} points)"

    worst, detail = worst_case(cont_rows())
    out.append(compare("local rate: 2 (SA), 2e^β (USA)", "MF §6.1", 0.0, worst, 0.01, "worst |d log(1−ρ)/dτ + 1|, τ = rate·t", mode="le", detail=detail))

    skipped = []

    def layer_rows():
        for m in ds["model"].values:
            for s in ds["start"].values:
                for b in ds["beta"].values:
                    sel = ds.sel(model=m, start=s, beta=b)
                    for name, eta in (("naive", cfg.h), ("corrected", float(sel["eta"]))):
                        f = _factor(cfg, m, b, eta)
                        if f >= 0.95:
                            skipped.append(f"{m} {name} β={b:g} (factor {f:.3f})")
                            continue
                        pred = 2.0 * math.log(f)
                        for r, lg in enumerate(sel[f"log_gap_{name}"].values.T):
                            slope, pts = _fit(layer, lg)
                            yield (abs(slope / pred - 1.0) if math.isfinite(slope) else math.inf), f"{m} {name}, {s} #{r}, β={b:g}: {slope:.4f} vs {pred:.4f} ({pts} points)"

    worst, detail = worst_case(layer_rows())
    if skipped:
        detail += "; not fitted (|1 − η·rate/2| ≥ 0.95): " + ", ".join(sorted(set(skipped)))
    out.append(compare("per-layer contraction = 2 log|1 − η·rate/2|", "linearised projected Euler (derived)", 0.0, worst, 0.02, "worst relative error of the fitted per-layer slope", mode="le", detail=detail))
    final = ds["log_gap_corrected"].isel(layer=-1)
    reached = float(np.mean(np.exp(final.values) < WINDOW[0]))
    naive_ok = np.exp(ds["log_gap_naive"].isel(layer=-1).values) < WINDOW[0]
    fails = sorted({f"{m} β={b:g}" for (m, s, b), ok in zip(_cells(ds), naive_ok.reshape(-1, naive_ok.shape[-1]).all(axis=1)) if not ok})
    out.append(compare("corrected step reaches consensus", "authors' η = h/max(√β e^{β−½}, 1)", 1.0, reached, 0.0, f"fraction of runs with 1 − ρ < 1e-10 after {int(layer[-1])} layers", mode="ge",
                       detail="naive step h fails at: " + (", ".join(fails) if fails else "none")))
    return out


def _cells(ds):
    for m in ds["model"].values:
        for s in ds["start"].values:
            for b in ds["beta"].values:
                yield m, s, b


STUDY = Study(
    name="usa-rates",
    title="Local rates near consensus (SA 2, USA 2e^β) and the rescaled USA layer step",
    source="MF §6.1; the authors' corrected USA step",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={
        "log_gap": ("tau", "realization"),
        "log_gap_naive": ("layer", "realization"),
        "log_gap_corrected": ("layer", "realization"),
        "eta": (),
        "status": (),
        "num_steps": (),
    },
    output_attrs={
        "log_gap": {"long_name": "log(1 − ρ) of the continuous flow, 1 − ρ the mean over pairs of ‖x_i − x_j‖²/2", "units": "1"},
        "log_gap_naive": {"long_name": "log(1 − ρ) after each projected Euler layer with the raw step h", "units": "1"},
        "log_gap_corrected": {"long_name": "log(1 − ρ) after each projected Euler layer with the corrected step η", "units": "1"},
        "eta": {"long_name": "corrected layer step η = h/max(√β e^{β−½}, 1) (USA; h for SA)", "units": "1"},
        "tau": {"long_name": "rescaled time τ = rate·t (rate 2 for SA, 2e^β for USA)", "units": "1"},
        "layer": {"long_name": "layer index", "units": "1"},
    },
    coords=coords,
    plot=plot,
    checks=checks,
)
