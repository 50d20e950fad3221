"""judge: pairwise AI preferences over the candidates, under the constitution.

Every pair of distinct candidates of a prompt is judged in both orders (a first, then b first);
the soft label P(a better) averages the two, and a pair is consistent when both orders pick the
same answer. In pointwise mode each answer gets a 1-10 score instead and P(a better) comes from
the score gap. Revisions from the critique_revise stage join as pairs where the revision wins.

Every judgment goes to the audit log (parquet: the rendered judge prompt, raw output, probabilities,
backend, model, latency), joinable to the labels by pair_id. Finished batches are checkpointed, so
a killed stage resumes without judging a pair twice. The judge is also run on the human-labelled
gold pairs, and its agreement with people is reported.
"""

from __future__ import annotations

import random
import time
from itertools import combinations
from pathlib import Path

from rlaif.checkpoint import CHECKPOINT_DIR, JsonlCheckpoint, fingerprint
from rlaif.config import PipelineConfig
from rlaif.io import GoldPair, read_constitution, read_jsonl, read_rows, read_templates, write_json, write_jsonl


# where the judging runs, not what it decides: a run killed on Ray resumes in-process and the other way round
EXECUTION = {"executor", "ray_address", "ray_shards", "ray_num_gpus_per_shard"}


def judge(cfg: PipelineConfig, candidates: Path, constitution: Path, templates: Path, gold: Path,
          revisions: Path | None, out_dir: Path, metrics_path: Path) -> Path:
    from rlaif.judges import build_judge
    from rlaif.tracking import stage_run

    charter = read_constitution(constitution)
    judge_templates = read_templates(templates)
    gold_pairs = read_rows(gold, GoldPair, unique_key="id")
    pairs = _candidate_pairs(read_jsonl(candidates))
    revised = _revision_pairs(read_jsonl(revisions), cfg.seed) if revisions else []
    inputs = {"candidates": candidates, "constitution": constitution, "templates": templates, "gold": gold}
    with stage_run("judge", cfg, inputs=inputs, outputs={"judge": Path(out_dir)}) as run:
        import mlflow

        mlflow.set_tags({"constitution.name": charter.name, "constitution.version": charter.version})
        judge_model = build_judge(cfg, charter, judge_templates)
        mlflow.set_tag("judge.id", judge_model.judge_id)
        checkpoint = JsonlCheckpoint(CHECKPOINT_DIR / "judge-{}.jsonl".format(fingerprint(
            [candidates, constitution, templates], {"seed": cfg.seed, "judge": cfg.judge.model_dump(mode="json", exclude=EXECUTION)})),
            key="pair_id")
        resumed, seconds = _judge_with_checkpoints(cfg, judge_model, charter, pairs, checkpoint)
        done = checkpoint.load()
        labels = [done[p["pair_id"]]["label"] for p in pairs] + revised
        audit = [row for p in pairs for row in done[p["pair_id"]]["audit"]]

        out_dir = Path(out_dir)
        write_jsonl(out_dir / "labels.jsonl", labels)
        write_audit(out_dir / "audit.parquet", audit)
        gold_result = gold_agreement(cfg, judge_model, gold_pairs)
        write_jsonl(out_dir / "gold_verdicts.jsonl", gold_result.pop("verdicts"))
        metrics = _metrics(labels, audit, resumed, len(pairs) - resumed, seconds, len(revised), gold_result)
        if judge_model.backend == "jury":
            from rlaif.judges.jury import jury_agreement

            agreement = jury_agreement(audit)
            write_json(out_dir / "jury_agreement.json", agreement)
            metrics["jury_mean_agreement"] = agreement["mean_agreement"]
        write_json(metrics_path, metrics)
        run.metrics(metrics)
        _log_audit(out_dir / "audit.parquet")
        for name in ("labels.jsonl", "audit.parquet", "gold_verdicts.jsonl", "jury_agreement.json"):
            run.artifact(out_dir / name, "judge")
        checkpoint.remove()  # outputs are written: the next run starts afresh
    return out_dir / "labels.jsonl"


def _judge_with_checkpoints(cfg: PipelineConfig, judge_model, charter, pairs: list[dict],
                            checkpoint: JsonlCheckpoint) -> tuple[int, float]:
    """Judge the pairs not yet in the checkpoint, appending each finished chunk (`checkpoint_every` pairs)
    to it. With `judge.executor: ray` the chunks are judged on Ray shards, each with its own judge, and
    checkpointed as they finish, in any order. Returns (pairs found already judged, seconds spent judging the rest)."""
    from rich.console import Console

    from rlaif.generation import progress

    principles = _principles_per_pair(cfg, charter, len(pairs))  # drawn for all pairs: the same on resume
    done = checkpoint.load()
    todo = [(p, pr) for p, pr in zip(pairs, principles) if p["pair_id"] not in done]
    if done:
        Console(stderr=True).print(f"judge: resuming from {checkpoint.path}: {len(pairs) - len(todo)} of {len(pairs)} pairs "
                      f"already judged, {len(todo)} to go")
    started = time.perf_counter()
    step = cfg.judge.checkpoint_every
    chunks = [todo[start : start + step] for start in range(0, len(todo), step)]
    with progress() as bar:
        task = bar.add_task(f"judge pairs ({cfg.judge.mode})", total=len(pairs), completed=len(pairs) - len(todo))

        def finished(chunk: list, labels: list[dict], audit: list[dict]) -> None:
            by_pair: dict[str, list[dict]] = {}
            for row in audit:
                by_pair.setdefault(row["pair_id"], []).append(row)
            checkpoint.append([{"pair_id": l["pair_id"], "label": l, "audit": by_pair.get(l["pair_id"], [])}
                               for l in labels])
            bar.advance(task, len(chunk))

        if cfg.judge.executor == "ray" and chunks:
            _judge_on_ray(cfg, judge_model, charter, chunks, finished)
        else:
            for chunk in chunks:
                finished(chunk, *judge_pairs(cfg, judge_model, [c[0] for c in chunk], [c[1] for c in chunk]))
    return len(pairs) - len(todo), time.perf_counter() - started


def _judge_on_ray(cfg: PipelineConfig, judge_model, charter, chunks: list[list], finished) -> None:
    """The chunks on Ray shards (rlaif/scaleout.py): each shard builds the judge from the same params,
    constitution and templates as this process, and `finished` checkpoints each chunk as it comes back."""
    from rlaif.judges import JudgeError
    from rlaif.scaleout import run_sharded

    templates = _judge_templates(judge_model)
    run_sharded(cfg.judge, "judge", JudgeError, _JudgeShard, (cfg, charter, templates), "judge",
                [([c[0] for c in chunk], [c[1] for c in chunk]) for chunk in chunks],
                lambda index, result: finished(chunks[index], *result))


def _judge_templates(judge_model) -> dict[str, str]:
    """The templates the judge was built with (a jury's members share them)."""
    return judge_model.members[0].templates if judge_model.backend == "jury" else judge_model.templates


class _JudgeShard:
    """One Ray shard of the judge stage: the judge built once, then the chunks sent to it judged as in-process."""

    def __init__(self, cfg: PipelineConfig, charter, templates: dict[str, str]):
        from rlaif.judges import build_judge

        self.cfg = cfg
        self.judge_model = build_judge(cfg, charter, templates)

    def judge(self, pairs: list[dict], principles: list):
        return judge_pairs(self.cfg, self.judge_model, pairs, principles)


def _metrics(labels, audit, resumed: int, judged_now: int, seconds: float, n_revised: int, gold: dict) -> dict:
    ok = [l for l in labels if l["status"] == "ok"]
    return {
        "n_pairs": len(labels),
        "n_failed": len(labels) - len(ok),
        "n_revision_pairs": n_revised,
        "position_consistency": sum(bool(l["consistent"]) for l in ok) / max(1, len(ok)),
        "resumed_pairs": resumed,
        "pairs_per_second": judged_now / seconds if judged_now and seconds > 0 else None,
        "mean_latency_ms": sum(a["latency_ms"] for a in audit) / max(1, len(audit)),
        **{f"gold_{k}": v for k, v in gold.items()},
    }


AUDIT_COLUMNS = ["pair_id", "order", "principle", "p_first", "score", "status", "error", "backend", "model",
                 "latency_ms", "rendered", "raw"]


def write_audit(path: Path, audit: list[dict]) -> Path:
    """The audit log as a parquet dataset (raw output as JSON text), joinable to labels by pair_id."""
    import json

    import pandas as pd

    frame = pd.DataFrame([{**row, "raw": json.dumps(row.get("raw") or {}, ensure_ascii=False)} for row in audit],
                         columns=AUDIT_COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def _log_audit(path: Path) -> None:
    import warnings

    import mlflow
    import pandas as pd

    frame = pd.read_parquet(path)
    with warnings.catch_warnings():  # MLflow cannot tell which kind of local source a path is; either is right
        warnings.simplefilter("ignore", UserWarning)
        mlflow.log_input(mlflow.data.from_pandas(frame, source=str(path), name="judge-audit"), context="audit")


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


def judge_pairs(cfg: PipelineConfig, judge_model, pairs: list[dict], principles: list, both_orders: bool | None = None):
    """Labels (one per pair) and audit rows (one per judgment), in the mode the params choose."""
    if cfg.judge.mode == "pointwise":
        return _judge_pointwise(judge_model, pairs, principles, cfg.judge.score_temperature)
    return _judge_both_orders(cfg.judge.both_orders if both_orders is None else both_orders, judge_model, pairs,
                              principles)


def _judge_pointwise(judge_model, pairs, principles, temperature: float):
    """Score each answer 1-10 on its own; P(a better) = sigmoid((score a - score b) / T).
    Scored separately, so position-consistent by construction."""
    from rlaif.judges import ScoreItem
    from rlaif.judges.base import p_first_from_scores

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
        row = {**pair, "p_a_when_first": None, "p_b_when_first": None, "prob_a": None, "consistent": None,
               "principle": s_a.principle, "status": "ok", "error": None, "judge": judge_model.judge_id,
               "score_a": s_a.value, "score_b": s_b.value}
        failed = [s.error or "failed" for s in (s_a, s_b) if s.status != "ok"]
        if failed:
            labels.append({**row, "status": "failed", "error": "; ".join(failed)})
            continue
        prob_a = p_first_from_scores(s_a.value, s_b.value, temperature)
        labels.append({**row, "p_a_when_first": prob_a, "p_b_when_first": 1.0 - prob_a, "prob_a": prob_a,
                       "consistent": True})
    return labels, audit


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
                              "p_first": verdict.p_first, "score": None, "status": verdict.status,
                              "error": verdict.error, "raw": verdict.raw, "backend": judge_model.backend,
                              "model": judge_model.model_name, "latency_ms": round(verdict.latency_ms, 3),
                              "rendered": verdict.rendered})
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


def _revision_pairs(rows: list[dict], seed: int) -> list[dict]:
    """Critique and revision (Constitutional AI, supervised phase): the revision is the preferred answer.
    A seeded coin puts it first or second, so position statistics stay meaningful."""
    rng = random.Random(seed)
    labels = []
    for row in rows:
        if row["status"] != "ok" or row["revision"].strip() == row["original"].strip():
            continue
        revision_first = rng.random() < 0.5
        a, b = (row["revision"], row["original"]) if revision_first else (row["original"], row["revision"])
        labels.append({"pair_id": f"{row['prompt_id']}:revision", "prompt_id": row["prompt_id"], "prompt": row["prompt"],
                       "response_a": a, "response_b": b, "p_a_when_first": None, "p_b_when_first": None,
                       "prob_a": 1.0 if revision_first else 0.0, "consistent": True,
                       "principle": ",".join(row["principles"]), "status": "ok", "error": None,
                       "judge": row["judge"], "source": "critique_revise"})
    return labels


def gold_agreement(cfg: PipelineConfig, judge_model, gold_pairs: list[GoldPair]) -> dict:
    """Share of human-labelled pairs where the judge (both orders averaged) prefers the human's choice."""
    pairs = [{"pair_id": g.id, "prompt_id": g.id, "prompt": g.prompt, "response_a": g.response_a,
              "response_b": g.response_b} for g in gold_pairs]
    # gold pairs are always judged in both orders, whatever the params say
    labels, _ = judge_pairs(cfg, judge_model, pairs, [None] * len(pairs), both_orders=True)
    verdicts = []
    agree = 0
    for g, label in zip(gold_pairs, labels):
        judge_pick = None if label["prob_a"] is None else ("a" if label["prob_a"] > 0.5 else "b")
        agree += judge_pick == g.human_preference
        verdicts.append({"id": g.id, "human": g.human_preference, "judge": judge_pick, "prob_a": label["prob_a"],
                         "consistent": label["consistent"], "status": label["status"]})
    return {"agreement": agree / len(gold_pairs), "n": len(gold_pairs), "verdicts": verdicts}
