"""Soak: kill -9 each stage at a random point, rerun, and compare the final artefacts with a clean run's.

    python bench/soak_kill.py [--params params/smoke.yaml] [--seed 0] [--stages judge,optimize_policy]

1. A clean run of the pipeline in a fresh copy of the project: the reference digests.
2. In a second fresh copy, for each stage of `--stages` (by default bootstrap to evaluate, in dvc.yaml's
   order): start `rlaif run`, wait until that stage's `rlaif exec` process is up, kill it (SIGKILL, the
   whole process group of the run) after a random delay, then start the next attempt. The last attempt runs to the end.
3. Print, per output, whether its digest equals the clean run's, and the labels' row count and duplicates.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from all import project_copy, run_env  # noqa: E402

from rlaif.lifecycle.digests import file_md5  # noqa: E402

OUTPUTS = ["artifacts/generate/candidates.jsonl", "artifacts/judge/labels.jsonl",
           "artifacts/validate/preferences.jsonl", "artifacts/train_reward/model", "artifacts/optimize_policy/policy",
           "metrics/judge.json", "metrics/evaluate.json"]


TIMING_KEYS = {"pairs_per_second", "mean_latency_ms", "resumed_pairs", "judged_pairs", "seconds"}  # how the run went, not what it made


def digests(project: Path) -> dict[str, str | None]:
    found = {}
    for name in OUTPUTS:
        path = project / name
        if not path.exists():
            found[name] = None
        elif name.startswith("metrics/"):
            found[name] = json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k not in TIMING_KEYS},
                                     sort_keys=True)
        else:
            found[name] = file_md5(path)
    return found


def stage_process(stage: str) -> int | None:
    """The pid of a running `rlaif exec STAGE`, if any."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [w.decode(errors="replace") for w in cmdline]
            if "exec" in words and stage in words and any(w.endswith("rlaif") for w in words):
                return int(proc.name)
    return None


def run(project: Path, params: str) -> subprocess.Popen:
    with open(project / f"run-{time.time():.0f}.log", "w") as log:  # kept for a run that ends badly
        return subprocess.Popen([str(BIN / "rlaif"), "run", "--params", params], cwd=project, env=run_env(project),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def kill_during(project: Path, params: str, stage: str, rng: random.Random) -> str:
    process = run(project, params)
    deadline = time.time() + 1800
    while time.time() < deadline and process.poll() is None and stage_process(stage) is None:
        time.sleep(0.2)
    if process.poll() is not None:
        logs = sorted(project.glob("run-*.log"))
        tail = " | ".join(logs[-1].read_text().strip().splitlines()[-3:]) if logs else ""
        return f"{stage}: not started (the run ended with {process.returncode}: {tail[-400:]})"
    time.sleep(rng.uniform(0.5, 8.0))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return f"{stage}: killed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params/smoke.yaml")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default="bootstrap,generate,judge,validate,train_reward,optimize_policy,evaluate")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        clean = project_copy(Path(tmp) / "clean")
        if run(clean, args.params).wait() != 0:
            sys.exit("the clean run failed")
        reference = digests(clean)
        soaked = project_copy(Path(tmp) / "soaked")
        log = [kill_during(soaked, args.params, stage, rng) for stage in args.stages.split(",")]
        final = run(soaked, args.params).wait()
        result = digests(soaked)
        labels = [json.loads(line)["pair_id"] for line in (soaked / "artifacts/judge/labels.jsonl").read_text().splitlines()]
    for line in log:
        print(line)
    print(f"final run exit code: {final}")
    for name in OUTPUTS:
        print(f"{name:45s} {'equal' if result[name] == reference[name] else 'DIFFERENT'}")
    print(f"labels: {len(labels)} rows, {len(labels) - len(set(labels))} duplicates")


if __name__ == "__main__":
    main()
