"""Training under `accelerate launch` with two CPU processes: the stage relaunches itself when its
params ask for several processes, trains data-parallel, and only the main process logs and saves."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import rlaif

pytestmark = pytest.mark.slow  # trains models or starts a cluster: left out of `make test-fast`

BOOTSTRAP = ["exec", "bootstrap", "--seed-dialogues", "data/seed/dialogues.jsonl", "--prompts",
             "data/prompts/train.jsonl", "--out", "artifacts/bootstrap"]
TINY = ["--set", "bootstrap.max_steps=6", "--set", "bootstrap.batch_size=4", "--set", "bootstrap.hidden_size=32",
        "--set", "bootstrap.num_layers=1", "--set", "bootstrap.intermediate_size=64"]


def test_two_cpu_processes_train_one_model_and_log_once(project: Path):
    assert rlaif(project, "configure", *TINY, "--set", "bootstrap.num_processes=2").returncode == 0
    result = rlaif(project, *BOOTSTRAP, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "trained data-parallel on 2 processes" in " ".join(result.stderr.split())
    assert (project / "artifacts/bootstrap/policy/config.json").exists()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")  # not the global URI: other tests use it
    runs = client.search_runs([client.get_experiment_by_name("rlaif").experiment_id])
    assert [r.info.run_name for r in runs] == ["bootstrap"]  # one run, from the main process
    history = client.get_metric_history(runs[0].info.run_id, "sft/loss")
    assert history and max(m.step for m in history) == 6
