"""A training stage killed with SIGKILL mid-way and rerun continues from its last checkpoint (weights,
optimizer, scheduler, data position), says from which step, and finishes the planned steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import kill_when, rlaif

pytestmark = pytest.mark.slow  # trains models or starts a cluster: left out of `make test-fast`

BOOTSTRAP = ["exec", "bootstrap", "--seed-dialogues", "data/seed/dialogues.jsonl", "--prompts",
             "data/prompts/train.jsonl", "--out", "artifacts/bootstrap"]
SMALL = ["--set", "bootstrap.max_steps=60", "--set", "bootstrap.checkpoint_every=10", "--set", "bootstrap.batch_size=8",
         "--set", "bootstrap.hidden_size=32", "--set", "bootstrap.num_layers=1", "--set", "bootstrap.intermediate_size=64"]


def checkpoint_steps(project: Path) -> list[int]:
    root = project / ".rlaif/checkpoints"
    return sorted(int(p.name.rsplit("-", 1)[1]) for p in root.glob("bootstrap-*/checkpoint-*")) if root.exists() else []


def test_killed_bootstrap_resumes_from_its_last_checkpoint(project: Path):
    assert rlaif(project, "check", *SMALL).returncode == 0
    kill_when(project, BOOTSTRAP, lambda _pid: any(s >= 20 for s in checkpoint_steps(project)), timeout_s=300)
    assert not (project / "artifacts/bootstrap/policy").exists()  # no half-saved model
    saved = max(checkpoint_steps(project))
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
