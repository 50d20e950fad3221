"""What the evaluation decides and records: the baseline it compares against, the promotion evidence and
decision, and the figures that go to DVC metrics and MLflow."""

from __future__ import annotations

import math
from pathlib import Path

from rlaif.data.records import read_registered


def choose_baseline(cfg, start: Path, registered: Path | None, scratch: Path) -> tuple[Path, str]:
    """The starting policy, or the registered champion when params ask for it and one exists (and it is not
    the candidate itself)."""
    import mlflow

    if cfg.evaluate.baseline == "start":
        from rlaif.lifecycle.rounds import read_start

        began = read_start(start)
        return start, "starting policy" + (f" (champion v{began.version}, round {began.round}'s start)"
                                           if began.version else "")
    from rlaif.lifecycle.promotion import champion_policy

    own = read_registered(registered)
    path, version = champion_policy(own.name if own else "rlaif-policy", scratch)
    if path is None or (own is not None and str(version) == own.version):
        mlflow.set_tag("evaluation.baseline", "starting policy")
        return start, "starting policy (no other champion yet)"
    mlflow.set_tag("evaluation.baseline", f"champion v{version}")
    return path, f"champion v{version}"


def tag_independence(independence: dict) -> None:
    import mlflow

    from rlaif.evaluation.independence import describe

    mlflow.set_tags({
        "evaluation.judge": describe(independence["evaluation_judge"]),
        "evaluation.independent": str(independence["independent"]).lower(),
        "evaluation.independence_waiver": str(independence["waived"]).lower(),
    })


def promote(cfg, summary: dict, registered: Path | None, label_gate: Path | None, run_id: str) -> dict:
    from rlaif.lifecycle import promotion

    over_refusal = [r["candidate"]["over_refusal_rate"] for r in summary["suites"].values()]
    evidence = {"win_rate": summary["win"]["win_rate"], "harmless_rate": summary["candidate"]["harmless_rate"],
                "over_refusal_rate": max(over_refusal) if over_refusal else float("nan"),
                "worst_slice_delta": summary["worst_slice"]["delta"],
                "label_gate_passed": promotion.label_gate_passed(label_gate),
                "reward_hacking": summary["reward_hacking"]["flagged"]}
    decision = promotion.decide(cfg.evaluate.gates, evidence)
    own = read_registered(registered)
    version = own.model_dump() if own else None
    return {**promotion.apply(decision, version, run_id, cfg.evaluate.promote, cfg.evaluate.approval),
            "approval": cfg.evaluate.approval, "evidence": evidence}


def metrics_file(summary: dict) -> dict:
    """What `dvc metrics show` lists: the headline figures, not the per-type tables."""
    keep = {k: summary[k] for k in ("baseline", "candidate", "delta", "n_prompts", "n_samples_per_policy")}
    keep["win"] = {k: v for k, v in summary["win"].items() if k != "judge"}
    keep["suites"] = {name: {p: {k: v for k, v in r[p].items() if k != "by_type"} for p in r}
                      for name, r in summary["suites"].items()}
    keep["yardsticks"] = {name: {p: {k: v for k, v in r[p].items() if k != "by_type"} for p in r}
                          for name, r in summary["yardsticks"].items() if isinstance(r, dict)}
    keep["worst_slice_delta"] = summary["worst_slice"]["delta"]
    keep["reward_hacking"] = {k: (float(v) if isinstance(v, bool) else v)
                              for k, v in summary["reward_hacking"].items()}
    keep["promoted"] = float(summary["promotion"]["champion_moved"])
    return keep


def flat_metrics(summary: dict) -> dict[str, float]:
    from rlaif.lifecycle.tracking import flatten

    flat = flatten(metrics_file(summary))
    return {k.replace("/", "_"): v for k, v in flat.items() if isinstance(v, (int, float)) and not math.isnan(v)}


def log_metrics(run, summary: dict) -> None:
    """To the stage's MLflow run: every figure of the metrics file, the candidate's rates and their change as the
    headline, the win rate and whether champion moved."""
    run.metrics(flat_metrics(summary), headline=False)
    for name in ("candidate", "delta"):
        run.metrics({f"{name}/{k}": v for k, v in summary[name].items()})
    run.metrics({"win_rate": summary["win"]["win_rate"], "promoted": float(summary["promotion"]["champion_moved"])})
