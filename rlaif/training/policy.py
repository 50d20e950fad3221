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
