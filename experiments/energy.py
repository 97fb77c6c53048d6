"""energy — the interaction energy E_β along SA/USA trajectories and its exact dissipation identities.

E_β(X) = (1/(2βn²)) Σ_{i,j} e^{β⟨x_i,x_j⟩} (stored as E_β − 1/(2β), see
:func:`sinkflow.observables.interaction_energy`). Along trajectories

    SA:  dE/dt = n^{-2} Σ_i Z_i |ẋ_i|²,   Z_i = Σ_k e^{β⟨x_i,x_k⟩}
    USA: dE/dt = n^{-1} Σ_i |ẋ_i|²        (USA is Ẋ = n ∇_X E_β, a gradient flow)

and with V = −I ("-repulsive" models) the same with a minus sign. Each cell
integrates the augmented state (X, I) with İ = the right-hand side above, so
E(t) − E(0) = I(t) is checked to solver accuracy rather than through a finite
difference.

Checks
- *monotone*: E non-decreasing (attractive) / non-increasing (repulsive)
  between saves, up to 1e-9 (float64) or 1e-5 (float32) relative to the range.
- *identity*: max_t |E(t) − E(0) − I(t)| ≤ 1e-7 (float64; adaptive Tsit5 at
  rtol 1e-10) or 1e-3 (float32), relative to max(1, |E(T) − E(0)|).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow.attention import Attention
from sinkflow.checks import compare
from sinkflow.dynamics import MODELS as NORMALIZATION_OF
from sinkflow.dynamics.attention import attention_field
from sinkflow.observables import interaction_energy
from sinkflow.options import PreciseSolverOptions, SpanReductionOptions, float_dtype, time_grid
from sinkflow.plots import new_figure, save_figure
from sinkflow.solve import solve
from sinkflow.sphere import normalize, span_coordinates, uniform
from sinkflow.study import Study, param

MODELS = ("sa", "usa", "sa-repulsive", "usa-repulsive")


def dissipation(x, params: Attention):
    """The identity's right-hand side dE/dt for SA/USA with V = ±I (see module docstring)."""
    n = x.shape[-2]
    xh = normalize(x)
    v = attention_field(0.0, xh, params)
    speed2 = jnp.sum(v * v, axis=-1)  # (..., n)
    sign = jnp.sign(params.value_scale)
    if params.normalization == "softmax":
        logz = jax.nn.logsumexp(params.beta * jnp.einsum("...id,...jd->...ij", xh, xh), axis=-1)
        return sign * jnp.sum(jnp.exp(logz) * speed2, axis=-1) / n**2
    return sign * jnp.sum(speed2, axis=-1) / n


@dataclasses.dataclass(frozen=True)
class Config(PreciseSolverOptions, SpanReductionOptions):
    model: tuple = param(MODELS, "dynamics: sa, usa, and their V = −I versions", swept=True, static=True, kind=str, choices=MODELS)
    beta: tuple = param((0.5, 1.0, 4.0), "inverse temperature β ≥ 0", swept=True, kind=float, lo=0.0)
    n: int = param(16, "number of tokens", kind=int, lo=2)
    d: int = param(3, "ambient dimension", kind=int, lo=2)
    T: float = param(10.0, "final time", kind=float, lo=0.0, open="lo")
    n_times: int = param(101, "number of save times in [0, T]", kind=int, lo=2)


PRESETS = {
    "tiny": {"model": ("sa", "usa-repulsive"), "beta": (1.0,), "n": 5, "T": 2.0, "n_times": 11},
    "paper": {"n": 32, "d": 3, "beta": (0.5, 1.0, 4.0, 9.0), "T": 30.0, "n_times": 301},
    "small": {},
}


def make_cell(cfg: Config, static: dict):
    model = static["model"]
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_times)
    solver = cfg.solver_config()
    normalization = NORMALIZATION_OF[model.removesuffix("-repulsive")]
    scale = -1.0 if model.endswith("repulsive") else 1.0

    def field(t, y, params):
        x, _ = y
        return attention_field(t, x, params), dissipation(x, params)

    def observable(t, y, params):
        x, integral = y
        return jnp.stack([interaction_energy(x, params.beta), integral])

    def project(y):
        return normalize(y[0]), y[1]

    def cell(values, key):
        x0 = uniform(key, (cfg.n,), cfg.d, dtype)
        if cfg.reduces(cfg.d, cfg.n):  # the same draw in coordinates of its span: exact (V = ±I, E and dE/dt are Gram functions)
            x0 = span_coordinates(x0)
        params = Attention(beta=values["beta"], value_scale=jnp.asarray(scale, dtype), normalization=normalization)
        sol = solve(field, (x0, jnp.zeros((), dtype)), ts, params, config=solver, observable=observable, project=project)
        return {"E": sol.ys[:, 0], "I": sol.ys[:, 1], "status": sol.status, "num_steps": sol.num_steps}

    return cell


def coords(cfg: Config):
    return {"t": time_grid(cfg.T, cfg.n_times)}


def plot(ds, cfg, outdir):
    t = ds["t"].values
    models = list(ds["model"].values)
    fig, axes = new_figure(1, len(models), size=(3.4, 2.8))
    for ax, m in zip(axes[0], models):
        for b in ds["beta"].values:
            e = ds["E"].sel(model=m, beta=b).values
            i = ds["I"].sel(model=m, beta=b).values
            line = ax.plot(t, e - e[0], lw=1.4, label=f"β={b:g}")[0]
            ax.plot(t[::8], i[::8], "o", ms=3, color=line.get_color())
        ax.set_title(m)
        ax.set_xlabel("t")
    axes[0][0].set_ylabel(r"$E_\beta(t)-E_\beta(0)$ (line), $\int$ identity (dots)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Interaction energy and its dissipation identity")
    return [save_figure(fig, outdir, "energy")]


def checks(ds, cfg):
    f64 = ds.attrs.get("precision") == "float64"
    mono_tol, id_tol = (1e-9, 1e-7) if f64 else (1e-5, 1e-3)
    out = []
    worst_mono, worst_id = 0.0, 0.0
    for m in ds["model"].values:
        sign = -1.0 if str(m).endswith("repulsive") else 1.0
        for b in ds["beta"].values:
            e = ds["E"].sel(model=m, beta=b).values
            i = ds["I"].sel(model=m, beta=b).values
            rng = max(1e-300, float(np.ptp(e)))
            worst_mono = max(worst_mono, float(np.max(-sign * np.diff(e))) / rng)
            worst_id = max(worst_id, float(np.max(np.abs(e - e[0] - i))) / max(1.0, abs(e[-1] - e[0])))
    out.append(compare("E monotone (↑ for V=I, ↓ for V=−I)", "GLPR §3 (USA gradient flow), derived SA identity", 0.0, worst_mono, mono_tol, "largest wrong-way step / range of E", mode="le"))
    out.append(compare("dE/dt identities", "derived (MATH.md §1)", 0.0, worst_id, id_tol, "|E(t) − E(0) − ∫ rhs| with the integral carried by the solver", mode="le"))
    return out


STUDY = Study(
    name="energy",
    title="Interaction energy along SA/USA trajectories",
    source="GLPR §3 (dissipation identities derived here)",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={"E": ("t",), "I": ("t",), "status": (), "num_steps": ()},
    output_attrs={
        "E": {"long_name": "interaction energy E_β − 1/(2β) = (1/(2βn²)) Σ_ij e^{β⟨x_i,x_j⟩} − 1/(2β) (sinkflow.observables.interaction_energy)", "units": "1"},
        "I": {"long_name": "time integral of the dissipation identity's right-hand side (equals E(t) − E(0) along the exact flow)", "units": "1"},
        "t": {"long_name": "time (continuous depth)", "units": "1"},
    },
    coords=coords,
    plot=plot,
    checks=checks,
)
