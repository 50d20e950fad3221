"""`rlaif history`: the registered policy version by version, so a team sees whether the weekly rounds compound.

Each version's figures come from the evaluate run that judged it (the version's `promotion.evaluate_run_id` tag):
held-out behaviour measured on the same evaluation prompts every round, the win rate against the round's starting
policy (the previous champion, from round 2 on), and the training judge's agreement with the human gold pairs in
that pipeline run. The first row is the policy the first version started from.
"""

from __future__ import annotations

from pathlib import Path

from rlaif.data.io import atomic_file
from rlaif.data.records import Decision

FIGURES = {  # column -> the evaluate run's metric
    "behaves_as_expected": "candidate/correct_rate",
    "unsafe_compliance": "candidate/unsafe_compliance_rate",
    "needless_refusal": "candidate/needless_refusal_rate",
    "incoherent": "candidate/incoherent_rate",
}


def policy_history(name: str = "rlaif-policy") -> list[dict]:
    from mlflow import MlflowClient

    from rlaif.lifecycle.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri())
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    rows: list = []
    for version in versions:
        tags = dict(version.tags or {})
        row = {"version": f"v{version.version}", "round": tags.get("rlaif.round"), "parent": tags.get("rlaif.parent"),
               "decision": tags.get("promotion.decision"), "approval": _approval(tags),
               "aliases": sorted(getattr(version, "aliases", []) or [])}
        run = _run(client, tags.get("promotion.evaluate_run_id"))
        metrics = run.data.metrics if run else {}
        row |= {column: metrics.get(metric) for column, metric in FIGURES.items()}
        row["win_rate_vs_start"] = metrics.get("win_rate")
        parent = _run(client, run.data.tags.get("mlflow.parentRunId")) if run else None
        row["judge_gold_agreement"] = parent.data.metrics.get("judge/gold_agreement") if parent else None
        if not rows and run:  # where the first version started: its evaluation's baseline
            rows.append({"version": "start", "round": "0", "parent": None, "decision": None, "approval": None,
                         "aliases": [], "win_rate_vs_start": None, "judge_gold_agreement": None,
                         **{column: _baseline(metrics, metric) for column, metric in FIGURES.items()}})
        rows.append(row)
    return rows


def _run(client, run_id: str | None):
    if not run_id:
        return None
    try:
        return client.get_run(run_id)
    except Exception:  # a run deleted from the tracking store
        return None


def _baseline(metrics: dict, metric: str) -> float | None:
    delta = metric.replace("candidate/", "delta/")
    return metrics[metric] - metrics[delta] if metric in metrics and delta in metrics else None


def _approval(tags: dict) -> str | None:
    if "approval.status" not in tags:
        return None
    who = f" by {tags['approval.reviewer']}" if tags.get("approval.reviewer") else ""
    return f"{tags['approval.status']}{who}"


def render_history(rows: list[dict]):
    from rich.table import Table

    table = Table(title="policy history (held-out evaluation prompts; win rate against the round's start)",
                  title_justify="left")
    for column in ("version", "round", "parent", "decision", "behaves", "unsafe comp.", "needless ref.",
                   "incoherent", "win rate", "judge-gold"):
        table.add_column(column)
    for row in rows:
        decision = row["decision"] or ""
        if row["approval"]:
            decision += f" ({row['approval']})"
        if "champion" in row["aliases"]:
            decision += " [champion]"
        table.add_row(row["version"], str(row["round"] or ""), str(row["parent"] or ""), decision,
                      *(_pct(row[c]) for c in (*FIGURES, "win_rate_vs_start", "judge_gold_agreement")))
    return table


def _pct(value) -> str:
    return "" if value is None else f"{value:.1%}"


def plot_history(rows: list[dict], path: Path) -> Path | None:
    """The trend over versions; promoted versions drawn as filled points."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["version"] for row in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    for column in (*FIGURES, "win_rate_vs_start", "judge_gold_agreement"):
        points = [(i, row[column]) for i, row in enumerate(rows) if row[column] is not None]
        if points:
            ax.plot([i for i, _ in points], [v for _, v in points], marker="o", label=column.replace("_", " "))
    promoted = [i for i, row in enumerate(rows) if row["decision"] == Decision.PROMOTE]
    for i in promoted:
        ax.axvline(i, color="grey", alpha=0.15, linewidth=8)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate")
    ax.set_title("policy versions (shaded: promoted to champion)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
