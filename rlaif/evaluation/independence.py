"""Evaluator independence: the judge that measures the new policy must not be the judge that trained it.

A judge's identity is its backend, its model(s) and the digest of its constitution. The evaluation judge
must differ from the training judge in at least one of them; `evaluate.allow_same_judge: true` waives the
rule, and the waiver is recorded on the evaluate run (and so in `rlaif lineage`).
"""

from __future__ import annotations

from pathlib import Path

from rlaif.config import EvaluationJudgeConfig, JudgeConfig, PipelineConfig
from rlaif.errors import ConfigError
from rlaif.lifecycle.digests import file_md5

TRAINING_CONSTITUTION = Path("data/constitution/constitution.yaml")


def judge_identity(judge: JudgeConfig | EvaluationJudgeConfig, constitution: Path | None) -> dict:
    """What makes two judges the same judge. A rubric judge has no model and no constitution."""
    if judge.backend == "rubric":
        return {"backend": "rubric", "models": [], "constitution_md5": None}
    members = judge.jury if judge.backend == "jury" else [judge]
    models = sorted(f"{m.backend}:{m.model}" for m in members)
    digest = file_md5(constitution) if constitution is not None and Path(constitution).exists() else None
    return {"backend": judge.backend, "models": models, "constitution_md5": digest}


def describe(identity: dict) -> str:
    """A judge's identity in words for tags and reports: `rubric (no model)`, `embedding:MODEL`, `jury of A + B`."""
    if not identity["models"]:
        return f"{identity['backend']} (no model)"
    if identity["backend"] == "jury":
        return "jury of " + " + ".join(identity["models"])
    return ", ".join(identity["models"])


def check_independence(cfg: PipelineConfig, training_constitution: Path = TRAINING_CONSTITUTION) -> dict:
    """The verdict on independence; raises ConfigError when the judges are the same and no waiver is set."""
    evaluation_constitution = cfg.evaluate.judge.constitution or training_constitution
    training = judge_identity(cfg.judge, training_constitution)
    evaluation = judge_identity(cfg.evaluate.judge, evaluation_constitution)
    shared_models = sorted(set(training["models"]) & set(evaluation["models"]))
    same = (evaluation["backend"] == training["backend"] and evaluation["models"] == training["models"]
            and evaluation["constitution_md5"] == training["constitution_md5"])
    result = {"independent": not same, "waived": bool(same and cfg.evaluate.allow_same_judge),
              "shared_models": shared_models, "training_judge": training, "evaluation_judge": evaluation}
    if same and not cfg.evaluate.allow_same_judge:
        raise ConfigError(
            "evaluate.judge: the evaluation judge equals the training judge (backend "
            f"{training['backend']!r}, models {training['models']}, same constitution); the new policy would be "
            "graded by the judge that trained it. Change evaluate.judge (backend, model or constitution), or set "
            "evaluate.allow_same_judge: true to waive this (the waiver is recorded in the lineage)")
    return result
