"""graph-heat — heat flow ρ' = −Lρ on graphs and DAGs: decay rates against spectral gaps (MATH.md §3).

Each cell is one graph (family, n): L = D_in − A (:mod:`sinkflow.graphs`; for
undirected graphs D − A). ``realizations`` Gaussian starts of particle positions
x ∈ R^{n×dim} are solved by diffrax (Tsit5, rtol 1e-12) and by the matrix
exponential (:func:`sinkflow.dynamics.graph.heat_kernel`); one more solve starts on
an eigenvector of the gap eigenvalue (the Fiedler vector for undirected graphs).
Times: t ∈ [0, T_cell] with T_cell = (horizon + 3(J − 1))/gap, J the Jordan
index of the gap eigenvalue (t^{J−1}e^{−gap·t} needs ~3(J − 1) more e-folds
before it decays), solved and saved on the normalised grid u = t/T_cell ∈ [0, 1]
(x' = −T_cell·L x; ``--dt`` is in units of u), so every graph is followed over
comparable numbers of e-folds and all graphs with one node count share one compiled
program, their Laplacians passed as data (``Study.program``). Saved: the relative distance to the limit
‖x(t) − Πx₀‖/‖x₀ − Πx₀‖ (Π = lim e^{−Lt}, :func:`sinkflow.spectra.limit_projector`),
the eigen-start's norm, and per graph the spectral data: gap = smallest nonzero
real part of the spectrum, λ₂ and its closed form (undirected families), the
Jordan index of the gap eigenvalue, Henrici's departure from normality, the
eigenvector condition number, and whether Π is the leader projector 1e_sᵀ.

Graphs (``--graph``): undirected ``path``, ``cycle``, ``complete``, ``star``,
``hypercube`` (2^⌊log₂ n⌋ nodes), ``tree`` (complete k-ary, ≤ n nodes); directed
``path-dag``, ``star-dag``, ``tree-dag``, ``complete-dag`` (edges away from node
0 / from lower to higher index), ``er-dag``, ``sf-dag`` (seeded random DAGs) and
``cycle-directed`` (a normal but non-symmetric L with complex spectrum); any name of
:func:`sinkflow.graphs.named` (e.g. ``tree:3-dag``, ``er:0.5``) works too.

Checks
- *diffrax = expm*: max |x_diffrax − x_expm| ≤ 1e-10 (float64).
- *λ₂ closed forms*: numerical λ₂ = path 2 − 2cos(π/n), cycle 2 − 2cos(2π/n),
  complete n, star 1, hypercube 2, to 1e-12.
- *eigen-start*: ‖e^{−Lt}v‖ = e^{−gap·t} exactly: |log‖·‖ + gap·t| ≤ 1e-8 plus
  the round-off bound n·10⁻¹⁴·‖e^{−Lt}‖₂/‖e^{−Lt}v‖ (an O(ε) error in v is
  amplified by the propagator; for long Jordan chains this is what
  non-normality costs, and ‖e^{−Lt}‖₂ is saved as ``prop_norm``).
- *random-start rate*: over the saves where the relative distance is in
  [1e-9, 1e-4] (after the faster modes have decayed, and 1000× above the solver's floor), λ fitted with the prefactor's degree k = (Jordan index − 1)
  known and a b/t term for its lower powers (t^k e^{−λt}: the polynomial transient of
  defective DAG Laplacians; see :func:`fit_rates`) equals the gap within 1% for every realization with
  k ≤ 3. Long Jordan chains (k > 3, e.g. directed paths) are checked
  separately with the allowance 1% + k²/(t_lo·t_hi) for the lower powers of the
  prefactor, an empirical bound we state, not a theorem. The power k̂ of the
  prefactor is reported (figure).
- *leader*: every single-source DAG has Π = 1e_sᵀ (consensus to the source's
  value, not the mean), to 1e-10; multi-source DAGs are reported.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow import graphs as G
from sinkflow import spectra
from sinkflow.checks import compare, worst_case
from sinkflow.dynamics.graph import heat_kernel, laplacian_field
from sinkflow.estimators import decay_rate
from sinkflow.options import PreciseSolverOptions, float_dtype
from sinkflow.plots import new_figure, save_figure
from sinkflow.solve import solve, with_finiteness
from sinkflow.spectra import eigenspace, jordan_index, limit_projector
from sinkflow.study import Study, param

UNDIRECTED = ("path", "cycle", "complete", "star", "hypercube", "tree")
DIRECTED = ("path-dag", "star-dag", "tree-dag", "complete-dag", "er-dag", "sf-dag", "cycle-directed")
GRAPHS = UNDIRECTED + DIRECTED
CLOSED = ("path", "cycle", "complete", "star", "hypercube")
FIT_WINDOW = (1e-9, 1e-4)  # top: faster modes gone; bottom: 1000× above the solver floor (rtol 1e-12 on an O(1) state)


@dataclasses.dataclass(frozen=True)
class Config(PreciseSolverOptions):
    graph: tuple = param(GRAPHS, f"graphs: {', '.join(GRAPHS)}", swept=True, static=True, kind=str)
    n: tuple = param((8, 16, 32, 64), "nodes (hypercube: 2^⌊log₂ n⌋, tree: the largest complete k-ary tree ≤ n)", swept=True, static=True, kind=int, lo=3)
    dim: int = param(3, "particle dimension (x' = −Lx on R^{n×dim}; 1 = node values)", kind=int, lo=1)
    horizon: float = param(30.0, "final time in units of 1/gap", kind=float, lo=0.0, open="lo")
    n_times: int = param(201, "save times in [0, horizon/gap]", kind=int, lo=10)
    realizations: int = param(4, "Gaussian starts per graph", kind=int, lo=1)
    p: float = param(0.3, "edge probability of er-dag", kind=float, lo=0.0, hi=1.0, open="lo")
    m: int = param(2, "parents per node of sf-dag", kind=int, lo=1)
    k: int = param(2, "arity of tree / tree-dag", kind=int, lo=1)
    graph_seed: int = param(0, "seed of the random DAGs (er-dag, sf-dag)", kind=int, lo=0)
    rtol: float = param(1e-12, "relative tolerance (adaptive methods)", kind=float)
    atol: float = param(1e-14, "absolute tolerance (adaptive methods)", kind=float)

    def __post_init__(self):
        super().__post_init__()
        for g in self.graph:
            try:
                G.named(g, 4)
            except ValueError as e:
                raise ValueError(f"--graph: {e}") from None


PRESETS = {
    "tiny": {"n": (6,), "graph": ("cycle", "path-dag"), "realizations": 2, "n_times": 61},
    "paper": {"n": (8, 16, 32, 64), "realizations": 8},
    "small": {"n": (8, 16)},
}


def build_graph(name: str, n: int, cfg: Config) -> np.ndarray:
    """The adjacency of a named graph (:func:`sinkflow.graphs.named`; --p, --m, --k are the defaults of er, sf, tree)."""
    return G.named(name, n, p=cfg.p, k=cfg.k, m=cfg.m, seed=cfg.graph_seed)


def spectral_data(A: np.ndarray) -> dict:
    """Gap, Jordan index, non-normality, leader structure and the gap eigenvector of L = D_in − A."""
    L = G.laplacian(A)
    gap = spectra.spectral_gap(L)
    lam = spectra.eigenvalues(L)
    sym = bool(np.allclose(L, L.T))
    if sym:
        lam2, v = spectra.fiedler(L)
    else:
        lam2 = math.nan
    complex_gap = bool(np.any((np.abs(lam.real - gap) < 1e-9) & (np.abs(lam.imag) > 1e-9)))
    if complex_gap:  # normal here (directed cycle): a complex eigenvector, its real and imaginary parts
        w, V = np.linalg.eig(L)
        i = int(np.argmin(np.where(np.abs(w) > 1e-9, np.abs(w.real - gap) - 1e-3 * (w.imag > 0), np.inf)))
        v = np.concatenate([V[:, i].real, V[:, i].imag])
    elif not sym:
        # Exact eigenvector of the (integer, possibly defective) gap eigenvalue: a general eigensolver
        # returns it only to ε^{1/J} for a Jordan block of size J, which t^{J−1} then amplifies.
        v = eigenspace(L, gap, 1e-10)[:, 0]
    Pi = limit_projector(L)
    sources = np.flatnonzero(A.sum(axis=1) == 0)
    leader = math.nan
    if G.is_dag(A) and sources.size == 1:
        e = np.zeros(A.shape[0])
        e[sources[0]] = 1.0
        leader = float(np.max(np.abs(Pi - np.outer(np.ones(A.shape[0]), e))))
    return {
        "L": L,
        "gap": gap,
        "lam2": lam2,
        "jordan": jordan_index(L, gap) if not complex_gap else 1,
        "henrici": spectra.henrici(L),
        "eig_cond": spectra.eigenvector_condition(L),
        "leader_err": leader,
        "n_sources": int(sources.size) if G.is_dag(A) else 0,
        "v": v,
        "complex_gap": complex_gap,
        "Pi": Pi,
        "nodes": A.shape[0],
    }


def program(cfg: Config, static: dict) -> tuple[dict, dict]:
    """One graph's data for the shared program of its node count: graphs of one size differ only in
    arrays, so they share one compile (the engine's ``Study.program``). The ODE is solved in the
    normalised time u = t/T_cell ∈ [0, 1], x' = −(T_cell·L)x, so the save grid is the same for
    every graph and T_cell is data too."""
    name, n_req = static["graph"], static["n"]
    dtype = float_dtype(cfg)
    A = build_graph(name, n_req, cfg)
    sd = spectral_data(A)
    n = sd["nodes"]
    T_cell = (cfg.horizon + 3.0 * (sd["jordan"] - 1)) / sd["gap"]
    from scipy.linalg import expm as host_expm

    prop = np.array([np.linalg.norm(host_expm(-t * sd["L"]), 2) for t in np.linspace(0.0, T_cell, cfg.n_times)])
    if sd["complex_gap"]:  # real and imaginary parts of the eigenvector span an invariant plane: solve both
        v = sd["v"].reshape(2, n).T  # (n, 2)
    else:
        v = sd["v"][:, None]
    closed = spectra.fiedler_closed_form(name, n) if name in CLOSED else math.nan
    consts = {k: float(sd[k]) for k in ("gap", "lam2", "jordan", "henrici", "eig_cond", "leader_err", "n_sources")}
    consts.update(lam2_closed=closed, nodes=float(n), T_cell=T_cell)
    data = {
        "LT": T_cell * sd["L"],  # (n, n): the generator in u-time
        "Pi": sd["Pi"],  # (n, n): lim e^{−Lt}
        "v": v / np.linalg.norm(v),  # (n, 1) or (n, 2): the gap eigenvector (plane)
        "prop_norm": prop,  # (n_times,): ‖e^{−Lt}‖₂
        **consts,
    }
    return {"nodes": n, "eig_columns": v.shape[1]}, jax.tree.map(lambda a: jnp.asarray(a, dtype), data)


def make_cell(cfg: Config, key: dict):
    """The cell of every graph with ``key["nodes"]`` nodes; the graph itself is ``data``
    (:func:`program`)."""
    n = key["nodes"]
    dtype = float_dtype(cfg)
    us = np.linspace(0.0, 1.0, cfg.n_times)
    solver = cfg.solver_config()
    R, dim = cfg.realizations, cfg.dim

    def one(x0, LT, Pi):
        sol = solve(laplacian_field, x0, us, LT, config=solver)
        ref = heat_kernel(LT, x0, us)
        lim = jnp.tensordot(Pi, x0, axes=1)
        dev = jnp.linalg.norm((sol.ys - lim).reshape(len(us), -1), axis=1) / jnp.linalg.norm(x0 - lim)
        return dev, jnp.max(jnp.abs(sol.ys - ref)), sol.final_status()

    def cell(values, rng, data):
        del values
        x0 = jax.random.normal(rng, (R, n, dim), dtype)
        dev, err, code = jax.vmap(one, in_axes=(0, None, None))(x0, data["LT"], data["Pi"])
        eig = solve(laplacian_field, data["v"], us, data["LT"], config=solver)
        eig_norm = jnp.linalg.norm(eig.ys.reshape(len(us), -1), axis=1)
        consts = {k: a for k, a in data.items() if k not in ("LT", "Pi", "v")}
        return {
            "dev": dev,  # (R, u)
            "eig_norm": eig_norm,  # (u,)
            "expm_err": jnp.max(err),
            "status": with_finiteness(jnp.maximum(jnp.max(code), eig.final_status()), dev, eig_norm),
            **consts,
        }

    return cell


def coords(cfg: Config):
    return {"u": np.linspace(0.0, 1.0, cfg.n_times), "realization": np.arange(cfg.realizations)}



def fit_rates(dev: np.ndarray, t: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """(λ, k̂, t_lo, t_hi) over the saves with dev in FIT_WINDOW (NaNs if fewer than 5).

    λ: slope of the fit log dev = c + k log t − λt + b/t with the prefactor degree k known (k =
    Jordan index − 1; the b/t term for k ≥ 1). The lower powers t^{k−1}, … of the prefactor add
    log(1 + (c_{k−1}/c_k)/t + …), which without the b/t term biased λ by (c_{k−1}/c_k)/(t_lo·t_hi),
    a ratio that random starts do not bound: on the paper preset (8 starts per graph) er-dag
    n = 32 (k = 2) was off by 2.3%, against 0.33% with it (worst k ≤ 3: 0.42%, sf-dag, k = 0).
    For the 16-node directed path (k = 14) the plain fit was off by 2.4% at t ≈ 35–60. A
    degree-2k polynomial fit of dev²e^{2λt} (exact in principle) was tried and is degenerate:
    over one window e^{2δt} is itself well approximated by such a polynomial.
    k̂: slope of log dev + λt against log t, the visible power of the prefactor.
    """
    fit = decay_rate(t, dev, FIT_WINDOW, keep=t > 0, power=k, drift=False)
    if not math.isfinite(fit.rate):
        return math.nan, math.nan, math.nan, math.nan
    tt = t[fit.mask]
    khat = np.polyfit(np.log(tt), np.log(dev[fit.mask]) + fit.rate * tt, 1)[0]
    return float(fit.rate), float(khat), fit.t_lo, fit.t_hi


def _cells(ds):
    for g in ds["graph"].values:
        for n in ds["n"].values:
            if int(ds["status"].sel(graph=g, n=n)) == 0:  # a failed cell has no data (the status check reports it)
                yield str(g), int(n), ds.sel(graph=g, n=n)


def _times(c, u) -> np.ndarray:
    return u * float(c["T_cell"])


def plot(ds, cfg, outdir):
    u = ds["u"].values
    fig, axes = new_figure(1, 3, size=(4.2, 3.4))
    ax = axes[0][0]
    graphs = [str(g) for g in ds["graph"].values]
    nmax = int(ds["n"].values.max())
    for i, g in enumerate(graphs):
        c = ds.sel(graph=g, n=nmax)
        ax.semilogy(_times(c, u) * float(c["gap"]), np.median(c["dev"].values, axis=0), color=f"C{i % 10}", ls="-" if g in UNDIRECTED else "--", lw=1, label=g)
    s = np.linspace(0, 60, 100)
    ax.semilogy(s, np.exp(-s), color="k", lw=2, alpha=0.4, label=r"$e^{-\mathrm{gap}\,t}$")
    ax.set_xlim(0, 60)
    ax.set_ylim(1e-14, 3)
    ax.set_xlabel(r"gap $\cdot$ t")
    ax.set_ylabel(r"$\|x(t) - \Pi x_0\| / \|x_0 - \Pi x_0\|$")
    ax.set_title(f"n = {nmax} (median of starts)", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fits = {(g, n): np.array([fit_rates(row, _times(c, u), int(c["jordan"]) - 1)[:2] for row in c["dev"].values]) for g, n, c in _cells(ds)}  # (R, 2): λ, k̂
    ax = axes[0][1]
    for g, n, c in _cells(ds):
        lams = fits[g, n][:, 0]
        ax.scatter([float(c["gap"])] * len(lams), lams, s=12, color=f"C{graphs.index(g) % 10}", marker="o" if g in UNDIRECTED else "^")
    ax.plot([1e-3, 100], [1e-3, 100], color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted gap (smallest nonzero Re λ)")
    ax.set_ylabel("fitted decay rate")
    ax.set_title("fitted rate vs gap (o undir., ^ dir.)", fontsize=9)
    ax = axes[0][2]
    for g, n, c in _cells(ds):
        if g in UNDIRECTED:
            continue
        ks = fits[g, n][:, 1]
        ax.scatter([float(c["henrici"])] * len(ks), ks, s=12, color=f"C{graphs.index(g) % 10}", label=f"{g}" if n == nmax else None)
        if np.isfinite(ks).any():
            ax.annotate(f"J={int(c['jordan'])}", (float(c["henrici"]), float(np.nanmedian(ks))), fontsize=6)
    ax.set_xlabel("Henrici departure from normality")
    ax.set_ylabel(r"fitted power $\hat k$ in $t^k e^{-\lambda t}$")
    ax.set_title("directed: transient power (J = Jordan index)", fontsize=9)
    ax.legend(fontsize=6)
    fig.suptitle("graph heat flow: decay vs spectral gap")
    return [save_figure(fig, outdir, "graph_heat")]


def checks(ds, cfg):
    u = ds["u"].values
    out = []
    out.append(compare("diffrax = expm", "jax.scipy.linalg.expm", 0.0, float(np.max(ds["expm_err"].values)), 1e-10, "float64, Tsit5 at rtol 1e-12", mode="le"))
    rows_closed, rows_eig, rows_rate, rows_long, rows_leader, multi = [], [], [], [], [], []
    for g, n, c in _cells(ds):
        gap = float(c["gap"])
        t = _times(c, u)
        if g in CLOSED:
            rows_closed.append((abs(float(c["lam2"]) - float(c["lam2_closed"])), f"{g} n={int(c['nodes'])}: λ₂ {float(c['lam2']):.12g} vs {float(c['lam2_closed']):.12g}"))
        en = c["eig_norm"].values
        ok = en > 1e-12
        bound = 1e-8 + float(c["nodes"]) * 1e-14 * c["prop_norm"].values[ok] / en[ok]
        excess = np.abs(np.log(en[ok] / en[0]) + gap * t[ok]) - bound
        i = int(np.argmax(excess))
        rows_eig.append((float(excess[i]), f"{g} n={n}: at gap·t = {gap * t[ok][i]:.3g}, bound {bound[i]:.2g}"))
        k = int(c["jordan"]) - 1
        for r, row in enumerate(c["dev"].values):
            lam, khat, t_lo, t_hi = fit_rates(row, t, k)
            err = abs(lam / gap - 1.0) if math.isfinite(lam) else math.inf
            text = f"{g} n={n} r={r}: λ={lam:.6g} vs gap {gap:.6g} (k={k}, k̂={khat:.2f}, t ∈ [{t_lo:.3g}, {t_hi:.3g}])"
            if k <= 3:
                rows_rate.append((err, text))
            else:
                rows_long.append((err - 0.01 - k * k / (t_lo * t_hi) if math.isfinite(err) else math.inf, text))
        if math.isfinite(float(c["leader_err"])):
            rows_leader.append((float(c["leader_err"]), f"{g} n={n}"))
        elif int(c["n_sources"]) > 1:
            multi.append(f"{g} n={n}: {int(c['n_sources'])} sources")
    if rows_closed:
        w, d = worst_case(rows_closed)
        out.append(compare("λ₂ = closed form", "MATH.md §3", 0.0, w, 1e-12, "path, cycle, complete, star, hypercube", mode="le", detail=d))
    w, d = worst_case(rows_eig)
    out.append(compare("gap eigenvector decays exactly at the gap", "spectral theorem", 0.0, w, 0.0, "|log‖e^{−Lt}v‖ + gap·t| − (1e-8 + round-off bound) ≤ 0", mode="le", detail=f"worst {d}"))
    w, d = worst_case(rows_rate)
    out.append(compare("random starts decay at the gap", "MATH.md §3 (λ₂; smallest nonzero Re λ)", 0.0, w, 0.01, "relative error of λ fitted over dev ∈ [1e-9, 1e-4] with t^k, k = Jordan index − 1 ≤ 3", mode="le", detail=f"worst {d}"))
    if rows_long:
        w, d = worst_case(rows_long)
        out.append(compare("long Jordan chains decay at the gap", "MATH.md §3 (t^k e^{−λt})", 0.0, w, 0.0, "relative error − (1% + k²/(t_lo·t_hi)) ≤ 0 for k > 3 (stated allowance for the prefactor's lower powers)", mode="le", detail=f"worst {d}"))
    if rows_leader:
        w, d = worst_case(rows_leader)
        out.append(compare("single-source DAGs: consensus to the leader", "MATH.md §3", 0.0, w, 1e-10, "max |Π − 1e_sᵀ|", mode="le", detail=f"worst {d}; multi-source: {multi}" if multi else f"worst {d}"))
    return out


STUDY = Study(
    name="graph-heat",
    title="graph heat flow: decay rates vs spectral gaps, leaders, non-normal transients",
    source="Koß 2025 §2.3 (graph heat flow)",
    config_cls=Config,
    presets=PRESETS,
    make_cell=make_cell,
    program=program,
    output_attrs={
        "dev": {"long_name": "relative distance to the limit ‖x(t) − Πx₀‖/‖x₀ − Πx₀‖ of each Gaussian start (Π = lim e^{−Lt})", "units": "1"},
        "eig_norm": {"long_name": "‖e^{−Lt}v‖ for the unit gap eigenvector v (real and imaginary parts for a complex gap)", "units": "1"},
        "prop_norm": {"long_name": "spectral norm ‖e^{−Lt}‖₂ of the propagator (scipy expm, float64)", "units": "1"},
        "T_cell": {"long_name": "the cell's final time (horizon + 3(J − 1))/gap; t = u·T_cell", "units": "1"},
        "expm_err": {"long_name": "max |x_diffrax − x_expm| over starts, times and coordinates", "units": "1"},
        "gap": {"long_name": "spectral gap: smallest nonzero real part of the spectrum of L = D_in − A", "units": "1"},
        "lam2": {"long_name": "λ₂ of the symmetric Laplacian (NaN for directed graphs)", "units": "1"},
        "lam2_closed": {"long_name": "closed form of λ₂ (path, cycle, complete, star, hypercube; else NaN)", "units": "1"},
        "jordan": {"long_name": "Jordan index J of the gap eigenvalue (size of its largest Jordan block)", "units": "1"},
        "henrici": {"long_name": "Henrici's departure from normality of L (0 for a normal matrix)", "units": "1"},
        "eig_cond": {"long_name": "condition number of L's eigenvector matrix", "units": "1"},
        "leader_err": {"long_name": "max |Π − 1e_sᵀ| for a single-source DAG (consensus to the source; NaN otherwise)", "units": "1"},
        "n_sources": {"long_name": "number of source nodes of a DAG (0 for other graphs)", "units": "1"},
        "nodes": {"long_name": "nodes of the graph built (hypercube: 2^⌊log₂ n⌋, tree: ≤ n)", "units": "1"},
        "u": {"long_name": "normalised time u = t/T_cell", "units": "1"},
    },
    output_dims={
        "dev": ("realization", "u"),
        "eig_norm": ("u",),
        "prop_norm": ("u",),
        "T_cell": (),
        "expm_err": (),
        "status": (),
        "gap": (),
        "lam2": (),
        "lam2_closed": (),
        "jordan": (),
        "henrici": (),
        "eig_cond": (),
        "leader_err": (),
        "n_sources": (),
        "nodes": (),
    },
    coords=coords,
    plot=plot,
    checks=checks,
)
