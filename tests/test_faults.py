"""Faults are loud: a non-finite state is a failed cell, never a plausible number with status ok."""

import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import studies
from sinkflow.solve import SolverConfig, solve
from sinkflow.store import load_results
from sinkflow.sweep import run_sweep


def test_a_finite_observable_of_a_nan_state_is_not_success():
    """ẏ = y² from y(0) = 1 blows up at t = 1; the saved comparison y > 0 is False on NaN, so only
    the final state shows the failure."""
    sol = solve(lambda t, y, a: y * y, jnp.ones(3), np.linspace(0.0, 2.0, 5), config=SolverConfig("rk4", dt=0.01), observable=lambda t, y, a: jnp.mean(y > 0.0))
    assert bool(jnp.all(jnp.isfinite(sol.ys))) and int(sol.code) == 0
    assert int(sol.status) == 3 and int(sol.final_status()) == 3
    # per trajectory of a batch solved as one state
    sol = solve(lambda t, y, a: a * y * y, jnp.ones((2, 3)), np.linspace(0.0, 2.0, 5), jnp.asarray([[0.1], [1.0]]), config=SolverConfig("rk4", dt=0.01), batch_ndim=1)
    assert sol.final_status(axis=0).tolist() == [0, 3]


def test_usa_overflow_is_a_failed_cell(tmp_path):
    """USA at β = 60 in float32 overflows (e^{β⟨x_i,x_j⟩}/n): the phase diagram used to record P = 0
    with status ok and a passing "all cells solved" check."""
    study = studies.get("phase-diagram")
    cfg = study.config("tiny", model="usa", beta=(0.0, 60.0), d=(4,), dtype="float32")
    rep = run_sweep(study, cfg, tmp_path / "r", progress=False)
    ds = load_results(tmp_path / "r")
    assert rep.failed == 1
    assert int(ds["status"].sel(beta=0.0).item()) == 0 and int(ds["status"].sel(beta=60.0).item()) == 3
    first = study.run_checks(ds)[0]
    assert first.name == "all cells solved" and not first.passed and "1 non_finite" in first.detail


def test_chunks_are_bound_to_their_run_even_without_the_manifest(tmp_path, capsys):
    """Lose manifest.json and re-run with another non-swept value: the old chunks used to be merged
    under the new config. Now the run is refused before compute, naming the foreign chunk."""
    from sinkflow.cli import main

    out = tmp_path / "r"
    args = ["run", "phase-diagram", "--preset", "tiny", "--d", "3", "--out", str(out), "--no-plot", "--no-check"]
    assert main(args) == 0
    (out / "manifest.json").unlink()
    (out / "results.nc").unlink()
    capsys.readouterr()
    assert main([*args, "--T", "10"]) == 2
    err = capsys.readouterr().err
    assert "belongs to another run" in err and "chunk-" in err and "Nothing was merged" in err
    assert not (out / "results.nc").exists() and not (out / "manifest.json").exists()  # nothing written
    # the same run (same T) resumes from its own chunks and recomputes nothing
    assert main(args) == 0
    assert "0 cells computed" in capsys.readouterr().out


def _tiny_args(out):
    return ["run", "long-context", "--preset", "tiny", "--out", str(out), "--no-plot", "--no-check"]


def test_bad_output_paths_are_clear_errors(tmp_path, capsys):
    from sinkflow.cli import main

    f = tmp_path / "a-file"
    f.write_text("x")
    assert main(_tiny_args(f)) == 2 and "is a file, not a directory" in capsys.readouterr().err
    assert main(_tiny_args("")) == 2 and "--out is empty" in capsys.readouterr().err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if os.access(ro, os.W_OK):  # root ignores permissions: nothing to test there
            return
        assert main(_tiny_args(ro / "run")) == 2 and "not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_a_corrupt_chunk_is_named_with_the_way_forward(tmp_path, capsys):
    from sinkflow.cli import main

    out = tmp_path / "r"
    assert main(_tiny_args(out)) == 0
    chunk = sorted((out / "chunks").glob("chunk-*.nc"))[0]
    chunk.write_bytes(chunk.read_bytes()[:200])  # a copy cut short
    capsys.readouterr()
    assert main(_tiny_args(out)) == 2
    err = capsys.readouterr().err
    assert chunk.name in err and "Delete it and run the same command again" in err and "Traceback" not in err
    chunk.unlink()
    assert main(_tiny_args(out)) == 0
    assert "0 already finished" not in capsys.readouterr().out


def test_a_results_file_explains_itself(tmp_path, capsys):
    """CF conventions: creation time, history, coordinate long names from the parameters' help, the
    status legend; the devices used; `sinkflow merge` keeps the run's command line and adds its own."""
    import json

    from sinkflow.cli import main

    out = tmp_path / "r"
    base = ["run", "phase-diagram", "--preset", "tiny", "--out", str(out), "--no-plot", "--no-check"]
    assert main([*base, "--shard", "0/2"]) == 0 and main([*base, "--shard", "1/2"]) == 0
    assert main(["merge", str(out)]) == 0
    ds = load_results(out)
    assert ds.attrs["Conventions"].startswith("CF-") and ds.attrs["date_created"][:2] == "20"
    assert json.loads(ds.attrs["argv"])[-1] == "1/2" and json.loads(ds.attrs["merged_by"])[-1] == str(out)
    assert len(json.loads(ds.attrs["devices"])) == 1
    assert ds["status"].attrs["flag_meanings"] == "ok max_steps_reached solver_failure non_finite"
    assert list(ds["status"].attrs["flag_values"]) == [0, 1, 2, 3]
    assert "inverse temperature" in ds["beta"].attrs["long_name"] and ds["t"].attrs["units"] == "1"
    assert "δ-close" in ds["P"].attrs["long_name"]
    from sinkflow.sweep import _variable_attrs  # outputs a study leaves undeclared get the engine's names

    hs = studies.get("histograms")
    va = _variable_attrs(hs, hs.config("tiny"))
    assert va["m2_se"]["long_name"] == "standard error of m2 over the cell's realizations" and "time steps" in va["num_steps"]["long_name"]



def test_every_output_of_every_study_explains_itself():
    """A results file must explain itself to someone who has only the file: every output of every
    study has a long_name that says more than its name, and every declared attribute names an
    output or one of its dimensions (a misspelt key would silently describe nothing)."""
    from sinkflow.sweep import _variable_attrs

    for study in studies.all_studies():
        cfg = study.config("tiny")
        va = _variable_attrs(study, cfg)
        dims = {d for ds_ in study.output_dims.values() for d in ds_}
        for name in study.output_dims:
            assert va[name]["long_name"] != name, f"{study.name}: output {name!r} has no long_name"
        for name in study.output_attrs:
            assert name in study.output_dims or name in dims, f"{study.name}: output_attrs names {name!r}, neither an output nor an output dimension"


def test_two_runs_into_one_directory_are_refused_with_the_holder(tmp_path, capsys):
    import fcntl
    import os

    from sinkflow.cli import main

    out = tmp_path / "r"
    out.mkdir()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"pid 4242 on somehost, since 2026-12-01T00:00:00")
    try:
        assert main(_tiny_args(out)) == 2
        err = capsys.readouterr().err
        assert "in use by another sinkflow run (pid 4242 on somehost" in err
        assert not (out / "manifest.json").exists()
    finally:
        os.close(fd)
    assert main(_tiny_args(out)) == 0  # released: the run goes ahead, and releases its own lock
    assert main(_tiny_args(out)) == 0


def test_ctrl_c_keeps_the_chunk_in_flight_and_resume_finishes(tmp_path):
    """The first SIGINT lets the chunk in flight finish and be written, then the run stops (exit
    130) saying so; the same command then computes only the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "r"
    args = [sys.executable, "-m", "sinkflow.cli", "run", "phase-diagram", "--preset", "tiny", "--d", "3", "--beta", "lin:0:4:12",
            "--chunk-size", "1", "--out", str(out), "--no-plot", "--no-check"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "chunks").glob("chunk-*.nc"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopping after the chunk in flight" in err and "all written to" in err
    n_done = int(err.split("interrupted: ")[1].split(" cells")[0])
    assert len(list((out / "chunks").glob("chunk-*.nc"))) == n_done < 12
    again = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"{12 - n_done} cells computed, {n_done} already finished" in again.stdout


def test_a_cell_too_large_for_memory_is_refused_before_compiling(tmp_path, capsys):
    """--n 1000000 on phase-diagram used to compile and then die out of memory, leaving a manifest."""
    import time

    from sinkflow.cli import main

    out = tmp_path / "r"
    t0 = time.perf_counter()
    assert main(["run", "phase-diagram", "--preset", "tiny", "--n", "1000000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "one cell (d=3, n=1000000) needs about" in err and "GiB" in err and "nothing was computed" in err
    assert time.perf_counter() - t0 < 10 and not out.exists()


def test_determinism_is_what_the_readme_states_in_float32(tmp_path):
    """README, "What sinkflow guarantees": the same command (chunk size, devices) gives bitwise the
    same numbers; another chunking changes float32 results only at round-off: P differs by the float32
    error of its mean over realizations (≲ 1e-6) or by whole pair flips of pairs within round-off of
    1 − δ (a few at most). Measured on the small phase diagram: 9 of 12 cells differ, ≤ 4 flips, at 33
    of 3612 saves; float64 agrees to 1e-12 (tests/test_sweep.py)."""
    study = studies.get("phase-diagram")
    R, n = 64, 8
    cfg = study.config("tiny", d=(4, 8), n=(n,), beta=(0.0, 1.0, 2.0, 4.0), realizations=R, dtype="float32")
    run_sweep(study, cfg, tmp_path / "a", chunk_size=1, progress=False)
    run_sweep(study, cfg, tmp_path / "b", progress=False)
    run_sweep(study, cfg, tmp_path / "c", chunk_size=1, progress=False)
    a, b, c = (load_results(tmp_path / x)["P"].values for x in "abc")
    assert np.array_equal(a, c)
    flips = np.abs(a - b) * R * n * (n - 1)
    assert np.all(np.abs(flips - np.round(flips)) <= 1e-6 * R * n * (n - 1)) and flips.max() <= 4.0 + 1e-3


def test_a_failed_cell_is_reported_while_the_good_cells_are_drawn_and_checked(tmp_path, capsys):
    """orthogonal-start with USA at β = 80: the solve hits its step budget and the reference ODE
    cannot be computed either; plot and check used to crash with a traceback. (Solved in R^4: in the
    coordinates of its span the frame is axis-aligned, round-off keeps the symmetry, and the same
    cell passes.)"""
    from sinkflow.cli import main

    out = tmp_path / "r"
    assert main(["run", "orthogonal-start", "--preset", "tiny", "--beta", "0,80", "--dtype", "float32", "--reduce", "off", "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "all cells solved: 1 max_steps_reached" in text and "not compared (the reference ODE failed): usa n=3 β=80" in text
    assert list((out / "figures").glob("*.png"))


@pytest.mark.parametrize("study,args", [
    ("histograms", ["--n", "100000"]),
    ("random-weights", ["--n", "100000"]),
    ("sinkformer-phase-diagram", ["--n", "100000"]),
    ("noisy", ["--n", "1000000", "--beta", "1"]),
    ("causal-leader", ["--n", "100000"]),
])
def test_every_n_squared_study_refuses_a_cell_too_large_before_compiling(study, args, tmp_path, capsys):
    from sinkflow.cli import main

    out = tmp_path / "r"
    assert main(["run", study, "--preset", "tiny", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "GiB" in err and "nothing was computed" in err, err
    assert not out.exists()


def test_signals_stop_a_run_at_every_moment_even_when_sigint_was_inherited_ignored(tmp_path):
    """A job started with `&` by a script inherits SIGINT ignored: it used to ignore a Ctrl-C for the
    first ~2 s (until the sweep installed its handler) and obey it afterwards. Now SIGINT stops it
    from Python's start, with a message and no traceback; SIGTERM (what a scheduler sends) stops the
    sweep after the chunk in flight, which is kept."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**__import__("os").environ, "JAX_PLATFORMS": "cpu"}

    def launch(out):
        import shlex

        args = [sys.executable, "-m", "sinkflow.cli", "run", "phase-diagram", "--preset", "tiny", "--d", "3", "--beta", "lin:0:4:12", "--chunk-size", "1", "--out", str(out), "--no-plot", "--no-check"]
        # `trap '' INT` then exec: SIGINT ignored at start, as a script's `&` job has it (no fork hook in this process)
        return subprocess.Popen(["bash", "-c", "trap '' INT; exec " + shlex.join(args)], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    proc = launch(tmp_path / "early")
    time.sleep(1.0)  # Python is up; the study is still being imported or compiled
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "sinkflow:" in err and "Traceback" not in err

    out = tmp_path / "late"
    proc = launch(out)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "chunks").glob("chunk-*.nc")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGTERM: stopping after the chunk in flight" in err and "all written to" in err
