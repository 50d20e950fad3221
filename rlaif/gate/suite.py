"""The "labels" Great Expectations suite: its expectations, its run with HTML Data Docs, and what each
expectation observed, said shortly. Great Expectations is imported lazily: importing it costs seconds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from rlaif.config import ValidateConfig
from rlaif.data.records import REQUIRED_LABEL_COLUMNS
from rlaif.gate.columns import CONSISTENT_COL, FAILED_COL, FIRST_WIN_COL, round6

SUITE_NAME = "labels"
SITE_NAME = "labels_gate"
DATA_DOCS_DIR = "data_docs"

REQUIRED_COLUMNS = REQUIRED_LABEL_COLUMNS  # every field of rlaif.data.records.Label that each row carries
NOT_NULL_COLUMNS = ["pair_id", "prompt_id", "prompt", "response_a", "response_b", "status"]
STATUSES = ["ok", "failed"]


def not_applicable(cfg: ValidateConfig, statistics: dict[str, Any]) -> dict[str, str]:
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
            return round6(float(value))
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


def run_suite(
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
