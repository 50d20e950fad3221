"""The shape of the code, checked by import-linter's contracts in pyproject.toml: flows above stages above the
library (rlaif/ imports nothing from tasks/ or flows/), and no stage imports another."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(where: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run([LINT_IMPORTS, "--config", str(where / "pyproject.toml"), "--no-cache"], cwd=where, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_library_imports_nothing_above_it_and_stages_not_each_other():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 kept, 0 broken" in result.stdout


def test_a_library_module_importing_a_stage_breaks_the_contract(tmp_path: Path):
    """The contract can fail: a copy of the code where rlaif/ imports a stage, lazily inside a function."""
    for name in ("rlaif", "tasks", "flows"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "rlaif/errors.py").open("a", encoding="utf-8") as handle:
        handle.write("\n\ndef _shortcut():\n    from tasks.judge import judge\n\n    return judge\n")
    with (tmp_path / "tasks/report.py").open("a", encoding="utf-8") as handle:
        handle.write("\n\nfrom tasks.evaluate import evaluate  # noqa: E402\n")
    with (tmp_path / "flows/warm.py").open("a", encoding="utf-8") as handle:  # the circle cli -> pipeline -> warm -> cli
        handle.write("\n\ndef _app():\n    from flows.cli import app\n\n    return app\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "flows above stages above the library BROKEN" in result.stdout
    assert "rlaif.errors -> tasks.judge" in result.stdout
    assert "a stage does not import another stage BROKEN" in result.stdout
    assert "CLI nor the flow BROKEN" in result.stdout  # the contract's name wraps before "CLI"


def imported_files(graph, module: str) -> set[str]:
    """The project files that importing `module` can execute: it, what it imports (at any depth, lazy imports
    inside functions included) and the packages around each."""
    found = set()
    for name in {module} | graph.find_upstream_modules(module):
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            path = ROOT.joinpath(*parts[:depth])
            found.add(str((path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).relative_to(ROOT)))
    return found


def undeclared(stage: dict, files: set[str]) -> list[str]:
    deps = [d.rstrip("/") for d in stage.get("deps", [])]
    return sorted(f for f in files if not any(f == d or f.startswith(d + "/") for d in deps))


def test_every_stage_declares_the_project_code_it_imports():
    """dvc.yaml's deps are complete: a change to any module a stage imports reruns the stage."""
    import grimp
    import yaml

    graph = grimp.build_graph("rlaif", "tasks", "flows")
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    missing = {name: undeclared(stage, imported_files(graph, f"tasks.{name}")) for name, stage in stages.items()}
    assert {name: files for name, files in missing.items() if files} == {}
    # the check sees imports inside functions (train_reward imports the registry only when it registers)
    assert "rlaif/registry.py" in imported_files(graph, "tasks.train_reward")
    assert "rlaif/lifecycle/tracking.py" in undeclared({"deps": ["tasks/validate.py"]}, imported_files(graph, "tasks.validate"))


def test_bootstrap_params_are_its_settings_less_the_unresolved_start():
    """bootstrap.base_model and fallback only say where a round starts; DVC sees the resolved start instead, so
    switching the schedule to models:/...@champion before any champion exists (fallback: build) reruns nothing,
    while every setting that shapes the built policy is declared."""
    import yaml

    from rlaif.config import BootstrapConfig

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["bootstrap"]
    declared = {key for entry in stage["params"] for keys in entry.values() for key in keys}
    expected = {f"bootstrap.{name}" for name in BootstrapConfig.model_fields} - {"bootstrap.base_model",
                                                                                 "bootstrap.fallback"}
    assert declared == {"seed"} | expected


def dvc_in(folder: Path):
    """A git and DVC repository in `folder` (its dvc.yaml already written); returns a function that runs a DVC
    command there, checks its exit code and gives its output."""
    dvc = [str(Path(sys.executable).with_name("dvc"))]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def run(*args: str) -> str:
        result = subprocess.run(dvc + list(args), cwd=folder, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    run("init", "-q")
    return run


def test_dvc_skips_bootstrap_when_only_the_unresolved_start_changes(tmp_path: Path):
    """The declaration above, under real DVC: bootstrap's params (as dvc.yaml lists them) on a stage that writes a
    file. base_model moving from null to an alias that resolves to the same start leaves it up to date; a new
    resolved start does not."""
    import yaml

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["bootstrap"]
    params = {"seed": 0, "bootstrap": {"base_model": None, "fallback": "build", "resolved_base_model": None,
                                       **{k.split(".", 1)[1]: 1 for e in stage["params"] for ks in e.values()
                                          for k in ks if k.startswith("bootstrap.") and "resolved" not in k}}}
    (tmp_path / "params").mkdir()
    (tmp_path / "params/run.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"bootstrap": {
        "cmd": "echo built > out.txt", "params": stage["params"], "outs": ["out.txt"]}}}))
    run = dvc_in(tmp_path)
    run("repro", "-q")
    params["bootstrap"]["base_model"] = "models:/rlaif-policy@champion"  # no champion yet: fallback build
    (tmp_path / "params/run.yaml").write_text(yaml.safe_dump(params))
    assert "up to date" in run("status")
    params["bootstrap"]["resolved_base_model"] = "models:/rlaif-policy/1"
    (tmp_path / "params/run.yaml").write_text(yaml.safe_dump(params))
    assert "bootstrap.resolved_base_model" in run("status")


def test_bytecode_beside_a_code_dependency_leaves_its_stage_up_to_date(tmp_path: Path):
    """Stages declare code folders (rlaif/gate, ...) as dependencies, and Python writes __pycache__ into them on
    import (unless PYTHONDONTWRITEBYTECODE is set): under real DVC with the project's .dvcignore, that is no change."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/gate.py").write_text("LIMIT = 1\n")
    shutil.copy(ROOT / ".dvcignore", tmp_path / ".dvcignore")
    (tmp_path / "dvc.yaml").write_text("stages:\n  gate:\n    cmd: cp lib/gate.py out.txt\n    deps: [lib]\n"
                                       "    outs: [out.txt]\n")
    run = dvc_in(tmp_path)
    run("repro", "-q")
    (tmp_path / "lib/__pycache__").mkdir()
    (tmp_path / "lib/__pycache__/gate.cpython-311.pyc").write_bytes(b"\xa7\r\r\n")
    assert "up to date" in run("status")
    (tmp_path / "lib/gate.py").write_text("LIMIT = 2\n")  # the code itself still counts
    assert "modified:" in run("status") and "lib" in run("status")


def world_copy(tmp_path: Path) -> Path:
    """The world's script and the hand-written files it reads, in a copy of data/."""
    root = Path(__file__).resolve().parents[1]
    for part in ("world/build.py", "constitution", "gold", "judge_eval"):
        source, target = root / "data" / part, tmp_path / "data" / part
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    return tmp_path


@pytest.mark.slow  # two runs of the world script's near-copy checks
def test_the_world_script_regenerates_the_generated_data_and_checks_the_hand_written(tmp_path: Path):
    root = Path(__file__).resolve().parents[1]
    copy = world_copy(tmp_path)
    built = subprocess.run([sys.executable, "data/world/build.py"], cwd=copy, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    for generated in ("prompts/train.jsonl", "prompts/eval.jsonl", "seed/dialogues.jsonl", "eval/overrefusal_suite.csv"):
        assert (copy / "data" / generated).read_bytes() == (root / "data" / generated).read_bytes(), generated
    for hand_written in ("constitution/constitution.yaml", "constitution/judge_templates.yaml", "gold/pairs.jsonl"):
        assert (copy / "data" / hand_written).read_bytes() == (root / "data" / hand_written).read_bytes()  # read only

    gold = copy / "data/gold/pairs.jsonl"  # a gold pair that copies a world prompt is refused
    world_prompt = json.loads((root / "data/prompts/train.jsonl").read_text().splitlines()[0])["prompt"]
    row = json.loads(gold.read_text().splitlines()[0])
    gold.write_text(gold.read_text() + json.dumps({**row, "id": "g999", "prompt": world_prompt}) + "\n")
    refused = subprocess.run([sys.executable, "data/world/build.py"], cwd=copy, capture_output=True, text=True)
    assert refused.returncode != 0 and any(m in refused.stderr for m in ("world filler", "too close to a world prompt"))
