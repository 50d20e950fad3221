"""AI judges under a constitution.

Contract (in the spirit of TRL's judges): `judge(items)` takes a batch of (prompt, first, second)
and returns one Verdict per item, in order; a failed verdict (status "failed", with the error) is
never confused with a real one. Callers that show both orders undo the swap themselves.

EmbeddingJudge, the CPU default, applies the constitution through its worked examples:
- each principle's *direction* is the mean embedding of its chosen answers minus that of its
  rejected answers (topic words cancel out; what is left is "refuses" vs "complies", "clear" vs
  "garbled"). Two principles that declare each other opposed (harmless `opposes: helpful`) are two
  sides of one help-vs-refuse axis, estimated from both principles' examples;
- each principle's *scope* for a prompt is how close the prompt is to that principle's example
  prompts (mean of the nearest few), turned into weights by a softmax;
- an answer's score is the scope-weighted sum of its projections on the directions, and
  P(first better) = sigmoid((score_first - score_second) / temperature).
Scoring each answer separately makes it position-consistent by construction; the two-order
protocol still runs, so judges that read both answers together slot in unchanged.
"""

from __future__ import annotations

import math
import re
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
                 temperature: float, neighbours: int, scope_temperature: float = 0.05, batch_size: int = 128):
        from rlaif.models import load_encoder

        self.constitution = constitution
        self.templates = templates
        self.model_name = model_name
        self.temperature = temperature
        self.neighbours = neighbours
        self.scope_temperature = scope_temperature
        self.batch_size = batch_size
        self.encoder = load_encoder(model_name)
        self._cache: dict[str, np.ndarray] = {}
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
        principles = self.constitution.principles
        missing = [p.id for p in principles if not p.examples]
        if missing:
            raise ValueError(f"the embedding judge needs worked examples; principles without any: {missing}")
        self.ids = [p.id for p in principles]
        self.weights = np.array([p.weight for p in principles], dtype=np.float32)
        self.example_prompts = {p.id: self.embed([self._query(e.prompt) for e in p.examples]) for p in principles}
        raw = {p.id: self.embed([self._answer(e.chosen) for e in p.examples]).mean(0)
               - self.embed([self._answer(e.rejected) for e in p.examples]).mean(0) for p in principles}
        directions = dict(raw)
        for p in principles:
            if p.opposes:  # one axis seen from both sides: estimate it from both principles' examples
                axis = raw[p.id] - raw[p.opposes]
                directions[p.id], directions[p.opposes] = axis, -axis
        self.directions = np.stack([d / np.linalg.norm(d) for d in (directions[i] for i in self.ids)])

    def scope(self, q: np.ndarray, principle_ids: list[str] | None = None) -> np.ndarray:
        """How much each principle applies to a prompt: softmax of its examples' nearest similarities."""
        closeness = np.array([np.sort(self.example_prompts[i] @ q)[-self.neighbours:].mean() for i in self.ids])
        logits = (closeness - closeness.max()) / self.scope_temperature
        weights = np.exp(logits) * self.weights
        if principle_ids:
            weights = weights * np.isin(self.ids, principle_ids)
        return weights / weights.sum()

    def score(self, prompt: str, response: str, principle_ids: list[str] | None = None) -> tuple[float, str]:
        """Constitution score of one answer, and the principle that weighed most for this prompt."""
        q = self.embed([self._query(prompt)])[0]
        a = self.embed([self._answer(response)])[0]
        weights = self.scope(q, principle_ids)
        return float(weights @ (self.directions @ a)), self.ids[int(np.argmax(weights))]

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
        s_second, _ = self.score(item.prompt, item.second, item.principle_ids)
        gap = (s_first - s_second) / self.temperature
        p_first = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, gap))))
        used = p_first_principle  # the scope depends on the prompt only: the same for both answers
        return Verdict(
            p_first=p_first, principle=used if principle == "all" else principle,
            raw={"score_first": round(s_first, 6), "score_second": round(s_second, 6)},
            latency_ms=(time.perf_counter() - started) * 1000,
        )


MARKERS = re.compile(r"\[(?:End of )?(?:user prompt|answer [AB])\]", re.IGNORECASE)


def _neutralise(text: str) -> str:
    """An answer may not forge the delimiters that fence it in the judge prompt."""
    return MARKERS.sub("[marker removed]", text)


class TransformersJudge:
    """A local causal LM as pairwise judge: P(first better) from the next-token probabilities of the
    labels "A" and "B" after the rendered `pairwise` template, in one forward pass (no sampling),
    batched with prompts sorted by length so that padding stays small."""

    backend = "transformers"

    def __init__(self, constitution: Constitution, templates: dict[str, str], model_name: str, batch_size: int = 16):
        from rlaif.models import load_policy

        for key in ("pairwise", "pairwise_answer_prefix"):
            if key not in templates:
                raise ValueError(f"judge templates lack {key!r}, which the transformers judge needs")
        self.constitution = constitution
        self.templates = templates
        self.model_name = model_name
        self.batch_size = batch_size
        self.model, self.tokenizer = load_policy(model_name)  # left padding: the last position is the next token
        self.label_ids = self._label_token_ids()
        self.principles = {p.id: p.text for p in constitution.principles}

    @property
    def judge_id(self) -> str:
        return f"{self.backend}:{self.model_name}"

    def _label_token_ids(self) -> list[int]:
        for variants in ((" A", " B"), ("A", "B")):
            ids = [self.tokenizer.encode(v, add_special_tokens=False)[:1] for v in variants]
            if all(ids) and ids[0] != ids[1]:
                return [ids[0][0], ids[1][0]]
        raise ValueError(f"judge model {self.model_name!r}: its tokenizer has no distinct tokens for A and B")

    def render(self, item: JudgeItem) -> str:
        ids = item.principle_ids or list(self.principles)
        principle = "\n".join(f"- {self.principles[i]}" for i in ids)
        text = self.templates["pairwise"].format(principle=principle, prompt=_neutralise(item.prompt),
                                                 response_a=_neutralise(item.first),
                                                 response_b=_neutralise(item.second))
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                      add_generation_prompt=True)
        return text + self.templates["pairwise_answer_prefix"]

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        import torch

        verdicts: list[Verdict | None] = [None] * len(items)
        runnable = []
        for index, item in enumerate(items):
            principle = ",".join(item.principle_ids) if item.principle_ids else "all"
            empty = [name for name, text in (("first", item.first), ("second", item.second)) if not text.strip()]
            if empty:
                verdicts[index] = Verdict(None, principle, "failed", f"empty {empty[0]} answer")
            else:
                runnable.append((index, self.render(item), principle))
        runnable.sort(key=lambda r: len(r[1]))
        for start in range(0, len(runnable), self.batch_size):
            chunk = runnable[start : start + self.batch_size]
            started = time.perf_counter()
            batch = self.tokenizer([text for _, text, _ in chunk], return_tensors="pt", padding=True,
                                   add_special_tokens=False).to(self.model.device)
            # left padding: positions must count from each sequence's first real token
            positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            with torch.no_grad():
                # only the next-token logits are needed: skip the vocabulary projection elsewhere
                logits = self.model(**batch, position_ids=positions, logits_to_keep=1).logits[:, -1, :].float()
            probs = torch.softmax(logits[:, self.label_ids], dim=-1)[:, 0].tolist()
            each_ms = (time.perf_counter() - started) * 1000 / len(chunk)
            for (index, _, principle), p_first in zip(chunk, probs):
                verdicts[index] = Verdict(p_first, principle, raw={"p_A": round(p_first, 6)}, latency_ms=each_ms)
        return verdicts  # type: ignore[return-value]


def build_judge(cfg, constitution: Constitution, templates: dict[str, str]):
    j = cfg.judge
    if j.backend == "embedding":
        return EmbeddingJudge(constitution, templates, j.model, j.temperature, j.neighbours,
                              j.scope_temperature, j.batch_size)
    if j.backend == "transformers":
        return TransformersJudge(constitution, templates, j.model, j.batch_size)
    raise ValueError(f"judge.backend {j.backend!r} is not available")
