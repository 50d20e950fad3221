"""The preference set: which judged pairs are kept for training, and which answer of each is chosen."""

from __future__ import annotations

import pandas as pd

from rlaif.config import ValidateConfig
from rlaif.data.records import Preference


def preferences(frame: pd.DataFrame, cfg: ValidateConfig) -> list[Preference]:
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
