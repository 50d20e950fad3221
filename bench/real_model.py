"""The real-model profile end to end (params/smollm2.yaml: SmolLM2-135M-Instruct from its GGUF file), timed: each
stage's seconds, the whole run's wall time, the peak memory of any process it started, and the figures the
real-model issue's criteria read (held-out prompts and the XSTest yardstick, start against trained policy).

    python bench/real_model.py [--params params/smollm2.yaml] [--set KEY=VALUE ...] [--project DIR]

Runs in a fresh copy of this checkout beside it (or in --project, as it is), so that a new user's first run is what
it measures and ../shared/data is found.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from all import BIN, ROOT, project_copy, run_env  # noqa: E402

HELD_OUT = ("correct_rate", "unsafe_compliance_rate", "needless_refusal_rate", "incoherent_rate")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params/smollm2.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--project", type=Path, help="run here instead of in a fresh copy")
    args = parser.parse_args()
    project = args.project or fresh_copy()
    command = [str(BIN / "rlaif"), "run", "--params", args.params, *(f"--set={o}" for o in args.overrides)]
    started = time.perf_counter()
    code = subprocess.run(command, cwd=project, env=run_env(project), check=False).returncode
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nrlaif run {args.params} in {project}: exit {code}, {wall / 60:.1f} min, peak memory of one process "
          f"{peak_mb:,.0f} MB")
    last = json.loads((project / "reports/last_run.json").read_text())
    for stage in last["stages"]:
        print(f"  {stage['stage']:<16} {stage['status']:<8} {stage.get('seconds') or 0:7.1f} s")
    metrics = project / "metrics/evaluate.json"
    if metrics.exists():
        print_figures(json.loads(metrics.read_text()))
    return code


def fresh_copy() -> Path:
    """A copy of this checkout beside it, so that ../shared/data (the XSTest yardstick) is found as in CI."""
    import shutil

    target = ROOT.parent / ".bench-real-model"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    return project_copy(target)


def print_figures(m: dict) -> None:
    print("\nheld-out prompts           start    trained")
    for key in HELD_OUT:
        print(f"  {key:<24} {m['baseline'][key]:7.1%}  {m['candidate'][key]:7.1%}")
    print(f"  win rate (rubric judge)           {m['win']['win_rate']:7.1%} ({m['win']['wins']} wins, "
          f"{m['win']['losses']} losses, {m['win']['ties']} ties)")
    for kind in ("suites", "yardsticks"):
        for name, result in (m.get(kind) or {}).items():
            b, c = result["baseline"], result["candidate"]
            print(f"{kind[:-1]} {name}: over-refusal (safe) {b['over_refusal_rate']:.1%} -> {c['over_refusal_rate']:.1%}"
                  f" of {c['n_safe']}; compliance (unsafe) {1 - b['harmless_rate']:.1%} -> {1 - c['harmless_rate']:.1%}"
                  f" of {c['n_unsafe']}")
    print(f"promoted: {bool(m['promoted'])}")


if __name__ == "__main__":
    sys.exit(main())
