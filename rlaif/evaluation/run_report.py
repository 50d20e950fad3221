"""The run report: one readable HTML page per run, for the people who sign off on a model.

What ran, label quality, judge-human agreement (gold set and the latest human audit), the reward model, training
curves, the independent evaluation with its plots, the promotion decision and the lineage tree; plots embedded, so
the page is one file."""

from __future__ import annotations

import base64
import datetime
import re
from pathlib import Path

from rlaif.data.records import read_figures, read_gate, read_promotion, read_registered

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "run_report.html"


def _row(record) -> dict | None:
    """A stage record as the template reads it (the file's keys), None where the file is absent."""
    return record.row() if record else None


def _png(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _plots(*pairs: tuple[str, Path]) -> list[tuple[str, str]]:
    return [(title, _png(path)) for title, path in pairs if Path(path).exists()]


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _evaluation_html(report_md: Path) -> str:
    """The evaluation report's tables, as HTML; its images are embedded separately."""
    import markdown

    if not report_md.exists():
        return "<p>No evaluation report.</p>"
    text = report_md.read_text(encoding="utf-8")
    text = re.sub(r"^# .*\n", "", text)  # the page has its own title
    text = re.sub(r"^!\[.*\]\(.*\)\n", "", text, flags=re.MULTILINE)
    return markdown.markdown(text.replace("## ", "### "), extensions=["tables"])


def _lineage_html(node: dict) -> str:
    from html import escape

    facts = ", ".join(f"{k}={v}" for k, v in {**node["tags"], **node["params"]}.items())
    parts = [(f"<li><strong>{escape(node['stage'])}</strong> <code>{node['run_id'][:12]}</code> "
             f"<span class='dim'>{escape(facts)}</span><ul>")]
    for entry in node["inputs"]:
        status = "pass" if entry["status"] == "ok" else "fail"
        dvc = f" dvc={entry['dvc_md5'][:12]}" if "dvc_md5" in entry else ""
        parts.append(f"<li>{escape(entry['name'])}: <code>{escape(str(entry['path']))}</code> md5={entry['md5'][:12]}"
                     f"{dvc} <span class='{status}'>{entry['status']}</span>")
        if "produced_by" in entry:
            parts.append(f"<ul>{_lineage_html(entry['produced_by'])}</ul>")
        parts.append("</li>")
    parts.append("</ul></li>")
    return "".join(parts)


def _stages(tree: dict | None) -> list[dict]:
    """Each stage run in the lineage once, upstream first."""
    found: dict[str, dict] = {}

    def walk(node):
        for entry in node["inputs"]:
            if "produced_by" in entry:
                walk(entry["produced_by"])
        facts = ", ".join(f"{k}={v}" for k, v in {**node["tags"], **node["params"]}.items()
                          if k != "mlflow.source.git.commit")
        found.setdefault(node["run_id"], {"stage": node["stage"], "run_id": node["run_id"], "facts": facts[:300]})

    if tree:
        walk(tree)
    return list(found.values())


def _latest_audit() -> dict | None:
    """The newest `rlaif audit import` run's agreement, if reviewers have imported any."""
    from mlflow import MlflowClient

    from rlaif.lifecycle.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri())
    experiment = client.get_experiment_by_name("rlaif-audit")
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"], max_results=1)
    if not runs:
        return None
    metrics = runs[0].data.metrics
    return {"agreement": metrics.get("audit.agreement"), "kappa": metrics.get("audit.kappa"),
            "n": int(metrics.get("audit.n", 0))}


def _history(name: str | None, evaluation: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """The policy's versions round by round, with the trend plot (written beside the evaluation report)."""
    from rlaif.lifecycle.history import plot_history, policy_history

    if name is None:
        return [], []
    rows = policy_history(name)
    plot = plot_history(rows, Path(evaluation).parent / "history.png")
    return rows, _plots(("the policy's versions: held-out figures round by round", plot)) if plot else []


def build_report(registered: Path | None, evaluation: Path, gate: Path | None, judge_metrics: Path | None,
                 reward_metrics: Path | None, reward_dir: Path | None, policy_dir: Path | None) -> tuple[str, dict | None]:
    import jinja2

    from rlaif.lifecycle.lineage import lineage
    from rlaif.lifecycle.tracking import git_commit

    version = read_registered(registered)
    model = f"models:/{version.name}/{version.version}" if version else None
    tree = lineage(model) if model else None
    plots_training = sorted(Path(policy_dir).glob("*_curves.png")) if policy_dir and Path(policy_dir).exists() else []
    context = {
        "model": model, "written": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(), "promotion": _row(read_promotion(Path(evaluation) / "promotion.json")),
        "stages": _stages(tree["training"] if tree else None) + [
            {"stage": "evaluate", "run_id": e["run_id"], "facts": f"judge={e['evaluation_judge']}"}
            for e in (tree["evaluations"][:1] if tree else [])],
        "gate": _row(read_gate(gate)), "judge": _row(read_figures(judge_metrics)) or {}, "audit": _latest_audit(),
        "reward": _row(read_figures(reward_metrics)) or {},
        "reward_plots": _plots(*[(p.stem.replace("_", " "), p) for p in sorted(Path(reward_dir or ".").glob("*.png"))]
                               ) if reward_dir else [],
        "training_plots": _plots(*[(p.stem.replace("_", " "), p) for p in plots_training]),
        "evaluation_html": _evaluation_html(Path(evaluation) / "report.md"),
        "evaluation_plots": _plots(("slices: largest regressions first", Path(evaluation) / "slices.png"),
                                   ("behaves as expected, by category", Path(evaluation) / "by_category.png")),
        "lineage": tree, "lineage_html": _lineage_html(tree["training"]) if tree else "", "fmt": _fmt,
    }
    context["history"], context["history_plots"] = _history(version.name if version else None, Path(evaluation))
    env = jinja2.Environment(autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    context["evaluation_html"] = jinja2.utils.markupsafe.Markup(context["evaluation_html"])
    context["lineage_html"] = jinja2.utils.markupsafe.Markup(context["lineage_html"])
    return template.render(**context), tree
