"""sinkflow — transformers as interacting particle systems on the sphere (JAX, diffrax, ott-jax).

Where things live (imports point downward only; tested):

1. Geometry and operators — ``sphere`` (points, tangent projection, sampling, special
   starts), ``attention`` (one head: logits, softmax / 1/n / Sinkhorn weights, masks,
   chunked long context), ``sinkhorn`` (the one Sinkhorn wrapper, ott-jax or native),
   ``graphs`` (graph families, masks, Laplacians, acyclicity), ``precision``.
2. Particle systems — ``dynamics/``: one small module per system, each a vector field
   ``f(t, x, params)`` with an equinox parameter module (``attention``: SA/USA/Sinkformer
   and the circle model, with the ``MODELS`` map; ``heat``: the Sinkformer heat flow in R^d;
   ``layernorm``; ``hybrid``: attention/MLP blocks; ``graph``: graph heat flow; ``noisy``:
   the noisy attention SDE; ``langevin``: Langevin dynamics of a potential, in R^d or on the sphere). **A new particle system is a new module in** ``dynamics/``.
3. Solvers — ``solve`` (ODEs through diffrax, projected to the sphere, fixed or adaptive,
   failures as status codes), ``sde`` (SDEs in R^d or on the sphere: Euler–Maruyama with a
   per-key Brownian path), ``batching``.
4. Measurements — ``observables`` (pure functions of a configuration, cheap enough to save
   at every time: **a new observable goes here**), ``entropy`` (k-NN entropy estimators),
   ``spectra`` (eigenvalues, gaps, eigenspaces, Jordan blocks, limit projectors),
   ``estimators`` (decay rates, transition times, n → ∞ limits read off saved results:
   **a new estimator goes here**), ``theory`` (every closed form, tested; one module per
   system: ``attention``, ``fokker_planck``), ``dag_learn``.
5. The engine — ``study`` (what a study is: typed config with validated fields, presets
   ``tiny``/``small``/``paper``, cell function, figures, checks), ``options`` (shared config
   groups: solver, Sinkhorn), ``grid``, ``sweep`` (grid → compiled chunks → devices →
   store), ``store`` (atomic chunks, resume, run identity), ``checks``, ``plots``,
   ``progress``.
6. The application — ``studies`` (finds the study modules by name) and ``cli``.
   **A new study is one file in the repository's** ``experiments/`` **folder**
   (``sinkflow run my-study`` ↔ ``experiments/my_study.py``); nothing else changes.
"""

__version__ = "0.1.0"
