"""A real OpenAI-compatible HTTP server for tests: a local causal LM behind `GET /v1/models` and
`POST /v1/chat/completions` (greedy decoding, `logprobs`/`top_logprobs` from the model's own
next-token distributions), with the failures that real endpoints show, injected on demand.

Faults form a queue; each request to /v1/... takes the next one (after the API key check):
  "429", "500", any other 3-digit status  -> that status with an OpenAI-style JSON error body
                                            (and `retry-after-ms` when `retry_after_ms` is set)
  "timeout"                               -> sleep `timeout_sleep_s` (longer than the client's
                                            timeout), then answer normally
  "malformed"                             -> status 200 with a body that is not valid JSON
  "leak"                                  -> status 400 whose error message echoes the request's
                                            Authorization header (as careless proxies do)
Set them with `server.inject(...)`, the constructor's `faults=`, or `POST /admin/faults
{"faults": [...]}`; `GET /admin/stats` (or `server.stats()`) counts the requests received.

    with OpenAIServer("path/to/model", api_key="sk-test") as server:
        client = OpenAI(base_url=server.base_url, api_key="sk-test")
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

FAULTS = ("timeout", "malformed", "leak")  # besides 3-digit HTTP statuses
MALFORMED_BODY = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "mess'


def message_text(content: Any) -> str:
    """A chat message's content: a string, or a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def format_messages(tokenizer, messages: list[dict]) -> str:
    """The text the model continues: its chat template when it has one, else `Role: text` lines
    ending with `Assistant:` (the project's plain dialogue format)."""
    plain = [{"role": m.get("role", "user"), "content": message_text(m.get("content"))} for m in messages]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in plain]
    return "\n".join(lines) + "\nAssistant:"


def _check_fault(fault: str) -> str:
    fault = str(fault).strip().lower()
    if fault in FAULTS or (fault.isdigit() and len(fault) == 3):
        return fault
    raise ValueError(f"unknown fault {fault!r}: expected a 3-digit HTTP status or one of {FAULTS}")


class OpenAIServer:
    """The server, run by uvicorn in a background thread on 127.0.0.1 (a free port unless given)."""

    def __init__(self, model_path: str | Path, *, model_name: str = "tiny-judge", api_key: str | None = None,
                 logprobs: bool = True, faults: Iterable[str] = (), retry_after_ms: int | None = 10,
                 timeout_sleep_s: float = 5.0, port: int = 0):
        self.model_path = str(model_path)
        self.model_name = model_name
        self.api_key = api_key  # None: any key (or none) is accepted
        self.logprobs = logprobs  # False: the `logprobs` request field is ignored, as some servers do
        self.retry_after_ms = retry_after_ms  # on injected error statuses; None sends no header
        self.timeout_sleep_s = timeout_sleep_s
        self.port = port
        self._faults: deque[str] = deque(_check_fault(f) for f in faults)
        self._lock = threading.Lock()  # counters and faults
        self._model_lock = threading.Lock()  # one forward pass at a time
        self._stopping = threading.Event()
        self._counts = {"models": 0, "chat": 0, "unauthorized": 0}
        self._served: list[str] = []
        self._prompts: list[str] = []
        self._server = None
        self._thread: threading.Thread | None = None
        self.model = self.tokenizer = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait_s: float = 30.0) -> "OpenAIServer":
        import uvicorn
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path).eval()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"openai-server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + wait_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"test OpenAI server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._stopping.set()  # injected timeouts stop sleeping
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                raise RuntimeError(f"test OpenAI server on port {self.port} did not stop")

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- control ------------------------------------------------------------------------------

    def inject(self, *faults: str) -> None:
        checked = [_check_fault(f) for f in faults]
        with self._lock:
            self._faults.extend(checked)

    def reset(self) -> None:
        """No pending faults, counters at zero."""
        with self._lock:
            self._faults.clear()
            self._counts = dict.fromkeys(self._counts, 0)
            self._served.clear()
            self._prompts.clear()

    def stats(self) -> dict:
        with self._lock:
            return {"requests": sum(self._counts.values()), **self._counts,
                    "faults_served": list(self._served), "faults_pending": list(self._faults)}

    @property
    def prompts(self) -> list[str]:
        """The user texts of the chat requests received, in arrival order."""
        with self._lock:
            return list(self._prompts)

    def _next_fault(self, kind: str) -> str | None:
        with self._lock:
            self._counts[kind] += 1
            fault = self._faults.popleft() if self._faults else None
            if fault:
                self._served.append(fault)
            return fault

    # --- HTTP ---------------------------------------------------------------------------------

    def _app(self):
        app = FastAPI()

        def error(status: int, message: str, kind: str, headers: dict | None = None):
            return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}},
                                status_code=status, headers=headers)

        def gate(request: Request, kind: str):
            """The API key check, then the next fault; a response when the request ends here."""
            if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
                with self._lock:
                    self._counts["unauthorized"] += 1
                return error(401, "Incorrect API key provided.", "invalid_request_error")
            fault = self._next_fault(kind)
            if fault == "timeout":
                self._stopping.wait(self.timeout_sleep_s)
                return None
            if fault == "leak":
                return error(400, f"bad request with authorization {request.headers.get('authorization')!r}",
                             "invalid_request_error")
            if fault == "malformed":
                return Response(MALFORMED_BODY, status_code=200, media_type="application/json")
            if fault:
                headers = {"retry-after-ms": str(self.retry_after_ms)} if self.retry_after_ms is not None else None
                kind = "rate_limit_error" if fault == "429" else "server_error"
                return error(int(fault), f"injected fault: HTTP {fault}", kind, headers)
            return None

        @app.get("/v1/models")
        def models(request: Request):
            stop = gate(request, "models")
            if stop is not None:
                return stop
            return {"object": "list", "data": [{"id": self.model_name, "object": "model", "created": 0,
                                                "owned_by": "tests"}]}

        @app.post("/v1/chat/completions")
        def chat(request: Request, body: dict):
            stop = gate(request, "chat")
            if stop is not None:
                return stop
            if body.get("model") != self.model_name:
                return error(404, f"The model `{body.get('model')}` does not exist.", "invalid_request_error")
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                return error(400, "messages: expected a non-empty list", "invalid_request_error")
            top_n = int(body.get("top_logprobs") or 0)
            if top_n > 20:
                return error(400, "top_logprobs: at most 20", "invalid_request_error")
            max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
            with self._lock:
                self._prompts.append("\n".join(message_text(m.get("content")) for m in messages))
            want_logprobs = bool(body.get("logprobs")) and self.logprobs
            return self.complete(messages, max_tokens, top_n if want_logprobs else None)

        @app.post("/admin/faults")
        def set_faults(body: dict):
            try:
                faults = [_check_fault(f) for f in body.get("faults", [])]
            except ValueError as err:
                return error(400, str(err), "invalid_request_error")
            if body.get("replace"):
                with self._lock:
                    self._faults.clear()
            self.inject(*faults)
            return self.stats()

        @app.get("/admin/stats")
        def stats():
            return self.stats()

        @app.post("/admin/reset")
        def reset():
            self.reset()
            return self.stats()

        return app

    # --- the model ----------------------------------------------------------------------------

    def complete(self, messages: list[dict], max_tokens: int, top_logprobs: int | None) -> dict:
        """Greedy decoding; with `top_logprobs` (possibly 0) the logprobs of every generated token."""
        import torch

        text = format_messages(self.tokenizer, messages)
        ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        limit = getattr(self.model.config, "max_position_embeddings", 2048) - max_tokens
        ids = ids[:, -max(1, limit):]  # keep the end: that is what the model answers
        eos = self.tokenizer.eos_token_id
        with self._model_lock, torch.no_grad():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                      do_sample=False, output_logits=True, return_dict_in_generate=True,
                                      pad_token_id=self.tokenizer.pad_token_id or eos)
        new = out.sequences[0, ids.shape[1]:].tolist()
        finish = "stop" if eos in new else "length"
        if eos in new:
            new = new[: new.index(eos)]
        content, entries = self.tokenizer.decode(new, skip_special_tokens=True), []
        if top_logprobs is not None:
            for token_id, logits in zip(new, out.logits):
                logp = torch.log_softmax(logits[0].float(), dim=-1)
                best = torch.topk(logp, k=min(top_logprobs, logp.shape[-1])) if top_logprobs else None
                alternatives = [] if best is None else [self._entry(i, v) for v, i in
                                                        zip(best.values.tolist(), best.indices.tolist())]
                entries.append({**self._entry(token_id, logp[token_id].item()), "top_logprobs": alternatives})
        choice = {"index": 0, "message": {"role": "assistant", "content": content},
                  "logprobs": {"content": entries} if top_logprobs is not None else None, "finish_reason": finish}
        return {"id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model_name, "choices": [choice],
                "usage": {"prompt_tokens": ids.shape[1], "completion_tokens": len(new),
                          "total_tokens": ids.shape[1] + len(new)}}

    def _entry(self, token_id: int, logprob: float) -> dict:
        token = self.tokenizer.decode([token_id])
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def openai_server(model_path: str | Path, **options) -> OpenAIServer:
    """`with openai_server(path, api_key=...) as server:` (a started server, stopped on exit)."""
    return OpenAIServer(model_path, **options)
