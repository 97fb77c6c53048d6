"""Matrix products in the precision the result says: float32 means float32 on every backend.

XLA computes float32 matrix products on NVIDIA GPUs in TF32 by default (a 10-bit mantissa).
Measured on an H100 (jax 0.11.2, 2026-11-23): a 512² product had relative error 3.3e-4, and
the Gram matrix ⟨x_i, y_j⟩ of unit vectors in R^16 had absolute error 5.6e-4 against float64,
half of the δ = 1e-3 at which the phase diagram thresholds ⟨x_1, x_2⟩ ≥ 1 − δ. A result
labelled ``float32`` would then not be float32. So the sweep engine and the solvers trace
every product at ``HIGHEST`` precision (float32 proper: 3.6e-7 on the same product; on TPUs
the multi-pass float32 emulation). On CPUs float32 products are float32 anyway, and float64
is unaffected everywhere: this changes nothing there.

Code that calls the library's fields or observables directly on a GPU, outside :func:`run_sweep`
and the solvers, gets the same with ``with exact_matmuls(): ...`` around its trace.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax

__all__ = ["MATMUL_PRECISION", "exact_matmuls", "with_exact_matmuls"]

MATMUL_PRECISION = "highest"


def exact_matmuls():
    """Context manager: matrix products traced inside it run at :data:`MATMUL_PRECISION`."""
    return jax.default_matmul_precision(MATMUL_PRECISION)


def with_exact_matmuls(fn: Callable) -> Callable:
    """``fn`` traced (and run) under :func:`exact_matmuls`; wrap it before ``jax.jit``."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with exact_matmuls():
            return fn(*args, **kwargs)

    return wrapped
