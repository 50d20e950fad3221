"""Generation throughput of `rlaif.training.generation.generate_texts` (length-sorted batches) against a loop that
generates for one prompt at a time, on the same prompts, side by side in one run.

    python bench/generation_throughput.py [--prompts 128] [--max-new-tokens 48] [--batch-size 64]

The policy is a tiny Llama built here (random weights: speed does not depend on what it knows) with a
tokenizer trained on the project's prompts; on CUDA it runs in bf16. Prints JSON: new tokens per second
of each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--loop-prompts", type=int, default=32, help="prompts timed one at a time")
    args = parser.parse_args()

    import torch

    from rlaif.data.io import read_prompts
    from rlaif.training.generation import generate_texts
    from rlaif.training.models import build_tiny_llama, build_tokenizer, device, format_prompt

    prompts = [p.prompt for p in read_prompts(ROOT / "data/prompts/train.jsonl")][: args.prompts]
    tokenizer = build_tokenizer(prompts, 1024)
    model = build_tiny_llama(tokenizer, 192, 4, 4, 512, 256).to(device()).eval()
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token

    def new_tokens(answers: list[str]) -> int:
        return sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)

    generate_texts(model, tokenizer, prompts[:8], 4, 1.0, 0, batch_size=8)  # warm-up
    started = time.perf_counter()
    batched = generate_texts(model, tokenizer, prompts, args.max_new_tokens, 1.0, 0, batch_size=args.batch_size)
    batched_s = time.perf_counter() - started

    loop_prompts = prompts[: args.loop_prompts]
    started = time.perf_counter()
    looped = []
    for prompt in loop_prompts:
        batch = tokenizer([format_prompt(tokenizer, prompt)], return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=args.max_new_tokens, do_sample=True, temperature=1.0,
                                 pad_token_id=tokenizer.pad_token_id)
        looped.append(tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True))
    loop_s = time.perf_counter() - started

    batched_tps, loop_tps = new_tokens(batched) / batched_s, new_tokens(looped) / loop_s
    print(json.dumps({"device": device(), "prompts": len(prompts), "batch_size": args.batch_size,
                      "batched_tokens_per_s": round(batched_tps, 1), "one_at_a_time_tokens_per_s": round(loop_tps, 1),
                      "batched_over_loop": round(batched_tps / loop_tps, 2)}, indent=2))


if __name__ == "__main__":
    main()
