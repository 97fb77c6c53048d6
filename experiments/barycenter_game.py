"""barycenter-game — token clouds of N models coupled by a drift to their W₂ barycenter, and the LQ game's equilibrium.

Each cell runs N clouds (:mod:`sinkflow.dynamics.game`) with coupling strength λ, noise σ and a
coupling window, over ``realizations`` independent starts, in one of two systems:

- ``gauss1d``: f = 0 in R¹, player i's cloud drawn from N(i·``gap``, (1 + ``spread``·i)²); the
  barycenter is exact (sorted clouds), so the closed forms of :mod:`sinkflow.theory.game` apply;
- ``sphere``: SA players on S^{d−1} (uniform starts) with heterogeneous temperatures
  β_i = β(1 + ``hetero``(2i/(N − 1) − 1)) and, with ``masks=mixed``, every other player causal;
  the maps are entropic (ε = ``epsilon``, :mod:`sinkflow.transport`), onto the free-support
  barycenter (``target=barycenter``) or Σ_jw_jT_{i→j} (``target=pairwise``).

Windows: ``all`` (coupled on [0, T]), ``none``, or ``A-B[+C-D…]`` (coupled on [A, B] ∪ …; edges on
the step grid). Saved per realization, time and player: W₂²(μ_i, μ̄), the kinetic energy of the
control ½mean|u|², the accumulated cost J^i = ∫½|u|² + (b/2)W₂² dt, the first coordinate's mean
and standard deviation, and the cluster count at δ. Also the largest deviation of the final state
from an uncoupled solve (diffrax Heun, :func:`sinkflow.solve.solve`) restarted at the end of the
last window. Independently of the system, each cell solves the linear–quadratic game among its N
players (1-D particles, cost ½|u|² + (b/2)W₂²(μ_i, μ̄)) by the damped forward–backward sweep of
:mod:`sinkflow.equilibrium` at K and 2K steps and saves the equilibrium feedback gain P̂(t).

Checks
- *relaxation* (gauss1d, σ = 0, coupled throughout): Σw_iW₂²(μ_i, μ̄) equals the Heun recursion
  of its exact decay, D₀·R(−λh)^{2k} with R(z) = 1 + z + z²/2 (the sorted dynamics are linear, so
  this is the scheme's exact output), to 1e-9 relative; R^{2k} against e^{−2λt} is the scheme's
  error, printed. The barycenter's mean Σw_im_i is conserved (its spread is too, as the sorted
  average q̄; the players' sample σ_i are not exactly linear in it, so Σw_iσ_i is left to the next
  check).
- *Gaussian moments* (gauss1d): means and standard deviations against
  :func:`theory.relaxation_1d` (with noise: its ODE), z ≤ 5 with the sampling SEs σ/√n and σ/√(2n)
  (Bonferroni over the ~10³ comparisons of the small preset).
- *cost*: J^i(T) = (λ² + b)/2·W₂²_i(0)(1 − e^{−2λT})/(2λ) (gauss1d, σ = 0, coupled throughout), as
  Heun's stages and the trapezoid rule evaluate it (W₂² is W_k and (1 − λh)²W_k at the two stages),
  to 1e-9 relative; the distance to the continuous value is printed.
- *windows* (σ = 0): outside the last window each cloud moves by its own field alone: max
  deviation from the uncoupled solve ≤ 1e-9 (float64; the same Heun steps in another code path).
- *LQ equilibrium*: P̂ against the N-player open-loop Riccati gain √c·tanh(√c(T − t)),
  c = b(1 − 1/N): error at 2K ≤ 1e-3 and the observed order log₂(err_K/err_2K) within 0.3 of 2; and
  with ≥ 2 values of N, the slope of log|P̂_N(0) − P_∞(0)| against log N equals that of the
  closed form (→ −1: the N-player equilibrium approaches the mean-field one like 1/N) to 0.05.
- *(reported)* sphere: final dispersion, the time to consensus (Σw_iW₂² ≤ ``consensus`` and every
  player with the same cluster count), cluster counts and costs, per (λ, β, N, σ, window, target).

Saddle windows (``saddle:W``, seed 000 §4.1: couple "just at saddle points of the entropy
landscape"): an uncoupled pilot run from the same start and noise records the mean
Kozachenko–Leonenko entropy of the clouds; the window of width W is centred at the interior save
time of least |dH/dt| (central differences), a critical point of the entropy along the flow.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from sinkflow import theory
from sinkflow.checks import compare, worst_case
from sinkflow.dynamics.attention import attention_field, sa
from sinkflow.dynamics.game import TARGETS, Game, Player, check_windows, solve_game, window_gates
from sinkflow.entropy import kl_entropy
from sinkflow.equilibrium import feedback_gain, forward_backward, lq_damping
from sinkflow.observables import cluster_count
from sinkflow.options import float_dtype, time_grid
from sinkflow.plots import new_figure, save_figure
from sinkflow.solve import SolverConfig, solve, with_finiteness
from sinkflow.sphere import normalize, uniform
from sinkflow.study import Study, StudyConfig, param, require
from sinkflow.transport import OT, sorted_barycenter

SYSTEMS = ("gauss1d", "sphere")
MASKS = ("full", "mixed")


def parse_window(spec: str, T: float):
    """``all`` → None (coupled throughout), ``none`` → (), ``A-B+C-D`` → ((A, B), (C, D)), ``saddle:W`` → W (validated)."""
    if spec == "all":
        return None
    if spec == "none":
        return ()
    if spec.startswith("saddle:"):
        try:
            width = float(spec.split(":", 1)[1])
        except ValueError:
            width = float("nan")
        if not 0 < width <= T:
            raise ValueError(f"--window {spec!r}: saddle:W needs a width 0 < W ≤ T = {T:g}.")
        return width
    try:
        pairs = [tuple(float(v) for v in part.split("-")) for part in spec.split("+")]
    except ValueError:
        raise ValueError(f"--window {spec!r}: use all, none, saddle:W or A-B[+C-D…] with numbers A < B in [0, T].") from None
    return check_windows(pairs, T)


@dataclasses.dataclass(frozen=True)
class Config(StudyConfig):
    system: tuple = param(SYSTEMS, "gauss1d (f = 0 in R¹, exact barycenter) or sphere (SA players, entropic maps)", swept=True, static=True, kind=str, choices=SYSTEMS)
    N: tuple = param((2, 4), "players (clouds)", swept=True, static=True, kind=int, lo=2)
    lam: tuple = param((0.0, 1.0), "coupling strength λ", swept=True, kind=float, lo=0.0)
    sigma: tuple = param((0.0,), "noise amplitude σ (σ dW per coordinate; tangent on the sphere)", swept=True, kind=float, lo=0.0)
    window: tuple = param(("all",), "coupling windows: all, none, A-B[+C-D…], or saddle:W (width W around the entropy saddle of an uncoupled pilot run)", swept=True, static=True, kind=str)
    target: tuple = param(("pairwise",), "what the drift maps onto (sphere): barycenter or pairwise", swept=True, static=True, kind=str, choices=TARGETS)
    beta: tuple = param((2.0,), "base inverse temperature β of the SA players", swept=True, kind=float, lo=0.0)
    consensus: float = param(0.02, "consensus: dispersion Σw_iW₂² ≤ this and equal cluster counts", kind=float, lo=0.0, open="lo")
    hetero: float = param(0.5, "temperature spread: β_i = β(1 + hetero(2i/(N − 1) − 1))", kind=float, lo=0.0, hi=1.0, open="hi")
    masks: str = param("full", "full, or mixed (every other SA player causal)", kind=str, choices=MASKS)
    n: int = param(16, "tokens per cloud", kind=int, lo=2)
    d: int = param(3, "dimension of the sphere's ambient space", kind=int, lo=2)
    gap: float = param(1.0, "gauss1d: mean of player i is i·gap", kind=float)
    spread: float = param(0.5, "gauss1d: standard deviation of player i is 1 + spread·i", kind=float, lo=0.0)
    b: float = param(1.0, "running-cost weight b of (b/2)W₂²", kind=float, lo=0.0)
    epsilon: float = param(0.1, "entropic ε of the sphere's maps (squared chordal units; costs ≤ 4)", kind=float, lo=0.0, open="lo")
    bary_iterations: int = param(10, "target=barycenter: warm fixed-point iterations per evaluation (it converges linearly; the last step is saved as barycenter_change)", kind=int, lo=1)
    bary_tol: float = param(1e-3, "target=barycenter: fixed-point tolerance max|ΔX̄|", kind=float, lo=0.0, open="lo")
    T: float = param(4.0, "final time", kind=float, lo=0.0, open="lo")
    n_times: int = param(21, "save times in [0, T]", kind=int, lo=2)
    dt: float = param(0.05, "time step (stochastic Heun)", kind=float, lo=0.0, open="lo")
    delta: float = param(0.05, "cluster threshold: tokens with ⟨x_i, x_j⟩ ≥ 1 − δ are linked", kind=float, lo=0.0, hi=2.0, open="lo")
    realizations: int = param(4, "independent starts per cell", kind=int, lo=1)
    eq_steps: int = param(100, "time steps K of the equilibrium sweep (also run at 2K)", kind=int, lo=4)
    eq_particles: int = param(16, "particles per player of the equilibrium sweep", kind=int, lo=2)
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        for spec in self.window:
            w = parse_window(spec, self.T)
            if isinstance(w, tuple) and w:
                window_gates(w, self.T, self.dt)
        steps = self.T / self.dt
        require(abs(steps - round(steps)) < 1e-9, f"--dt {self.dt} must divide --T {self.T}.")
        per = round(steps) / (self.n_times - 1)
        require(abs(per - round(per)) < 1e-9, f"the {self.n_times} save times must lie on the step grid: (n_times − 1) = {self.n_times - 1} must divide T/dt = {round(steps)}.")
        require(self.n >= 4 or "gauss1d" not in self.system, "--n must be ≥ 4 for gauss1d (standard deviations).")

    def solver_provenance(self) -> dict:
        return {"game": f"stochastic Heun (Heun at σ = 0), dt={self.dt}, projected on the sphere", "maps": f"exact sorted (gauss1d); ott Sinkhorn ε={self.epsilon}, threshold 1e-3 (sphere); barycenter fixed point ≤ {self.bary_iterations} warm iterations to {self.bary_tol:g}", "equilibrium": f"damped forward–backward sweep, K={self.eq_steps} and {2 * self.eq_steps}"}


PRESETS = {
    "tiny": {"N": (2,), "lam": (1.0,), "sigma": (0.0,), "window": ("all", "saddle:1"), "n": 8, "T": 2.0, "n_times": 5, "dt": 0.1, "realizations": 2, "eq_steps": 40, "eq_particles": 6},
    "small": {"N": (2, 4), "lam": (0.0, 1.0), "sigma": (0.0, 0.3), "window": ("all", "0-2", "saddle:1"), "n": 24, "realizations": 4},
    "paper": {"N": (2, 4, 8), "lam": (0.0, 0.5, 1.0, 2.0), "sigma": (0.0, 0.1, 0.3), "beta": (1.0, 4.0, 9.0), "window": ("all", "0-1", "0-2", "saddle:2", "none"), "target": ("barycenter", "pairwise"), "n": 64, "T": 8.0, "n_times": 41, "realizations": 16, "eq_steps": 200},
}


def _players(cfg: Config, N: int, beta):
    """SA players with β_i = β(1 + hetero(2i/(N − 1) − 1)) (β traced) and, with masks=mixed, every other one causal."""
    if cfg.masks == "full":
        masks = [None] * N
    else:
        causal = jnp.tril(jnp.ones((cfg.n, cfg.n), bool))
        masks = [causal if i % 2 else None for i in range(N)]
    return tuple(Player(attention_field, sa(beta * (1.0 + cfg.hetero * (2.0 * i / (N - 1) - 1.0)), mask=m)) for i, m in enumerate(masks))


def saddle_gates(H, ts, width: float, T: float, dt: float):
    """Per-step gates of the window of ``width`` centred at the interior save time where |dH/dt| is smallest
    (H: entropy at the save times ``ts``; central differences), clipped to [0, T]; and that time."""
    ts = jnp.asarray(ts, H.dtype)
    rate = jnp.abs((H[2:] - H[:-2]) / (ts[2:] - ts[:-2]))
    center = ts[1:-1][jnp.argmin(rate)]
    mid = (jnp.arange(int(round(T / dt)), dtype=H.dtype) + 0.5) * dt
    return (jnp.abs(mid - center) <= 0.5 * width).astype(H.dtype), center


def _lq_gain(cfg: Config, N: int, K: int, dtype):
    w = jnp.full(N, 1.0 / N, dtype)
    X0 = (jnp.arange(N, dtype=dtype)[:, None, None] * cfg.gap + (1.0 + cfg.spread * jnp.arange(N, dtype=dtype))[:, None, None] * jnp.linspace(-1.0, 1.0, cfg.eq_particles, dtype=dtype)[None, :, None])
    cost = lambda X: 0.5 * cfg.b * sorted_barycenter(X, w).w2
    c = cfg.b * (1.0 - 1.0 / N)
    eq = forward_backward(cost, X0, cfg.T, K, damping=lq_damping(c, cfg.T), tol=1e-12, max_iterations=5000)
    E = jax.vmap(lambda X: X - sorted_barycenter(X, w).maps)(eq.X)
    return feedback_gain(eq.U, E), eq.iterations, eq.residual


def make_cell(cfg: Config, static: dict):
    system, N, spec, target = static["system"], static["N"], static["window"], static["target"]
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_times)
    windows = parse_window(spec, cfg.T)
    w = jnp.full(N, 1.0 / N, dtype)
    saddle = isinstance(windows, float)
    if system == "gauss1d":
        ot, manifold, d = None, None, 1
    else:
        ot, manifold, d = OT(epsilon=cfg.epsilon, threshold=1e-3, barycenter_iterations=cfg.bary_iterations, barycenter_tol=cfg.bary_tol), "sphere", cfg.d
    n_max = max(cfg.N)
    # where the window check applies: the state after the last fixed window is compared with an uncoupled solve
    restart = cfg.T if (windows is None or saddle) else max((b for _, b in windows), default=0.0)
    heun = SolverConfig(method="heun", dt=cfg.dt)

    def start(key):
        if system == "gauss1d":
            i = jnp.arange(N, dtype=dtype)[:, None, None]
            return i * cfg.gap + (1.0 + cfg.spread * i) * jax.random.normal(key, (N, cfg.n, 1), dtype)
        return uniform(key, (N, cfg.n), d, dtype)

    def observable(X):
        x1 = X[..., 0]
        clusters = cluster_count(X, cfg.delta) if system == "sphere" else jnp.zeros(X.shape[:-2], dtype)
        return {"mean": jnp.mean(x1, axis=-1), "sd": jnp.std(x1, axis=-1), "clusters": clusters}

    def uncoupled_from(X, t0, players):
        """Each player's own field alone from time t0 to T (diffrax Heun, another code path)."""
        if restart >= cfg.T - 1e-12:
            return X
        tt = np.array([t0, cfg.T])
        if system == "gauss1d":
            return X
        out = [solve(p.field, X[i], tt, p.params, config=heun, project=normalize).ys[-1] for i, p in enumerate(players)]
        return jnp.stack(out)

    def entropy(X):
        return jnp.mean(kl_entropy(X, k=1, metric="geodesic" if system == "sphere" else "euclidean"))

    def one(lam, sigma, beta, key):
        players = (Player(None),) * N if system == "gauss1d" else _players(cfg, N, beta)
        fixed = () if saddle else windows
        game = Game(players=players, weights=w, lam=lam, sigma=sigma, b=jnp.asarray(cfg.b, dtype), windows=fixed, ot=ot, manifold=manifold, target=target)
        k0, k1 = jax.random.split(key)
        X0 = start(k0)
        gates, center = None, jnp.asarray(jnp.nan if not saddle else 0.0, dtype)
        if saddle:  # an uncoupled pilot run (same noise) locates the entropy saddle of the mean cloud entropy
            pilot = solve_game(eqx.tree_at(lambda g: g.lam, game, jnp.zeros((), dtype)), X0, ts, dt=cfg.dt, key=k1, observable=entropy)
            gates, center = saddle_gates(pilot.ys, ts, windows, cfg.T, cfg.dt)
        sol = solve_game(game, X0, ts, dt=cfg.dt, key=k1, observable=observable, gates=gates)
        # the state at the end of the last window, by the same solver, then the uncoupled reference
        if 0.0 < restart < cfg.T - 1e-12:
            grid = np.round(np.arange(0.0, restart + 0.5 * cfg.dt, cfg.dt) / cfg.dt) * cfg.dt
            head = solve_game(game, X0, np.array([0.0, grid[-1]]), dt=cfg.dt, key=k1)
            ref = uncoupled_from(head.final, grid[-1], players)
            win_err = jnp.max(jnp.abs(sol.final - ref))
        else:
            win_err = jnp.zeros((), dtype)
        return sol, win_err, center

    def cell(values, key):
        lam, sigma, beta = (values[k].astype(dtype) for k in ("lam", "sigma", "beta"))
        keys = jax.random.split(key, cfg.realizations)
        sol, win_err, center = jax.vmap(lambda k: one(lam, sigma, beta, k))(keys)
        out = {
            "w2": sol.w2,
            "kinetic": sol.kinetic,
            "cost": sol.cost,
            "mean": sol.ys["mean"],
            "sd": sol.ys["sd"],
            "clusters": sol.ys["clusters"],
            "window_error": win_err,
            "saddle_time": jnp.nan_to_num(center, nan=-1.0),
            "barycenter_converged": sol.converged.astype(dtype),
            "barycenter_change": sol.barycenter_change,
        }
        gains = [_lq_gain(cfg, N, k * cfg.eq_steps, dtype) for k in (1, 2)]
        out["eq_gain"] = jnp.stack([gains[0][0], gains[1][0][::2]])  # (refinement, t_eq) on the coarse grid
        out["eq_iterations"] = jnp.stack([g[1] for g in gains]).astype(dtype)
        out["eq_residual"] = jnp.stack([g[2] for g in gains])
        pad = n_max - N  # cells with fewer players fill the player axis with zeros (read only [:N])
        for name in ("w2", "kinetic", "cost", "mean", "sd", "clusters"):
            out[name] = jnp.pad(out[name], ((0, 0), (0, 0), (0, pad)))
        out["status"] = with_finiteness(jnp.max(sol.status), *out.values())
        return out

    return cell


def coords(cfg: Config):
    return {
        "realization": np.arange(cfg.realizations),
        "t": time_grid(cfg.T, cfg.n_times),
        "player": np.arange(max(cfg.N)),
        "refinement": np.array([1, 2]),
        "t_eq": np.linspace(0.0, cfg.T, cfg.eq_steps + 1),
    }


def _cells(ds):
    """(system, N, λ, σ, β, window, target, cell dataset) for every cell."""
    for system in ds["system"].values:
        for N in ds["N"].values:
            for lam in ds["lam"].values:
                for sigma in ds["sigma"].values:
                    for beta in ds["beta"].values:
                        for win in ds["window"].values:
                            for target in ds["target"].values:
                                c = ds.sel(system=system, N=N, lam=lam, sigma=sigma, beta=beta, window=win, target=target)
                                yield str(system), int(N), float(lam), float(sigma), float(beta), str(win), str(target), c


def consensus_time(w2, clusters, w, t, level: float):
    """First save time at which Σw_iW₂²(μ_i, μ̄) ≤ level and (sphere) every player has the same cluster count; inf if never.
    w2, clusters: (t, N) of one realization."""
    D = w2 @ w
    same = np.all(clusters == clusters[:, :1], axis=1)
    hit = np.nonzero((D <= level) & same)[0]
    return float(t[hit[0]]) if hit.size else math.inf


def _ok(c) -> bool:
    return int(c["status"]) == 0


def plot(ds, cfg, outdir):
    t = ds["t"].values
    fig, axes = new_figure(1, 4, size=(3.8, 3.1))
    ax_d, ax_c, ax_k, ax_p = axes[0]
    for k, (system, N, lam, sigma, beta, win, target, c) in enumerate(_cells(ds)):
        if not _ok(c):
            continue  # failed cells are listed by the status check, never drawn as data
        col = f"C{k % 10}"
        w = np.full(N, 1.0 / N)
        D = (c["w2"].values[..., :N] @ w).mean(axis=0)
        label = f"{system} N={N} λ={lam:g} σ={sigma:g}" + (f" β={beta:g}" if system == "sphere" else "") + f" {win}"
        ax_d.semilogy(t, np.maximum(D, 1e-300), "-" if system == "sphere" else "o-", ms=2, color=col, label=label)
        if system == "gauss1d" and sigma == 0 and win == "all" and lam > 0:
            ax_d.semilogy(t, D[0] * np.exp(-2 * lam * t), "k:", lw=1)
        if system == "sphere":
            ax_c.plot(t, c["clusters"].values[..., :N].mean(axis=(0, 2)), color=col, label=label)
        ax_k.bar(k, float(c["cost"].values[:, -1, :N].mean()), color=col)
    ax_d.set_title(r"dispersion $\sum_i w_i W_2^2(\mu_i, \bar\mu)$ (dotted: $e^{-2\lambda t}$)", fontsize=8)
    ax_d.set_xlabel("t")
    ax_d.legend(fontsize=5)
    ax_c.set_title(f"sphere: mean cluster count per player (δ = {cfg.delta})", fontsize=8)
    ax_c.set_xlabel("t")
    ax_k.set_title(r"mean player cost $J^i(T)$ per cell", fontsize=8)
    ax_k.set_xlabel("cell")
    te = ds["t_eq"].values
    for N in ds["N"].values:
        c = ds.sel(N=N).isel(system=0, lam=0, sigma=0, beta=0, window=0, target=0)
        ax_p.plot(te, c["eq_gain"].values[1], label=f"sweep N={int(N)}")
        ax_p.plot(te, theory.riccati_gain(te, cfg.b, cfg.T, 1.0 / int(N)), "k:", lw=1)
    ax_p.plot(te, theory.riccati_gain(te, cfg.b, cfg.T), "k--", lw=1, label="mean field")
    ax_p.set_title("LQ equilibrium feedback gain P(t) (dotted: Riccati)", fontsize=8)
    ax_p.set_xlabel("t")
    ax_p.legend(fontsize=6)
    fig.suptitle("Barycenter game: clouds coupled by λ(T_i − id) toward their W₂ barycenter")
    return [save_figure(fig, outdir, "barycenter_game")]


def checks(ds, cfg):
    out = []
    t = ds["t"].values
    h = cfg.dt
    k_steps = np.round(t / h)
    relax, conserved, moments, costs, windows, lq, reported = [], [], [], [], [], [], []
    z_bound = 5.0
    for system, N, lam, sigma, beta, win, target, c in _cells(ds):
        if not _ok(c):
            continue
        where = f"{system} N={N} λ={lam:g} σ={sigma:g} β={beta:g} window={win} target={target}"
        w = np.full(N, 1.0 / N)
        w2 = c["w2"].values[..., :N]  # (r, t, N)
        mean, sd = c["mean"].values[..., :N], c["sd"].values[..., :N]
        if sigma == 0 and win not in ("all", "none") and not win.startswith("saddle"):  # with noise the reference would need the same increments
            err = float(c["window_error"].max())
            windows.append((err, f"{where}: max |X_T − uncoupled solve| = {err:.1e}"))
        if system == "gauss1d":
            if sigma == 0 and win == "all":
                D = w2 @ w  # (r, t)
                R = 1.0 - lam * h + 0.5 * (lam * h) ** 2
                pred = D[:, :1] * R ** (2 * k_steps)
                rel = float(np.max(np.abs(D - pred) / np.maximum(pred, 1e-300)))
                scheme = float(np.max(np.abs(R ** (2 * k_steps) - np.exp(-2 * lam * t))))
                relax.append((rel, f"{where}: |D/Heun recursion − 1| ≤ {rel:.1e}; scheme vs e^(−2λt): {scheme:.1e}"))
                drift = float(np.max(np.abs(mean @ w - (mean @ w)[:, :1])))
                conserved.append((drift, f"{where}: barycenter mean drift {drift:.1e}"))
                if lam > 0:
                    J = c["cost"].values[:, -1, :N]
                    W0 = w2[:, 0, :]
                    K = int(round(cfg.T / h))
                    # the scheme's exact output: stage states have W₂² = W_k and (1 − λh)²W_k, W_k = W₀R^{2k}
                    Jd = 0.5 * h * 0.5 * (lam**2 + cfg.b) * (1 + (1 - lam * h) ** 2) * W0 * np.sum(R ** (2 * np.arange(K)))
                    Jc = 0.5 * (lam**2 + cfg.b) * W0 * (1 - math.exp(-2 * lam * cfg.T)) / (2 * lam)
                    r = float(np.max(np.abs(J / Jd - 1)))
                    costs.append((r, f"{where}: max |J/J_scheme − 1| = {r:.1e}; scheme vs continuous closed form {float(np.max(np.abs(Jd / Jc - 1))):.1e}"))
            zs = []
            for r in range(mean.shape[0] if win in ("all", "none") else 0):
                m_th, s_th = theory.relaxation_1d(mean[r, 0], sd[r, 0], w, lam if win == "all" else 0.0, t, noise=sigma)
                se_m = np.maximum(s_th, 1e-12) / math.sqrt(cfg.n)
                se_s = np.maximum(s_th, 1e-12) / math.sqrt(2 * cfg.n)
                if sigma == 0:  # the clouds' own sample moments are the start: only the scheme error and non-Gaussian quantile shape remain
                    zs.append(float(np.max(np.abs(mean[r] - m_th) / se_m)))
                else:
                    zs.append(float(np.max(np.abs(mean[r, 1:] - m_th[1:]) / se_m[1:])))
                zs.append(float(np.max(np.abs(sd[r, 1:] - s_th[1:]) / se_s[1:])))
            if zs:
                moments.append((max(zs), f"{where}: max z = {max(zs):.2f}"))
        else:
            D = (w2 @ w).mean(axis=0)
            tc = [consensus_time(w2[r], c["clusters"].values[r, :, :N], w, t, cfg.consensus) for r in range(w2.shape[0])]
            reached = [x for x in tc if math.isfinite(x)]
            when = f"consensus in {len(reached)}/{len(tc)} runs" + (f" (median t = {np.median(reached):.2f})" if reached else "")
            saddle = f", saddle windows at t = {np.round(c['saddle_time'].values, 2).tolist()}" if win.startswith("saddle") else ""
            reported.append(f"{where}: dispersion {D[0]:.3f} → {D[-1]:.3f}, {when}, clusters/player {c['clusters'].values[:, -1, :N].mean():.2f}, J {c['cost'].values[:, -1, :N].mean():.3f}, barycenters converged {c['barycenter_converged'].values.mean():.2f}{saddle}")
    if relax:
        score, detail = worst_case(relax)
        out.append(compare("dispersion decays by the Heun recursion of e^(−2λt) (gauss1d, f = 0)", "MATH.md §5 closed form", 0.0, score, 1e-9, "relative error ≤ 1e-9 (linear sorted dynamics: the recursion is the scheme's exact output)", mode="le", detail=detail))
        score, detail = worst_case(conserved)
        out.append(compare("the barycenter's mean is conserved", "Σw_im_i constant", 0.0, score, 1e-9, "|drift| ≤ 1e-9", mode="le", detail=detail))
    if moments:
        score, detail = worst_case(moments)
        out.append(compare("Gaussian means and standard deviations follow the closed form", "theory.relaxation_1d", 0.0, score, z_bound, f"z ≤ {z_bound} with SEs σ/√n, σ/√(2n)", mode="le", detail=detail))
    if costs:
        score, detail = worst_case(costs)
        out.append(compare("player cost J^i(T) equals its closed form", "(λ² + b)/2·W₂²(0)(1 − e^(−2λT))/(2λ), as the scheme computes it", 0.0, score, 1e-9, "relative error ≤ 1e-9 against the Heun/trapezoid value of the closed form (its distance to the continuous one in detail)", mode="le", detail=detail))
    if windows:
        score, detail = worst_case(windows)
        out.append(compare("outside the windows each cloud moves by its own field", "uncoupled solve from the window's end", 0.0, score, 1e-9, "max deviation ≤ 1e-9 (float64)", mode="le", detail=detail))
    # the LQ equilibrium
    te = ds["t_eq"].values
    gaps = []
    for N in ds["N"].values:
        c = ds.sel(N=N).isel(system=0, lam=0, sigma=0, beta=0, window=0, target=0)
        if not _ok(c):
            continue
        P = theory.riccati_gain(te, cfg.b, cfg.T, 1.0 / int(N))
        g = c["eq_gain"].values
        e1, e2 = float(np.max(np.abs(g[0, :-1] - P[:-1]))), float(np.max(np.abs(g[1, :-1] - P[:-1])))
        order = math.log2(e1 / e2) if e2 > 0 else float("inf")
        lq.append((max(e2 / 1e-3, abs(order - 2.0) / 0.3), f"N={int(N)}: error {e1:.1e} (K) → {e2:.1e} (2K), order {order:.2f}, sweeps {c['eq_iterations'].values.astype(int).tolist()}"))
        gaps.append((int(N), abs(float(g[1, 0]) - float(theory.riccati_gain(0.0, cfg.b, cfg.T)))))
    if lq:
        score, detail = worst_case(lq)
        out.append(compare("forward–backward sweep reproduces the N-player Riccati gain", "P_N = √c tanh(√c(T − t)), c = b(1 − 1/N)", 0.0, score, 1.0, "error ≤ 1e-3 at 2K and |order − 2| ≤ 0.3 (score: the worse of the two ratios)", mode="le", detail=detail))
    if len(gaps) >= 2:
        Ns = np.array([g[0] for g in gaps], float)
        y = np.log([g[1] for g in gaps])
        slope = float(np.polyfit(np.log(Ns), y, 1)[0])
        th = np.log([abs(theory.riccati_gain(0.0, cfg.b, cfg.T, 1 / N) - theory.riccati_gain(0.0, cfg.b, cfg.T)) for N in Ns])
        slope_th = float(np.polyfit(np.log(Ns), th, 1)[0])
        out.append(compare("the N-player equilibrium approaches the mean-field one", "|P_N(0) − P(0)| ~ 1/N", slope_th, slope, 0.05, "slope of log-gap vs log N within 0.05 of the closed form's", mode="abs", detail=f"N = {Ns.astype(int).tolist()}, gaps {[f'{g[1]:.2e}' for g in gaps]}, closed-form slope {slope_th:.3f}"))
    if reported:
        out.append(compare("(reported) sphere: consensus of heterogeneous SA players", "Koß agenda §4.1", 0.0, 0.0, 0.0, "measurements, no pass mark", mode="le", detail="; ".join(reported)))
    return out


STUDY = Study(
    name="barycenter-game",
    title="N token clouds coupled by a drift to their Wasserstein barycenter; the LQ game's equilibrium",
    source="Koß 2025 §2.5 (N-player game), Koß agenda §4.1 (barycenter drift); CD14 (free-support barycenters)",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={
        "w2": ("realization", "t", "player"),
        "kinetic": ("realization", "t", "player"),
        "cost": ("realization", "t", "player"),
        "mean": ("realization", "t", "player"),
        "sd": ("realization", "t", "player"),
        "clusters": ("realization", "t", "player"),
        "window_error": ("realization",),
        "saddle_time": ("realization",),
        "barycenter_converged": ("realization",),
        "barycenter_change": ("realization",),
        "eq_gain": ("refinement", "t_eq"),
        "eq_iterations": ("refinement",),
        "eq_residual": ("refinement",),
    },
    coords=coords,
    plot=plot,
    checks=checks,
    output_attrs={
        "w2": {"long_name": "W₂²(μ_i, μ̄) of each player's cloud to the barycenter"},
        "kinetic": {"long_name": "½·mean|u|² of the coupling control"},
        "cost": {"long_name": "accumulated cost J^i = ∫½|u|² + (b/2)W₂² dt"},
        "mean": {"long_name": "mean of the first coordinate of each cloud"},
        "sd": {"long_name": "standard deviation of the first coordinate of each cloud"},
        "clusters": {"long_name": "cluster count of each cloud at δ (sphere; 0 for gauss1d)"},
        "window_error": {"long_name": "max |final state − uncoupled solve from the last window's end|"},
        "saddle_time": {"long_name": "centre of the saddle:W window (time of least |dH/dt| of an uncoupled pilot run); −1 for fixed windows"},
        "barycenter_converged": {"long_name": "1 if every barycenter/plan of the run met its tolerance"},
        "barycenter_change": {"long_name": "largest last fixed-point step of the barycenter over the run"},
        "eq_gain": {"long_name": "LQ equilibrium feedback gain P̂(t) from the forward–backward sweep at K and 2K steps"},
        "eq_iterations": {"long_name": "sweeps to convergence"},
        "eq_residual": {"long_name": "last relative control change of the sweep"},
    },
)
