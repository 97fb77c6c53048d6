"""pf-ode-parity — the probability-flow ODE and the SDE share their marginals; weak orders (seed 003 Thm 6.2, §8.4 Fig. 2).

For Ornstein–Uhlenbeck dX = −θX dt + √(2ν) dW in R^d from N(m₀e₁, s₀I) the law stays
N(m(t)e₁, s(t)I) (:mod:`sinkflow.theory.fokker_planck`) and the score is exact,
∇log p_t(x) = −(x − m(t)e₁)/s(t), so the probability-flow ODE

    ẋ = −θx − ν∇log p_t(x) = −θx + ν(x − m(t)e₁)/s(t)

is known in closed form, and so is its flow map, x(t) = m(t)e₁ + √(s(t)/s₀)(x₀ − m₀e₁): an
affine push-forward of N(m₀e₁, s₀I) onto N(m(t)e₁, s(t)I). Each cell draws one ensemble of n
particles and moves it twice from the **same** start (the seed's protocol: ODE and SDE share
the initial noise): by the SDE (Euler–Maruyama at ``dt``) and by the PF-ODE (Tsit5 at
``rtol``/``atol``, :func:`sinkflow.solve.solve`). Saved per time: the KS distance and the
``bins``-bin histogram TV between the two ensembles (the largest over the d coordinates),
each ensemble's KS distance to the exact marginal, the TV of ``null_pairs`` pairs of independent
exact samples of the same size (the TV's sampling floor), and the ODE's distance to the
closed-form flow map.

Weak error (seed 003 Fig. 2 right, step doubling): E|X_T|² by Euler–Maruyama and by ShARK
(:data:`sinkflow.sde.METHODS`) at the step counts K in ``steps``, every K on the same virtual
Brownian tree per particle, so Δ_K = E[φ(X^{(K)}) − φ(X^{(2K)})] is estimated from per-path
differences, whose spread shrinks with the strong error (it is the weak-error difference
c(h − h/2) + … that survives the mean). Saved per path (``paths`` particles, a second draw from the same start law): φ = |X_T|² for every (method, K).

Checks
- *PF-ODE solver*: the ODE ensemble equals the closed-form flow map to ~10³·rtol (an
  independent computation of the same flow).
- *ODE–SDE parity (KS)*: max over t > 0 and coordinates of the two-sample KS distance ≤ the
  asymptotic critical value at family-wise level 1% (Bonferroni over every time, coordinate and
  cell). The ensembles share their start, which only makes them closer.
- *each ensemble against the exact marginal*: one-sample KS ≤ its critical value plus the exact
  KS distance between the Euler–Maruyama chain's Gaussian law (:func:`theory.em_ou_moments`) and
  the continuous one (the scheme's O(dt) bias, computed, not guessed).
- *ODE–SDE parity (TV)*: at every t > 0, TV(SDE, ODE) lies inside the prediction interval of the
  null TV (k = ``null_pairs`` pairs of independent exact samples, same n and bins): mean +
  t_{k−1}(1 − α/2)·sd·√(1 + 1/k) at family-wise level 1% (Bonferroni over times and cells;
  Student's t because the null's sd is itself estimated from k pairs). Histogram TV is never 0
  between samples of one law, so a fixed tolerance would be meaningless.
- *Euler–Maruyama is the scheme we think*: measured Δ_K against the exact AR(1) chain's
  Δ_K, z ≤ 4 at every K.
- *weak orders*: slopes of log|Δ_K| against log h over the K grid, with percentile bootstrap
  95% intervals over particles (B = 1000; the seed uses BCa): Euler–Maruyama within 0.2 of
  order 1, ShARK within 0.3 of order 2 (additive noise: weak order 2, strong 1.5) on cells
  where every Δ_K is resolved (|Δ_K| > 4 SE; the others are listed).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from scipy.special import ndtr

from sinkflow import theory
from sinkflow.checks import compare, worst_case
from sinkflow.dynamics.langevin import Quadratic, solve_langevin
from sinkflow.marginals import ks_critical, ks_normal, ks_two_sample, tv_histogram
from sinkflow.options import float_dtype, time_grid
from sinkflow.plots import new_figure, save_figure
from sinkflow.sde import METHODS
from sinkflow.solve import SolverConfig, solve, with_finiteness
from sinkflow.study import Study, StudyConfig, param, require

WEAK_METHODS = tuple(METHODS)  # ("euler", "shark")
BOOTSTRAP = 1000


@dataclasses.dataclass(frozen=True)
class Config(StudyConfig):
    d: tuple = param((1, 2), "dimension of R^d", swept=True, static=True, kind=int, lo=1)
    n: tuple = param((4000,), "particles per ensemble", swept=True, static=True, kind=int, lo=100)
    theta: tuple = param((1.0,), "OU strength θ", swept=True, kind=float, lo=0.0, open="lo")
    nu: tuple = param((0.5,), "diffusivity ν", swept=True, kind=float, lo=0.0, open="lo")
    spread: tuple = param((0.1, 2.0), "start variance s₀ (below / above ν/θ: diffusive / contractive)", swept=True, kind=float, lo=0.0, open="lo")
    m0: float = param(1.0, "start mean m₀ along e₁", kind=float)
    T: float = param(2.0, "final time of the parity run and of the weak-error runs", kind=float, lo=0.0, open="lo")
    n_times: int = param(26, "save times in [0, T] (parity)", kind=int, lo=3)
    dt: float = param(0.01, "Euler–Maruyama step of the parity run", kind=float, lo=0.0, open="lo")
    rtol: float = param(1e-8, "PF-ODE relative tolerance (Tsit5)", kind=float, lo=0.0, open="lo")
    atol: float = param(1e-10, "PF-ODE absolute tolerance", kind=float, lo=0.0, open="lo")
    bins: int = param(32, "histogram bins of the TV distance", kind=int, lo=2)
    null_pairs: int = param(32, "independent exact sample pairs giving the TV's sampling floor", kind=int, lo=3)
    steps: tuple = param((16, 32, 64, 128, 256), "step counts K on [0, T] for the weak error (each doubling the last)", kind=int, lo=1)
    paths: int = param(4000, "Brownian paths (particles from the same start law) of the weak-error runs", kind=int, lo=100)
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        require(self.dt < self.T, f"--dt must be smaller than --T, got dt={self.dt}, T={self.T}.")
        require(len(self.steps) >= 3 and all(b == 2 * a for a, b in zip(self.steps, self.steps[1:])), f"--steps must be at least three step counts, each twice the last (step doubling), got {self.steps}.")
        require(max(self.theta) * self.dt < 1.0, f"--dt {self.dt}: Euler–Maruyama needs θ·dt < 1 for every θ (largest θ = {max(self.theta)}).")
        h = self.T / self.steps[0]
        require(max(self.theta) * h < 1.0, f"--steps: the coarsest weak-error step T/K = {h:g} needs θ·h < 1 (largest θ = {max(self.theta)}); start K above {math.ceil(self.T * max(self.theta))}.")

    def solver_provenance(self) -> dict:
        return {"sde": f"euler-maruyama dt={self.dt} (steps brownian)", "pf_ode": f"tsit5 rtol={self.rtol} atol={self.atol}", "weak": f"{', '.join(WEAK_METHODS)} on a virtual Brownian tree, K = {list(self.steps)}"}


PRESETS = {
    "tiny": {"d": (1,), "n": (600,), "T": 1.0, "n_times": 6, "dt": 0.02, "steps": (8, 16, 32), "null_pairs": 8, "paths": 1000},
    "small": {},
    "paper": {"d": (1, 2, 5), "n": (10000,), "theta": (0.5, 1.0, 2.0), "nu": (0.25, 1.0), "n_times": 50, "steps": (16, 32, 64, 128, 256, 512), "paths": 20000},
}


def _flow_moments(theta, nu, s0, m0, t):
    return theory.ou_mean(m0, theta, t), theory.ou_variance(s0, theta, nu, t)


def make_cell(cfg: Config, static: dict):
    d, n = static["d"], static["n"]
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_times)
    e1 = jnp.zeros(d, dtype).at[0].set(1.0)
    ode_config = SolverConfig(method="tsit5", dt=cfg.T / 100, rtol=cfg.rtol, atol=cfg.atol)

    def by_coordinate(x):  # (t, n, d) → (t, d, n)
        return jnp.swapaxes(x, -1, -2)

    def cell(values, key):
        theta, nu, s0 = (values[k].astype(dtype) for k in ("theta", "nu", "spread"))
        k0, k1, k2, k3 = jax.random.split(key, 4)
        x0 = cfg.m0 * e1 + jnp.sqrt(s0) * jax.random.normal(k0, (n, d), dtype)
        U = Quadratic(A=theta * jnp.eye(d, dtype=dtype), m=jnp.zeros(d, dtype))
        sde = solve_langevin(U, x0, ts, nu=nu, key=k1, dt=cfg.dt, brownian="steps")

        def pf_field(t, x, args):
            m, s = _flow_moments(theta, nu, s0, cfg.m0, t)
            return -theta * x + nu * (x - m * e1) / s

        ode = solve(pf_field, x0, ts, None, config=ode_config)
        tt = jnp.asarray(ts, dtype)
        m, s = _flow_moments(theta, nu, s0, cfg.m0, tt)  # (t,)
        exact_map = m[:, None, None] * e1 + jnp.sqrt(s / s0)[:, None, None] * (x0 - cfg.m0 * e1)
        a, b = by_coordinate(sde.ys), by_coordinate(ode.ys)  # (t, d, n)
        mu = m[:, None] * e1  # (t, d)
        sd = jnp.broadcast_to(jnp.sqrt(s)[:, None], mu.shape)
        null = mu[None, :, :, None] + sd[None, :, :, None] * jax.random.normal(k2, (2, cfg.null_pairs, len(ts), d, n), dtype)
        out = {
            "ks": jnp.max(ks_two_sample(a, b), axis=-1),
            "ks_sde": jnp.max(ks_normal(a, mu, sd), axis=-1),
            "ks_ode": jnp.max(ks_normal(b, mu, sd), axis=-1),
            "tv": jnp.max(tv_histogram(a, b, cfg.bins), axis=-1),
            "tv_null": jnp.max(tv_histogram(null[0], null[1], cfg.bins), axis=-1),  # (pair, t)
            "ode_map_error": jnp.max(jnp.abs(ode.ys - exact_map), axis=(-2, -1)),
        }
        xw = cfg.m0 * e1 + jnp.sqrt(s0) * jax.random.normal(jax.random.fold_in(k0, 1), (cfg.paths, d), dtype)
        phis, statuses = [], [sde.status, ode.status]
        for method in WEAK_METHODS:
            row = []
            for K in cfg.steps:
                sol = solve_langevin(U, xw, np.array([0.0, cfg.T]), nu=nu, key=k3, dt=cfg.T / K, method=method, brownian="tree")
                row.append(jnp.sum(sol.ys[-1] ** 2, axis=-1))
                statuses.append(sol.status)
            phis.append(jnp.stack(row))
        out["phi"] = jnp.stack(phis)  # (scheme, K, path)
        worst = jnp.max(jnp.stack(statuses))
        out["status"] = with_finiteness(worst, *out.values())
        return out

    return cell


def coords(cfg: Config):
    return {
        "t": time_grid(cfg.T, cfg.n_times),
        "pair": np.arange(cfg.null_pairs),
        "scheme": np.asarray(WEAK_METHODS),  # not "method": that is a keyword of xarray's sel
        "K": np.asarray(cfg.steps, int),
        "path": np.arange(cfg.paths),
    }


def _cells(ds):
    for d in ds["d"].values:
        for n in ds["n"].values:
            for th in ds["theta"].values:
                for nu in ds["nu"].values:
                    for s0 in ds["spread"].values:
                        yield int(d), int(n), float(th), float(nu), float(s0), ds.sel(d=d, n=n, theta=th, nu=nu, spread=s0)


def weak_differences(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step-doubling differences Δ_K = mean(φ_K − φ_2K) and their standard errors, from per-path φ of shape (K, particle)."""
    diff = phi[:-1] - phi[1:]
    return diff.mean(axis=-1), diff.std(axis=-1, ddof=1) / math.sqrt(diff.shape[-1])


def weak_slope(phi: np.ndarray, hs: np.ndarray, *, bootstrap: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float, float]:
    """Slope of log|Δ_K| against log h (h the coarser step of each doubling) and its percentile
    bootstrap 95% interval, resampling paths (particles) jointly across K."""
    diff = phi[:-1] - phi[1:]  # (K − 1, N)
    x = np.log(hs[:-1])

    def slope(means):
        y = np.log(np.abs(means))
        xc = x - x.mean()
        return (y - y.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)

    rng = np.random.default_rng(seed)
    N = diff.shape[-1]
    boots = np.empty(bootstrap)
    for i in range(0, bootstrap, 100):  # (100, K − 1, N) gathers at a time
        idx = rng.integers(0, N, (min(100, bootstrap - i), N))
        boots[i : i + len(idx)] = slope(diff[:, idx].mean(axis=-1).T)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(slope(diff.mean(axis=-1))), float(lo), float(hi)


def _em_second_moment(m0, s0, theta, nu, d, h, K):
    m, s = theory.em_ou_moments(m0, s0, theta, nu, h, K)
    return m**2 + d * s


def plot(ds, cfg, outdir):
    t = ds["t"].values
    fig, axes = new_figure(1, 3, size=(3.9, 3.1))
    hs = cfg.T / ds["K"].values
    for k, (d, n, th, nu, s0, c) in enumerate(_cells(ds)):
        col = f"C{k % 10}"
        label = f"d={d} θ={th:g} ν={nu:g} s₀={s0:g}"
        axes[0][0].plot(t, c["ks"].values, "o-", ms=3, color=col, label=label)
        axes[0][1].plot(t, c["tv"].values, "o-", ms=3, color=col)
        null = c["tv_null"].values
        axes[0][1].fill_between(t, null.min(axis=0), null.max(axis=0), color=col, alpha=0.15)
        for method in ds["scheme"].values:
            D, _ = weak_differences(np.asarray(c["phi"].sel(scheme=method).values, float))
            axes[0][2].loglog(hs[:-1], np.abs(D), "o-" if method == "euler" else "s--", ms=3, color=col, label=f"{method}" if k == 0 else None)
    crit = ks_critical(0.01, int(ds["n"].values.max()), int(ds["n"].values.max()))
    axes[0][0].axhline(crit, color="k", ls=":", lw=1, label="KS critical value (1%)")
    axes[0][0].set_title("KS(ODE, SDE) over time", fontsize=9)
    axes[0][1].set_title(f"TV(ODE, SDE), {cfg.bins} bins; band: independent exact samples", fontsize=8)
    h_ref = np.array([hs[-2], hs[0]])
    axes[0][2].loglog(h_ref, 0.5 * h_ref, "k:", lw=1, label="slope 1")
    axes[0][2].loglog(h_ref, 0.05 * h_ref**2, "k-.", lw=1, label="slope 2")
    axes[0][2].set_title(r"weak error $|E\,\varphi(X^{K}) - E\,\varphi(X^{2K})|$", fontsize=9)
    axes[0][2].set_xlabel("h = T/K")
    for ax in axes[0][:2]:
        ax.set_xlabel("t")
    axes[0][0].legend(fontsize=6)
    axes[0][2].legend(fontsize=6)
    fig.suptitle("PF-ODE / SDE parity (same start, exact Gaussian score) and weak orders (step doubling)")
    return [save_figure(fig, outdir, "pf_ode_parity")]


def checks(ds, cfg):
    out = []
    t = ds["t"].values
    cells = list(_cells(ds))
    hs = cfg.T / ds["K"].values
    tests = sum(d for d, *_ in cells) * (len(t) - 1)
    alpha = 0.01 / max(1, tests)
    k_null = ds.sizes["pair"]
    alpha_tv = 0.01 / max(1, len(cells) * (len(t) - 1))
    z_tv = float(stats.t.ppf(1.0 - alpha_tv / 2.0, k_null - 1) * math.sqrt(1.0 + 1.0 / k_null))
    flow, ks_pair, ks_exact, tv, chain, em_slope, shark_slope, unresolved = [], [], [], [], [], [], [], []
    tol_map = 1e3 * max(cfg.rtol, float(np.finfo(cfg.dtype).eps))
    for d, n, th, nu, s0, c in cells:
        where = f"d={d} n={n} θ={th:g} ν={nu:g} s₀={s0:g}"
        err = float(c["ode_map_error"].max())
        flow.append((err, f"{where}: max |x_ODE − closed-form map| = {err:.2e}"))
        crit2 = ks_critical(alpha, n, n)
        ks = c["ks"].values[1:]
        ks_pair.append((float(ks.max()) / crit2, f"{where}: max KS = {ks.max():.4f} vs critical {crit2:.4f}"))
        # the EM chain's exact Gaussian law against the continuous one: the scheme's own KS distance
        steps = np.round(t / cfg.dt)
        m_h, s_h = theory.em_ou_moments(cfg.m0, s0, th, nu, cfg.dt, steps)
        m_c, s_c = np.asarray(theory.ou_mean(cfg.m0, th, t)), np.asarray(theory.ou_variance(s0, th, nu, t))
        grid = np.linspace(-8, 8, 4001)
        bias = np.array([np.max(np.abs(ndtr((m_c[i] + math.sqrt(s_c[i]) * grid - m_h[i]) / math.sqrt(s_h[i])) - ndtr(grid))) for i in range(len(t))])
        crit1 = ks_critical(alpha, n)
        for name, allowance in (("ks_sde", bias), ("ks_ode", np.zeros_like(bias))):
            v = c[name].values[1:]
            ks_exact.append((float(np.max(v - allowance[1:])) / crit1, f"{where} {name}: max {v.max():.4f} vs critical {crit1:.4f} (+ scheme bias ≤ {allowance.max():.1e})"))
        null = c["tv_null"].values[:, 1:]
        z = (c["tv"].values[1:] - null.mean(axis=0)) / np.maximum(null.std(axis=0, ddof=1), 1e-12)
        tv.append((float(z.max()), f"{where}: worst TV {c['tv'].values[1:].max():.3f}, null {null.mean():.3f} ± {null.std():.3f} (z = {z.max():.2f})"))
        phi = {m: np.asarray(c["phi"].sel(scheme=m).values, float) for m in ds["scheme"].values}
        D, se = weak_differences(phi["euler"])
        exact = np.array([_em_second_moment(cfg.m0, s0, th, nu, d, cfg.T / K, K) for K in ds["K"].values])
        zc = np.abs(D - (exact[:-1] - exact[1:])) / np.maximum(se, 1e-300)
        chain.append((float(zc.max()), f"{where}: Δ_K = {np.array2string(D, precision=5)} vs exact chain {np.array2string(exact[:-1] - exact[1:], precision=5)}"))
        for method, order, rows in (("euler", 1.0, em_slope), ("shark", 2.0, shark_slope)):
            Dm, sem = weak_differences(phi[method])
            if np.any(np.abs(Dm) <= 4 * sem):
                unresolved.append(f"{method} {where}")
                continue
            p, lo, hi = weak_slope(phi[method], hs)
            rows.append((abs(p - order), f"{where}: slope {p:.3f} [{lo:.3f}, {hi:.3f}]"))
    score, detail = worst_case(flow)
    out.append(compare("PF-ODE solve equals the closed-form Gaussian flow map", "x(t) = m(t) + √(s(t)/s₀)(x₀ − m₀)", 0.0, score, tol_map, f"Tsit5 at rtol {cfg.rtol:g}: global error ≤ 10³·rtol", mode="le", detail=detail))
    score, detail = worst_case(ks_pair)
    out.append(compare("ODE and SDE ensembles share their marginals (KS)", "seed 003 Thm 6.2 (PF-ODE / SDE duality)", 1.0, score, 0.0, f"KS ≤ two-sample critical value at family-wise 1% (α = {alpha:.1e} per test)", mode="le", detail=detail))
    score, detail = worst_case(ks_exact)
    out.append(compare("each ensemble has the exact Gaussian marginal (KS)", "Fokker–Planck: N(m(t), s(t)I)", 1.0, score, 0.0, "one-sample KS − the EM chain's exact KS bias ≤ critical value", mode="le", detail=detail))
    score, detail = worst_case(tv)
    out.append(compare("ODE and SDE ensembles share their marginals (TV)", "seed 003 Fig. 2 left (histogram TV)", 0.0, score, z_tv, f"(TV(ODE, SDE) − null mean)/null sd ≤ the t_{k_null - 1} prediction bound {z_tv:.2f} (family-wise 1%)", mode="le", detail=detail))
    score, detail = worst_case(chain)
    out.append(compare("Euler–Maruyama weak differences equal the exact chain's", "AR(1) chain moments (theory.em_ou_moments)", 0.0, score, 4.0, "z ≤ 4 at every K", mode="le", detail=detail))
    note = f"; unresolved (some |Δ_K| ≤ 4 SE), not fitted: {', '.join(unresolved)}" if unresolved else ""
    if em_slope:
        score, detail = worst_case(em_slope)
        out.append(compare("Euler–Maruyama has weak order 1", "seed 003 §8.4 (slope near first order)", 0.0, score, 0.2, "|slope of log|Δ_K| vs log h − 1| ≤ 0.2 (95% bootstrap CI in detail)", mode="le", detail=detail + note))
    if shark_slope:
        score, detail = worst_case(shark_slope)
        out.append(compare("ShARK has weak order 2 (additive noise)", "Foster–dos Reis–Strange 2023", 0.0, score, 0.3, "|slope − 2| ≤ 0.3 (95% bootstrap CI in detail)", mode="le", detail=detail + note))
    return out


STUDY = Study(
    name="pf-ode-parity",
    title="Probability-flow ODE against the SDE: marginal parity (KS/TV) and weak orders",
    source="OTVIEW Thm 6.2 and §8.4 Fig. 2 (on particles, with the exact OU score)",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={
        "ks": ("t",),
        "ks_sde": ("t",),
        "ks_ode": ("t",),
        "tv": ("t",),
        "tv_null": ("pair", "t"),
        "ode_map_error": ("t",),
        "phi": ("scheme", "K", "path"),
    },
    coords=coords,
    plot=plot,
    checks=checks,
    output_attrs={
        "ks": {"long_name": "two-sample KS distance between the SDE and PF-ODE ensembles (max over coordinates)"},
        "ks_sde": {"long_name": "KS distance of the SDE ensemble to the exact marginal"},
        "ks_ode": {"long_name": "KS distance of the PF-ODE ensemble to the exact marginal"},
        "tv": {"long_name": "histogram TV between the SDE and PF-ODE ensembles"},
        "tv_null": {"long_name": "histogram TV between two independent exact samples (sampling floor)"},
        "ode_map_error": {"long_name": "max |PF-ODE solution − closed-form flow map|"},
        "phi": {"long_name": "|X_T|² per path, by scheme and step count K (same Brownian tree across K)"},
    },
)
