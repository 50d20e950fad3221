"""bootstrap: the starting policy.

Builds a byte-level BPE tokenizer and a tiny Llama from a config, then fine-tunes it with TRL's
SFTTrainer on the seed dialogues (which deliberately mix in unsafe compliance and needless
refusals, so the loop has something real to fix). When params name an existing policy
(`bootstrap.base_model`: hub id or local path), nothing is trained: the output points at it. A registered
version (`models:/rlaif-policy@champion`, resolved by preflight to one version) is copied out of the registry:
the round starts from last round's champion. start.json beside the policy records where it came from and the
round this is, and replay_preferences.jsonl the preferences that trained the starting version and its ancestors
(empty for a built or referenced policy), for train_reward to learn from beside the round's own.
"""

from __future__ import annotations

from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.data.io import SeedDialogue, read_prompts, read_rows
from rlaif.lifecycle.rounds import REPLAY_FILE, Start, is_registry_uri, write_replay_preferences, write_start
from rlaif.training.starting_policy import copy_registered, start_from, train_tiny_policy


def bootstrap(cfg: PipelineConfig, seed_dialogues: Path, prompts: Path, out_dir: Path) -> Path:
    from rlaif.lifecycle.tracking import stage_run

    out_dir = Path(out_dir)
    policy_dir = out_dir / "policy"
    dialogues = read_rows(seed_dialogues, SeedDialogue)
    train_prompts = read_prompts(prompts)
    with stage_run("bootstrap", cfg, inputs={"seed_dialogues": seed_dialogues, "prompts": prompts},
                   datasets={"seed_dialogues": seed_dialogues}, outputs={"bootstrap": out_dir}) as run:
        start = cfg.bootstrap.resolved_base_model
        if is_registry_uri(start):
            return copy_registered(start, policy_dir, out_dir / REPLAY_FILE, run)
        write_replay_preferences(out_dir / REPLAY_FILE, None, None)
        if start:
            start_from(start, policy_dir)
            write_start(policy_dir, Start(start), 1)
            return policy_dir
        from rlaif.training.trainer import checkpoint_dir

        checkpoints = checkpoint_dir("bootstrap", [seed_dialogues, prompts], cfg.bootstrap, cfg.seed)
        history = train_tiny_policy(cfg, dialogues, [p.prompt for p in train_prompts], policy_dir, out_dir, checkpoints)
        losses = [row["loss"] for row in history if "loss" in row]
        run.metrics({"sft_final_loss": losses[-1] if losses else float("nan"), "sft_dialogues": len(dialogues)})
        run.artifact(out_dir / "sft_curve.png", "plots")
        write_start(policy_dir, Start(None), 1)
    return policy_dir
