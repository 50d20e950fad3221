"""The columns the label suite checks, derived from the judge's labels, and the gate's statistics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# derived columns the suite checks (added to the labels dataframe before validation)
CONSISTENT_COL = "consistent_int"  # ok rows judged in both orders: 1 if both picked the same answer, else 0
FIRST_WIN_COL = "first_win_share"  # ok rows: weighted share of this row's orders won by the first-shown answer
FAILED_COL = "is_failed"  # 1 if status == "failed"


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


def with_derived_columns(labels: pd.DataFrame) -> pd.DataFrame:
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


def round6(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 6)


def statistics(frame: pd.DataFrame) -> dict[str, Any]:
    ok = frame["_ok"]
    measured = ok & frame["_measured"]
    n_ok = int(ok.sum())
    n_failed = int(frame[FAILED_COL].sum())
    orders = float(frame["_orders"].sum())
    return {
        "n_pairs": len(frame),
        "n_ok": n_ok,
        "n_failed": n_failed,
        "failed_fraction": round6(n_failed / len(frame)),
        "consistency_rate": round6(frame.loc[measured, CONSISTENT_COL].mean()) if measured.any() else None,
        "n_judged_in_both_orders": int(measured.sum()),
        "first_wins_rate": round6(frame["_first_wins"].sum() / orders) if orders else None,
        "n_ordered_judgements": int(orders),
    }
