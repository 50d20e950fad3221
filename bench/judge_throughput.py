"""Throughput of the transformers judge backend, side by side in one run, in prompt tokens per second:

1. `TransformersJudge.judge` over all pairs, end to end: render, tokenize, pad, forward, label
   probabilities, verdicts;
2. the bare forward pass of the same model on the same batches (the judge's own batching), tokenized,
   padded and already on the device before the clock starts, with the same forward arguments;
3. a naive judge: one pair at a time, `generate` one token and read it (a spread sample of pairs).

    python bench/judge_throughput.py [--size tiny|qwen0.5b] [--pairs 256] [--batch-size 16] [--repeats 3]

The judge model is built here from a config, with random weights (no download): `tiny` is a small
Llama (hidden 256, 4 layers); `qwen0.5b` has the shape of Qwen2-0.5B (hidden 896, 24 layers, 14 heads,
2 KV heads, intermediate 4864) with the vocabulary of the tokenizer built here. On CUDA the model runs
in bf16 (load_policy). The pairs come from the project's gold set and constitution examples. Judge and
bare forward alternate `--repeats` times after a warm-up; the medians are reported. CUDA is
synchronised before every clock read. Prints JSON with tokens per second of each and the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SIZES = {
    "tiny": dict(arch="llama", hidden=256, layers=4, heads=4, kv_heads=4, intermediate=768),
    "qwen0.5b": dict(arch="qwen2", hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864),
}


def build_items(n: int):
    from rlaif.data.io import GoldPair, read_constitution, read_rows
    from rlaif.judging.judges import JudgeItem

    charter = read_constitution(ROOT / "data/constitution/constitution.yaml")
    gold = read_rows(ROOT / "data/gold/pairs.jsonl", GoldPair)
    base = [JudgeItem(g.prompt, g.response_a, g.response_b) for g in gold]
    base += [JudgeItem(e.prompt, e.chosen, e.rejected) for p in charter.principles for e in p.examples]
    return list(itertools.islice(itertools.cycle(base), n))


def build_model(path: Path, templates: dict[str, str], items, size: str) -> None:
    """A tokenizer trained on the judge's own text, and a model of the chosen shape, saved to `path`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rlaif.training.models import build_tiny_llama, build_tokenizer

    texts = [templates["pairwise"], "Answer: A", "Answer: B"] * 20
    texts += [t for i in items[:200] for t in (i.prompt, i.first, i.second)]
    tokenizer = build_tokenizer(texts, vocab_size=2000)
    tokenizer.model_max_length = 32768  # judge prompts run past the default 512; the model takes them
    shape = SIZES[size]
    if shape["arch"] == "llama":
        model = build_tiny_llama(tokenizer, hidden=shape["hidden"], layers=shape["layers"], heads=shape["heads"],
                                 intermediate=shape["intermediate"], max_positions=4096)
    else:
        config = Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=shape["hidden"], num_hidden_layers=shape["layers"],
            num_attention_heads=shape["heads"], num_key_value_heads=shape["kv_heads"],
            intermediate_size=shape["intermediate"], max_position_embeddings=32768, rope_theta=1_000_000.0,
            rms_norm_eps=1e-6, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)  # random weights; bf16 halves the file
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def main() -> None:
    import tempfile

    import torch

    from rlaif.config import TransformersJudgeSettings
    from rlaif.data.io import read_constitution, read_templates
    from rlaif.judging.judges.local_lm import TransformersJudge

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of judge and bare forward each")
    parser.add_argument("--naive", type=int, default=32, help="pairs timed one at a time with generate")
    args = parser.parse_args()
    templates = read_templates(ROOT / "data/constitution/judge_templates.yaml")
    charter = read_constitution(ROOT / "data/constitution/constitution.yaml")
    items = build_items(args.pairs)
    cuda = torch.cuda.is_available()

    def clock() -> float:
        if cuda:
            torch.cuda.synchronize()  # kernels run asynchronously: wait for them before reading the clock
        return time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_model(Path(tmp) / "judge", templates, items, args.size)
        settings = TransformersJudgeSettings(backend="transformers", model=str(Path(tmp) / "judge"),
                                      batch_size=args.batch_size)
        judge = TransformersJudge(charter, templates, settings)
        build_s = time.perf_counter() - started
    model = judge.model

    # what the bare forward gets: the judge's own batches, ready on the device before its clock starts
    start = clock()
    texts = [judge.render(i) for i in items]
    render_s = clock() - start
    start = clock()
    ids = judge.encode(texts)
    tokenize_s = clock() - start
    order = judge.order(ids)
    start = clock()
    batches = list(judge.batches(ids, order))
    pad_s = clock() - start
    tokens = sum(map(len, ids))
    padded = sum(b.input_ids.numel() for b in batches)

    def bare_forward() -> None:
        with torch.inference_mode():
            for batch in batches:
                model(**batch.inputs(), logits_to_keep=1, use_cache=False)

    # warm-up (kernels, cuBLAS handles, the caching allocator at the largest shapes): a full pass on
    # CUDA, two batches (the longest) on the CPU, where a pass is slow and needs no warming
    warm = items if cuda else [items[i] for i in order[: 2 * args.batch_size]]
    judge.judge(warm)
    if cuda:
        bare_forward()
    else:
        with torch.inference_mode():
            for batch in batches[:2]:
                model(**batch.inputs(), logits_to_keep=1, use_cache=False)

    judge_times, bare_times = [], []
    for _ in range(args.repeats):
        start = clock()
        verdicts = judge.judge(items)
        judge_times.append(clock() - start)
        start = clock()
        bare_forward()
        bare_times.append(clock() - start)
    judge_s, bare_s = statistics.median(judge_times), statistics.median(bare_times)

    by_length = [texts[i] for i in order]
    sample = by_length[:: max(1, len(by_length) // args.naive)][: args.naive]  # a spread of lengths
    sample_tokens = sum(len(judge.tokenizer(t, add_special_tokens=False).input_ids) for t in sample)
    start = clock()
    with torch.inference_mode():
        for text in sample:
            batch = judge.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
            out = model.generate(**batch, max_new_tokens=1, do_sample=False, pad_token_id=judge.tokenizer.pad_token_id)
            judge.tokenizer.decode(out[0, -1:])
    naive_tps = sample_tokens / (clock() - start)

    result = {
        "size": args.size, "parameters": sum(p.numel() for p in model.parameters()),
        "device": torch.cuda.get_device_name() if cuda else "cpu", "dtype": str(model.dtype),
        "pairs": len(items), "failed": sum(v.status != "ok" for v in verdicts), "batch_size": args.batch_size,
        "prompt_tokens": tokens, "padded_tokens": padded, "repeats": args.repeats,
        "judge_s": judge_times, "bare_forward_s": bare_times,
        "judge_tokens_per_s": tokens / judge_s, "bare_forward_tokens_per_s": tokens / bare_s,
        "one_at_a_time_generate_tokens_per_s": naive_tps,
        "judge_vs_bare_forward": bare_s / judge_s,
        "judge_vs_one_at_a_time": tokens / judge_s / naive_tps,
        "host_prep_s": {"render": render_s, "tokenize": tokenize_s, "pad_and_copy": pad_s},
        "build_and_load_s": build_s,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
