"""Throughput of the embedding judge, side by side in one run, in pairs per second:

1. judge-eval's path (`rlaif.judging.labelling.judge_pairs`, as `rlaif judge-eval` calls it: both orders asked for,
   which an order-invariant judge answers once per pair) on a fresh judge, so no embedding is cached;
2. a naive single pass of the same encoder: every distinct text the judge embeds (the query and each answer,
   and the answers' sentences where `axis_by_sentence` is on), encoded once in batches of the judge's
   batch size, with nothing else (no scoring): the floor of what judging these pairs can cost.

    python bench/embedding_judge_throughput.py [--pairs 400] [--repeats 3]

The pairs are HH-RLHF harmless pairs from ../shared/data (measurement only: never used for training or
tuning). The two alternate `--repeats` times after a warm-up; the medians are reported. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
HH = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless" / "dev.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from rlaif.config.params import load_config
    from rlaif.data.io import read_constitution, read_templates
    from rlaif.judging.human_agreement import read_pairs
    from rlaif.judging.judges import build_judge
    from rlaif.judging.judges.embedding import sentences
    from rlaif.judging.labelling import judge_pairs

    cfg = load_config()
    constitution = read_constitution(ROOT / "data/constitution/constitution.yaml")
    templates = read_templates(ROOT / "data/constitution/judge_templates.yaml")
    human = read_pairs(HH, "hh-rlhf", args.pairs, cfg.seed)
    rows = [{"pair_id": p.id, "prompt_id": p.id, "prompt": p.prompt, "response_a": p.response_a,
             "response_b": p.response_b} for p in human]

    def judge_eval_path() -> float:
        judge = build_judge(cfg.judge, constitution, templates)  # fresh: nothing cached
        started = time.perf_counter()
        judge_pairs(cfg.judge, judge, rows, [None] * len(rows), both_orders=True)
        return len(rows) / (time.perf_counter() - started)

    probe = build_judge(cfg.judge, constitution, templates)
    texts = [probe._query(r["prompt"]) for r in rows] + probe._answer_texts(
        [r[side] for r in rows for side in ("response_a", "response_b")])
    distinct = list(dict.fromkeys(texts))

    def naive_single_pass() -> float:
        started = time.perf_counter()
        probe.encoder.encode(distinct, batch_size=cfg.judge.batch_size, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
        return len(rows) / (time.perf_counter() - started)

    judge_eval_path(), naive_single_pass()  # warm-up
    judged, naive = [], []
    for _ in range(args.repeats):
        judged.append(judge_eval_path())
        naive.append(naive_single_pass())
    result = {
        "pairs": len(rows),
        "distinct_texts_embedded": len(distinct),
        "axis_by_sentence": cfg.judge.axis_by_sentence,
        "judge_eval_pairs_per_second": round(statistics.median(judged), 2),
        "naive_single_pass_pairs_per_second": round(statistics.median(naive), 2),
        "judge_over_naive": round(statistics.median(judged) / statistics.median(naive), 3),
        "sentences_per_answer": round(sum(len(sentences(r[s])) for r in rows for s in ("response_a", "response_b"))
                                      / (2 * len(rows)), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
