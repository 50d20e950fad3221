"""The audit log: every judgment (the rendered judge prompt, raw output, probabilities, backend, model) as a parquet
dataset joinable to the labels by pair_id, and logged to MLflow as the judge stage's input record."""

from __future__ import annotations

from pathlib import Path

from rlaif.data.io import atomic_file

# the audit log records what each judgment was; its latency (a timing) goes to MLflow through rlaif.judging.figures.speed
AUDIT_COLUMNS = ["pair_id", "order", "principle", "p_first", "score", "status", "error", "backend", "model",
                 "rendered", "raw"]


def write_audit(path: Path, audit: list[dict]) -> Path:
    """The audit log as a parquet dataset (raw output as JSON text), joinable to labels by pair_id."""
    import json

    import pandas as pd

    frame = pd.DataFrame([{**row, "raw": json.dumps(row.get("raw") or {}, ensure_ascii=False)} for row in audit],
                         columns=AUDIT_COLUMNS)
    with atomic_file(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def log_audit(path: Path) -> None:
    import warnings

    import mlflow
    import pandas as pd

    frame = pd.read_parquet(path)
    with warnings.catch_warnings():  # MLflow cannot tell which kind of local source a path is; either is right
        warnings.simplefilter("ignore", UserWarning)
        mlflow.log_input(mlflow.data.from_pandas(frame, source=str(path), name="judge-audit"), context="audit")
