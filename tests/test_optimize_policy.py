"""optimize_policy: every algorithm (dpo, grpo, rloo, online_judge) runs a few steps through
`rlaif exec optimize_policy` on a tiny policy and logs reward, KL, completion length and refusal rate
per step to MLflow; LoRA policies saved merged or as adapters only both load with load_policy (and the
adapter-only one through `rlaif exec evaluate`); a killed run resumes from its checkpoint; bad
inputs stop with exit code 2 and a message naming them, before any training.

The CLI runs in-process (typer's CliRunner) in one project copy, to keep the module fast on 2 cores.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from conftest import make_project_copy, save_tiny_llama
from typer.testing import CliRunner

from rlaif.training.models import build_tokenizer

pytestmark = pytest.mark.slow  # trains models or starts a cluster: left out of `make test-fast`

SMALL = ["max_steps=2", "batch_size=4", "max_new_tokens=8", "max_length=64"]


def small(algorithm: str) -> list[str]:
    """A few steps of `algorithm`; num_generations is a key of the online algorithms only."""
    return [*SMALL, *([] if algorithm == "dpo" else ["num_generations=2"])]
ONLINE_METRICS = ["reward", "kl", "completions/mean_length", "refusal_rate"]
DPO_METRICS = ["rewards/margins", "kl", "completions/mean_length", "refusal_rate"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project copy (cwd for the module) with a tiny policy, a tiny reward model, 8 preference pairs and
    8 training prompts."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    root = make_project_copy(tmp_path_factory.mktemp("optimize") / "project")
    seed = [json.loads(line) for line in (root / "data/seed/dialogues.jsonl").read_text().splitlines()]
    texts = [f"User: {d['prompt']}\nAssistant: {d['response']}" for d in seed]
    sizes = dict(hidden=16, layers=1, heads=2, intermediate=32, max_positions=256)
    policy = save_tiny_llama(texts, root / "tiny/policy", vocab_size=300, **sizes)
    tokenizer = AutoTokenizer.from_pretrained(policy)
    # the same model with a tokenizer of twice its vocabulary: must be refused before training
    shutil.copytree(policy, root / "tiny/mismatched")
    build_tokenizer(texts, vocab_size=600).save_pretrained(root / "tiny/mismatched")
    reward = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=32, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id, num_labels=1))
    reward.save_pretrained(root / "tiny/reward")
    tokenizer.save_pretrained(root / "tiny/reward")
    by_prompt: dict[str, list[dict]] = {}
    for d in seed:
        by_prompt.setdefault(d["prompt"], []).append(d)
    rng = random.Random(0)
    pairs = [{"pair_id": f"q{n}:0-1", "prompt_id": f"q{n}", "prompt": p, "chosen": ds[0]["response"],
              "rejected": ds[1]["response"], "confidence": round(rng.uniform(0.6, 1.0), 3)}
             for n, (p, ds) in enumerate(by_prompt.items()) if len(ds) >= 2][:8]
    (root / "tiny/preferences.jsonl").write_text("".join(json.dumps(x) + "\n" for x in pairs))
    (root / "tiny/few.jsonl").write_text("".join(json.dumps(x) + "\n" for x in pairs[:3]))
    (root / "tiny/prompts.jsonl").write_text("".join((root / "data/prompts/train.jsonl").read_text().splitlines(True)[:8]))

    previous, threads = Path.cwd(), torch.get_num_threads()
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    # this project's database, whatever an earlier module's in-process run left process-wide
    # (mlflow.set_tracking_uri also sets the variable)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.chdir(root)
    torch.set_num_threads(1)  # 2 shared cores: one thread avoids oversubscription stalls
    yield root
    torch.set_num_threads(threads)
    os.chdir(previous)
    if uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = uri


def invoke(*args: str):
    from flows.cli import app

    return CliRunner().invoke(app, list(args))


def optimize(*settings: str, out: str, policy: str = "tiny/policy", reward_model: str = "tiny/reward",
             preferences: str = "tiny/preferences.jsonl"):
    sets = [x for s in settings for x in ("--set", f"optimize_policy.{s}")]
    checked = invoke("configure", *sets)
    assert checked.exit_code == 0, checked.output
    return invoke("exec", "optimize_policy", "--policy", policy, "--out", out, "--preferences", preferences,
                  "--prompts", "tiny/prompts.jsonl", "--reward-model", reward_model,
                  "--constitution", "data/constitution/constitution.yaml",
                  "--templates", "data/constitution/judge_templates.yaml",
                  "--markers", "data/eval/refusal_markers.yaml")


def last_run_metrics(project: Path) -> tuple[str, dict[str, float]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")  # not the process-wide URI
    run = client.search_runs([client.get_experiment_by_name("rlaif").experiment_id],
                             "attributes.run_name = 'optimize_policy'", order_by=["attributes.start_time DESC"])[0]
    return run.info.run_id, run.data.metrics


@pytest.mark.parametrize("algorithm,extra", [
    ("dpo", ["soft_labels=confidence"]),
    ("grpo", []),
    ("rloo", []),
    ("online_judge", ["judge_reward=pairwise"]),
])
def test_each_algorithm_trains_and_logs_its_curves(project: Path, algorithm: str, extra: list[str]):
    result = optimize(f"algorithm={algorithm}", *small(algorithm), *extra, out=f"out/{algorithm}")
    assert result.exit_code == 0, result.output[-3000:]
    assert (project / f"out/{algorithm}/policy/config.json").exists()
    assert (project / f"out/{algorithm}/{algorithm}_curves.png").exists()
    _, metrics = last_run_metrics(project)
    for name in DPO_METRICS if algorithm == "dpo" else ONLINE_METRICS:
        assert f"{algorithm}/{name}" in metrics, sorted(metrics)
    assert 0.0 <= metrics[f"{algorithm}/refusal_rate"] <= 1.0
    assert metrics[f"{algorithm}/completions/mean_length"] > 0


def test_lora_merged_and_adapter_only_policies_load_alike(project: Path):
    import torch

    from rlaif.training.models import load_policy

    for merge in ("true", "false"):
        lora = f"lora={{r: 4, alpha: 8, dropout: 0.0, merge: {merge}}}"
        result = optimize("algorithm=dpo", *SMALL, "learning_rate=0.01", lora, out=f"out/lora-{merge}")
        assert result.exit_code == 0, result.output[-3000:]
    merged_dir, adapter_dir = project / "out/lora-true/policy", project / "out/lora-false/policy"
    assert (merged_dir / "config.json").exists() and not (merged_dir / "adapter_config.json").exists()
    assert (adapter_dir / "adapter_config.json").exists() and not (adapter_dir / "config.json").exists()

    ids = torch.tensor([[5, 6, 7, 8, 9]])
    merged, _ = load_policy(merged_dir)
    adapter, tokenizer = load_policy(adapter_dir)
    base, _ = load_policy(project / "tiny/policy")
    assert tokenizer.padding_side == "left"
    with torch.no_grad():
        m, a, b = (model(input_ids=ids).logits for model in (merged, adapter, base))
    assert torch.allclose(m, a, atol=1e-5)  # same training, saved two ways
    assert not torch.allclose(a, b, atol=1e-6)  # and the adapters did train


def test_online_lora_adapter_only_policy_is_evaluated(project: Path):
    result = optimize("algorithm=grpo", *small("grpo"), "learning_rate=0.01", "lora={r: 4, alpha: 8, merge: false}",
                      out="out/grpo-adapter")
    assert result.exit_code == 0, result.output[-3000:]
    assert (project / "out/grpo-adapter/policy/adapter_config.json").exists()
    checked = invoke("configure", "--set", "evaluate.max_prompts=4", "--set", "evaluate.samples_per_prompt=1",
                     "--set", "evaluate.max_new_tokens=8")
    assert checked.exit_code == 0, checked.output
    evaluated = invoke("exec", "evaluate", "--baseline", "tiny/policy", "--candidate", "out/grpo-adapter/policy",
                       "--prompts", "data/prompts/eval.jsonl", "--seed-dialogues", "data/seed/dialogues.jsonl",
                       "--markers", "data/eval/refusal_markers.yaml", "--out", "out/eval", "--metrics", "out/eval.json")
    assert evaluated.exit_code == 0, evaluated.output[-3000:]
    assert json.loads((project / "out/eval.json").read_text())["n_samples_per_policy"] == 4


def test_evaluation_against_the_registered_champion(project: Path):
    """evaluate.baseline=champion: the baseline is the registry's champion, downloaded, not the starting policy."""
    import mlflow

    from rlaif.lifecycle.tracking import tracking_uri
    from rlaif.registry import register_model

    mlflow.set_tracking_uri(tracking_uri())
    with mlflow.start_run(run_name="champion-for-test"):
        version = register_model(project / "tiny/policy", "rlaif-policy", "policy", "test champion", alias="champion")
    checked = invoke("configure", "--set", "evaluate.max_prompts=4", "--set", "evaluate.samples_per_prompt=1",
                     "--set", "evaluate.max_new_tokens=8", "--set", "evaluate.baseline=champion")
    assert checked.exit_code == 0, checked.output
    evaluated = invoke("exec", "evaluate", "--baseline", "tiny/missing-start-policy", "--candidate", "tiny/policy",
                       "--prompts", "data/prompts/eval.jsonl", "--seed-dialogues", "data/seed/dialogues.jsonl",
                       "--markers", "data/eval/refusal_markers.yaml", "--suite", "data/eval/overrefusal_suite.csv",
                       "--out", "out/eval-champion", "--metrics", "out/eval-champion.json")
    assert evaluated.exit_code == 0, evaluated.output[-3000:]
    report = (project / "out/eval-champion/report.md").read_text()
    assert report.startswith(f"# Evaluation: optimized policy vs champion v{version}")
    result = json.loads((project / "out/eval-champion.json").read_text())
    assert result["win"]["win_rate"] == 0.5  # the same weights on both sides, sampled with the same seeds
    assert set(result["suites"]["overrefusal_suite"]) == {"baseline", "candidate"}
    mlflow.MlflowClient().delete_registered_model_alias("rlaif-policy", "champion")


@pytest.mark.parametrize("algorithm,extra", [("dpo", ["soft_labels=confidence"]), ("grpo", []), ("rloo", [])])
def test_killed_run_resumes_from_its_checkpoint(project: Path, algorithm: str, extra: list[str], monkeypatch):
    import mlflow
    import trl

    trainer = {"dpo": trl.DPOTrainer, "grpo": trl.GRPOTrainer, "rloo": trl.RLOOTrainer}[algorithm]
    original = trainer._save_checkpoint

    def save_then_crash(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise RuntimeError("simulated crash after a checkpoint")

    settings = [f"algorithm={algorithm}", *small(algorithm), *extra, "max_steps=4", "checkpoint_every=2"]
    monkeypatch.setattr(trainer, "_save_checkpoint", save_then_crash)
    crashed = optimize(*settings, out=f"out/resume-{algorithm}")
    assert isinstance(crashed.exception, RuntimeError), crashed.output[-3000:]
    assert not (project / f"out/resume-{algorithm}/policy").exists()
    monkeypatch.setattr(trainer, "_save_checkpoint", original)

    resumed = optimize(*settings, out=f"out/resume-{algorithm}")
    assert resumed.exit_code == 0, resumed.output[-3000:]
    assert "resuming from step 2" in " ".join(resumed.output.split())
    assert (project / f"out/resume-{algorithm}/policy/config.json").exists()
    run_id, _ = last_run_metrics(project)
    steps = sorted(m.step for m in mlflow.MlflowClient().get_metric_history(run_id, f"{algorithm}/loss"))
    assert steps and steps[0] > 2 and steps[-1] == 4


@pytest.mark.parametrize("case", ["too few pairs", "no reward model", "no policy", "tokenizer mismatch"])
def test_bad_input_stops_before_training(project: Path, case: str):
    settings, paths, named = {
        "too few pairs": (["algorithm=dpo"], {"preferences": "tiny/few.jsonl"}, "tiny/few.jsonl"),
        "no reward model": (["algorithm=grpo"], {"reward_model": "tiny/missing-reward"}, "tiny/missing-reward"),
        "no policy": (["algorithm=rloo"], {"policy": "tiny/missing-policy"}, "tiny/missing-policy"),
        "tokenizer mismatch": (["algorithm=dpo"], {"policy": "tiny/mismatched"}, "tokenizer does not fit the model"),
    }[case]
    out = f"out/bad-{case.replace(' ', '-')}"
    result = optimize(*settings, *small(settings[0].split("=")[1]), out=out, **paths)
    assert result.exit_code == 2, result.output[-3000:]
    assert named in " ".join(result.output.split())
    assert not (project / out).exists()


def test_soft_labels_add_the_conservative_dpo_term(project: Path):
    """With target p, the sigmoid term becomes -p log s(b d) - (1 - p) log s(-b d): TRL's loss plus (1 - p) b d."""
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from rlaif.training.dpo import soft_label_dpo_trainer
    from rlaif.training.models import load_policy

    model, tokenizer = load_policy(project / "tiny/policy", for_generation=False)
    tokenizer.padding_side = "right"
    rows = [json.loads(line) for line in (project / "tiny/preferences.jsonl").read_text().splitlines()][:4]
    data = Dataset.from_list([{"prompt": f"User: {r['prompt']}\nAssistant:", "chosen": " " + r["chosen"],
                               "rejected": " " + r["rejected"], "target": r["confidence"]} for r in rows])
    args = DPOConfig(output_dir=str(project / "out/soft"), per_device_train_batch_size=4, beta=0.5,
                     loss_type=["sigmoid", "sft"], loss_weights=[1.0, 2.0], max_length=64, precompute_ref_log_probs=True,
                     report_to="none", use_cpu=True, bf16=False, gradient_checkpointing=False)
    trainer = soft_label_dpo_trainer()(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        for p in model.parameters():  # move the policy away from its reference
            p.add_(0.05 * torch.randn_like(p))
        soft = trainer.compute_loss(model, dict(batch))
        plain = DPOTrainer._compute_loss(trainer, model, {k: v for k, v in batch.items() if k != "target"}, False)
        mask = batch["completion_mask"][:, 1:]
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        token_logps = torch.log_softmax(logits, -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
        chosen, rejected = (token_logps * mask).sum(1).chunk(2)
    margin = (chosen - batch["ref_chosen_logps"]) - (rejected - batch["ref_rejected_logps"])
    expected = ((1 - batch["target"]) * 0.5 * margin).mean()
    assert abs(float(margin.abs().mean())) > 1e-3
    assert float(soft - plain) == pytest.approx(float(expected), rel=1e-3, abs=1e-5)


def test_the_dpo_probe_samples_every_nth_logged_step_and_the_last():
    from types import SimpleNamespace

    from rlaif.training.dpo import SampleProbe

    measured = []

    class Counting(SampleProbe):
        def measure(self, model, step: int) -> dict[str, float]:
            measured.append(step)
            return {"refusal_rate": 0.0}

    probe = Counting(["a prompt"], tokenizer=None, refusals=None, max_new_tokens=4, seed=0, every=3)
    probe.trainer = SimpleNamespace(model=None)
    rows = []
    for step in range(1, 8):
        logs = {"loss": 1.0}
        probe.on_log(None, SimpleNamespace(global_step=step, max_steps=7), None, logs=logs)
        rows.append(logs)
    assert measured == [3, 6, 7]
    assert [("refusal_rate" in row) for row in rows] == [False, False, True, False, False, True, True]
