"""Closed forms and reference solutions: every one tested, each in the module of its system.

- :mod:`.attention` — the attention dynamics on the sphere (GLPR, MF: equiangular ODEs, Γ_{∞,δ},
  bounds, local rates, long context, two-cluster reduction), the Sinkformer heat flow's Gaussian
  forms (MATH.md §2) and the noisy Kuramoto branch;
- :mod:`.fokker_planck` — Ornstein–Uhlenbeck moments, entropy, free energy, dissipation and KL,
  Euler–Maruyama's stationary bias, Brownian motion and von Mises–Fisher laws on the sphere;
- :mod:`.game` — the barycenter game: 1-D Gaussian barycenters and their relaxation, the
  linear–quadratic equilibrium's Riccati gain and cost (mean field and N players).

Every name is re-exported here: ``from sinkflow import theory; theory.transition_time(...)``.
"""

from .attention import *  # noqa: F403
from .attention import __all__ as _attention_all
from .fokker_planck import *  # noqa: F403
from .fokker_planck import __all__ as _fokker_planck_all
from .game import *  # noqa: F403
from .game import __all__ as _game_all

__all__ = [*_attention_all, *_fokker_planck_all, *_game_all]
