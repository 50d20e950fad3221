"""Validate stage: the label gate between the judge and any training.

The judge's `labels.jsonl` is checked by a Great Expectations suite named "labels" (schema, nulls,
value ranges, answers that differ, the judge's position consistency, the balance of first- versus
second-shown wins and the share of failed judgements). Whatever the outcome, HTML Data Docs are
built under `report_dir/data_docs` and the gate summary is written to `report_dir/gate.json`.

If any expectation fails, or too few pairs survive the filters, `GateFailed` is raised and no
preference set exists afterwards (a stale one is removed first), so nothing downstream can train on
labels the gate refused. Otherwise the filtered preference set is written to
`out_dir/preferences.jsonl` with its statistics in `out_dir/stats.json`.

Great Expectations is imported lazily: importing it costs seconds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlaif.config import ValidateConfig
from rlaif.errors import GateFailed, InputError
from rlaif.io import read_jsonl, write_json
from rlaif.records import REQUIRED_LABEL_COLUMNS, Preference, write_records

SUITE_NAME = "labels"
SITE_NAME = "labels_gate"
DATA_DOCS_DIR = "data_docs"

REQUIRED_COLUMNS = REQUIRED_LABEL_COLUMNS  # every field of rlaif.records.Label that each row carries
NOT_NULL_COLUMNS = ["pair_id", "prompt_id", "prompt", "response_a", "response_b", "status"]
STATUSES = ["ok", "failed"]

# derived columns the suite checks (added to the labels dataframe before validation)
CONSISTENT_COL = "consistent_int"  # ok rows judged in both orders: 1 if both picked the same answer, else 0
FIRST_WIN_COL = "first_win_share"  # ok rows: weighted share of this row's orders won by the first-shown answer
FAILED_COL = "is_failed"  # 1 if status == "failed"

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

    frame = _with_derived_columns(labels)
    statistics = _statistics(frame)
    skipped = _not_applicable(cfg, statistics)
    outcomes, gx_statistics, data_docs, validation_page = _run_suite(cfg, frame, report_dir, skipped)
    statistics["expectations"] = gx_statistics

    bias = _judge_bias(labels_path, bias_gates)
    outcomes += bias["outcomes"]
    failed = [o for o in outcomes if not o["success"]]
    kept: list[Preference] = []
    if not failed:
        kept = _preferences(frame, cfg)
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
        "n_pairs": int(len(frame)),
        "n_kept": len(kept),
        "judge_bias": {k: v for k, v in bias.items() if k != "outcomes"},
    }
    # the gate record holds what was decided; the Data Docs page's address carries the validation's run time, so it
    # goes to the stage's MLflow run instead (the same labels give the same gate.json, byte for byte)
    write_json(gate_path, {k: v for k, v in summary.items() if k != "validation_page"})

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
            "mean_confidence": _round(sum(r.confidence for r in kept) / len(kept)),
        },
    )
    return summary


def _judge_bias(labels_path: Path, gates) -> dict:
    """The judge stage's bias report beside the labels, checked against `judge_bias.gates`: one outcome per gate,
    failed like an expectation. Labels with no report beside them (judged outside the pipeline) have their bias
    checks recorded as not applicable."""
    from rlaif.judge_bias import check, describe

    report = Path(labels_path).parent / "bias.json"
    if gates is None:
        return {"report": None, "gates": [], "outcomes": []}
    if not report.exists():
        return {"report": None, "gates": [], "outcomes": [{
            "name": "judge bias checks", "success": True, "applicable": False,
            "observed": f"no bias report beside the labels ({report}): the judge stage writes it"}]}
    figures = json.loads(report.read_text(encoding="utf-8"))
    rows = [{**row, "text": describe(row)} for row in check(figures, gates)]
    outcomes = [{"name": f"judge bias: {row['gate']}", "success": row["passed"], "observed": row["text"]}
                for row in rows]
    return {"report": str(report), "judge": figures.get("judge"), "gates": rows, "outcomes": outcomes}


# --------------------------------------------------------------------------- derived columns


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column, or all-null where the labels lack it (the schema expectation reports that)."""
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype(float)


def _is_true(value: Any) -> bool:
    """JSON true (a Python or numpy bool); null, false and anything else count as not consistent."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def _with_derived_columns(labels: pd.DataFrame) -> pd.DataFrame:
    frame = labels.copy()
    status = _column(frame, "status")
    ok = (status == "ok").fillna(False).astype(bool)
    recorded = _column(frame, "consistent")
    measured = recorded.map(lambda v: isinstance(v, (bool, np.bool_))).astype(bool)  # null: not judged in both orders
    consistent = recorded.map(_is_true).astype(bool)

    p_a_first = _numeric(_column(frame, "p_a_when_first"))
    p_b_first = _numeric(_column(frame, "p_b_when_first"))
    wins = (p_a_first > 0.5).astype(float) + (p_b_first > 0.5).astype(float)
    orders = p_a_first.notna().astype(float) + p_b_first.notna().astype(float)
    # Weight each row by its number of judged orders, so that the column mean over ok rows equals the
    # pooled share of ordered judgements won by the first-shown answer (wins_i / mean(orders)).
    judged = ok & (orders > 0)
    mean_orders = float(orders[judged].mean()) if judged.any() else math.nan

    frame[CONSISTENT_COL] = consistent.astype(float).where(ok & measured)
    frame[FIRST_WIN_COL] = (wins / mean_orders).where(judged)
    frame[FAILED_COL] = (status == "failed").fillna(False).astype(int)
    frame["_ok"] = ok
    frame["_measured"] = measured
    frame["_inconsistent"] = measured & ~consistent
    frame["_prob_a"] = _numeric(_column(frame, "prob_a"))
    frame["_first_wins"] = wins.where(judged)
    frame["_orders"] = orders.where(judged)
    return frame


def _round(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 6)


def _statistics(frame: pd.DataFrame) -> dict[str, Any]:
    ok = frame["_ok"]
    measured = ok & frame["_measured"]
    n_ok = int(ok.sum())
    n_failed = int(frame[FAILED_COL].sum())
    orders = float(frame["_orders"].sum())
    return {
        "n_pairs": int(len(frame)),
        "n_ok": n_ok,
        "n_failed": n_failed,
        "failed_fraction": _round(n_failed / len(frame)),
        "consistency_rate": _round(frame.loc[measured, CONSISTENT_COL].mean()) if measured.any() else None,
        "n_judged_in_both_orders": int(measured.sum()),
        "first_wins_rate": _round(frame["_first_wins"].sum() / orders) if orders else None,
        "n_ordered_judgements": int(orders),
    }


# --------------------------------------------------------------------------- Great Expectations


def _not_applicable(cfg: ValidateConfig, statistics: dict[str, Any]) -> dict[str, str]:
    """The position checks that measure nothing for these labels, each with why: a judge that never reads both
    answers together (pointwise scores) has no first-shown answer, and a pair judged in one order has no
    consistency to measure. Such checks are reported "not applicable", never "passed"."""
    low, high = cfg.first_wins_rate
    skipped = {}
    if not statistics["n_judged_in_both_orders"]:
        skipped[f"position consistency rate at least {cfg.min_position_consistency}"] = (
            "not applicable: no pair was judged in both orders (an order-invariant judge, e.g. pointwise "
            "scores, or judge.both_orders=false)")
    if not statistics["n_ordered_judgements"]:
        skipped[f"first-shown answer win rate in [{low}, {high}]"] = (
            "not applicable: order-invariant judge (each answer scored on its own; no answer was shown first)")
    return skipped


def _expectations(cfg: ValidateConfig) -> list[tuple[str, Any]]:
    """(readable name, expectation) for every check of the "labels" suite."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    ok_rows = Column("status") == "ok"
    low, high = cfg.first_wins_rate
    checks: list[tuple[str, Any]] = [
        (
            "schema: all label columns present",
            gxe.ExpectTableColumnsToMatchSet(column_set=REQUIRED_COLUMNS, exact_match=False),
        ),
    ]
    for column in NOT_NULL_COLUMNS:
        checks.append((f"no null {column}", gxe.ExpectColumnValuesToNotBeNull(column=column)))
    checks += [
        ("pair_id unique", gxe.ExpectColumnValuesToBeUnique(column="pair_id")),
        (f"status in {{{', '.join(STATUSES)}}}", gxe.ExpectColumnValuesToBeInSet(column="status", value_set=STATUSES)),
        ("ok rows: prob_a not null", gxe.ExpectColumnValuesToNotBeNull(column="prob_a", row_condition=ok_rows)),
    ]
    for column in ("prob_a", "p_a_when_first", "p_b_when_first"):
        checks.append(
            (
                f"ok rows: {column} in [0, 1]",
                gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=1, row_condition=ok_rows),
            )
        )
    checks += [
        (
            "response_a differs from response_b",
            gxe.ExpectSelectColumnValuesToBeUniqueWithinRecord(column_list=["response_a", "response_b"]),
        ),
        (
            f"position consistency rate at least {cfg.min_position_consistency}",
            gxe.ExpectColumnMeanToBeBetween(
                column=CONSISTENT_COL, min_value=cfg.min_position_consistency, row_condition=ok_rows
            ),
        ),
        (
            f"first-shown answer win rate in [{low}, {high}]",
            gxe.ExpectColumnMeanToBeBetween(column=FIRST_WIN_COL, min_value=low, max_value=high, row_condition=ok_rows),
        ),
        (
            f"failed fraction at most {cfg.max_failed_fraction}",
            gxe.ExpectColumnMeanToBeBetween(column=FAILED_COL, min_value=0, max_value=cfg.max_failed_fraction),
        ),
    ]
    for name, expectation in checks:
        expectation.meta = {"name": name}
        expectation.description = name
    return checks


def _short(value: Any, limit: int = 60) -> Any:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _observed(result: Any) -> Any:
    """A short, JSON-safe description of what an expectation saw."""
    if result.exception_info and result.exception_info.get("raised_exception"):
        return f"error: {result.exception_info.get('exception_message')}"
    for info in (result.exception_info or {}).values():
        if isinstance(info, dict) and info.get("raised_exception"):
            return f"error: {info.get('exception_message')}"
    details = result.result or {}
    if "observed_value" in details:
        value = details["observed_value"]
        if isinstance(value, (list, tuple, set)):  # the table's columns
            missing = ((details.get("details") or {}).get("mismatched") or {}).get("missing")
            return f"missing columns: {', '.join(sorted(missing))}" if missing else "all present"
        try:
            return _round(float(value))
        except (TypeError, ValueError):
            return None if value is None else str(value)
    if "unexpected_count" in details:
        observed = f"{details.get('unexpected_count')} of {details.get('element_count')} rows unexpected"
        index = details.get("partial_unexpected_index_list") or []
        ids = [row.get("pair_id") for row in index if isinstance(row, dict) and row.get("pair_id") is not None]
        if ids:
            observed += f", e.g. pair_id {', '.join(str(i) for i in ids[:5])}"
        else:
            sample = details.get("partial_unexpected_list") or []
            if sample:
                observed += f", e.g. {', '.join(str(_short(v)) for v in sample[:3])}"
        return observed
    return None


def _run_suite(
    cfg: ValidateConfig, frame: pd.DataFrame, report_dir: Path, skipped: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Any], Path, str | None]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    docs_dir = report_dir / DATA_DOCS_DIR
    shutil.rmtree(docs_dir, ignore_errors=True)  # the site shows this run only
    docs_dir.mkdir(parents=True, exist_ok=True)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    for site in list(context.list_data_docs_sites()):  # the default site writes to a temp folder
        context.delete_data_docs_site(site)
    context.add_data_docs_site(
        SITE_NAME,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )

    batch = (
        context.data_sources.add_pandas("labels")
        .add_dataframe_asset(name="labels")
        .add_batch_definition_whole_dataframe("all labels")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME))
    checks = [(name, e) for name, e in _expectations(cfg) if name not in skipped]
    for _, expectation in checks:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="labels gate", data=batch, suite=suite))
    result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 10}
    if "pair_id" in frame.columns:
        result_format["unexpected_index_column_names"] = ["pair_id"]
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="labels gate",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data docs", site_names=[SITE_NAME])],
            result_format=result_format,
        )
    )
    gx_frame = frame.drop(columns=[c for c in frame.columns if c.startswith("_")])
    run = checkpoint.run(batch_parameters={"dataframe": gx_frame})

    (identifier, validation), *_ = run.run_results.items()
    by_name = {r.expectation_config.meta.get("name"): r for r in validation.results}
    outcomes = []
    for name, _ in _expectations(cfg):
        if name in skipped:
            outcomes.append({"name": name, "success": True, "applicable": False, "observed": skipped[name]})
            continue
        result = by_name[name]
        outcomes.append({"name": name, "success": bool(result.success), "observed": _observed(result)})

    index = docs_dir / "index.html"
    if not index.exists():
        context.build_data_docs(site_names=[SITE_NAME])
    page = None
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=SITE_NAME)
    if urls and urls[0].get("site_url"):
        page = urls[0]["site_url"]
    stats = validation.statistics
    gx_statistics = {
        "suite": SUITE_NAME,
        "evaluated": int(stats.get("evaluated_expectations", 0)),
        "successful": int(stats.get("successful_expectations", 0)),
        "unsuccessful": int(stats.get("unsuccessful_expectations", 0)),
    }
    return outcomes, gx_statistics, report_dir / DATA_DOCS_DIR / "index.html", page


# --------------------------------------------------------------------------- preference set


def _preferences(frame: pd.DataFrame, cfg: ValidateConfig) -> list[Preference]:
    """Ok, confident pairs not shown position-inconsistent; at most `max_pairs_per_prompt` per prompt."""
    rows = frame[frame["_ok"] & ~frame["_inconsistent"] & frame["_prob_a"].notna()].copy()
    prob_a = rows["_prob_a"]
    rows["_confidence"] = prob_a.where(prob_a >= 0.5, 1 - prob_a)
    rows = rows[rows["_confidence"] >= cfg.min_confidence]
    rows["_position"] = range(len(rows))
    ranked = rows.sort_values(["prompt_id", "_confidence", "pair_id"], ascending=[True, False, True], kind="stable")
    capped = ranked.groupby("prompt_id", sort=False).head(cfg.max_pairs_per_prompt)
    capped = capped.sort_values("_position", kind="stable")  # keep the labels' order

    kept = []
    for row in capped.to_dict("records"):
        a_wins = row["_prob_a"] >= 0.5
        kept.append(
            Preference(
                pair_id=row["pair_id"],
                prompt_id=row["prompt_id"],
                prompt=row["prompt"],
                chosen=row["response_a"] if a_wins else row["response_b"],
                rejected=row["response_b"] if a_wins else row["response_a"],
                confidence=round(float(row["_confidence"]), 6),
                principle=row["principle"] if isinstance(row.get("principle"), str) else None,
            )
        )
    return kept


def run_stage(cfg, labels_path: Path, out_dir: Path, report_dir: Path) -> dict:
    """The `validate` stage: the gate plus its MLflow run (the report is logged whether it passes or not)."""
    from rlaif.tracking import stage_run

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
