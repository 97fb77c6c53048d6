"""The study contract: field validation from param metadata, the engine's status, the registry by
module name, the run identity (code hash) and the import layering of the package."""

import ast
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import studies
from sinkflow.store import code_hash, load_results
from sinkflow.study import Study, StudyConfig, param
from sinkflow.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class ToyConfig(StudyConfig):
    x: tuple = param((1.0, 2.0), "a swept positive number", swept=True, kind=float, lo=0.0, open="lo")
    k: int = param(3, "an integer in [2, 10]", kind=int, lo=2, hi=10)
    p: float = param(0.5, "a probability in (0, 1)", kind=float, lo=0.0, hi=1.0, open="both")
    mode: str = param("a", "a choice", kind=str, choices=("a", "b"))


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"x": (1.0, 0.0)}, r"--x: 0.0 is out of range; allowed \(0.0, ∞\)"),
        ({"x": ()}, "--x: empty grid"),
        ({"x": (float("nan"),)}, "--x: nan is not a finite number"),
        ({"k": 11}, r"--k: 11 is out of range; allowed \[2, 10\]"),
        ({"k": 2.5}, "--k: 2.5 must be an integer"),
        ({"p": 1.0}, r"allowed \(0.0, 1.0\)"),
        ({"p": float("inf")}, "not a finite number"),
        ({"mode": "c"}, "--mode: 'c' is not known; use any of a, b"),
        ({"seed": -1}, "--seed"),
        ({"dtype": "float16"}, "--dtype"),
    ],
)
def test_every_field_is_validated_from_its_metadata(kw, match):
    with pytest.raises(ValueError, match=match):
        ToyConfig(**kw)
    ToyConfig()  # the defaults are valid


def test_param_rejects_an_unknown_open_end():
    with pytest.raises(ValueError, match="open"):
        param(1.0, "x", lo=0.0, open="left")


def _toy_study(returns_status: bool, presets=None):
    def make_cell(cfg, static):
        def cell(values, key):
            y = jnp.where(values["x"] > 1.5, jnp.nan, values["x"])
            out = {"y": y}
            if returns_status:
                out["status"] = jnp.asarray(0, jnp.int32)
            return out

        return cell

    return Study(
        name="toy", title="toy", source="test", config_cls=ToyConfig,
        presets=presets if presets is not None else {"tiny": {}, "small": {}, "paper": {}},
        make_cell=make_cell, output_dims={"y": ()}, coords=lambda cfg: {}, plot=lambda ds, cfg, out: [],
        checks=lambda ds, cfg: [],
    )


def test_engine_fills_status_from_finiteness_and_checks_it_first(tmp_path):
    """A study that returns no status cannot hide a non-finite cell: the engine marks it
    non_finite (3) and its status check, first in every check list, fails."""
    study = _toy_study(returns_status=False)
    rep = run_sweep(study, ToyConfig(), tmp_path / "r", progress=False)
    assert rep.failed == 1
    ds = load_results(tmp_path / "r")
    assert ds["status"].sel(x=1.0) == 0 and ds["status"].sel(x=2.0) == 3
    checks = study.run_checks(ds)
    assert checks[0].name == "all cells solved" and not checks[0].passed and "1 non_finite" in checks[0].detail
    # a study's own status is kept as it returned it
    own = _toy_study(returns_status=True)
    run_sweep(own, ToyConfig(), tmp_path / "own", progress=False)
    assert int(load_results(tmp_path / "own")["status"].max()) == 0


def test_a_study_needs_all_three_presets_and_one_cell_function():
    with pytest.raises(ValueError, match="presets"):
        _toy_study(True, presets={"small": {}, "paper": {}})
    with pytest.raises(ValueError, match="exactly one of make_cell and make_chunk"):
        dataclasses.replace(_toy_study(True), make_chunk=lambda cfg, static: None)


def test_config_round_trips_through_the_saved_attributes():
    study = studies.get("phase-diagram")
    cfg = study.config("tiny", delta=0.01)
    import json

    back = study.config_from_attrs({"config": json.dumps(cfg.to_dict())})
    assert back == cfg and isinstance(back.d, tuple)


def test_registry_names_are_module_names():
    names = studies.names()
    files = sorted(p.stem.replace("_", "-") for p in (ROOT / "experiments").glob("*.py") if not p.stem.startswith("_"))
    assert names == files and len(names) >= 20
    for name in names:
        assert studies.get(name).name == name


def test_old_study_names_are_accepted_with_a_note(capsys):
    assert studies.get("normalization").name == "layernorm-schemes"
    assert studies.get("normalizations").name == "kernel-normalizations"
    assert "now called 'kernel-normalizations'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown study 'bogus'"):
        studies.get("bogus")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    mods = set()
    inside = ROOT / "sinkflow" in path.parents
    pkg = "sinkflow" + ("." + ".".join(path.relative_to(ROOT / "sinkflow").parent.parts) if inside and path.parent != ROOT / "sinkflow" else "")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                mods.add(f"{base}.{node.module}" if node.module else base)
                if not node.module:
                    mods.update(f"{base}.{a.name}" for a in node.names)
            else:
                mods.add(node.module)
    return mods


def test_library_imports_point_downward_only():
    """No library module imports the studies, the CLI or a top-level 'experiments'; the package's
    import graph has no cycles; study modules import only the library (never each other or the CLI)."""
    lib = {}
    for p in sorted((ROOT / "sinkflow").rglob("*.py")):
        name = "sinkflow." + ".".join(p.relative_to(ROOT / "sinkflow").with_suffix("").parts)
        name = name.removesuffix(".__init__")
        lib[name] = {m for m in _imports(p) if m == "sinkflow" or m.startswith("sinkflow.")}
        top = {m.split(".")[0] for m in _imports(p)}
        assert "experiments" not in top, f"{name} imports a top-level experiments package"
    app = {"sinkflow.cli", "sinkflow.studies"}
    for name, deps in lib.items():
        if name not in app:
            assert not {d for d in deps if d in app or d.startswith("sinkflow.studies.")}, f"{name} imports the application layer: {deps & app}"
    # cycles (depth-first search over library modules)
    state = {}

    def visit(m, stack):
        state[m] = 1
        for d in lib.get(m, ()):
            d = d if d in lib else d.rsplit(".", 1)[0]
            if d not in lib or d == m:
                continue
            assert state.get(d) != 1, f"import cycle: {' → '.join(stack + [d])}"
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in lib:
        if m not in state:
            visit(m, [m])
    for p in (ROOT / "experiments").glob("*.py"):
        for m in _imports(p):
            assert not m.startswith(("experiments", "sinkflow.studies", "sinkflow.cli")), f"{p.name} imports {m}"


def test_code_hash_covers_every_module_of_the_package(tmp_path):
    pkg = tmp_path / "sinkflow"
    shutil.copytree(ROOT / "sinkflow", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    study = ROOT / "experiments" / "phase_diagram.py"
    h0 = subprocess.run([sys.executable, "-c", f"from sinkflow.store import code_hash; print(code_hash({str(study)!r}))"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, check=True).stdout.strip()
    assert h0 == code_hash(study)
    for module in ("sinkhorn.py", "graphs.py", "options.py", "studies/__init__.py"):
        f = pkg / module
        original = f.read_text()
        f.write_text(original + "\n# edited\n")
        h = subprocess.run([sys.executable, "-c", f"from sinkflow.store import code_hash; print(code_hash({str(study)!r}))"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, check=True).stdout.strip()
        assert h != h0, f"editing {module} leaves the code hash unchanged"
        f.write_text(original)


def test_resume_after_a_code_change_is_refused_with_the_reason(tmp_path):
    """Edit sinkhorn.py (which the old hand-kept list missed) in a copy of the package: re-running
    into the same directory is refused before any compute, and the message says the code differs."""
    work = tmp_path / "copy"
    shutil.copytree(ROOT / "sinkflow", work / "sinkflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "experiments", work / "experiments", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(work), "JAX_PLATFORMS": "cpu"}
    out = tmp_path / "run"
    args = [sys.executable, "-m", "sinkflow.cli", "run", "phase-diagram", "--preset", "tiny", "--d", "3", "--beta", "0", "--out", str(out), "--no-plot", "--no-check"]
    first = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    chunks = sorted((out / "chunks").glob("chunk-*.nc"))
    stamp = [c.stat().st_mtime_ns for c in chunks]
    sk = work / "sinkflow" / "sinkhorn.py"
    sk.write_text(sk.read_text() + "\n# a change to the Sinkhorn module\n")
    again = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
    assert again.returncode == 2
    assert "the code differs" in again.stderr and "Nothing was computed or overwritten" in again.stderr
    assert [c.stat().st_mtime_ns for c in sorted((out / "chunks").glob("chunk-*.nc"))] == stamp
    # and a non-swept parameter is named
    third = subprocess.run(args[:-2] + ["--T", "5", "--no-plot", "--no-check"], cwd=work, env=env, capture_output=True, text=True)
    assert third.returncode == 2 and "T 12.0 → 5.0" in third.stderr


def test_every_study_validates_its_tiny_preset_and_names_its_solver():
    for study in studies.all_studies():
        cfg = study.config("tiny")
        assert isinstance(cfg.solver_provenance(), dict)
        assert np.all([len(v) >= 1 for _, v, _ in study.axes(cfg)])


def test_study_sources_cite_papers_not_repository_documents():
    """`sinkflow list` prints each study's source and the reference list; a source names works a
    reader can find (no MATH.md, no seed numbers) and every study cites at least one."""
    for study in studies.all_studies():
        assert "MATH.md" not in study.source and "seed" not in study.source, study.name
        assert any(key in study.source for key in studies.REFERENCES), study.name


@dataclasses.dataclass(frozen=True)
class PackConfig(StudyConfig):
    g: tuple = param(("a", "b", "c"), "a static name", swept=True, static=True, kind=str)
    x: tuple = param((1.0, 2.0), "a traced number", swept=True, kind=float)


def test_groups_that_share_a_program_compile_once_and_get_their_own_data(tmp_path):
    """``Study.program``: static groups with one program key share one compile; each cell sees its
    own group's data (same results as one program per group, which it replaces)."""
    W = {"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0, 7.0]}  # "c" has another shape: its own program

    def program(cfg, static):
        w = np.asarray(W[static["g"]])
        return {"size": w.size}, {"w": jnp.asarray(w)}

    def make_cell(cfg, key):
        assert set(key) == {"size"}  # only the program key reaches the builder

        def cell(values, rng, data):
            return {"y": values["x"] * jnp.sum(data["w"]) + key["size"]}

        return cell

    study = Study(
        name="pack", title="pack", source="test", config_cls=PackConfig, presets={"tiny": {}, "small": {}, "paper": {}},
        make_cell=make_cell, program=program, output_dims={"y": ()}, coords=lambda cfg: {}, plot=lambda ds, cfg, out: [],
        checks=lambda ds, cfg: [],
    )
    cfg = PackConfig(g=("a", "c", "b"))
    rep = run_sweep(study, cfg, tmp_path / "r", progress=False)
    assert rep.compiles == 2 and rep.computed == 6
    ds = load_results(tmp_path / "r")
    for g in ("a", "b", "c"):
        for x in (1.0, 2.0):
            assert float(ds["y"].sel(g=g, x=x)) == x * sum(W[g]) + len(W[g])
