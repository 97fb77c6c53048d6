"""transport-diagnostics — seed 003's P0–P4 along attention trajectories (MATH.md §6; :mod:`sinkflow.diagnostics`).

Each cell runs one attention model (``sa``, ``usa``, ``sinkformer`` (Q = K = I, Sinkhorn to
``threshold``), ``causal`` (SA with the causal mask)) on ``realizations`` clouds of n tokens
uniform on S^{d−1}, as L projected-Euler layers on [0, T] for every L in ``layers`` (a layer is
x ← normalize(x + (T/L) f(x))), and once as the ODE (Tsit5, rtol 1e-10). A ``kick`` > 0 perturbs
every token of the layered runs independently at t = T/2 (x_i ← normalize(x_i + kick·ξ_i)): a
discontinuity in depth that the P0 gate must catch.

The attention rows read are p = softmax(z) of the logits z_ij = β⟨x_i, x_j⟩ (masked entries
−∞): the attention rows of SA and causal SA, the row-normalised kernel of USA and the Sinkformer
(the first half-step of Sinkhorn), as in the seed, which reads every attention layer through
softmax(z).

Saved per cell:
- per L: ``discrepancy`` = sup over save times, rows and clouds of ‖p(X_L(t)) − p(X(t))‖₁ (the
  finite-depth error of seed 003 Thm 5.1) and ``xi`` = Ξ_L (α₁ = α₂ = 1, max over clouds);
- per layer of the finest L: ``dz2`` = ‖Δz^{(l)}‖₂² and ``dzinf`` = ‖Δz^{(l)}‖_∞ (max over clouds),
  the mobility's mean trace and largest operator norm, the mean tail mass δ = 1 − max p, and the
  locking ratio ‖sm(z + Δz) − sm(z)‖₁ / (c(δ)‖Δz‖_∞ + ‖Δz‖_∞²) (max over rows and clouds;
  ≤ 1 is a theorem: c(δ) the sharp first-order constant, the square the Taylor remainder,
  since ‖d²softmax[h, h]‖₁ = 2Var_p(h) ≤ 2‖h‖_∞²);
- per save time (the ODE, first cloud): the mean Ollivier curvature κ of the attention rows
  over token pairs (geodesic ground cost), the rotational fraction of the field, and the EVI
  surrogate (:func:`sinkflow.diagnostics.evi_surrogate`): the Sinkhorn divergence of every row's
  measure Σ_jP_ijδ_{x_j(t)} to its final one, mean and sd over rows (seed 003 Fig. 7).

Checks
- *mobility*: ‖J‖_op ≤ ½ on every row of every layer.
- *P0 gate*: seed 003 App. K Algorithm 1 on ‖Δz^{(l)}‖₂ of the finest L, window ``window``, base
  threshold τ₀ = ``tau0_factor``·median_l ‖Δz^{(l)}‖₂² (the seed leaves τ₀ open; relative to the
  run's own median a smooth trajectory is not flagged, and a jump cannot raise its own threshold
  as it would raise a mean: with τ₀ ∝ S_L/L a single jump's severity is capped near 2). A cell with a severe violation (s > 2) **abstains**
  from P1–P2 (listed in the details). Checked: every kicked cell abstains and no unkicked cell
  does (a gate that never or always fires fails).
- *P1, finite depth (Thm 5.1)*: in cells that pass P0 and are in the continuum regime (the
  finest run's largest per-layer logit change max_l‖Δz‖∞ ≤ ``continuum``: the theorem's "Ξ_L
  small"), the discrepancy falls like Ξ_L, at first order in 1/L: slopes of log discrepancy and
  of log Ξ_L against log L over the two finest L within 0.25 of −1. Cells outside the regime
  are listed (USA at β = 2, T = 2 needs L ≫ 2e^β·T: measured slope −0.77 at L = 32 with
  max‖Δz‖∞ = 0.34).
- *P2, locking*: the ratio above ≤ 1 on every layer (non-abstained cells).
- *P4, rotation*: USA (V = I: Ẋ = n∇E_β) has rotational fraction ≤ 10⁻¹⁰ (round-off) and the
  Sinkformer (Q = K: a Wasserstein gradient flow, Sander et al. 2022 — here confirmed at the
  particle level) ≤ 10⁻⁶ (its Sinkhorn tolerance: measured 9·10⁻¹² at threshold 10⁻¹² on uniform
  tokens, 8·10⁻¹⁰ on clustered ones, 5·10⁻⁶ at threshold 10⁻⁶); SA and causal SA (n ≥ 3)
  ≥ 10⁻³ at every save.
- *P3, curvature*: seed 003's prediction that a higher temperature (smaller β) reduces the
  curvature gap 1 − κ, at t = 0 (uniform tokens): mean κ decreases with β for every model
  (softmax rows go from near-uniform, W₁ ≈ 0 and κ ≈ 1, to near point masses at the query's own
  token, W₁ ≈ d(i, i') and κ ≈ 0). Along the flow κ is reported only (clustered tokens make
  d(i, i') → 0 and the ratio ill-conditioned).
- *(reported) P3, EVI surrogate*: S_ε(ρ_i(t), ρ_i(T)) over the saves and on how many save
  intervals it decreases (the "proximal progress" signature). Eq. 22 itself needs an objective
  F_i and a drift term that the seed does not define for attention flows, so no pass mark.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow import diagnostics as dg
from sinkflow.attention import attention_matrix, logits
from sinkflow.checks import compare, worst_case
from sinkflow.dynamics.attention import attention_field, sa, sinkformer, usa
from sinkflow.estimators import log_log_slope
from sinkflow.options import float_dtype, time_grid
from sinkflow.plots import new_figure, save_figure
from sinkflow.solve import SolverConfig, solve, with_finiteness
from sinkflow.sphere import geodesic_distance, normalize, uniform
from sinkflow.study import Study, StudyConfig, param, require

MODELS = ("sa", "usa", "sinkformer", "causal")


@dataclasses.dataclass(frozen=True)
class Config(StudyConfig):
    model: tuple = param(MODELS, "attention flow: sa, usa, sinkformer (Q = K = I), causal (causal SA)", swept=True, static=True, kind=str, choices=MODELS)
    n: tuple = param((12,), "tokens", swept=True, static=True, kind=int, lo=3)
    d: tuple = param((6,), "dimension of the sphere's ambient space", swept=True, static=True, kind=int, lo=2)
    beta: tuple = param((1.0, 3.0), "inverse temperature β (τ = 1/β)", swept=True, kind=float, lo=0.0, open="lo")
    kick: tuple = param((0.0, 1.0), "per-token perturbation at t = T/2 in the layered runs (0: none)", swept=True, kind=float, lo=0.0)
    layers: tuple = param((16, 32, 64, 128), "layer counts L of the projected-Euler runs (multiples of n_saves − 1)", kind=int, lo=2)
    T: float = param(2.0, "depth (time) of the flow", kind=float, lo=0.0, open="lo")
    n_saves: int = param(9, "save times of the ODE comparison, curvature and rotation", kind=int, lo=3)
    realizations: int = param(4, "independent token clouds per cell", kind=int, lo=1)
    window: int = param(4, "window W of the BV detector", kind=int, lo=1)
    tau0_factor: float = param(4.0, "BV detector base threshold τ₀ as a multiple of the run's median ‖Δz‖₂²", kind=float, lo=1.0)
    threshold: float = param(1e-12, "Sinkhorn L1 marginal threshold (sinkformer)", kind=float, lo=0.0, open="lo")
    continuum: float = param(0.1, "continuum regime: the finest run's largest per-layer logit change max_l ‖Δz‖∞ at most this", kind=float, lo=0.0, open="lo")
    evi_eps: float = param(0.05, "entropic ε of the EVI surrogate's Sinkhorn divergences (squared chordal units)", kind=float, lo=0.0, open="lo")
    curvature_eps: float = param(1e-2, "entropic ε of the W₁ in the curvature, relative to the mean distance", kind=float, lo=0.0, open="lo")
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        k = self.n_saves - 1
        require(all(L % k == 0 for L in self.layers), f"--layers {self.layers}: every L must be a multiple of n_saves − 1 = {k} (saves on layer boundaries).")
        require(all(L % 2 == 0 for L in self.layers), f"--layers {self.layers}: every L must be even (the kick sits at t = T/2, a layer boundary).")
        require(len(self.layers) >= 2 and list(self.layers) == sorted(set(self.layers)), f"--layers must be at least two increasing values (a slope in L), got {self.layers}.")

    def solver_provenance(self) -> dict:
        return {"layers": f"projected Euler, L in {list(self.layers)}", "reference": "tsit5 rtol 1e-10 atol 1e-12, projected", "sinkhorn_threshold": self.threshold}


PRESETS = {
    "tiny": {"model": ("sa", "usa", "sinkformer"), "n": (5,), "d": (3,), "layers": (16, 32), "n_saves": 5, "realizations": 2, "T": 2.0, "beta": (1.0,)},
    "small": {},
    "paper": {"n": (16, 32), "d": (8, 32), "beta": (0.5, 1.0, 2.0, 4.0), "kick": (0.0, 0.5, 1.0), "layers": (16, 32, 64, 128, 256), "n_saves": 17, "realizations": 16},
}


def _params(model: str, beta, threshold: float):
    if model == "sa":
        return sa(beta)
    if model == "usa":
        return usa(beta)
    if model == "causal":
        return sa(beta, causal=True)
    return sinkformer(beta, threshold=threshold)


def make_cell(cfg: Config, static: dict):
    model, n, d = static["model"], static["n"], static["d"]
    dtype = float_dtype(cfg)
    ts = time_grid(cfg.T, cfg.n_saves)
    Ls = list(cfg.layers)
    R = cfg.realizations
    ode_cfg = SolverConfig(method="tsit5", dt=cfg.T / 100, rtol=1e-10, atol=1e-12)

    def rows(x, params):
        return jax.nn.softmax(logits(x, params), axis=-1)

    def layered(x0, params, L, kick, key):
        """States after every layer (L + 1, R, n, d), the kick applied at layer L/2."""
        h = cfg.T / L
        cfg_e = SolverConfig(method="euler", dt=h)
        half = np.linspace(0.0, cfg.T / 2, L // 2 + 1)
        first = solve(attention_field, x0, half, params, config=cfg_e, project=normalize).ys
        xm = normalize(first[-1] + kick * jax.random.normal(key, first[-1].shape, dtype))
        second = solve(attention_field, xm, half + cfg.T / 2, params, config=cfg_e, project=normalize).ys
        return jnp.concatenate([first, second[1:]], axis=0)

    def cell(values, key):
        beta, kick = values["beta"].astype(dtype), values["kick"].astype(dtype)
        params = _params(model, beta, cfg.threshold)
        k0, k1 = jax.random.split(key)
        x0 = uniform(k0, (R, n), d, dtype)
        ode = solve(attention_field, x0, ts, params, config=ode_cfg, project=normalize, batch_ndim=1)
        p_ode = rows(ode.ys, params)  # (t, R, n, n)
        disc, xis, statuses = [], [], [ode.status]
        for L in Ls:
            xs = layered(x0, params, L, kick, k1)
            p_L = rows(xs[:: L // (cfg.n_saves - 1)], params)
            disc.append(jnp.max(jnp.sum(jnp.abs(p_L - p_ode), axis=-1)))
            z = logits(xs, params)
            z = jnp.where(jnp.isfinite(z), z, 0.0)  # masked logits never move
            dz = jnp.diff(z, axis=0)  # (L, R, n, n)
            dzinf = jnp.max(jnp.abs(dz), axis=(-2, -1))  # (L, R)
            xis.append(jnp.max(jnp.max(dzinf, axis=0) + jnp.sum(dzinf**2, axis=0)))
            if L == Ls[-1]:
                finest, dz_f, dzinf_f = xs, dz, dzinf
        z_f = logits(finest, params)
        p_f = jax.nn.softmax(z_f, axis=-1)[:-1]  # rows before each layer's step (L, R, n, n)
        mob = dg.mobility_stats(p_f)
        ratio, c = dg.locking_ratio(jnp.where(jnp.isfinite(z_f[:-1]), z_f[:-1], -1e30), dz_f)
        row_inf = jnp.max(jnp.abs(dz_f), axis=-1)
        lock = jnp.max(ratio * row_inf / jnp.maximum(c * row_inf + row_inf**2, 1e-300), axis=(-2, -1))  # (L,)
        # curvature and rotation along the ODE (first cloud) at the save times
        xs0 = ode.ys[:, 0]
        W = attention_matrix(xs0, params)
        W = W / jnp.sum(W, axis=-1, keepdims=True)
        D = geodesic_distance(xs0[:, :, None, :], xs0[:, None, :, :])
        kappa = jax.vmap(lambda P, Dm: dg.ollivier_curvature(P, Dm, epsilon=cfg.curvature_eps))(W, D)
        rot = jax.vmap(lambda x: dg.rotational_fraction(attention_field, x, params))(xs0)
        evi = dg.evi_surrogate(W, xs0, epsilon=cfg.evi_eps, threshold=1e-3)  # (t, n): S_ε(ρ_i(t), ρ_i(T))
        out = {
            "discrepancy": jnp.stack(disc),
            "xi": jnp.stack(xis),
            "dz2": jnp.max(jnp.sum(dz_f**2, axis=(-2, -1)), axis=-1),
            "dzinf": jnp.max(dzinf_f, axis=-1),
            "mob_trace": jnp.mean(mob.trace, axis=(-2, -1)),
            "mob_op": jnp.max(mob.op_norm, axis=(-2, -1)),
            "tail": jnp.mean(1.0 - jnp.max(p_f, axis=-1), axis=(-2, -1)),
            "locking": lock,
            "curvature": jnp.nanmean(kappa, axis=(-2, -1)),
            "rotation": rot,
            "evi": jnp.mean(evi, axis=-1),
            "evi_sd": jnp.std(evi, axis=-1),
        }
        out["status"] = with_finiteness(jnp.max(jnp.stack(statuses)), *out.values())
        return out

    return cell


def coords(cfg: Config):
    return {"L": np.asarray(cfg.layers, int), "layer": np.arange(max(cfg.layers)), "t": time_grid(cfg.T, cfg.n_saves)}


def _cells(ds):
    for model in ds["model"].values:
        for n in ds["n"].values:
            for d in ds["d"].values:
                for beta in ds["beta"].values:
                    for kick in ds["kick"].values:
                        c = ds.sel(model=model, n=n, d=d, beta=beta, kick=kick)
                        if int(c["status"]) == 0:  # a failed cell has no data (the status check reports it)
                            yield str(model), int(n), int(d), float(beta), float(kick), c


def gate(c, cfg) -> tuple[bool, float]:
    """P0: (abstain?, worst severity) from Algorithm 1 on the finest run's ‖Δz‖₂."""
    dz2 = np.asarray(c["dz2"].values, np.float64)
    tau0 = cfg.tau0_factor * float(np.median(dz2))
    flags, severity, _ = dg.detect_bv_violations(np.sqrt(dz2), window=cfg.window, tau0=tau0)
    return bool(np.any(severity > 2.0)), float(severity.max())


def plot(ds, cfg, outdir):
    fig, axes = new_figure(2, 4, size=(3.9, 3.0))
    Ls = ds["L"].values
    lay = ds["layer"].values
    t = ds["t"].values
    for k, (model, n, d, beta, kick, c) in enumerate(_cells(ds)):
        col = f"C{MODELS.index(model)}"
        ls = "-" if kick == 0 else ":"
        label = f"{model} β={beta:g} kick={kick:g}"
        axes[0][0].loglog(Ls, c["discrepancy"].values, "o" + ls, color=col, ms=3, label=label)
        axes[0][1].semilogy(lay, c["dz2"].values, ls, color=col, lw=1)
        axes[0][2].plot(c["tail"].values, c["locking"].values, ".", color=col, ms=3)
        axes[1][0].plot(lay, c["mob_op"].values, ls, color=col, lw=1)
        axes[1][1].plot(t, c["curvature"].values, "o" + ls, color=col, ms=3)
        axes[1][2].semilogy(t, np.maximum(c["rotation"].values, 1e-17), "o" + ls, color=col, ms=3)
        e, sd = c["evi"].values, c["evi_sd"].values
        axes[0][3].plot(t, e, "o" + ls, color=col, ms=3)
        axes[0][3].fill_between(t, e - sd, e + sd, color=col, alpha=0.1)
    axes[0][0].loglog(Ls, 1.0 / Ls, "k--", lw=1, label="slope −1")
    axes[0][0].set_title("P1: sup_t ‖p^(⌊tL⌋) − p(t)‖₁ vs L (Thm 5.1)", fontsize=8)
    axes[0][0].legend(fontsize=5)
    axes[0][1].set_title("P0: ‖Δz^(l)‖₂² over layers (finest L)", fontsize=8)
    axes[0][2].set_title("P2: locking ratio / (c(δ)‖Δz‖∞ + ‖Δz‖∞²) vs tail mass", fontsize=8)
    axes[0][2].axhline(1.0, color="k", lw=1)
    axes[1][0].set_title("mobility ‖J‖_op (max over rows) ≤ ½", fontsize=8)
    axes[1][0].axhline(0.5, color="k", lw=1)
    axes[1][1].set_title("P3: mean Ollivier curvature κ of the rows", fontsize=8)
    axes[1][2].set_title("P4: rotational fraction (USA, Sinkformer: gradient flows)", fontsize=8)
    axes[0][3].set_title("P3: EVI surrogate S_ε(ρ_i(t), ρ_i(T)) (mean ± sd over rows)", fontsize=8)
    axes[1][3].axis("off")
    fig.suptitle("transport diagnostics P0–P4 (seed 003) along attention trajectories")
    return [save_figure(fig, outdir, "transport_diagnostics")]


def checks(ds, cfg):
    out = []
    mob, gates, p1, p1xi, lock, rot_zero, rot_pos = [], [], [], [], [], [], []
    abstained, coarse = [], []
    Ls = ds["L"].values
    for model, n, d, beta, kick, c in _cells(ds):
        where = f"{model} n={n} d={d} β={beta:g} kick={kick:g}"
        mob.append((float(c["mob_op"].max()), f"{where}: max ‖J‖_op = {float(c['mob_op'].max()):.4f}"))
        abstain, sev = gate(c, cfg)
        gates.append((float(abstain != (kick > 0)), f"{where}: severity {sev:.2f} ({'abstain' if abstain else 'pass'}; kicked: {kick > 0})"))
        if abstain:
            abstained.append(where)
        else:
            step = float(c["dzinf"].max())
            if step <= cfg.continuum:
                s = log_log_slope(Ls[-2:], c["discrepancy"].values[-2:])
                p1.append((abs(s + 1.0), f"{where}: discrepancy {np.array2string(c['discrepancy'].values, precision=4)} over L = {list(map(int, Ls))}, slope {s:.3f} (two finest)"))
                sx = log_log_slope(Ls[-2:], c["xi"].values[-2:])
                p1xi.append((abs(sx + 1.0), f"{where}: Ξ_L {np.array2string(c['xi'].values, precision=3)}, slope {sx:.3f}"))
            else:
                coarse.append(f"{where} (max ‖Δz‖∞ = {step:.2f})")
            lock.append((float(c["locking"].max()), f"{where}: worst locking ratio {float(c['locking'].max()):.4f}"))
        r = c["rotation"].values
        if model in ("usa", "sinkformer"):
            tol = 1e-10 if model == "usa" else 1e-6
            rot_zero.append((float(r.max()) / tol, f"{where}: max rotational fraction {r.max():.1e} (tolerance {tol:g})"))
        else:
            rot_pos.append((float(1e-3 / max(r.min(), 1e-300)), f"{where}: min rotational fraction {r.min():.3e}"))
    note = f"; abstained (P0 failed): {', '.join(abstained)}" if abstained else ""
    note_p1 = note + (f"; outside the continuum regime, not fitted: {', '.join(coarse)}" if coarse else "")
    score, detail = worst_case(mob)
    out.append(compare("mobility ‖J‖_op ≤ ½ on every row", "MATH.md §6 (seed 003 App. J.2 prints ¼: wrong)", 0.5, score, 0.0, "largest operator norm over rows, layers and clouds", mode="le", detail=detail))
    score, detail = worst_case(gates)
    out.append(compare("P0 gate abstains exactly on the kicked runs", "seed 003 App. K Algorithm 1 (τ₀ = factor·median ‖Δz‖₂²)", 0.0, score, 0.0, "severity > 2 iff a kick was applied", mode="le", detail=detail + note))
    if p1:
        score, detail = worst_case(p1)
        out.append(compare("P1: layered paths approach the ODE at first order in 1/L", "seed 003 Thm 5.1 (discrepancy ≲ Ξ_L)", 0.0, score, 0.25, f"|slope of log sup‖p_L − p‖₁ vs log L + 1| ≤ 0.25 over the two finest L, cells passing P0 with max‖Δz‖∞ ≤ {cfg.continuum:g}", mode="le", detail=detail + note_p1))
        score, detail = worst_case(p1xi)
        out.append(compare("P0: the BV budget Ξ_L falls like 1/L", "Ξ_L = max‖Δz‖∞ + Σ‖Δz‖∞², Δz = O(1/L)", 0.0, score, 0.25, "|slope of log Ξ_L vs log L + 1| ≤ 0.25", mode="le", detail=detail))
        score, detail = worst_case(lock)
        out.append(compare("P2: locking bound", "‖Δp‖₁ ≤ c(δ)‖Δz‖∞ + ‖Δz‖∞², c(δ) = 4δ(1−δ) ∧ 1 (seed: 2δ, off by 2)", 1.0, score, 0.0, "ratio ≤ 1 on every row and layer", mode="le", detail=detail))
    curv = []
    for model in ds["model"].values:
        for n in ds["n"].values:
            for d in ds["d"].values:
                for kick in ds["kick"].values:
                    c = ds.sel(model=model, n=n, d=d, kick=kick)
                    k0 = c["curvature"].values[..., 0]  # (beta,) at t = 0
                    if k0.size >= 2:
                        bad = int(np.count_nonzero(np.diff(k0) >= 0))
                        curv.append((float(bad), f"{model} n={int(n)} d={int(d)} kick={kick:g}: κ(t=0) = {np.array2string(k0, precision=4)} over β = {list(map(float, ds['beta'].values))}"))
    if curv:
        score, detail = worst_case(curv)
        out.append(compare("P3: higher temperature reduces the curvature gap", "seed 003 §M.1 eq. 21 remark (τ ↑ ⇒ 1 − κ ↓)", 0.0, score, 0.0, "mean κ at t = 0 strictly decreases with β (number of violations)", mode="le", detail=detail))
    evi = []
    for model, n, d, beta, kick, c in _cells(ds):
        e = c["evi"].values
        falls = int(np.sum(np.diff(e) < 0))
        evi.append(f"{model} n={n} d={d} β={beta:g} kick={kick:g}: S_ε {e[0]:.3g} → {e[-2]:.3g}, decreasing on {falls}/{len(e) - 1} save intervals")
    out.append(compare("(reported) P3: EVI surrogate across depth", "seed 003 eq. 22, Fig. 7 (no F_i, Δ_drift given: eq. 22 is not testable)", 0.0, 0.0, 0.0, "measurements, no pass mark", mode="le", detail="; ".join(evi)))
    if rot_zero:
        score, detail = worst_case(rot_zero)
        out.append(compare("P4: USA and the Sinkformer are gradient flows", "Ẋ = n∇E_β (USA); Sander et al. 2022 (Sinkformer, Q = K)", 0.0, score, 1.0, "rotational fraction ≤ 10⁻¹⁰ (USA: round-off) and ≤ 10⁻⁶ (Sinkformer: its Sinkhorn tolerance, amplified on clustered states) at every save, in units of that tolerance", mode="le", detail=detail))
    if rot_pos:
        score, detail = worst_case(rot_pos)
        out.append(compare("P4: SA is not a gradient flow (n ≥ 3)", "GLPR (SA's normalisation breaks the symmetry)", 0.0, score, 1.0, "rotational fraction ≥ 10⁻³ at every save", mode="le", detail=detail))
    return out


STUDY = Study(
    name="transport-diagnostics",
    title="Transport diagnostics P0–P4 (BV, PF-ODE adequacy, locking, curvature, rotation) along attention trajectories",
    source="OTVIEW (Thm 5.1, App. J, K, §7); SINK (gradient flow)",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={
        "discrepancy": ("L",),
        "xi": ("L",),
        **{k: ("layer",) for k in ("dz2", "dzinf", "mob_trace", "mob_op", "tail", "locking")},
        "curvature": ("t",),
        "rotation": ("t",),
        "evi": ("t",),
        "evi_sd": ("t",),
    },
    coords=coords,
    plot=plot,
    checks=checks,
    output_attrs={
        "discrepancy": {"long_name": "sup over saves, rows, clouds of ‖p(X_L(t)) − p(X(t))‖₁"},
        "xi": {"long_name": "BV budget Ξ_L = max‖Δz‖∞ + Σ‖Δz‖∞² (max over clouds)"},
        "dz2": {"long_name": "‖Δz^(l)‖₂² of the finest run (max over clouds)"},
        "dzinf": {"long_name": "‖Δz^(l)‖∞ of the finest run (max over clouds)"},
        "mob_trace": {"long_name": "mean tr J = 1 − ‖p‖² over rows"},
        "mob_op": {"long_name": "largest ‖J‖_op over rows"},
        "tail": {"long_name": "mean tail mass δ = 1 − max p"},
        "locking": {"long_name": "max ‖Δp‖₁/(c(δ)‖Δz‖∞ + ‖Δz‖∞²) (≤ 1)"},
        "curvature": {"long_name": "mean Ollivier curvature of the attention rows (ODE, first cloud)"},
        "rotation": {"long_name": "‖A − Aᵀ‖/‖A + Aᵀ‖, A the covariant derivative of the field"},
        "evi": {"long_name": "EVI surrogate: mean over rows of the Sinkhorn divergence S_ε(ρ_i(t), ρ_i(T)) of each attention row's measure to its final one"},
        "evi_sd": {"long_name": "standard deviation over rows of the EVI surrogate"},
    },
)
