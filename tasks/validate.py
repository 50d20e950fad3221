"""Validate stage: the label gate between the judge and any training (`rlaif.gate`).

Reads the judge's labels, runs the gate (the Great Expectations suite with its Data Docs, the judge bias gates, the
preference filter), writes the preference set where the labels pass and the gate record either way, and logs both to
the stage's MLflow run. A failed gate raises `GateFailed` and leaves no preference set behind.
"""

from __future__ import annotations

from pathlib import Path

from rlaif.gate import validate_labels


def run_stage(cfg, labels_path: Path, out_dir: Path, report_dir: Path) -> dict:
    """The `validate` stage: the gate plus its MLflow run (the report is logged whether it passes or not)."""
    from rlaif.lifecycle.tracking import stage_run

    with stage_run("validate", cfg, inputs={"labels": labels_path}, datasets={"labels": labels_path},
                   outputs={"validate": Path(out_dir), "validation_report": Path(report_dir)}) as run:
        try:
            summary = validate_labels(cfg.validate_, labels_path, out_dir, report_dir, cfg.judge_bias.gates)
        finally:
            run.artifact(Path(report_dir), "validation_report")
        # kept with the run, so a later round can replay the preferences that trained this round's models
        run.artifact(Path(out_dir) / "preferences.jsonl", "preferences")
        if summary.get("validation_page"):
            import mlflow

            mlflow.set_tag("validate.validation_page", summary["validation_page"])
        bias = summary.get("judge_bias") or {}
        if bias.get("gates"):  # what `rlaif lineage` shows of the judge that trained a model
            import mlflow

            mlflow.set_tags({"judge_bias.judge": bias.get("judge") or "",
                             "judge_bias.passed": str(all(row["passed"] for row in bias["gates"])).lower(),
                             "judge_bias.checks": "; ".join(row["text"] for row in bias["gates"])[:5000]})
        stats = summary.get("statistics", {})
        run.metrics({"n_pairs": summary.get("n_pairs"), "n_kept": summary.get("n_kept"),
                     **{k: v for k, v in stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}})
    return summary
