"""AI judges under a constitution.

Contract (in the spirit of TRL's judges): `judge(items)` takes a batch of (prompt, first, second)
and returns one Verdict per item, in order; a failed verdict (status "failed", with the error) is
never confused with a real one. Callers that show both orders undo the swap themselves.

EmbeddingJudge, the CPU default, applies the constitution through its worked examples: an answer
scores by how much closer it sits to the examples' chosen answers than to their rejected ones,
weighted by how close each example's prompt is to this prompt (its nearest neighbours), and by
each principle's weight. Scoring each answer separately makes it position-consistent by
construction; the two-order protocol still runs, so that judges that read both answers together
slot in unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from rlaif.io import Constitution


@dataclass
class Verdict:
    p_first: float | None  # P(first shown answer is better); None when failed
    principle: str
    status: str = "ok"
    error: str | None = None
    raw: dict = field(default_factory=dict)  # what the judge computed, for the audit log
    latency_ms: float = 0.0


@dataclass
class JudgeItem:
    prompt: str
    first: str
    second: str
    principle_ids: list[str] | None = None  # restrict to these principles (sampled mode)


class EmbeddingJudge:
    backend = "embedding"

    def __init__(self, constitution: Constitution, templates: dict[str, str], model_name: str,
                 temperature: float, neighbours: int, batch_size: int = 128):
        from rlaif.models import load_encoder

        self.constitution = constitution
        self.templates = templates
        self.model_name = model_name
        self.temperature = temperature
        self.neighbours = neighbours
        self.batch_size = batch_size
        self.encoder = load_encoder(model_name)
        self._cache: dict[str, np.ndarray] = {}
        self._build_bank()

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

    def _build_bank(self) -> None:
        rows = [(p.id, p.weight, e) for p in self.constitution.principles for e in p.examples]
        if not rows:
            raise ValueError("the embedding judge needs worked examples in the constitution")
        self.bank_principle = np.array([r[0] for r in rows])
        self.bank_weight = np.array([r[1] for r in rows], dtype=np.float32)
        self.bank_query = self.embed([self._query(r[2].prompt) for r in rows])
        self.bank_chosen = self.embed([self._answer(r[2].chosen) for r in rows])
        self.bank_rejected = self.embed([self._answer(r[2].rejected) for r in rows])

    def score(self, prompt: str, response: str, principle_ids: list[str] | None = None) -> tuple[float, str]:
        """Constitution score of one answer, and the principle whose examples weighed most."""
        q = self.embed([self._query(prompt)])[0]
        a = self.embed([self._answer(response)])[0]
        mask = np.ones(len(self.bank_principle), dtype=bool)
        if principle_ids:
            mask = np.isin(self.bank_principle, principle_ids)
        idx = np.flatnonzero(mask)
        sims = self.bank_query[idx] @ q
        top = idx[np.argsort(-sims)[: self.neighbours]]
        logits = (self.bank_query[top] @ q) / 0.05  # sharp: the closest examples decide
        weights = np.exp(logits - logits.max()) * self.bank_weight[top]
        weights /= weights.sum()
        votes = self.bank_chosen[top] @ a - self.bank_rejected[top] @ a
        by_principle: dict[str, float] = {}
        for principle, w in zip(self.bank_principle[top], weights):
            by_principle[principle] = by_principle.get(principle, 0.0) + float(w)
        return float(weights @ votes), max(by_principle, key=by_principle.get)

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        # embed everything in batches first; per-item scoring then only does small dot products
        self.embed([self._query(i.prompt) for i in items] +
                   [self._answer(t) for i in items for t in (i.first, i.second) if t.strip()])
        return [self._judge_one(item) for item in items]

    def _judge_one(self, item: JudgeItem) -> Verdict:
        started = time.perf_counter()
        principle = ",".join(item.principle_ids) if item.principle_ids else "all"
        for name, text in (("first", item.first), ("second", item.second)):
            if not text.strip():
                return Verdict(None, principle, "failed", f"empty {name} answer")
        s_first, p_first_principle = self.score(item.prompt, item.first, item.principle_ids)
        s_second, p_second_principle = self.score(item.prompt, item.second, item.principle_ids)
        gap = (s_first - s_second) / self.temperature
        p_first = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, gap))))
        used = p_first_principle if abs(s_first) >= abs(s_second) else p_second_principle
        return Verdict(
            p_first=p_first, principle=used if principle == "all" else principle,
            raw={"score_first": round(s_first, 6), "score_second": round(s_second, 6)},
            latency_ms=(time.perf_counter() - started) * 1000,
        )


def build_judge(cfg, constitution: Constitution, templates: dict[str, str]) -> EmbeddingJudge:
    j = cfg.judge
    if j.backend == "embedding":
        return EmbeddingJudge(constitution, templates, j.model, j.temperature, j.neighbours, j.batch_size)
    raise ValueError(f"judge.backend {j.backend!r} is not available")
