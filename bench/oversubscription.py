"""Torch threads when several jobs share the cores: N bootstrap stages side by side, first with torch's default (a
thread per core in each), then with each holding its share of the cores (what tests/conftest.py gives each
pytest-xdist worker). Prints the wall time of each job in both settings, measured in one run.

    .venv/bin/python bench/oversubscription.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
         "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false", "GX_ANALYTICS_ENABLED": "false",
         "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def copy_project(target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    return target


def side_by_side(projects: list[Path], threads: int | None) -> list[float]:
    """Start one bootstrap stage in each project at once; the seconds each took."""
    command = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["bootstrap"]["cmd"]
    env = {**os.environ, **QUIET, "PATH": f"{BIN}:{os.environ['PATH']}"}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
        if threads is not None:
            env[name] = str(threads)
    jobs = []
    for project in projects:
        shutil.rmtree(project / "artifacts/bootstrap", ignore_errors=True)
        jobs.append((time.perf_counter(), subprocess.Popen(command, shell=True, cwd=project, env={
            **env, "PYTHONPATH": str(project)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
    seconds = []
    for started, job in jobs:
        _, err = job.communicate()
        if job.returncode:
            raise SystemExit(f"bootstrap failed:\n{err[-2000:]}")
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--params", default="params/smoke.yaml")
    args = parser.parse_args(argv)
    share = max(1, (os.cpu_count() or 1) // args.jobs)
    with tempfile.TemporaryDirectory() as tmp:
        projects = [copy_project(Path(tmp) / f"p{i}") for i in range(args.jobs)]
        for project in projects:
            subprocess.run([str(BIN / "rlaif"), "configure", "--params", args.params], cwd=project, check=True,
                           env={**os.environ, **QUIET, "PYTHONPATH": str(project)}, capture_output=True)
        default = side_by_side(projects, None)
        shared = side_by_side(projects, share)
    print(f"{args.jobs} bootstrap stages side by side on {os.cpu_count()} cores ({args.params}):")
    print("  torch default threads: " + ", ".join(f"{s:.1f} s" for s in default))
    print(f"  {share} thread(s) each:     " + ", ".join(f"{s:.1f} s" for s in shared))
    print(f"  ratio (default / shared, slowest job): {max(default) / max(shared):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
