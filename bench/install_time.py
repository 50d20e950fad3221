"""Seconds to install the project and its test extras into a fresh virtual environment, pip alone against the
Makefile's way (torch through pip, the rest through uv), side by side in one run, each with an empty download cache.

    python bench/install_time.py            # prints one line per way and the ratio
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"


def timed(commands: list[list[str]], env: dict[str, str]) -> float:
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def fresh(kind: str, workdir: Path) -> tuple[Path, dict[str, str]]:
    venv = workdir / kind / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = dict(os.environ, PIP_CACHE_DIR=str(workdir / kind / "pip-cache"), UV_CACHE_DIR=str(workdir / kind / "uv-cache"))
    return venv / "bin" / "python", env


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="install-time-") as tmp:
        workdir = Path(tmp)
        python, env = fresh("pip", workdir)
        pip_s = timed([[str(python), "-m", "pip", "install", "-q", TORCH],
                       [str(python), "-m", "pip", "install", "-q", "-e", ".[test]"]], env)
        python, env = fresh("uv", workdir)
        uv = str(python.parent / "uv")
        uv_s = timed([[str(python), "-m", "pip", "install", "-q", TORCH, "uv"],
                      [uv, "pip", "install", "-q", "--python", str(python), "-e", ".[test]"]], env)
    print(f"pip alone:            {pip_s:7.1f} s")
    print(f"torch by pip, uv rest: {uv_s:7.1f} s")
    print(f"ratio:                {pip_s / uv_s:7.2f}x")


if __name__ == "__main__":
    main()
