"""Studies: one module per theorem plot, each exposing ``STUDY`` (a :class:`sinkflow.study.Study`).

The registry maps CLI names to modules; modules are imported lazily so that
``sinkflow list`` and ``--help`` stay fast.
"""

from __future__ import annotations

import importlib

REGISTRY = {
    "phase-diagram": "experiments.phase_diagram",
    "orthogonal-start": "experiments.orthogonal_start",
    "histograms": "experiments.histograms",
    "energy": "experiments.energy",
    "sinkhorn-gaussian": "experiments.sinkhorn_gaussian",
    "sinkformer-heat": "experiments.sinkformer_heat",
    "normalizations": "experiments.normalizations",
    "sinkformer-phase-diagram": "experiments.sinkformer_phase_diagram",
    "long-context": "experiments.long_context",
    "normalization": "experiments.normalization",
    "usa-rates": "experiments.usa_rates",
    "noisy": "experiments.noisy",
    "metastability": "experiments.metastability",
    "random-weights": "experiments.random_weights",
    "graph-heat": "experiments.graph_heat",
    "causal-leader": "experiments.causal_leader",
    "masked-sinkhorn": "experiments.masked_sinkhorn",
    "hybrid": "experiments.hybrid",
    "dag-recovery": "experiments.dag_recovery",
    "dag-spectra": "experiments.dag_spectra",
}


def get(name: str):
    if name not in REGISTRY:
        raise ValueError(f"unknown study {name!r}; studies: {', '.join(REGISTRY)} (see `sinkflow list`).")
    return importlib.import_module(REGISTRY[name]).STUDY


def all_studies():
    return [get(name) for name in REGISTRY]
