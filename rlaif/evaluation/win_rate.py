"""The win rate of the candidate against the baseline, by the evaluation judge (which did not train the policy)."""

from __future__ import annotations

from pathlib import Path

from rlaif.data.io import Constitution, write_jsonl
from rlaif.errors import InputError
from rlaif.evaluation.behaviour import BehaviourGrader


def pairs_for_win_rate(samples: list[dict]) -> list[dict]:
    """The baseline's and the candidate's k-th sample for the same prompt, as one pair (a: candidate)."""
    base = {(s["prompt_id"], s["sample"]): s for s in samples if s["policy"] == "baseline"}
    return [{"pair_id": f"{s['prompt_id']}:{s['sample']}", "prompt_id": s["prompt_id"], "prompt": s["prompt"],
             "response_a": s["answer"], "response_b": base[(s["prompt_id"], s["sample"])]["answer"]}
            for s in samples if s["policy"] == "candidate"]


def win_rate(cfg, samples: list[dict], grader: BehaviourGrader, expected: dict[str, str],
              constitution: Path | None, templates: Path | None, out_dir: Path) -> dict:
    """P(candidate better) per pair, by the evaluation judge in both orders (once for an order-invariant judge
    such as the rubric); win above 0.5, loss below, tie at 0.5. Win rate counts a tie as half a win."""
    from rlaif.judging.judges import build_judge
    from rlaif.judging.labelling import judge_pairs

    pairs = pairs_for_win_rate(samples)
    settings = cfg.evaluate.judge
    charter, judge_templates = None, None
    if settings.backend != "rubric":  # the rubric has no model and no constitution
        charter, judge_templates = _judge_files(settings.constitution or constitution, templates)
    judge_model = build_judge(settings, charter, judge_templates, grader=grader, expected=expected)
    labels, _ = judge_pairs(settings, judge_model, pairs, [None] * len(pairs), both_orders=True)
    probs = [label["prob_a"] if label["status"] == "ok" else None for label in labels]
    wins = sum(p is not None and p > 0.5 for p in probs)
    losses = sum(p is not None and p < 0.5 for p in probs)
    failed = sum(p is None for p in probs)
    ties = len(probs) - wins - losses - failed
    judged = len(probs) - failed
    write_jsonl(Path(out_dir) / "win_pairs.jsonl", [{**p, "p_candidate_better": prob} for p, prob in zip(pairs, probs)])
    return {"judge": judge_model.judge_id, "n_pairs": len(pairs), "wins": wins, "losses": losses, "ties": ties,
            "failed": failed, "win_rate": (wins + 0.5 * ties) / judged if judged else float("nan")}


def _judge_files(constitution: Path | None, templates: Path | None) -> tuple[Constitution, dict[str, str]]:
    """A model-based evaluation judge's constitution (its own, else the training judge's) and templates."""
    from rlaif.data.io import read_constitution, read_templates

    if constitution is None or templates is None:
        raise InputError("evaluate.judge: a judge with a model needs a constitution (evaluate --constitution or "
                         "evaluate.judge.constitution) and judge templates (evaluate --templates)")
    return read_constitution(constitution), read_templates(templates)
