"""The judge stage as a process: resume after kill -9, pointwise mode, the audit log, a jury, and
critique-and-revision pairs. Each test runs the real CLI (`rlaif exec ...`) in a fresh project copy."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import JUDGE_ARGS, kill_when, rlaif, save_tiny_llama

pytestmark = pytest.mark.slow  # trains models or starts a cluster: left out of `make test-fast`


def write_candidates(project: Path, n_prompts: int, per_prompt: int = 4) -> int:
    """Candidates built from the project's seed dialogues: each prompt's own answers plus others'.
    Returns the number of distinct pairs."""
    dialogues = [json.loads(lab) for lab in (project / "data/seed/dialogues.jsonl").read_text().splitlines()]
    by_prompt: dict[str, list[dict]] = {}
    for d in dialogues:
        by_prompt.setdefault(d["prompt_id"], []).append(d)
    rows, pairs = [], 0
    pool = [d["response"] for d in dialogues]
    for i, (prompt_id, own) in enumerate(list(by_prompt.items())[:n_prompts]):
        answers = list(dict.fromkeys([d["response"] for d in own] + pool[i * 7 % len(pool):][:per_prompt]))[:per_prompt]
        rows.append({"prompt_id": prompt_id, "prompt": own[0]["prompt"], "candidates": answers})
        pairs += len(answers) * (len(answers) - 1) // 2
    path = project / "artifacts/generate/candidates.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return pairs


def read_labels(project: Path) -> list[dict]:
    return [json.loads(lab) for lab in (project / "artifacts/judge/labels.jsonl").read_text().splitlines()]


def line_count(path: Path) -> int:
    with path.open() as lines:
        return sum(1 for _ in lines)


def judge_checkpoint(project: Path, min_pairs: int) -> Path | None:
    """The judge's checkpoint file, once it holds at least `min_pairs` judged pairs."""
    files = list((project / ".rlaif/checkpoints").glob("judge-*.jsonl"))
    return files[0] if files and line_count(files[0]) >= min_pairs else None


def test_killed_judge_resumes_without_judging_twice(project: Path):
    n_pairs = write_candidates(project, n_prompts=100)
    assert rlaif(project, "configure", "--set", "judge.checkpoint_every=8").returncode == 0
    checkpoint = kill_when(project, ["exec", "judge", *JUDGE_ARGS], lambda _pid: judge_checkpoint(project, 40),
                           timeout_s=300, poll_s=0.02)
    assert not (project / "artifacts/judge/labels.jsonl").exists()  # no partial output
    judged_before = line_count(checkpoint)
    assert 0 < judged_before < n_pairs

    result = rlaif(project, "exec", "judge", *JUDGE_ARGS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming" in result.stderr
    metrics = json.loads((project / "metrics/judge.json").read_text())
    assert judged_before <= metrics["resumed_pairs"] < n_pairs
    labels = read_labels(project)
    assert len(labels) == n_pairs == len({lab["pair_id"] for lab in labels})
    audit = pd.read_parquet(project / "artifacts/judge/audit.parquet")
    # the embedding judge is order-invariant: asked once per pair
    assert len(audit) == n_pairs and not audit.duplicated(["pair_id", "order"]).any()
    assert not checkpoint.exists()  # finished: the checkpoint is cleared

    # a clean run (no checkpoint) gives the same labels
    result = rlaif(project, "exec", "judge", *JUDGE_ARGS)
    assert result.returncode == 0 and "resuming" not in result.stderr
    clean = {lab["pair_id"]: lab["prob_a"] for lab in read_labels(project)}
    for label in labels:
        assert label["prob_a"] == pytest.approx(clean[label["pair_id"]], abs=1e-5)


def test_pointwise_mode_scores_each_answer(project: Path):
    n_pairs = write_candidates(project, n_prompts=20)
    assert rlaif(project, "configure", "--set", "judge.mode=pointwise").returncode == 0
    result = rlaif(project, "exec", "judge", *JUDGE_ARGS)
    assert result.returncode == 0, result.stderr[-3000:]
    labels = read_labels(project)
    assert len(labels) == n_pairs
    for label in labels:
        assert 1.0 <= label["score_a"] <= 10.0 and 1.0 <= label["score_b"] <= 10.0
        assert (label["prob_a"] > 0.5) == (label["score_a"] > label["score_b"])
        # no answer was shown first: no position measurement is recorded (it was 1 - prob_a, passing by construction)
        assert label["p_a_when_first"] is None and label["p_b_when_first"] is None and label["consistent"] is None
    audit = pd.read_parquet(project / "artifacts/judge/audit.parquet")
    assert set(audit["order"]) == {"score_a", "score_b"} and audit["score"].between(1, 10).all()


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    texts = ["User: how do I bake bread?\nAssistant: Mix flour and water.", "Critique: it is fine.",
             "Revision: I can't help with that.", "Answer: A", "Answer: B", "Score: 7"] * 10
    return save_tiny_llama(texts, tmp_path_factory.mktemp("lm") / "tiny-lm", vocab_size=300, hidden=32, layers=2,
                           heads=2, intermediate=64, max_positions=2048)


def test_jury_of_two_backends_reports_agreement(project: Path, tiny_lm: Path):
    n_pairs = write_candidates(project, n_prompts=6, per_prompt=3)
    params = project / "params/jury.yaml"
    params.write_text(json.dumps({"judge": {"backend": "jury", "jury_aggregate": "mean", "jury": [
        {"backend": "embedding"}, {"backend": "transformers", "model": str(tiny_lm), "batch_size": 8}]}}))
    assert rlaif(project, "configure", "--params", str(params)).returncode == 0
    result = rlaif(project, "exec", "judge", *JUDGE_ARGS)
    assert result.returncode == 0, result.stderr[-3000:]
    audit = pd.read_parquet(project / "artifacts/judge/audit.parquet")
    for raw, p_first in zip(audit["raw"][:10], audit["p_first"][:10]):
        members = json.loads(raw)["members"]
        assert len(members) == 2 and p_first == pytest.approx(sum(members.values()) / 2)
    agreement = json.loads((project / "artifacts/judge/jury_agreement.json").read_text())
    assert agreement["judgments"] == 2 * n_pairs
    votes = [list(json.loads(raw)["members"].values()) for raw in audit["raw"]]  # each judgment's two members
    both = [(a > 0.5, b > 0.5) for a, b in votes if a is not None and b is not None]
    assert both and agreement["mean_agreement"] == pytest.approx(sum(a == b for a, b in both) / len(both))
    assert "jury_mean_agreement" in json.loads((project / "metrics/judge.json").read_text())


def test_critique_revise_pairs_join_the_labels(project: Path, tiny_lm: Path):
    write_candidates(project, n_prompts=4, per_prompt=2)
    assert rlaif(project, "configure", "--set", "critique_revise.enabled=true", "--set", "critique_revise.max_new_tokens=12",
                 "--set", "judge.backend=transformers", "--set", f"judge.model={tiny_lm}").returncode == 0
    result = rlaif(project, "exec", "critique_revise", "--candidates", "artifacts/generate/candidates.jsonl",
                   "--constitution", "data/constitution/constitution.yaml", "--templates",
                   "data/constitution/judge_templates.yaml", "--out", "artifacts/critique_revise")
    assert result.returncode == 0, result.stderr[-3000:]
    revisions = [json.loads(lab) for lab in (project / "artifacts/critique_revise/revisions.jsonl").read_text().splitlines()]
    assert len(revisions) == 4
    for row in revisions:
        assert row["principles"][0] in {"revise_harmful", "revise_needless_refusal"}
        expected = row["original"]  # each round revises the answer the round before left; an empty revision keeps it
        for step in row["rounds"]:
            assert isinstance(step["critique"], str)
            expected = step["revision"] or expected
        assert row["revision"] == expected
    result = rlaif(project, "exec", "judge", *JUDGE_ARGS, "--revisions", "artifacts/critique_revise/revisions.jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    revised = [lab for lab in read_labels(project) if lab.get("source") == "critique_revise"]
    changed = [r for r in revisions if r["status"] == "ok" and r["revision"].strip() != r["original"].strip()]
    assert len(revised) == len(changed)
    for label in revised:
        winner = label["response_a"] if label["prob_a"] == 1.0 else label["response_b"]
        assert winner in {r["revision"] for r in revisions}


def test_critique_revise_with_an_encoder_judge_is_a_clear_error(project: Path):
    write_candidates(project, n_prompts=2, per_prompt=2)
    configured = rlaif(project, "configure", "--set", "critique_revise.enabled=true")  # refused before any model loads
    assert configured.returncode == 2 and "cannot write critiques" in configured.stderr, configured.stderr
    (project / "params/run.yaml").write_text(yaml.safe_dump({"critique_revise": {"enabled": True}}))
    result = rlaif(project, "exec", "critique_revise", "--candidates", "artifacts/generate/candidates.jsonl",
                   "--constitution", "data/constitution/constitution.yaml", "--templates",
                   "data/constitution/judge_templates.yaml", "--out", "artifacts/critique_revise")
    assert result.returncode != 0
    assert "cannot write text" in result.stderr and "transformers" in result.stderr
    assert not (project / "artifacts/critique_revise/revisions.jsonl").exists()
