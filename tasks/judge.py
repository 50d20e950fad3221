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

from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.data.io import GoldPair, read_constitution, read_rows, read_templates, write_json, write_jsonl
from rlaif.data.records import BiasReport, read_candidates, read_revisions, write_record
from rlaif.judging.audit_log import log_audit, write_audit
from rlaif.judging.bias import bias_metrics, read_suite
from rlaif.judging.checkpointed import EXECUTION, judge_with_checkpoints
from rlaif.judging.figures import label_metrics, speed
from rlaif.judging.labelling import candidate_pairs, gold_agreement, judge_bias_suite, revision_pairs
from rlaif.training.checkpoint import JsonlCheckpoint, checkpoint_path


def judge(cfg: PipelineConfig, candidates: Path, constitution: Path, templates: Path, gold: Path,
          revisions: Path | None, out_dir: Path, metrics_path: Path, bias_suite: Path | None = None) -> Path:
    from rlaif.judging.judges import build_judge
    from rlaif.lifecycle.tracking import stage_run

    charter = read_constitution(constitution)
    judge_templates = read_templates(templates)
    gold_pairs = read_rows(gold, GoldPair, unique_key="id")
    suite = read_suite(bias_suite) if bias_suite else None  # read before judging: a bad suite fails at once
    pairs = candidate_pairs(read_candidates(candidates))
    revised = revision_pairs(read_revisions(revisions), cfg.seed) if revisions else []
    inputs = {"candidates": candidates, "constitution": constitution, "templates": templates, "gold": gold,
              **({"bias_suite": bias_suite} if bias_suite else {})}
    with stage_run("judge", cfg, inputs=inputs, outputs={"judge": Path(out_dir)}) as run:
        import mlflow

        mlflow.set_tags({"constitution.name": charter.name, "constitution.version": charter.version})
        judge_model = build_judge(cfg.judge, charter, judge_templates)
        mlflow.set_tag("judge.id", judge_model.judge_id)
        settings = {"seed": cfg.seed, "judge": cfg.judge.model_dump(mode="json", exclude=EXECUTION)}
        checkpoint = JsonlCheckpoint(checkpoint_path("judge", [candidates, constitution, templates], settings, ".jsonl"),
                                     key="pair_id")
        resumed, seconds = judge_with_checkpoints(cfg, judge_model, charter, pairs, checkpoint)
        done = checkpoint.load()
        labels = [done[p["pair_id"]]["label"] for p in pairs] + revised
        audit = [row for p in pairs for row in done[p["pair_id"]]["audit"]]

        out_dir = Path(out_dir)
        write_jsonl(out_dir / "labels.jsonl", labels)
        write_audit(out_dir / "audit.parquet", audit)
        gold_result = gold_agreement(cfg.judge, judge_model, gold_pairs)
        write_jsonl(out_dir / "gold_verdicts.jsonl", gold_result.pop("verdicts"))
        metrics = label_metrics(labels, audit, resumed, len(pairs) - resumed, seconds, len(revised), gold_result)
        if suite is not None:  # the judge's biases, measured before validate lets its labels train anything
            figures, judged = judge_bias_suite(cfg.judge, judge_model, suite)
            write_record(out_dir / "bias.json", BiasReport(judge=judge_model.judge_id, suite=str(bias_suite),
                                                           **figures, judged_pairs=judged))
            metrics.update(bias_metrics(figures))
        if judge_model.backend == "jury":
            from rlaif.judging.judges.jury import jury_agreement

            agreement = jury_agreement(audit)
            write_json(out_dir / "jury_agreement.json", agreement)
            metrics["jury_mean_agreement"] = agreement["mean_agreement"]
        write_json(metrics_path, metrics)
        run.metrics({**metrics, **speed(audit, len(pairs) - resumed, seconds)})
        log_audit(out_dir / "audit.parquet")
        for name in ("labels.jsonl", "audit.parquet", "gold_verdicts.jsonl", "jury_agreement.json", "bias.json"):
            run.artifact(out_dir / name, "judge")
        checkpoint.remove()  # outputs are written: the next run starts afresh
    return out_dir / "labels.jsonl"
