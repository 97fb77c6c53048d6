"""sinkformer-heat — the Sinkformer in R^d as a heat flow (SINK Thm 1, MATH.md §2) vs softmax (mean shift).

Each cell is one (normalizer, dim, n, ε): ``realizations`` clouds of n particles
from N(0, s₀ I_dim) evolved by ẋ_i = −(1/ε)(Σ_j W_ij x_j − x_i), W the
Sinkhorn-normalised (or, for ``softmax``, row-normalised) kernel
exp(−‖x_i − x_j‖²/(wε)) (:func:`sinkflow.dynamics.heat.heat_field`; w = ``--width``).
Saved at every time: the per-coordinate variance (centred, unbiased), the
Kozachenko–Leonenko entropy of the cloud, and the worst Sinkhorn marginal error
and converged fraction of the normalisation at that state.

Theory (MATH.md §2, :mod:`sinkflow.theory`): Gaussians stay Gaussian and the
variance obeys ds/dt = (2/ε)(1 − λ(s; wε)) s exactly at finite ε (mean-field,
n → ∞), tending to the heat equation ∂_tρ = (w/4)Δρ (s = s₀ + wt/2) for Sinkhorn
and to (w/2)Δρ (s = s₀ + wt) for softmax as ε → 0. The convention: w = 1 is
MATH.md's kernel; w = 4 is the form ∂_tρ = Δρ of SINK Thm 1 as the seeds quote it.

Checks (n → ∞ by Richardson extrapolation on the two largest n,
:func:`sinkflow.checks.richardson_inverse_n`; its error bar is the change from
the previous pair of n plus 4 standard errors. A global 1/n fit is wrong here:
the tail particles of a Gaussian cloud have few kernel neighbours (n ρ(x) ε^{dim/2}
≲ 1) and barely move, so the bias is ~(log n)^{(dim+2)/2}/n, measured as a slow
convergence in dim = 2 (softmax, ε = 0.3: s_n(T) = 1.65, 1.74, 1.80, 1.84 for
n = 100..800 vs ODE 1.90). The small preset is dim = 1, where n = 800 resolves the
ODE to 1e-3. With only two n, the error bar is the extrapolation step |y_∞ − y_nmax|
itself: one pair cannot test the 1/n model, and the bias is not 1/n.)

Regime: the n → ∞ checks (variance ODE, entropy Gaussian, heat limit) cover only the
cells whose particles resolve the kernel at the largest n: m = n (wε/(wε+4s₀))^{dim/2} ≥ 50,
m the mean kernel mass a particle of the starting cloud sees (:func:`kernel_neighbours`);
the others are listed in the checks' detail. Measured on the paper preset at n = 500,
1000 (CPU, 74 min): every cell with m ≥ 47 agrees with the ODE within its bar, in
variance and in entropy; the cells that do not have m = 1.4–27 (dim = 3 with ε ≤ 0.4, dim = 2 with
ε = 0.05), where s_n(T) is still 30–50% short of the ODE at n = 1000 (softmax,
dim = 3, ε = 0.05: 1.22, 1.45 vs 2.97). The heat limit is checked at the smallest resolved ε
of each dim, its finite-ε ODE gap included in the tolerance.
- *variance ODE*: per (normalizer, dim, ε), s_∞(T) matches the finite-ε ODE.
- *gap shrinks*: |s_n(T) − s_ODE(T)| does not grow from one n to the next (beyond
  4 standard errors): the mean-field limit is approached, not a nearby value.
- *heat limit*: at the smallest ε, the extrapolated mean rate (s(T) − s(0))/T of
  Sinkhorn differs from the heat rate w/2 by at most the ODE's own finite-ε
  gap plus the error bar (the ε → 0 statement, reported with its gap).
- *entropy increases*: the realization-mean KL entropy never decreases between
  saves by more than 4 standard errors of the difference.
- *entropy is Gaussian*: ΔĤ(T) = Ĥ(T) − Ĥ(0), extrapolated to n = ∞, equals
  (dim/2) log(s_ODE(T)/s₀), the entropy gain of the predicted Gaussian. KL's bias
  is scale invariant and cancels in the difference for i.i.d. samples; but the
  flow is repulsive, so a finite cloud becomes more regular than an i.i.d.
  sample and the estimator over-reads its entropy (+0.11 nats at n = 800,
  dim = 2, ε = 0.3): a finite-n effect, hence the extrapolation.
- *Sinkhorn converged* at every save of every cell.

Start: ``--start whitened`` (default) moment-matches each initial cloud (mean 0,
covariance s₀I exactly). With i.i.d. starts the sample variance's own noise,
±√(2/(n·dim)), dominated s(T) (measured: s_400(0) = 0.937 in one 4-cloud cell).
Sinkhorn runs the averaged symmetric loop (the kernel is symmetric): at ε = 0.1
alternation did not reach 1e-7 in 5·10⁴ iterations on 400 points; the symmetric
loop needs ~25.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow import theory
from sinkflow.checks import compare, sinkhorn_check, worst_case
from sinkflow.dynamics.heat import HeatFlow, heat_field, sq_distances, whiten
from sinkflow.entropy import kl_entropy
from sinkflow.estimators import richardson_inverse_n
from sinkflow.options import SinkhornOptions, SolverOptions, float_dtype, time_grid
from sinkflow.plots import new_figure, save_figure
from sinkflow.sinkhorn import Sinkhorn, sinkhorn
from sinkflow.solve import solve, with_finiteness
from sinkflow.study import Study, param, require

NORMALIZERS = ("sinkhorn", "softmax")
STARTS = ("whitened", "iid")


@dataclasses.dataclass(frozen=True)
class Config(SolverOptions, SinkhornOptions):
    normalizer: tuple = param(NORMALIZERS, "attention normaliser: sinkhorn (Sinkformer) or softmax (mean shift)", swept=True, static=True, kind=str, choices=NORMALIZERS)
    dim: tuple = param((2,), "dimension of R^dim", swept=True, static=True, kind=int, lo=1)
    n: tuple = param((250, 500, 1000), "particles per cloud", swept=True, static=True, kind=int, lo=2)
    epsilon: tuple = param((0.1, 0.2, 0.4), "kernel width ε (also the 1/ε time scaling)", swept=True, kind=float, lo=0.0, open="lo")
    s0: float = param(1.0, "initial per-coordinate variance", kind=float, lo=0.0, open="lo")
    start: str = param("whitened", "initial cloud: iid N(0, s₀I) samples, or whitened (moment-matched: empirical mean 0, covariance s₀I exactly)", kind=str, choices=STARTS)
    width: float = param(1.0, "kernel exp(−‖x−y‖²/(wε)); 1 = MATH.md, 4 = SINK's ∂ρ = Δρ form", kind=float, lo=0.0, open="lo")
    T: float = param(1.0, "final time", kind=float, lo=0.0, open="lo")
    n_times: int = param(11, "number of save times in [0, T]", kind=int, lo=2)
    realizations: int = param(8, "i.i.d. clouds per cell", kind=int, lo=2)
    iterations: int = param(20000, "max Sinkhorn normalisations (Gaussian tails converge slowly at small ε)", kind=int)
    dt: float = param(0.05, "step size (fixed methods) or first step (adaptive)", kind=float)
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        require(self.start != "whitened" or min(self.n) > max(self.dim), f"--start whitened needs n > dim for every cell (a full-rank covariance), got n={min(self.n)}, dim={max(self.dim)}.")


PRESETS = {
    "tiny": {"dim": (1,), "n": (60, 120, 240), "epsilon": (0.5,), "realizations": 4, "n_times": 3, "T": 0.5, "dt": 0.125},
    "paper": {"dim": (1, 2, 3), "n": (500, 1000, 2000), "epsilon": (0.05, 0.1, 0.2, 0.4, 0.8), "T": 2.0, "n_times": 21, "realizations": 16},
    "small": {"dim": (1,), "n": (100, 200, 400, 800), "epsilon": (0.3, 0.6), "realizations": 8, "n_times": 6},
}


def _kernel(cfg: Config, normalizer: str, eps) -> Sinkhorn:
    if normalizer == "softmax":
        return Sinkhorn(epsilon=eps, mode="fixed", iterations=1)
    return cfg.sinkhorn_spec(eps, symmetric_kernel=True)  # −‖x_i − x_j‖² is symmetric


def cell_bytes(cfg: Config, static: dict) -> int:
    """Peak memory of one cell, an upper estimate: the realizations are one RK4 state with an
    n×n Sinkhorn kernel each; XLA's memory analysis of two vmapped cells reads 7.0 n×n buffers
    per realization (n = 500, 1000, float64); 8 are declared (n = 2000, R = 16: 4.1 GB)."""
    return 8 * cfg.realizations * static["n"] ** 2 * np.dtype(cfg.dtype).itemsize


def make_cell(cfg: Config, static: dict):
    dim, n, normalizer = static["dim"], static["n"], static["normalizer"]
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_times)
    solver = cfg.solver_config()
    R = cfg.realizations

    def cell(values, key):
        eps = values["epsilon"].astype(dtype)
        kernel = _kernel(cfg, normalizer, eps)
        params = HeatFlow(kernel=kernel, sign=-1.0, width=float(cfg.width))

        def observable(t, x, args):
            xc = x - jnp.mean(x, axis=-2, keepdims=True)
            var = jnp.sum(xc * xc, axis=(-2, -1)) / ((n - 1) * dim)  # (R,)
            H = kl_entropy(x)  # (R,)
            _, info = sinkhorn(-sq_distances(x) / cfg.width, kernel)
            return var, H, info.error, info.converged.astype(dtype)

        x0 = jax.random.normal(key, (R, n, dim), dtype)
        if cfg.start == "whitened":
            x0 = whiten(x0)
        x0 = math.sqrt(cfg.s0) * x0
        sol = solve(heat_field, x0, ts, params, config=solver, observable=observable, batch_ndim=1)
        var, H, err, conv = sol.ys  # (t, R) each
        dH = H - H[:1]
        se = lambda a: jnp.std(a, axis=1) / math.sqrt(R - 1)  # noqa: E731
        return {
            "var": jnp.mean(var, axis=1),
            "var_se": se(var),
            "entropy": jnp.mean(H, axis=1),
            "entropy_se": se(H),
            "entropy_gain": jnp.mean(dH, axis=1),
            "entropy_gain_se": se(dH),
            "gaussian_gain": jnp.mean(0.5 * dim * jnp.log(var / var[:1]), axis=1),
            "sinkhorn_error": jnp.max(err, axis=1),
            "sinkhorn_converged": jnp.mean(conv, axis=1),
            "status": with_finiteness(sol.status, var, H),
            "num_steps": sol.num_steps,
        }

    return cell


def coords(cfg: Config):
    return {"t": time_grid(cfg.T, cfg.n_times)}



def _ode(ds, cfg, normalizer, eps):
    t = ds["t"].values
    return np.asarray(theory.variance_path(float(cfg.s0), float(eps), t, normalizer, float(cfg.width)))


def plot(ds, cfg, outdir):
    t = ds["t"].values
    w, s0 = float(cfg.width), float(cfg.s0)
    paths = []
    for dim in ds["dim"].values:
        norms = ds["normalizer"].values
        fig, axes = new_figure(1, len(norms) + 1, size=(3.6, 3.0))
        nmax = ds["n"].values[-1]
        for ax, nm in zip(axes[0], norms):
            for k, eps in enumerate(ds["epsilon"].values):
                sel = ds.sel(dim=dim, normalizer=nm, epsilon=eps, n=nmax)
                ax.errorbar(t, sel["var"].values, yerr=2 * sel["var_se"].values, fmt="o", ms=3, color=f"C{k}", label=f"ε={eps:g}")
                ax.plot(t, _ode(ds, cfg, nm, eps), color=f"C{k}", lw=1)
            rate = theory.heat_limit_rate(str(nm), w)
            ax.plot(t, s0 + rate * t, "k--", lw=1, label=f"heat: s₀ + {rate:g}t")
            ax.set_title(f"{nm} (n = {int(nmax)}, dim = {int(dim)})")
            ax.set_xlabel("t")
            ax.set_ylabel("per-coordinate variance")
            ax.legend(fontsize=7)
        ax = axes[0][-1]
        for k, eps in enumerate(ds["epsilon"].values):
            for nm, ls in zip(norms, ("-", "--")):
                sel = ds.sel(dim=dim, normalizer=nm, epsilon=eps, n=nmax)
                ax.plot(t, sel["entropy_gain"].values, ls=ls, marker="o", ms=3, color=f"C{k}", label=f"{nm} ε={eps:g}")
                ax.plot(t, sel["gaussian_gain"].values, ls=":", color=f"C{k}", lw=1)
        ax.set_title("KL entropy gain Ĥ(t) − Ĥ(0)\n(dotted: Gaussian of the same variance)", fontsize=9)
        ax.set_xlabel("t")
        ax.legend(fontsize=6)
        fig.suptitle("Sinkformer heat flow: variance vs the finite-ε ODE (lines) and the heat equation (dashed)")
        paths.append(save_figure(fig, outdir, f"sinkformer_heat_dim{int(dim)}"))
    return paths


MIN_NEIGHBOURS = 50.0  # the kernel sums' relative sampling error ~ 1/√m ≤ 14% (see kernel_neighbours)


def kernel_neighbours(n, dim, eps, width: float = 1.0, s0: float = 1.0) -> float:
    """m = n·E[exp(−‖x − y‖²/(wε))] = n·(wε/(wε + 4s₀))^{dim/2} for x, y i.i.d. N(0, s₀I_dim): the mean
    kernel mass a particle of the starting cloud sees, i.e. its effective number of kernel neighbours.

    The mean-field (n → ∞) statements need m ≫ 1. At m ~ 1–30 the field is a sum over a few
    neighbours, the tails are frozen, and s_n(T) creeps towards the limit far slower than 1/n
    (paper preset, dim = 3, ε = 0.05: m = 1.4 at n = 1000, s_n(T) = 1.21, 1.41 for n = 500, 1000
    against the ODE's 2.00).
    """
    return float(n) * (width * float(eps) / (width * float(eps) + 4.0 * s0)) ** (float(dim) / 2.0)


def _neighbours(ds, cfg, dim, eps) -> float:
    """:func:`kernel_neighbours` of a cell at the largest n of the sweep."""
    return kernel_neighbours(np.max(ds["n"].values), dim, eps, float(cfg.width), float(cfg.s0))


def _cells(ds, cfg, resolved: bool | None = None):
    """(normalizer, dim, ε, final-time selection) per cell; with ``resolved`` True/False only the cells
    whose largest n does/does not reach MIN_NEIGHBOURS kernel neighbours."""
    for nm in ds["normalizer"].values:
        for dim in ds["dim"].values:
            for eps in ds["epsilon"].values:
                if resolved is None or (_neighbours(ds, cfg, dim, eps) >= MIN_NEIGHBOURS) == resolved:
                    yield nm, dim, eps, ds.sel(normalizer=nm, dim=dim, epsilon=eps).isel(t=-1)


def _extrapolate(values, se, nvals):
    """Richardson's (y_∞, se, error bar); with two n the bar is the extrapolation step, as this bias is not 1/n."""
    return richardson_inverse_n(values, se, nvals, two_n_error="step")


def _misfit(values, se, nvals, pred):
    """|y_∞ − pred| beyond its error bar (extrapolation error + 4 standard errors), and a description."""
    y, e, model = _extrapolate(values, se, nvals)
    return abs(y - pred) - model - 4 * e, f"{y:.4f} ± {e:.4f} (extrapolation error {model:.4f})"


def _unresolved(ds, cfg) -> str:
    cells = [(int(d), float(e)) for d in ds["dim"].values for e in ds["epsilon"].values if _neighbours(ds, cfg, d, e) < MIN_NEIGHBOURS]
    if not cells:
        return ""
    listed = ", ".join(f"dim={d} ε={e:g} (m={_neighbours(ds, cfg, d, e):.1f})" for d, e in cells)
    return f"; not checked, fewer than {MIN_NEIGHBOURS:g} kernel neighbours at n = {int(np.max(ds['n'].values))}: {listed}"


def checks(ds, cfg):
    T, w, s0 = float(cfg.T), float(cfg.width), float(cfg.s0)
    nvals = ds["n"].values.astype(float)
    out = []

    def variance_rows():
        for nm, dim, eps, sel in _cells(ds, cfg, resolved=True):
            pred = float(_ode(ds, cfg, nm, eps)[-1])
            miss, text = _misfit(sel["var"].values, sel["var_se"].values, nvals, pred)
            yield miss, f"{nm}, dim={int(dim)}, ε={eps:g}: s_∞(T) = {text} vs ODE {pred:.4f}"

    skipped = _unresolved(ds, cfg)
    worst, detail = worst_case(variance_rows())
    out.append(compare("variance follows ds/dt = (2/ε)(1 − λ)s", "MATH.md §2 (derived)", 0.0, worst, 0.0,
                       f"|s_∞(T) − s_ODE(T)| − (Richardson error + 4se), n → ∞ on the two largest n, cells with ≥ {MIN_NEIGHBOURS:g} kernel neighbours",
                       mode="le", detail=detail + skipped))

    def shrink_rows():
        for nm, dim, eps, sel in _cells(ds, cfg):
            gap = np.abs(sel["var"].values - float(_ode(ds, cfg, nm, eps)[-1]))
            slack = 4 * np.hypot(sel["var_se"].values[1:], sel["var_se"].values[:-1])
            yield float(np.max(np.diff(gap) - slack, initial=-np.inf)), f"{nm}, dim={int(dim)}, ε={eps:g}: |s_n(T) − s_ODE(T)| = {np.array2string(gap, precision=4)} for n = {nvals.astype(int).tolist()}"

    if nvals.size >= 2:
        worst, detail = worst_case(shrink_rows())
        out.append(compare("finite-n gap to the ODE shrinks with n", "mean-field limit", 0.0, worst, 0.0,
                           "largest increase of |s_n(T) − s_ODE(T)| from one n to the next, beyond 4se", mode="le", detail=detail))
    if "sinkhorn" in ds["normalizer"].values:
        rate = theory.heat_limit_rate("sinkhorn", w)
        for dim in ds["dim"].values:
            resolved = [e for e in ds["epsilon"].values if _neighbours(ds, cfg, dim, e) >= MIN_NEIGHBOURS]
            if not resolved:
                continue  # listed by the variance check
            eps = float(np.min(resolved))  # the smallest ε whose cell the particles resolve
            sel = ds.sel(normalizer="sinkhorn", dim=dim, epsilon=eps).isel(t=-1)
            v, se, model = _extrapolate(sel["var"].values, sel["var_se"].values, nvals)
            gap = abs((float(_ode(ds, cfg, "sinkhorn", eps)[-1]) - s0) / T - rate)
            out.append(compare(f"heat limit: rate → w/2 (dim={int(dim)}, ε={eps:g})", "SINK Thm 1 / MATH.md §2", rate, (v - s0) / T, gap + (model + 4 * se) / T,
                               "finite-ε ODE gap + (Richardson error + 4se)/T", detail=f"ODE gap at this ε: {gap:.4f}"))
    dH = ds["entropy"].diff("t")
    se = np.sqrt(ds["entropy_se"].values[..., 1:] ** 2 + ds["entropy_se"].values[..., :-1] ** 2)
    zmin = float(np.min(dH.values / np.maximum(se, 1e-12)))
    out.append(compare("KL entropy non-decreasing", "heat equation (SINK Thm 1)", 0.0, zmin, 4.0, "smallest ΔĤ between saves, in standard errors (≥ −4)", mode="ge"))

    def entropy_rows():
        for nm, dim, eps, sel in _cells(ds, cfg, resolved=True):
            pred = 0.5 * float(dim) * math.log(float(_ode(ds, cfg, nm, eps)[-1]) / s0)
            miss, text = _misfit(sel["entropy_gain"].values, sel["entropy_gain_se"].values, nvals, pred)
            yield miss, f"{nm}, dim={int(dim)}, ε={eps:g}: ΔĤ_∞(T) = {text} vs Gaussian {pred:.4f}"

    worst, detail = worst_case(entropy_rows())
    out.append(compare("entropy gain = Gaussian entropy of the ODE variance", "MATH.md §2, §4", 0.0, worst, 0.0,
                       f"|ΔĤ_∞(T) − (dim/2)log(s_ODE(T)/s₀)| − (Richardson error + 4se), cells with ≥ {MIN_NEIGHBOURS:g} kernel neighbours",
                       mode="le", detail=detail + skipped))
    if "sinkhorn" in ds["normalizer"].values:
        out.append(sinkhorn_check(ds, cfg.threshold, normalizer="sinkhorn"))
    return out


STUDY = Study(
    name="sinkformer-heat",
    title="Sinkformer heat flow in R^d vs softmax mean shift",
    source="SINK Thm 1 (heat-equation limit)",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={
        **{k: ("t",) for k in ("var", "var_se", "entropy", "entropy_se", "entropy_gain", "entropy_gain_se", "gaussian_gain", "sinkhorn_error", "sinkhorn_converged")},
        "status": (),
        "num_steps": (),
    },
    output_attrs={
        "var": {"long_name": "per-coordinate variance of the cloud (centred, unbiased), mean over realizations", "units": "1"},
        "entropy": {"long_name": "Kozachenko–Leonenko entropy of the cloud, mean over realizations", "units": "nat"},
        "entropy_gain": {"long_name": "entropy gain Ĥ(t) − Ĥ(0), mean over realizations", "units": "nat"},
        "gaussian_gain": {"long_name": "entropy gain of a Gaussian with the cloud's variance, (dim/2) log(s(t)/s(0))", "units": "nat"},
        "sinkhorn_error": {"long_name": "worst L1 marginal error of the kernel normalisation over realizations at that state", "units": "1"},
        "sinkhorn_converged": {"long_name": "fraction of realizations whose Sinkhorn reached its threshold at that state", "units": "1"},
        "t": {"long_name": "time", "units": "1"},
    },
    coords=coords,
    plot=plot,
    checks=checks,
    cell_bytes=cell_bytes,
)
