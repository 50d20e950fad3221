"""Every benchmark of the project in one command, side by side in one run, as one table.

    python bench/all.py [--quick]

1. judge throughput: the transformers judge against the bare forward pass and a one-pair-at-a-time loop;
2. generation throughput: batched generation against a one-prompt-at-a-time loop;
3. stage overhead: `rlaif exec optimize_policy` against a bare TRL script doing the same DPO training;
4. end-to-end time of the default profile (`rlaif run`) in a fresh copy of the project;
5. the time of a fully cached rerun (nothing changed: every stage skipped).
Each runs as its own process; the machine is noisy, so each ratio comes from one side-by-side run.
`--quick` uses the smoke profile for 4 and 5 and fewer repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
       "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DVC_NO_ANALYTICS": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_json(*args: str) -> dict:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("{"):])


def project_copy(target: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in files:
        if (ROOT / rel).is_file() and rel != "dvc.lock":
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=target, check=True)
    return target


def run_env(project: Path) -> dict[str, str]:
    """The environment of a pipeline run in a project copy: telemetry off, Prefect's home inside the copy."""
    return {**ENV, "PREFECT_HOME": str(project / ".prefect")}


def timed_run(project: Path, params: str) -> float:
    env = run_env(project)
    started = time.perf_counter()
    subprocess.run([str(BIN / "rlaif"), "run", "--params", params], cwd=project, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = []
    judge = run_json("bench/judge_throughput.py", "--repeats", "2" if args.quick else "3")
    rows.append(("judge throughput vs bare forward", f"{judge['judge_vs_bare_forward']:.2f}x",
                 f"vs one pair at a time: {judge['judge_vs_one_at_a_time']:.1f}x"))
    generation = run_json("bench/generation_throughput.py")
    rows.append(("batched generation vs one prompt at a time", f"{generation['batched_over_loop']:.1f}x",
                 f"{generation['batched_tokens_per_s']:.0f} vs {generation['one_at_a_time_tokens_per_s']:.0f} tokens/s"))
    overhead = run_json("bench/train_overhead.py", "--repeats", "1" if args.quick else "3")
    rows.append(("optimize_policy stage vs bare TRL (wall time)", f"{overhead['stage_overhead']:+.1%}",
                 f"peak RSS {overhead['stage_peak_rss_mib']:.0f} vs {overhead['bare_trl_peak_rss_mib']:.0f} MiB"))
    params = "params/smoke.yaml" if args.quick else "params/default.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        project = project_copy(Path(tmp) / "project")
        first = timed_run(project, params)
        cached = timed_run(project, params)
    rows.append((f"end to end, {Path(params).stem} profile", f"{first:.0f} s", "fresh project copy, install excluded"))
    rows.append(("fully cached rerun", f"{cached:.1f} s", "every stage skipped by DVC"))
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")
    print(json.dumps({"judge": judge, "generation": generation, "train_overhead": overhead,
                      "end_to_end_s": first, "cached_rerun_s": cached}, default=str))


if __name__ == "__main__":
    main()
