import os

os.environ.setdefault("MPLBACKEND", "Agg")
# The suite's arrays are tiny, so its time is mostly XLA:CPU compiles; LLVM at -O0 cuts many of
# them by 20–45% (suite 9m48s → 7m42s on 2 cores, same hour). Results move only at round-off
# (FMA contraction and reduction order: measured 2e-15 on a float64 Tsit5 solve, 1e-7 on a float32
# field); every tolerance here is set by the mathematics, far above that, and bitwise comparisons
# (chunking, sharding, resume) compare runs made at the same level. Read when the backend starts,
# so it also reaches the CLI subprocesses the tests spawn. An explicit level in XLA_FLAGS wins.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_backend_optimization_level" not in _flags:
    os.environ["XLA_FLAGS"] = f"{_flags} --xla_backend_optimization_level=0".strip()

# Compiled programs are not cached across runs inside the suite (a test of the cache sets its own folder).
os.environ.setdefault("SINKFLOW_COMPILATION_CACHE", "off")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
