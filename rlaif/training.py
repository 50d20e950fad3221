"""What the training stages share: device-aware trainer arguments, MLflow step logging, curve plots,
atomic saving of a trained model directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


def trainer_kwargs(seed: int, max_steps: int, batch_size: int, learning_rate: float) -> dict[str, Any]:
    """Arguments every TRL config here gets: fp32 on CPU, bf16 where the GPU has it, no hub, no
    reporting integrations (the stage logs to its own MLflow run), no checkpoints inside the output."""
    import torch

    bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return dict(
        seed=seed,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, max_steps // 20),
        logging_steps=max(1, max_steps // 25),
        save_strategy="no",
        report_to="none",
        bf16=bf16,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
        use_cpu=not torch.cuda.is_available(),
    )


class MlflowSteps(TrainerCallback):
    """Logs every trainer log line (loss, rewards, margins, lr) to the active MLflow run, keeps a history."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.history: list[dict[str, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        import mlflow

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


def save_atomically(model, tokenizer, target: Path) -> Path:
    """Write to a sibling temp dir, then swap: a crash never leaves a half-saved model at `target`."""
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
