"""float32 means float32 on every backend: the sweep engine and the solvers trace every matrix
product at HIGHEST precision. On NVIDIA GPUs XLA's default for float32 products is TF32, measured
on an H100 at 3.3e-4 relative error (5.6e-4 on the Gram matrix of unit vectors, half the phase
diagram's δ = 1e-3). This CPU cannot show TF32's error, so the tests read the traced programs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sinkflow import sphere, studies
from sinkflow.dynamics.attention import attention_field, sa
from sinkflow.dynamics.noisy import solve_noisy
from sinkflow.solve import SolverConfig, solve
from sinkflow.sweep import run_sweep

PD = studies.get("phase-diagram")
EXACT = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)


def _dot_precisions(jaxpr) -> list:
    """The ``precision`` of every dot_general in ``jaxpr`` and in the jaxprs nested in it
    (scan, while, cond, pjit, custom derivatives)."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn.params["precision"])
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else (p,):
                inner = sub if hasattr(sub, "eqns") else getattr(sub, "jaxpr", None)
                if hasattr(inner, "eqns"):
                    found += _dot_precisions(inner)
    return found


def test_sweep_chunks_trace_every_product_in_float32_proper(tmp_path):
    seen = []

    def recording(cfg, static):
        inner = PD.make_chunk(cfg, static)

        def chunk(values, keys):
            seen.extend(_dot_precisions(jax.make_jaxpr(inner)(values, keys).jaxpr))
            return inner(values, keys)

        return chunk

    cfg = PD.config("small", d=(3,), n=(4,), beta=(1.0,), realizations=2, T=1.0, n_times=3, dtype="float32")
    rep = run_sweep(dataclasses.replace(PD, make_chunk=recording), cfg, tmp_path / "r", progress=False)
    assert rep.merged and len(seen) >= 3  # logits, attention product, observables
    assert all(p == EXACT for p in seen), set(seen)
    # A field traced bare, outside the engine and the solvers, carries the backend's default
    # (None, TF32 on a GPU): the check above can fail.
    bare = _dot_precisions(jax.make_jaxpr(lambda x: attention_field(0.0, x, sa(1.0)))(jnp.ones((4, 3), jnp.float32)).jaxpr)
    assert bare and all(p is None for p in bare)


def test_solvers_trace_every_product_in_float32_proper():
    x0 = sphere.uniform(jax.random.key(1), (5,), 3, dtype=jnp.float32)
    ts = np.linspace(0.0, 1.0, 3)
    for method in ("rk4", "tsit5"):
        cfg = SolverConfig(method=method, dt=0.1)
        found = _dot_precisions(jax.make_jaxpr(lambda x: solve(attention_field, x, ts, sa(1.0), config=cfg).ys)(x0).jaxpr)
        assert found and all(p == EXACT for p in found), (method, set(found))
    found = _dot_precisions(
        jax.make_jaxpr(lambda x: solve_noisy(attention_field, x, ts, sa(1.0), kappa=0.1, key=jax.random.key(2), dt=0.1).ys)(x0).jaxpr
    )
    assert found and all(p == EXACT for p in found), set(found)
