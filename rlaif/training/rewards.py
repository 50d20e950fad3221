"""Rewards for online policy optimization, as TRL `reward_funcs` callables.

A TRL reward function is called as `f(prompts=..., completions=..., **dataset_columns, log_metric=...)`
and returns one float (or None: unscorable) per completion. The datasets built in
tasks/optimize_policy.py carry the question as the user wrote it in `raw_prompt` (the `prompt` column
is the policy's formatted text), and for pairwise judging a `reference` answer.

- RewardModelReward: the trained reward model's scalar on the text it was trained on
  (`rlaif.training.reward_model.scored_text`: the dialogue ending with the EOS token).
- JudgeReward: the configured AI judge scores each fresh sample ("direct RLAIF", Lee et al. 2023):
  pointwise, its 1-10 score mapped linearly to [-1, 1]; pairwise, 2 P(sample better than a reference
  answer) - 1, in both orders when the judge config asks for both. An empty answer gets -1, the
  lowest reward, so the policy learns to avoid it; a failed judgment is None (TRL leaves it out).

Both also report, through TRL's `log_metric`, the share of sampled completions that the independent
evaluator's refusal classifier (tasks/evaluate.py) reads as refusals. It is only logged, never part
of the reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rlaif.errors import InputError
from rlaif.judging.judges.base import SCORE_MAX, SCORE_MIN


def completion_text(completion) -> str:
    """A completion as text: TRL passes strings, or message lists for conversational datasets."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if isinstance(m, dict))


def normalise_score(value: float) -> float:
    """A 1-10 judge score mapped linearly to [-1, 1]."""
    return 2.0 * (value - SCORE_MIN) / (SCORE_MAX - SCORE_MIN) - 1.0


class OnlineReward:
    """Base of the reward callables: text in, floats out, the refusal rate logged alongside."""

    __name__ = "reward"

    def __init__(self, refusals=None):
        self.refusals = refusals  # rlaif.evaluation.refusal.RefusalClassifier, or None

    def rewards(self, prompts: list[str], completions: list[str], **columns) -> Sequence[float | None]:
        raise NotImplementedError  # a Sequence: a reward model's list holds no None, and a list[float] is one

    def __call__(self, prompts, completions, raw_prompt=None, log_metric=None, **columns) -> Sequence[float | None]:
        texts = [completion_text(c).strip() for c in completions]
        questions = list(raw_prompt) if raw_prompt is not None else [completion_text(p) for p in prompts]
        values = self.rewards(questions, texts, **columns)
        if log_metric is not None and self.refusals is not None and texts:
            log_metric("refusal_rate", sum(self.refusals.is_refusal(t) for t in texts) / len(texts))
        return values


class RewardModelReward(OnlineReward):
    """The trained reward model (a sequence classifier with one output) as the reward."""

    __name__ = "reward_model"

    def __init__(self, path: Path | str, refusals=None, batch_size: int = 64, max_length: int | None = None):
        super().__init__(refusals)
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from rlaif.training.models import device

        path = Path(path)
        if not (path / "config.json").exists():
            raise InputError(f"reward model {str(path)!r}: no such model directory (expected {path / 'config.json'}); "
                             "run the train_reward stage first")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForSequenceClassification.from_pretrained(path).to(device()).eval()
        except (OSError, ValueError) as err:
            raise InputError(f"reward model {str(path)!r}: cannot be loaded ({err})") from None
        if self.model.config.num_labels != 1:
            raise InputError(f"reward model {str(path)!r}: expected one output (a scalar reward), "
                             f"it has {self.model.config.num_labels}")
        self.batch_size = batch_size
        from rlaif.training.reward_model import SCORE_MAX_LENGTH

        self.max_length = max_length or SCORE_MAX_LENGTH

    def rewards(self, prompts: list[str], completions: list[str], **columns) -> list[float]:
        from rlaif.training.reward_model import score

        return score(self.model, self.tokenizer, prompts, completions, self.batch_size, self.max_length)


class JudgeReward(OnlineReward):
    """The AI judge as the reward: pointwise scores, or pairwise verdicts against a reference answer."""

    __name__ = "judge"

    def __init__(self, judge, mode: str = "pointwise", both_orders: bool = True, refusals=None):
        super().__init__(refusals)
        if mode not in ("pointwise", "pairwise"):
            raise ValueError(f"judge reward mode {mode!r}: expected pointwise or pairwise")
        from rlaif.judging.judges.base import order_invariant

        self.judge = judge
        self.mode = mode
        # the swapped order of an order-invariant judge is 1 - the first by construction: not asked
        self.both_orders = both_orders and not order_invariant(judge)

    def rewards(self, prompts: list[str], completions: list[str], reference=None, **columns) -> list[float | None]:
        if self.mode == "pointwise":
            return self._pointwise(prompts, completions)
        if reference is None:
            raise ValueError("pairwise judge reward needs a 'reference' column in the dataset")
        return self._pairwise(prompts, completions, list(reference))

    def _pointwise(self, prompts: list[str], completions: list[str]) -> list[float | None]:
        from rlaif.judging.judges.base import ScoreItem

        todo = [i for i, c in enumerate(completions) if c]
        scores = self.judge.score([ScoreItem(prompts[i], completions[i]) for i in todo]) if todo else []
        values: list[float | None] = [-1.0] * len(completions)  # empty answers: the lowest reward
        for i, score in zip(todo, scores):
            values[i] = normalise_score(score.value) if score.status == "ok" and score.value is not None else None
        return values

    def _pairwise(self, prompts: list[str], completions: list[str], references: list[str]) -> list[float | None]:
        from rlaif.judging.judges.base import JudgeItem

        todo = [i for i, c in enumerate(completions) if c]
        items = [JudgeItem(prompts[i], completions[i], references[i]) for i in todo]
        if self.both_orders:
            items += [JudgeItem(prompts[i], references[i], completions[i]) for i in todo]
        verdicts = self.judge.judge(items) if items else []
        values: list[float | None] = [-1.0] * len(completions)
        for k, i in enumerate(todo):
            ps = [verdicts[k].p_first if verdicts[k].status == "ok" else None]
            if self.both_orders:
                swapped = verdicts[len(todo) + k]
                ps.append(1.0 - swapped.p_first if swapped.status == "ok" and swapped.p_first is not None else None)
            known = [p for p in ps if p is not None]
            values[i] = 2.0 * sum(known) / len(known) - 1.0 if known else None
        return values
