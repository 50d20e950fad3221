"""What the training stages share: device-aware trainer arguments, resumable training, LoRA,
MLflow step logging, curve plots, atomic saving of a trained model directory.

Resume: trainers save a checkpoint (weights, optimizer, scheduler, RNG and data position) every
`checkpoint_every` steps under `.rlaif/checkpoints/<stage>-<fingerprint>/`, outside DVC's outputs
(DVC deletes those before a stage runs). The fingerprint covers the stage's input files, its params
and the seed, so a rerun after a crash or `kill -9` continues from the last checkpoint, while changed
inputs start from step 0. The directory is removed once the trained model is saved."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


def checkpoint_dir(stage: str, inputs: list[Path], section, seed: int) -> Path:
    from rlaif.training.checkpoint import checkpoint_path

    return checkpoint_path(stage, inputs, {"seed": seed, stage: section.model_dump(mode="json")})


def trainer_kwargs(seed: int, section, output_dir: Path) -> dict[str, Any]:
    """Arguments every TRL config here gets: fp32 on CPU, bf16 where the GPU has it, no hub, no
    reporting integrations (the stage logs to its own MLflow run), checkpoints for resume."""
    import torch

    bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return dict(
        output_dir=str(output_dir),
        seed=seed,
        max_steps=section.max_steps,
        per_device_train_batch_size=section.batch_size,
        gradient_accumulation_steps=section.gradient_accumulation_steps,
        learning_rate=section.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, section.max_steps // 20),
        logging_steps=max(1, section.max_steps // 25),
        save_strategy="steps",
        save_steps=section.checkpoint_every,
        save_total_limit=1,  # the last checkpoint is all that resume needs
        report_to="none",
        bf16=bf16,
        gradient_checkpointing=section.gradient_checkpointing,
        dataloader_num_workers=0,
        disable_tqdm=False,
        use_cpu=not torch.cuda.is_available(),
    )


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint a killed run finished writing, or None.

    The Trainer writes a checkpoint's weights, optimizer, scheduler and RNG state first and
    `trainer_state.json` last, and deletes the older checkpoint only after that, so a checkpoint
    whose trainer state parses is whole. A kill mid-save leaves a newer, torn directory beside the
    previous whole one: the torn one is removed (resuming from it fails on missing files) and the
    whole one is used."""
    import json
    import re

    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = [p for p in output_dir.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    for checkpoint in sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
            return checkpoint
        except (OSError, ValueError):
            shutil.rmtree(checkpoint)
    return None


def train_resumably(trainer, output_dir: Path, stage: str) -> int:
    """Train, continuing from the last whole checkpoint in `output_dir` if a killed run left one.
    Returns the step it resumed from (0 for a fresh start)."""
    from rich.console import Console

    last = last_complete_checkpoint(output_dir)
    step = int(last.name.rsplit("-", 1)[1]) if last else 0
    if last:
        Console(stderr=True).print(f"{stage}: resuming from step {step} ({last})")
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    from rlaif.training.launch import release_workers

    release_workers(stage)
    return step


def apply_lora(model, lora, task_type: str):
    """Wrap the model with LoRA adapters when the params ask for them (peft)."""
    if lora is None:
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=lora.target_modules, task_type=task_type)
    return get_peft_model(model, config)


class MlflowSteps(TrainerCallback):
    """Logs every trainer log line (loss, rewards, margins, lr) to the active MLflow run, keeps a history."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.history: list[dict[str, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        import mlflow

        if not state.is_world_process_zero:  # several processes: the main one logs
            return
        numbers = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        if not numbers:
            return
        self.history.append({"step": state.global_step, **numbers})
        mlflow.log_metrics({f"{self.prefix}/{k}": v for k, v in numbers.items()}, step=state.global_step)


def plot_curves(history: list[dict[str, float]], keys: list[str], path: Path, title: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [k for k in keys if any(k in row for row in history)]
    if not present:
        return None
    fig, axes = plt.subplots(1, len(present), figsize=(4 * len(present), 3), squeeze=False)
    for ax, key in zip(axes[0], present):
        rows = [r for r in history if key in r]
        ax.plot([r["step"] for r in rows], [r[key] for r in rows])
        ax.set_title(key)
        ax.set_xlabel("step")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def save_atomically(model, tokenizer, target: Path, merge_lora: bool = True) -> Path:
    """Write to a sibling temp dir, then swap: a crash never leaves a half-saved model at `target`.
    A LoRA model is saved merged into its base (a plain model) or as adapters only, which
    `rlaif.training.models.load_policy` loads on top of the base the adapter config names."""
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if merge_lora and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
