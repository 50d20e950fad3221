"""A fully cached rerun against `dvc status` on the same checkout, side by side.

    python bench/cached_rerun.py [--project DIR] [--params params/smoke.yaml] [--repeats 5]

Without --project it copies the project, runs the pipeline once on --params (minutes), then times `--repeats`
alternating pairs: `rlaif run` with nothing changed (every stage skipped, still recorded in MLflow and
reports/last_run.json) and `dvc status`. Prints the median wall time and CPU seconds of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from all import BIN, project_copy, run_env  # noqa: E402


def timed(command: list[str], project: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, of the command and everything it started)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=project, env=run_env(project), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(project: Path, run: list[str], repeats: int) -> dict:
    status = [str(BIN / "dvc"), "status"]
    timed(run, project)  # warm-up: file caches, and the run that finds nothing changed
    pairs = [(timed(run, project), timed(status, project)) for _ in range(repeats)]
    stages = json.loads((project / "reports/last_run.json").read_text())["stages"]
    assert {row["status"] for row in stages} == {"skipped"}, stages  # it was a cached rerun
    rerun_wall = statistics.median(p[0][0] for p in pairs)
    status_wall = statistics.median(p[1][0] for p in pairs)
    return {"repeats": repeats, "rerun_median_s": rerun_wall, "rerun_cpu_s": statistics.median(p[0][1] for p in pairs),
            "dvc_status_median_s": status_wall, "dvc_status_cpu_s": statistics.median(p[1][1] for p in pairs),
            "rerun_over_dvc_status": rerun_wall / status_wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="a checkout where the pipeline already ran")
    parser.add_argument("--params", default="params/smoke.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE, as rlaif run takes")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = [str(BIN / "rlaif"), "run", "--params", args.params, *(f"--set={o}" for o in args.overrides)]
        project = args.project
        if project is None:
            project = project_copy(Path(tmp) / "project")
            first = subprocess.run(run, cwd=project, env=run_env(project), capture_output=True, text=True)
            if first.returncode != 0:
                sys.exit(f"the first run failed ({first.returncode}):\n{first.stdout[-3000:]}{first.stderr[-3000:]}")
        result = measure(project, run, args.repeats)
    print(f"cached rerun: {result['rerun_median_s']:.1f} s median ({result['rerun_cpu_s']:.1f} CPU-s); "
          f"dvc status: {result['dvc_status_median_s']:.2f} s ({result['dvc_status_cpu_s']:.1f} CPU-s); "
          f"ratio {result['rerun_over_dvc_status']:.1f}x over {result['repeats']} pairs")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
