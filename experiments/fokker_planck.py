"""fokker-planck — Langevin particle clouds against the Fokker–Planck closed forms (MATH.md §4).

Each cell is one (system, d, n, θ, ν): ``realizations`` independent clouds of n particles moved
by dX = −∇U dt + √(2ν) dW (Euler–Maruyama, :func:`sinkflow.dynamics.langevin.solve_langevin`,
per-step Brownian increments), saving per time and cloud the mean along e₁, the per-coordinate
variance, the Kozachenko–Leonenko entropy Ĥ (Euclidean in R^d, geodesic on the sphere) and the
free energy F̂ = mean U − νĤ.

- ``ou``: U = θ|x|²/2 in R^d from N(m₀e₁, s₀I), s₀ = ``spread``. The law stays Gaussian: m(t) = m₀e^{−θt},
  s(t) = ν/θ + (s₀ − ν/θ)e^{−2θt}, H = (d/2)log(2πe s), F = (θ/2)(m² + d s) − νH
  (:mod:`sinkflow.theory.fokker_planck`).
- ``sphere``: U = −θ⟨e₁, x⟩ on S^{d−1} from a cap of half-angle ``spread`` around e₁: the Gibbs law
  is von Mises–Fisher with κ = θ/ν, E⟨X, e₁⟩ → I_{d/2}(κ)/I_{d/2−1}(κ); at θ = 0 the mean decays
  exactly like e^{−(d−1)νt} (first spherical harmonic).

Checks (each cell's error bars from its ``realizations`` clouds)
- *OU moments*: the mean and variance of every cloud-averaged save against the Euler–Maruyama
  chain at the run's dt (an independent computation of the simulated scheme's exact law),
  within 4 standard errors; the continuous closed forms within 4 SE plus the chain's known
  O(dt) distance to them.
- *OU entropy and free energy*: Ĥ and F̂ against the Gaussian closed forms within 4 SE plus the
  k-NN estimator's bias, bounded by 0.05·d (MATH.md: ≲ 0.03 at N = 2·10⁴, d ≤ 5; it grows as N
  falls — the measured worst is reported).
- *diffusive vs contractive*: dH/dt = d(ν/s − θ) has the sign of ν/θ − s₀ at the start, so Ĥ rises
  from below the stationary variance and falls from above it; checked on the first save interval
  for cells whose predicted change exceeds 4 SE.
- *free energy decreases*: F̂ falls on every save interval where the exact decrease exceeds 4
  standard errors of the difference (near equilibrium dF/dt → 0 sinks below the estimator noise, and a
  per-interval test there only counts false alarms).
- *sphere*: at θ = 0 the fitted decay rate of E⟨X, e₁⟩ is (d − 1)ν within 4 standard errors (from
  Var⟨X, e₁⟩ ≤ 1 over the R·n particles, by weighted least squares) plus the projected scheme's
  O(ν²dt); for θ > 0 the
  last-save mean is the vMF ratio within 4 SE plus the projected scheme's O(ν·dt), in cells whose
  mean has settled (moved by ≤ 2 SE over the last quarter of the run; the others are listed).

- *JKO* (ou cells): the entropic grid JKO (:func:`sinkflow.jko.entropic_jko`) of the x₁ marginal
  (the OU coordinates decouple, so it is the 1-D Fokker–Planck flow of U = θx²/2) run for
  jko_T/τ steps at every τ in ``tau``, with blur γ = ``jko_blur``·τ² and grid step √γ/2: each
  step adds ≈ γ/2 of variance, so over jko_T/τ steps the blur is O(τ) like the JKO error itself
  (measured at γ = 0.5τ²: slope 0.97 over τ = 0.2, 0.1, 0.05, costing 0.8, 3.3 and 49 s per cell
  on 2 cores: the cost grows like τ⁻⁴ (grid M ∝ 1/τ, M² per iteration, iterations and steps ∝ 1/τ),
  so the small preset uses τ = 0.4, 0.2 and the paper preset adds 0.1). Checked: every step's loop converged; the error of (mean,
  variance) against the exact law at jko_T falls at first order in τ (slope within 0.25 of 1);
  the SDE particles and the finest JKO agree within 4 SE plus each one's known distance to the
  exact law (the EM chain's and the JKO's). On the sphere the JKO outputs are NaN (not defined).

OU error bars come from all R·n particles of the Gaussian cloud (mean: s/(R n); variance:
s√(2/(R n))); entropy and free energy, which have no such formula, from the spread of the R clouds.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow import theory
from sinkflow.checks import compare, worst_case
from sinkflow.dynamics.langevin import Linear, Quadratic, solve_langevin
from sinkflow.entropy import kl_entropy
from sinkflow.estimators import decay_rate, log_log_slope
from sinkflow.jko import entropic_jko
from sinkflow.options import float_dtype, time_grid
from sinkflow.plots import new_figure, save_figure
from sinkflow.sphere import cone
from sinkflow.study import Study, StudyConfig, param, require

SYSTEMS = ("ou", "sphere")


@dataclasses.dataclass(frozen=True)
class Config(StudyConfig):
    system: tuple = param(SYSTEMS, "ou: U = θ|x|²/2 in R^d; sphere: U = −θ⟨e₁, x⟩ on S^{d−1}", swept=True, static=True, kind=str, choices=SYSTEMS)
    d: tuple = param((2, 3), "dimension (R^d, or S^{d−1} ⊂ R^d)", swept=True, static=True, kind=int, lo=2)
    n: tuple = param((2000,), "particles per cloud", swept=True, static=True, kind=int, lo=50)
    theta: tuple = param((0.0, 1.0), "potential strength θ (OU needs θ > 0)", swept=True, kind=float, lo=0.0)
    nu: tuple = param((0.2, 1.0), "diffusivity ν", swept=True, kind=float, lo=0.0, open="lo")
    spread: tuple = param((0.1, 2.0), "start spread: OU variance s₀ (below and above ν/θ: diffusive and contractive), sphere cap half-angle around e₁", swept=True, kind=float, lo=0.0, hi=math.pi, open="lo")
    m0: float = param(1.0, "OU start: mean m₀ along e₁", kind=float)
    T: float = param(6.0, "final time", kind=float, lo=0.0, open="lo")
    n_times: int = param(41, "save times in [0, T]", kind=int, lo=3)
    dt: float = param(0.005, "Euler–Maruyama step", kind=float, lo=0.0, open="lo")
    realizations: int = param(4, "independent clouds per cell (error bars)", kind=int, lo=2)
    tau: tuple = param((0.4, 0.2), "JKO steps τ (ou cells: the entropic grid JKO of the x₁ marginal)", kind=float, lo=0.0, open="lo")
    jko_T: float = param(1.2, "time at which the JKO iterates are compared (a save time, a multiple of every τ)", kind=float, lo=0.0, open="lo")
    jko_blur: float = param(1.0, "entropic blur γ = jko_blur·τ² (γ ∝ τ² keeps the blur's extra variance first order in τ); grid step √γ/2", kind=float, lo=0.0, open="lo")
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        require(self.dt < self.T, f"--dt must be smaller than --T, got dt={self.dt}, T={self.T}.")
        require(max(self.theta) * self.dt < 1.0, f"--dt {self.dt}: Euler–Maruyama needs θ·dt < 1 for every θ (largest θ = {max(self.theta)}).")
        step = self.T / (self.n_times - 1)
        require(self.jko_T <= self.T + 1e-12 and abs(self.jko_T / step - round(self.jko_T / step)) < 1e-9, f"--jko-T {self.jko_T}: must be a save time in [0, T] (a multiple of T/(n_times − 1) = {step:g}).")
        require(all(abs(self.jko_T / t - round(self.jko_T / t)) < 1e-9 for t in self.tau), f"--tau {self.tau}: every τ must divide --jko-T {self.jko_T}.")
        require(len(self.tau) >= 2 and list(self.tau) == sorted(set(self.tau), reverse=True), f"--tau must be at least two decreasing values (a slope in τ), got {self.tau}.")

    def solver_provenance(self) -> dict:
        return {"method": "euler-maruyama", "dt": self.dt, "brownian": "steps (fold_in(key, step))"}


PRESETS = {
    "tiny": {"system": ("ou", "sphere"), "d": (2,), "n": (400,), "theta": (0.0, 1.0), "nu": (0.5,), "T": 1.0, "n_times": 6, "dt": 0.01, "realizations": 3, "tau": (0.5, 0.25), "jko_T": 1.0},
    "small": {},
    "paper": {"d": (2, 3, 5), "n": (2000, 8000), "theta": (0.0, 0.5, 1.0, 2.0), "nu": (0.1, 0.5, 1.0), "T": 5.0, "n_times": 51, "realizations": 8, "tau": (0.4, 0.2, 0.1)},
}


def make_cell(cfg: Config, static: dict):
    system, d, n = static["system"], static["d"], static["n"]
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_times)
    R = cfg.realizations
    e1 = jnp.zeros(d, dtype).at[0].set(1.0)
    metric = "geodesic" if system == "sphere" else "euclidean"
    # the JKO grids (ou cells): static, wide enough for every cell's x₁ law up to jko_T (6 sd: 2·10⁻⁹ of the mass beyond)
    theta_pos = min([t for t in cfg.theta if t > 0], default=1.0)
    sd = math.sqrt(max(max(cfg.spread), max(cfg.nu) / theta_pos, max(cfg.spread) + 2 * max(cfg.nu) * cfg.jko_T))
    half = abs(cfg.m0) + 6.0 * sd
    grids = []
    for tau in cfg.tau:
        h = math.sqrt(cfg.jko_blur) * tau / 2.0
        grids.append((tau, cfg.jko_blur * tau**2, h, jnp.arange(-half, half + h / 2, h, dtype=dtype)))

    def jko(theta, nu, spread):
        """Mean and variance of the x₁ marginal after jko_T/τ entropic JKO steps, per τ."""
        means, variances, changes = [], [], []
        for tau, gamma, h, x in grids:
            p0 = jnp.exp(-((x - cfg.m0) ** 2) / (2.0 * spread))
            r = entropic_jko(p0 / jnp.sum(p0), x[:, None], 0.5 * theta * x**2, nu=nu, tau=tau, gamma=gamma, steps=int(round(cfg.jko_T / tau)), volume=h, tol=1e-9)
            q = r.masses[-1]
            m = q @ x
            means.append(m)
            variances.append(q @ (x - m) ** 2)
            changes.append(jnp.max(r.change))
        return jnp.stack(means), jnp.stack(variances), jnp.stack(changes)

    def cell(values, key):
        theta, nu, spread = values["theta"].astype(dtype), values["nu"].astype(dtype), values["spread"].astype(dtype)
        k0, k1 = jax.random.split(key)
        if system == "ou":
            x0 = cfg.m0 * e1 + jnp.sqrt(spread) * jax.random.normal(k0, (R, n, d), dtype)
            U = Quadratic(A=theta * jnp.eye(d, dtype=dtype), m=jnp.zeros(d, dtype))
        else:
            x0 = cone(k0, (R, n), d, spread, dtype)
            U = Linear(a=theta * e1)

        def observable(t, x, pot):
            u = jax.vmap(jax.vmap(pot))(x)  # (R, n)
            H = kl_entropy(x, metric=metric)  # (R,)
            var = jnp.mean(jnp.var(x, axis=1), axis=-1)
            return {"mean": jnp.mean(x[..., 0], axis=1), "var": var, "entropy": H, "free_energy": jnp.mean(u, axis=1) - nu * H}

        sol = solve_langevin(U, x0, ts, nu=nu, key=k1, dt=cfg.dt, manifold="sphere" if system == "sphere" else None, observable=observable, brownian="steps")
        out = {k: jnp.moveaxis(v, 0, -1) for k, v in sol.ys.items()}  # (R, t)
        if system == "ou":
            out["jko_mean"], out["jko_var"], out["jko_change"] = jko(theta, nu, spread)
        else:  # the grid JKO is for R^d: not defined on the sphere
            out["jko_mean"] = out["jko_var"] = out["jko_change"] = jnp.full((len(cfg.tau),), jnp.nan, dtype)
        return out | {"status": sol.status}

    return cell


def coords(cfg: Config):
    return {"realization": np.arange(cfg.realizations), "t": time_grid(cfg.T, cfg.n_times), "tau": np.asarray(cfg.tau, float)}


def _stats(a):
    """Mean over realizations and its standard error; ``a`` has realizations on axis −2."""
    a = np.asarray(a, float)
    return a.mean(axis=-2), a.std(axis=-2, ddof=1) / math.sqrt(a.shape[-2])


def _ou_cells(ds):
    if "ou" not in ds["system"].values:
        return
    for d in ds["d"].values:
        for n in ds["n"].values:
            for th in ds["theta"].values:
                if th <= 0:
                    continue
                for nu in ds["nu"].values:
                    for s0 in ds["spread"].values:
                        yield int(d), int(n), float(th), float(nu), float(s0), ds.sel(system="ou", d=d, n=n, theta=th, nu=nu, spread=s0)


def plot(ds, cfg, outdir):
    t = ds["t"].values
    paths = []
    if "ou" in ds["system"].values:
        fig, axes = new_figure(1, 3, size=(3.8, 3.0))
        for k, (d, n, th, nu, s0, c) in enumerate(_ou_cells(ds)):
            col = f"C{k % 10}"
            s = np.asarray(theory.ou_variance(s0, th, nu, t))
            m = np.asarray(theory.ou_mean(cfg.m0, th, t))
            v, _ = _stats(c["var"].values)
            H, _ = _stats(c["entropy"].values)
            F, _ = _stats(c["free_energy"].values)
            axes[0][0].plot(t, s, color=col, lw=1)
            axes[0][0].plot(t[::3], v[::3], "o", ms=3, color=col, label=f"d={d} θ={th:g} ν={nu:g} s₀={s0:g}")
            for j, tau in enumerate(c["tau"].values):  # the grid JKO of the x₁ marginal at jko_T, one marker per τ
                axes[0][0].plot([cfg.jko_T], [float(c["jko_var"].values[j])], marker="x^v"[j % 3], ms=5, color=col, label=f"JKO τ={tau:g}" if k == 0 else None)
            axes[0][1].plot(t, np.asarray(theory.ou_entropy(s, d)), color=col, lw=1)
            axes[0][1].plot(t[::3], H[::3], "o", ms=3, color=col)
            axes[0][2].plot(t, np.asarray(theory.ou_free_energy(m[:, None] * np.eye(d)[0], s, th, nu, d)), color=col, lw=1)
            axes[0][2].plot(t[::3], F[::3], "o", ms=3, color=col)
        for ax, name in zip(axes[0], ("variance s(t)", "entropy H(t)", "free energy F(t)")):
            ax.set_title(f"OU: {name}", fontsize=9)
            ax.set_xlabel("t")
        axes[0][0].legend(fontsize=6)
        fig.suptitle("Langevin particles (dots) against the Fokker–Planck closed forms (lines)")
        paths.append(save_figure(fig, outdir, "fokker_planck_ou"))
    if "sphere" in ds["system"].values:
        fig, axes = new_figure(1, 1, size=(4.6, 3.4))
        ax = axes[0][0]
        for k, d in enumerate(ds["d"].values):
            for nu in ds["nu"].values:
                for th in ds["theta"].values:
                    c = ds.sel(system="sphere", d=d, theta=th, nu=nu, n=ds["n"].values.max(), spread=ds["spread"].values.min())
                    mu, _ = _stats(c["mean"].values)
                    line = ax.plot(t, mu, "o", ms=3, label=f"d={int(d)} θ={th:g} ν={nu:g}")[0]
                    if th == 0:
                        ax.plot(t, mu[0] * np.asarray(theory.sphere_mean_decay(t, nu, int(d))), color=line.get_color(), lw=1)
                    else:
                        ax.axhline(float(theory.vmf_mean_cosine(th / nu, int(d))), color=line.get_color(), lw=1, ls="--")
        ax.set_xlabel("t")
        ax.set_ylabel(r"$E\langle X_t, e_1\rangle$")
        ax.set_title("sphere: e^{−(d−1)νt} decay (θ = 0) and the vMF mean (dashed)", fontsize=9)
        ax.legend(fontsize=6)
        paths.append(save_figure(fig, outdir, "fokker_planck_sphere"))
    return paths


def checks(ds, cfg):
    t = ds["t"].values
    out = []
    mom, ent, dich, mono = [], [], [], []
    for d, n, th, nu, s0, c in _ou_cells(ds):
        where = f"d={d} n={n} θ={th:g} ν={nu:g} s₀={s0:g}"
        m_ch, s_ch = theory.em_ou_moments(cfg.m0, s0, th, nu, cfg.dt, np.round(t / cfg.dt))  # the scheme's exact law
        m_ex, s_ex = np.asarray(theory.ou_mean(cfg.m0, th, t)), np.asarray(theory.ou_variance(s0, th, nu, t))
        # standard errors from all R·n particles of the Gaussian cloud: mean s/(R n), variance s·√(2/(R n))
        # (a few clouds' spread would be a noisy error bar: 3 clouds give 4 "SE" only ~94% coverage)
        v_emp = np.asarray(c["var"].values, float).mean(axis=-2)
        N = n * c.sizes["realization"]
        for name, emp, chain, exact, se in (
            ("mean", c["mean"].values, m_ch, m_ex, np.sqrt(v_emp / N)),
            ("var", c["var"].values, s_ch, s_ex, v_emp * np.sqrt(2.0 / N)),
        ):
            mu = np.asarray(emp, float).mean(axis=-2)
            se = np.maximum(se, 1e-12)
            z_chain = np.abs(mu - chain) / se
            excess = np.abs(mu - exact) - (4 * se + np.abs(chain - exact))
            k = int(np.argmax(z_chain))
            mom.append((float(z_chain.max()) - 4.0, f"{where} {name}: z = {z_chain[k]:.2f} against the EM chain at t={t[k]:.2f}; worst excess over the closed form {excess.max():.2e}"))
            mom.append((float(excess.max()) / max(1e-12, float(se.max())), f"{where} {name} vs the continuous closed form"))
        H, seH = _stats(c["entropy"].values)
        F, seF = _stats(c["free_energy"].values)
        H_ex = np.asarray(theory.ou_entropy(s_ex, d))
        F_ex = np.asarray(theory.ou_free_energy(m_ex[:, None] * np.eye(d)[0], s_ex, th, nu, d))
        ent.append((float(np.max(np.abs(H - H_ex) - 4 * seH)), f"{where}: worst |Ĥ − H| = {np.max(np.abs(H - H_ex)):.3f}"))
        ent.append((float(np.max(np.abs(F - F_ex) - 4 * seF)) / max(nu, 1e-12), f"{where}: worst |F̂ − F| = {np.max(np.abs(F - F_ex)):.3f} (÷ν)"))
        dH = float(theory.ou_entropy_rate(s0, th, nu, d))
        change = H[1] - H[0]
        se_change = math.hypot(seH[0], seH[1])
        if abs(H_ex[1] - H_ex[0]) > 4 * se_change:
            dich.append((0.0 if np.sign(change) == np.sign(dH) else 1.0, f"{where}: predicted dH/dt(0) = {dH:+.3f}, measured ΔĤ = {change:+.3f} ± {se_change:.3f}"))
        # where the exact decrease over a save interval is resolved (> 4 SE of the difference), F̂ must fall
        se_diff = np.hypot(seF[1:], seF[:-1])
        resolved = -np.diff(F_ex) > 4 * se_diff
        bad = int(np.count_nonzero(np.diff(F)[resolved] >= 0))
        mono.append((float(bad), f"{where}: F̂ rose on {bad} of {int(resolved.sum())} resolved intervals"))
    if mom:
        score, detail = worst_case(mom)
        out.append(compare("OU mean and variance follow the closed forms", "Fokker–Planck (OU)", 0.0, score, 0.0, "z ≤ 4 against the EM chain at dt; excess over 4 SE + the chain's O(dt) distance to the continuous forms ≤ 0", mode="le", detail=detail))
        score, detail = worst_case(ent)
        out.append(compare("OU entropy and free energy", "Gaussian closed forms; Kozachenko–Leonenko", 0.0, score, 0.05 * max(ds["d"].values), "|Ĥ − H| − 4 SE ≤ k-NN bias bound 0.05·d (also for (F̂ − F)/ν)", mode="le", detail=detail))
        if dich:
            score, detail = worst_case(dich)
            out.append(compare("entropy rises iff s₀ < ν/θ (diffusive vs contractive)", "dH/dt = d(ν/s − θ)", 0.0, score, 0.0, "sign of the first change of Ĥ = sign of ν/θ − s₀, where resolved", mode="le", detail=f"{len(dich)} cells; " + detail))
        score, detail = worst_case(mono)
        out.append(compare("free energy decreases", "dF/dt = −∫ρ|∇U + ν∇log ρ|² ≤ 0", 0.0, score, 0.0, "F̂ falls on every save interval whose exact decrease exceeds 4 SE (near equilibrium the decrease is below the noise)", mode="le", detail=detail))
    jko_conv, jko_sde, jko_solved = [], [], []
    i_T = int(np.argmin(np.abs(t - cfg.jko_T)))
    taus = ds["tau"].values
    for d, n, th, nu, s0, c in _ou_cells(ds):
        where = f"d={d} n={n} θ={th:g} ν={nu:g} s₀={s0:g}"
        m_ex, s_ex = float(theory.ou_mean(cfg.m0, th, cfg.jko_T)), float(theory.ou_variance(s0, th, nu, cfg.jko_T))
        jm, jv = c["jko_mean"].values, c["jko_var"].values
        jko_solved.append((float(np.max(c["jko_change"].values)), where))
        err = np.abs(jm - m_ex) + np.abs(jv - s_ex)
        slope = log_log_slope(taus, err)
        jko_conv.append((abs(slope - 1.0), f"{where}: error at T = {cfg.jko_T:g} {np.array2string(err, precision=4)} over τ = {list(map(float, taus))}, slope {slope:.3f}"))
        # the SDE particles against the finest JKO, within 4 SE plus both methods' known distances to the exact law
        N = n * c.sizes["realization"]
        v_emp = float(np.asarray(c["var"].values, float)[:, i_T].mean())
        mu_emp = float(np.asarray(c["mean"].values, float)[:, i_T].mean())
        m_ch, s_ch = theory.em_ou_moments(cfg.m0, s0, th, nu, cfg.dt, round(cfg.jko_T / cfg.dt))
        for name, emp, se, jk, chain, exact in (("mean", mu_emp, math.sqrt(v_emp / N), jm[-1], m_ch, m_ex), ("var", v_emp, v_emp * math.sqrt(2.0 / N), jv[-1], s_ch, s_ex)):
            excess = abs(emp - jk) - (4 * se + abs(jk - exact) + abs(chain - exact))
            jko_sde.append((excess / se, f"{where} {name}: SDE {emp:.4f} ± {se:.4f}, JKO(τ = {taus[-1]:g}) {jk:.4f}, exact {exact:.4f}"))
    if jko_conv:
        score, detail = worst_case(jko_solved)
        out.append(compare("JKO steps converged", "entropic JKO (Peyré 2015), Sinkhorn-like loop", 0.0, score, 1e-9, "final L1 change of every step's loop ≤ 1e-9", mode="le", detail=detail))
        score, detail = worst_case(jko_conv)
        out.append(compare("JKO iterates converge to Fokker–Planck at first order in τ", "Jordan–Kinderlehrer–Otto 1998", 0.0, score, 0.25, "|slope of log(|m − m(T)| + |s − s(T)|) vs log τ − 1| ≤ 0.25 (blur γ ∝ τ² keeps it first order)", mode="le", detail=detail))
        score, detail = worst_case(jko_sde)
        out.append(compare("JKO and the SDE agree", "two discretisations of one Fokker–Planck flow", 0.0, score, 0.0, "|SDE − JKO| ≤ 4 SE + each one's distance to the exact law", mode="le", detail=detail))
    if "sphere" in ds["system"].values:
        rates, vmf, unsettled = [], [], []
        for d in ds["d"].values:
            for n in ds["n"].values:
                for nu, th, sp in ((a, b, c) for a in ds["nu"].values for b in ds["theta"].values for c in ds["spread"].values):
                    c = ds.sel(system="sphere", d=d, n=n, theta=th, nu=nu, spread=sp)
                    mu, se = _stats(c["mean"].values)
                    where = f"d={int(d)} n={int(n)} θ={th:g} ν={nu:g} cap={sp:g}"
                    if th == 0:
                        # Var⟨X, e₁⟩ ≤ 1 over the R·n particles: SE(log mean) ≤ 1/(mean·√(R n)); the fit is
                        # weighted by it (an unweighted fit gives the noisy saves near the window's floor full
                        # weight, and its error is then larger than this bound says)
                        N = int(n) * c.sizes["realization"]
                        fit = decay_rate(t, mu, (0.1, 1.0), min_points=3, sigma=1.0 / (np.abs(mu) * math.sqrt(N) + 1e-300), drift=False)
                        pred = (int(d) - 1) * nu
                        tt, w = t[fit.mask], (mu[fit.mask] ** 2) * N
                        se_rate = 1.0 / math.sqrt(max(1e-300, float(np.sum(w * (tt - np.sum(w * tt) / np.sum(w)) ** 2))))
                        z = max(0.0, abs(fit.rate - pred) - 2.0 * pred * nu * cfg.dt) / se_rate
                        rates.append((z, f"{where}: rate {fit.rate:.4f} ± {se_rate:.4f} vs (d−1)ν = {pred:.4f} over {fit.points} saves (z = {z:.2f})"))
                    else:
                        pred = float(theory.vmf_mean_cosine(th / nu, int(d)))
                        q = int(0.75 * (len(t) - 1))
                        if abs(mu[-1] - mu[q]) > 2 * math.hypot(se[-1], se[q]):
                            unsettled.append(where)  # still relaxing over the last quarter of the run
                            continue
                        vmf.append((abs(mu[-1] - pred) - 4 * se[-1] - 2 * nu * cfg.dt, f"{where}: E⟨X_T, e₁⟩ = {mu[-1]:.4f} ± {se[-1]:.4f} vs vMF {pred:.4f}"))
        if rates:
            score, detail = worst_case(rates)
            out.append(compare("sphere, θ = 0: E⟨X_t, e₁⟩ decays at (d − 1)ν", "Δ_S first harmonic", 0.0, score, 4.0, "z = (|λ̂ − (d−1)ν| − the scheme's 2(d−1)ν²dt) / SE(λ̂) ≤ 4", mode="le", detail=detail))
        if vmf:
            score, detail = worst_case(vmf)
            note = f"; not yet stationary (mean still moving over the last quarter), not checked: {', '.join(unsettled)}" if unsettled else ""
            out.append(compare("sphere, θ > 0: the stationary mean is von Mises–Fisher's", "Gibbs law e^{θ⟨e₁,x⟩/ν}", 0.0, score, 0.0, "|mean − I_{d/2}(κ)/I_{d/2−1}(κ)| ≤ 4 SE + 2ν·dt at T, for cells settled over the last quarter", mode="le", detail=detail + note))
    return out


STUDY = Study(
    name="fokker-planck",
    title="Langevin particles against the Fokker–Planck closed forms (OU, sphere, free energy)",
    source="Koß agenda §3.1 (free energy); JKO (Fokker–Planck as a Wasserstein gradient flow)",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={**{k: ("realization", "t") for k in ("mean", "var", "entropy", "free_energy")}, **{k: ("tau",) for k in ("jko_mean", "jko_var", "jko_change")}},
    coords=coords,
    plot=plot,
    checks=checks,
    output_attrs={
        "mean": {"long_name": "cloud mean of x₁ (sphere: of ⟨x, e₁⟩)"},
        "var": {"long_name": "per-coordinate variance of the cloud, averaged over coordinates"},
        "entropy": {"long_name": "Kozachenko–Leonenko entropy (k = 1; geodesic on the sphere)"},
        "free_energy": {"long_name": "F̂ = mean U − ν Ĥ"},
        "jko_mean": {"long_name": "mean of x₁ after jko_T/τ entropic grid JKO steps (ou; NaN on the sphere, where it is not defined)"},
        "jko_var": {"long_name": "variance of x₁ after jko_T/τ entropic grid JKO steps (ou; NaN on the sphere)"},
        "jko_change": {"long_name": "largest final L1 change of a JKO step's Sinkhorn loop (≤ 1e-9: converged)"},
        "t": {"long_name": "time", "units": "1"},
    },
)
