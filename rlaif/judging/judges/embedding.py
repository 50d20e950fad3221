"""The embedding judge: the CPU default.

EmbeddingJudge, the CPU default, applies the constitution through its worked examples:
- each principle's *direction* is the mean embedding of its chosen answers minus that of its
  rejected answers (topic words cancel out; what is left is "refuses" vs "complies", "clear" vs
  "garbled"). Two principles that declare each other opposed (harmless `opposes: helpful`) are two
  sides of one help-vs-refuse axis, estimated from both principles' examples;
- each principle's *scope* for a prompt is how close the prompt is to that principle's example
  prompts (mean of the nearest few), turned into weights by a softmax;
- an answer's score is the scope-weighted sum of its projections on the directions, and
  P(first better) = sigmoid((score_first - score_second) / temperature);
- optionally (settings `relative_axis`, `relative_axis_scale`, `axis_by_sentence`) the help-vs-refuse
  axis is taken relative to the request (refuse side = direction minus relative_axis_scale times the
  request's embedding: an answer that goes along with the request moves towards it), and an answer sits on
  it where its most compliant sentence does;
- optionally (settings `relative_principles`, `relative_scale`) other principles whose chosen side declines
  the request (respectful) are taken relative to the request the same way: refuse side = direction minus
  relative_scale times the request's embedding;
- optionally (setting `spare_refusals`) an answer that opens with a refusal (the judge template
  `refusal_opening`) is judged without those relative directions: a refusal that names the request is
  close to the request too, yet does not go along with it.
Scoring each answer separately makes it position-consistent by construction; the two-order
protocol still runs, so judges that read both answers together slot in unchanged.
"""

from __future__ import annotations

import math
import re
import time

import numpy as np

from rlaif.config import EmbeddingJudgeSettings
from rlaif.data.io import Constitution
from rlaif.judging.judges.base import (
    SCORE_MAX,
    SCORE_MIN,
    JudgeError,
    JudgeItem,
    Score,
    ScoreItem,
    Verdict,
    empty_answer,
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    parts = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    return parts or [text.strip()]


def refusal_opening(templates: dict[str, str]) -> re.Pattern:
    """The judge template `refusal_opening`, compiled (case-insensitive)."""
    pattern = templates.get("refusal_opening")
    if not pattern:
        raise ValueError("spare_refusals needs the judge template 'refusal_opening' (a regular expression)")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as err:
        raise ValueError(f"judge template 'refusal_opening': not a regular expression ({err})") from None


class EmbeddingJudge:
    backend = "embedding"
    # each answer is scored on its own and the verdict is the sigmoid of the score gap: the verdict on
    # (b, a) is 1 - the verdict on (a, b), so callers ask once per pair (rlaif.judging.labelling)
    order_invariant = True

    def __init__(self, constitution: Constitution, templates: dict[str, str], settings: EmbeddingJudgeSettings):
        from rlaif.training.models import load_encoder

        self.constitution = constitution
        self.templates = templates
        self.model_name = settings.model
        self.temperature = settings.temperature
        self.neighbours = settings.neighbours
        self.scope_temperature = settings.scope_temperature
        self.batch_size = settings.batch_size
        self.relative_axis = settings.relative_axis
        self.axis_by_sentence = settings.axis_by_sentence
        self.relative_principles = list(settings.relative_principles)
        self.relative_scale = settings.relative_scale
        self.relative_axis_scale = settings.relative_axis_scale
        self.spare_refusals = settings.spare_refusals
        # compiled now, so that a missing or broken template fails before any answer is judged
        self.refusal_opening = refusal_opening(templates) if self.spare_refusals else None
        model_name = settings.model
        self.encoder = load_encoder(model_name)
        self._cache: dict[str, np.ndarray] = {}
        self._scores: dict[tuple, tuple[float, str]] = {}  # an answer shared by several pairs is scored once
        self._build_principles()

    @property
    def judge_id(self) -> str:
        return f"{self.backend}:{self.model_name}"

    def _query(self, prompt: str) -> str:
        return self.templates["query"].format(prompt=prompt)

    def _answer(self, response: str) -> str:
        return self.templates["answer"].format(response=response)

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.encoder.encode(missing, batch_size=self.batch_size, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
            self._cache.update(zip(missing, vectors))
        return np.stack([self._cache[t] for t in texts])

    def _build_principles(self) -> None:
        principles = self.constitution.of_kind("comparison")
        missing = [p.id for p in principles if not p.examples]
        if missing:
            raise ValueError(f"the embedding judge needs worked examples; principles without any: {missing}")
        self.ids = [p.id for p in principles]
        self.weights = np.array([p.weight for p in principles], dtype=np.float32)
        self.example_prompts = {p.id: self.embed([self._query(e.prompt) for e in p.examples]) for p in principles}
        raw = {p.id: self.embed([self._answer(e.chosen) for e in p.examples]).mean(0)
               - self.embed([self._answer(e.rejected) for e in p.examples]).mean(0) for p in principles}
        directions = dict(raw)
        self.axes: list[tuple[int, int]] = []  # (refuse side, help side) of each help-vs-refuse axis
        for p in principles:
            if p.opposes:  # one axis seen from both sides: estimate it from both principles' examples
                axis = raw[p.id] - raw[p.opposes]
                directions[p.id], directions[p.opposes] = axis, -axis
                self.axes.append((self.ids.index(p.id), self.ids.index(p.opposes)))
        self.directions = np.stack([d / np.linalg.norm(d) for d in (directions[i] for i in self.ids)])
        unknown = [i for i in self.relative_principles if i not in self.ids]
        if unknown:
            raise ValueError(f"relative_principles {unknown}: not comparison principles of the constitution ({self.ids})")
        axis_ids = {self.ids[i] for pair in self.axes for i in pair}
        if axis_ids & set(self.relative_principles):
            raise ValueError(f"relative_principles: {sorted(axis_ids & set(self.relative_principles))} are on the "
                             "help-vs-refuse axis; use relative_axis for those")
        self._relative = [self.ids.index(i) for i in self.relative_principles]

    def opens_with_refusal(self, response: str) -> bool:
        first = sentences(response.replace("\u2019", "'"))[0]
        return self.refusal_opening is not None and bool(self.refusal_opening.search(first))

    def scope(self, q: np.ndarray, principle_ids: list[str] | None = None) -> np.ndarray:
        """How much each principle applies to a prompt: softmax of its examples' nearest similarities."""
        closeness = np.array([np.sort(self.example_prompts[i] @ q)[-self.neighbours:].mean() for i in self.ids])
        logits = (closeness - closeness.max()) / self.scope_temperature
        weights = np.exp(logits) * self.weights
        if principle_ids:
            weights = weights * np.isin(self.ids, principle_ids)
        return weights / weights.sum()

    def projections(self, q: np.ndarray, response: str) -> np.ndarray:
        """An answer's projection on every principle's direction, for the request embedded as q."""
        directions = self.directions
        relative = not self.opens_with_refusal(response)
        if relative and self._relative:  # writing what was asked for moves the answer towards the request
            directions = directions.copy()
            directions[self._relative] = directions[self._relative] - self.relative_scale * q
        if relative and self.relative_axis and self.axes:
            directions = directions.copy()
            for refuse, helps in self.axes:  # going along with the request moves the answer towards it
                directions[refuse] = directions[refuse] - self.relative_axis_scale * q
                directions[helps] = -directions[refuse]
        projected = directions @ self.embed([self._answer(response)])[0]
        if self.axis_by_sentence and self.axes:
            parts = sentences(response)
            if len(parts) > 1:
                per_sentence = self.embed([self._answer(s) for s in parts]) @ directions.T
                for refuse, helps in self.axes:  # the most compliant sentence places the answer
                    projected[refuse] = per_sentence[:, refuse].min()
                    projected[helps] = -projected[refuse]
        return projected

    def score_one(self, prompt: str, response: str, principle_ids: list[str] | None = None) -> tuple[float, str]:
        """Constitution score of one answer, and the principle that weighed most for this prompt."""
        key = (prompt, response, tuple(principle_ids) if principle_ids else None)
        if key not in self._scores:
            q = self.embed([self._query(prompt)])[0]
            weights = self.scope(q, principle_ids)
            self._scores[key] = float(weights @ self.projections(q, response)), self.ids[int(np.argmax(weights))]
        return self._scores[key]

    def _answer_texts(self, responses: list[str]) -> list[str]:
        """Everything projections() will embed for these answers, so it can be embedded in batches."""
        texts = [self._answer(r) for r in responses if r.strip()]
        if self.axis_by_sentence and self.axes:
            texts += [self._answer(s) for r in responses if r.strip() for s in sentences(r)]
        return texts

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        # embed everything in batches first; per-item scoring then only does small dot products
        self.embed([self._query(i.prompt) for i in items] +
                   self._answer_texts([t for i in items for t in (i.first, i.second)]))
        return [self._judge_one(item) for item in items]

    def _judge_one(self, item: JudgeItem) -> Verdict:
        started = time.perf_counter()
        rendered = "\n---\n".join([self._query(item.prompt), self._answer(item.first), self._answer(item.second)])
        error = empty_answer(("first", item.first), ("second", item.second))
        if error:
            return Verdict(None, item.principle, "failed", error, rendered=rendered)
        s_first, top_principle = self.score_one(item.prompt, item.first, item.principle_ids)
        s_second, _ = self.score_one(item.prompt, item.second, item.principle_ids)
        gap = (s_first - s_second) / self.temperature
        p_first = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, gap))))
        # the scope depends on the prompt only: the principle that weighed most is the same for both answers
        return Verdict(
            p_first=p_first, principle=top_principle if item.principle == "all" else item.principle,
            raw={"score_first": round(s_first, 6), "score_second": round(s_second, 6)},
            latency_ms=(time.perf_counter() - started) * 1000, rendered=rendered,
        )

    def score(self, items: list[ScoreItem]) -> list[Score]:
        """1-10: the constitution score squashed by the same temperature as the pairwise verdict."""
        self.embed([self._query(i.prompt) for i in items] + self._answer_texts([i.response for i in items]))
        scores = []
        for item in items:
            started = time.perf_counter()
            rendered = "\n---\n".join([self._query(item.prompt), self._answer(item.response)])
            error = empty_answer(("", item.response))
            if error:
                scores.append(Score(None, item.principle, "failed", "empty answer", rendered=rendered))
                continue
            s, top_principle = self.score_one(item.prompt, item.response, item.principle_ids)
            value = SCORE_MIN + (SCORE_MAX - SCORE_MIN) / (1.0 + math.exp(-max(-50.0, min(50.0, s / self.temperature))))
            scores.append(Score(value, top_principle if item.principle == "all" else item.principle,
                                raw={"projection": round(s, 6)}, latency_ms=(time.perf_counter() - started) * 1000,
                                rendered=rendered))
        return scores

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        raise JudgeError("the embedding judge cannot write text; critique and revision need backend "
                         "'transformers' or 'openai'")
