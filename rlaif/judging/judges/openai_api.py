"""The openai judge: any OpenAI-compatible chat endpoint (vLLM, TGI, Ollama, hosted APIs).

Pairwise verdicts are read from the first answer token: P(A) / (P(A) + P(B)) from its top logprobs
when the server returns them, else the answer text itself, which must then be exactly "A" or "B"
(p_first 1.0 or 0.0); anything else is a failed verdict naming the output, never a default label.
Pointwise scores are the expected label over "1".."10" (logprobs) or a strictly parsed integer.

Requests go through the official `openai` SDK, whose client retries with exponential backoff
(0.5 s doubling up to 8 s, minus up to 25% jitter, or the server's Retry-After up to 2 minutes) on
connection errors, timeouts, HTTP 408, 409, 429 and 5xx (openai/_base_client.py, `_should_retry` and
`_calculate_retry_timeout`). A request that still fails becomes a failed verdict naming the HTTP
status or the exception; `generate` raises JudgeError instead. The API key is read from the
environment variable that the settings name and is scrubbed from everything the judge returns.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from rlaif.config import OpenAIJudgeSettings
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

log = logging.getLogger(__name__)

PLACEHOLDER_KEY = "EMPTY"  # what vLLM and most local servers accept when no key is configured
LABELS = ("A", "B")
SCORE_LABELS = {str(k): k for k in range(SCORE_MIN, SCORE_MAX + 1)}
TOP_LOGPROBS = 20  # the OpenAI API's maximum
VERDICT_INSTRUCTION = "Reply with a single letter: A or B."
ERROR_CHARS = 300  # an error message keeps this much of the server's body

T = TypeVar("T")


@dataclass
class _Reply:
    """One chat completion: its text, the first token's top logprobs (None when the server sent
    none) and the retries the SDK took to get it."""

    content: str
    top_logprobs: dict[str, float] | None
    retries: int
    latency_ms: float


class _Failure(Exception):
    """A request (or an item) that failed: becomes a failed verdict."""

    def __init__(self, message: str, retries: int = 0, latency_ms: float = 0.0, raw: dict | None = None):
        super().__init__(message)
        self.message, self.retries, self.latency_ms, self.raw = message, retries, latency_ms, raw or {}


class OpenAIJudge:
    """An OpenAI-compatible chat endpoint as judge, with bounded concurrency; results in input order."""

    backend = "openai"

    def __init__(self, constitution: Constitution, templates: dict[str, str], settings: OpenAIJudgeSettings):
        import openai

        if not settings.base_url:
            raise ValueError("the openai judge needs base_url (the server's /v1 address)")
        needed = ["pairwise", "pointwise"]
        if settings.chain_of_thought:
            needed += ["pairwise_reasoning", "verdict_after_reasoning"]
        for key in needed:
            if key not in templates:
                raise ValueError(f"judge templates lack {key!r}, which the openai judge needs")
        self.constitution = constitution
        self.templates = templates
        self.settings = settings
        self.model_name = settings.model
        self.base_url = settings.base_url.rstrip("/")
        self.principles = {p.id: p.text for p in constitution.of_kind("comparison")}
        self._key = os.environ.get(settings.api_key_env) or PLACEHOLDER_KEY
        self._openai = openai
        self.client = openai.OpenAI(base_url=self.base_url, api_key=self._key, max_retries=settings.max_retries,
                                    timeout=settings.timeout_s)
        self._check_endpoint()
        log.info("openai judge: model %r at %s (max_concurrency=%d, max_retries=%d)", self.model_name,
                 self.base_url, settings.max_concurrency, settings.max_retries)

    @property
    def judge_id(self) -> str:
        return f"{self.backend}:{self.model_name}"

    # --- the contract -------------------------------------------------------------------------

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        return self._map(self._judge_one, items)

    def score(self, items: list[ScoreItem]) -> list[Score]:
        return self._map(self._score_one, items)

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        def one(prompt: str) -> str:
            try:
                return self._chat([{"role": "user", "content": prompt}], max_tokens=max_new_tokens).content
            except _Failure as failure:
                raise JudgeError(f"openai judge {self.judge_id} at {self.base_url}: generation failed: {failure}") from None

        return self._map(one, prompts)

    # --- rendering ----------------------------------------------------------------------------

    def _principles(self, ids: list[str] | None) -> str:
        unknown = [i for i in ids or [] if i not in self.principles]
        if unknown:
            raise _Failure(f"unknown comparison principle(s) {unknown}")
        return principle_text(self.principles, ids)

    def render(self, item: JudgeItem, template: str = "pairwise") -> str:
        return self.templates[template].format(principle=self._principles(item.principle_ids),
                                               prompt=neutralise(item.prompt), response_a=neutralise(item.first),
                                               response_b=neutralise(item.second))

    def render_score(self, item: ScoreItem) -> str:
        return self.templates["pointwise"].format(principle=self._principles(item.principle_ids),
                                                  prompt=neutralise(item.prompt), response=neutralise(item.response))

    # --- one item -----------------------------------------------------------------------------

    def _judge_one(self, item: JudgeItem) -> Verdict:
        principle = item.principle
        problem = empty_answer(("first", item.first), ("second", item.second))
        if problem:
            return Verdict(None, principle, "failed", problem)
        rendered, retries, latency = "", 0, 0.0
        raw: dict[str, Any] = {}
        try:
            if self.settings.chain_of_thought:
                rendered = self.render(item, "pairwise_reasoning")
                messages = [{"role": "user", "content": rendered}]
                thought = self._chat(messages, max_tokens=self.settings.max_reasoning_tokens)
                retries, latency = thought.retries, thought.latency_ms
                raw["reasoning"] = thought.content
                messages += [{"role": "assistant", "content": thought.content},
                             {"role": "user", "content": self._verdict_request()}]
                rendered = _transcript(messages)
            else:
                rendered = self.render(item)
                messages = [{"role": "user", "content": rendered}]
            reply = self._chat(messages, max_tokens=1, labels=True)
            retries, latency = retries + reply.retries, latency + reply.latency_ms
            raw.update(content=reply.content, retries=retries)
            p_first, source, problem = self._read_pairwise(reply)
            raw["source"] = source
            if reply.top_logprobs is not None:
                raw["logprobs"] = {k: v for k, v in reply.top_logprobs.items() if k.strip() in LABELS}
            if problem or p_first is None:  # _read_pairwise names a problem whenever it has no probability
                return self._clean(Verdict(None, principle, "failed", problem, raw=raw, latency_ms=latency,
                                           rendered=rendered))
            if self.settings.chain_of_thought:
                raw["p_unclamped"] = p_first
                p_first = clamp_cot(p_first)
            return self._clean(Verdict(p_first, principle, raw=raw, latency_ms=latency, rendered=rendered))
        except _Failure as failure:
            raw.update(failure.raw, retries=retries + failure.retries)
            return self._clean(Verdict(None, principle, "failed", failure.message, raw=raw,
                                       latency_ms=latency + failure.latency_ms, rendered=rendered))

    def _score_one(self, item: ScoreItem) -> Score:
        principle = item.principle
        problem = empty_answer(("response", item.response))
        if problem:
            return Score(None, principle, "failed", problem)
        rendered = ""
        try:
            rendered = self.render_score(item)
            # two tokens: "10" is two tokens for tokenizers that split digits
            reply = self._chat([{"role": "user", "content": rendered}], max_tokens=2, labels=True)
        except _Failure as failure:
            return self._clean(Score(None, principle, "failed", failure.message,
                                     raw={**failure.raw, "retries": failure.retries},
                                     latency_ms=failure.latency_ms, rendered=rendered))
        raw = {"content": reply.content, "retries": reply.retries}
        value, source, problem = None, "content", None
        if reply.top_logprobs is not None:
            raw["logprobs"] = {k: v for k, v in reply.top_logprobs.items() if k.strip() in SCORE_LABELS}
            probabilities: dict[int, float] = {}
            for token, logprob in reply.top_logprobs.items():
                label = SCORE_LABELS.get(token.strip())
                if label is not None:
                    probabilities[label] = probabilities.get(label, 0.0) + math.exp(logprob)
            if sum(probabilities.values()) > 0:
                value, source = expected_score(probabilities), "logprobs"
        if value is None:
            # the score, then whatever the model goes on with in the second token ("7 7" from transformers serve,
            # "7/" or "7." from chat models): two tokens are asked for so that "10" fits
            leading = re.match(r"(\d{1,2})(?!\d)", reply.content.strip())
            if leading and SCORE_MIN <= int(leading[1]) <= SCORE_MAX:
                value = float(leading[1])
            else:
                problem = (f"unparseable judge output {reply.content!r}: expected an integer from {SCORE_MIN} "
                           f"to {SCORE_MAX}" + (" (no score label among the top logprobs)"
                                                if reply.top_logprobs is not None else ""))
        raw["source"] = source
        status = "failed" if problem else "ok"
        return self._clean(Score(value, principle, status, problem, raw=raw, latency_ms=reply.latency_ms,
                                 rendered=rendered))

    def _verdict_request(self) -> str:
        return f"{self.templates['verdict_after_reasoning'].strip()} {VERDICT_INSTRUCTION}"

    @staticmethod
    def _read_pairwise(reply: _Reply) -> tuple[float | None, str, str | None]:
        """(p_first, source, error): logprobs of "A"/"B" when present, else the strict text."""
        if reply.top_logprobs is not None:
            mass = {label: 0.0 for label in LABELS}
            for token, logprob in reply.top_logprobs.items():
                if token.strip() in mass:
                    mass[token.strip()] += math.exp(logprob)
            total = mass["A"] + mass["B"]
            if total > 0:
                return mass["A"] / total, "logprobs", None
        text = reply.content.strip()
        if text in LABELS:
            return (1.0 if text == "A" else 0.0), "content", None
        detail = " (neither A nor B among the top logprobs)" if reply.top_logprobs is not None else ""
        return None, "content", f"unparseable judge output {reply.content!r}: expected exactly 'A' or 'B'{detail}"

    # --- transport ----------------------------------------------------------------------------

    def _chat(self, messages: list[dict], max_tokens: int, labels: bool = False) -> _Reply:
        """One chat completion through the SDK (its retries included). Raises _Failure."""
        params: dict = {"model": self.model_name, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if labels and self.settings.use_logprobs:
            params.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        started = time.perf_counter()
        try:
            response = self.client.chat.completions.with_raw_response.create(**params)
            retries = response.retries_taken
            completion = response.parse()
        except Exception as err:  # noqa: BLE001 - every failure becomes a named failed verdict
            latency = (time.perf_counter() - started) * 1000
            raise _Failure(self._describe(err), self._retries_used(err), latency) from None
        latency = (time.perf_counter() - started) * 1000
        try:
            choice = completion.choices[0]
            content = choice.message.content or ""
        except (AttributeError, IndexError, TypeError) as err:
            raise _Failure(f"malformed response from {self.base_url}: no choices[0].message ({err})", retries,
                           latency) from None
        top: dict[str, float] | None = None
        if labels and choice.logprobs is not None and choice.logprobs.content:
            top = {}
            for entry in choice.logprobs.content[0].top_logprobs or []:
                # tokens that decode to the same text (e.g. two ids for "A") add up
                if entry.token in top:
                    top[entry.token] = math.log(math.exp(top[entry.token]) + math.exp(entry.logprob))
                else:
                    top[entry.token] = entry.logprob
        return _Reply(content, top, retries, latency)

    def _retries_used(self, err: Exception) -> int:
        """The retries the SDK spent before giving up: all of them on what it retries
        (connection errors, timeouts, 408, 409, 429, 5xx), none otherwise."""
        if isinstance(err, self._openai.APIConnectionError):  # timeouts included
            return self.settings.max_retries
        if isinstance(err, self._openai.APIStatusError):
            status = err.status_code
            return self.settings.max_retries if status in (408, 409, 429) or status >= 500 else 0
        return 0

    def _describe(self, err: Exception) -> str:
        o = self._openai
        if isinstance(err, o.APITimeoutError):
            text = (f"request to {self.base_url} timed out after {self.settings.timeout_s:g} s "
                    f"({self.settings.max_retries} retries)")
        elif isinstance(err, o.APIConnectionError):
            cause = err.__cause__ or err.__context__
            text = (f"cannot connect to {self.base_url} after {self.settings.max_retries} retries: "
                    f"{type(cause).__name__ if cause else 'connection error'}: {cause or err}")
        elif isinstance(err, o.APIStatusError):
            retries = self._retries_used(err)
            text = f"HTTP {err.status_code} from {self.base_url}" + (f" after {retries} retries" if retries else "")
            text += f": {err.message[:ERROR_CHARS]}"
            if err.status_code in (401, 403):
                text += f" (check the API key in ${self.settings.api_key_env})"
        elif isinstance(err, json.JSONDecodeError):
            text = f"malformed response from {self.base_url}: not valid JSON ({err})"
        else:
            text = f"request to {self.base_url} failed: {type(err).__name__}: {err}"
        return self._redact(text)

    def _check_endpoint(self) -> None:
        """Fail fast: GET /models (with the SDK's retries) must answer."""
        o = self._openai
        try:
            served = [m.id for m in self.client.models.list()]
        except o.APIStatusError as err:
            if err.status_code in (401, 403):
                raise JudgeError(f"openai judge: {self.base_url} refused the API key (HTTP {err.status_code}); "
                                 f"set ${self.settings.api_key_env}") from None
            if err.status_code in (404, 405):  # most often a base_url without its /v1
                raise JudgeError(f"openai judge: {self.base_url}/models answered HTTP {err.status_code}; is "
                                 f"base_url the server's OpenAI-compatible address (e.g. http://host:8000/v1)?"
                                 ) from None
            raise JudgeError(f"openai judge: endpoint {self.base_url} is not usable: {self._describe(err)}") from None
        except Exception as err:  # noqa: BLE001
            raise JudgeError(f"openai judge: endpoint {self.base_url} is unreachable: {self._describe(err)}") from None
        if served and self.model_name not in served:
            log.warning("openai judge: %s does not list model %r (it lists %s)", self.base_url, self.model_name,
                        served[:10])

    # --- helpers ------------------------------------------------------------------------------

    def _map(self, fn: Callable[[T], object], items: list[T]) -> list:
        if not items:
            return []
        workers = min(self.settings.max_concurrency, len(items))
        if workers == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-judge") as pool:
            return list(pool.map(fn, items))

    def _redact(self, text: str) -> str:
        if self._key != PLACEHOLDER_KEY and len(self._key) >= 4:
            text = text.replace(self._key, "<redacted>")
        return text

    def _clean(self, result):
        """The key never leaves the judge: scrub it from what the audit log will store."""
        if self._key == PLACEHOLDER_KEY:
            return result
        result.rendered = self._redact(result.rendered)
        if result.error:
            result.error = self._redact(result.error)
        if self._key in json.dumps(result.raw, default=str):
            result.raw = json.loads(self._redact(json.dumps(result.raw, default=str)))
        return result


def _transcript(messages: list[dict]) -> str:
    """Several chat messages as one text for the audit log."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
