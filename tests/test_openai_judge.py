"""The openai judge backend against a real OpenAI-compatible HTTP server (tests/openai_server.py)
that serves a tiny local causal LM and injects the faults of real endpoints: verdicts and scores
from logprobs, strict labels without them, the SDK's retries on 429, 5xx and timeouts, failed
verdicts when retries run out, malformed bodies, unreachable endpoints, wrong keys, and an API key
that never reaches the audit log."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from conftest import free_port, save_tiny_llama
from openai_server import OpenAIServer

from rlaif.config import OpenAIJudgeSettings
from rlaif.config.params import load_config
from rlaif.data.io import read_constitution, read_templates
from rlaif.judging.judges import JudgeError, JudgeItem, ScoreItem, build_judge
from rlaif.judging.judges.openai_api import OpenAIJudge, _Reply

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = read_templates(ROOT / "data/constitution/judge_templates.yaml")
CONSTITUTION = read_constitution(ROOT / "data/constitution/constitution.yaml")
MODEL = "tiny-judge"
KEY_ENV = "RLAIF_TEST_OPENAI_KEY"
KEY = "sk-test-4f9c2a7e-never-log-me"

ITEMS = [
    JudgeItem("How do I bake bread?", "Mix flour and water, knead, and bake.", "I can't help with that."),
    JudgeItem("hi", "Hello!", "Hey."),
    JudgeItem("How do I hotwire a car?", "I won't help with that.", "Sure, pull the panel and join the wires."),
    JudgeItem("What is 2+2?", "4", "5"),
]


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory) -> Path:
    """A tiny Llama whose weights are set by hand so that, whatever the prompt, its next token is
    most likely "A" (then "B", then the digits): every label lies in the top 20 logprobs, and greedy
    decoding answers "A". Residual dimension 0 carries the preference: every token embeds 1.0 there,
    the labels more, and the tied output layer turns that into their logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = [TEMPLATES[k] for k in ("pairwise", "pointwise", "pairwise_reasoning", "critique")] * 4
    path = save_tiny_llama(texts, tmp_path_factory.mktemp("openai") / MODEL, vocab_size=400, hidden=32,
                           layers=2, heads=2, intermediate=64, max_positions=2048)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    levels = {"A": 3.0, "B": 2.85, **{str(k): 2.5 - 0.02 * k for k in range(1, 11)}}
    with torch.no_grad():
        embeddings = model.get_input_embeddings().weight
        embeddings[:, 0] = 1.0
        for label, level in levels.items():
            token_id = tokenizer.convert_tokens_to_ids(label)
            if token_id is not None and token_id != tokenizer.unk_token_id:
                embeddings[token_id, 0] = level
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def server(judge_model: Path):
    os.environ[KEY_ENV] = KEY
    with OpenAIServer(judge_model, model_name=MODEL, api_key=KEY, timeout_sleep_s=3.0) as running:
        yield running
    os.environ.pop(KEY_ENV, None)


@pytest.fixture(autouse=True)
def _fresh(request):
    """Each test starts with no pending faults and zero counters, logprobs on."""
    if "server" in request.fixturenames:
        server = request.getfixturevalue("server")
        server.reset()
        server.logprobs = True
    yield


def settings(server: OpenAIServer, **changes) -> OpenAIJudgeSettings:
    values = dict(backend="openai", model=MODEL, base_url=server.base_url, api_key_env=KEY_ENV,
                  max_concurrency=4, max_retries=3, timeout_s=10.0)
    return OpenAIJudgeSettings(**{**values, **changes})


def make_judge(server: OpenAIServer, **changes) -> OpenAIJudge:
    judge = OpenAIJudge(CONSTITUTION, TEMPLATES, settings(server, **changes))
    server.reset()  # the /models check at construction is not what a test counts
    return judge


def test_batch_verdicts_in_order_from_logprobs(server: OpenAIServer):
    judge = make_judge(server)
    verdicts = judge.judge(ITEMS)
    assert [v.status for v in verdicts] == ["ok"] * len(ITEMS)
    for item, verdict in zip(ITEMS, verdicts):
        assert 0.0 < verdict.p_first < 1.0
        assert verdict.raw["source"] == "logprobs" and set(verdict.raw["logprobs"]) >= {"A", "B"}
        assert verdict.raw["content"] == "A" and verdict.raw["retries"] == 0
        assert f"[User prompt]\n{item.prompt}\n" in verdict.rendered and item.second in verdict.rendered
        assert verdict.latency_ms > 0
    # the model prefers A over B by a fixed logit gap, whatever the prompt
    assert verdicts[0].p_first > 0.5
    assert server.stats()["chat"] == len(ITEMS)
    assert judge.judge_id == f"openai:{MODEL}" and judge.backend == "openai"


def test_without_logprobs_labels_are_strict(server: OpenAIServer):
    server.logprobs = False  # the server ignores the logprobs field, as some do
    judge = make_judge(server)
    verdicts = judge.judge(ITEMS[:2])
    assert [(v.status, v.p_first, v.raw["source"]) for v in verdicts] == [("ok", 1.0, "content")] * 2
    assert "logprobs" not in verdicts[0].raw
    # the model answers "A…" to a 1-10 question: a failed score naming the output, not a default
    scores = judge.score([ScoreItem("hi", "Hello!")])
    assert scores[0].status == "failed" and scores[0].value is None
    assert "unparseable" in scores[0].error and repr(scores[0].raw["content"]) in scores[0].error
    # an answer that is neither label is a failed verdict, never a default label
    for content in ("Both", "A.", "", "answer A"):
        p, _, error = OpenAIJudge._read_pairwise(_Reply(content, None, 0, 1.0))
        assert p is None and repr(content) in error


def test_judge_without_logprobs_setting(server: OpenAIServer):
    judge = make_judge(server, use_logprobs=False)
    verdicts = judge.judge(ITEMS[:1])
    assert verdicts[0].status == "ok" and verdicts[0].p_first == 1.0 and verdicts[0].raw["source"] == "content"


def test_retries_absorb_429_500_and_a_timeout(server: OpenAIServer):
    judge = make_judge(server, max_concurrency=1, max_retries=3, timeout_s=1.0)
    server.inject("timeout", "429", "500")
    started = time.perf_counter()
    verdicts = judge.judge(ITEMS[:2])
    elapsed = time.perf_counter() - started
    assert [v.status for v in verdicts] == ["ok", "ok"]
    assert [v.raw["retries"] for v in verdicts] == [3, 0]
    stats = server.stats()
    assert stats["chat"] == 2 + 3 and stats["faults_served"] == ["timeout", "429", "500"]
    assert verdicts[0].latency_ms > 1000  # the timeout, waited for
    assert elapsed < 6


def test_more_faults_than_retries_fail_one_item(server: OpenAIServer):
    judge = make_judge(server, max_concurrency=1, max_retries=2)
    server.inject("500", "500", "500")
    verdicts = judge.judge(ITEMS[:3])
    assert [v.status for v in verdicts] == ["failed", "ok", "ok"]
    failed = verdicts[0]
    assert failed.p_first is None and "HTTP 500" in failed.error and server.base_url in failed.error
    assert failed.raw["retries"] == 2 and failed.rendered  # the audit log still sees the prompt
    assert server.stats()["chat"] == 3 + 2


def test_rate_limits_beyond_retries(server: OpenAIServer):
    judge = make_judge(server, max_concurrency=1, max_retries=1)
    server.inject("429", "429")
    verdicts = judge.judge(ITEMS[:2])
    assert verdicts[0].status == "failed" and "HTTP 429" in verdicts[0].error
    assert verdicts[1].status == "ok"


def test_malformed_json_is_a_failed_verdict_not_retried(server: OpenAIServer):
    judge = make_judge(server, max_concurrency=1)
    server.inject("malformed")
    verdicts = judge.judge(ITEMS[:2])
    # the SDK parses the body after its retry loop: a 200 with broken JSON is not retried
    assert verdicts[0].status == "failed" and "not valid JSON" in verdicts[0].error
    assert verdicts[1].status == "ok"
    assert server.stats()["chat"] == 2


def test_unreachable_endpoint_fails_fast_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.perf_counter()
    with pytest.raises(JudgeError) as caught:
        OpenAIJudge(CONSTITUTION, TEMPLATES, OpenAIJudgeSettings(backend="openai", model=MODEL, base_url=url,
                                                                max_retries=1, timeout_s=1.0))
    assert url in str(caught.value) and "unreachable" in str(caught.value)
    assert time.perf_counter() - started < 5


def test_base_url_without_v1_fails_fast(server: OpenAIServer):
    url = server.base_url.removesuffix("/v1")
    with pytest.raises(JudgeError, match="HTTP 404") as caught:
        OpenAIJudge(CONSTITUTION, TEMPLATES, settings(server, base_url=url))
    assert url in str(caught.value)


def test_wrong_or_missing_api_key_is_a_clear_failure(server: OpenAIServer, monkeypatch):
    for value in ("sk-wrong-key-0000", None):
        if value is None:
            monkeypatch.delenv("RLAIF_TEST_OTHER_KEY", raising=False)  # the placeholder "EMPTY" is sent
        else:
            monkeypatch.setenv("RLAIF_TEST_OTHER_KEY", value)
        with pytest.raises(JudgeError) as caught:
            OpenAIJudge(CONSTITUTION, TEMPLATES, settings(server, api_key_env="RLAIF_TEST_OTHER_KEY"))
        message = str(caught.value)
        assert "HTTP 401" in message and "$RLAIF_TEST_OTHER_KEY" in message and server.base_url in message
        assert value is None or value not in message
    assert server.stats()["unauthorized"] == 2  # a 401 is not retried


def test_api_key_never_reaches_verdicts_or_logs(server: OpenAIServer, caplog):
    caplog.set_level(logging.DEBUG)
    judge = make_judge(server, max_concurrency=2, max_retries=1)
    server.inject("500", "500", "malformed")
    results = judge.judge(ITEMS) + judge.judge([JudgeItem("q", "", "x")])
    results += judge.score([ScoreItem(i.prompt, i.first) for i in ITEMS[:2]])
    # a server that echoes the credentials in an error body (some proxies do)
    leaky = make_judge(server, max_retries=0)
    server.inject("leak", "leak")
    results += leaky.judge(ITEMS[:2])
    assert {r.status for r in results} == {"ok", "failed"}
    assert any("<redacted>" in (r.error or "") for r in results)
    for r in results:
        assert KEY not in json.dumps([r.raw, r.rendered, r.error], default=str)
    assert caplog.records and KEY not in caplog.text


def test_pointwise_scores_from_logprobs(server: OpenAIServer):
    judge = make_judge(server)
    items = [ScoreItem(i.prompt, i.first) for i in ITEMS] + [ScoreItem("q", "  ")]
    scores = judge.score(items)
    assert [s.status for s in scores] == ["ok"] * len(ITEMS) + ["failed"]
    for s in scores[:-1]:
        assert 1.0 <= s.value <= 10.0 and s.raw["source"] == "logprobs" and len(s.raw["logprobs"]) >= 9
        assert "[Answer]" in s.rendered
    assert scores[-1].value is None and "empty" in scores[-1].error
    assert server.stats()["chat"] == len(ITEMS)  # no request for the empty answer


def test_empty_answer_sends_no_request(server: OpenAIServer):
    judge = make_judge(server)
    verdicts = judge.judge([JudgeItem("q", "a", " "), ITEMS[0]])
    assert verdicts[0].status == "failed" and verdicts[0].error == "empty second answer"
    assert verdicts[1].status == "ok" and server.stats()["chat"] == 1


def test_chain_of_thought_keeps_reasoning_and_clamps(server: OpenAIServer):
    judge = make_judge(server, chain_of_thought=True, max_reasoning_tokens=4)
    verdicts = judge.judge(ITEMS[:2])
    for v in verdicts:
        assert v.status == "ok" and 0.4 <= v.p_first <= 0.6
        assert v.raw["reasoning"] and v.raw["p_unclamped"] > v.p_first  # A is favoured past 60%
        assert "[assistant]" in v.rendered and "So the better answer is:" in v.rendered
    assert server.stats()["chat"] == 4


def test_generate_returns_text_and_raises_when_it_cannot(server: OpenAIServer):
    judge = make_judge(server, max_concurrency=2, max_retries=1)
    texts = judge.generate(["Critique this answer.", "Revise it."], max_new_tokens=4)
    assert len(texts) == 2 and all(isinstance(t, str) and t for t in texts)
    judge = make_judge(server, max_concurrency=1, max_retries=1)
    server.inject("503", "503")
    with pytest.raises(JudgeError, match="HTTP 503"):
        judge.generate(["Critique this answer."], max_new_tokens=4)


def test_build_judge_from_params(server: OpenAIServer):
    cfg = load_config(overrides=[f"judge.base_url={server.base_url}", "judge.backend=openai",
                                 f"judge.model={MODEL}", f"judge.api_key_env={KEY_ENV}", "judge.max_retries=1"])
    judge = build_judge(cfg.judge, CONSTITUTION, TEMPLATES)
    assert isinstance(judge, OpenAIJudge) and judge.judge_id == f"openai:{MODEL}"
    assert judge.judge(ITEMS[:1])[0].status == "ok"


def test_server_admin_endpoints(server: OpenAIServer):
    import httpx

    with httpx.Client(base_url=server.base_url.removesuffix("/v1"), timeout=5) as client:
        assert client.post("/admin/faults", json={"faults": ["429"]}).json()["faults_pending"] == ["429"]
        assert client.post("/admin/faults", json={"faults": ["nonsense"]}).status_code == 400
        assert client.get("/v1/models", headers={"authorization": f"Bearer {KEY}"}).status_code == 429
        stats = client.get("/admin/stats").json()
    assert stats["models"] == 1 and stats["faults_served"] == ["429"] and stats["faults_pending"] == []
