"""generate: N sampled candidate answers per training prompt, from the current policy.

Candidate k of every prompt is drawn in one batched pass seeded with seed + k, so a rerun with
the same seed gives the same candidates.
"""

from __future__ import annotations

from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.io import read_prompts, write_json, write_jsonl


def generate(cfg: PipelineConfig, policy: Path, prompts: Path, out_dir: Path) -> Path:
    from rlaif.generation import generate_texts
    from rlaif.models import load_policy, resolve_policy
    from rlaif.tracking import stage_run

    g = cfg.generate
    rows = read_prompts(prompts)[: g.max_prompts]
    with stage_run("generate", cfg, inputs={"policy": policy, "prompts": prompts}, datasets={"prompts": prompts},
                   outputs={"generate": Path(out_dir)}) as run:
        model, tokenizer = load_policy(policy)
        texts = [r.prompt for r in rows]
        samples = [
            generate_texts(model, tokenizer, texts, g.max_new_tokens, g.temperature, cfg.seed + k, g.top_p,
                           g.batch_size, label=f"generate candidate {k + 1}/{g.num_candidates}")
            for k in range(g.num_candidates)
        ]
        out = Path(out_dir) / "candidates.jsonl"
        write_jsonl(out, [
            {"prompt_id": r.id, "prompt": r.prompt, "candidates": [s[i] for s in samples]}
            for i, r in enumerate(rows)
        ])
        distinct = sum(len(set(s[i] for s in samples)) for i in range(len(rows)))
        write_json(Path(out_dir) / "generation.json", {
            "policy": resolve_policy(policy), "seed": cfg.seed, **g.model_dump(mode="json"),
            "n_prompts": len(rows), "n_candidates": len(rows) * g.num_candidates,
        })
        run.metrics({"n_prompts": len(rows), "n_candidates": len(rows) * g.num_candidates,
                     "distinct_candidate_share": distinct / (len(rows) * g.num_candidates)})
        run.artifact(Path(out_dir) / "generation.json")
    return out
