"""Judging a round's pairs resumably: finished chunks go to a checkpoint, so a killed stage resumes without judging a
pair twice; with `judge.executor: ray` the chunks are judged on Ray shards, each with its own judge."""

from __future__ import annotations

import random
import time

from rlaif.config import PipelineConfig
from rlaif.judging.labelling import judge_pairs
from rlaif.training.checkpoint import JsonlCheckpoint

# where the judging runs, not what it decides: a run killed on Ray resumes in-process and the other way round
EXECUTION = {"executor", "ray_address", "ray_shards", "ray_num_gpus_per_shard"}


def judge_with_checkpoints(cfg: PipelineConfig, judge_model, charter, pairs: list[dict],
                            checkpoint: JsonlCheckpoint) -> tuple[int, float]:
    """Judge the pairs not yet in the checkpoint, appending each finished chunk (`checkpoint_every` pairs)
    to it. With `judge.executor: ray` the chunks are judged on Ray shards, each with its own judge, and
    checkpointed as they finish, in any order. Returns (pairs found already judged, seconds spent judging the rest)."""
    from rich.console import Console

    from rlaif.training.generation import progress

    principles = principles_per_pair(cfg, charter, len(pairs))  # drawn for all pairs: the same on resume
    done = checkpoint.load()
    todo = [(p, pr) for p, pr in zip(pairs, principles) if p["pair_id"] not in done]
    if done:
        Console(stderr=True).print(f"judge: resuming from {checkpoint.path}: {len(pairs) - len(todo)} of {len(pairs)} pairs "
                      f"already judged, {len(todo)} to go")
    started = time.perf_counter()
    step = cfg.judge.checkpoint_every
    chunks = [todo[start : start + step] for start in range(0, len(todo), step)]
    with progress() as bar:
        task = bar.add_task(f"judge pairs ({cfg.judge.mode})", total=len(pairs), completed=len(pairs) - len(todo))

        def finished(chunk: list, labels: list[dict], audit: list[dict]) -> None:
            by_pair: dict[str, list[dict]] = {}
            for row in audit:
                by_pair.setdefault(row["pair_id"], []).append(row)
            checkpoint.append([{"pair_id": lab["pair_id"], "label": lab, "audit": by_pair.get(lab["pair_id"], [])}
                               for lab in labels])
            bar.advance(task, len(chunk))

        if cfg.judge.executor == "ray" and chunks:
            judge_on_ray(cfg, judge_model, charter, chunks, finished)
        else:
            for chunk in chunks:
                finished(chunk, *judge_pairs(cfg.judge, judge_model, [c[0] for c in chunk], [c[1] for c in chunk]))
    return len(pairs) - len(todo), time.perf_counter() - started


def judge_on_ray(cfg: PipelineConfig, judge_model, charter, chunks: list[list], finished) -> None:
    """The chunks on Ray shards (rlaif/training/scaleout.py): each shard builds the judge from the same params,
    constitution and templates as this process, and `finished` checkpoints each chunk as it comes back."""
    from rlaif.judging.judges import JudgeError
    from rlaif.training.scaleout import run_sharded

    templates = judge_templates(judge_model)
    run_sharded(cfg.judge, "judge", JudgeError, JudgeShard, (cfg, charter, templates), "judge",
                [([c[0] for c in chunk], [c[1] for c in chunk]) for chunk in chunks],
                lambda index, result: finished(chunks[index], *result))


def judge_templates(judge_model) -> dict[str, str]:
    """The templates the judge was built with (a jury's members share them)."""
    return judge_model.members[0].templates if judge_model.backend == "jury" else judge_model.templates


class JudgeShard:
    """One Ray shard of the judge stage: the judge built once, then the chunks sent to it judged as in-process."""

    def __init__(self, cfg: PipelineConfig, charter, templates: dict[str, str]):
        from rlaif.judging.judges import build_judge

        self.cfg = cfg
        self.judge_model = build_judge(cfg.judge, charter, templates)

    def judge(self, pairs: list[dict], principles: list):
        return judge_pairs(self.cfg.judge, self.judge_model, pairs, principles)


def principles_per_pair(cfg: PipelineConfig, charter, n: int) -> list[list[str] | None]:
    """'all': every principle votes; 'sample': one principle per comparison, seeded (Constitutional AI)."""
    if cfg.judge.principle_mode == "all":
        return [None] * n
    rng = random.Random(cfg.seed)
    ids = [p.id for p in charter.of_kind("comparison")]
    return [[rng.choice(ids)] for _ in range(n)]
