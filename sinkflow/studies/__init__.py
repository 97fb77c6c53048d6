"""The studies: one module per study, found by name (the application layer above the library).

``sinkflow run layernorm-schemes`` runs the module ``layernorm_schemes`` of this package,
whose ``STUDY`` (a :class:`sinkflow.study.Study`) names itself the same way (tested). The
study files live in the repository's top-level ``experiments/`` folder; a wheel ships them
inside this package (``pyproject.toml``: ``force-include``), and a source checkout adds that
folder to this package's ``__path__`` below. No generic top-level ``experiments`` package is
installed, and no library module imports this one: only :mod:`sinkflow.cli`, the
benchmarks and the tests do.

Adding a study is one file in ``experiments/``: a Config, presets ``tiny``/``small``/``paper``,
a cell (or chunk) function, ``plot(ds, cfg, outdir)``, ``checks(ds, cfg)`` and ``STUDY``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

__all__ = ["names", "get", "all_studies", "module_name", "summary", "ALIASES", "REFERENCES"]

#: The works that study sources cite, by the abbreviations they use.
REFERENCES = {
    "GLPR": "Geshkovski, Letrouit, Polyanskiy, Rigollet, A mathematical perspective on Transformers (arXiv 2312.10794)",
    "MF": "Rigollet, The mean-field dynamics of Transformers (arXiv 2512.01868)",
    "NORM": "Karagodin et al., Normalization in attention dynamics (arXiv 2510.22026)",
    "CAUSAL": "Karagodin, Polyanskiy, Rigollet, Clustering in causal attention masking (arXiv 2411.04990)",
    "GKPR": "Geshkovski, Koubbi, Polyanskiy, Rigollet, Dynamic metastability in the self-attention model (2024)",
    "SINK": "Sander, Ablin, Blondel, Peyré, Sinkformers: Transformers with doubly stochastic attention (AISTATS 2022)",
    "NOTEARS": "Zheng, Aragam, Ravikumar, Xing, DAGs with NO TEARS (NeurIPS 2018)",
    "Chen et al. 2025": "Chen et al. (2025), the long-context phase transition of softmax attention, as cited by MF",
    "Koß 2025": "Koß, Stabilizing multi-nation AI governance through a stable stochastic differential N-player game between intermediate representations of Causeformers (Heidelberg, 2025)",
    "Koß agenda": "Koß, Stable Alignment Research Agenda (Heidelberg, 2025), §3.1 free energy",
    "JKO": "Jordan, Kinderlehrer, Otto, The variational formulation of the Fokker–Planck equation (SIAM J. Math. Anal., 1998)",
    "OTVIEW": "From attention to diffusion: a unified entropic optimal transport view (anonymous preprint, 2025)",
    "CD14": "Cuturi, Doucet, Fast computation of Wasserstein barycenters (ICML 2014)",
    "MINILM": "Wang et al., MiniLM (NeurIPS 2020), as sentence-transformers/all-MiniLM-L6-v2 (Reimers and Gurevych, Sentence-BERT, EMNLP 2019)",
}

_CHECKOUT = Path(__file__).resolve().parents[2]
if (_CHECKOUT / "experiments").is_dir() and (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "sinkflow" / "studies").is_dir():
    __path__.append(str(_CHECKOUT / "experiments"))  # noqa: F821  (a package's __path__)

#: Old names still accepted for a while; ``get`` says what they are called now.
ALIASES = {
    "normalization": "layernorm-schemes",
    "normalizations": "kernel-normalizations",
}


def module_name(name: str) -> str:
    """The module of a study name: ``layernorm-schemes`` ↔ ``layernorm_schemes``."""
    return name.replace("-", "_")


def names() -> list[str]:
    """Every study's CLI name, from the module names, sorted."""
    found = {m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}  # noqa: F821
    return sorted(found)


def summary(name: str) -> str:
    """The first line of a study module's docstring, read without importing it (fast ``--help``)."""
    import ast

    for folder in __path__:  # noqa: F821
        path = Path(folder) / f"{module_name(name)}.py"
        if path.is_file():
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            return doc.splitlines()[0] if doc else name
    return name


def canonical(name: str) -> str:
    """The current name of ``name`` (itself unless it is an old alias); warns on stderr for an alias."""
    if name in ALIASES:
        new = ALIASES[name]
        print(f"sinkflow: note: study {name!r} is now called {new!r}; the old name will be removed.", file=sys.stderr)
        return new
    return name


def get(name: str):
    """The ``STUDY`` of the study called ``name`` (old aliases accepted with a note)."""
    name = canonical(name)
    known = names()
    if name not in known:
        raise ValueError(f"unknown study {name!r}; studies: {', '.join(known)} (see `sinkflow list`).")
    study = importlib.import_module(f"{__name__}.{module_name(name)}").STUDY
    if study.name != name:
        raise RuntimeError(f"the module {module_name(name)}.py defines the study {study.name!r}; a study's name must be its module's name with '-' for '_'.")
    return study


def all_studies():
    return [get(name) for name in names()]
