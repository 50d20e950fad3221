"""Reliability: a killed generate stage leaves nothing half-written and its rerun equals a clean run, secrets
stay secret, long MLflow params survive a real MLflow server. (Two runs at once: tests/test_pipeline_e2e.py;
killed stages resuming: tests/test_judge_stage.py, tests/test_training_resume.py,
tests/test_optimize_policy.py; endpoint faults: tests/test_openai_judge.py; bad input: tests/test_config_and_inputs.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import test_openai_judge
from conftest import (
    BIN,
    MLFLOW_SERVER_ARGS,
    MLFLOW_SERVER_ENV,
    ROOT,
    Service,
    cli_env,
    free_port,
    generate_args,
    kill_when,
    make_project_copy,
    rlaif,
    save_tiny_llama,
)

from rlaif.data.io import read_prompts

pytestmark = pytest.mark.e2e
# the fixture (a tiny model served as the judge), bound here so that pytest finds it for this module's tests
judge_model = test_openai_judge.judge_model


def maps_file(pid: int, path: Path) -> bool:
    """Whether a process has mmapped a file (safetensors weights are mmapped as the model loads)."""
    try:
        return str(path) in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_generate_killed_mid_way_leaves_no_output_and_its_rerun_equals_a_clean_run(tmp_path: Path):
    prompts = [r.prompt for r in read_prompts(ROOT / "data/prompts/train.jsonl")]
    policy = save_tiny_llama(prompts[:60], tmp_path / "policy", vocab_size=300, hidden=32, layers=1, heads=2,
                             intermediate=64, max_positions=256)
    args = generate_args(policy)
    settings = ["--set", "generate.max_new_tokens=32", "--set", "generate.batch_size=8"]
    killed, clean = (make_project_copy(tmp_path / name) for name in ("killed", "clean"))
    for project in (killed, clean):
        assert rlaif(project, "configure", *settings).returncode == 0

    weights = policy / "model.safetensors"
    # a second after the weights are mapped: into the batches
    kill_when(killed, args, lambda pid: maps_file(pid, weights), timeout_s=120, then_wait_s=1.0)
    assert not list((killed / "artifacts").rglob("candidates.jsonl*"))  # nothing half-written

    for project in (killed, clean):
        result = rlaif(project, *args)
        assert result.returncode == 0, result.stderr[-3000:]
    rerun, reference = ((p / "artifacts/generate/candidates.jsonl").read_bytes() for p in (killed, clean))
    assert rerun == reference and len(reference.splitlines()) == len(prompts)


def files_containing(root: Path, needle: bytes) -> list[str]:
    """Every file under root whose bytes contain needle (SQLite databases and parquet included)."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    found.append(str(path.relative_to(root)))
            except OSError:
                pass
    return found


def test_api_key_never_reaches_mlflow_prefect_logs_or_reports(tmp_path: Path, judge_model: Path):
    """A pipeline run whose judge is an OpenAI-compatible server that requires a key: the key is in the
    environment only. Afterwards no file of the project (MLflow's database and artifacts, DVC, reports,
    outputs), of Prefect's home (its database holds the flow and task logs) and no console output holds it."""
    from openai_server import OpenAIServer

    key = f"sk-{uuid.uuid4().hex}"  # made here, so no file of the project holds it beforehand
    project = make_project_copy(tmp_path / "project")
    env = cli_env(project)
    env["RLAIF_RELIABILITY_KEY"] = key
    with OpenAIServer(judge_model, model_name="tiny-judge", api_key=key) as server:
        settings = ["--set", "judge.backend=openai", "--set", f"judge.base_url={server.base_url}",
                    "--set", "judge.model=tiny-judge", "--set", "judge.api_key_env=RLAIF_RELIABILITY_KEY",
                    "--set", "generate.max_prompts=12"]
        result = subprocess.run([str(BIN / "rlaif"), "run", "--params", "params/smoke.yaml", *settings],
                                cwd=project, env=env, capture_output=True, text=True, timeout=1200)
        stats = server.stats()
    # the judge really used the server, with the key
    assert stats["chat"] > 0 and stats["unauthorized"] == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((project / "reports/last_run.json").read_text())
    judge_row = next(r for r in summary["stages"] if r["stage"] == "judge")
    assert judge_row["status"] == "ran", result.stdout[-3000:] + result.stderr[-3000:]
    assert key not in result.stdout and key not in result.stderr
    assert files_containing(project, key.encode()) == []
    assert files_containing(Path(env["PREFECT_HOME"]), key.encode()) == []


def test_long_params_survive_a_real_mlflow_server(tmp_path: Path):
    """MLflow servers refuse parameter values past their limit; the value is cut and kept whole as an artifact."""
    import mlflow

    from rlaif.lifecycle.tracking import MAX_PARAM_CHARS, log_params

    port = free_port()
    server = Service("mlflow server", [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                                       "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                                       "--artifacts-destination", str(tmp_path / "artifacts"), *MLFLOW_SERVER_ARGS],
                     {**os.environ, **MLFLOW_SERVER_ENV}, tmp_path / "mlflow.log")
    uri = f"http://127.0.0.1:{port}"
    try:
        server.wait_for(f"{uri}/health", timeout=90)
        long_value = "principle text " * 60  # 900 characters
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("long-params")
        with mlflow.start_run() as run:
            log_params({"judge": {"template": long_value, "model": "m"}})
        client = mlflow.MlflowClient(tracking_uri=uri)
        params = client.get_run(run.info.run_id).data.params
        assert len(params["judge.template"]) == MAX_PARAM_CHARS and params["judge.template"].endswith("...")
        assert params["judge.model"] == "m"
        full = json.loads(Path(client.download_artifacts(run.info.run_id, "params/full.json", str(tmp_path))).read_text())
        assert full["judge.template"] == long_value
    finally:
        mlflow.set_tracking_uri(None)
        server.stop()
