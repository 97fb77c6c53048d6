"""Particle systems: one small module per system, each a vector field ``f(t, x, params)`` (diffrax's
signature) with its parameters as an equinox module, plus what is specific to solving it.

============  ==================================================================  =========================
module        system                                                              state
============  ==================================================================  =========================
attention     SA / USA / Sinkformer on the sphere, the circle model (d = 2)       (..., n, d) on S^{d−1}
heat          the Sinkformer heat flow (Gaussian kernel, Sinkhorn or softmax)     (..., n, d) in R^d
layernorm     LayerNorm placements as speed factors (Post/Pre/Mix/Peri-LN, …)     (..., n, d) in R^d
hybrid        attention/MLP blocks, switch times as step boundaries               (n, d) on S^{d−1}
graph         graph heat flow ρ' = −Lρ                                            (n,) or (n, d)
noisy         attention drift + Brownian motion on the sphere (an SDE)            (..., n, d) on S^{d−1}
langevin      dX = −∇U dt + √(2ν) dW with potentials as modules (an SDE)          (..., n, d) in R^d or S^{d−1}
============  ==================================================================  =========================

:data:`MODELS` maps an attention flow's name (``sa``, ``usa``, ``sinkformer``) to the
normalisation of its weights, so no study spells that mapping out. ODEs are solved by :func:`sinkflow.solve.solve`, SDEs by
:func:`sinkflow.sde.solve_sde`. A new particle system is a new module here.
"""

from .attention import MODELS as MODELS

__all__ = ["MODELS"]
