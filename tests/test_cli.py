"""CLI: every bad input is a clear error before compute; run → plot → check smoke runs."""

import json

import numpy as np
import pytest

from sinkflow import studies
from sinkflow.cli import main


@pytest.mark.parametrize("study", studies.names())
def test_tiny_preset_runs_plots_and_checks(study, tmp_path, capsys):
    """Every registered study's tiny preset goes run → results.nc → figures → checks, all passing."""
    out = tmp_path / study
    assert main(["run", study, "--preset", "tiny", "--out", str(out)]) == 0, capsys.readouterr()
    text = capsys.readouterr().out
    assert "grid:" in text and "passed" in text
    figs = list((out / "figures").glob("*.png"))
    assert figs and all(f.stat().st_size > 5000 for f in figs)
    checks = json.loads((out / "checks.json").read_text())
    assert checks and all(c["passed"] for c in checks)
    assert (out / "checks.csv").exists()
    # checks again from saved data only
    assert main(["check", str(out)]) == 0
    # one failed cell (status 3, NaN outputs, as a NaN state leaves them): figures and checks from the
    # saved data still work, its numbers are never read as data, and the status check fails first
    from sinkflow.store import load_results

    ds = load_results(out).load()
    first = {d: 0 for d in ds["status"].dims}
    ds["status"][first] = 3
    for name, var in ds.data_vars.items():
        if name != "status" and np.issubdtype(var.dtype, np.floating):
            var[first] = np.nan
    spec = studies.get(study)
    assert spec.make_figures(ds, tmp_path / "failed-figures")
    rows = spec.run_checks(ds)
    assert rows[0].name == "all cells solved" and not rows[0].passed


@pytest.mark.parametrize(
    "args,match",
    [
        (["--beta", "-1"], "--beta"),
        (["--d", "1"], "--d"),
        (["--n", "1"], "--n"),
        (["--delta", "0"], "--delta"),
        (["--delta", "1.5"], "--delta"),
        (["--T", "0"], "--T"),
        (["--T", "nan"], "--T"),
        (["--beta", "lin:0:1:0"], "NUM"),
        (["--beta", ""], "empty"),
        (["--d", "2.5"], "integers"),
        (["--realizations", "0"], "--realizations"),
        (["--method", "tsit5", "--rtol", "-1"], "rtol"),
        (["--shard", "3/2"], "shard"),
        (["--shard", "a/b"], "i/N"),
        (["--devices", "0"], "--devices"),
        (["--chunk-size", "0"], "--chunk-size"),
        (["--seed", "-1"], "--seed"),
        (["--n-times", "1"], "--n-times"),
    ],
)
def test_bad_input_is_a_clear_error_before_compute(args, match, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["run", "phase-diagram", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert "sinkflow: error:" in err and match in err
    assert not out.exists()


@pytest.mark.parametrize(
    "study,args,match",
    [
        ("random-weights", ["--weights", "qk-bogus"], "--weights"),
        ("random-weights", ["--weights", "layerwise", "--T", "2.5"], "integer"),
        ("random-weights", ["--weights", "layerwise", "--T", "7", "--n-times", "30"], "multiple of T"),
        ("metastability", ["--window-lo", "300", "--window-hi", "200"], "--window-lo"),
        ("metastability", ["--T", "1e-3", "--t-min", "1e-2"], "--T"),
        ("sinkformer-phase-diagram", ["--model", "sa,bogus"], "--model: 'bogus' is not known"),
        ("masked-sinkhorn", ["--mask", "er"], "use any of causal, er-dag, tree-dag"),
        ("graph-heat", ["--graph", "path,wheel"], "--graph"),
        ("graph-heat", ["--graph", "er:2"], "edge probability"),
        ("dag-spectra", ["--graph", "cycle-dag"], "directed cycle"),
        ("dag-spectra", ["--graph", "path"], "undirected (as in graph-heat)"),
        ("dag-spectra", ["--graph", "tree:x"], "arity"),
        ("masked-sinkhorn", ["--fixed-k", "3,1"], "increasing without repeats"),
        ("masked-sinkhorn", ["--tau", "0.5,1.5"], "--tau"),
    ],
)
def test_study_specific_bad_input(study, args, match, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["run", study, "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert "sinkflow: error:" in err and match in err
    assert not out.exists()


def test_unknown_parameter_and_study_rejected(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "phase-diagram", "--out", "x", "--gamma", "1"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        main(["run", "no-such-study", "--out", "x"])
    assert "invalid choice" in capsys.readouterr().err


def test_list_and_help(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in studies.names():
        assert name in text
    assert "--beta" in text and "paper=" in text
    with pytest.raises(SystemExit) as e:
        main(["run", "phase-diagram", "--help"])
    assert e.value.code == 0
    assert "lin:START:STOP:NUM" in capsys.readouterr().out


def test_plot_without_results_is_an_error(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_phase_diagram_checks_fail_on_wrong_data(tmp_path):
    """The theorem checks pass on the simulated P and fail when it is wrong: no collapse by T, or
    a transition at the wrong time."""
    from sinkflow.store import load_results

    out = tmp_path / "pd"
    # d ≫ n narrows the finite-d band (±1.5 here) so both checks apply with T = 20
    args = ["--d", "64", "--n", "4", "--beta", "0,1", "--realizations", "16", "--T", "20", "--n-times", "41"]
    assert main(["run", "phase-diagram", "--out", str(out), *args]) == 0
    ds = load_results(out)
    checks = studies.get("phase-diagram").run_checks

    def verdicts(data):
        return {c.name.split(" (")[0]: c.passed for c in checks(data)}

    verdict = verdicts(ds)
    assert verdict["collapse by T for d ≥ n"] and verdict["transition time on Γ"]
    stuck = ds.copy(deep=True)
    stuck["P"][..., -1] = 0.9
    assert not verdicts(stuck)["collapse by T for d ≥ n"]
    late = ds.copy(deep=True)
    late["P"].values[...] = np.concatenate([np.zeros_like(ds["P"].values[..., :8]), ds["P"].values[..., :-8]], axis=-1)  # 4 time units late
    assert not verdicts(late)["transition time on Γ"]


def test_sinkhorn_gaussian_checks_fail_on_swapped_gains(tmp_path):
    """The closed-form checks pass on the simulated gains and fail when Sinkhorn's and softmax's
    gains are swapped (they differ by ≥ 0.036 on the paper grid)."""
    from sinkflow.store import load_results

    out = tmp_path / "sg"
    args = ["--s", "1", "--epsilon", "0.5", "--dim", "1", "--n", "100,200,400", "--realizations", "32"]  # swapped: z = 10 and 8
    assert main(["run", "sinkhorn-gaussian", "--out", str(out), "--no-plot", *args]) == 0
    ds = load_results(out)
    checks = studies.get("sinkhorn-gaussian").run_checks
    assert all(c.passed for c in checks(ds))
    swapped = ds.copy(deep=True)
    for a in ("", "_se"):
        swapped[f"lam_sinkhorn{a}"], swapped[f"lam_softmax{a}"] = ds[f"lam_softmax{a}"], ds[f"lam_sinkhorn{a}"]
    verdict = {c.name.split(" =")[0]: c.passed for c in checks(swapped)}
    assert not verdict["λ_sinkhorn"] and not verdict["λ_softmax"]
    # The reported power (detects, in λ) is where the check turns: data shifted by a little more fail.
    margin = {c.name.split(" =")[0]: c.margin for c in checks(ds) if c.name.startswith("λ_")}
    assert margin["λ_sinkhorn"] < 0.005  # 0.6% of λ: whitened samples (i.i.d. ones passed 2% off)
    for name, m in margin.items():
        fails = []
        for sign in (1.0, -1.0):
            shifted = ds.copy(deep=True)
            shifted[f"lam_{name[2:]}"] = ds[f"lam_{name[2:]}"] + sign * 1.05 * m
            fails.append(not {c.name.split(" =")[0]: c.passed for c in checks(shifted)}[name])
        assert any(fails), name


def test_causal_leader_monotonicity_checks_fail_on_wrong_data(tmp_path):
    """Token 2's distance to the leader and, inside the leader's hemisphere, the farthest
    token's never grow (derived); the checks pass on the simulation and fail on a small bump."""
    from sinkflow.store import load_results

    out = tmp_path / "cl"
    args = ["--d", "3", "--n", "4", "--weights", "qk-gaussian", "--beta", "0,8", "--realizations", "3", "--T", "40", "--n-times", "81"]
    assert main(["run", "causal-leader", "--out", str(out), "--no-plot", *args]) == 0
    ds = load_results(out)
    checks = studies.get("causal-leader").run_checks

    def verdicts(data):
        return {c.name: c.passed for c in checks(data)}

    assert all(verdicts(ds).values())
    bumped = ds.copy(deep=True)
    bumped["dist_token"][..., 40, 1] += 1e-6  # token 2 moves away once
    assert not verdicts(bumped)["token 2 approaches x_1 monotonically"]
    far = ds.copy(deep=True)
    far["dist_token"][..., 60, :] += 1e-6  # every token, late (inside the hemisphere by then)
    assert not verdicts(far)["farthest token monotone in x_1's hemisphere"]


def test_list_valued_options_are_set_from_the_command_line(tmp_path):
    """masked-sinkhorn's --tau and --fixed-k are lists but not grid axes; they take list syntax
    (one form used to crash with a TypeError, the other was refused)."""
    from sinkflow.cli import _config_from_args, build_parser

    args = build_parser("masked-sinkhorn").parse_args(["run", "masked-sinkhorn", "--out", str(tmp_path), "--tau", "0.3,0.6", "--fixed-k", "1,3"])
    cfg = _config_from_args(studies.get("masked-sinkhorn"), args)
    assert cfg.tau == (0.3, 0.6) and cfg.fixed_k == (1, 3)


def test_result_files_are_readable_by_others(tmp_path):
    import os

    out = tmp_path / "r"
    assert main(["run", "long-context", "--preset", "tiny", "--out", str(out), "--no-plot"]) == 0
    mask = os.umask(0)
    os.umask(mask)
    for f in [out / "results.nc", out / "manifest.json", out / "checks.json", *(out / "chunks").glob("*.nc")]:
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f
