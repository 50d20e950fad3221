"""The judge contract, shared by every backend (in the spirit of TRL's judges).

- `judge(items: list[JudgeItem]) -> list[Verdict]`: pairwise. One verdict per item, in order;
  `p_first` is P(the answer shown first is better). A failed verdict (status "failed", with the
  error) is never confused with a real one. Callers that show both orders undo the swap themselves.
- `score(items: list[ScoreItem]) -> list[Score]`: pointwise. A score from 1 to 10 per answer, usable
  directly as a reward ("direct RLAIF", Lee et al. 2023).
- `generate(prompts: list[str], max_new_tokens: int) -> list[str]`: free text, for backends that can
  write (critique and revision). Raises JudgeError when the backend cannot.
- `order_invariant` (optional, default False): True for a judge that scores each answer on its own, so
  that its verdict on (b, a) is 1 - its verdict on (a, b) by construction. Such a judge is asked once
  per pair: a second order would cost as much again and measure nothing about position.

Every verdict carries what the audit log needs: the rendered judge prompt, the raw output and the
latency. Backends never raise for one bad item; they return a failed verdict naming the problem.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from rlaif.errors import JudgeError  # noqa: F401  (part of the judge contract)

SCORE_MIN, SCORE_MAX = 1, 10


def order_invariant(judge) -> bool:
    """Whether the judge's pairwise verdict ignores which answer is shown first (see the contract above)."""
    return bool(getattr(judge, "order_invariant", False))



@dataclass
class Verdict:
    p_first: float | None  # P(first shown answer is better); None when failed
    principle: str
    status: str = "ok"
    error: str | None = None
    raw: dict = field(default_factory=dict)  # what the judge computed or answered, for the audit log
    latency_ms: float = 0.0
    rendered: str = ""  # the full judge prompt (or what the judge embedded)


@dataclass
class Score:
    value: float | None  # from SCORE_MIN to SCORE_MAX; None when failed
    principle: str
    status: str = "ok"
    error: str | None = None
    raw: dict = field(default_factory=dict)
    latency_ms: float = 0.0
    rendered: str = ""


@dataclass
class JudgeItem:
    prompt: str
    first: str
    second: str
    principle_ids: list[str] | None = None  # restrict to these principles (sampled mode)

    @property
    def principle(self) -> str:
        return ",".join(self.principle_ids) if self.principle_ids else "all"


@dataclass
class ScoreItem:
    prompt: str
    response: str
    principle_ids: list[str] | None = None

    @property
    def principle(self) -> str:
        return ",".join(self.principle_ids) if self.principle_ids else "all"


def empty_answer(*named: tuple[str, str]) -> str | None:
    """The error for the first empty answer among (name, text), or None."""
    for name, text in named:
        if not text.strip():
            return f"empty {name} answer"
    return None


MARKERS = re.compile(r"\[(?:End of )?(?:user prompt|answer [AB]|answer)\]", re.IGNORECASE)


def neutralise(text: str) -> str:
    """An answer may not forge the delimiters that fence it in the judge prompt."""
    return MARKERS.sub("[marker removed]", text)


def principle_text(principles: dict[str, str], ids: list[str] | None) -> str:
    return "\n".join(f"- {principles[i]}" for i in (ids or list(principles)))


def p_first_from_scores(first: float, second: float, temperature: float) -> float:
    """Pairwise preference from two pointwise scores: sigmoid of the gap."""
    gap = max(-50.0, min(50.0, (first - second) / temperature))
    return 1.0 / (1.0 + math.exp(-gap))


def expected_score(probabilities: dict[int, float]) -> float:
    """Probability-weighted score over the labels 1..10, renormalised (Lee et al. 2023)."""
    total = sum(probabilities.values())
    return sum(k * p for k, p in probabilities.items()) / total


def clamp_cot(p: float, low: float = 0.4, high: float = 0.6) -> float:
    """Chain-of-thought verdicts are over-confident; the Constitutional AI paper clamps them to 40-60%."""
    return min(high, max(low, p))
