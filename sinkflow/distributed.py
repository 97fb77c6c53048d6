"""One sweep over many processes (and hosts) through ``jax.distributed``.

Contract. :func:`initialize` starts JAX's distributed runtime (the coordination service JAX users
already run under SLURM, Open MPI, Kubernetes or on TPU pods: with no arguments JAX detects the
cluster from its environment; otherwise give the coordinator's ``host:port``, the number of
processes and this process's id) and returns a :class:`Cluster`: this process's index and the
process count, with a barrier and a broadcast from process 0 built on the runtime's key–value
store. :data:`LOCAL` is the one-process cluster whose barrier and broadcast do nothing.

How the sweep engine uses it (:func:`sinkflow.sweep.run_sweep`): process 0 alone opens the output
directory (takes its lock, writes or checks the manifest) and tells the others the outcome; every
process lists the finished chunks, all wait at a barrier, then every process builds the same
ordered list of chunks of the remaining cells and computes every P-th one from its own index on
its local devices, writing its chunks into the shared directory; after a second barrier process 0
merges. A chunk is the same cells at the same padded shape as in a one-process run at the same
chunk size, so the merged results equal that run's bit for bit. Resume is the same command again.

:func:`detected` says whether the environment looks like a multi-process launch (``srun`` with
several tasks, ``mpirun``, or JAX's own ``JAX_COORDINATOR_ADDRESS``), which ``--distributed auto``
(the CLI's default) turns into a distributed run.
"""

from __future__ import annotations

import dataclasses
import os

__all__ = ["Cluster", "LOCAL", "initialize", "detected", "BARRIER_TIMEOUT_S"]

BARRIER_TIMEOUT_S = 7 * 24 * 3600  # a barrier after the compute waits for the slowest process
SETUP_TIMEOUT_S = 600  # barriers and broadcasts around opening the store


def _client():
    from jax._src import distributed  # the runtime's client: barriers and the key-value store (no public API yet)

    client = distributed.global_state.client
    if client is None:
        raise RuntimeError("jax.distributed is not initialized in this process (sinkflow.distributed.initialize).")
    return client


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in a distributed run: ``index`` in ``[0, count)``."""

    index: int = 0
    count: int = 1

    @property
    def leader(self) -> bool:
        return self.index == 0

    def barrier(self, name: str, timeout_s: float = SETUP_TIMEOUT_S) -> None:
        """Wait until every process reaches the barrier ``name`` (each name used once per run)."""
        if self.count > 1:
            _client().wait_at_barrier(f"sinkflow/{name}", int(timeout_s * 1000))

    def broadcast(self, name: str, value: str | None = None, timeout_s: float = SETUP_TIMEOUT_S) -> str:
        """Process 0's ``value`` (a string), on every process."""
        if self.count == 1:
            return value
        client = _client()
        if self.leader:
            client.key_value_set(f"sinkflow/{name}", value)
            return value
        return client.blocking_key_value_get(f"sinkflow/{name}", int(timeout_s * 1000))


LOCAL = Cluster()


def detected(environ=None) -> bool:
    """Whether the environment is a multi-process launch that JAX can join: an ``srun`` step with more
    than one task, ``mpirun`` with more than one rank, or ``JAX_COORDINATOR_ADDRESS`` set."""
    env = os.environ if environ is None else environ

    def count(name):
        try:
            return int(env.get(name, "1"))
        except ValueError:
            return 1

    # SLURM_STEP_NUM_TASKS belongs to a job step (srun); the batch script itself is a one-task step
    # even in a many-task allocation, so SLURM_NTASKS alone would make a plain run wait for peers.
    return count("SLURM_STEP_NUM_TASKS") > 1 or count("OMPI_COMM_WORLD_SIZE") > 1 or bool(env.get("JAX_COORDINATOR_ADDRESS"))


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None) -> Cluster:
    """Start ``jax.distributed`` (before any other JAX call of the process) and return this process's
    :class:`Cluster`. All three arguments None: JAX detects the cluster (SLURM, Open MPI, Kubernetes,
    TPU pods). Otherwise all three are needed (``coordinator`` is ``host:port`` of process 0)."""
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError("a distributed run needs all of --coordinator HOST:PORT, --num-processes N and --process-id I, or none of them (then the cluster is detected from SLURM/Open MPI/Kubernetes/JAX_COORDINATOR_ADDRESS).")
    if all(given):
        host, _, port = str(coordinator).rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--coordinator {coordinator!r}: expected HOST:PORT, e.g. node001:12345.")
        if not (int(num_processes) >= 1 and 0 <= int(process_id) < int(num_processes)):
            raise ValueError(f"--num-processes {num_processes} --process-id {process_id}: need N ≥ 1 and 0 ≤ I < N.")
    import jax

    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"jax.distributed could not start ({e}); give --coordinator, --num-processes and --process-id, or run under srun/mpirun.") from None
    return Cluster(index=jax.process_index(), count=jax.process_count())
