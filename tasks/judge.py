"""judge: pairwise AI preferences over the candidates, under the constitution.

Every pair of distinct candidates of a prompt is judged in both orders (a first, then b first);
the soft label P(a better) averages the two, and a pair is consistent when both orders pick the
same answer. An order-invariant judge (the embedding judge scores each answer on its own) is asked
once per pair, and its labels record no position measurement. In pointwise mode each answer gets a
1-10 score instead and P(a better) comes from the score gap. Revisions from the critique_revise stage join as pairs where the revision wins.

Every judgment goes to the audit log (parquet: the rendered judge prompt, raw output, probabilities,
backend, model; timings go to MLflow only), joinable to the labels by pair_id. Finished batches are checkpointed, so
a killed stage resumes without judging a pair twice. The judge is also run on the human-labelled
gold pairs, and its agreement with people is reported.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from rlaif.checkpoint import CHECKPOINT_DIR, JsonlCheckpoint, fingerprint
from rlaif.config import PipelineConfig
from rlaif.io import GoldPair, read_constitution, read_jsonl, read_rows, read_templates, write_json, write_jsonl
from rlaif.judge_bias import bias_metrics, read_suite
from rlaif.labelling import (candidate_pairs, gold_agreement, judge_bias_suite, judge_pairs, position_consistency,
                             revision_pairs)
from rlaif.records import read_candidates


# where the judging runs, not what it decides: a run killed on Ray resumes in-process and the other way round
EXECUTION = {"executor", "ray_address", "ray_shards", "ray_num_gpus_per_shard"}


def judge(cfg: PipelineConfig, candidates: Path, constitution: Path, templates: Path, gold: Path,
          revisions: Path | None, out_dir: Path, metrics_path: Path, bias_suite: Path | None = None) -> Path:
    from rlaif.judges import build_judge
    from rlaif.tracking import stage_run

    charter = read_constitution(constitution)
    judge_templates = read_templates(templates)
    gold_pairs = read_rows(gold, GoldPair, unique_key="id")
    suite = read_suite(bias_suite) if bias_suite else None  # read before judging: a bad suite fails at once
    pairs = candidate_pairs(read_candidates(candidates))
    revised = revision_pairs(read_jsonl(revisions), cfg.seed) if revisions else []
    inputs = {"candidates": candidates, "constitution": constitution, "templates": templates, "gold": gold,
              **({"bias_suite": bias_suite} if bias_suite else {})}
    with stage_run("judge", cfg, inputs=inputs, outputs={"judge": Path(out_dir)}) as run:
        import mlflow

        mlflow.set_tags({"constitution.name": charter.name, "constitution.version": charter.version})
        judge_model = build_judge(cfg.judge, charter, judge_templates)
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
        gold_result = gold_agreement(cfg.judge, judge_model, gold_pairs)
        write_jsonl(out_dir / "gold_verdicts.jsonl", gold_result.pop("verdicts"))
        metrics = _metrics(labels, audit, resumed, len(pairs) - resumed, seconds, len(revised), gold_result)
        if suite is not None:  # the judge's biases, measured before validate lets its labels train anything
            figures, judged = judge_bias_suite(cfg.judge, judge_model, suite)
            write_json(out_dir / "bias.json", {"judge": judge_model.judge_id, "suite": str(bias_suite), **figures,
                                               "judged_pairs": judged})
            metrics.update(bias_metrics(figures))
        if judge_model.backend == "jury":
            from rlaif.judges.jury import jury_agreement

            agreement = jury_agreement(audit)
            write_json(out_dir / "jury_agreement.json", agreement)
            metrics["jury_mean_agreement"] = agreement["mean_agreement"]
        write_json(metrics_path, metrics)
        run.metrics({**metrics, **_speed(audit, len(pairs) - resumed, seconds)})
        _log_audit(out_dir / "audit.parquet")
        for name in ("labels.jsonl", "audit.parquet", "gold_verdicts.jsonl", "jury_agreement.json", "bias.json"):
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
                finished(chunk, *judge_pairs(cfg.judge, judge_model, [c[0] for c in chunk], [c[1] for c in chunk]))
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
        self.judge_model = build_judge(cfg.judge, charter, templates)

    def judge(self, pairs: list[dict], principles: list):
        return judge_pairs(self.cfg.judge, self.judge_model, pairs, principles)


def _metrics(labels, audit, resumed: int, judged_now: int, seconds: float, n_revised: int, gold: dict) -> dict:
    ok = [l for l in labels if l["status"] == "ok"]
    return {
        "n_pairs": len(labels),
        "n_failed": len(labels) - len(ok),
        "n_revision_pairs": n_revised,
        "position_consistency": position_consistency(ok),
        "resumed_pairs": resumed,
        **{f"gold_{k}": v for k, v in gold.items()},
    }


def _speed(audit: list[dict], judged_now: int, seconds: float) -> dict:
    """How fast the judge ran: MLflow metrics only, never in the stage's files, which the same inputs must
    reproduce byte for byte."""
    return {"pairs_per_second": judged_now / seconds if judged_now and seconds > 0 else None,
            "mean_latency_ms": sum(a["latency_ms"] for a in audit) / max(1, len(audit))}


# the audit log records what each judgment was; its latency (a timing) goes to MLflow through _speed
AUDIT_COLUMNS = ["pair_id", "order", "principle", "p_first", "score", "status", "error", "backend", "model",
                 "rendered", "raw"]


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


def _principles_per_pair(cfg: PipelineConfig, charter, n: int) -> list[list[str] | None]:
    """'all': every principle votes; 'sample': one principle per comparison, seeded (Constitutional AI)."""
    if cfg.judge.principle_mode == "all":
        return [None] * n
    rng = random.Random(cfg.seed)
    ids = [p.id for p in charter.of_kind("comparison")]
    return [[rng.choice(ids)] for _ in range(n)]


