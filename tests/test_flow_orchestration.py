"""The flow's per-stage retries, backoff, GPU tags and timeouts, from params."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.dvc_ops import TIMED_OUT, clear_stale_dvc_locks, dvc_remote, stage_graph, stale_stages, sync_outputs
from flows.dvc_ops import dvc_repro as _dvc_repro
from flows.pipeline import StageFailed, _stage_task
from rlaif.config.params import load_config


def test_stage_tasks_take_retries_backoff_and_gpu_tag_from_params():
    cfg = load_config(None, ["orchestration.retries=3", "orchestration.retry_backoff_s=5"])
    judge = _stage_task("judge", cfg)
    assert judge.retries == 3 and judge.retry_delay_seconds == [5.0, 10.0, 20.0]
    assert "gpu" in judge.tags and "cpu" in _stage_task("validate", cfg).tags
    assert cfg.orchestration.timeout("judge") == 21600
    assert load_config(None, ["orchestration.stage_timeouts_s={judge: 60}"]).orchestration.timeout("judge") == 60


@pytest.mark.slow
def test_a_timed_out_stage_is_killed_with_its_children_and_is_retryable(tmp_path: Path):
    marker = tmp_path / "child.pid"
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  slow:\n    cmd: sh -c 'echo $$ > child.pid; sleep 120'\n    outs:\n      - never.txt\n")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "RLAIF_EVENTS_FILE": str(tmp_path / "events.jsonl"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        started = time.time()
        code = _dvc_repro("slow", False, env, timeout_s=8)
    finally:
        os.chdir(previous)
    assert code == TIMED_OUT and time.time() - started < 60
    child = int(marker.read_text())
    time.sleep(0.5)
    assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text().lower()
    assert StageFailed("slow", code).retryable and "timed out" in str(StageFailed("slow", code))


@pytest.mark.slow
def test_outputs_are_pushed_to_and_pulled_from_the_default_remote(tmp_path: Path, monkeypatch):
    """A pod or fresh checkout with a DVC remote gets the outputs of earlier runs back, and keeps its own."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "dvc.yaml").write_text("stages:\n  make:\n    cmd: echo made > out.txt\n    outs:\n      - out.txt\n")
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    monkeypatch.chdir(tmp_path)
    assert dvc_remote() is None and sync_outputs("push") is None  # no remote: nothing to do
    subprocess.run(["dvc", "repro", "-q"], cwd=tmp_path, env=env, check=True)
    subprocess.run(["dvc", "remote", "add", "-d", "store", str(tmp_path / "remote")], cwd=tmp_path, env=env, check=True)
    assert dvc_remote() == "store"
    assert sync_outputs("push") is None and any((tmp_path / "remote").rglob("*"))
    (tmp_path / "out.txt").unlink()
    shutil.rmtree(tmp_path / ".dvc/cache")
    assert sync_outputs("pull") is None
    assert (tmp_path / "out.txt").read_text() == "made\n"
    subprocess.run(["dvc", "remote", "modify", "store", "url", str(tmp_path / "nowhere" / "x")], cwd=tmp_path, env=env,
                   check=True)
    (tmp_path / "nowhere").write_text("a file where the remote's folder should be")
    assert "dvc push failed" in (sync_outputs("push") or "")


MAKE = """import pathlib, sys
mode = pathlib.Path("mode.txt").read_text().strip()
pathlib.Path("out").mkdir()
(pathlib.Path("out") / "model.bin").write_text("partial" if mode == "fail" else f"model {mode}")
if mode == "fail":
    sys.exit(4)
pathlib.Path("metrics.json").write_text('{"score": 1}' if mode == "one" else '{"score": 2}')
pathlib.Path("report").mkdir()
(pathlib.Path("report") / "index.html").write_text(f"<p>{mode}</p>")
"""


def outputs_now(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for name in ("out", "metrics.json", "report")
            for p in ([root / name] if (root / name).is_file() else sorted((root / name).rglob("*"))) if p.is_file()}


@pytest.mark.slow
def test_a_failed_attempt_leaves_the_earlier_outputs_byte_for_byte(tmp_path: Path, monkeypatch, capfd):
    """DVC deletes a stage's outputs before running it: a failed attempt puts back the cached ones (dvc checkout,
    as dvc.lock records them) and the uncached metrics and reports (copied aside before), and keeps what it wrote."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "RLAIF_EVENTS_FILE": str(tmp_path / "events.jsonl"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "make.py").write_text(MAKE)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: python make.py\n    deps: [make.py, mode.txt]\n    outs:\n      - out\n"
        "      - report:\n          cache: false\n    metrics:\n      - metrics.json:\n          cache: false\n")
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    monkeypatch.chdir(tmp_path)

    (tmp_path / "mode.txt").write_text("fail")  # a first attempt that fails: nothing earlier to keep
    assert _dvc_repro("make", False, env) != 0
    assert outputs_now(tmp_path) == {}
    assert (tmp_path / ".rlaif/failed/make/out/model.bin").read_text() == "partial"
    assert "(it had none)" in capfd.readouterr().err

    (tmp_path / "mode.txt").write_text("one")
    assert _dvc_repro("make", False, env) == 0
    earlier, lock = outputs_now(tmp_path), (tmp_path / "dvc.lock").read_bytes()
    assert set(earlier) == {"out/model.bin", "metrics.json", "report/index.html"}

    (tmp_path / "mode.txt").write_text("fail")
    capfd.readouterr()
    assert _dvc_repro("make", False, env) != 0
    assert outputs_now(tmp_path) == earlier and (tmp_path / "dvc.lock").read_bytes() == lock
    assert (tmp_path / ".rlaif/failed/make/out/model.bin").read_text() == "partial"  # this attempt's, for diagnosis
    message = " ".join(capfd.readouterr().err.split())
    assert "stage make failed: its earlier outputs were kept" in message and "rlaif stage make" in message

    (tmp_path / "mode.txt").write_text("two")  # fixed: the retry runs and replaces them
    assert _dvc_repro("make", False, env) == 0
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"score": 2}


def test_locks_of_killed_dvc_processes_are_dropped_and_live_ones_kept(tmp_path: Path):
    """kill -9 of a stage leaves DVC's rwlock naming a dead process; the next run must not be refused."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # exited and reaped: its pid names no process
    zombie = subprocess.Popen(["true"])  # exited, not reaped yet: a zombie, as killed stages can be
    time.sleep(0.5)
    lock = tmp_path / "rwlock"
    lock.write_text(json.dumps({
        "write": {"/p/artifacts/bootstrap": {"pid": gone.pid, "cmd": "dvc repro bootstrap"},
                  "/p/artifacts/judge": {"pid": os.getpid(), "cmd": "dvc repro judge"}},
        "read": {"/p/data/prompts": [{"pid": zombie.pid, "cmd": "dvc repro generate"},
                                      {"pid": os.getpid(), "cmd": "dvc repro judge"}]}}))
    assert sorted(clear_stale_dvc_locks(lock)) == sorted([gone.pid, zombie.pid])
    left = json.loads(lock.read_text())
    assert list(left["write"]) == ["/p/artifacts/judge"]
    assert [i["pid"] for i in left["read"]["/p/data/prompts"]] == [os.getpid()]
    assert clear_stale_dvc_locks(lock) == []
    zombie.wait()


def test_stale_stages_are_the_changed_ones_and_everything_downstream(tmp_path: Path, monkeypatch):
    """What a run asks DVC once, instead of starting a task and a `dvc repro` per stage."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  first:\n    cmd: cat in.txt > a.txt\n    deps: [in.txt]\n    outs: [a.txt]\n"
        "  second:\n    cmd: cat a.txt > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n"
        "  third:\n    cmd: cat b.txt > c.txt\n    deps: [b.txt]\n    params: [n]\n    outs: [c.txt]\n"
        "  aside:\n    cmd: echo x > d.txt\n    outs: [d.txt]\n")
    (tmp_path / "in.txt").write_text("one\n")
    (tmp_path / "params.yaml").write_text("n: 1\n")
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    monkeypatch.chdir(tmp_path)
    graph = stage_graph()
    assert [stage for stage, _ in graph] == ["first", "second", "third", "aside"]
    assert stale_stages(graph) == {"first", "second", "third", "aside"}  # never run
    subprocess.run(["dvc", "repro", "-q"], cwd=tmp_path, env=env, check=True)
    assert stale_stages(graph) == set()
    (tmp_path / "params.yaml").write_text("n: 2\n")
    assert stale_stages(graph) == {"third"}
    (tmp_path / "in.txt").write_text("two\n")  # upstream of everything but `aside`
    assert stale_stages(graph) == {"first", "second", "third"}
    subprocess.run(["dvc", "repro", "-q"], cwd=tmp_path, env=env, check=True)
    (tmp_path / "b.txt").unlink()  # an output gone: its stage reruns, and what reads it
    assert stale_stages(graph) == {"second", "third"}


def test_the_run_summary_logs_what_was_measured_and_skips_what_was_not(tmp_path: Path, monkeypatch, tracking):
    """An order-invariant judge measures no position consistency (null in metrics/judge.json): the parent run
    logs the other figures (MLflow refuses a null metric, which failed the whole flow)."""
    import mlflow

    from flows.run_record import Summary, log_summary

    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/judge.json").write_text(json.dumps({"n_pairs": 3, "position_consistency": None}))
    with mlflow.start_run() as run:
        log_summary(mlflow, Summary())
    logged = mlflow.MlflowClient().get_run(run.info.run_id).data.metrics
    assert logged == {"judge/n_pairs": 3.0}


@pytest.mark.slow
def test_the_flow_run_draws_the_stage_graph_and_names_skipped_stages(tmp_path: Path, monkeypatch, tracking):
    """In the Prefect UI a flow run's graph is dvc.yaml's (each stage's task waits on its upstream stages' tasks), a
    stage DVC found up to date is a task named Skipped (not work done), and each task's log says the outcome."""
    import yaml
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId, TaskRunFilter, TaskRunFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    from flows.pipeline import rlaif_pipeline
    from rlaif.config import PipelineConfig

    def stage(name: str, reads: list[str], writes: str, **extra) -> dict:  # writes as `rlaif exec` does, and says so
        said = json.dumps({"stage": name, "status": "ran", "seconds": 0.1, "metrics": {"n": 1}})
        return {"cmd": f"cat {' '.join(reads)} > {writes} && echo '{said}' >> \"$RLAIF_EVENTS_FILE\"",
                "deps": reads, "outs": [writes], **extra}

    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "first": stage("first", ["in.txt"], "a.txt"), "second": stage("second", ["a.txt"], "b.txt", params=["n"]),
        "third": stage("third", ["a.txt", "b.txt"], "c.txt")}}, sort_keys=False))
    (tmp_path / "in.txt").write_text("one\n")
    (tmp_path / "params.yaml").write_text("n: 1\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    config = PipelineConfig().as_dict()

    def flow_run_tasks() -> dict:
        flow_run_id = rlaif_pipeline(config, return_state=True).state_details.flow_run_id
        APILogWorker.drain_all(timeout=10)
        with get_client(sync_client=True) as client:
            tasks = client.read_task_runs(task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id])))
            logs = {t.id: " ".join(log.message for log in client.read_logs(
                LogFilter(task_run_id=LogFilterTaskRunId(any_=[t.id])))) for t in tasks}
        return {t.name.split("-")[0]: (t, logs[t.id]) for t in tasks}

    first_run = flow_run_tasks()
    assert {name: t.state.name for name, (t, _) in first_run.items()} == {
        "first": "Completed", "second": "Completed", "third": "Completed"}
    upstream = {name: {i.id for i in t.task_inputs.get("wait_for", [])} for name, (t, _) in first_run.items()}
    ids = {name: t.id for name, (t, _) in first_run.items()}
    assert upstream == {"first": set(), "second": {ids["first"]}, "third": {ids["first"], ids["second"]}}
    assert "third: ran in 0 s (n=1)" in first_run["third"][1]

    # second's params change: first is up to date by `dvc status` (no process started); second reruns; third is
    # downstream, so it goes through `dvc repro`, which finds b.txt as it was and skips it too
    (tmp_path / "params.yaml").write_text("n: 2\n")
    again = flow_run_tasks()
    assert {name: t.state.name for name, (t, _) in again.items()} == {
        "first": "Skipped", "second": "Completed", "third": "Skipped"}
    for name in ("first", "third"):
        assert f"{name}: skipped (DVC: deps, params and outputs unchanged" in again[name][1]
    assert "second: ran" in again["second"][1]
