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

import json
import shutil
from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.io import SeedDialogue, read_prompts, read_rows
from rlaif.rounds import REPLAY_FILE, Start, is_registry_uri, write_replay_preferences, write_start


def bootstrap(cfg: PipelineConfig, seed_dialogues: Path, prompts: Path, out_dir: Path) -> Path:
    from rlaif.tracking import stage_run

    out_dir = Path(out_dir)
    policy_dir = out_dir / "policy"
    dialogues = read_rows(seed_dialogues, SeedDialogue)
    train_prompts = read_prompts(prompts)
    with stage_run("bootstrap", cfg, inputs={"seed_dialogues": seed_dialogues, "prompts": prompts},
                   datasets={"seed_dialogues": seed_dialogues}, outputs={"bootstrap": out_dir}) as run:
        start = cfg.bootstrap.resolved_base_model
        if is_registry_uri(start):
            return _copy_registered(start, policy_dir, out_dir / REPLAY_FILE, run)
        write_replay_preferences(out_dir / REPLAY_FILE, None, None)
        if start:
            _start_from(start, policy_dir)
            write_start(policy_dir, Start(start), 1)
            return policy_dir
        from rlaif.training import checkpoint_dir

        checkpoints = checkpoint_dir("bootstrap", [seed_dialogues, prompts], cfg.bootstrap, cfg.seed)
        history = _train_tiny_policy(cfg, dialogues, [p.prompt for p in train_prompts], policy_dir, out_dir, checkpoints)
        losses = [row["loss"] for row in history if "loss" in row]
        run.metrics({"sft_final_loss": losses[-1] if losses else float("nan"), "sft_dialogues": len(dialogues)})
        run.artifact(out_dir / "sft_curve.png", "plots")
        write_start(policy_dir, Start(None), 1)
    return policy_dir


def _copy_registered(uri: str, policy_dir: Path, replay_path: Path, run) -> Path:
    """The registered version's model directory, downloaded from the registry into policy_dir, and the preferences
    that trained it and its ancestors into replay_path."""
    from rlaif.promotion import download_policy
    from rlaif.rounds import REGISTRY_URI, parent_round

    match = REGISTRY_URI.match(uri)
    client, model_dir = download_policy(match["name"], match["version"], policy_dir)
    round_ = parent_round(client, match["name"], match["version"]) + 1
    write_start(policy_dir, Start(uri, match["name"], match["version"]), round_)
    replay = write_replay_preferences(replay_path, match["name"], match["version"], client)
    if replay["missing"]:
        from rich.console import Console

        Console(stderr=True).print(f"bootstrap: no preferences on record for version(s) {', '.join(replay['missing'])} "
                                   "of the genealogy (trained before preferences were logged); not replayed")
    run.metrics({"round": round_, "replay_pairs": replay["pairs"]})
    return model_dir


def _start_from(source: str, policy_dir: Path) -> Path:
    """An existing model as the start. Its weights' digest goes to the lineage (tags input.base_model.*). A GGUF
    file is de-quantized once, here, into a plain model folder, so that every later stage loads it in seconds and
    LoRA adapters name a folder as their base; any other reference is pointed at (reference.json)."""
    import mlflow

    from rlaif.model_refs import parse_model_ref, weights_digest
    from rlaif.models import load_policy
    from rlaif.training import save_atomically

    ref = parse_model_ref(source, "bootstrap.base_model")
    digest = weights_digest(ref)
    if digest and mlflow.active_run():
        mlflow.set_tags({"input.base_model.md5": digest, "input.base_model.path": str(ref.path)})
    model, tokenizer = load_policy(source)  # fail now, with a clear error, if it cannot be loaded
    shutil.rmtree(policy_dir, ignore_errors=True)
    if ref.kind == "gguf":
        save_atomically(model, tokenizer, policy_dir, merge_lora=False)
        return policy_dir
    policy_dir.mkdir(parents=True)
    (policy_dir / "reference.json").write_text(json.dumps({"source": source}) + "\n", encoding="utf-8")
    return policy_dir


def _train_tiny_policy(cfg: PipelineConfig, dialogues: list[SeedDialogue], prompts: list[str],
                       policy_dir: Path, out_dir: Path, checkpoints: Path) -> list[dict]:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from rlaif.models import build_tiny_llama, build_tokenizer, format_completion, format_prompt
    from rlaif.training import MlflowSteps, plot_curves, save_atomically, train_resumably, trainer_kwargs

    b = cfg.bootstrap
    torch.manual_seed(cfg.seed)
    corpus = [f"{d.prompt}\n{d.response}" for d in dialogues] + prompts
    tokenizer = build_tokenizer(corpus, b.vocab_size)
    model = build_tiny_llama(tokenizer, b.hidden_size, b.num_layers, b.num_heads, b.intermediate_size, 2 * b.max_length)
    data = Dataset.from_list([
        {"prompt": format_prompt(tokenizer, d.prompt), "completion": format_completion(tokenizer, d.response)}
        for d in dialogues
    ])
    args = SFTConfig(max_length=b.max_length, completion_only_loss=True, **trainer_kwargs(cfg.seed, b, checkpoints))
    steps = MlflowSteps("sft")
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[steps])
    train_resumably(trainer, checkpoints, "bootstrap")
    save_atomically(trainer.model, tokenizer, policy_dir)
    shutil.rmtree(checkpoints, ignore_errors=True)
    plot_curves(steps.history, ["loss", "mean_token_accuracy"], out_dir / "sft_curve.png", "bootstrap (SFT)")
    return steps.history
