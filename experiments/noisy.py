"""noisy — noisy tokens: the USA dynamics with Brownian noise on the sphere (MF §7; MATH.md §1).

Each cell is one (n, dt, κ, β): ``realizations`` clouds of n uniform tokens on
S^{d−1} evolved by dX_i = P_{X_i}(USA field) dt + √(2/κ) dW_i (Brownian motion on
the sphere; :func:`sinkflow.dynamics.noisy.solve_noisy`: Itô form, Euler–Maruyama with
increments drawn per step, renormalised every step; at β = 0 the drift is the O(n) mean
field :func:`sinkflow.dynamics.attention.mean_field`). Saved: the order parameter
r = |mean_i X_i| at every save time; the long-time statistics are averages over
t ∈ [T/2, T] and realizations (standard errors from the realizations).

Theory at β = 0, d = 2 (noisy Kuramoto): for κ ≤ 2 the uniform law is the only
stationary state; for κ > 2 a synchronised branch r* = I₁(κr*)/I₀(κr*)
(:func:`sinkflow.theory.kuramoto_branch`). Finite n, derived here: below the
transition the first Fourier mode Z = mean e^{iθ} is, to leading order, a
complex Ornstein–Uhlenbeck process dZ = (½ − 1/κ)Z dt + noise with
E|dZ_noise|² = 2dt/(nκ), so n(1 − κ/2)E[r²] = 1 (fluctuations diverge at κ = 2).

Checks (β = 0, d = 2 cells only; n → ∞ by Richardson on the two largest n, with
its error estimate; time-step error estimated by the change between the two
smallest dt, Euler–Maruyama being weak order 1 — both added to 4 standard errors)
- *incoherent fluctuations*: for κ < 2, n(1 − κ/2)⟨r²⟩ = 1 at the largest n
  (a finite-n statement; its nonlinear corrections are O(1/n)).
- *synchronised branch*: for κ > 2, ⟨r⟩ = r*(κ).
- *transition*: ⟨r⟩ at the largest n is below 0.2 for every κ ≤ 1.5 and above 0.5
  for every κ ≥ 3 (a coarse, parameter-free reading of the κ = 2 transition).
Equilibration: from a uniform start the synchronised mode grows at rate ½ − 1/κ,
which vanishes at κ = 2 (κ = 2.5 needs t ≳ 30 to saturate; measured), so T = 60
and the statistics window [T/2, T] are the defaults; near κ = 2 use a longer T.
The (κ, β) grid (paper preset) is drawn as a phase diagram of ⟨r⟩; for β > 0 no
closed form is claimed.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow.attention import Attention
from sinkflow.checks import compare, worst_case
from sinkflow.dynamics.attention import attention_field, mean_field
from sinkflow.dynamics.noisy import solve_noisy
from sinkflow.estimators import richardson_inverse_n
from sinkflow.observables import order_parameter
from sinkflow.options import float_dtype, time_grid
from sinkflow.plots import new_figure, save_figure
from sinkflow.sphere import uniform
from sinkflow.study import Study, StudyConfig, param, require
from sinkflow.theory import kuramoto_branch


@dataclasses.dataclass(frozen=True)
class Config(StudyConfig):
    kappa: tuple = param((0.5, 1.0, 1.5, 2.5, 3.0, 4.0, 6.0), "inverse noise level κ (noise √(2/κ) dW)", swept=True, kind=float, lo=0.0, open="lo")
    beta: tuple = param((0.0,), "inverse temperature β of the USA drift (β = 0 cells use the O(n) mean field)", swept=True, static=True, kind=float, lo=0.0)
    n: tuple = param((200, 400), "tokens", swept=True, static=True, kind=int, lo=2)
    dt: tuple = param((0.04, 0.02), "Euler–Maruyama step(s); two values give the time-step error estimate", swept=True, static=True, kind=float, lo=0.0, open="lo")
    d: int = param(2, "dimension (the closed forms are for d = 2)", kind=int, lo=2)
    T: float = param(60.0, "final time; statistics over [T/2, T]", kind=float)
    n_times: int = param(121, "save times in [0, T]", kind=int, lo=4)
    realizations: int = param(4, "independent clouds (and Brownian paths) per cell", kind=int, lo=2)
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        require(self.T > 0 and max(self.dt) < self.T, f"--T must be > 0 and larger than every --dt, got T={self.T}, dt={max(self.dt)}.")


PRESETS = {
    "tiny": {"n": (50, 100), "realizations": 4, "kappa": (0.5, 4.0), "dt": (0.05, 0.025), "T": 20.0, "n_times": 21},
    "paper": {"kappa": (0.5, 1.0, 1.5, 1.8, 2.2, 2.5, 3.0, 4.0, 6.0, 10.0), "beta": (0.0, 0.5, 1.0, 2.0), "n": (500, 1000), "dt": (0.02, 0.01), "T": 200.0, "n_times": 201, "realizations": 8},
    "small": {"n": (100, 200), "realizations": 8},
}


def make_cell(cfg: Config, static: dict):
    n, dt, beta = static["n"], static["dt"], static["beta"]
    # β = 0: every weight is 1/n and the drift is P_x(x̄), O(n) per step instead of O(n²) (exact)
    field = mean_field if beta == 0.0 else attention_field
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_times)
    R = cfg.realizations

    def cell(values, key):
        kappa = values["kappa"].astype(dtype)
        k0, k1 = jax.random.split(key)
        x0 = uniform(k0, (R, n), cfg.d, dtype)
        # increments drawn per step: cells of different dt have different keys anyway, so the tree's
        # one-path-at-every-dt coupling would buy nothing here, at 4–6× the cost (benchmarks/noisy.py)
        sol = solve_noisy(field, x0, ts, Attention(beta=jnp.asarray(beta, dtype), normalization="none"), kappa=kappa, key=k1, dt=float(dt),
                          observable=lambda t, y, a: order_parameter(y), brownian="steps")
        r = sol.ys  # (t, R)
        late = ts >= cfg.T / 2
        r_late = r[late]
        per_real = jnp.mean(r_late, axis=0), jnp.mean(r_late**2, axis=0)  # time averages per realization
        se = lambda a: jnp.std(a) / math.sqrt(R - 1)  # noqa: E731
        return {
            "r": jnp.mean(r, axis=1),
            "r_mean": jnp.mean(per_real[0]),
            "r_mean_se": se(per_real[0]),
            "r2_mean": jnp.mean(per_real[1]),
            "r2_mean_se": se(per_real[1]),
            "status": sol.status,
        }

    return cell


def coords(cfg: Config):
    return {"t": time_grid(cfg.T, cfg.n_times)}



def plot(ds, cfg, outdir):
    kap = ds["kappa"].values
    nmax, dtmin = ds["n"].values.max(), ds["dt"].values.min()
    fig, axes = new_figure(1, 2, size=(4.8, 3.6))
    ax = axes[0][0]
    for k, b in enumerate(ds["beta"].values):
        sel = ds.sel(beta=b, n=nmax, dt=dtmin)
        ax.errorbar(kap, sel["r_mean"].values, yerr=2 * sel["r_mean_se"].values, fmt="o", ms=4, color=f"C{k}", label=f"β = {b:g} (n = {int(nmax)})")
    if cfg.d == 2:
        fine = np.linspace(min(kap.min(), 0.5), max(kap.max(), 3.0), 300)
        ax.plot(fine, [kuramoto_branch(k) for k in fine], "k-", lw=1, label="r* = I₁(κr*)/I₀(κr*)")
        ax.axvline(2.0, color="k", ls=":", lw=0.8)
    ax.set_xlabel("κ")
    ax.set_ylabel("⟨r⟩ over [T/2, T]")
    ax.set_title(f"order parameter, d = {cfg.d}, dt = {dtmin:g}", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[0][1]
    t = ds["t"].values
    for k, kp in enumerate(kap):
        ax.plot(t, ds["r"].sel(kappa=kp, beta=ds["beta"].values[0], n=nmax, dt=dtmin).values, color=plt_color(k, len(kap)), lw=1, label=f"κ = {kp:g}")
    ax.set_xlabel("t")
    ax.set_ylabel("r(t) (realization mean)")
    ax.set_title(f"β = {ds['beta'].values[0]:g}", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Noisy tokens (MF §7): synchronisation transition at κ = 2")
    paths = [save_figure(fig, outdir, "noisy_order_parameter")]
    if ds["beta"].size > 1:
        fig, axes = new_figure(1, 1, size=(5.0, 3.8))
        ax = axes[0][0]
        mesh = ax.pcolormesh(kap, ds["beta"].values, ds["r_mean"].sel(n=nmax, dt=dtmin).transpose("beta", "kappa").values, vmin=0, vmax=1, shading="nearest")
        fig.colorbar(mesh, ax=ax, label="⟨r⟩")
        ax.set_xlabel("κ")
        ax.set_ylabel("β")
        ax.set_title("noisy USA: order parameter over (κ, β)")
        paths.append(save_figure(fig, outdir, "noisy_phase_diagram"))
    return paths


def plt_color(k, m):
    from matplotlib import colormaps

    return colormaps["viridis"](k / max(m - 1, 1))


def checks(ds, cfg):
    out = []
    if cfg.d != 2 or 0.0 not in ds["beta"].values:
        return out
    nvals = ds["n"].values.astype(float)
    dts = np.sort(ds["dt"].values)

    def stat(name, kappa):
        """(n → ∞ value at the smallest dt, its se, extrapolation error + dt error)."""
        sel = ds.sel(beta=0.0, kappa=kappa)
        y, se, model = richardson_inverse_n(sel[name].sel(dt=dts[0]).values, sel[f"{name}_se"].sel(dt=dts[0]).values, nvals)
        dt_err = abs(float(sel[name].sel(dt=dts[0]).values[-1] - sel[name].sel(dt=dts[1]).values[-1])) if dts.size > 1 else 0.0
        return y, se, model + dt_err

    def fluct_rows():
        for k in ds["kappa"].values:
            if k < 2.0:  # compared at the largest n (the statement is itself at finite n, up to O(1/n))
                scale = float(nvals.max()) * (1.0 - k / 2.0)
                sel = ds.sel(beta=0.0, kappa=k, dt=dts[0], n=int(nvals.max()))
                m, s = float(sel["r2_mean"]) * scale, float(sel["r2_mean_se"]) * scale
                dt_err = abs(float(ds["r2_mean"].sel(beta=0.0, kappa=k, n=int(nvals.max()), dt=dts[1])) * scale - m) if dts.size > 1 else 0.0
                yield abs(m - 1.0) - 4 * s - dt_err, f"κ={k:g}: n(1−κ/2)⟨r²⟩ = {m:.3f} ± {s:.3f} (dt error {dt_err:.3f}) at n = {int(nvals.max())}"

    rows = list(fluct_rows())
    if rows:
        worst, detail = worst_case(rows)
        out.append(compare("incoherent phase: n(1 − κ/2)⟨r²⟩ = 1", "complex OU for the first Fourier mode (derived)", 0.0, worst, 0.0, "|measured − 1| − (4se + dt error)", mode="le", detail=detail))

    def branch_rows():
        for k in ds["kappa"].values:
            if k > 2.0:
                y, se, err = stat("r_mean", k)
                pred = kuramoto_branch(float(k))
                yield abs(y - pred) - 4 * se - err, f"κ={k:g}: ⟨r⟩_∞ = {y:.4f} ± {se:.4f} (extrapolation + dt error {err:.4f}) vs r* {pred:.4f}"

    rows = list(branch_rows())
    if rows:
        worst, detail = worst_case(rows)
        out.append(compare("synchronised branch r* = I₁(κr*)/I₀(κr*)", "MF §7 (noisy Kuramoto)", 0.0, worst, 0.0, "|⟨r⟩_∞ − r*| − (4se + n-extrapolation error + dt error)", mode="le", detail=detail))
    sel = ds["r_mean"].sel(beta=0.0, n=int(nvals.max()), dt=dts[0])
    low = sel.where(sel["kappa"] <= 1.5, drop=True).values
    high = sel.where(sel["kappa"] >= 3.0, drop=True).values
    if low.size and high.size:
        ok = float(np.max(low) < 0.2 and np.min(high) > 0.5)
        out.append(compare("transition between κ = 1.5 and 3", "MF §7", 1.0, ok, 0.0, "max ⟨r⟩ (κ ≤ 1.5) < 0.2 and min ⟨r⟩ (κ ≥ 3) > 0.5", mode="ge",
                           detail=f"max low {np.max(low):.3f}, min high {np.min(high):.3f}"))
    return out


def cell_bytes(cfg: Config, static: dict) -> int:
    """Peak working memory of a cell: every cloud as one state; at β > 0 each holds its n×n kernel,
    at β = 0 (the mean field) only O(n) arrays."""
    n = int(static["n"])
    per = 8 * n * cfg.d if float(static["beta"]) == 0.0 else 4 * n * n + 8 * n * cfg.d
    return cfg.realizations * per * np.dtype(cfg.dtype).itemsize

STUDY = Study(
    name="noisy",
    title="Noisy tokens: USA with Brownian noise on the sphere, synchronisation at κ = 2",
    source="MF §7",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    cell_bytes=cell_bytes,
    output_dims={"r": ("t",), "r_mean": (), "r_mean_se": (), "r2_mean": (), "r2_mean_se": (), "status": ()},
    output_attrs={
        "r": {"long_name": "order parameter r = |mean_i x_i|, mean over realizations", "units": "1"},
        "r_mean": {"long_name": "⟨r⟩: r averaged over t ∈ [T/2, T] and realizations", "units": "1"},
        "r2_mean": {"long_name": "⟨r²⟩: r² averaged over t ∈ [T/2, T] and realizations", "units": "1"},
        "t": {"long_name": "time", "units": "1"},
    },
    coords=coords,
    plot=plot,
    checks=checks,
)
