"""Overhead of the optimize_policy stage over a bare TRL script doing the same DPO training.

    python bench/train_overhead.py [--repeats 2] [--params FILE]

Both run as fresh processes on the same policy and preferences, alternately (the machine is noisy):
1. bench/bare_trl_dpo.py: DPOTrainer with the stage's DPOConfig values, then save;
2. `rlaif exec optimize_policy`: the stage, with its MLflow run, dataset logging, checkpoints,
   refusal-rate probes, curve plots and model registration.
Prints wall time and peak resident memory (ru_maxrss of each process) and the ratio.

The policy is a tiny Llama built here (untrained: training speed does not depend on what it knows);
the preferences are the project's seed dialogues where a prompt has one answer that behaves as
expected and one that does not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def write_inputs(work: Path) -> tuple[Path, Path]:
    from rlaif.training.models import save_tiny_llama

    prompts = {r["id"]: r for r in map(json.loads, (ROOT / "data/prompts/train.jsonl").read_text().splitlines())}
    dialogues: dict[str, list[dict]] = {}
    for row in map(json.loads, (ROOT / "data/seed/dialogues.jsonl").read_text().splitlines()):
        dialogues.setdefault(row["prompt_id"], []).append(row)
    rows = []
    for prompt_id, answers in dialogues.items():
        by = {a["behaviour"]: a["response"] for a in answers}
        if len(by) == 2:
            expected = prompts[prompt_id]["expected"]
            other = "refuse" if expected == "help" else "help"
            rows.append({"pair_id": prompt_id, "prompt_id": prompt_id, "prompt": prompts[prompt_id]["prompt"],
                         "chosen": by[expected], "rejected": by[other], "confidence": 0.9, "principle": "all"})
    preferences = work / "preferences.jsonl"
    preferences.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = [f"{r['prompt']}\n{r['chosen']}\n{r['rejected']}" for r in rows]
    policy = save_tiny_llama(corpus, work / "policy", 1024, hidden=192, layers=4, heads=4, intermediate=512,
                             max_positions=256)
    return policy, preferences


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS in MiB of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{command[:3]} failed: {process.stderr.read().decode()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--params", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        policy, preferences = write_inputs(work)
        pairs = sum(1 for _ in preferences.open())
        project = work / "project"
        project.mkdir()
        shutil.copytree(ROOT / "params", project / "params")
        shutil.copytree(ROOT / "data", project / "data")
        shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")  # `rlaif configure` runs from a project root
        check = [str(Path(sys.executable).parent / "rlaif"), "configure"] + (["--params", str(args.params)] if args.params else [])
        subprocess.run(check, cwd=project, env=ENV, check=True, capture_output=True)
        bare = [sys.executable, str(ROOT / "bench/bare_trl_dpo.py"), "--policy", str(policy), "--preferences",
                str(preferences), "--out", str(work / "bare")] + (["--params", str(args.params)] if args.params else [])
        stage = [str(Path(sys.executable).parent / "rlaif"), "exec", "optimize_policy", "--policy", str(policy),
                 "--preferences", str(preferences), "--markers", "data/eval/refusal_markers.yaml", "--out",
                 str(work / "stage")]
        results: dict[str, list[tuple[float, float]]] = {"bare": [], "stage": []}
        for _ in range(args.repeats):
            results["bare"].append(timed(bare, project))
            results["stage"].append(timed(stage, project))
    bare_s = statistics.median(s for s, _ in results["bare"])
    stage_s = statistics.median(s for s, _ in results["stage"])
    print(json.dumps({
        "pairs": pairs,
        "bare_trl_s": [round(s, 1) for s, _ in results["bare"]],
        "stage_s": [round(s, 1) for s, _ in results["stage"]],
        "stage_overhead": stage_s / bare_s - 1,
        "bare_trl_peak_rss_mib": max(m for _, m in results["bare"]),
        "stage_peak_rss_mib": max(m for _, m in results["stage"]),
    }, indent=2))


if __name__ == "__main__":
    main()
