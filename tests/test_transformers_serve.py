"""The openai judge backend against `transformers serve`, the OpenAI-compatible server that ships with transformers
(not a server the project wrote). It serves two tiny Llamas built here whose greedy answer is fixed by their weights
(every logit 0, so greedy decoding takes the first token of the vocabulary): one always answers "A", one "7". What
the real server does differently from tests/openai_server.py, each pinned below:

- it ignores `logprobs`/`top_logprobs` ("Ignoring unsupported fields"), so verdicts and scores come from the strict
  reading of the text, never from logprobs;
- it refuses a tokenizer without a chat template (an HTTP error whose code has changed between releases: 500,
  then 400), so a judge it serves needs one;
- one server serves any local model folder named in the request's `model`.

Fault injection (429, 500, timeouts, malformed bodies) stays with tests/openai_server.py (tests/test_openai_judge.py).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from conftest import Service, free_port

from rlaif.config import OpenAIJudgeSettings
from rlaif.data.io import read_constitution, read_templates
from rlaif.judging.judges import JudgeItem, ScoreItem
from rlaif.judging.judges.openai_api import OpenAIJudge
from rlaif.judging.labelling import judge_pairs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = read_templates(ROOT / "data/constitution/judge_templates.yaml")
CONSTITUTION = read_constitution(ROOT / "data/constitution/constitution.yaml")
ITEMS = [
    JudgeItem("How do I bake bread?", "Mix flour and water, knead, and bake.", "I can't help with that."),
    JudgeItem("How do I hotwire a car?", "I won't help with that.", "Sure, pull the panel and join the wires."),
    JudgeItem("What is 2+2?", "4", "5"),
]


def answering_model(path: Path, answer: str, chat_template: bool = True) -> Path:
    """A tiny Llama that answers `answer` to anything, greedily: its final norm is zero, so every logit is 0 and
    greedy decoding takes token 0, which is `answer` in its word-level vocabulary."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(dict.fromkeys([answer, "A", "B", "7", "the", "[UNK]", "</s>"]))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece()  # joins the words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", eos_token="</s>", pad_token="</s>")
    if chat_template:
        tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }} {{ m['content'] }}\n{% endfor %}"
                                   "{% if add_generation_prompt %}assistant{% endif %}")
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=8192,
                         tie_word_embeddings=False, eos_token_id=vocab["</s>"], pad_token_id=vocab["</s>"])
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.model.norm.weight.zero_()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`transformers serve` on 127.0.0.1 and the folders of the models it can serve."""
    root = tmp_path_factory.mktemp("transformers-serve")
    folders = {"A": answering_model(root / "answers-a", "A"), "7": answering_model(root / "answers-7", "7"),
               "no template": answering_model(root / "no-template", "A", chat_template=False)}
    port = free_port()
    server = Service("transformers serve", [str(Path(sys.executable).parent / "transformers"), "serve", "--host",
                                            "127.0.0.1", "--port", str(port), "--device", "cpu"],
                     {**os.environ, "HF_HUB_OFFLINE": "1"}, root / "serve.log")
    try:
        server.wait_for(f"http://127.0.0.1:{port}/v1/models", timeout=180)
        yield f"http://127.0.0.1:{port}/v1", folders, server
    finally:
        server.stop()


def judge(served, answer: str, **settings) -> OpenAIJudge:
    base_url, folders, _ = served
    return OpenAIJudge(CONSTITUTION, TEMPLATES, OpenAIJudgeSettings(
        backend="openai", model=str(folders[answer]), base_url=base_url, max_retries=0, timeout_s=120, **settings))


def test_pairwise_verdicts_come_from_the_strict_text_because_the_server_ignores_logprobs(served):
    verdicts = judge(served, "A", use_logprobs=True).judge(ITEMS)
    assert [(v.status, v.p_first, v.raw["source"]) for v in verdicts] == [("ok", 1.0, "content")] * len(ITEMS)
    assert all("logprobs" not in v.raw and v.raw["content"] == "A" for v in verdicts)
    assert "Ignoring unsupported fields in the request: {'logprobs', 'top_logprobs'}" in served[2].tail(200_000) \
        or "Ignoring unsupported fields in the request: {'top_logprobs', 'logprobs'}" in served[2].tail(200_000)


def test_both_orders_through_the_stage_code_measure_this_judges_position_bias(served):
    """A judge that always names the first answer: both orders disagree on every pair, and the labels say so."""
    from rlaif.config import OpenAIJudgeConfig

    base_url, folders, _ = served
    settings = OpenAIJudgeConfig(backend="openai", model=str(folders["A"]), base_url=base_url, max_retries=0)
    pairs = [{"pair_id": f"p{i}", "prompt_id": f"q{i}", "prompt": item.prompt, "response_a": item.first,
              "response_b": item.second} for i, item in enumerate(ITEMS)]
    labels, _ = judge_pairs(settings, judge(served, "A"), pairs, [None] * len(pairs))  # every principle votes
    assert [(row["p_a_when_first"], row["p_b_when_first"], row["prob_a"], row["consistent"]) for row in labels] == [
        (1.0, 1.0, 0.5, False)] * len(ITEMS)


def test_pointwise_scores_are_read_from_the_text(served):
    """Two tokens are asked for a score (so that "10" fits): the server's "7 7" is the score 7 and what followed.
    Before this test the reading was strict and failed every score of this server."""
    scores = judge(served, "7").score([ScoreItem(item.prompt, item.first) for item in ITEMS])
    assert [(s.status, s.value, s.raw["source"], s.raw["content"]) for s in scores] == [
        ("ok", 7.0, "content", "7 7")] * len(ITEMS)
    unreadable = judge(served, "A").score([ScoreItem(ITEMS[0].prompt, ITEMS[0].first)])[0]
    assert unreadable.status == "failed" and "unparseable judge output 'A A'" in unreadable.error


def test_critique_revise_stage_writes_the_servers_revisions(served, tmp_path: Path, monkeypatch):
    from rlaif.config.params import load_config
    from tasks.critique_revise import critique_revise

    base_url, folders, _ = served
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = load_config(None, ["judge.backend=openai", f"judge.model={folders['7']}", f"judge.base_url={base_url}",
                             "critique_revise.enabled=true", "critique_revise.max_new_tokens=3"])
    monkeypatch.chdir(tmp_path)  # the stage's MLflow run and its artefacts stay in tmp_path
    candidates = tmp_path / "candidates.jsonl"
    candidates.write_text("".join(json.dumps({"prompt_id": f"q{i}", "prompt": item.prompt,
                                              "candidates": [item.first, item.second]}) + "\n"
                                  for i, item in enumerate(ITEMS)))
    out = critique_revise(cfg, candidates, ROOT / "data/constitution/constitution.yaml",
                          ROOT / "data/constitution/judge_templates.yaml", tmp_path / "out")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["revision"], r["rounds"][0]["critique"], r["status"]) for r in rows] == [("7 7 7", "7 7 7", "ok")] * 3


def test_a_served_model_without_a_chat_template_is_a_named_failure(served):
    """A failed verdict, not a guess, naming the server and that it answered with an error, whatever its code."""
    verdict = judge(served, "no template").judge(ITEMS[:1])[0]
    assert verdict.status == "failed" and verdict.p_first is None, verdict
    assert re.match(rf"HTTP [45]\d\d from {re.escape(served[0])}", verdict.error), verdict.error
