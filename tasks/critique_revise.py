"""critique_revise: the supervised phase of Constitutional AI (Bai et al. 2022).

For each prompt, the first candidate answer is critiqued under a critique_revision principle drawn
at random (seeded), then revised to answer that critique; with several rounds, each revision is
critiqued again under a fresh draw. The judge stage adds (revision preferred over original) pairs
to the labels. It needs a judge that can write (backend transformers or openai); when
`critique_revise.enabled` is false the stage writes an empty revision set, so the graph is the
same for every profile.
"""

from __future__ import annotations

import random
from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.data.io import read_constitution, read_templates, write_json
from rlaif.data.records import Revision, RevisionStep, read_candidates, write_records
from rlaif.errors import ConfigError


def critique_revise(cfg: PipelineConfig, candidates: Path, constitution: Path, templates: Path,
                    out_dir: Path) -> Path:
    from rlaif.lifecycle.tracking import stage_run

    out = Path(out_dir) / "revisions.jsonl"
    settings = cfg.critique_revise
    charter = read_constitution(constitution)
    principles = charter.of_kind("critique_revision")
    if settings.enabled and not principles:
        raise ConfigError(f"critique_revise.enabled is true but {constitution} has no principle of kind "
                          "critique_revision")
    judge_templates = read_templates(templates)
    rows = read_candidates(candidates)[: settings.max_prompts]
    with stage_run("critique_revise", cfg, inputs={"candidates": candidates, "constitution": constitution},
                   outputs={"critique_revise": Path(out_dir)}) as run:
        if not settings.enabled:
            write_records(out, [])
            write_json(Path(out_dir) / "summary.json", {"enabled": False, "revisions": 0})
            run.metrics({"revisions": 0})
            return out
        from rlaif.judging.judges import build_judge

        writer = build_judge(cfg.judge, charter, judge_templates)
        rng = random.Random(cfg.seed)
        current = [row.candidates[0] for row in rows]
        history: list[list[dict]] = [[] for _ in rows]
        for _ in range(settings.rounds):
            drawn = [rng.choice(principles) for _ in rows]
            critiques = writer.generate([judge_templates["critique"].format(
                prompt=row.prompt, response=answer, critique_request=p.critique)
                for row, answer, p in zip(rows, current, drawn)], settings.max_new_tokens)
            revisions = writer.generate([judge_templates["revision"].format(
                prompt=row.prompt, response=answer, critique_request=p.critique, critique=critique,
                revision_request=p.revision)
                for row, answer, p, critique in zip(rows, current, drawn, critiques)], settings.max_new_tokens)
            for steps, p, critique, revision in zip(history, drawn, critiques, revisions):
                steps.append({"principle": p.id, "critique": critique.strip(), "revision": revision.strip()})
            current = [r.strip() or c for r, c in zip(revisions, current)]
        results = [Revision(
            prompt_id=row.prompt_id, prompt=row.prompt, original=row.candidates[0], revision=answer,
            principles=[s["principle"] for s in steps], rounds=[RevisionStep(**s) for s in steps],
            status="ok" if answer.strip() else "failed", judge=writer.judge_id,
        ) for row, answer, steps in zip(rows, current, history)]
        write_records(out, results)
        changed = sum(r.revision.strip() != r.original.strip() for r in results)
        summary = {"enabled": True, "revisions": len(results), "changed": changed, "rounds": settings.rounds,
                   "judge": writer.judge_id}
        write_json(Path(out_dir) / "summary.json", summary)
        run.metrics({"revisions": len(results), "changed": changed})
        run.artifact(out, "critique_revise")
    return out
