"""Scale-out of generate and judge on a real local Ray cluster (2 CPUs, no dashboard, usage stats off):
the sharded results equal the in-process ones for the same seed, the judge checkpoints and resumes per
finished chunk, the stage commands run end to end, and an address where no cluster answers is a clear
error. vLLM cannot run here (no CUDA device): its request seeding and reassembly run against a stand-in
`vllm` module."""

from __future__ import annotations

import json
import os
import sys
import time
import types
from pathlib import Path

import pytest
from conftest import JUDGE_ARGS, ROOT, free_port, generate_args, rlaif, save_tiny_llama

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
import ray

from rlaif.config import EmbeddingJudgeConfig, GenerateConfig, PipelineConfig
from rlaif.data.io import read_constitution, read_prompts, read_templates
from rlaif.data.records import CandidateSet
from rlaif.errors import InputError, JudgeError
from rlaif.training.checkpoint import JsonlCheckpoint
from rlaif.training.generation import candidate_seed, derived_seed, generate_candidates, split_contiguous
from rlaif.training.scaleout import check_reachable

pytestmark = pytest.mark.slow  # trains models or starts a cluster: left out of `make test-fast`

ROWS = read_prompts(ROOT / "data/prompts/train.jsonl")
PROMPTS = [r.prompt for r in ROWS[:30]]
SMALL = dict(num_candidates=2, max_new_tokens=10, batch_size=8, temperature=1.0, engine="transformers")


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory) -> Path:
    return save_tiny_llama(PROMPTS * 3, tmp_path_factory.mktemp("policy") / "tiny", vocab_size=300, hidden=32,
                           layers=1, heads=2, intermediate=64, max_positions=256)


def seed_pairs(n_prompts: int) -> list[dict]:
    """Pairs of distinct answers from the project's seed dialogues, and one with an empty answer (a failure)."""
    from rlaif.judging.labelling import candidate_pairs

    dialogues = [json.loads(line) for line in (ROOT / "data/seed/dialogues.jsonl").read_text().splitlines()]
    pool = [d["response"] for d in dialogues]
    rows = [CandidateSet(prompt_id=d["prompt_id"], prompt=d["prompt"],
                         candidates=list(dict.fromkeys([d["response"], *pool[i * 7 % len(pool):][:3]]))[:3])
            for i, d in enumerate(dialogues[: n_prompts * 2 : 2])]
    pairs = candidate_pairs(rows)
    pairs.append({**pairs[0], "pair_id": "empty:0-1", "response_b": "  "})
    return pairs


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local cluster for this module's in-process runs (and one stage command attaching to it by address)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_judge_on_two_shards_equals_in_process_and_checkpoints_each_chunk(cluster: str, tmp_path: Path):
    from rlaif.judging.checkpointed import judge_with_checkpoints as _judge_with_checkpoints
    from rlaif.judging.judges import build_judge

    charter = read_constitution(ROOT / "data/constitution/constitution.yaml")
    templates = read_templates(ROOT / "data/constitution/judge_templates.yaml")
    pairs = seed_pairs(12)
    local_cfg = PipelineConfig(judge=EmbeddingJudgeConfig(checkpoint_every=8, principle_mode="sample"))
    ray_cfg = local_cfg.model_copy(update={"judge": local_cfg.judge.model_copy(
        update={"executor": "ray", "ray_shards": 2})})
    judge_model = build_judge(local_cfg.judge, charter, templates)

    local = JsonlCheckpoint(tmp_path / "local.jsonl", key="pair_id")
    assert _judge_with_checkpoints(local_cfg, judge_model, charter, pairs, local)[0] == 0
    expected = local.load()

    class Counting(JsonlCheckpoint):
        appends: list[int] = []

        def append(self, records):
            self.appends.append(len(records))
            super().append(records)

    # a run killed after two chunks: the Ray run resumes it, judging only the rest
    sharded = Counting(tmp_path / "ray.jsonl", key="pair_id")
    first_two = [expected[p["pair_id"]] for p in pairs[:16]]
    JsonlCheckpoint(sharded.path, key="pair_id").append(first_two)
    resumed, _ = _judge_with_checkpoints(ray_cfg, judge_model, charter, pairs, sharded)
    assert resumed == 16
    chunks = -(-(len(pairs) - 16) // 8)
    assert len(sharded.appends) == chunks and sum(sharded.appends) == len(pairs) - 16  # one append per chunk
    got = sharded.load()
    lines = sharded.path.read_text().splitlines()
    assert len(lines) == len(pairs) == len(got)  # every pair once

    biggest = 0.0
    for pair in pairs:
        want, have = expected[pair["pair_id"]]["label"], got[pair["pair_id"]]["label"]
        for key in ("status", "error", "principle", "consistent", "response_a", "response_b", "judge"):
            assert have[key] == want[key], (pair["pair_id"], key)
        if want["status"] == "ok":
            assert (have["prob_a"] > 0.5) == (want["prob_a"] > 0.5)
            biggest = max(biggest, abs(have["prob_a"] - want["prob_a"]))
        assert len(got[pair["pair_id"]]["audit"]) == len(expected[pair["pair_id"]]["audit"]) == 1  # the embedding judge is order-invariant: one judgment per pair
    assert biggest <= 1e-6
    failed = got["empty:0-1"]["label"]
    assert failed["status"] == "failed" and "empty" in failed["error"]  # failures recorded per pair


def test_a_shard_that_cannot_load_its_model_is_the_stage_error(cluster: str, tmp_path: Path):
    from rlaif.training.generation import PolicyShard
    from rlaif.training.scaleout import run_sharded

    config = GenerateConfig(**SMALL, executor="ray", ray_shards=2)
    with pytest.raises(InputError, match="cannot be loaded"):
        run_sharded(config, "generate", InputError, PolicyShard,
                    (str(tmp_path / "nowhere"), "transformers", 4, 1.0, 1.0, 0), "sample_batch",
                    [(["hi"], 0)], lambda index, result: None)


def test_an_address_where_no_cluster_answers_is_refused_at_once():
    address = f"ray://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    with pytest.raises(JudgeError, match=f"judge.ray_address '{address}': no Ray cluster answers there"):
        check_reachable(address, "judge", JudgeError)
    assert time.perf_counter() - started < 5
    with pytest.raises(InputError, match="not a Ray address"):
        check_reachable("head-without-port", "generate", InputError)


# ----- vLLM: cannot run here (no CUDA, no vllm); its seeding and reassembly run against a stand-in module


class FakeLLM:
    calls: list = []

    def __init__(self, model: str, tokenizer: str, seed: int, gpu_memory_utilization: float):
        self.model = model

    def generate(self, prompts, params, use_tqdm=True):
        FakeLLM.calls.append((prompts, params))
        out = types.SimpleNamespace
        return [out(outputs=[out(text=f" seed{p.kwargs['seed']} len{len(x['prompt_token_ids'])} ")])
                for x, p in zip(prompts, params)]


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class InProcessPool:
    """ray_shards stand-in: the shards built in this process, their units run in a shuffled order."""

    def __init__(self, shards: int):
        self.shards = shards

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, build, args, method, items, on_result):
        import random

        workers = [build(*args) for _ in range(min(self.shards, len(items)))]
        order = list(range(len(items)))
        random.Random(1).shuffle(order)
        for index in order:
            on_result(index, getattr(workers[index % len(workers)], method)(*items[index]))
        return len(workers)


@pytest.fixture
def fake_vllm(monkeypatch):
    from rlaif.training import generation

    FakeLLM.calls = []
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM, SamplingParams=FakeSamplingParams))
    monkeypatch.setattr(generation, "vllm_unusable_reason", lambda: None)
    return FakeLLM


def test_vllm_requests_carry_their_own_seeds_and_shards_reassemble_them(fake_vllm, tiny_policy: Path, monkeypatch):
    from rlaif.training import scaleout

    settings = GenerateConfig(**{**SMALL, "engine": "vllm", "prefills": ["No."]})
    local = generate_candidates(tiny_policy, PROMPTS, settings, seed=5)
    assert local.engine == "vllm" and len(fake_vllm.calls) == 1
    prompts, params = fake_vllm.calls[0]
    assert [p.kwargs["seed"] for p in params] == [derived_seed(candidate_seed(5, k), i) for k in range(3)
                                                    for i in range(len(PROMPTS))]
    assert {(p.kwargs["max_tokens"], p.kwargs["temperature"], p.kwargs["top_p"]) for p in params} == {(10, 1.0, 1.0)}
    assert local.samples[1][4] == f"seed{derived_seed(candidate_seed(5, 1), 4)} len{len(prompts[4]['prompt_token_ids'])}"
    # the prefilled candidate: its opening ends the prompt the engine continues, and starts the answer
    n = len(PROMPTS)
    assert len(prompts[2 * n + 4]["prompt_token_ids"]) > len(prompts[4]["prompt_token_ids"])
    assert local.samples[2][4] == f"No. seed{derived_seed(candidate_seed(5, 2), 4)} len{len(prompts[2 * n + 4]['prompt_token_ids'])}"

    monkeypatch.setattr(scaleout, "ray_shards", lambda *args: InProcessPool(3))
    sharded = generate_candidates(tiny_policy, PROMPTS, settings.model_copy(update={"executor": "ray"}), seed=5)
    assert (sharded.shards, len(fake_vllm.calls)) == (3, 4) and sharded.samples == local.samples


def test_prefilled_candidates_start_with_their_opening_and_leave_the_sampled_ones_as_they_were(tiny_policy: Path,
                                                                                               monkeypatch):
    from rlaif.training import scaleout

    opening = "I can't help with that"
    plain = generate_candidates(tiny_policy, PROMPTS, GenerateConfig(**SMALL), seed=3)
    settings = GenerateConfig(**SMALL, prefills=[opening])
    prefilled = generate_candidates(tiny_policy, PROMPTS, settings, seed=3)
    assert prefilled.samples[:2] == plain.samples  # the sampled candidates keep their streams
    assert len(prefilled.samples) == 3 and all(a.startswith(opening) for a in prefilled.samples[2])
    assert any(len(a) > len(opening) for a in prefilled.samples[2])  # continued by the policy
    monkeypatch.setattr(scaleout, "ray_shards", lambda *args: InProcessPool(3))
    sharded = generate_candidates(tiny_policy, PROMPTS, settings.model_copy(update={"executor": "ray"}), seed=3)
    assert sharded.samples == prefilled.samples


def test_the_policy_continues_the_opening_as_training_formats_an_answer(tiny_policy: Path):
    """Greedy: the prefilled answer is the opening and what the model says after the prompt and the opening, with the
    opening placed where training puts an answer (after the plain format's space)."""
    import torch

    from rlaif.training.generation import generate_texts
    from rlaif.training.models import format_completion, format_prompt, load_policy

    model, tokenizer = load_policy(tiny_policy)
    opening = "I can't help with that"
    answers = generate_texts(model, tokenizer, PROMPTS[:4], 6, None, seed=0, batch_size=1, opening=opening)
    expected = []
    for prompt in PROMPTS[:4]:
        ids = tokenizer(format_prompt(tokenizer, prompt) + format_completion(tokenizer, opening), return_tensors="pt",
                        add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        expected.append((opening + tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)).strip())
    assert answers == expected
    assert format_completion(tokenizer, opening) == " " + opening  # the tiny policy's plain dialogue format


def test_engine_choice_here_and_a_clear_error_where_vllm_cannot_run(tiny_policy: Path):
    from rlaif.training.generation import resolve_engine

    assert resolve_engine(GenerateConfig(engine="auto"), str(tiny_policy)) == "transformers"  # no CUDA device here
    with pytest.raises(InputError, match="generate.engine 'vllm' cannot run"):
        resolve_engine(GenerateConfig(engine="vllm"), str(tiny_policy))
    assert [list(r) for r in split_contiguous(7, 3)] == [[0, 1], [2, 3], [4, 5, 6]]
    assert len({derived_seed(s, i) for s in range(20) for i in range(20)}) == 400  # no (seed, index) collisions


# ----- the stage commands, as dvc.yaml runs them


def settings(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


def test_stage_commands_on_ray_match_local_end_to_end(project: Path, tiny_policy: Path, cluster: str):
    """`rlaif exec generate` on 2 Ray shards (a local cluster of its own) writes byte for byte the candidates
    that the in-process path samples for the same seed; `rlaif exec judge` on Ray (attached to this module's
    cluster by its address) judges every pair of them."""
    from rlaif.judging.labelling import candidate_pairs

    assert rlaif(project, "configure", *settings(
        "seed=3", "generate.num_candidates=3", "generate.max_new_tokens=10", "generate.max_prompts=24",
        "generate.batch_size=8", "generate.executor=ray", "judge.executor=ray", f"judge.ray_address={cluster}",
        "judge.checkpoint_every=16")).returncode == 0
    result = rlaif(project, *generate_args(tiny_policy))
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((project / "artifacts/generate/generation.json").read_text())
    assert (info["engine_used"], info["ray_shards_used"]) == ("transformers", 2)

    rows, in_process = ROWS[:24], GenerateConfig(num_candidates=3, max_new_tokens=10, batch_size=8, engine="transformers")
    local = generate_candidates(tiny_policy, [r.prompt for r in rows], in_process, seed=3)
    expected = "".join(json.dumps({"prompt_id": r.id, "prompt": r.prompt, "candidates": [s[i] for s in local.samples]},
                                  ensure_ascii=False) + "\n" for i, r in enumerate(rows))
    assert (project / "artifacts/generate/candidates.jsonl").read_text(encoding="utf-8") == expected  # byte for byte
    assert local.samples[0] != local.samples[1]  # really sampled: the candidates differ
    assert generate_candidates(tiny_policy, [r.prompt for r in rows], in_process, seed=4).samples != local.samples

    result = rlaif(project, "exec", "judge", *JUDGE_ARGS)
    assert result.returncode == 0, result.stderr[-3000:]
    labels = [json.loads(line) for line in (project / "artifacts/judge/labels.jsonl").read_text().splitlines()]
    pairs = candidate_pairs([CandidateSet.model_validate_json(line) for line in expected.splitlines()])
    assert [lab["pair_id"] for lab in labels] == [p["pair_id"] for p in pairs] and len(pairs) > 20
    # the tiny policy is built untrained with fresh weights each run, so an answer can come out empty: the embedding
    # judge fails exactly those pairs (and judges every other one)
    blank = {p["pair_id"] for p in pairs if not p["response_a"].strip() or not p["response_b"].strip()}
    assert {lab["pair_id"] for lab in labels if lab["status"] != "ok"} == blank and len(blank) < len(pairs)
    assert not list((project / ".rlaif/checkpoints").glob("judge-*.jsonl"))  # finished: checkpoint cleared


def test_stage_commands_refuse_an_address_where_no_cluster_answers(project: Path, tiny_policy: Path):
    address = f"127.0.0.1:{free_port()}"
    assert rlaif(project, "configure", *settings("generate.executor=ray", f"generate.ray_address={address}",
                                             "judge.executor=ray", f"judge.ray_address=ray://{address}")).returncode == 0
    result = rlaif(project, *generate_args(tiny_policy))
    assert result.returncode == 2 and f"generate.ray_address '{address}'" in result.stderr, result.stderr[-2000:]
    assert not (project / "artifacts/generate/candidates.jsonl").exists()

    (project / "artifacts/generate").mkdir(parents=True)
    (project / "artifacts/generate/candidates.jsonl").write_text(json.dumps(
        {"prompt_id": "p1", "prompt": "How do I bake bread?", "candidates": ["Mix flour and water.", "I can't help."]}) + "\n")
    result = rlaif(project, "exec", "judge", *JUDGE_ARGS)
    assert result.returncode == 4 and f"judge.ray_address 'ray://{address}'" in result.stderr, result.stderr[-2000:]
    assert not (project / "artifacts/judge/labels.jsonl").exists()
