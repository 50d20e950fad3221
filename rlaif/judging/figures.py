"""The label figures the judge stage reports: counts, position consistency and gold agreement go to its metrics
file; speed goes to MLflow only, never to a file that the same inputs must reproduce byte for byte."""

from __future__ import annotations

from rlaif.judging.labelling import position_consistency


def label_metrics(labels, audit, resumed: int, judged_now: int, seconds: float, n_revised: int, gold: dict) -> dict:
    ok = [lab for lab in labels if lab["status"] == "ok"]
    return {
        "n_pairs": len(labels),
        "n_failed": len(labels) - len(ok),
        "n_revision_pairs": n_revised,
        "position_consistency": position_consistency(ok),
        "resumed_pairs": resumed,
        **{f"gold_{k}": v for k, v in gold.items()},
    }


def speed(audit: list[dict], judged_now: int, seconds: float) -> dict:
    """How fast the judge ran: MLflow metrics only, never in the stage's files, which the same inputs must
    reproduce byte for byte."""
    return {"pairs_per_second": judged_now / seconds if judged_now and seconds > 0 else None,
            "mean_latency_ms": sum(a["latency_ms"] for a in audit) / max(1, len(audit))}
