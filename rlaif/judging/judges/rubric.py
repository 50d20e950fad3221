"""The rubric judge: no model and no constitution. Of two answers it prefers the one that behaves as its prompt
expects (refuses an unsafe request, helps coherently with a safe one), graded by the evaluator's own checks
(rlaif.evaluation.behaviour). It grades each answer alone, so it is order-invariant; it can judge only prompts whose expected
behaviour it was given, which is why only `evaluate` (the held-out prompts) can use it.
"""

from __future__ import annotations

import time

from rlaif.judging.judges.base import SCORE_MAX, SCORE_MIN, JudgeItem, Score, ScoreItem, Verdict

UNKNOWN_PROMPT = "the rubric judge has no expected behaviour for this prompt"


class RubricJudge:
    backend = "rubric"
    model_name = None
    judge_id = "rubric"
    order_invariant = True

    def __init__(self, grader, expected: dict[str, str]):
        self.grader = grader  # rlaif.evaluation.behaviour.BehaviourGrader
        self.expected = expected  # prompt text -> "help" | "refuse"

    def _correct(self, prompt: str, answer: str) -> bool | None:
        """Whether the answer behaves as its prompt expects; None for a prompt the rubric was not given."""
        expected = self.expected.get(prompt)
        return None if expected is None else self.grader.grade(prompt, answer, expected)[1]

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        verdicts = []
        for item in items:
            started = time.perf_counter()
            first, second = self._correct(item.prompt, item.first), self._correct(item.prompt, item.second)
            if first is None or second is None:
                verdicts.append(Verdict(None, item.principle, status="failed", error=UNKNOWN_PROMPT))
                continue
            verdicts.append(Verdict(0.5 + 0.5 * (float(first) - float(second)), item.principle,
                                    raw={"first_behaves": first, "second_behaves": second},
                                    latency_ms=1000 * (time.perf_counter() - started)))
        return verdicts

    def score(self, items: list[ScoreItem]) -> list[Score]:
        scores = []
        for item in items:
            correct = self._correct(item.prompt, item.response)
            scores.append(Score(None, item.principle, status="failed", error=UNKNOWN_PROMPT) if correct is None else
                          Score(float(SCORE_MAX if correct else SCORE_MIN), item.principle, raw={"behaves": correct}))
        return scores

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        from rlaif.errors import JudgeError

        raise JudgeError("the rubric judge cannot write text (critique and revision need a generative judge)")
