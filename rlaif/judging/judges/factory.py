"""build_judge: the judge that the params name."""

from __future__ import annotations

from rlaif.config import JudgeBackendConfig, JudgeConfig
from rlaif.data.io import Constitution
from rlaif.errors import ConfigError


def build_backend(settings: JudgeBackendConfig, constitution: Constitution, templates: dict[str, str]):
    if settings.backend == "embedding":
        from rlaif.judging.judges.embedding import EmbeddingJudge

        return EmbeddingJudge(constitution, templates, settings)
    if settings.backend == "transformers":
        from rlaif.judging.judges.local_lm import TransformersJudge

        return TransformersJudge(constitution, templates, settings)
    if settings.backend == "openai":
        from rlaif.judging.judges.openai_api import OpenAIJudge

        return OpenAIJudge(constitution, templates, settings)
    raise ValueError(f"judge backend {settings.backend!r} is not available")


def build_judge(judge: JudgeConfig, constitution: Constitution | None, templates: dict[str, str] | None,
                grader=None, expected: dict[str, str] | None = None):
    """The judge that the judge settings (a `judge:` section) name, under the constitution, with the templates.
    The rubric judge needs neither; it grades by `grader` (rlaif.evaluation.behaviour.BehaviourGrader) against each prompt's
    `expected` behaviour, which only evaluate has (the held-out prompts)."""
    if judge.backend == "rubric":
        if grader is None or expected is None:
            raise ConfigError("judge backend 'rubric' grades answers against their prompts' expected behaviour: only "
                              "evaluate.judge can use it")
        from rlaif.judging.judges.rubric import RubricJudge

        return RubricJudge(grader, expected)
    if constitution is None or templates is None:  # only the rubric judge goes without
        raise ConfigError(f"judge backend {judge.backend!r} judges under a constitution, with judge templates: "
                          "both are needed")
    if judge.backend == "jury":
        from rlaif.judging.judges.jury import Jury

        members = [build_backend(member, constitution, templates) for member in judge.jury]
        return Jury(members, judge.jury_aggregate)
    return build_backend(judge, constitution, templates)
