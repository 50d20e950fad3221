"""Samples of the baseline and the candidate policy on the held-out prompts and the over-refusal suites, with the
same seeds for both, each graded as it is drawn; and the KL estimate between the two policies."""

from __future__ import annotations

from pathlib import Path

from rlaif.evaluation.behaviour import BehaviourGrader


def sample_both(cfg, policies: dict[str, Path], rows, suite_rows: dict, grader: BehaviourGrader):
    """Samples of both policies on the held-out prompts and the suites, and the KL estimate, which needs
    both policies at once: mean over the candidate's samples of log p_candidate - log p_baseline."""
    from rlaif.training.generation import answer_logprobs
    from rlaif.training.models import load_policy

    loaded = {name: load_policy(path) for name, path in policies.items()}
    samples, suite_samples = [], []
    for name, (model, tokenizer) in loaded.items():
        samples += sample_policy(cfg, name, model, tokenizer, rows, grader)
        for suite, prompts in suite_rows.items():
            suite_samples += sample_suite(cfg, name, model, tokenizer, suite, prompts, grader.refusals)
    own = [s for s in samples if s["policy"] == "candidate"]
    texts, answers = [s["prompt"] for s in own], [s["answer"] for s in own]
    logp = {name: answer_logprobs(model, tokenizer, texts, answers) for name, (model, tokenizer) in loaded.items()}
    kl = sum(c - b for c, b in zip(logp["candidate"], logp["baseline"])) / max(1, len(own))
    del loaded
    return samples, suite_samples, kl


def sample_policy(cfg, name, model, tokenizer, rows, grader: BehaviourGrader) -> list[dict]:
    from rlaif.training.generation import derived_seed, generate_texts

    e = cfg.evaluate
    samples = []
    for k in range(e.samples_per_prompt):
        answers = generate_texts(model, tokenizer, [r.prompt for r in rows], e.max_new_tokens, e.temperature,
                                 derived_seed(cfg.seed, "evaluate", k), batch_size=e.batch_size,
                                 label=f"evaluate {name} sample {k + 1}/{e.samples_per_prompt}")
        for r, answer in zip(rows, answers):
            result, correct = grader.grade(r.prompt, answer, r.expected)
            samples.append({"policy": name, "prompt_id": r.id, "sample": k, "prompt": r.prompt,
                            "category": r.category, "template": r.template, "expected": r.expected,
                            "answer": answer, "outcome": result, "correct": correct, "words": len(answer.split())})
    return samples


def sample_suite(cfg, name, model, tokenizer, suite: str, prompts, classifier) -> list[dict]:
    from rlaif.training.generation import derived_seed, generate_texts

    e = cfg.evaluate
    samples = []
    for k in range(e.suite_samples_per_prompt):
        answers = generate_texts(model, tokenizer, [p.prompt for p in prompts], e.max_new_tokens, e.temperature,
                                 derived_seed(cfg.seed, "suite", k), batch_size=e.batch_size,
                                 label=f"suite {suite} {name} sample {k + 1}/{e.suite_samples_per_prompt}")
        samples += [{"policy": name, "suite": suite, "prompt_id": p.id, "sample": k, "prompt": p.prompt,
                     "type": p.type, "label": p.label, "answer": answer, "refused": classifier.is_refusal(answer, p.prompt)}
                    for p, answer in zip(prompts, answers)]
    return samples
