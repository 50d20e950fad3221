"""The starting policy of a round: a registered version copied out of the registry (with the preferences that trained
it and its ancestors, for replay), an existing model referenced or de-quantized once from its GGUF file, or the tiny
Llama built from a config and fine-tuned with TRL's SFTTrainer on the seed dialogues."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.data.io import SeedDialogue, write_text
from rlaif.lifecycle.rounds import Start, write_replay_preferences, write_start


def copy_registered(uri: str, policy_dir: Path, replay_path: Path, run) -> Path:
    """The registered version's model directory, downloaded from the registry into policy_dir, and the preferences
    that trained it and its ancestors into replay_path."""
    from rlaif.lifecycle.promotion import download_policy
    from rlaif.lifecycle.rounds import REGISTRY_URI, parent_round

    match = REGISTRY_URI.match(uri)
    assert match is not None, uri  # preflight resolved it to models:/NAME/VERSION
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


def start_from(source: str, policy_dir: Path) -> Path:
    """An existing model as the start. Its weights' digest goes to the lineage (tags input.base_model.*). A GGUF
    file is de-quantized once, here, into a plain model folder, so that every later stage loads it in seconds and
    LoRA adapters name a folder as their base; any other reference is pointed at (reference.json)."""
    import mlflow

    from rlaif.training.model_refs import parse_model_ref, weights_digest
    from rlaif.training.models import load_policy
    from rlaif.training.trainer import save_atomically

    ref = parse_model_ref(source, "bootstrap.base_model")
    digest = weights_digest(ref)
    if digest and mlflow.active_run():
        mlflow.set_tags({"input.base_model.md5": digest, "input.base_model.path": str(ref.path)})
    model, tokenizer = load_policy(source)  # fail now, with a clear error, if it cannot be loaded
    shutil.rmtree(policy_dir, ignore_errors=True)
    if ref.kind == "gguf":
        save_atomically(model, tokenizer, policy_dir, merge_lora=False)
        return policy_dir
    write_text(policy_dir / "reference.json", json.dumps({"source": source}) + "\n")
    return policy_dir


def train_tiny_policy(cfg: PipelineConfig, dialogues: list[SeedDialogue], prompts: list[str],
                       policy_dir: Path, out_dir: Path, checkpoints: Path) -> list[dict]:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from rlaif.training.models import build_tiny_llama, build_tokenizer, format_completion, format_prompt
    from rlaif.training.trainer import MlflowSteps, plot_curves, save_atomically, train_resumably, trainer_kwargs

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
