"""Generation in-process against generation sharded on a local Ray cluster, side by side in one run:

    python bench/scaleout.py [--policy DIR] [--prompts 392] [--candidates 4] [--shards 2] [--repeats 2]
                             [--torch-threads N]

The policy is `--policy` (e.g. artifacts/bootstrap/policy), or else a policy of the default profile's
shape (tiny Llama: hidden 192, 4 layers, vocabulary 1024, random weights) built here from the training
prompts. Both paths use the default generate settings (48 new tokens, temperature 1, batches of 128)
and the transformers engine. Timed:

- in-process: `generate_candidates` with executor local (policy load included);
- ray: `generate_candidates` with executor ray on a cluster already started (each run builds its
  shards: worker processes that import torch and load the policy, then sample their batches);
- the cluster's start (`ray.init`), once.

The two paths alternate `--repeats` times; medians are reported, with whether the candidates are
byte-identical. Prints JSON. Every shard runs as many torch threads as this process (so that its
results are the same), so N shards on the same machine run N times as many threads. On a 2-core machine
Ray cannot be faster: the shards share the two cores that the in-process path uses, and each shard pays
its own start-up (a worker process that imports torch and loads the policy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def build_policy(path: Path, prompts: list[str]) -> Path:
    """A policy of the default profile's shape with random weights: the bootstrap model before training."""
    from rlaif.config import BootstrapConfig
    from rlaif.training.models import save_tiny_llama

    b = BootstrapConfig()
    return save_tiny_llama(prompts * 3, path, vocab_size=b.vocab_size, hidden=b.hidden_size, layers=b.num_layers,
                           heads=b.num_heads, intermediate=b.intermediate_size, max_positions=2 * b.max_length)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path)
    parser.add_argument("--prompts", type=int, default=392)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--torch-threads", type=int, help="torch threads of this process, and so of every shard "
                        "(default: torch's, one per core)")
    args = parser.parse_args()

    import ray
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    from rlaif.config import GenerateConfig
    from rlaif.data.io import read_prompts
    from rlaif.training.generation import generate_candidates

    prompts = [r.prompt for r in read_prompts(ROOT / "data/prompts/train.jsonl")][: args.prompts]
    with tempfile.TemporaryDirectory() as tmp:
        policy = args.policy or build_policy(Path(tmp) / "policy", prompts)
        local = GenerateConfig(num_candidates=args.candidates, engine="transformers")
        sharded = local.model_copy(update={"executor": "ray", "ray_shards": args.shards})
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        times: dict[str, list[float]] = {"in_process": [], "ray": []}
        outputs = {}
        try:
            for _ in range(args.repeats):
                for name, settings in (("in_process", local), ("ray", sharded)):
                    started = time.perf_counter()
                    outputs[name] = generate_candidates(policy, prompts, settings, seed=0)
                    times[name].append(time.perf_counter() - started)
        finally:
            ray.shutdown()
    median = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({
        "policy": str(args.policy or "default shape, random weights"), "prompts": len(prompts),
        "candidates": args.candidates * len(prompts), "max_new_tokens": local.max_new_tokens,
        "batch_size": local.batch_size, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "ray_shards": outputs["ray"].shards, "ray_start_s": round(ray_start, 2),
        "in_process_s": round(median["in_process"], 2), "ray_s": round(median["ray"], 2),
        "ray_over_in_process": round(median["ray"] / median["in_process"], 2),
        "all_runs_s": {k: [round(v, 2) for v in vs] for k, vs in times.items()},
        "identical": outputs["ray"].samples == outputs["in_process"].samples,
    }, indent=2))


if __name__ == "__main__":
    main()
