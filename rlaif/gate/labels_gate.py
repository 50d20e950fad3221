"""The label gate between the judge and any training.

The judge's `labels.jsonl` is checked by the Great Expectations suite "labels" (`rlaif.gate.suite`: schema, nulls,
value ranges, answers that differ, the judge's position consistency, the balance of first- versus second-shown wins
and the share of failed judgements) and by the judge bias gates. Whatever the outcome, HTML Data Docs are built under
`report_dir/data_docs` and the gate summary is written to `report_dir/gate.json`.

If any check fails, or too few pairs survive the filters (`rlaif.gate.preference_filter`), `GateFailed` is raised and
no preference set exists afterwards (a stale one is removed first), so nothing downstream can train on labels the gate
refused. Otherwise the filtered preference set is written to `out_dir/preferences.jsonl` with its statistics in
`out_dir/stats.json`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rlaif.config import ValidateConfig
from rlaif.data.io import read_jsonl, write_json
from rlaif.data.records import LabelGate, Preference, read_bias_report, write_record, write_records
from rlaif.errors import GateFailed, InputError
from rlaif.gate import columns, preference_filter, suite

MIN_PAIRS_NAME = "enough pairs kept after filtering"


def validate_labels(cfg: ValidateConfig, labels_path: Path, out_dir: Path, report_dir: Path,
                    bias_gates=None) -> dict:
    """Gate the judge's labels and, if they pass, write the filtered preference set.

    Returns the gate summary (the content of `report_dir/gate.json`). Raises `InputError` for an
    unreadable labels file and `GateFailed` when an expectation fails or fewer than `cfg.min_pairs`
    pairs are kept; in both cases `out_dir/preferences.jsonl` does not exist afterwards.
    """
    labels_path, out_dir, report_dir = Path(labels_path), Path(out_dir), Path(report_dir)
    preferences_path = out_dir / "preferences.jsonl"
    stats_path = out_dir / "stats.json"
    gate_path = report_dir / "gate.json"
    # Nothing from an earlier run may survive a failure of this one.
    for stale in (preferences_path, stats_path, gate_path):
        stale.unlink(missing_ok=True)

    rows = read_jsonl(labels_path)
    if not rows:
        raise InputError(f"{labels_path}: no label rows")
    labels = pd.DataFrame.from_records(rows)

    frame = columns.with_derived_columns(labels)
    statistics = columns.statistics(frame)
    skipped = suite.not_applicable(cfg, statistics)
    outcomes, gx_statistics, data_docs, validation_page = suite.run_suite(cfg, frame, report_dir, skipped)
    statistics["expectations"] = gx_statistics

    bias = judge_bias_outcomes(labels_path, bias_gates)
    outcomes += bias["outcomes"]
    failed = [o for o in outcomes if not o["success"]]
    kept: list[Preference] = []
    if not failed:
        kept = preference_filter.preferences(frame, cfg)
        statistics["n_kept_after_filters"] = len(kept)
        if len(kept) < cfg.min_pairs:
            failed.append(
                {
                    "name": MIN_PAIRS_NAME,
                    "success": False,
                    "observed": f"{len(kept)} kept, at least {cfg.min_pairs} (min_pairs) required",
                }
            )
            outcomes.append(failed[-1])
            kept = []

    passed = not failed
    summary = {
        "passed": passed,
        "failed_expectations": [o["name"] for o in failed],
        "not_applicable": [o["name"] for o in outcomes if o.get("applicable") is False],
        "statistics": statistics,
        "expectations": outcomes,
        "data_docs": str(data_docs),
        "validation_page": validation_page,
        "n_pairs": len(frame),
        "n_kept": len(kept),
        "judge_bias": {k: v for k, v in bias.items() if k != "outcomes"},
    }
    # the gate record holds what was decided; the Data Docs page's address carries the validation's run time, so it
    # goes to the stage's MLflow run instead (the same labels give the same gate.json, byte for byte)
    write_record(gate_path, LabelGate(**{k: v for k, v in summary.items() if k != "validation_page"}))

    if not passed:
        details = "; ".join(f"{o['name']} (observed: {o['observed']})" for o in failed)
        raise GateFailed(
            f"{labels_path}: label gate failed, no preference set written: {details}. "
            f"Data Docs: {data_docs}; gate report: {gate_path}"
        )

    write_records(preferences_path, kept)
    write_json(
        stats_path,
        {
            "n_pairs": summary["n_pairs"],
            "n_ok": statistics["n_ok"],
            "n_failed": statistics["n_failed"],
            "n_kept": len(kept),
            "consistency_rate": statistics["consistency_rate"],
            "first_wins_rate": statistics["first_wins_rate"],
            "failed_fraction": statistics["failed_fraction"],
            "mean_confidence": columns.round6(sum(r.confidence for r in kept) / len(kept)),
        },
    )
    return summary


def judge_bias_outcomes(labels_path: Path, gates) -> dict:
    """The judge stage's bias report beside the labels, checked against `judge_bias.gates`: one outcome per gate,
    failed like an expectation. Labels with no report beside them (judged outside the pipeline) have their bias
    checks recorded as not applicable."""
    from rlaif.judging.bias import check, describe

    report = Path(labels_path).parent / "bias.json"
    if gates is None:
        return {"report": None, "gates": [], "outcomes": []}
    if not report.exists():
        return {"report": None, "gates": [], "outcomes": [{
            "name": "judge bias checks", "success": True, "applicable": False,
            "observed": f"no bias report beside the labels ({report}): the judge stage writes it"}]}
    figures = read_bias_report(report).model_dump()
    rows = [{**row, "text": describe(row)} for row in check(figures, gates)]
    outcomes = [{"name": f"judge bias: {row['gate']}", "success": row["passed"], "observed": row["text"]}
                for row in rows]
    return {"report": str(report), "judge": figures.get("judge"), "gates": rows, "outcomes": outcomes}
