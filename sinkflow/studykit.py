"""Shared pieces for study modules: solver fields, common validators and plotting helpers.

Kept here (not in each experiment) so that every study validates the same
parameter the same way and names it the same on the command line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from .sinkhorn import BACKENDS, MODES, Sinkhorn
from .solve import ADAPTIVE_METHODS, FIXED_METHODS, SolverConfig
from .study import StudyConfig, check_values, param, require

__all__ = ["SolverFields", "PreciseSolverFields", "SinkhornFields", "validate_common", "float_dtype", "save_figure", "new_figure", "time_grid"]


@dataclasses.dataclass(frozen=True)
class SolverFields(StudyConfig):
    """Time stepping fields shared by ODE studies."""

    method: str = param("rk4", "time stepper", kind=str, choices=FIXED_METHODS + ADAPTIVE_METHODS)
    dt: float = param(0.1, "step size (fixed methods) or first step (adaptive)", kind=float)
    rtol: float = param(1e-6, "relative tolerance (adaptive methods)", kind=float)
    atol: float = param(1e-8, "absolute tolerance (adaptive methods)", kind=float)

    def solver_config(self) -> SolverConfig:
        return SolverConfig(method=self.method, dt=self.dt, rtol=self.rtol, atol=self.atol)

    def solver_dict(self) -> dict:
        return dataclasses.asdict(self.solver_config())


@dataclasses.dataclass(frozen=True)
class PreciseSolverFields(SolverFields):
    """Solver fields defaulting to adaptive Tsit5 at rtol 1e-10 in float64 (for closed-form checks)."""

    method: str = param("tsit5", "time stepper", kind=str, choices=FIXED_METHODS + ADAPTIVE_METHODS)
    rtol: float = param(1e-10, "relative tolerance (adaptive methods)", kind=float)
    atol: float = param(1e-12, "absolute tolerance (adaptive methods)", kind=float)
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))


@dataclasses.dataclass(frozen=True)
class SinkhornFields(StudyConfig):
    """Options of the Sinkhorn normalisation shared by Sinkformer studies (ε is the study's own, usually swept)."""

    sinkhorn_mode: str = param("balanced", "Sinkhorn mode: balanced, unbalanced (τ) or fixed (k iterations)", kind=str, choices=MODES)
    tau: float = param(1.0, "column-marginal relaxation τ ∈ (0, 1] (unbalanced mode; ott's tau_b)", kind=float)
    iterations: int = param(2000, "max Sinkhorn normalisations (balanced/unbalanced) or exactly k (fixed)", kind=int)
    threshold: float = param(1e-6, "Sinkhorn stopping threshold on the L1 marginal error", kind=float)
    backend: str = param("native", "Sinkhorn implementation: native (log-domain loop) or ott (ott-jax)", kind=str, choices=BACKENDS)
    symmetric: str = param("auto", "averaged symmetric Sinkhorn loop: auto (balanced, native, and a symmetric kernel that mixes slowly, e.g. exp(−‖x−y‖²/ε)), on, off", kind=str, choices=("auto", "on", "off"))

    def sinkhorn_spec(self, epsilon, *, symmetric_kernel: bool = False) -> Sinkhorn:
        """The Sinkhorn options at ``epsilon``.

        ``symmetric_kernel`` says the caller's similarity is symmetric *and* alternation mixes slowly on it
        (Gaussian kernels on unbounded clouds: >5·10⁴ iterations at ε = 0.1 vs 25 averaged); it enables ``auto``.
        Bounded kernels on the sphere (|c| ≤ β) converge in ~5 alternating iterations, where the averaged
        loop needs ~12 and is slower (benchmarks/sinkformer.py), so callers there leave it False.
        """
        auto = symmetric_kernel and self.sinkhorn_mode == "balanced" and self.backend == "native"
        sym = self.symmetric == "on" or (self.symmetric == "auto" and auto)
        return Sinkhorn(epsilon=epsilon, mode=self.sinkhorn_mode, tau=float(self.tau), iterations=int(self.iterations), threshold=float(self.threshold), backend=self.backend, symmetric=sym)

    def sinkhorn_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("sinkhorn_mode", "tau", "iterations", "threshold", "backend", "symmetric")}

    def __post_init__(self):
        super().__post_init__()
        try:
            self.sinkhorn_spec(1.0, symmetric_kernel=True)
        except ValueError as e:
            raise ValueError(f"Sinkhorn options: {e}") from None


def validate_common(cfg) -> None:
    """Range checks for the parameters that several studies share (by name)."""
    if hasattr(cfg, "beta"):
        check_values("beta", cfg.beta, lo=0.0)
    if hasattr(cfg, "d"):
        check_values("d", cfg.d, lo=2, integer=True)
    if hasattr(cfg, "n"):
        check_values("n", cfg.n, lo=2, integer=True)
    if hasattr(cfg, "delta"):
        check_values("delta", cfg.delta, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if hasattr(cfg, "T"):
        check_values("T", cfg.T, lo=0.0, lo_open=True)
    if hasattr(cfg, "n_times"):
        require(isinstance(cfg.n_times, int) and cfg.n_times >= 2, f"--n-times must be an integer ≥ 2, got {cfg.n_times!r}.")
    if hasattr(cfg, "realizations"):
        require(isinstance(cfg.realizations, int) and cfg.realizations >= 1, f"--realizations must be an integer ≥ 1, got {cfg.realizations!r}.")
    if isinstance(cfg, SolverFields):
        cfg.solver_config()  # raises with a clear message


def float_dtype(cfg):
    return jnp.float64 if cfg.dtype == "float64" else jnp.float32


def time_grid(T: float, n_times: int) -> np.ndarray:
    return np.linspace(0.0, float(T), int(n_times))


def new_figure(nrows: int = 1, ncols: int = 1, *, size=(4.2, 3.4), **kw):
    """A pyplot-free figure (no global state, no GUI backend) and its axes array."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save_figure(fig, outdir: str | Path, name: str) -> Path:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{name}.png"
    # "tight": a grid override can leave one narrow column of panels, and the constrained layout
    # then clips a suptitle wider than the figure (seen on random-weights with --d 32).
    fig.savefig(path, dpi=130, bbox_inches="tight")
    return path


