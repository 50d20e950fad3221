"""train_reward: a reward model from the validated preferences.

The pretrained encoder (all-MiniLM-L6-v2 by default; any AutoModelForSequenceClassification
backbone by package, path or hub id) gets a scalar head and is trained with TRL's RewardTrainer,
in full or with LoRA adapters (`train_reward.lora`). Prompts are split, not pairs, so held-out
accuracy measures prompts the model never saw; agreement with the human gold pairs is reported beside it.

Soft labels (`train_reward.soft_labels`): see rlaif/training/reward.py.
Calibration: P(chosen better) = s(d) on the held-out pairs gives an expected calibration error and a
reliability plot (rlaif.evaluation.calibration).

From the second round on, the preferences that trained the starting version and its ancestors are replayed
(`train_reward.replay`, artifacts/bootstrap/replay_preferences.jsonl): see rlaif/lifecycle/rounds.py for why.

Bad input stops the stage before any training and before anything is written to the output directory:
too few pairs, a preference row without the fields training needs, a model that cannot be found or
loaded, a tokenizer with more tokens than the model has embeddings.
"""

from __future__ import annotations

from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.data.io import GoldPair, read_rows, write_json
from rlaif.data.records import read_preferences
from rlaif.errors import InputError
from rlaif.training.reward import (
    held_out_and_gold_figures,
    load_backbone,
    replayed_preferences,
    split_by_prompt,
    train_reward_model,
)


def train_reward(cfg: PipelineConfig, preferences: Path, gold: Path, out_dir: Path, metrics_path: Path,
                 replay: Path | None = None) -> Path:
    from rlaif.lifecycle.tracking import stage_run
    from rlaif.registry import register_model

    r = cfg.train_reward
    out_dir = Path(out_dir)
    rows = read_preferences(Path(preferences), r.min_pairs, "train_reward.min_pairs")
    gold_pairs = read_rows(gold, GoldPair)
    train_rows, eval_rows = split_by_prompt(rows, r.eval_fraction, cfg.seed)
    if not train_rows:
        raise InputError(f"{preferences}: all {len(rows)} pairs share the held-out prompts; "
                         "training needs pairs from more than one prompt")
    replayed = replayed_preferences(replay, {x.prompt_id for x in eval_rows}) if r.replay else []
    model, tokenizer = load_backbone(r.model, r.max_length, cfg.seed)  # bad model or tokenizer: stop here
    inputs = {"preferences": preferences, "gold": gold}
    if replayed and replay is not None:  # rows were replayed, so from the replay file
        inputs["replay"] = replay
    with stage_run("train_reward", cfg, inputs=inputs,
                   datasets={"preferences": preferences}, outputs={"train_reward": Path(out_dir)}) as run:
        from rlaif.evaluation.calibration import plot_reliability
        from rlaif.training.trainer import checkpoint_dir

        checkpoints = checkpoint_dir("train_reward", [preferences], r, cfg.seed)
        model, used = train_reward_model(cfg, model, tokenizer, train_rows + replayed, out_dir, checkpoints)
        figures, bins = held_out_and_gold_figures(model, tokenizer, eval_rows, gold_pairs, r.calibration_bins)
        metrics = {
            "train_pairs": len(train_rows),
            "train_pairs_replayed": len(replayed),  # earlier rounds' pairs, trained on beside this round's
            "train_pairs_used": used,  # RewardTrainer drops pairs longer than max_length tokens
            **figures,
        }
        plot = plot_reliability(bins, out_dir / "reliability.png",
                                f"train_reward: held-out reliability (soft_labels={r.soft_labels})")
        write_json(metrics_path, metrics)
        run.metrics(metrics)
        run.artifact(out_dir / "reward_curve.png", "plots")
        run.artifact(plot, "plots")
        version = register_model(out_dir / "model", "rlaif-reward", "reward",
                                 f"heldout_accuracy={metrics['heldout_accuracy']:.3f} "
                                 f"heldout_ece={metrics['heldout_ece']:.3f} soft_labels={r.soft_labels}")
        run.metrics({"registered_version": float(version)}, headline=False)
    return out_dir / "model"
