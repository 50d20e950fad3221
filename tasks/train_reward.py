"""train_reward: a reward model from the validated preferences.

The pretrained encoder (all-MiniLM-L6-v2 by default; any AutoModelForSequenceClassification
backbone by hub id or path) gets a scalar head and is trained with TRL's RewardTrainer. Prompts are
split, not pairs, so held-out accuracy measures prompts the model never saw; agreement with the
human gold pairs is reported beside it.
"""

from __future__ import annotations

import random
from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.io import GoldPair, read_jsonl, read_rows, write_json


def dialogue(prompt: str, response: str) -> str:
    from rlaif.models import ASSISTANT_PREFIX, USER_PREFIX

    return f"{USER_PREFIX}{prompt}{ASSISTANT_PREFIX} {response}"


def train_reward(cfg: PipelineConfig, preferences: Path, gold: Path, out_dir: Path, metrics_path: Path) -> Path:
    from rlaif.tracking import register_model, stage_run

    r = cfg.train_reward
    rows = read_jsonl(preferences)
    gold_pairs = read_rows(gold, GoldPair)
    train_rows, eval_rows = _split_by_prompt(rows, r.eval_fraction, cfg.seed)
    with stage_run("train_reward", cfg, inputs={"preferences": preferences, "gold": gold},
                   datasets={"preferences": preferences}) as run:
        from rlaif.training import checkpoint_dir

        checkpoints = checkpoint_dir("train_reward", [preferences], r, cfg.seed)
        model, tokenizer, history = _train(cfg, train_rows, Path(out_dir), checkpoints)
        metrics = {
            "train_pairs": len(train_rows),
            "heldout_pairs": len(eval_rows),
            "heldout_accuracy": _pair_accuracy(model, tokenizer, [(x["prompt"], x["chosen"], x["rejected"]) for x in eval_rows]),
            "gold_agreement": _pair_accuracy(model, tokenizer, [
                (g.prompt, *((g.response_a, g.response_b) if g.human_preference == "a" else (g.response_b, g.response_a)))
                for g in gold_pairs]),
        }
        write_json(metrics_path, metrics)
        run.metrics(metrics)
        run.artifact(Path(out_dir) / "reward_curve.png", "plots")
        version = register_model(Path(out_dir) / "model", "rlaif-reward", "reward",
                                 f"heldout_accuracy={metrics['heldout_accuracy']:.3f}")
        run.metrics({"registered_version": float(version)}, headline=False)
    return Path(out_dir) / "model"


def _split_by_prompt(rows: list[dict], eval_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    prompt_ids = sorted({r["prompt_id"] for r in rows})
    random.Random(seed).shuffle(prompt_ids)
    held = set(prompt_ids[: max(1, int(len(prompt_ids) * eval_fraction))])
    return [r for r in rows if r["prompt_id"] not in held], [r for r in rows if r["prompt_id"] in held]


def _train(cfg: PipelineConfig, rows: list[dict], out_dir: Path, checkpoints: Path):
    import shutil

    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from rlaif.models import resolve_model_source
    from rlaif.training import MlflowSteps, plot_curves, save_atomically, train_resumably, trainer_kwargs

    r = cfg.train_reward
    source = resolve_model_source(r.model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.eos_token is None:  # BERT-style encoders end a sequence with [SEP]
        tokenizer.eos_token = tokenizer.sep_token
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    data = Dataset.from_list([
        {"chosen": dialogue(x["prompt"], x["chosen"]), "rejected": dialogue(x["prompt"], x["rejected"])} for x in rows
    ])
    args = RewardConfig(max_length=r.max_length, **trainer_kwargs(cfg.seed, r, checkpoints))
    steps = MlflowSteps("reward")
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[steps])
    train_resumably(trainer, checkpoints, "train_reward")
    save_atomically(trainer.model, tokenizer, out_dir / "model")
    shutil.rmtree(checkpoints, ignore_errors=True)
    plot_curves(steps.history, ["loss", "accuracy", "margin"], out_dir / "reward_curve.png", "train_reward")
    return trainer.model.eval(), tokenizer, steps.history


def _pair_accuracy(model, tokenizer, triples: list[tuple[str, str, str]]) -> float:
    """Share of (prompt, chosen, rejected) where the reward of chosen is higher."""
    import torch

    if not triples:
        return float("nan")
    correct = 0
    for start in range(0, len(triples), 64):
        chunk = triples[start : start + 64]
        texts = [dialogue(p, c) for p, c, _ in chunk] + [dialogue(p, r) for p, _, r in chunk]
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt").to(model.device)
        with torch.no_grad():
            scores = model(**batch).logits[:, 0].float()
        correct += int((scores[: len(chunk)] > scores[len(chunk) :]).sum())
    return correct / len(triples)
