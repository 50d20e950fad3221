"""Throughput of the transformers judge backend, side by side in one run:

1. TransformersJudge.judge over all pairs (render, tokenize, batched forward, label probabilities);
2. the bare forward pass of the same model on the same batches, tokenized beforehand;
3. a naive judge: one pair at a time, generate one token and read it.

    python bench/judge_throughput.py [--pairs 256] [--batch-size 16]

The judge model is a small Llama built here from a config (no download); the pairs come from the
project's gold set and constitution examples. Prints tokens per second for each and the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_items(n: int):
    from rlaif.io import GoldPair, read_constitution, read_rows
    from rlaif.judges import JudgeItem

    charter = read_constitution(ROOT / "data/constitution/constitution.yaml")
    gold = read_rows(ROOT / "data/gold/pairs.jsonl", GoldPair)
    base = [JudgeItem(g.prompt, g.response_a, g.response_b) for g in gold]
    base += [JudgeItem(e.prompt, e.chosen, e.rejected) for p in charter.principles for e in p.examples]
    return list(itertools.islice(itertools.cycle(base), n))


def build_model(path: Path, templates: dict[str, str]) -> None:
    from rlaif.models import build_tiny_llama, build_tokenizer

    texts = [templates["pairwise"], "Answer: A", "Answer: B"] * 20
    tokenizer = build_tokenizer(texts, vocab_size=2000)
    model = build_tiny_llama(tokenizer, hidden=256, layers=4, heads=4, intermediate=768, max_positions=2048)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def main() -> None:
    import tempfile

    import torch

    from rlaif.io import read_constitution, read_templates
    from rlaif.config import JudgeBackendConfig
    from rlaif.judges.local_lm import TransformersJudge

    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    templates = read_templates(ROOT / "data/constitution/judge_templates.yaml")
    charter = read_constitution(ROOT / "data/constitution/constitution.yaml")
    items = build_items(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        build_model(Path(tmp) / "judge", templates)
        settings = JudgeBackendConfig(backend="transformers", model=str(Path(tmp) / "judge"), batch_size=args.batch_size)
        judge = TransformersJudge(charter, templates, settings)
        texts = sorted((judge.render(i) for i in items), key=len)
        tokens = sum(len(judge.tokenizer(t, add_special_tokens=False).input_ids) for t in texts)
        judge.judge(items[: args.batch_size])  # warm-up

        start = time.perf_counter()
        verdicts = judge.judge(items)
        judge_s = time.perf_counter() - start

        batches = [judge.tokenizer(texts[i : i + args.batch_size], return_tensors="pt", padding=True,
                                   add_special_tokens=False).to(judge.model.device)
                   for i in range(0, len(texts), args.batch_size)]
        start = time.perf_counter()
        with torch.no_grad():
            for batch in batches:
                positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                judge.model(**batch, position_ids=positions, logits_to_keep=1)
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # kernels run asynchronously: wait for them before reading the clock
        bare_s = time.perf_counter() - start

        sample = texts[:: max(1, len(texts) // 32)][:32]  # one-at-a-time is slow: time a spread sample
        sample_tokens = sum(len(judge.tokenizer(t, add_special_tokens=False).input_ids) for t in sample)
        start = time.perf_counter()
        with torch.no_grad():
            for text in sample:
                batch = judge.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(judge.model.device)
                out = judge.model.generate(**batch, max_new_tokens=1, do_sample=False,
                                           pad_token_id=judge.tokenizer.pad_token_id)
                judge.tokenizer.decode(out[0, -1:])
        naive_tps = sample_tokens / (time.perf_counter() - start)

    result = {
        "pairs": len(items), "failed": sum(v.status != "ok" for v in verdicts), "prompt_tokens": tokens,
        "batch_size": args.batch_size, "device": str(judge.model.device),
        "judge_tokens_per_s": tokens / judge_s, "bare_forward_tokens_per_s": tokens / bare_s,
        "one_at_a_time_generate_tokens_per_s": naive_tps,
    }
    result["judge_vs_bare_forward"] = result["judge_tokens_per_s"] / result["bare_forward_tokens_per_s"]
    result["judge_vs_one_at_a_time"] = result["judge_tokens_per_s"] / naive_tps
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
