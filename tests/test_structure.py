"""The shape of the code, checked by import-linter's contracts in pyproject.toml: flows above stages above the
library (rlaif/ imports nothing from tasks/ or flows/), and no stage imports another."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(where: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run([LINT_IMPORTS, "--config", str(where / "pyproject.toml"), "--no-cache"], cwd=where, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_library_imports_nothing_above_it_and_stages_not_each_other():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_a_library_module_importing_a_stage_breaks_the_contract(tmp_path: Path):
    """The contract can fail: a copy of the code where rlaif/ imports a stage, lazily inside a function."""
    for name in ("rlaif", "tasks", "flows"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "rlaif/errors.py").open("a", encoding="utf-8") as handle:
        handle.write("\n\ndef _shortcut():\n    from tasks.judge import judge\n\n    return judge\n")
    with (tmp_path / "tasks/report.py").open("a", encoding="utf-8") as handle:
        handle.write("\n\nfrom tasks.evaluate import evaluate  # noqa: E402\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "flows above stages above the library BROKEN" in result.stdout
    assert "rlaif.errors -> tasks.judge" in result.stdout
    assert "a stage does not import another stage BROKEN" in result.stdout


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
    assert "rlaif/tracking.py" in undeclared({"deps": ["tasks/validate.py"]}, imported_files(graph, "tasks.validate"))
