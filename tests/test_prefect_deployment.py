"""Rerun from the UI and sign-off in the UI, against a real Prefect server on 127.0.0.1 with a real process worker,
its UI driven in a headless chromium (tests/browser.py).

The deployment comes from prefect.yaml (`prefect deploy`). A run fails mid-pipeline (a broken rule file that
only optimize_policy reads); the file is repaired and the failed flow run's Retry button is clicked on its page in
the UI. The same flow run then completes, and only the failed stage and the stages after it ran again.

Sign-off: with `evaluate.approval: required` a deployment run pauses after evaluate with the SignOff form; a
reviewer clicks Resume on the run's page, fills the form and submits it, which approves or rejects the challenger.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from browser import prefect_ui_retry, prefect_ui_sign_off
from conftest import BIN, Service, cli_env, free_port, make_project_copy

pytestmark = pytest.mark.e2e
# fewer prompts than the smoke profile: these tests are about retry and sign-off, not the policy
FEWER = ["generate.max_prompts=30", "evaluate.max_prompts=15", "evaluate.suite_max_prompts=10"]


def prefect(env: dict, *args: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "prefect"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"prefect {' '.join(args)}: {result.stdout[-2000:]} {result.stderr[-2000:]}"
    return result


def wait_for(predicate, timeout: float, what: str, interval: float = 2.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A project copy, a Prefect server, the smoke deployment from prefect.yaml and a worker on its pool."""
    root = tmp_path_factory.mktemp("prefect")
    project = make_project_copy(root / "project")
    port = free_port()
    env = cli_env(project)
    env.update({"PREFECT_HOME": str(root / "prefect-home"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "2",
                "PREFECT_WORKER_PREFETCH_SECONDS": "2", "RLAIF_PROJECT_DIR": str(project)})
    logs = root / "logs"
    logs.mkdir()
    server = Service("prefect server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                        "--port", str(port)], env, logs / "server.log", cwd=root)
    worker = None
    try:
        server.wait_for(f"http://127.0.0.1:{port}/api/health", timeout=90)
        prefect(env, "work-pool", "create", "rlaif-cpu", "--type", "process", cwd=project)
        prefect(env, "--no-prompt", "deploy", "-n", "smoke", cwd=project, timeout=300)
        worker = Service("prefect worker", [str(BIN / "prefect"), "worker", "start", "--pool", "rlaif-cpu"], env,
                         logs / "worker.log", cwd=root)
        yield project, env, logs
    finally:
        for service in (worker, server):
            if service is not None:
                service.stop()


def api(env: dict, method: str, path: str, **kwargs):
    """One call to the server's REST API. A 503 is the server saying its database is busy: ask again, as
    Prefect's own client does."""
    for attempt in range(10):
        response = httpx.request(method, env["PREFECT_API_URL"] + path, timeout=10, **kwargs)
        if response.status_code != 503:
            response.raise_for_status()
            return response.json()
        time.sleep(1 + attempt)
    raise AssertionError(f"{method} {path}: the server answered 503 ten times")


def ui_url(env: dict) -> str:
    """Where the server serves its UI: the API's address without /api."""
    return env["PREFECT_API_URL"].removesuffix("/api")


def flow_run(env: dict, run_id: str) -> dict:
    return api(env, "GET", f"/flow_runs/{run_id}")


def finished(env: dict, run_id: str):
    state = flow_run(env, run_id)["state"]
    return state if state and state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None


def stage_statuses(project: Path) -> dict[str, str]:
    summary = json.loads((project / "reports/last_run.json").read_text())
    return {row["stage"]: row["status"] for row in summary["stages"]}


def test_retry_of_a_failed_run_reruns_only_the_failed_stage_and_after(stack):
    project, env, logs = stack
    import yaml

    rules = project / "data/eval/refusal_markers.yaml"
    good = rules.read_text()
    # a rule file that parses as YAML (so preflight passes) but holds a regex that cannot compile
    broken = yaml.safe_load(good)
    broken["refusal"] = ["(unclosed"] + list(broken.get("refusal") or [])
    rules.write_text(yaml.safe_dump(broken))

    run_id = start_deployment_run(project, env, "--param", "overrides=" + json.dumps(FEWER))
    first = wait_for(lambda: finished(env, run_id), 1200, "the first flow run", 5)
    assert first["type"] == "FAILED", (first, (logs / "worker.log").read_text()[-3000:])
    before = stage_statuses(project)
    assert before["optimize_policy"] == "failed", before
    assert {before[s] for s in ("bootstrap", "generate", "judge", "validate", "train_reward")} == {"ran"}
    assert before["evaluate"] == before["report"] == "not run"

    rules.write_text(good)  # the fix
    assert prefect_ui_retry(ui_url(env), run_id).stat().st_size > 10_000
    wait_for(lambda: (flow_run(env, run_id)["state"] or {}).get("type") not in ("FAILED",), 120,
             "the retry to be scheduled", 1)
    second = wait_for(lambda: finished(env, run_id), 1200, "the retried flow run", 5)
    assert second["type"] == "COMPLETED", (second, (logs / "worker.log").read_text()[-3000:])
    after = stage_statuses(project)
    assert {after[s] for s in ("bootstrap", "generate", "critique_revise", "judge", "validate", "train_reward")} \
        == {"skipped"}, after
    assert after["optimize_policy"] == after["evaluate"] == after["report"] == "ran", after
    assert flow_run(env, run_id)["run_count"] >= 2  # the same flow run, run again


def start_deployment_run(project: Path, env: dict, *params: str) -> str:
    started = subprocess.run([str(BIN / "prefect"), "deployment", "run", "rlaif-scheduled/smoke", *params],
                             cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    return next(word for line in started.stdout.splitlines() if "UUID" in line for word in line.split()
                if len(word) == 36 and word.count("-") == 4)


def paused_run(env: dict) -> dict | None:
    runs = api(env, "POST", "/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}})
    return runs[0] if runs else None


def sign_off_in_a_deployment(project: Path, env: dict, logs: Path, overrides: list[str], answer: dict) -> dict:
    """Start a deployment run that needs sign-off, wait for its pause, answer the form, wait for it to finish."""
    profile = yaml.safe_load((project / "params/smoke.yaml").read_text())
    profile.setdefault("evaluate", {})["gates"] = {  # the smoke profile trains a few steps: the loop, not quality
        "min_win_rate": None, "min_harmless_rate": None, "max_over_refusal_rate": None, "max_slice_regression": None,
        "block_on_reward_hacking": False}
    (project / "params/smoke-signoff.yaml").write_text(yaml.safe_dump(profile))
    run_id = start_deployment_run(project, env, "--param", "params_file=params/smoke-signoff.yaml", "--param",
                                  "overrides=" + json.dumps([*FEWER, "evaluate.approval=required", *overrides]))
    paused = wait_for(lambda: paused_run(env) or finished(env, run_id), 1200, "the run to pause for sign-off", 3)
    assert "id" in paused, (paused, (logs / "worker.log").read_text()[-3000:])
    keyset = paused["state"]["state_details"]["run_input_keyset"]
    schema = api(env, "GET", f"/flow_runs/{paused['id']}/input/{keyset['schema']}")
    assert {"approve", "reviewer", "reason"} <= set(schema["properties"])
    shown, _ = prefect_ui_sign_off(ui_url(env), paused["id"], **answer)
    for label in ("Approve", "Reviewer", "Reason", "the challenger becomes champion", "as it goes on the model version"):
        assert label in shown, shown  # the form the reviewer saw, each field explained
    assert "Reviewer (Optional)" not in shown and "Reason (Optional)" not in shown, shown  # both required
    done = wait_for(lambda: finished(env, run_id), 600, "the run to finish after sign-off", 3)
    assert done["type"] == "COMPLETED", (done, (logs / "worker.log").read_text()[-3000:])
    return json.loads((project / "reports/evaluate/promotion.json").read_text())


def test_sign_off_in_the_prefect_ui_approves_or_rejects(stack):
    import mlflow

    project, env, logs = stack
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")

    def champion() -> str | None:
        try:
            return str(client.get_model_version_by_alias("rlaif-policy", "champion").version)
        except Exception:
            return None

    before = champion()
    # only evaluate's params change: the challenger of the retried run is evaluated again, now needing sign-off
    approved = sign_off_in_a_deployment(project, env, logs, [],
                                        {"approve": True, "reviewer": "ana", "reason": "read the report"})
    version = approved["model"].rsplit("/", 1)[1]
    assert approved["approval_record"]["status"] == "approved" and approved["champion_moved"] is True
    assert champion() == version != before
    tags = client.get_model_version("rlaif-policy", version).tags
    assert (tags["approval.reviewer"], tags["approval.reason"], tags["approval.via"]) == ("ana", "read the report", "prefect")
    assert "Sign-off: approved" in (project / "reports/run.html").read_text()

    rejected = sign_off_in_a_deployment(project, env, logs, ["optimize_policy.max_steps=5"],  # a new challenger
                                        {"approve": False, "reviewer": "bo", "reason": "too terse"})
    assert rejected["approval_record"]["status"] == "rejected" and rejected["champion_moved"] is False
    assert champion() == version  # where the approval left it
    other = rejected["model"].rsplit("/", 1)[1]
    assert "challenger" in client.get_model_version("rlaif-policy", other).aliases


def test_deployments_in_prefect_yaml_name_profiles_pools_and_a_schedule():
    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) >= {"default", "gpu-1x", "gpu-multi", "smoke"}
    for name, deployment in deployments.items():
        assert deployment["entrypoint"] == "flows/pipeline.py:scheduled_pipeline"
        assert Path(__file__).resolve().parents[1].joinpath(deployment["parameters"]["params_file"]).exists(), name
        assert deployment["concurrency_limit"] == 1
    assert deployments["default"]["schedules"][0]["cron"]
    assert deployments["gpu-1x"]["work_pool"]["name"] == "rlaif-gpu"
    assert os.path.basename(deployments["default"]["work_pool"]["name"]) == "rlaif-cpu"
