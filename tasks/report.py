"""report: one readable HTML page per run, for the people who sign off on a model.

What ran, label quality, judge-human agreement (gold set and the latest human audit), the reward model,
training curves, the independent evaluation with its plots, the promotion decision and the lineage tree.
Written to disk (plots embedded, so the page is one file) and logged to MLflow on the stage run and on the
pipeline's parent run.
"""

from __future__ import annotations

import os
from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.evaluation.run_report import build_report


def report(cfg: PipelineConfig, out: Path, registered: Path | None, evaluation: Path, gate: Path | None,
           judge_metrics: Path | None, reward_metrics: Path | None, reward_dir: Path | None,
           policy_dir: Path | None) -> Path:
    from rlaif.data.io import write_text
    from rlaif.lifecycle.tracking import PARENT_RUN_ENV, stage_run

    inputs = {"evaluation": evaluation, "registered": registered}
    with stage_run("report", cfg, inputs={k: v for k, v in inputs.items() if v}, outputs={"report": out}) as run:
        html, _ = build_report(registered, evaluation, gate, judge_metrics, reward_metrics, reward_dir, policy_dir)
        write_text(Path(out), html)
        run.artifact(Path(out), "report")
        parent = os.environ.get(PARENT_RUN_ENV)
        if parent:  # where a reviewer opening the pipeline run looks first
            from mlflow import MlflowClient

            from rlaif.lifecycle.tracking import tracking_uri

            MlflowClient(tracking_uri=tracking_uri()).log_artifact(parent, str(out), "report")
    return Path(out)
