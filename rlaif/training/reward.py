"""Training the reward model: a pretrained encoder (or any AutoModelForSequenceClassification backbone by package,
path or hub id) with a scalar head, trained with TRL's RewardTrainer in full or with LoRA adapters.

Soft labels (`train_reward.soft_labels`): the judge's confidence c in the chosen answer can enter the loss
  none        -log s(d), d = r_chosen - r_rejected: every pair a hard label
  margin      -log s(d - m), m = margin_scale * logit(c): TRL's margin column; confident pairs need a wider gap
  confidence  -[c log s(d) + (1 - c) log s(-d)]: cross-entropy against the judge's probability, minimal
              at s(d) = c, so the model's P(chosen better) learns the judge's confidence
(why margin is the default: docs/measurements.md, "Soft labels for the reward model")."""

from __future__ import annotations

import math
import random
from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.data.records import Preference, read_preferences
from rlaif.errors import InputError
from rlaif.training.reward_model import dialogue


def replayed_preferences(path: Path | None, held_out_prompts: set[str]) -> list[Preference]:
    """Earlier rounds' preferences to train on, less those of this round's held-out prompts (so held-out accuracy
    still measures prompts the model never trained on)."""
    if path is None or not Path(path).exists():
        return []
    return [x for x in read_preferences(Path(path)) if x.prompt_id not in held_out_prompts]


def looks_like_path(name: str) -> bool:
    return Path(name).is_absolute() or name.startswith((".", "~")) or name.count("/") != 1 or "\\" in name


def load_backbone(name: str, max_length: int, seed: int):
    """The tokenizer and a one-output sequence-classification model, checked to fit each other."""
    if "/" in name and not Path(name).exists() and looks_like_path(name):
        raise InputError(f"train_reward.model {name!r}: no such path")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    from rlaif.training.models import resolve_model_source

    try:
        source = resolve_model_source(name)
    except InputError as err:
        raise InputError(f"train_reward.model: {err}") from None
    if Path(source).exists():  # absolute, so that adapters saved alone name a base that loads from anywhere
        source = str(Path(source).resolve())
    set_seed(seed)  # the new scalar head is initialised from the RNG
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"train_reward.model {source!r}: cannot be loaded as a tokenizer and a sequence "
                         f"classification model ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    embeddings = model.get_input_embeddings()
    rows = embeddings.num_embeddings if embeddings is not None else getattr(model.config, "vocab_size", None)
    if rows is not None and len(tokenizer) > rows:
        raise InputError(f"train_reward.model {source!r}: the tokenizer does not fit the model: it has {len(tokenizer)} "
                         f"tokens but the model's embeddings have {rows} rows (a tokenizer from another model?)")
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and max_length > positions:
        raise InputError(f"train_reward.max_length={max_length} is longer than the {positions} positions "
                         f"of {source!r}")
    if tokenizer.eos_token is None:  # BERT-style encoders end a sequence with [SEP]
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:  # decoder-only backbones often have none
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token is None or tokenizer.pad_token is None:
        raise InputError(f"train_reward.model {source!r}: the tokenizer has no end-of-sequence, separator or "
                         "padding token to end and pad sequences with")
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def split_by_prompt(rows: list, eval_fraction: float, seed: int) -> tuple[list, list]:
    prompt_ids = sorted({r.prompt_id for r in rows})
    random.Random(seed).shuffle(prompt_ids)
    held = set(prompt_ids[: max(1, int(len(prompt_ids) * eval_fraction))])
    return [r for r in rows if r.prompt_id not in held], [r for r in rows if r.prompt_id in held]


def margin(confidence: float, scale: float) -> float:
    c = min(max(confidence, 1e-4), 1 - 1e-4)
    return scale * math.log(c / (1 - c))


def train_reward_model(cfg: PipelineConfig, model, tokenizer, rows: list[Preference], out_dir: Path, checkpoints: Path):
    import shutil

    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from rlaif.training.trainer import (
        MlflowSteps,
        apply_lora,
        plot_curves,
        save_atomically,
        train_resumably,
        trainer_kwargs,
    )

    r = cfg.train_reward
    model = apply_lora(model, r.lora, "SEQ_CLS")
    if r.lora is not None and not any(p.requires_grad for n, p in model.named_parameters() if "modules_to_save" in n):
        raise InputError(f"train_reward.model {r.model!r}: with LoRA the scalar head must stay trainable, but the "
                         "model has no head named 'classifier' or 'score' (peft's modules_to_save)")
    columns = []
    for x in rows:
        row: dict[str, str | float] = {"chosen": dialogue(x.prompt, x.chosen), "rejected": dialogue(x.prompt, x.rejected)}
        if r.soft_labels == "margin":
            row["margin"] = margin(x.confidence, r.margin_scale)
        elif r.soft_labels == "confidence":
            row["confidence"] = float(x.confidence)
        columns.append(row)
    args = RewardConfig(max_length=r.max_length, **trainer_kwargs(cfg.seed, r, checkpoints))
    steps = MlflowSteps("reward")
    extra = {}
    trainer_class = RewardTrainer
    if r.soft_labels == "confidence":
        trainer_class, collator_class = soft_label_classes()
        extra["data_collator"] = collator_class(pad_token_id=tokenizer.pad_token_id)
    trainer = trainer_class(model=model, args=args, train_dataset=Dataset.from_list(columns),
                            processing_class=tokenizer, callbacks=[steps], **extra)
    used = len(trainer.train_dataset)
    if used == 0:
        raise InputError(f"train_reward: all {len(rows)} training pairs are longer than train_reward.max_length="
                         f"{r.max_length} tokens of {r.model!r}'s tokenizer; raise max_length")
    train_resumably(trainer, checkpoints, "train_reward")
    merge = r.lora.merge if r.lora is not None else True
    save_atomically(trainer.model, tokenizer, out_dir / "model", merge_lora=merge)
    shutil.rmtree(checkpoints, ignore_errors=True)
    plot_curves(steps.history, ["loss", "accuracy", "margin"], out_dir / "reward_curve.png", "train_reward")
    return trainer.model.eval(), used


def soft_label_classes():
    """RewardTrainer with the soft-target loss, and a collator that passes each pair's confidence on."""
    import torch
    from torch.nn.functional import logsigmoid
    from trl import RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    class ConfidenceCollator(DataCollatorForPreference):
        def torch_call(self, examples):
            batch = super().torch_call(examples)
            batch["confidence"] = torch.tensor([e["confidence"] for e in examples], dtype=torch.float)
            return batch

    class SoftLabelRewardTrainer(RewardTrainer):
        """-[c log s(d) + (1 - c) log s(-d)]: RewardTrainer's forward pass and logged metrics, this loss."""

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if "confidence" not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, "confidence"]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            confidence = inputs.pop("confidence")
            _, outputs = super().compute_loss(model, inputs, return_outputs=True)
            chosen, rejected = torch.chunk(outputs.logits.squeeze(-1).float(), chunks=2)
            gap = chosen - rejected
            loss = -(confidence * logsigmoid(gap) + (1 - confidence) * logsigmoid(-gap)).mean()
            if self.args.center_rewards_coefficient is not None:
                loss = loss + self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
            return (loss, outputs) if return_outputs else loss

    return SoftLabelRewardTrainer, ConfidenceCollator


def accuracy(probs: list[float]) -> float:
    """Share of pairs whose chosen answer gets the higher reward (a tie counts as wrong)."""
    return sum(p > 0.5 for p in probs) / len(probs) if probs else float("nan")


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def held_out_and_gold_figures(model, tokenizer, eval_rows: list[Preference], gold_pairs: list,
                              calibration_bins: int) -> tuple[dict[str, float], list]:
    """P(chosen better) on the held-out pairs (accuracy, calibration: every chosen answer there is the right one)
    and on the human gold pairs (agreement with people); the held-out reliability bins, for the plot."""
    from rlaif.evaluation.calibration import (
        brier_score,
        ece_from_bins,
        expected_calibration_error,
        reliability_bins,
    )
    from rlaif.training.reward_model import pair_probabilities

    heldout = pair_probabilities(model, tokenizer, [(x.prompt, x.chosen, x.rejected) for x in eval_rows])
    gold = pair_probabilities(model, tokenizer, [
        (g.prompt, *((g.response_a, g.response_b) if g.human_preference == "a" else (g.response_b, g.response_a)))
        for g in gold_pairs])
    bins = reliability_bins(heldout, [True] * len(heldout), calibration_bins)
    return {
        "heldout_pairs": len(eval_rows),
        "heldout_accuracy": accuracy(heldout),
        "heldout_ece": ece_from_bins(bins),
        "heldout_mean_confidence": mean([max(p, 1 - p) for p in heldout]),
        "heldout_brier": brier_score(heldout, [True] * len(heldout)),
        "gold_pairs": len(gold_pairs),
        "gold_agreement": accuracy(gold),
        "gold_ece": expected_calibration_error(gold, [True] * len(gold), calibration_bins),
    }, bins
