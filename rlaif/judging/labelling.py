"""Labels from an AI judge: the pairs of a prompt's candidates, each judged in both orders with the swap undone
(or scored pointwise), critique-and-revision pairs, and the judge's agreement with human gold pairs.

One place for what the judge stage, judge-eval and the evaluation's win rate all do with a judge. A pair is
consistent when both orders pick the same answer. A pair judged in one order, scored pointwise, judged by an
order-invariant judge (one that scores each answer on its own, asked once per pair) or preferred by
construction (a revision) records no position measurement (`consistent` null), so the label gate can say its
position checks do not apply instead of passing them by construction.
"""

from __future__ import annotations

import random
from itertools import combinations

from rlaif.data.io import GoldPair
from rlaif.data.records import CandidateSet, Label, Revision

PAIR_FIELDS = ("pair_id", "prompt_id", "prompt", "response_a", "response_b")


def candidate_pairs(rows: list[CandidateSet]) -> list[dict]:
    """Every pair of distinct answers of each prompt (identical answers carry no preference)."""
    pairs = []
    for row in rows:
        candidates = row.candidates
        for i, j in combinations(range(len(candidates)), 2):
            if candidates[i].strip() == candidates[j].strip():
                continue
            pairs.append({"pair_id": f"{row.prompt_id}:{i}-{j}", "prompt_id": row.prompt_id,
                          "prompt": row.prompt, "response_a": candidates[i], "response_b": candidates[j]})
    return pairs


def label(pair: dict, judge: str, principle: str | None, **values) -> dict:
    """The one way a label row is built: the pair, the verdict's values, nulls for what was not measured."""
    fields = {"p_a_when_first": None, "p_b_when_first": None, "prob_a": None, "consistent": None, "status": "ok",
              "error": None, **values}
    return Label(**{k: pair[k] for k in PAIR_FIELDS}, principle=principle, judge=judge, **fields).row()


def judge_pairs(settings, judge_model, pairs: list[dict], principles: list, both_orders: bool | None = None):
    """Labels (one per pair) and audit rows (one per judgment), in the mode the judge settings (`judge:`) choose."""
    from rlaif.judging.judges.base import order_invariant

    if settings.mode == "pointwise":
        return _judge_pointwise(judge_model, pairs, principles, settings.score_temperature)
    if order_invariant(judge_model):
        return _judge_once(judge_model, pairs, principles)
    return _judge_both_orders(settings.both_orders if both_orders is None else both_orders, judge_model, pairs,
                              principles)


def _judge_pointwise(judge_model, pairs, principles, temperature: float):
    """Score each answer 1-10 on its own; P(a better) = sigmoid((score a - score b) / T).
    Scored separately, so there is no order to be consistent across: nothing is measured about position."""
    from rlaif.judging.judges import ScoreItem
    from rlaif.judging.judges.base import p_first_from_scores

    items = [ScoreItem(p["prompt"], p[side], pr) for p, pr in zip(pairs, principles) for side in ("response_a", "response_b")]
    scores = judge_model.score(items)
    labels, audit = [], []
    for index, pair in enumerate(pairs):
        s_a, s_b = scores[2 * index], scores[2 * index + 1]
        for order, s in (("score_a", s_a), ("score_b", s_b)):
            audit.append({"pair_id": pair["pair_id"], "order": order, "principle": s.principle, "p_first": None,
                          "score": s.value, "status": s.status, "error": s.error, "raw": s.raw,
                          "backend": judge_model.backend, "model": judge_model.model_name,
                          "latency_ms": round(s.latency_ms, 3), "rendered": s.rendered})
        scored = {"score_a": s_a.value, "score_b": s_b.value}
        failed = [s.error or "failed" for s in (s_a, s_b) if s.status != "ok"]
        if failed:
            labels.append(label(pair, judge_model.judge_id, s_a.principle, status="failed", error="; ".join(failed),
                                **scored))
            continue
        # no answer was shown first: the label records no position measurement (p_*_when_first and
        # consistent stay null), and validate's position checks say "not applicable" rather than "passed"
        labels.append(label(pair, judge_model.judge_id, s_a.principle,
                            prob_a=p_first_from_scores(s_a.value, s_b.value, temperature), **scored))
    return labels, audit


def _audit_row(pair: dict, order: str, verdict, judge_model) -> dict:
    return {"pair_id": pair["pair_id"], "order": order, "principle": verdict.principle, "p_first": verdict.p_first,
            "score": None, "status": verdict.status, "error": verdict.error, "raw": verdict.raw,
            "backend": judge_model.backend, "model": judge_model.model_name,
            "latency_ms": round(verdict.latency_ms, 3), "rendered": verdict.rendered}


def _judge_once(judge_model, pairs, principles):
    """An order-invariant judge is asked once per pair (order ab): its verdict on ba would be 1 - this one by
    construction. Its label carries P(a better) and no position measurement (p_*_when_first, consistent null)."""
    from rlaif.judging.judges import JudgeItem

    verdicts = judge_model.judge([JudgeItem(p["prompt"], p["response_a"], p["response_b"], pr)
                                  for p, pr in zip(pairs, principles)])
    labels, audit = [], []
    for pair, verdict in zip(pairs, verdicts):
        audit.append(_audit_row(pair, "ab", verdict, judge_model))
        if verdict.status != "ok":
            labels.append(label(pair, judge_model.judge_id, verdict.principle, status="failed",
                                error=verdict.error or "failed"))
        else:
            labels.append(label(pair, judge_model.judge_id, verdict.principle, prob_a=verdict.p_first))
    return labels, audit


def _judge_both_orders(both_orders: bool, judge_model, pairs, principles):
    from rlaif.judging.judges import JudgeItem

    items = [JudgeItem(p["prompt"], p["response_a"], p["response_b"], pr) for p, pr in zip(pairs, principles)]
    ab = judge_model.judge(items)
    ba = judge_model.judge([JudgeItem(i.prompt, i.second, i.first, i.principle_ids) for i in items]) \
        if both_orders else [None] * len(items)
    labels, audit = [], []
    for pair, v_ab, v_ba in zip(pairs, ab, ba):
        for order, verdict in (("ab", v_ab), ("ba", v_ba)):
            if verdict is not None:
                audit.append(_audit_row(pair, order, verdict, judge_model))
        labels.append(combine_orders(pair, v_ab, v_ba, judge_model.judge_id))
    return labels, audit


def swap_undone(p_first_ab: float, p_first_ba: float) -> float:
    """P(a better) from both orders: p_first when a is shown first, 1 - p_first when b is; averaged."""
    return (p_first_ab + (1.0 - p_first_ba)) / 2


def combine_orders(pair: dict, v_ab, v_ba, judge_id: str) -> dict:
    """Undo the swap: P(a better) is p_first in order ab and 1 - p_first in order ba; average them."""
    failed = [v for v in (v_ab, v_ba) if v is not None and v.status != "ok"]
    if failed:
        return label(pair, judge_id, v_ab.principle, status="failed", error="; ".join(v.error or "failed" for v in failed))
    if v_ba is None:  # one order: consistency not measured
        return label(pair, judge_id, v_ab.principle, p_a_when_first=v_ab.p_first, prob_a=v_ab.p_first)
    return label(pair, judge_id, v_ab.principle, p_a_when_first=v_ab.p_first, p_b_when_first=v_ba.p_first,
                 prob_a=swap_undone(v_ab.p_first, v_ba.p_first),
                 consistent=(v_ab.p_first > 0.5) == (v_ba.p_first < 0.5))


def revision_pairs(rows: list[Revision], seed: int) -> list[dict]:
    """Critique and revision (Constitutional AI, supervised phase): the revision is the preferred answer, by
    construction (no position measurement). A seeded coin puts it first or second."""
    rng = random.Random(seed)
    labels = []
    for row in rows:
        if row.status != "ok" or row.revision.strip() == row.original.strip():
            continue
        revision_first = rng.random() < 0.5
        a, b = (row.revision, row.original) if revision_first else (row.original, row.revision)
        pair = {"pair_id": f"{row.prompt_id}:revision", "prompt_id": row.prompt_id, "prompt": row.prompt,
                "response_a": a, "response_b": b}
        labels.append(label(pair, row.judge, ",".join(row.principles), prob_a=1.0 if revision_first else 0.0,
                            source="critique_revise"))
    return labels


def position_consistency(labels: list[dict]) -> float | None:
    """The share of pairs judged in both orders whose two verdicts agree; None when no pair was (pointwise)."""
    measured = [lab["consistent"] for lab in labels if lab["consistent"] is not None]
    return sum(map(bool, measured)) / len(measured) if measured else None


def judge_bias_suite(settings, judge_model, suite: dict) -> tuple[dict, list[dict]]:
    """The judge bias suite (rlaif/judging/bias.py): every pair judged in both orders (once for an order-invariant
    judge) under its own principle; returns the figures and the judged pairs."""
    from rlaif.judging.bias import bias_figures, suite_pairs

    pairs = suite_pairs(suite)
    labels, _ = judge_pairs(settings, judge_model, pairs, [[p["principle"]] for p in pairs], both_orders=True)
    judged = [{**pair, "prob_a": label["prob_a"], "status": label["status"], "error": label["error"]}
              for pair, label in zip(pairs, labels)]
    return bias_figures(pairs, labels), judged


def gold_agreement(settings, judge_model, gold_pairs: list[GoldPair]) -> dict:
    """Share of human-labelled pairs where the judge (both orders averaged) prefers the human's choice."""
    pairs = [{"pair_id": g.id, "prompt_id": g.id, "prompt": g.prompt, "response_a": g.response_a,
              "response_b": g.response_b} for g in gold_pairs]
    # gold pairs are always judged in both orders, whatever the params say (once by an order-invariant judge)
    labels, _ = judge_pairs(settings, judge_model, pairs, [None] * len(pairs), both_orders=True)
    verdicts = []
    agree = 0
    for g, label in zip(gold_pairs, labels):
        judge_pick = None if label["prob_a"] is None else ("a" if label["prob_a"] > 0.5 else "b")
        agree += judge_pick == g.human_preference
        verdicts.append({"id": g.id, "human": g.human_preference, "judge": judge_pick, "prob_a": label["prob_a"],
                         "consistent": label["consistent"], "status": label["status"]})
    return {"agreement": agree / len(gold_pairs), "n": len(gold_pairs), "verdicts": verdicts}
