"""The transformers judge: a local causal LM (a local path or a hub id), on GPU when there is one."""

from __future__ import annotations

import time

from rlaif.config import JudgeBackendConfig
from rlaif.io import Constitution
from rlaif.judges.base import JudgeItem, Verdict, neutralise, principle_text


class TransformersJudge:
    """A local causal LM as pairwise judge: P(first better) from the next-token probabilities of the
    labels "A" and "B" after the rendered `pairwise` template, in one forward pass (no sampling),
    batched with prompts sorted by length so that padding stays small."""

    backend = "transformers"

    def __init__(self, constitution: Constitution, templates: dict[str, str], settings: JudgeBackendConfig):
        from rlaif.models import load_policy

        model_name, batch_size = settings.model, settings.batch_size

        for key in ("pairwise", "pairwise_answer_prefix"):
            if key not in templates:
                raise ValueError(f"judge templates lack {key!r}, which the transformers judge needs")
        self.constitution = constitution
        self.templates = templates
        self.model_name = model_name
        self.batch_size = batch_size
        self.model, self.tokenizer = load_policy(model_name)  # left padding: the last position is the next token
        self.label_ids = self._label_token_ids()
        self.principles = {p.id: p.text for p in constitution.of_kind("comparison")}

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
        text = self.templates["pairwise"].format(principle=principle_text(self.principles, item.principle_ids), prompt=neutralise(item.prompt),
                                                 response_a=neutralise(item.first),
                                                 response_b=neutralise(item.second))
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
