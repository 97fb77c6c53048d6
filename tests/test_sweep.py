"""The sweep engine: keys independent of chunking, one compile per group, resume, sharding."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sinkflow import studies
from sinkflow.grid import parse_grid
from sinkflow.store import Store, load_results
from sinkflow.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent
PD = studies.get("phase-diagram")
TINY = dict(d=(3, 5), n=(4,), beta=(0.0, 1.0, 2.0, 3.0, 4.0), realizations=3, T=2.0, n_times=5, dtype="float64")


def _cfg(**kw):
    return PD.config("small", **{**TINY, **kw})


def test_cell_results_do_not_depend_on_chunking(tmp_path):
    a = run_sweep(PD, _cfg(), tmp_path / "a", chunk_size=1, progress=False)
    b = run_sweep(PD, _cfg(), tmp_path / "b", chunk_size=4, progress=False)
    assert a.merged and b.merged and a.chunks == 10 and b.chunks == 4
    ra, rb = load_results(tmp_path / "a"), load_results(tmp_path / "b")
    np.testing.assert_allclose(ra["P"].values, rb["P"].values, rtol=0, atol=1e-12)
    # and on the rest of the grid: a sub-grid gives the same cells
    c = run_sweep(PD, _cfg(beta=(2.0,), d=(5,)), tmp_path / "c", chunk_size=1, progress=False)
    assert c.merged
    np.testing.assert_allclose(load_results(tmp_path / "c")["P"].sel(beta=2.0, d=5).values, ra["P"].sel(beta=2.0, d=5).values, atol=1e-12)


def test_one_compile_per_static_group(tmp_path):
    traces = []

    def counting(cfg, static):
        inner = PD.make_chunk(cfg, static)

        def chunk(values, keys):
            traces.append(static["d"])
            return inner(values, keys)

        return chunk

    study = dataclasses.replace(PD, make_chunk=counting)
    rep = run_sweep(study, _cfg(), tmp_path / "r", chunk_size=2, progress=False)
    assert rep.chunks == 6  # 5 β per d in chunks of 2 → 3 chunks × 2 groups (last padded)
    assert sorted(traces) == [3, 5]


def test_resume_skips_finished_and_extends_grid(tmp_path):
    out = tmp_path / "r"
    first = run_sweep(PD, _cfg(beta=(0.0, 1.0)), out, chunk_size=1, progress=False)
    assert first.computed == 4
    again = run_sweep(PD, _cfg(beta=(0.0, 1.0)), out, chunk_size=1, progress=False)
    assert again.computed == 0 and again.skipped == 4
    more = run_sweep(PD, _cfg(beta=(0.0, 1.0, 2.0)), out, chunk_size=1, progress=False)
    assert more.computed == 2 and more.skipped == 4 and more.merged
    with pytest.raises(ValueError, match="different run"):
        run_sweep(PD, _cfg(beta=(0.0, 1.0), T=3.0), out, progress=False)


def test_resume_after_kill_loses_and_recomputes_nothing(tmp_path):
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "sinkflow.cli", "run", "phase-diagram", "--out", str(out), "--d", "3", "--n", "4", "--beta", "lin:0:4:24",
            "--realizations", "2", "--T", "2", "--n-times", "3", "--chunk-size", "1", "--dtype", "float64", "--no-plot", "--no-check"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "chunks").glob("chunk-*.nc"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done = len(Store(out).finished_labels())
    assert 3 <= n_done < 24, "the kill should land mid-sweep"
    assert not (out / "results.nc").exists()
    res = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{24 - n_done} cells computed, {n_done} already finished" in res.stdout
    ref = run_sweep(PD, PD.config("small", d=(3,), n=(4,), beta=parse_grid("lin:0:4:24"), realizations=2, T=2.0, n_times=3, dtype="float64"), tmp_path / "ref", progress=False)
    assert ref.merged
    np.testing.assert_allclose(load_results(out)["P"].values, load_results(tmp_path / "ref")["P"].values, atol=1e-12)


def test_sharded_devices_and_process_shards_equal_unsharded(tmp_path):
    common = ["--d", "3", "--n", "4", "--beta", "0,1,2,3,4", "--realizations", "3", "--T", "2", "--n-times", "5", "--dtype", "float64", "--no-plot", "--no-check"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "4"}
    code = (
        "import jax,sys; assert len(jax.devices())==4, jax.devices(); from sinkflow.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    res = subprocess.run([sys.executable, "-c", code, "run", "phase-diagram", "--out", str(tmp_path / "dev4"), "--devices", "4", "--chunk-size", "4", *common],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    from sinkflow.cli import main

    for i in range(2):
        assert main(["run", "phase-diagram", "--out", str(tmp_path / "shards"), "--shard", f"{i}/2", *common]) == 0
    assert main(["merge", str(tmp_path / "shards")]) == 0
    ref = run_sweep(PD, PD.config("small", d=(3,), n=(4,), beta=(0.0, 1.0, 2.0, 3.0, 4.0), realizations=3, T=2.0, n_times=5, dtype="float64"), tmp_path / "ref", progress=False)
    assert ref.merged
    want = load_results(tmp_path / "ref")["P"].values
    for name in ("dev4", "shards"):
        np.testing.assert_allclose(load_results(tmp_path / name)["P"].values, want, atol=1e-12)
    attrs = load_results(tmp_path / "dev4").attrs
    assert len(json.loads(attrs["devices"])) == 4 and attrs["precision"] == "float64"


def test_merge_refuses_outputs_whose_shape_depends_on_a_static_parameter(tmp_path):
    """An unpadded per-n (or per-d) output is a study bug; merge says so instead of a numpy broadcast error."""

    def ragged(cfg, static):
        inner = PD.make_chunk(cfg, static)

        def chunk(values, keys):
            out = inner(values, keys)  # keep 3 or 5 of the 5 save times
            return {k: v[..., : static["d"]] if PD.output_dims[k][-1:] == ("t",) else v for k, v in out.items()}

        return chunk

    study = dataclasses.replace(PD, make_chunk=ragged)
    with pytest.raises(ValueError, match="must pad them to one shape"):
        run_sweep(study, _cfg(), tmp_path / "r", chunk_size=5, progress=False)


def test_declared_cell_memory_caps_the_chunk(tmp_path):
    import jax

    from sinkflow.sweep import _fitting_chunk, memory_budget

    assert memory_budget(jax.devices()) > 2**28  # half the host's memory, on CPU
    assert _fitting_chunk(8, 1, cell_bytes=3, budget=10) == 3
    assert _fitting_chunk(8, 4, cell_bytes=3, budget=10) == 8  # 3 cells per device fit, capped at 8
    assert _fitting_chunk(8, 4, cell_bytes=30, budget=10) == 4  # never below one cell per device
    big = dataclasses.replace(PD, cell_bytes=lambda cfg, static: int(0.6 * memory_budget(jax.devices())))
    rep = run_sweep(big, _cfg(d=(3,), beta=(0.0, 1.0, 2.0)), tmp_path / "r", chunk_size=8, progress=False)
    assert rep.merged and rep.chunks == 3  # one cell per chunk instead of one chunk of 3
    huge = dataclasses.replace(PD, cell_bytes=lambda cfg, static: 2**62)  # one cell alone does not fit: refused
    with pytest.raises(ValueError, match="needs about"):
        run_sweep(huge, _cfg(d=(3,), beta=(0.0, 1.0, 2.0)), tmp_path / "h", chunk_size=8, progress=False)
    assert not (tmp_path / "h").exists()
