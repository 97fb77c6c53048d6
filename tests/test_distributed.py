"""Many processes through jax.distributed (issue 24 §5): two local processes with a localhost
coordinator give the single-process results bit for bit, in float32 where chunking shows, and a
second launch resumes without recomputing. The launches share a persistent compilation cache, so
programs read back from it give the same bits too."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sinkflow import distributed
from sinkflow.cli import main
from sinkflow.store import load_results

ROOT = Path(__file__).resolve().parent.parent
COMMON = ["--preset", "tiny", "--d", "3,4", "--beta", "0,1,2,3,4", "--realizations", "3", "--T", "3", "--n-times", "7", "--dtype", "float32",
          "--chunk-size", "2", "--no-plot", "--no-check", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(out, n=2, cache=None):
    """n CLI processes on a localhost coordinator (n = 1: a plain run, no jax.distributed); fresh
    processes on both sides, so nothing but the process count differs (the suite's own process
    has float64 enabled). ``cache``: the persistent compilation cache's folder."""
    port = _free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "SINKFLOW_COMPILATION_CACHE": str(cache or "off"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    dist = lambda i: ["--coordinator", f"localhost:{port}", "--num-processes", str(n), "--process-id", str(i)] if n > 1 else []  # noqa: E731
    procs = [
        subprocess.Popen([sys.executable, "-m", "sinkflow.cli", "run", "phase-diagram", "--out", str(out), *COMMON, *dist(i)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(n)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, o + e
    return [o for o, _ in outs]


def test_two_processes_equal_one_bit_for_bit_and_resume(tmp_path):
    cache = tmp_path / "xla-cache"  # later launches read the programs the first compiled: same results
    _launch(tmp_path / "one", n=1, cache=cache)
    assert any(cache.glob("jit_*"))
    lead, other = _launch(tmp_path / "two", cache=cache)
    # 2 static groups × 5 β in chunks of 2 → 6 chunks, every other one per process
    assert "5 cells computed, 0 already finished" in lead and "process 1: its chunks are written" in other
    one, two = load_results(tmp_path / "one"), load_results(tmp_path / "two")
    for name in one.data_vars:
        assert np.array_equal(one[name].values, two[name].values, equal_nan=True), name
    devices = json.loads(two.attrs["devices"])
    assert len(devices) == 2 and "(process 1)" in devices[1]
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "two" / "chunks").glob("chunk-*.nc")}
    lead, _ = _launch(tmp_path / "two", cache=cache)  # resume: nothing left to compute, nothing rewritten
    assert "0 cells computed" in lead
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "two" / "chunks").glob("chunk-*.nc")} == before
    assert np.array_equal(load_results(tmp_path / "two")["P"].values, one["P"].values)


def test_distributed_options_are_validated(capsys):
    assert main(["run", "phase-diagram", "--out", "/tmp/unused-x", *COMMON, "--coordinator", "localhost:1"]) == 2
    assert "all of --coordinator" in capsys.readouterr().err
    assert main(["run", "phase-diagram", "--out", "/tmp/unused-x", *COMMON, "--distributed", "off", "--num-processes", "2"]) == 2
    assert "drop --distributed off" in capsys.readouterr().err
    with pytest.raises(ValueError, match="HOST:PORT"):
        distributed.initialize("localhost", 2, 0)
    with pytest.raises(ValueError, match="0 ≤ I < N"):
        distributed.initialize("localhost:1", 2, 2)


def test_cluster_launches_are_detected_from_the_environment():
    assert not distributed.detected({})
    assert not distributed.detected({"SLURM_STEP_NUM_TASKS": "1", "SLURM_NTASKS": "4", "SLURM_PROCID": "0"})  # the batch script
    assert distributed.detected({"SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "4", "SLURM_PROCID": "2"})  # a task of srun
    assert not distributed.detected({"SLURM_STEP_NUM_TASKS": "x"})
    assert distributed.detected({"OMPI_COMM_WORLD_SIZE": "2"})
    assert distributed.detected({"JAX_COORDINATOR_ADDRESS": "node1:1234"})
    assert distributed.LOCAL.broadcast("x", "v") == "v" and distributed.LOCAL.barrier("x") is None
