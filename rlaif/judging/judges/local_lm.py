"""The transformers judge: a local causal LM (a local path or a hub id), on GPU when there is one.

- Pairwise: P(first better) from the next-token probabilities of the labels "A" and "B" after the
  rendered `pairwise` template, in one forward pass (no sampling).
- Pointwise: the probability-weighted score over the labels "1".."10" after the `pointwise`
  template (Lee et al. 2023). When the tokenizer has no token of its own for "10" (its first token is
  that of "1"), the score 10 is the path "1" then "0": P("10") = P("1") * P("0" | "1") from one more
  batched step that reuses the first forward's KV cache, and the score 1 keeps the rest of the mass
  of "1", P("1") * (1 - P("0" | "1")), so that no probability is counted twice. (Other continuations
  of "1", such as "1." or "1 ", count as a score of 1.)
- Chain of thought (`chain_of_thought`): greedy reasoning after `pairwise_reasoning` +
  `reasoning_prefix`, then the A/B probabilities after the reasoning + `verdict_after_reasoning`,
  clamped to 40-60% (Constitutional AI). The reasoning is kept in `raw["reasoning"]`.
- `generate`: batched greedy generation (critique and revision).

Without a chat template the answer prefixes of the templates (`pairwise_answer_prefix`, ...) follow
the text; with one, the text is the user turn and the label is read at the start of the assistant
turn. Labels are read with a leading space when the prompt does not end in whitespace, else without
(whichever the tokenizer has as distinct single first tokens, as before).

Throughput. A call renders all its prompts, tokenizes them in one call of the fast tokenizer (no
padding), sorts them by token length (longest first: the first batch shows the peak memory) and
builds each batch by left-padding token ids that are already there, in one pinned host buffer that
is copied to the device without blocking. Label log-probabilities stay on the device and come back
to the CPU in one copy at the end of the call: the loop adds no wait for the device of its own (the
model's forward still has one: transformers reads whether the attention mask has padding), so the
host pads batch k+1 while the device runs batch k. Probabilities do not depend on the batch size
(position ids count from each sequence's first real token). `latency_ms` is amortised: the call's
time over its items. The fixed costs of a call (rendering, one tokenizer call, the verdicts) are
small next to a realistic model's forward passes, not next to a toy model's.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from rlaif.config import TransformersJudgeSettings
from rlaif.data.io import Constitution
from rlaif.judging.judges.base import (
    SCORE_MAX,
    SCORE_MIN,
    JudgeError,
    JudgeItem,
    Score,
    ScoreItem,
    Verdict,
    clamp_cot,
    empty_answer,
    expected_score,
    neutralise,
    principle_text,
)

SCORES = list(range(SCORE_MIN, SCORE_MAX + 1))
VERDICT_TOKENS = 16  # room left after the reasoning for the verdict suffix and the label


class UnknownPrinciple(ValueError):
    """An item names a principle the constitution lacks: that item fails, the others go on."""


@dataclass
class Batch:
    """A padded batch on the model's device: rows `start:start+len(input_ids)` of the sorted order."""

    start: int
    input_ids: Any  # torch.LongTensor [b, width], left padded (torch is read as Any)
    attention_mask: Any
    position_ids: Any

    def inputs(self) -> dict:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask, "position_ids": self.position_ids}


@dataclass(frozen=True)
class ScoreLabels:
    """How the labels 1..10 are read: `first` holds the first-step token ids (ten of them, or nine when
    "10" is not one token); `ten` is then (id of "1", id of "0"): feed "1", read "0"."""

    first: tuple[int, ...]
    ten: tuple[int, int] | None


class TransformersJudge:
    """A local causal LM as judge: label probabilities from one batched forward pass (no sampling),
    with prompts sorted by token length so that padding stays small."""

    backend = "transformers"

    def __init__(self, constitution: Constitution, templates: dict[str, str], settings: TransformersJudgeSettings):
        from rlaif.training.models import load_policy

        needed = ["pairwise", "pairwise_answer_prefix"]
        if settings.chain_of_thought:
            needed += ["pairwise_reasoning", "reasoning_prefix", "verdict_after_reasoning"]
        for key in needed:
            if key not in templates:
                raise ValueError(f"judge templates lack {key!r}, which the transformers judge needs")
        self.constitution = constitution
        self.templates = templates
        self.model_name = settings.model
        self.batch_size = settings.batch_size
        self.chain_of_thought = settings.chain_of_thought
        self.max_reasoning_tokens = settings.max_reasoning_tokens
        self.model, self.tokenizer = load_policy(settings.model)  # left padding: the last position is the next token
        self.model.eval()
        self.principles = {p.id: p.text for p in constitution.of_kind("comparison")}
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None)
        self._cache_kw = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self._chat = bool(getattr(self.tokenizer, "chat_template", None))
        self._affixes = self._chat_affixes() if self._chat else None
        self._chat_tail = self._apply_chat("x")[-1:] if self._chat else ""
        self.label_ids = self._label_token_ids()
        self._score_labels: ScoreLabels | None = None

    @property
    def judge_id(self) -> str:
        return f"{self.backend}:{self.model_name}"

    # --- labels -------------------------------------------------------------------------------

    def _tail(self, plain_suffix: str) -> str:
        """What the prompt ends with: the chat template's opened assistant turn, or the plain suffix."""
        return self._chat_tail if self._chat else plain_suffix

    @staticmethod
    def _variants(tail: str) -> tuple[str, str]:
        """Labels are tried with a leading space first unless the prompt ends in whitespace."""
        return ("", " ") if tail[-1:].isspace() else (" ", "")

    def _label_token_ids(self, tail: str | None = None) -> list[int]:
        """Token ids of "A" and "B" (first tokens, distinct) as they follow a prompt ending in `tail`."""
        tail = self._tail(self.templates["pairwise_answer_prefix"]) if tail is None else tail
        for space in self._variants(tail):
            ids = [self.tokenizer.encode(space + v, add_special_tokens=False)[:1] for v in ("A", "B")]
            if all(ids) and ids[0] != ids[1]:
                return [ids[0][0], ids[1][0]]
        raise ValueError(f"judge model {self.model_name!r}: its tokenizer has no distinct tokens for A and B")

    def score_labels(self) -> ScoreLabels:
        """The token ids of the labels 1..10, worked out once (JudgeError when the tokenizer has none)."""
        if self._score_labels is None:
            needed = ["pointwise"] + ([] if self._chat else ["pointwise_answer_prefix"])
            missing = [key for key in needed if key not in self.templates]
            if missing:
                raise JudgeError(f"judge templates lack {missing}, which the transformers judge needs for scores")
            for space in self._variants(self._tail(self.templates.get("pointwise_answer_prefix", ""))):
                encoded = {k: self.tokenizer.encode(f"{space}{k}", add_special_tokens=False) for k in SCORES}
                if not all(encoded[k] for k in SCORES[:-1]):
                    continue
                first = tuple(encoded[k][0] for k in SCORES[:-1])
                if len(set(first)) != len(first):
                    continue
                ten = encoded[SCORE_MAX]
                if ten and ten[0] not in first:  # "10" starts with a token of its own
                    self._score_labels = ScoreLabels(first + (ten[0],), None)
                    break
                if len(ten) == 2 and ten[0] == first[0]:  # "1" then "0"
                    self._score_labels = ScoreLabels(first, (ten[0], ten[1]))
                    break
            else:
                raise JudgeError(f"judge model {self.model_name!r}: its tokenizer has no distinct tokens for the "
                                 f"scores {SCORE_MIN}..{SCORE_MAX}")
        return self._score_labels

    # --- rendering ----------------------------------------------------------------------------

    def _apply_chat(self, text: str) -> str:
        return self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                  add_generation_prompt=True)

    def _chat_affixes(self) -> tuple[str, str] | None:
        """(head, tail) when the chat template puts the user's text verbatim between a fixed head and tail
        (checked on two probes): rendering is then a concatenation, not a template run per item."""
        probe = "\x1fprobe\x1f"
        rendered = self._apply_chat(probe)
        if rendered.count(probe) != 1:
            return None
        head, tail = rendered.split(probe)
        check = " another\n probe, with spaces \n"
        return (head, tail) if self._apply_chat(check) == head + check + tail else None

    def _wrap(self, text: str) -> str:
        """The user turn of the chat template with the assistant turn opened, or the text itself."""
        if not self._chat:
            return text
        if self._affixes:
            return self._affixes[0] + text + self._affixes[1]
        return self._apply_chat(text)

    def _suffix(self, key: str) -> str:
        """What follows the wrapped text: the template's prefix; in a chat, at the start of the
        assistant's turn, only what is more than a label prompt (answer prefixes are dropped)."""
        if not self._chat:
            return self.templates[key]
        return self.templates[key].lstrip() if key == "reasoning_prefix" else ""

    def _principles(self, ids: list[str] | None) -> str:
        unknown = [i for i in ids or [] if i not in self.principles]
        if unknown:
            raise UnknownPrinciple(f"unknown comparison principle(s) {unknown}")
        return principle_text(self.principles, ids)

    def _fill(self, template: str, item: JudgeItem) -> str:
        return self.templates[template].format(principle=self._principles(item.principle_ids),
                                               prompt=neutralise(item.prompt), response_a=neutralise(item.first),
                                               response_b=neutralise(item.second))

    def render(self, item: JudgeItem) -> str:
        """The full pairwise prompt the model reads (the label follows it)."""
        return self._wrap(self._fill("pairwise", item)) + self._suffix("pairwise_answer_prefix")

    def render_reasoning(self, item: JudgeItem) -> str:
        """The chain-of-thought prompt the reasoning is generated after."""
        return self._wrap(self._fill("pairwise_reasoning", item)) + self._suffix("reasoning_prefix")

    def render_score(self, item: ScoreItem) -> str:
        text = self.templates["pointwise"].format(principle=self._principles(item.principle_ids),
                                                  prompt=neutralise(item.prompt), response=neutralise(item.response))
        return self._wrap(text) + ("" if self._chat else self.templates["pointwise_answer_prefix"])

    # --- batching -----------------------------------------------------------------------------

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of every text in one call of the fast tokenizer: no special tokens, no padding."""
        if not texts:
            return []
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        fast = getattr(backend, "encode_batch_fast", None)  # tokenizers >= 0.21: skips the character offsets
        if (fast is not None and backend is not None and backend.truncation is None and backend.padding is None
                and backend.encode_special_tokens == bool(getattr(self.tokenizer, "split_special_tokens", False))):
            return [e.ids for e in fast(texts, add_special_tokens=False)]
        return self.tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]

    @staticmethod
    def order(ids: list[list[int]]) -> np.ndarray:
        """Indices sorted by token length, longest first (stable)."""
        return np.argsort(-np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)), kind="stable")

    def batches(self, ids: list[list[int]], order: np.ndarray) -> Iterator[Batch]:
        """Left-padded batches in `order`, built from the token ids on the host (one pinned buffer per
        batch) and copied to the device without blocking."""
        import torch

        device = self.model.device
        pin = device.type == "cuda"
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            lengths = [len(ids[i]) for i in rows]
            width = max(lengths)
            host: np.ndarray = np.zeros((3, len(rows), width), dtype=np.int64)  # input ids, attention mask, positions
            host[0].fill(pad)
            span = np.arange(width)
            for r, (i, length) in enumerate(zip(rows, lengths)):
                host[0, r, width - length :] = ids[i]
                host[1, r, width - length :] = 1
                host[2, r, width - length :] = span[:length]
            tensor = torch.from_numpy(host)
            if pin:
                tensor = tensor.pin_memory().to(device, non_blocking=True)
            else:
                tensor = tensor.to(device)
            yield Batch(start, tensor[0], tensor[1], tensor[2])

    def label_logprobs(self, ids: list[list[int]], read: list[int] | tuple[int, ...],
                       then: tuple[int, int] | None = None) -> np.ndarray:
        """Next-token log-probabilities (full vocabulary) of the tokens `read` after each sequence, one
        row per sequence in the caller's order. With `then` = (fed, read2), one more column:
        log P(read2 | sequence + fed), from one extra step that reuses the first forward's KV cache."""
        import torch

        if not ids:
            return np.zeros((0, len(read) + (then is not None)), dtype=np.float32)
        device = self.model.device
        order = self.order(ids)
        read_t = torch.tensor(list(read), device=device)
        out = torch.empty((len(ids), len(read) + (then is not None)), dtype=torch.float32, device=device)
        with torch.inference_mode():
            for batch in self.batches(ids, order):
                size = batch.input_ids.shape[0]
                output = self.model(**batch.inputs(), logits_to_keep=1, use_cache=then is not None)
                logp = output.logits[:, -1].float().log_softmax(-1)
                out[batch.start : batch.start + size, : len(read)] = logp.index_select(-1, read_t)
                if then is not None:
                    fed, read2 = then
                    cache = getattr(output, self._cache_kw)  # "cache" (transformers >= 5.x) or "past_key_values"
                    step = self.model(input_ids=torch.full((size, 1), fed, dtype=torch.long, device=device),
                                      attention_mask=torch.nn.functional.pad(batch.attention_mask, (0, 1), value=1),
                                      position_ids=batch.position_ids[:, -1:] + 1, logits_to_keep=1, use_cache=True,
                                      **{self._cache_kw: cache})
                    out[batch.start : batch.start + size, -1] = step.logits[:, -1].float().log_softmax(-1)[:, read2]
                    del cache, step
                del output, logp
        result = np.empty((len(ids), out.shape[1]), dtype=np.float32)
        result[order] = out.cpu().numpy()  # the one device-to-host copy (and wait) of the call
        return result

    def generate_ids(self, ids: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Greedy continuations (new tokens only, eos and padding removed), batched and length-sorted."""
        import torch

        results: list[list[int]] = [[] for _ in ids]
        live = [i for i, row in enumerate(ids) if row]  # an empty prompt has nothing to continue
        if not live:
            return results
        sub = [ids[i] for i in live]
        order = self.order(sub)
        eos = self.model.generation_config.eos_token_id
        eos = self.tokenizer.eos_token_id if eos is None else eos
        stop = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.pad_token_id}
        with torch.inference_mode():
            for batch in self.batches(sub, order):
                out = self.model.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                          max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                          temperature=None, top_p=None, top_k=None,
                                          pad_token_id=self.tokenizer.pad_token_id, eos_token_id=eos)
                new = out[:, batch.input_ids.shape[1] :].cpu().tolist()
                for row, tokens in zip(order[batch.start : batch.start + len(new)], new):
                    cut = next((k for k, t in enumerate(tokens) if t in stop), len(tokens))
                    results[live[row]] = tokens[:cut]
        return results

    def _too_long(self, length: int, extra: int = 0) -> str | None:
        if self.max_positions and length + extra > self.max_positions:
            return (f"judge prompt too long: {length} tokens" + (f" + {extra} to generate" if extra else "")
                    + f" > {self.max_positions}, the judge model's context")
        return None

    # --- the contract -------------------------------------------------------------------------

    def _prepare(self, items: list, render, answers, extra: int = 0):
        """Render and tokenize every item at once. Returns the failures (index -> (error, rendered)) and
        the runnable items' indices, rendered prompts and token ids."""
        failures: dict[int, tuple[str, str]] = {}
        runnable: list[int] = []
        texts: list[str] = []
        for index, item in enumerate(items):
            try:
                text = render(item)
            except UnknownPrinciple as err:
                failures[index] = (str(err), "")
                continue
            error = empty_answer(*answers(item))
            if error:
                failures[index] = (error, text)
            else:
                runnable.append(index)
                texts.append(text)
        ids = self.encode(texts)
        keep = []
        for k, index in enumerate(runnable):
            error = self._too_long(len(ids[k]), extra)
            if error:
                failures[index] = (error, texts[k])
            else:
                keep.append(k)
        return failures, [runnable[k] for k in keep], [texts[k] for k in keep], [ids[k] for k in keep]

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        started = time.perf_counter()
        failures, runnable, texts, ids = self._prepare(
            items, self.render_reasoning if self.chain_of_thought else self.render,
            lambda item: (("first", item.first), ("second", item.second)),
            self.max_reasoning_tokens + VERDICT_TOKENS if self.chain_of_thought else 0)
        reasoning: list[str] = []
        label_ids = self.label_ids
        if self.chain_of_thought and runnable:
            new = self.generate_ids(ids, self.max_reasoning_tokens)
            reasoning = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            suffix = self.templates["verdict_after_reasoning"]
            texts = [text + thought.rstrip() + suffix for text, thought in zip(texts, reasoning)]
            ids = self.encode(texts)
            label_ids = self._label_token_ids(suffix)
        logp = self.label_logprobs(ids, label_ids)
        each_ms = (time.perf_counter() - started) * 1000 / max(1, len(items))
        p_a = np.exp(-np.logaddexp(0.0, logp[:, 1] - logp[:, 0]))  # softmax over the labels A and B
        mass = np.exp(logp).sum(-1)
        verdicts: list[Verdict | None] = [None] * len(items)
        for index, (error, rendered) in failures.items():
            verdicts[index] = Verdict(None, items[index].principle, "failed", error, latency_ms=each_ms,
                                      rendered=rendered)
        for k, index in enumerate(runnable):
            p_first = float(p_a[k])
            raw: dict[str, Any] = {"p_A": round(p_first, 6), "label_mass": round(float(mass[k]), 6)}
            if self.chain_of_thought:
                raw.update(reasoning=reasoning[k].strip(), p_unclamped=p_first)
                p_first = clamp_cot(p_first)
            verdicts[index] = Verdict(p_first, items[index].principle, raw=raw, latency_ms=each_ms, rendered=texts[k])
        return verdicts  # type: ignore[return-value]

    def score(self, items: list[ScoreItem]) -> list[Score]:
        """1-10 per answer: the expected score under the label probabilities (Lee et al. 2023)."""
        started = time.perf_counter()
        labels = self.score_labels()
        failures, runnable, texts, ids = self._prepare(items, self.render_score,
                                                       lambda item: (("response", item.response),))
        logp = self.score_logprobs(ids, labels)
        each_ms = (time.perf_counter() - started) * 1000 / max(1, len(items))
        scores: list[Score | None] = [None] * len(items)
        for index, (error, rendered) in failures.items():
            scores[index] = Score(None, items[index].principle, "failed", error, latency_ms=each_ms, rendered=rendered)
        for k, index in enumerate(runnable):
            row: np.ndarray = logp[k].astype(np.float64)
            probs = np.exp(row - row.max())
            probs /= probs.sum()
            value = expected_score(dict(zip(SCORES, probs.tolist())))
            raw = {"probabilities": {str(s): round(float(p), 6) for s, p in zip(SCORES, probs)},
                   "label_mass": round(float(np.exp(row).sum()), 6)}
            scores[index] = Score(value, items[index].principle, raw=raw, latency_ms=each_ms, rendered=texts[k])
        return scores  # type: ignore[return-value]

    def score_logprobs(self, ids: list[list[int]], labels: ScoreLabels | None = None) -> np.ndarray:
        """Log-probabilities of the labels 1..10 (one column each) after each sequence. With a two-token
        "10": log P(1) = log P("1") + log(1 - P("0" | "1")), log P(10) = log P("1") + log P("0" | "1")."""
        labels = labels or self.score_labels()
        logp = self.label_logprobs(ids, labels.first, labels.ten)
        if labels.ten is None:
            return logp
        one, zero = logp[:, :1], logp[:, -1:]
        with np.errstate(divide="ignore"):
            rest = np.log(-np.expm1(np.minimum(zero, 0.0)))  # log(1 - P("0" | "1")); -inf when P = 1
        return np.concatenate([one + rest, logp[:, 1:-1], one + zero], axis=1)

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """Greedy continuations of plain prompts (in the chat template when the tokenizer has one), new text
        only. A prompt longer than the model's context keeps its end."""
        ids = self.encode([self._wrap(p) for p in prompts])
        if self.max_positions:
            room = max(1, self.max_positions - max_new_tokens)
            ids = [row[-room:] for row in ids]
        new = self.generate_ids(ids, max_new_tokens)
        return [text.strip() for text in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
