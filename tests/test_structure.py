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
