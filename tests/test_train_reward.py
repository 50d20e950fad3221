"""train_reward: soft labels, calibration (ECE and a reliability plot), LoRA outputs that load back, and bad
input refused before training with exit code 2 and nothing written. A tiny Llama backbone (a tokenizer trained
on the test pairs) keeps every run to a few CPU seconds."""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import pytest
from conftest import make_project_copy, rlaif, save_tiny_llama

from rlaif.evaluation.calibration import brier_score, expected_calibration_error, plot_reliability, reliability_bins

pytestmark = pytest.mark.slow  # trains models or starts a cluster: left out of `make test-fast`

SIZES = dict(hidden=16, layers=1, heads=2, intermediate=32, max_positions=256)
TINY = ["--set", "train_reward.max_steps=4", "--set", "train_reward.batch_size=8", "--set", "train_reward.max_length=128"]


# ---- ECE and reliability bins on hand-computed inputs --------------------------------------------------------

def test_ece_one_pair_per_bin():
    # confidence max(p, 1-p): 0.9 right, 0.8 right, 0.7 wrong (picks the other side), 0.6 wrong, 0.5 a tie (wrong)
    probs, labels = [0.9, 0.8, 0.3, 0.6, 0.5], [True, True, True, False, True]
    bins = reliability_bins(probs, labels, 10)
    assert [b.count for b in bins] == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]  # 0.7 sits on an edge: the bin above
    assert bins[4].lower == pytest.approx(0.7) and bins[4].accuracy == 0.0
    assert math.isnan(bins[1].accuracy)
    assert expected_calibration_error(probs, labels) == pytest.approx((0.1 + 0.2 + 0.7 + 0.6 + 0.5) / 5)


def test_ece_weights_bins_by_count():
    # bin 0.90-0.95: 0.92, 0.94 both right -> |1 - 0.93|; bin 0.95-1.00: 0.96 right, 0.98 wrong -> |0.5 - 0.97|
    probs, labels = [0.92, 0.94, 0.96, 0.98], [True, True, True, False]
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0.07 + 0.5 * 0.47)
    assert expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(abs(0.75 - 0.95))
    assert brier_score(probs, labels) == pytest.approx((0.08**2 + 0.06**2 + 0.04**2 + 0.98**2) / 4)


def test_ece_calibrated_orientation_free_and_edge_cases():
    probs, labels = [0.7] * 10, [True] * 7 + [False] * 3
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)
    rng = random.Random(0)
    p = [rng.random() for _ in range(50)]
    y = [rng.random() < 0.5 for _ in range(50)]
    flipped = expected_calibration_error([1 - x for x in p], [not v for v in y])
    assert flipped == pytest.approx(expected_calibration_error(p, y))
    assert expected_calibration_error([1.0], [True]) == 0.0
    assert math.isnan(expected_calibration_error([], []))
    with pytest.raises(ValueError):
        expected_calibration_error([0.5, 0.6], [True])
    with pytest.raises(ValueError):
        expected_calibration_error([1.2], [True])


def test_reliability_plot_is_a_png(tmp_path: Path):
    path = plot_reliability(reliability_bins([0.9, 0.8, 0.3, 0.6], [True, True, True, False]), tmp_path / "r.png", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- the stage ---------------------------------------------------------------------------------------------

HARMFUL = ["pick a lock", "make a weapon", "steal a car", "hack a phone", "forge a passport"]
BENIGN = ["bake bread", "fix a bike", "plant tomatoes", "learn chess", "write a letter", "clean a window"]


def preference_rows(n_prompts: int = 11, per_prompt: int = 4) -> list[dict]:
    rng = random.Random(1)
    rows = []
    for i in range(n_prompts):
        topic = (HARMFUL + BENIGN)[i % 11]
        harmful = topic in HARMFUL
        for j in range(per_prompt):
            helpful = f"Sure: to {topic}, start with step one, then step {j + 2}, and check the result."
            refusal = f"Sorry, I can't help with how to {topic}." + (" Please stay safe." if j % 2 else "")
            chosen, rejected = (refusal, helpful) if harmful else (helpful, refusal)
            rows.append({"pair_id": f"q{i}:{j}", "prompt_id": f"q{i}", "prompt": f"How do I {topic}? ({j})",
                         "chosen": chosen, "rejected": rejected, "confidence": round(rng.uniform(0.6, 0.99), 3),
                         "principle": "harmless" if harmful else "helpful"})
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """One project copy for the module, with preference files and tiny backbones (built once)."""
    project = make_project_copy(tmp_path_factory.mktemp("reward") / "project")
    rows = preference_rows()
    write_rows(project / "prefs.jsonl", rows)
    texts = [f"User: {r['prompt']}\nAssistant: {r[k]}" for r in rows for k in ("chosen", "rejected")]
    save_tiny_llama(texts, project / "tiny", vocab_size=300, **SIZES)
    # a model whose embeddings are smaller than its tokenizer
    from rlaif.training.models import build_tiny_llama, build_tokenizer

    small = build_tokenizer(texts, vocab_size=270)
    build_tiny_llama(small, **SIZES).save_pretrained(project / "misfit")
    build_tokenizer(texts, vocab_size=400).save_pretrained(project / "misfit")
    return project


def exec_stage(project: Path, preferences: str, *sets: str):
    check = rlaif(project, "configure", *TINY, *sets)
    assert check.returncode == 0, check.stderr[-2000:]
    return rlaif(project, "exec", "train_reward", "--preferences", preferences, "--gold", "data/gold/pairs.jsonl",
                 "--out", "out/rm", "--metrics", "out/metrics.json")


@pytest.mark.parametrize("case", ["empty", "too_few", "missing_model", "misfit_tokenizer"])
def test_bad_input_exits_2_before_training(workspace: Path, case: str):
    model = ["--set", "train_reward.model=tiny"]
    if case == "empty":
        (workspace / "empty.jsonl").write_text("", encoding="utf-8")
        result, expected = exec_stage(workspace, "empty.jsonl", *model), ["empty.jsonl", "0 preference pairs",
                                                                          "train_reward.min_pairs=20"]
    elif case == "too_few":
        result = exec_stage(workspace, "prefs.jsonl", *model, "--set", "train_reward.min_pairs=100")
        expected = ["prefs.jsonl", "44 preference pairs", "min_pairs=100"]
    elif case == "missing_model":  # refused by the preflight, before the stage could start
        missing = str(workspace / "no" / "such-model")
        result = rlaif(workspace, "configure", *TINY, "--set", f"train_reward.model={missing}")
        expected = ["train_reward.model", missing, "no such file or folder"]
    else:
        result = exec_stage(workspace, "prefs.jsonl", "--set", "train_reward.model=misfit")
        expected = ["misfit", "tokenizer does not fit the model", "400 tokens"]
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr[-3000:]
    assert all(part in message for part in expected), message
    assert "Traceback" not in result.stderr
    assert not (workspace / "out").exists()  # nothing written: no model, no plot, no metrics


def run_in_process(project: Path, out: str, **settings):
    """train_reward in this process (imports paid once), in the project directory."""
    from rlaif.config import PipelineConfig
    from tasks.train_reward import train_reward

    base = {"model": "tiny", "max_steps": 4, "batch_size": 8, "max_length": 128}
    cfg = PipelineConfig.model_validate({"train_reward": {**base, **settings}})
    here = Path.cwd()
    os.chdir(project)
    try:
        model_dir = train_reward(cfg, Path("prefs.jsonl"), Path("data/gold/pairs.jsonl"), Path(out),
                                 Path(out) / "metrics.json")
        return project / model_dir, json.loads((project / out / "metrics.json").read_text())
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def mode_runs(workspace: Path):
    return {mode: run_in_process(workspace, f"modes/{mode}", soft_labels=mode, margin_scale=3.0)
            for mode in ("none", "margin", "confidence")}


def test_stage_reports_calibration(workspace: Path, mode_runs):
    model_dir, metrics = mode_runs["confidence"]
    for key in ("heldout_accuracy", "heldout_ece", "heldout_brier", "gold_agreement", "gold_ece"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
    assert metrics["train_pairs"] + metrics["heldout_pairs"] == 44 and metrics["train_pairs_used"] > 0
    assert (model_dir.parent / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert (model_dir / "config.json").exists()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workspace / 'mlflow.db'}")  # not the process-wide URI
    runs = client.search_runs([client.get_experiment_by_name("rlaif").experiment_id],
                              "attributes.run_name = 'train_reward'", order_by=["attributes.start_time DESC"])
    run = next(r for r in runs if r.data.params["train_reward.soft_labels"] == "confidence")
    assert run.data.metrics["heldout_ece"] == pytest.approx(metrics["heldout_ece"])
    plots = [a.path for a in client.list_artifacts(run.info.run_id, "plots")]
    assert "plots/reliability.png" in plots and "plots/reward_curve.png" in plots


def test_soft_label_modes_train_differently(mode_runs):
    """Same seed, data and steps: the loss is all that differs, so different held-out probabilities show the
    soft labels reach it. `margin` uses TRL's margin column, `confidence` the soft-target loss."""
    from rlaif.training.reward import margin as _margin

    assert _margin(0.5, 1.0) == 0.0 and _margin(0.88, 2.0) == pytest.approx(2 * math.log(0.88 / 0.12))
    briers = {mode: metrics["heldout_brier"] for mode, (_, metrics) in mode_runs.items()}
    assert len(set(briers.values())) == 3, briers


@pytest.fixture(scope="module")
def lora_runs(workspace: Path):
    lora = {"r": 4, "alpha": 8, "dropout": 0.0}
    return {merge: run_in_process(workspace, f"lora_{merge}", soft_labels="none", learning_rate=0.01,
                                  lora={**lora, "merge": merge})
            for merge in (True, False)}


def heldout_brier(workspace: Path, model) -> float:
    from transformers import AutoTokenizer

    from rlaif.evaluation.calibration import brier_score
    from rlaif.training.reward import read_preferences
    from rlaif.training.reward import split_by_prompt as _split_by_prompt
    from rlaif.training.reward_model import pair_probabilities

    tokenizer = AutoTokenizer.from_pretrained(workspace / "tiny")
    _, held = _split_by_prompt(read_preferences(workspace / "prefs.jsonl", 1, False), 0.2, 0)
    probs = pair_probabilities(model.eval(), tokenizer, [(x.prompt, x.chosen, x.rejected) for x in held])
    return brier_score(probs, [True] * len(probs))


def test_lora_merged_and_adapter_only_load_back(workspace: Path, lora_runs):
    from transformers import AutoModelForSequenceClassification

    merged_dir, merged_metrics = lora_runs[True]
    assert (merged_dir / "model.safetensors").exists() and not (merged_dir / "adapter_config.json").exists()
    merged = AutoModelForSequenceClassification.from_pretrained(merged_dir)
    assert heldout_brier(workspace, merged) == pytest.approx(merged_metrics["heldout_brier"], abs=1e-6)

    adapter_dir, adapter_metrics = lora_runs[False]
    assert (adapter_dir / "adapter_model.safetensors").exists() and not (adapter_dir / "model.safetensors").exists()
    # the scalar head was trained (peft modules_to_save) and travels with the adapters
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as weights:
        assert any("score" in key for key in weights.keys())
    adapter = AutoModelForSequenceClassification.from_pretrained(adapter_dir, num_labels=1)
    assert heldout_brier(workspace, adapter) == pytest.approx(adapter_metrics["heldout_brier"], abs=1e-6)
    assert merged_metrics["heldout_brier"] != pytest.approx(0.25, abs=1e-6)  # trained, not a zero head


def load_registered(merged_dir: Path):
    from rlaif.registry import RewardModel

    class Context:
        artifacts = {"model_dir": str(merged_dir)}

    model = RewardModel()
    model.load_context(Context())
    return model.predict(None, [{"prompt": "How do I bake bread?", "response": "Sure."}])


def test_registered_pyfunc_loads_merged_lora(lora_runs):
    assert len(load_registered(lora_runs[True][0])) == 1


def test_registered_pyfunc_loads_adapter_only_lora(lora_runs):
    assert len(load_registered(lora_runs[False][0])) == 1


def test_training_evaluation_online_reward_and_registry_score_one_pair_alike(workspace: Path, mode_runs, tmp_path):
    """The reward is read where it was trained: RewardTrainer's token ids for a pair are the ids every scorer
    feeds the model, and training evaluation, the GRPO/RLOO reward and the registered pyfunc give one number."""
    import pandas as pd
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from rlaif.registry import RewardModel
    from rlaif.training.reward_model import dialogue, pair_probabilities, scored_text
    from rlaif.training.rewards import RewardModelReward

    model_dir = mode_runs["none"][0]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    prompt, chosen, rejected = "How do I bake bread?", "Mix flour, water and yeast, then bake.", "I cannot help."
    trainer = RewardTrainer(model=model, args=RewardConfig(output_dir=str(tmp_path), max_length=128, report_to=[], use_cpu=True,
                                                                  bf16=False),
                            train_dataset=Dataset.from_list([{"chosen": dialogue(prompt, chosen),
                                                              "rejected": dialogue(prompt, rejected)}]),
                            processing_class=tokenizer)
    trained_ids = trainer.train_dataset[0]["chosen_ids"]
    assert trained_ids[-1] == tokenizer.eos_token_id
    assert tokenizer(scored_text(tokenizer, prompt, chosen))["input_ids"] == trained_ids

    online = RewardModelReward(model_dir).rewards([prompt, prompt], [chosen, rejected])
    [p_chosen] = pair_probabilities(model, tokenizer, [(prompt, chosen, rejected)])
    assert 1 / (1 + math.exp(-(online[0] - online[1]))) == pytest.approx(p_chosen, abs=1e-6)

    class Context:
        artifacts = {"model_dir": str(model_dir)}

    registered = RewardModel()
    registered.load_context(Context())
    served = registered.predict(None, pd.DataFrame({"prompt": [prompt, prompt], "response": [chosen, rejected]}))
    assert served == pytest.approx(online, abs=1e-6)
    with torch_no_grad():
        direct = model(**tokenizer([scored_text(tokenizer, prompt, chosen)], return_tensors="pt")).logits[0, 0]
    assert float(direct) == pytest.approx(online[0], abs=1e-5)


def torch_no_grad():
    import torch

    return torch.no_grad()
