"""A pipeline run whose stages start warm (forked from one process that imported torch, transformers, TRL and
MLflow: flows/warm.py) against the same run with each stage importing them itself, side by side.

    python bench/warm_start.py [--params params/smoke.yaml] [--set KEY=VALUE ...] [--pairs 1]

Each pair runs the pipeline from scratch in two fresh copies of the project, one after the other (cold, then warm,
alternating which goes first from pair to pair), with the same params. Prints each run's wall time, each stage's
seconds, and the ratio of the medians. The runs must compute the same thing: it checks that both produced the same
labels and the same evaluation metrics.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from all import BIN, project_copy, run_env  # noqa: E402


def timed_run(project: Path, params: str, overrides: list[str], warm: bool) -> dict:
    command = [str(BIN / "rlaif"), "run", "--params", params, *(f"--set={o}" for o in overrides),
               f"--set=orchestration.warm_start={str(warm).lower()}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=project, env=run_env(project), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"rlaif run ({'warm' if warm else 'cold'}) failed ({done.returncode}):\n{done.stdout[-3000:]}")
    stages = json.loads((project / "reports/last_run.json").read_text())["stages"]
    return {"wall_s": wall, "stages": {row["stage"]: row["seconds"] for row in stages},
            "labels": (project / "artifacts/judge/labels.jsonl").read_bytes(),
            "evaluate": json.loads((project / "metrics/evaluate.json").read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params/smoke.yaml")
    parser.add_argument("--set", dest="overrides", action="append", help="KEY=VALUE, as rlaif run takes")
    parser.add_argument("--pairs", type=int, default=1)
    args = parser.parse_args()
    overrides = args.overrides or []
    runs: dict[bool, list[dict]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            for warm in ((False, True) if pair % 2 == 0 else (True, False)):
                project = project_copy(Path(tmp) / f"{pair}-{'warm' if warm else 'cold'}")
                runs[warm].append(timed_run(project, args.params, overrides, warm))
    cold, warm = runs[False], runs[True]
    same = all(c["labels"] == w["labels"] and c["evaluate"] == w["evaluate"] for c, w in zip(cold, warm))
    print(f"{'stage':16s} {'cold s':>8s} {'warm s':>8s}")
    for stage in cold[0]["stages"]:
        print(f"{stage:16s} {statistics.median(r['stages'][stage] for r in cold):8.1f} "
              f"{statistics.median(r['stages'][stage] for r in warm):8.1f}")
    cold_s, warm_s = (statistics.median(r["wall_s"] for r in side) for side in (cold, warm))
    print(f"rlaif run --params {args.params}: cold {cold_s:.1f} s, warm {warm_s:.1f} s, "
          f"cold/warm {cold_s / warm_s:.2f}x over {args.pairs} pair(s); same labels and evaluation: {same}")
    print(json.dumps({"params": args.params, "pairs": args.pairs, "cold_s": cold_s, "warm_s": warm_s,
                      "ratio": cold_s / warm_s, "same_results": same}))
    if not same:
        sys.exit("the warm and the cold runs computed different results")


if __name__ == "__main__":
    main()
