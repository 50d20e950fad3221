"""optimize_policy: the new policy, trained with TRL's DPOTrainer on the validated preferences.

The default loss is DPO plus a likelihood term on the chosen answer (loss_type ["sigmoid", "sft"]):
plain DPO on a tiny policy can push the chosen answer's log-probability down with the rejected one
and end in garbled text.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.io import read_jsonl


def optimize_policy(cfg: PipelineConfig, preferences: Path, policy: Path, out_dir: Path) -> Path:
    from rlaif.tracking import register_model, stage_run

    rows = read_jsonl(preferences)
    with stage_run("optimize_policy", cfg, inputs={"preferences": preferences, "base_policy": policy},
                   datasets={"preferences": preferences}) as run:
        from rlaif.training import checkpoint_dir

        checkpoints = checkpoint_dir("optimize_policy", [preferences, Path(policy)], cfg.optimize_policy, cfg.seed)
        history = _train_dpo(cfg, rows, Path(policy), Path(out_dir), checkpoints)
        last = {k: v for row in history for k, v in row.items() if k != "step"}
        run.metrics({"train_pairs": len(rows), "final_loss": last.get("loss", float("nan")),
                     "final_reward_margin": last.get("rewards/margins", float("nan")),
                     "final_logps_chosen": last.get("logps/chosen", float("nan"))})
        run.artifact(Path(out_dir) / "dpo_curves.png", "plots")
        register_model(Path(out_dir) / "policy", "rlaif-policy", "policy", "DPO on validated AI preferences")
    return Path(out_dir) / "policy"


def _train_dpo(cfg: PipelineConfig, rows: list[dict], policy: Path, out_dir: Path, checkpoints: Path) -> list[dict]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from rlaif.models import format_completion, format_prompt, load_policy
    from rlaif.training import MlflowSteps, plot_curves, save_atomically, train_resumably, trainer_kwargs

    o = cfg.optimize_policy
    model, tokenizer = load_policy(policy, for_generation=False)
    tokenizer.padding_side = "right"
    data = Dataset.from_list([
        {"prompt": format_prompt(tokenizer, x["prompt"]),
         "chosen": format_completion(tokenizer, x["chosen"]),
         "rejected": format_completion(tokenizer, x["rejected"])}
        for x in rows
    ])
    args = DPOConfig(beta=o.beta, loss_type=o.loss_type, loss_weights=o.loss_weights, max_length=o.max_length,
                     **trainer_kwargs(cfg.seed, o, checkpoints))
    steps = MlflowSteps("dpo")
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[steps])
    train_resumably(trainer, checkpoints, "optimize_policy")
    tokenizer.padding_side = "left"
    save_atomically(trainer.model, tokenizer, out_dir / "policy")
    shutil.rmtree(checkpoints, ignore_errors=True)
    plot_curves(steps.history, ["loss", "rewards/margins", "rewards/accuracies", "logps/chosen"],
                out_dir / "dpo_curves.png", "optimize_policy (DPO)")
    return steps.history
