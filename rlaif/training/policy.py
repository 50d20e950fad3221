"""What every policy-optimisation algorithm shares: LoRA from the params, and saving the trained policy with its
training curves."""

from __future__ import annotations

import shutil
from pathlib import Path

from rlaif.config import OptimizePolicyConfig

CURVES = {
    "dpo": ["loss", "rewards/margins", "kl", "completions/mean_length", "refusal_rate"],
    "online": ["reward", "kl", "completions/mean_length", "refusal_rate", "loss"],
}


def with_lora(model, o: OptimizePolicyConfig, seed: int):
    """LoRA adapters when the params ask for them, initialised from the seed (reproducible runs)."""
    from transformers import set_seed

    from rlaif.training.trainer import apply_lora

    if o.lora is not None:
        set_seed(seed)
    return apply_lora(model, o.lora, "CAUSAL_LM")


def save_policy(trainer, tokenizer, o: OptimizePolicyConfig, out_dir: Path, checkpoints: Path, history: list[dict]) -> None:
    from rlaif.training.trainer import plot_curves, save_atomically

    tokenizer.padding_side = "left"  # what generation (evaluate) needs
    save_atomically(trainer.model, tokenizer, out_dir / "policy", merge_lora=o.lora.merge if o.lora else True)
    shutil.rmtree(checkpoints, ignore_errors=True)
    keys = CURVES["dpo" if o.algorithm == "dpo" else "online"]
    plot_curves(history, keys, out_dir / f"{o.algorithm}_curves.png", f"optimize_policy ({o.algorithm})")


def policy_checkpoints(cfg, o: OptimizePolicyConfig, policy: Path, inputs: list[Path]) -> Path:
    """Where the run keeps checkpoints to resume from: only checkpoints of the same inputs, params (the judge's too,
    when it is the reward) and seed."""
    from rlaif.training.checkpoint import checkpoint_path
    from rlaif.training.policy_inputs import files_under

    settings = {"seed": cfg.seed, "optimize_policy": o.model_dump(mode="json")}
    if o.algorithm == "online_judge":
        settings["judge"] = cfg.judge.model_dump(mode="json")
    return checkpoint_path("optimize_policy", [f for path in [policy, *inputs] for f in files_under(Path(path))],
                           settings)


def final_figures(algorithm: str, history: list[dict], data: dict) -> dict[str, float]:
    """The last logged value of each training curve the run reports, and what it trained on."""
    last = {k: v for row in history for k, v in row.items() if k != "step"}
    nan = float("nan")
    figures = {"final_loss": last.get("loss", nan), "final_kl": last.get("kl", nan),
               "final_mean_length": last.get("completions/mean_length", nan),
               "final_refusal_rate": last.get("refusal_rate", nan)}
    if algorithm == "dpo":
        return figures | {"train_pairs": len(data["preferences"]), "final_reward_margin": last.get("rewards/margins", nan),
                          "final_logps_chosen": last.get("logps/chosen", nan)}
    return figures | {"train_prompts": len(data["prompts"]), "final_reward": last.get("reward", nan)}
