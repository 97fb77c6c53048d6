"""The fokker-planck study's checks pass on its simulation and fail on data that is wrong by the
amounts that matter."""

import numpy as np

from sinkflow import studies
from sinkflow.store import load_results
from sinkflow.sweep import run_sweep


def test_checks_pass_on_the_simulation_and_fail_on_perturbed_data(tmp_path):
    study = studies.get("fokker-planck")
    cfg = study.config("tiny", n=(2000,), T=2.0, n_times=11)  # enough particles that 25% and 40% errors are > 5 SE
    run_sweep(study, cfg, tmp_path / "r", progress=False)
    ds = load_results(tmp_path / "r")

    def verdicts(data):
        return {c.name: c.passed for c in study.run_checks(data)}

    assert all(verdicts(ds).values()), verdicts(ds)
    wrong_var = ds.copy(deep=True)
    wrong_var["var"].loc[{"system": "ou"}] = wrong_var["var"].sel(system="ou") * 1.25  # 25% off: ≈ 9 SE at N = 6000 particles
    assert not verdicts(wrong_var)["OU mean and variance follow the closed forms"]
    reversed_entropy = ds.copy(deep=True)
    h = reversed_entropy["entropy"].sel(system="ou").values
    reversed_entropy["entropy"].loc[{"system": "ou"}] = 2 * h[..., :1] - h  # entropy changes with the wrong sign
    v = verdicts(reversed_entropy)
    assert not v["entropy rises iff s₀ < ν/θ (diffusive vs contractive)"]
    fast = ds.copy(deep=True)
    t = fast["t"].values
    m = fast["mean"].sel(system="sphere").values
    fast["mean"].loc[{"system": "sphere"}] = m * np.exp(-0.2 * t)  # decays 40% faster at ν = 0.5, d = 2
    assert not verdicts(fast)["sphere, θ = 0: E⟨X_t, e₁⟩ decays at (d − 1)ν"]
