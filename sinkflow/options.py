"""Config option groups that several studies share: the time stepper, the Sinkhorn normalisation and
the exact span reduction.

Each is a frozen dataclass mixin of :class:`~sinkflow.study.StudyConfig` whose fields
carry their allowed values (validated by ``StudyConfig``), a method that builds the
library object they describe (:class:`~sinkflow.solve.SolverConfig`,
:class:`~sinkflow.sinkhorn.Sinkhorn`), and their part of the run's solver provenance
(:meth:`~sinkflow.study.StudyConfig.solver_provenance`, combined through ``super()``).
Also the two conversions every study needs: its float dtype and its save times.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .sinkhorn import BACKENDS, MODES, Sinkhorn
from .solve import ADAPTIVE_METHODS, FIXED_METHODS, SolverConfig
from .study import StudyConfig, param

__all__ = ["SolverOptions", "PreciseSolverOptions", "SinkhornOptions", "SpanReductionOptions", "float_dtype", "time_grid"]


@dataclasses.dataclass(frozen=True)
class SolverOptions(StudyConfig):
    """Time stepping options shared by ODE studies."""

    method: str = param("rk4", "time stepper", kind=str, choices=FIXED_METHODS + ADAPTIVE_METHODS)
    dt: float = param(0.1, "step size (fixed methods) or first step (adaptive)", kind=float, lo=0.0, open="lo")
    rtol: float = param(1e-6, "relative tolerance (adaptive methods)", kind=float, lo=0.0, open="lo")
    atol: float = param(1e-8, "absolute tolerance (adaptive methods)", kind=float, lo=0.0, open="lo")

    def __post_init__(self):
        super().__post_init__()
        self.solver_config()  # cross-field rules (e.g. the scan backend takes fixed steps) with their message

    def solver_config(self) -> SolverConfig:
        return SolverConfig(method=self.method, dt=self.dt, rtol=self.rtol, atol=self.atol)

    def solver_dict(self) -> dict:
        return dataclasses.asdict(self.solver_config())

    def solver_provenance(self) -> dict:
        return {**super().solver_provenance(), **self.solver_dict()}


@dataclasses.dataclass(frozen=True)
class PreciseSolverOptions(SolverOptions):
    """Solver options defaulting to adaptive Tsit5 at rtol 1e-10 in float64 (for closed-form checks)."""

    method: str = param("tsit5", "time stepper", kind=str, choices=FIXED_METHODS + ADAPTIVE_METHODS)
    rtol: float = param(1e-10, "relative tolerance (adaptive methods)", kind=float, lo=0.0, open="lo")
    atol: float = param(1e-12, "absolute tolerance (adaptive methods)", kind=float, lo=0.0, open="lo")
    dtype: str = param("float64", "floating point precision", kind=str, choices=("float32", "float64"))


@dataclasses.dataclass(frozen=True)
class SinkhornOptions(StudyConfig):
    """Options of the Sinkhorn normalisation shared by Sinkformer studies (ε is the study's own, usually swept)."""

    sinkhorn_mode: str = param("balanced", "Sinkhorn mode: balanced, unbalanced (τ) or fixed (k iterations)", kind=str, choices=MODES)
    tau: float = param(1.0, "column-marginal relaxation τ ∈ (0, 1] (unbalanced mode; ott's tau_b)", kind=float, lo=0.0, hi=1.0, open="lo")
    iterations: int = param(2000, "max Sinkhorn normalisations (balanced/unbalanced) or exactly k (fixed)", kind=int, lo=1)
    threshold: float = param(1e-6, "Sinkhorn stopping threshold on the L1 marginal error", kind=float, lo=0.0, open="lo")
    backend: str = param("native", "Sinkhorn implementation: native (log-domain loop) or ott (ott-jax)", kind=str, choices=BACKENDS)
    symmetric: str = param("auto", "averaged symmetric Sinkhorn loop: auto (balanced, native, and a symmetric kernel that mixes slowly, e.g. exp(−‖x−y‖²/ε)), on, off", kind=str, choices=("auto", "on", "off"))

    def sinkhorn_spec(self, epsilon, *, symmetric_kernel: bool = False) -> Sinkhorn:
        """The Sinkhorn options at ``epsilon``.

        ``symmetric_kernel`` says the caller's similarity is symmetric *and* alternation may mix slowly on it;
        it enables ``auto``. Gaussian kernels on unbounded clouds: >5·10⁴ alternating iterations at ε = 0.1
        against 25 averaged. Bounded kernels on the sphere (|c| ≤ β) converge in ~5 alternating iterations on
        spread-out tokens (where the averaged loop needs ~12, benchmarks/sinkformer.py), but on *clustered*
        tokens, which attention dynamics produce, alternation needs 8 000–12 000 at β = 6 against 6–10
        averaged (sinkformer-phase-diagram), so dynamics on the sphere pass True as well.
        """
        auto = symmetric_kernel and self.sinkhorn_mode == "balanced" and self.backend == "native"
        sym = self.symmetric == "on" or (self.symmetric == "auto" and auto)
        return Sinkhorn(epsilon=epsilon, mode=self.sinkhorn_mode, tau=float(self.tau), iterations=int(self.iterations), threshold=float(self.threshold), backend=self.backend, symmetric=sym)

    def sinkhorn_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("sinkhorn_mode", "tau", "iterations", "threshold", "backend", "symmetric")}

    def solver_provenance(self) -> dict:
        return {**super().solver_provenance(), **self.sinkhorn_dict()}

    def __post_init__(self):
        super().__post_init__()
        try:
            self.sinkhorn_spec(1.0, symmetric_kernel=True)
        except ValueError as e:
            raise ValueError(f"Sinkhorn options: {e}") from None


@dataclasses.dataclass(frozen=True)
class SpanReductionOptions(StudyConfig):
    """The exact span reduction of V = I attention dynamics (:func:`sinkflow.sphere.span_basis`): a d > n
    cell is solved in the n-dimensional span of its start, on the same uniform draw expressed in
    coordinates of that span. Exact for every observable made of inner products; a study mixes this
    in only where its dynamics have V = I and no ambient noise, and its observables are such."""

    reduce: str = param("auto", "exact span reduction for d > n (V = I: the span of the start is invariant; sphere.span_basis): auto or off", kind=str, choices=("auto", "off"))

    def reduces(self, d: int, n: int) -> bool:
        """Whether a cell of dimension d with n tokens is solved in its span."""
        return self.reduce == "auto" and int(d) > int(n)

    def solver_provenance(self) -> dict:
        return {**super().solver_provenance(), "span_reduction": "d > n cells solved in the n-dimensional span of their start (exact)" if self.reduce == "auto" else "off"}


def float_dtype(cfg):
    return jnp.float64 if cfg.dtype == "float64" else jnp.float32


def time_grid(T: float, n_times: int) -> np.ndarray:
    """``n_times`` equally spaced save times in [0, T]."""
    return np.linspace(0.0, float(T), int(n_times))
