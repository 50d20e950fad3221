"""A training stage killed with SIGKILL mid-way and rerun continues from its last checkpoint (weights,
optimizer, scheduler, data position), says from which step, and finishes the planned steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import kill_when, rlaif

BOOTSTRAP = ["exec", "bootstrap", "--seed-dialogues", "data/seed/dialogues.jsonl", "--prompts",
             "data/prompts/train.jsonl", "--out", "artifacts/bootstrap"]
SMALL = ["--set", "bootstrap.max_steps=60", "--set", "bootstrap.checkpoint_every=10", "--set", "bootstrap.batch_size=8",
         "--set", "bootstrap.hidden_size=32", "--set", "bootstrap.num_layers=1", "--set", "bootstrap.intermediate_size=64"]


def checkpoint_steps(project: Path, whole_only: bool = False) -> list[int]:
    """Steps of bootstrap's checkpoints; `whole_only` keeps those whose trainer state (written last) parses."""
    root = project / ".rlaif/checkpoints"
    found = root.glob("bootstrap-*/checkpoint-*") if root.exists() else []
    return sorted(int(p.name.rsplit("-", 1)[1]) for p in found if not whole_only or _parses(p / "trainer_state.json"))


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False


def tiny_trainer(output_dir: Path, max_steps: int):
    """A real transformers Trainer on a two-weight regression: checkpoints in a second, no model files."""
    import torch
    from transformers import Trainer, TrainingArguments

    class Regression(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, x, y):
            return {"loss": torch.nn.functional.mse_loss(self.linear(x).squeeze(-1), y)}

    rows = [{"x": torch.tensor([i / 16, 1.0]), "y": torch.tensor(2.0 * i / 16)} for i in range(16)]
    args = TrainingArguments(output_dir=str(output_dir), max_steps=max_steps, save_steps=10, per_device_train_batch_size=4,
                             report_to="none", use_cpu=True, disable_tqdm=True, save_total_limit=None)
    return Trainer(model=Regression(), args=args, train_dataset=rows)


def test_a_checkpoint_torn_by_a_kill_mid_save_is_dropped_and_the_whole_one_before_it_used(tmp_path: Path):
    from rlaif.training.trainer import train_resumably

    tiny_trainer(tmp_path, max_steps=20).train()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    torn = tmp_path / "checkpoint-20"  # killed while saving: weights and trainer state never written
    for name in ("model.safetensors", "trainer_state.json"):
        (torn / name).unlink()

    trainer = tiny_trainer(tmp_path, max_steps=30)
    assert train_resumably(trainer, tmp_path, "regression") == 10
    assert trainer.state.global_step == 30
    assert not torn.exists() or _parses(torn / "trainer_state.json")  # the torn one was removed, then saved anew


@pytest.mark.slow  # trains a model in a killed subprocess: left out of `make test-fast`
def test_killed_bootstrap_resumes_from_its_last_checkpoint(project: Path):
    assert rlaif(project, "configure", *SMALL).returncode == 0
    kill_when(project, BOOTSTRAP, lambda _pid: any(s >= 20 for s in checkpoint_steps(project, whole_only=True)),
              timeout_s=300)
    assert not (project / "artifacts/bootstrap/policy").exists()  # no half-saved model
    saved = max(checkpoint_steps(project, whole_only=True))  # the kill may tear a newer one mid-save
    assert 20 <= saved < 60

    result = rlaif(project, *BOOTSTRAP)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = saved  # save_total_limit=1 keeps only the last checkpoint
    assert f"resuming from step {resumed}" in " ".join(result.stderr.split())
    assert (project / "artifacts/bootstrap/policy/config.json").exists()
    assert checkpoint_steps(project) == []  # done: checkpoints cleared

    # the resumed run logged only the steps after the checkpoint, up to the planned 60
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")  # not the global URI: other tests use it
    experiment = client.get_experiment_by_name("rlaif")
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'bootstrap'",
                              order_by=["attributes.start_time DESC"])
    history = client.get_metric_history(runs[0].info.run_id, "sft/loss")
    steps = sorted(m.step for m in history)
    assert steps and steps[0] > resumed and steps[-1] == 60
