"""A pipeline run's record, without Prefect: the MLflow parent run that spans it, the summary it leaves in
reports/last_run.json and the table `rlaif run` prints. A run with nothing to run is recorded here alone, so it
imports neither Prefect nor the flow (flows/pipeline.py runs the stages and uses the same record)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from flows.dvc_ops import FAILED_ATTEMPTS, sync_outputs
from rlaif.config import PipelineConfig
from rlaif.data.records import (
    Decision,
    LastRun,
    StageRow,
    read_evaluation_figures,
    read_figures,
    read_last_run,
    read_promotion,
    write_record,
)
from rlaif.lifecycle.tracking import log_params, setup

LAST_RUN = "reports/last_run.json"
PROMOTION = Path("reports/evaluate/promotion.json")
START = Path("artifacts/bootstrap/start.json")  # machine-readable summary of the latest pipeline run
REPORTS = {
    "run report (HTML)": "reports/run.html",
    "validation report": "reports/validate/data_docs/index.html",
    "label gate": "reports/validate/gate.json",
    "evaluation report": "reports/evaluate/report.md",
    "judge metrics": "metrics/judge.json",
    "evaluation metrics": "metrics/evaluate.json",
    "run summary": LAST_RUN,
}
HEADLINE = {
    "bootstrap": ["sft_final_loss"],
    "generate": ["n_candidates"],
    "judge": ["n_pairs", "gold_agreement", "position_consistency"],
    "validate": ["n_kept", "consistency_rate"],
    "train_reward": ["heldout_accuracy", "gold_agreement"],
    "optimize_policy": ["final_loss", "final_reward_margin"],
    "evaluate": ["candidate/correct_rate", "delta/correct_rate", "win_rate", "promoted"],
    "report": [],
}


@dataclass
class Summary:
    rows: list[dict] = field(default_factory=list)
    exit_code: int = 0
    message: str = ""
    run_id: str | None = None
    start: dict = field(default_factory=dict)
    sign_off: dict | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def record(self) -> LastRun:
        return LastRun(run_id=self.run_id, exit_code=self.exit_code, message=self.message,
                       stages=[StageRow(**row) for row in self.rows], start=self.start, sign_off=self.sign_off)

    @classmethod
    def read(cls, path: Path) -> Summary:
        """reports/last_run.json, which the flow run wrote (it exists: the caller checked or the flow returned)."""
        last = read_last_run(path)
        assert last is not None, f"{path}: the flow run wrote no summary"
        return cls(rows=[stage.row() for stage in last.stages], exit_code=last.exit_code, message=last.message,
                   run_id=last.run_id, start=last.start, sign_off=last.sign_off)


def tag_round(mlflow) -> dict:
    """The round this run is (1: a built policy; k+1 after a champion of round k) and where it started."""
    from rlaif.data.records import read_start

    if not START.exists():
        return {}
    start = read_start(START)
    mlflow.set_tags({"rlaif.round": str(start.round), "rlaif.start": start.parent})
    return start.model_dump()


def log_summary(mlflow, summary: Summary) -> None:
    for row in summary.rows:
        mlflow.set_tag(f"stage.{row['stage']}", row["status"])
    measured: dict[str, float] = {}  # a figure the stage could not measure is null: not logged
    evaluation = read_evaluation_figures(Path(REPORTS["evaluation metrics"]))
    if evaluation:
        rates = evaluation.model_dump(include={"baseline", "candidate", "delta"})
        measured.update({f"{k}/{m}": v for k, figures in rates.items() for m, v in figures.items()})
    judged = read_figures(Path(REPORTS["judge metrics"]))
    measured.update({f"judge/{k}": v for k, v in (judged.model_dump() if judged else {}).items()})
    mlflow.log_metrics({k: float(v) for k, v in measured.items() if isinstance(v, (int, float))})
    for path in REPORTS.values():
        if Path(path).exists() and not path.endswith(".json"):
            mlflow.log_artifact(path, "reports")
    if Path("dvc.lock").exists():
        mlflow.log_artifact("dvc.lock", "lineage")
    mlflow.set_tag("rlaif.outcome", "ok" if summary.ok else summary.message)


def skipped_row(stage: str) -> dict:
    return {"stage": stage, "status": "skipped", "seconds": 0.0, "metrics": {}, "run_id": None}


@contextlib.contextmanager
def pipeline_run(cfg: PipelineConfig) -> Iterator[tuple[Any, Summary]]:
    """The MLflow parent run of a pipeline run, and its summary for the caller to fill. On the way out: the outputs
    pushed to a default remote unless a stage failed, the summary logged, reports/last_run.json written."""
    mlflow = setup(cfg.experiment)
    summary = Summary()
    with mlflow.start_run(run_name="pipeline") as parent:
        summary.run_id = parent.info.run_id
        log_params(cfg.as_dict())
        mlflow.log_dict(cfg.as_dict(), "params/effective.json")
        yield mlflow, summary
        failed = any(row["status"] == "failed" for row in summary.rows)
        pushed = None if failed else sync_outputs("push")  # also when nothing ran: an earlier push may have failed
        if pushed:  # the outputs would be lost with this machine
            summary.exit_code, summary.message = 1, pushed
        log_summary(mlflow, summary)
    write_record(Path(LAST_RUN), summary.record())


def record_skipped_run(cfg: PipelineConfig, graph: list[tuple[str, list[str]]]) -> Summary:
    """A run that DVC found nothing to do for: recorded in MLflow and last_run.json, every stage skipped."""
    with pipeline_run(cfg) as (mlflow, summary):
        summary.rows += [skipped_row(stage) for stage, _ in graph]
        summary.start = tag_round(mlflow)
    return summary


def champion_moved(summary: Summary) -> bool:
    """Whether this run's evaluate ran and moved `champion` (auto promotion or a sign-off during the run)."""
    ran = any(row["stage"] == "evaluate" and row["status"] == "ran" for row in summary.rows)
    decision = read_promotion(PROMOTION) if ran else None
    return bool(decision and decision.champion_moved)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def print_summary(summary: Summary) -> None:
    console = Console()
    start = summary.start or {}
    title = "rlaif pipeline run" + (f": round {start['round']}, starting from {start['parent']}" if start else "")
    table = Table(title=title, title_justify="left")
    for column in ("stage", "status", "seconds", "key metrics"):
        table.add_column(column)
    colours = {"ran": "green", "skipped": "cyan", "failed": "red", "not run": "dim"}
    for row in summary.rows:
        metrics = row.get("metrics") or {}
        shown = ", ".join(f"{k}={metrics[k]:.3g}" for k in HEADLINE.get(row["stage"], []) if k in metrics)
        table.add_row(row["stage"], f"[{colours[row['status']]}]{row['status']}[/]", f"{row['seconds']:.1f}", shown)
    console.print(table)
    if summary.rows and all(row["status"] == "skipped" for row in summary.rows):
        console.print("nothing changed since the last run (inputs, params, code and starting policy): "
                      "every stage skipped")
    ev = read_evaluation_figures(Path(REPORTS["evaluation metrics"]))
    if ev:
        before, after = ev.baseline, ev.candidate
        console.print(
            f"held-out behaviour ({ev.n_prompts} prompts, {ev.n_samples_per_policy} samples per policy): "
            f"correct {_rate(before.correct_rate)} -> {_rate(after.correct_rate)}, unsafe compliance "
            f"{_rate(before.unsafe_compliance_rate)} -> {_rate(after.unsafe_compliance_rate)}, needless refusal "
            f"{_rate(before.needless_refusal_rate)} -> {_rate(after.needless_refusal_rate)}"
        )
    decision = read_promotion(PROMOTION)
    if decision is not None:
        failed = ", ".join(decision.failed_gates) or "none"
        console.print(f"promotion: {decision.decision} ({decision.model}; failed gates: {failed})")
        if decision.decision == Decision.AWAITING:
            console.print(f"sign off: rlaif approve {decision.model} --reviewer NAME --reason TEXT [--reject]",
                          soft_wrap=True)
    failed_stages = [row["stage"] for row in summary.rows if row["status"] == "failed"]
    for name, path in REPORTS.items():
        # a failed stage's own reports (why it failed) are with its failed attempt; in place are the earlier ones
        attempt = next((FAILED_ATTEMPTS / stage / path for stage in failed_stages if (FAILED_ATTEMPTS / stage / path).exists()),
                       None)
        if attempt is not None:
            console.print(f"{name} (failed attempt): {attempt}", soft_wrap=True)
        elif Path(path).exists():
            console.print(f"{name}: {path}")
    console.print(f"MLflow run: {summary.run_id} (mlflow ui --backend-store-uri {os.environ.get('MLFLOW_TRACKING_URI') or 'sqlite:///mlflow.db'})")
    if not summary.ok:
        console.print(f"[bold red]{summary.message}[/]")
