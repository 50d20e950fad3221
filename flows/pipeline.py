"""The pipeline as a Prefect flow.

The flow only composes. It reads the stage graph from dvc.yaml (through DVC's own index, so there
is one definition of the graph) and runs each stage, in dependency order, as a Prefect task that
calls `dvc repro --single-item STAGE`: DVC skips a stage whose deps, params and outs are
unchanged, and records what it ran in dvc.lock. Retries live here, not in stage code; a label-gate
failure or a bad input is final and is not retried. An MLflow parent run spans the pipeline run;
each stage process opens a nested run under it.

Sign-off: with `evaluate.approval: required`, a challenger that passes every gate waits for a person. In a
deployment run the flow pauses after `evaluate` with a typed form (SignOff) that the Prefect UI shows; the
reviewer's answer is recorded (rlaif/lifecycle/promotion.py) before the report is written. From a shell, `rlaif run`
says how to sign off with `rlaif approve`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.input import RunInput
from prefect.states import Completed, Failed, State
from pydantic import Field
from rich.console import Console

from flows.dvc_ops import TIMED_OUT, commit_stage_outputs, dvc_repro, plan, read_events, stage_graph
from flows.run_record import (
    LAST_RUN,
    PROMOTION,
    Summary,
    pipeline_run,
    print_summary,
    skipped_row,
    tag_round,
)
from flows.warm import WARM_ENV, warm_server
from rlaif.config import PipelineConfig
from rlaif.data.records import Decision, read_promotion, write_record
from rlaif.lifecycle.tracking import EVENTS_ENV, PARENT_RUN_ENV, quiet_telemetry

FINAL_EXIT_CODES = {2: "bad input", 3: "label gate failed"}  # retrying cannot fix these


class StageFailed(Exception):
    def __init__(self, stage: str, exit_code: int):
        reason = FINAL_EXIT_CODES.get(exit_code, "timed out" if exit_code == TIMED_OUT else "crashed")
        super().__init__(f"stage {stage} failed ({reason}, exit code {exit_code})")
        self.stage, self.exit_code = stage, exit_code

    @property
    def retryable(self) -> bool:
        return self.exit_code not in FINAL_EXIT_CODES


def _retry_unless_final(task_, task_run, state) -> bool:
    error = state.data if isinstance(state.data, BaseException) else None
    return not isinstance(error, StageFailed) or error.retryable


class SignOff(RunInput):
    """A reviewer's decision on a challenger that passed every gate (the form the Prefect UI shows)."""

    # defaults here, not through with_initial_data: that rebuilds each field it is given from its type alone, which
    # dropped the descriptions and min_length, and the Prefect UI offered reviewer and reason as optional
    approve: bool = Field(False, description="Tick to approve: the challenger becomes champion. Unticked rejects it.")
    reviewer: str = Field(min_length=1, description="Your name, as it goes on the model version.")
    reason: str = Field(min_length=1, description="Why you approve or reject it.")


def record_sign_off(record: dict) -> bool:
    """Add the sign-off to this checkout's promotion.json when it is about the same model; True when it was."""
    decision = read_promotion(PROMOTION)
    if decision is None or decision.model != record["model"]:
        return False
    decided = {"approved": Decision.PROMOTE, "rejected": Decision.KEEP}.get(record["status"], decision.decision)
    write_record(PROMOTION, decision.model_copy(update={"approval_record": record, "decision": decided,
                                                        "champion_moved": record["champion_moved"]}))
    commit_stage_outputs("evaluate")
    return True


def await_sign_off(cfg: PipelineConfig, wait: bool) -> dict | None:
    """After evaluate: nothing to do unless the challenger awaits approval. In a deployment (`wait`), pause the
    flow run until a reviewer fills the form; from a shell, say how to sign off."""
    from rlaif.lifecycle.promotion import approve, record_timeout

    decision = read_promotion(PROMOTION)
    if decision is None or decision.decision != Decision.AWAITING or decision.approval_record:
        return None
    model = decision.model
    assert model is not None  # awaiting approval: a registered challenger
    if not wait:
        print(f"{model} passed every gate and awaits sign-off: rlaif approve {model} --reviewer NAME "
              f"--reason TEXT [--reject] (reports/run.html shows what to review)")
        return None
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    report = str(Path("reports/evaluate/report.md").resolve())
    form = SignOff.with_initial_data(
        description=f"**{model}** passed every gate. Review `{report}` and decide whether it becomes champion.")
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=cfg.evaluate.approval_timeout_s, poll_interval=2)
    except FlowPauseTimeout:
        _, name, version = model.split("/")
        record = record_timeout(name, version, cfg.evaluate.approval_timeout_s)
    else:
        record = approve(model, answer.reviewer, answer.reason, answer.approve, via="prefect", report=report)
    record_sign_off(record)
    print(f"sign-off: {model} {record['status']}" + (f" by {record.get('reviewer')}: {record.get('reason')}"
                                                    if record.get("reviewer") else ""))
    return record


SKIPPED = "Skipped"  # the state name the Prefect UI shows on a stage DVC found up to date


@task(retry_condition_fn=_retry_unless_final, persist_result=False)
def run_stage(stage: str, env: dict[str, str], timeout_s: float):
    """One stage through `dvc repro`. Its one-line outcome goes to the task's log, where the Prefect UI shows it:
    ran (with its headline figures), skipped by DVC, or the error (naming the file and line of a bad input)."""
    logger = get_run_logger()
    code = dvc_repro(stage, False, env, timeout_s)
    event = read_events(Path(env[EVENTS_ENV])).get(stage, {})
    if code != 0:
        logger.error(f"{stage}: failed (exit code {code}): {event.get('error') or 'see the stage output above'}")
        raise StageFailed(stage, code)
    if event.get("status") != "ran":
        return skipped_state(stage)
    figures = ", ".join(f"{k}={v:.3g}" for k, v in (event.get("metrics") or {}).items())
    logger.info(f"{stage}: ran in {event.get('seconds', 0):.0f} s" + (f" ({figures})" if figures else ""))
    return stage


def skipped_state(stage: str) -> State:
    """A stage whose deps, params and outputs DVC found unchanged: Completed, but named Skipped, not work done."""
    message = f"{stage}: skipped (DVC: deps, params and outputs unchanged since dvc.lock)"
    get_run_logger().info(message)
    return Completed(name=SKIPPED, message=message)


@task(persist_result=False)
def skip_stage(stage: str) -> State:
    """A box in the flow run's graph for a stage that `dvc status` found up to date (no process is started)."""
    return skipped_state(stage)


def _stage_task(stage: str, cfg: PipelineConfig):
    """The stage's task with the retries, backoff and tag the params give (GPU stages share a `gpu` limit)."""
    o = cfg.orchestration
    return run_stage.with_options(name=stage, retries=o.retries, retry_delay_seconds=o.retry_delays() or 0,
                                  tags=["gpu" if stage in o.gpu_stages else "cpu"])


@flow(name="rlaif-pipeline", log_prints=True)
def rlaif_pipeline(config: dict, wait_for_approval: bool = False):
    """Run every stage of dvc.yaml in order; a stage whose inputs did not change is skipped.
    wait_for_approval: pause for a reviewer's sign-off after evaluate (deployments) instead of only saying so."""
    graph, stale = plan()
    return run_stages(PipelineConfig.model_validate(config), graph, stale, wait_for_approval)


def run_stages(cfg: PipelineConfig, graph: list[tuple[str, list[str]]], stale: set[str], wait_for_approval: bool):
    """Inside the flow run: each stale stage as a Prefect task through `dvc repro`, the rest as tasks named
    Skipped, under the MLflow parent run that flows/run_record.py opens and summarises."""
    with tempfile.TemporaryDirectory() as tmp, pipeline_run(cfg) as (mlflow, summary), \
            contextlib.ExitStack() as warm:
        events_file = Path(tmp) / "events.jsonl"
        env = {**os.environ, PARENT_RUN_ENV: str(summary.run_id), EVENTS_ENV: str(events_file)}
        if stale and cfg.orchestration.warm_start and WARM_ENV not in env:  # `rlaif run` may have started it
            env = warm.enter_context(warm_server(env))  # the stages' processes start from one that has imported torch
        failed_at = None
        states: dict = {}  # each stage's final state: the upstream edges of the flow run's graph in the Prefect UI
        for stage, upstream in graph:
            started = time.time()
            after = [states[name] for name in upstream if name in states]
            if failed_at is not None:
                summary.rows.append({"stage": stage, "status": "not run", "seconds": 0.0})
                continue
            if stage not in stale:
                states[stage] = skip_stage.with_options(name=stage)(stage, wait_for=after, return_state=True)
                summary.rows.append(skipped_row(stage))
                if stage == "bootstrap":
                    summary.start = tag_round(mlflow)
                continue
            state = states[stage] = _stage_task(stage, cfg)(stage, env, cfg.orchestration.timeout(stage),
                                                            wait_for=after, return_state=True)
            event = read_events(events_file).get(stage)
            row = {"stage": stage, "seconds": time.time() - started,
                   "metrics": (event or {}).get("metrics", {}), "run_id": (event or {}).get("run_id")}
            if state.is_failed():
                error = state.result(raise_on_failure=False)  # the exception the task raised
                summary.exit_code = error.exit_code if isinstance(error, StageFailed) else 1
                summary.message = str(error or state.message)
                failed_at = stage
                row["status"] = "failed"
            else:
                row["status"] = "ran" if event and event["status"] == "ran" else "skipped"
                if stage == "bootstrap":
                    summary.start = tag_round(mlflow)
                if stage == "evaluate" and row["status"] == "ran":
                    summary.sign_off = await_sign_off(cfg, wait_for_approval)
            summary.rows.append(row)
    if not summary.ok:  # the flow run ends Failed, so the Prefect UI shows where it stopped
        return Failed(message=summary.message)
    return summary.rows


@flow(name="rlaif-scheduled", log_prints=True)
def scheduled_pipeline(params_file: str | None = "params/default.yaml", overrides: list[str] | None = None):
    """What the deployments in prefect.yaml run: check the params and inputs as `rlaif run` does, then the pipeline.

    Retrying a failed run (the UI's Retry button) runs this again with the same parameters; DVC skips every
    stage whose inputs did not change, so only the failed stage and the stages after it run.
    """
    from rlaif.config.preflight import preflight
    from rlaif.lifecycle.locking import project_lock

    quiet_telemetry()
    with project_lock():
        cfg = preflight(Path(params_file) if params_file else None, overrides or [])
        rows = rlaif_pipeline(cfg.as_dict(), wait_for_approval=True)  # a failed stage fails this flow run too
    print_summary(Summary.read(Path(LAST_RUN)))
    return rows


def run_pipeline(cfg: PipelineConfig) -> Summary:
    """The flow run of `rlaif run`, for stages DVC found stale (flows/run_record.py records a run with none). The
    flow asks DVC again: a deployment's flow run has only itself to ask."""
    with _warm_before_prefect(cfg):
        state = rlaif_pipeline(cfg.as_dict(), return_state=True)
    if not Path(LAST_RUN).exists():  # the flow itself broke before it could summarise
        Console(stderr=True).print(f"[bold red]pipeline flow failed:[/] {state.message}")
        return Summary(exit_code=1, message=f"pipeline flow failed: {state.message}")
    return Summary.read(Path(LAST_RUN))


@contextlib.contextmanager
def _warm_before_prefect(cfg: PipelineConfig):
    """The stages' warm server, started before the flow: its imports (torch, transformers, TRL) overlap the start of
    Prefect's temporary server instead of following it. A deployment's flow run starts its own in run_stages."""
    if not cfg.orchestration.warm_start or WARM_ENV in os.environ:
        yield
        return
    with warm_server(dict(os.environ)) as env:
        os.environ[WARM_ENV] = env[WARM_ENV]
        try:
            yield
        finally:
            del os.environ[WARM_ENV]


def run_single_stage(stage: str, force: bool = False) -> int:
    """`rlaif stage NAME`: that stage alone, through DVC (no flow, no parent run)."""
    quiet_telemetry()
    names = [name for name, _ in stage_graph()]
    if stage not in names:
        Console(stderr=True).print(f"[red]error:[/] unknown stage {stage!r}; stages: {', '.join(names)}")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        return dvc_repro(stage, force, {**os.environ, EVENTS_ENV: str(Path(tmp) / "events.jsonl")})
