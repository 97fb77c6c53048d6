"""metastability — GLPR Fig. 4 and the circle model: long-lived multi-cluster states on S¹.

Each cell is one β: ``realizations`` uniform starts of n tokens on the circle
(d = 2), integrated in angle coordinates (:func:`sinkflow.dynamics.attention.circle_field`,
SA or USA) to t = T on a logarithmic save grid (t = 0, then ``n_times − 1``
points from ``t_min`` to T). Clustered states are stiff (fast contraction
inside clusters, drift between them of order e^{−cβ}), so the default stepper
is the implicit, adaptive Kvaerno5: t = 10⁶ takes ~10³ steps where explicit
methods need ≥ 10⁶ (tests/test_circle.py). Saved per realization and time: the
cluster count, the interaction energy E_β, and the angles (for snapshots and
for the reduction check below).

Clustering rule: :func:`sinkflow.observables.cluster_count`, tokens i, j linked
when ⟨x_i, x_j⟩ ≥ 1 − δ (angle ≤ arccos(1 − δ) ≈ √(2δ)), clusters the connected
components. A *plateau* is a maximal run of save times with the same count
k ≥ 2 whose end time is at least ``plateau_factor`` times its start time (a
stretch of log-time; the last run is censored at T), counted from t = 1 (the
initial aggregation into clusters happens at rate O(1) and is not a plateau). The *collapse time* is
the first save time with one cluster (+∞ if none by T).

Checks
- *energy*: E_β is non-decreasing along SA/USA (GLPR; E is a Lyapunov function),
  up to 1e-9 of its range (float64).
- *metastable counts*: for β = 4 (β = 9) in the grid, the modal cluster count
  over all realizations and save times in [window_lo, window_hi] is 2 (3) and
  holds in at least half of them (MATH.md §1, GLPR Fig. 4). The window is ours:
  we could not read the time axis of the paper's figure; the default [20, 200]
  is where the counts are measured to be steady for both β (n = 32).
- *lifetimes grow with β*: median collapse time and the mean number of plateaus
  per realization are non-decreasing in β, strictly from the smallest to the
  largest β (GKPR 2024: lifetimes e^{cβ}).
- *final collapse*: every realization with β ≤ ``collapse_beta`` is one cluster at T.
- *two-cluster reduction* (quantitative lifetimes, derived in
  :mod:`sinkflow.theory`): at the first save time t_a with exactly two clusters
  that are tight (angular radius ≤ φ/20; the reduction treats them as points),
  the clusters' masses m, 1 − m and the separation φ_a of their circular means
  predict the merge time t_a + τ(φ_a → arccos(1 − δ)) by quadrature. The
  observed collapse time (first save with one cluster) must lie in
  [t_pred, t_pred·r] up to 2% (r = ratio of consecutive save times: the save grid
  cannot resolve more), or both must exceed T / r. Realizations that reach one
  cluster from ≥ 3 clusters directly are skipped (counted in the detail).
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
from sinkflow.dynamics.attention import circle_field
from sinkflow.observables import cluster_count, interaction_energy
from sinkflow.options import SolverOptions, float_dtype
from sinkflow.plots import new_figure, save_figure
from sinkflow.solve import ADAPTIVE_METHODS, FIXED_METHODS, solve, with_finiteness
from sinkflow.sphere import circle
from sinkflow.study import Study, param, require


@dataclasses.dataclass(frozen=True)
class Config(SolverOptions):
    beta: tuple = param((1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0), "inverse temperature β ≥ 0", swept=True, kind=float, lo=0.0)
    n: int = param(32, "number of tokens on the circle", kind=int, lo=2)
    model: str = param("sa", "dynamics: sa (softmax) or usa (1/n)", kind=str, choices=("sa", "usa"))
    T: float = param(1e6, "final time", kind=float)
    t_min: float = param(1e-2, "first positive save time (saves are log-spaced from t_min to T)", kind=float, lo=0.0, open="lo")
    n_times: int = param(161, "save times: t = 0 and n_times − 1 log-spaced points", kind=int, lo=3)
    realizations: int = param(32, "i.i.d. uniform starts per β", kind=int, lo=1)
    delta: float = param(1e-3, "cluster rule: link i, j when ⟨x_i, x_j⟩ ≥ 1 − δ", kind=float, lo=0.0, hi=1.0, open="both")
    window_lo: float = param(20.0, "start of the window for the metastable-count checks", kind=float)
    window_hi: float = param(200.0, "end of the window for the metastable-count checks", kind=float)
    plateau_factor: float = param(3.0, "a plateau lasts from t to at least factor·t", kind=float, lo=1.0, open="lo")
    collapse_beta: float = param(4.0, "check full collapse by T for every β ≤ this", kind=float)
    method: str = param("kvaerno5", "time stepper", kind=str, choices=FIXED_METHODS + ADAPTIVE_METHODS)
    dt: float = param(1e-2, "first step (adaptive) or step (fixed)", kind=float)
    rtol: float = param(1e-8, "relative tolerance (adaptive methods)", kind=float)
    atol: float = param(1e-10, "absolute tolerance (adaptive methods)", kind=float)
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))

    def __post_init__(self):
        super().__post_init__()
        require(math.isfinite(self.T) and self.T > self.t_min, f"--T must be finite and > --t-min, got T={self.T}, t_min={self.t_min}.")
        require(0 < self.window_lo < self.window_hi, f"--window-lo and --window-hi must satisfy 0 < lo < hi, got {self.window_lo}, {self.window_hi}.")
        self.solver_config()


PRESETS = {
    "tiny": {"beta": (1.0, 4.0), "realizations": 6, "T": 3000.0, "n_times": 41, "n": 12},
    "paper": {},
    "small": {"beta": (1.0, 4.0, 9.0), "realizations": 16, "T": 1e5, "n_times": 121},
}


def save_times(cfg: Config) -> np.ndarray:
    return np.concatenate([[0.0], np.geomspace(cfg.t_min, cfg.T, cfg.n_times - 1)])


def make_cell(cfg: Config, static: dict):
    del static
    dtype = float_dtype(cfg)
    ts = save_times(cfg)
    solver = cfg.solver_config()
    normalization = MODELS[cfg.model]
    R, n = cfg.realizations, cfg.n

    def one(theta0, beta):
        params = Attention(beta=beta, normalization=normalization)

        def observable(t, theta, a):
            x = circle(theta)
            return {"clusters": cluster_count(x, cfg.delta), "energy": interaction_energy(x, a.beta), "theta": jnp.mod(theta, 2 * jnp.pi)}

        sol = solve(circle_field, theta0, ts, params, config=solver, observable=observable)
        return sol.ys, sol.final_status(), sol.num_steps

    def cell(values, key):
        beta = values["beta"].astype(dtype)
        theta0 = jax.random.uniform(key, (R, n), dtype, 0.0, 2 * jnp.pi)
        ys, code, steps = jax.vmap(one, in_axes=(0, None))(theta0, beta)
        return {
            "clusters": ys["clusters"].astype(jnp.int32),  # (R, t)
            "energy": ys["energy"],  # (R, t)
            "theta": ys["theta"],  # (R, t, n)
            "status": with_finiteness(jnp.max(code), ys["energy"], ys["theta"]),
            "num_steps": jnp.max(steps),
        }

    return cell


def coords(cfg: Config):
    return {"t": save_times(cfg), "realization": np.arange(cfg.realizations), "token": np.arange(cfg.n)}


# ---------------------------------------------------------------- analysis (host side, from saved data)


def collapse_times(counts: np.ndarray, t: np.ndarray) -> np.ndarray:
    """First save time with one cluster per row of ``counts`` (R, T); +∞ if none."""
    one = counts == 1
    first = np.argmax(one, axis=-1)
    return np.where(one.any(axis=-1), t[first], np.inf)


def plateaus(counts: np.ndarray, t: np.ndarray, factor: float, t_first: float = 1.0) -> list[tuple[int, float, float]]:
    """Maximal runs (k ≥ 2, t_start, t_end) of one realization's counts with t_start ≥ t_first lasting t_end ≥ factor·t_start.

    ``t_first`` = 1 skips the initial aggregation (tokens gather into clusters at rate O(1));
    a run that began earlier counts from t_first."""
    out, start = [], 1
    for i in range(2, len(t) + 1):
        if i == len(t) or counts[i] != counts[start]:
            k, t0, t1 = int(counts[start]), max(t[start], t_first), t[i - 1]
            if k >= 2 and t1 >= factor * t0:
                out.append((k, float(t0), float(t1)))
            start = i
    return out


def two_clusters(theta: np.ndarray, delta: float) -> tuple[float, float, float] | None:
    """(mass of the smaller cluster, separation of the circular means, largest angular radius of a cluster)
    if the linkage rule gives exactly two clusters, else None."""
    from scipy.sparse.csgraph import connected_components

    adj = np.cos(theta[:, None] - theta[None, :]) >= 1.0 - delta
    k, labels = connected_components(adj, directed=False)
    if k != 2:
        return None
    means = [np.angle(np.mean(np.exp(1j * theta[labels == c]))) for c in (0, 1)]
    width = max(np.max(np.abs(np.angle(np.exp(1j * (theta[labels == c] - means[c]))))) for c in (0, 1))
    phi = abs(np.angle(np.exp(1j * (means[1] - means[0]))))
    m = np.mean(labels == 0)
    return float(min(m, 1 - m)), float(phi), float(width)



# ---------------------------------------------------------------- figures


def _snapshot_times(t: np.ndarray) -> list[int]:
    wanted = [0.0, 1.0, 10.0, 100.0, 1e3, 1e4, 1e6]
    idx = sorted({int(np.argmin(np.abs(t - w))) for w in wanted if w <= t[-1] * 1.0001})
    return idx


def _shown_betas(betas: np.ndarray) -> list[float]:
    pick = [b for b in (1.0, 4.0, 9.0) if np.any(np.isclose(betas, b))]
    return pick or list(betas[:3])


def plot(ds, cfg, outdir):
    t = ds["t"].values
    betas = ds["beta"].values
    shown = _shown_betas(betas)
    paths = []

    idx = _snapshot_times(t)
    fig, axes = new_figure(len(shown), len(idx), size=(1.7, 1.8))
    circ = np.linspace(0, 2 * np.pi, 200)
    for r, b in enumerate(shown):
        th = ds["theta"].sel(beta=b, realization=0).values  # (t, n)
        cc = ds["clusters"].sel(beta=b, realization=0).values
        for c, k in enumerate(idx):
            ax = axes[r][c]
            ax.plot(np.cos(circ), np.sin(circ), color="0.8", lw=0.8)
            ax.scatter(np.cos(th[k]), np.sin(th[k]), s=10, color=f"C{r}", zorder=3)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlim(-1.2, 1.2)
            ax.set_ylim(-1.2, 1.2)
            ax.set_title(f"t = {t[k]:.3g}: {int(cc[k])} cl.", fontsize=7)
        axes[r][0].set_ylabel(f"β = {b:g}")
    fig.suptitle(f"circle snapshots (realization 0, n = {ds.sizes['token']}, {cfg.model.upper()})")
    paths.append(save_figure(fig, outdir, "metastability_snapshots"))

    fig, axes = new_figure(1, 2, size=(4.4, 3.3))
    ax = axes[0][0]
    for r, b in enumerate(shown):
        cc = ds["clusters"].sel(beta=b).values  # (R, t)
        for row in cc[:8]:
            ax.step(t[1:], row[1:], where="post", color=f"C{r}", alpha=0.25, lw=0.8)
        ax.step(t[1:], np.median(cc, axis=0)[1:], where="post", color=f"C{r}", lw=2, label=f"β = {b:g} (median)")
    ax.axvspan(cfg.window_lo, cfg.window_hi, color="0.9", zorder=0)
    ax.set_xscale("log")
    ax.set_ylim(0.5, 8.5)
    ax.set_xlabel("t")
    ax.set_ylabel("clusters")
    ax.legend(fontsize=7)
    ax = axes[0][1]
    counts = ds["clusters"].values  # (beta, R, t)
    tc = np.array([collapse_times(counts[i], t) for i in range(len(betas))])
    med = np.median(tc, axis=1)
    for i, b in enumerate(betas):
        fin = np.isfinite(tc[i])
        ax.scatter(np.full(fin.sum(), b), tc[i][fin], s=6, color="0.5", alpha=0.5)
        if (~fin).any():
            ax.scatter([b], [t[-1]], marker="^", color="C3", s=16 * (~fin).sum() / len(fin) + 4)
    ok = np.isfinite(med)
    ax.plot(betas[ok], med[ok], "o-", color="k", label="median collapse time")
    ax.axhline(t[-1], color="C3", ls=":", lw=1, label="T (▲: not collapsed)")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel("time to one cluster")
    ax.legend(fontsize=7)
    fig.suptitle("cluster count over time and lifetimes")
    paths.append(save_figure(fig, outdir, "metastability_clusters"))

    fig, axes = new_figure(1, 2, size=(4.2, 3.2))
    for r, b in enumerate(shown):
        e = ds["energy"].sel(beta=b, realization=0).values
        e_one = math.expm1(b) / (2 * b) if b > 0 else 0.5  # E_β of a single cluster (all tokens equal)
        e = (e - e[0]) / (e_one - e[0])
        axes[0][0].plot(t, e, color=f"C{r}", label=f"β = {b:g}")
        axes[0][1].plot(t[1:], e[1:], color=f"C{r}", label=f"β = {b:g}")
    axes[0][0].set_xlim(0, min(t[-1], 200.0))
    axes[0][0].set_xlabel("t")
    axes[0][1].set_xscale("log")
    axes[0][1].set_xlabel("t (log)")
    axes[0][0].set_ylabel(r"$(E_\beta(t) - E_\beta(0)) / (E_\beta^{\rm one\,cluster} - E_\beta(0))$")
    axes[0][1].legend(fontsize=7)
    fig.suptitle("interaction energy: staircase in log t (realization 0)")
    paths.append(save_figure(fig, outdir, "metastability_energy"))
    return paths


# ---------------------------------------------------------------- checks


def checks(ds, cfg):
    t = ds["t"].values
    betas = ds["beta"].values
    counts = ds["clusters"].values  # (beta, R, t)
    out = []

    e = ds["energy"].values  # (beta, R, t)
    span = np.maximum(np.ptp(e, axis=-1, keepdims=True), 1e-300)
    drop = np.max(-np.diff(e, axis=-1) / span)
    out.append(compare("energy non-decreasing", "GLPR (E_β Lyapunov)", 0.0, float(drop), 1e-9, "max relative decrease between saves", mode="le"))

    window = (t >= cfg.window_lo) & (t <= cfg.window_hi)
    for b, k in ((4.0, 2), (9.0, 3)):
        hit = np.flatnonzero(np.isclose(betas, b))
        if hit.size == 0 or not window.any():
            continue
        c = counts[hit[0]][:, window].ravel()
        vals, freq = np.unique(c, return_counts=True)
        mode = int(vals[np.argmax(freq)])
        share = float(np.mean(c == k)) if mode == k else 0.0  # a share ≥ ½ that is not the mode cannot happen; a wrong mode fails
        out.append(compare(f"{k} clusters persist at β = {b:g}", "GLPR Fig. 4", 0.5, share, 0.0, f"count {k} is the mode and holds in ≥ half of the saves in t ∈ [{cfg.window_lo:g}, {cfg.window_hi:g}]", mode="ge", detail=f"modal count {mode}; counts {dict(zip(vals.tolist(), freq.tolist()))}"))

    if len(betas) >= 2:
        order = np.argsort(betas)
        tc = np.array([np.median(collapse_times(counts[i], t)) for i in order])
        nplat = np.array([np.mean([len(plateaus(row, t, cfg.plateau_factor)) for row in counts[i]]) for i in order])
        bad_t = int(np.sum(np.diff(tc) < 0)) + int(not tc[-1] > tc[0])
        bad_p = int(np.sum(np.diff(nplat) < 0)) + int(not nplat[-1] > nplat[0])
        bs = betas[order]
        out.append(compare("median collapse time grows with β", "GKPR 2024 (lifetimes e^{cβ})", 0, bad_t, 0, "non-decreasing in β, larger at max β than at min β", mode="le", detail=", ".join(f"β={b:g}: {v:.3g}" for b, v in zip(bs, tc))))
        out.append(compare("number of plateaus grows with β", "GKPR 2024 (staircase)", 0, bad_p, 0, f"mean plateaus (k ≥ 2, t_end ≥ {cfg.plateau_factor:g}·t_start) non-decreasing, strictly overall", mode="le", detail=", ".join(f"β={b:g}: {v:.2f}" for b, v in zip(bs, nplat))))

    low = betas <= cfg.collapse_beta
    if low.any():
        final = counts[low][..., -1]
        out.append(compare(f"collapse to one cluster by T for β ≤ {cfg.collapse_beta:g}", "GLPR Thm 4.3 / Fig. 4", 1, int(final.max()), 0, "every realization has one cluster at T", mode="le"))

    rows, skipped, used = [], 0, 0
    r_grid = float(t[-1] / t[-2])
    phi_link = math.acos(1.0 - cfg.delta)
    for i, b in enumerate(betas):
        th = ds["theta"].isel(beta=i).values  # (R, t, n)
        tcol = collapse_times(counts[i], t)
        for r in range(counts.shape[1]):
            two = np.flatnonzero(counts[i, r] == 2)
            if two.size == 0 or (np.isfinite(tcol[r]) and t[two[0]] > tcol[r]):
                skipped += 1
                continue
            red, a = None, None
            for k in two:  # first save of the two-cluster state where both clusters are tight (radius ≤ φ/20)
                if np.isfinite(tcol[r]) and t[k] > tcol[r]:
                    break
                cand = two_clusters(th[r, k], cfg.delta)
                if cand is not None and cand[2] <= cand[1] / 20 and cand[1] > phi_link:
                    red, a = cand, k
                    break
            if red is None:
                skipped += 1
                continue
            m, phi, _ = red
            tp = t[a] + float(theory.two_cluster_merge_time(phi, phi_link, float(b), m, cfg.model))
            used += 1
            if np.isfinite(tcol[r]):
                err = max(math.log(tp / tcol[r]), math.log(tcol[r] / (tp * r_grid)), 0.0) - math.log(1.02)
            else:
                err = math.log(t[-1] / r_grid / tp) - math.log(1.02)
            rows.append((err, f"β={b:g} r={r}: t_a={t[a]:.3g}, m={m:.3f}, φ={phi:.3f}, predicted {tp:.4g}, observed {tcol[r]:.4g}"))
    if used:
        worst, detail = worst_case(rows)
        out.append(compare("two-cluster lifetimes = reduction", "derived (sinkflow.theory.two_cluster_merge_time)", 0.0, worst, 0.0, f"log-distance of observed collapse to [t_pred, t_pred·{r_grid:.3f}] beyond 2% (≤ 0 passes)", mode="le", detail=f"{used} realizations, {skipped} skipped; worst {detail}"))
    return out


STUDY = Study(
    name="metastability",
    title="metastable clusters on the circle (GLPR Fig. 4)",
    source="GLPR Fig. 4; GKPR (dynamic metastability)",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    output_dims={"clusters": ("realization", "t"), "energy": ("realization", "t"), "theta": ("realization", "t", "token"), "status": (), "num_steps": ()},
    output_attrs={
        "clusters": {"long_name": "number of clusters: connected components of the graph ⟨x_i, x_j⟩ ≥ 1 − δ (sinkflow.observables.cluster_count)", "units": "1"},
        "energy": {"long_name": "interaction energy E_β − 1/(2β) = (1/(2βn²)) Σ_ij (e^{β⟨x_i,x_j⟩} − 1) (sinkflow.observables.interaction_energy)", "units": "1"},
        "theta": {"long_name": "token angles on the circle S¹, in [0, 2π)", "units": "rad"},
        "t": {"long_name": "time (continuous depth; log-spaced saves)", "units": "1"},
    },
    coords=coords,
    plot=plot,
    checks=checks,
)
