"""generate: N sampled candidate answers per training prompt, from the current policy.

Candidate k of every prompt is drawn in batched passes from its own seeded stream (each length-sorted
batch from a seed derived from that stream and its index: rlaif.training.generation.derived_seed), so a rerun with
the same seed gives the same candidates, in-process or sharded across a Ray cluster (`generate.executor: ray`). The engine is
transformers, or vLLM where it is installed and a GPU is present (`generate.engine`).

The round's prompts are the newest prompt drop plus a seeded replay of earlier prompts (rlaif/lifecycle/rounds.py), or all of
the training prompts when there are no drops; they are written to prompts.jsonl, which the online algorithms of
optimize_policy read.
"""

from __future__ import annotations

from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.data.io import write_json, write_jsonl
from rlaif.data.records import CandidateSet, write_records


def generate(cfg: PipelineConfig, policy: Path, prompts: Path, out_dir: Path, drops: Path | None = None) -> Path:
    from rlaif.lifecycle.rounds import round_prompts
    from rlaif.lifecycle.tracking import stage_run
    from rlaif.training.generation import generate_candidates
    from rlaif.training.models import resolve_policy

    g = cfg.generate
    selected, sources = round_prompts(prompts, drops, g.drops_replay, cfg.seed)
    rows = selected[: g.max_prompts]
    if g.executor == "ray" and g.ray_address:
        from rlaif.errors import InputError
        from rlaif.training.scaleout import check_reachable

        check_reachable(g.ray_address, "generate", InputError)  # before any run is opened or model loaded
    inputs = {"policy": policy, "prompts": prompts, **({"drops": drops} if drops and Path(drops).is_dir() else {})}
    with stage_run("generate", cfg, inputs=inputs, datasets={"prompts": prompts},
                   outputs={"generate": Path(out_dir)}) as run:
        write_jsonl(Path(out_dir) / "prompts.jsonl", rows)
        texts = [r.prompt for r in rows]
        result = generate_candidates(policy, texts, g, cfg.seed)
        samples = result.samples
        out = Path(out_dir) / "candidates.jsonl"
        write_records(out, [CandidateSet(prompt_id=r.id, prompt=r.prompt, candidates=[s[i] for s in samples])
                            for i, r in enumerate(rows)])
        distinct = sum(len(set(s[i] for s in samples)) for i in range(len(rows)))
        n_candidates = len(rows) * len(samples)  # the sampled candidates and one per prefilled opening
        write_json(Path(out_dir) / "generation.json", {
            "policy": resolve_policy(policy), "seed": cfg.seed, **g.model_dump(mode="json"),
            "n_prompts": len(rows), "prompt_sources": sources, "n_candidates": n_candidates,
            "engine_used": result.engine, "ray_shards_used": result.shards if result.executor == "ray" else None,
            "torch_threads": result.torch_threads,
        })
        run.metrics({"n_prompts": len(rows), "n_new_prompts": sources["new"], "n_candidates": n_candidates,
                     "distinct_candidate_share": distinct / n_candidates})
        run.artifact(Path(out_dir) / "generation.json")
    return out
