"""judge: pairwise AI preferences over the candidates, under the constitution.

Every pair of distinct candidates of a prompt is judged in both orders (a first, then b first);
the soft label P(a better) averages the two, and a pair is consistent when both orders pick the
same answer. Every ordered judgment goes to the audit log. The judge is also run on the
human-labelled gold pairs, and its agreement with people is reported.
"""

from __future__ import annotations

import random
import time
from itertools import combinations
from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.io import GoldPair, read_constitution, read_jsonl, read_rows, read_templates, write_json, write_jsonl


def judge(cfg: PipelineConfig, candidates: Path, constitution: Path, templates: Path, gold: Path,
          out_dir: Path, metrics_path: Path) -> Path:
    from rlaif.generation import progress
    from rlaif.judges import build_judge
    from rlaif.tracking import stage_run

    charter = read_constitution(constitution)
    prompts_templates = read_templates(templates)
    gold_pairs = read_rows(gold, GoldPair, unique_key="id")
    pairs = _candidate_pairs(read_jsonl(candidates))
    inputs = {"candidates": candidates, "constitution": constitution, "templates": templates, "gold": gold}
    with stage_run("judge", cfg, inputs=inputs) as run:
        import mlflow

        mlflow.set_tags({"constitution.name": charter.name, "constitution.version": charter.version})
        judge_model = build_judge(cfg, charter, prompts_templates)
        principles = _principles_per_pair(cfg, charter, len(pairs))
        started = time.perf_counter()
        with progress() as bar:
            task = bar.add_task("judge pairs (both orders)", total=len(pairs))
            labels, audit = [], []
            for start in range(0, len(pairs), 256):
                chunk = pairs[start : start + 256]
                l, a = _judge_both_orders(cfg.judge.both_orders, judge_model, chunk, principles[start : start + 256])
                labels += l
                audit += a
                bar.advance(task, len(chunk))
        seconds = time.perf_counter() - started
        out_dir = Path(out_dir)
        write_jsonl(out_dir / "audit.jsonl", audit)
        write_jsonl(out_dir / "labels.jsonl", labels)
        gold_result = gold_agreement(judge_model, gold_pairs)
        write_jsonl(out_dir / "gold_verdicts.jsonl", gold_result.pop("verdicts"))
        ok = [l for l in labels if l["status"] == "ok"]
        metrics = {
            "n_pairs": len(labels),
            "n_failed": len(labels) - len(ok),
            "position_consistency": sum(l["consistent"] for l in ok) / max(1, len(ok)),
            "pairs_per_second": len(labels) / max(seconds, 1e-9),
            **{f"gold_{k}": v for k, v in gold_result.items()},
        }
        write_json(metrics_path, metrics)
        run.metrics(metrics)
        for name in ("labels.jsonl", "audit.jsonl", "gold_verdicts.jsonl"):
            run.artifact(out_dir / name, "judge")
    return out_dir / "labels.jsonl"


def _candidate_pairs(rows: list[dict]) -> list[dict]:
    pairs = []
    for row in rows:
        candidates = row["candidates"]
        for i, j in combinations(range(len(candidates)), 2):
            if candidates[i].strip() == candidates[j].strip():
                continue  # identical answers carry no preference
            pairs.append({"pair_id": f"{row['prompt_id']}:{i}-{j}", "prompt_id": row["prompt_id"],
                          "prompt": row["prompt"], "response_a": candidates[i], "response_b": candidates[j]})
    return pairs


def _principles_per_pair(cfg: PipelineConfig, charter, n: int) -> list[list[str] | None]:
    """'all': every principle votes; 'sample': one principle per comparison, seeded (Constitutional AI)."""
    if cfg.judge.principle_mode == "all":
        return [None] * n
    rng = random.Random(cfg.seed)
    ids = [p.id for p in charter.of_kind("comparison")]
    return [[rng.choice(ids)] for _ in range(n)]


def _judge_both_orders(both_orders: bool, judge_model, pairs, principles):
    from rlaif.judges import JudgeItem

    items = [JudgeItem(p["prompt"], p["response_a"], p["response_b"], pr) for p, pr in zip(pairs, principles)]
    ab = judge_model.judge(items)
    ba = judge_model.judge([JudgeItem(i.prompt, i.second, i.first, i.principle_ids) for i in items]) \
        if both_orders else [None] * len(items)
    labels, audit = [], []
    for pair, v_ab, v_ba in zip(pairs, ab, ba):
        for order, verdict in (("ab", v_ab), ("ba", v_ba)):
            if verdict is not None:
                audit.append({"pair_id": pair["pair_id"], "order": order, "principle": verdict.principle,
                              "p_first": verdict.p_first, "status": verdict.status, "error": verdict.error,
                              "raw": verdict.raw, "backend": judge_model.backend, "model": judge_model.model_name,
                              "latency_ms": round(verdict.latency_ms, 3)})
        labels.append(_combine(pair, v_ab, v_ba, judge_model.judge_id))
    return labels, audit


def _combine(pair: dict, v_ab, v_ba, judge_id: str) -> dict:
    """Undo the swap: P(a better) is p_first in order ab and 1 - p_first in order ba; average them."""
    failed = [v for v in (v_ab, v_ba) if v is not None and v.status != "ok"]
    row = {**pair, "p_a_when_first": None, "p_b_when_first": None, "prob_a": None, "consistent": None,
           "principle": v_ab.principle, "status": "ok", "error": None, "judge": judge_id}
    if failed:
        return {**row, "status": "failed", "error": "; ".join(v.error or "failed" for v in failed)}
    row["p_a_when_first"] = v_ab.p_first
    if v_ba is None:
        return {**row, "prob_a": v_ab.p_first, "consistent": True}
    row["p_b_when_first"] = v_ba.p_first
    row["prob_a"] = (v_ab.p_first + (1.0 - v_ba.p_first)) / 2
    row["consistent"] = (v_ab.p_first > 0.5) == (v_ba.p_first < 0.5)
    return row


def gold_agreement(judge_model, gold_pairs: list[GoldPair]) -> dict:
    """Share of human-labelled pairs where the judge (both orders averaged) prefers the human's choice."""
    pairs = [{"pair_id": g.id, "prompt_id": g.id, "prompt": g.prompt, "response_a": g.response_a,
              "response_b": g.response_b} for g in gold_pairs]
    # gold pairs are always judged in both orders, whatever the params say
    labels, _ = _judge_both_orders(True, judge_model, pairs, [None] * len(pairs))
    verdicts = []
    agree = 0
    for g, label in zip(gold_pairs, labels):
        judge_pick = None if label["prob_a"] is None else ("a" if label["prob_a"] > 0.5 else "b")
        agree += judge_pick == g.human_preference
        verdicts.append({"id": g.id, "human": g.human_preference, "judge": judge_pick, "prob_a": label["prob_a"],
                         "consistent": label["consistent"], "status": label["status"]})
    return {"agreement": agree / len(gold_pairs), "n": len(gold_pairs), "verdicts": verdicts}
