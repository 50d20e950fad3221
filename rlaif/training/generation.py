"""Batched, seeded sampling from a policy (used by `generate`, `evaluate` and the registry wrapper).

Sampling is shard-invariant: prompts are length-sorted (stable) into batches of a fixed size, and
batch b is sampled from its own seed, derived from (seed, b). A batch's answers therefore depend only
on its prompts, the model and that seed, not on which other batches ran before it or in which
process: the Ray executor (rlaif/training/scaleout.py) hands whole batches to its shards and gets
byte-identical answers to the in-process loop, given the same torch thread count (set explicitly in
every shard).

The `generate` stage can also sample with vLLM (`generate.engine`): there every request carries its
own seed, derived from (seed, prompt index), so batching and sharding do not choose the samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rlaif.training.models import format_completion, format_prompt


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )


def derived_seed(seed: int, *path: int | str) -> int:
    """The one way the pipeline derives a seed: for the unit at `path` (a purpose and its indices, e.g.
    ("candidate", k), ("evaluate", k), ("probe", step), or a batch index) of a run seeded with `seed`. A hash, so
    no two units share a seed the way seed + k would (seed 0 candidate 1 and seed 1 candidate 0; a candidate
    stream and an evaluation stream 1000 apart)."""
    digest = hashlib.sha256(":".join(["rlaif", str(seed), *map(str, path)]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # below 2**63: valid for torch and numpy alike


def plan_batches(tokenizer, prompts: list[str], batch_size: int, opening: str = "") -> tuple[list[str], list[list[int]]]:
    """The formatted prompt texts (each followed by the answer's `opening`, if any) and the batches (lists of
    indices into them): length-sorted with a stable sort and cut every `batch_size`, so the plan depends only on
    the prompts, the opening and the size."""
    texts = [prompt_text(tokenizer, p, opening) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return texts, [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def prompt_text(tokenizer, prompt: str, opening: str = "") -> str:
    """What the policy continues: the formatted prompt, and the answer's opening as training formats an answer's
    start (after the plain format's space; right after a chat template's assistant header)."""
    return format_prompt(tokenizer, prompt) + (format_completion(tokenizer, opening) if opening else "")


def sample_batch(model, tokenizer, texts: list[str], max_new_tokens: int, temperature: float | None,
                 top_p: float, seed: int, opening: str = "") -> list[str]:
    """Answers to one batch of formatted prompts, sampled from the torch generator seeded with `seed`
    (temperature None: greedy). With an `opening` (already at the end of each text) the answer is the opening
    and its continuation."""
    import torch

    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature else dict(do_sample=False)
    model.eval()
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    batch = {k: v.to(model.device) for k, v in batch.items()}
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            **batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, **sampling,
        )
    new_tokens = out[:, batch["input_ids"].shape[1] :]
    return [(opening + text).strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def generate_texts(model, tokenizer, prompts: list[str], max_new_tokens: int, temperature: float | None,
                   seed: int, top_p: float = 1.0, batch_size: int = 64, label: str | None = None,
                   opening: str = "") -> list[str]:
    """One answer per prompt (each starting with `opening`, if given). temperature None means greedy. Prompts are
    length-sorted into batches (less padding), each batch seeded from (seed, its index), and the answers returned
    in the caller's order."""
    texts, batches = plan_batches(tokenizer, prompts, batch_size, opening)
    answers: list[str] = [""] * len(texts)
    with progress() as bar:
        task = bar.add_task(label or "generate", total=len(texts))
        for number, idx in enumerate(batches):
            outs = sample_batch(model, tokenizer, [texts[i] for i in idx], max_new_tokens, temperature, top_p,
                                derived_seed(seed, number), opening)
            for i, text in zip(idx, outs):
                answers[i] = text
            bar.advance(task, len(idx))
    return answers


# ---------------------------------------------------------------------------------------------------
# The generate stage: engines (transformers, vLLM) and executors (in-process, Ray shards)


def vllm_unusable_reason() -> str | None:
    """None when vLLM can sample here (`import vllm` works and a CUDA device is present), else why not."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        import vllm  # noqa: F401
    except Exception as err:  # an absent or broken install alike
        return f"vllm cannot be imported ({type(err).__name__}: {err})"
    return None


def _has_adapters_only(source: str) -> bool:
    from rlaif.training.models import ADAPTER_CONFIG

    return (Path(source) / ADAPTER_CONFIG).exists()


def resolve_engine(g, source: str) -> str:
    """The engine that samples: `transformers`, or `vllm` when asked for (an error where it cannot run)
    or when `auto` finds it usable. With executor ray and GPU shards, `auto` decides on whether the
    driver can import vllm; the shards check their own CUDA device when they start."""
    from rlaif.errors import InputError

    if g.engine == "transformers":
        return "transformers"
    if g.executor == "ray" and g.ray_num_gpus_per_shard > 0:
        import importlib.util

        reason = None if importlib.util.find_spec("vllm") else "vllm is not installed"
    else:
        reason = vllm_unusable_reason()
    if reason is None and _has_adapters_only(source):
        reason = f"policy {source!r} holds LoRA adapters only (vLLM needs merged weights)"
    if g.engine == "auto":
        return "transformers" if reason else "vllm"
    if reason:
        raise InputError(f"generate.engine 'vllm' cannot run: {reason}; set generate.engine to transformers or auto")
    return "vllm"


class VllmSampler:
    """vLLM's offline engine. Every request is (prompt, seed): SamplingParams(seed=...) gives each request its
    own generator, so which requests share a batch or a shard does not decide what is sampled (up to the
    floating-point effects of batch composition that vLLM does not promise to remove). Prompts are
    formatted and tokenized as in the transformers path (no special tokens added)."""

    def __init__(self, source: str, seed: int, gpu_share: float = 1.0):
        from transformers import AutoTokenizer
        from vllm import LLM

        self.tokenizer = AutoTokenizer.from_pretrained(source)
        # shards that share a GPU (ray_num_gpus_per_shard < 1) split vLLM's default 90% of its memory
        self.llm = LLM(model=source, tokenizer=source, seed=seed, gpu_memory_utilization=0.9 * min(1.0, gpu_share))

    def sample(self, requests: list[tuple[str, int, str]], max_new_tokens: int, temperature: float | None,
               top_p: float) -> list[str]:
        from vllm import SamplingParams

        prompts = [{"prompt_token_ids": self.tokenizer(prompt_text(self.tokenizer, prompt, opening),
                                                       add_special_tokens=False)["input_ids"]}
                   for prompt, _, opening in requests]
        params = [SamplingParams(n=1, temperature=temperature or 0.0, top_p=top_p if temperature else 1.0,
                                 max_tokens=max_new_tokens, seed=seed, skip_special_tokens=True)
                  for _, seed, _ in requests]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [(opening + out.outputs[0].text).strip() for (_, _, opening), out in zip(requests, outputs)]


class PolicyShard:
    """One policy loaded once, sampling whole units of work: a batch (transformers) or a list of seeded
    requests (vLLM). The in-process path and every Ray shard sample through this class."""

    def __init__(self, policy: str, engine: str, max_new_tokens: int, temperature: float | None, top_p: float,
                 seed: int, gpu_share: float = 1.0):
        self.engine, self.max_new_tokens, self.temperature, self.top_p = engine, max_new_tokens, temperature, top_p
        if engine == "vllm":
            from rlaif.errors import InputError
            from rlaif.training.models import resolve_policy

            reason = vllm_unusable_reason()
            if reason:
                raise InputError(f"generate.engine 'vllm' cannot run on this shard: {reason}")
            self.sampler = VllmSampler(resolve_policy(policy), seed, gpu_share)
        else:
            from rlaif.training.models import load_policy

            self.model, self.tokenizer = load_policy(policy)

    def sample_batch(self, texts: list[str], seed: int, opening: str = "") -> list[str]:
        return sample_batch(self.model, self.tokenizer, texts, self.max_new_tokens, self.temperature, self.top_p, seed,
                            opening)

    def sample_requests(self, requests: list[tuple[str, int, str]]) -> list[str]:
        return self.sampler.sample(requests, self.max_new_tokens, self.temperature, self.top_p)


@dataclass
class Candidates:
    samples: list[list[str]]  # samples[k][i]: candidate k of prompt i
    engine: str
    executor: str
    shards: int
    torch_threads: int


def vllm_requests(prompts: list[str], openings: list[str], seed: int) -> list[tuple[str, int, str]]:
    """Every (candidate k, prompt i) request with its own seed, derived from candidate k's stream, and candidate
    k's answer opening; candidate-major."""
    return [(prompt, derived_seed(candidate_seed(seed, k), i), opening)
            for k, opening in enumerate(openings) for i, prompt in enumerate(prompts)]


def candidate_openings(g) -> list[str]:
    """How each candidate's answer starts: "" for the `num_candidates` sampled ones, then one candidate per
    `prefills` opening, continued by the policy (streams num_candidates.., so the sampled ones keep their seeds)."""
    return [""] * g.num_candidates + list(g.prefills)


def candidate_seed(seed: int, k: int) -> int:
    """The seed of candidate k's sampling stream (its batches and requests derive theirs from it)."""
    return derived_seed(seed, "candidate", k)


def split_contiguous(n: int, parts: int) -> list[range]:
    """n items cut into at most `parts` contiguous ranges of near-equal size (none empty)."""
    parts = max(1, min(parts, n))
    bounds = [n * p // parts for p in range(parts + 1)]
    return [range(bounds[p], bounds[p + 1]) for p in range(parts)]


def generate_candidates(policy: Path | str, prompts: list[str], g, seed: int) -> Candidates:
    """`g.num_candidates` samples per prompt, and one per `g.prefills` opening, with the settings of `g` (a
    GenerateConfig): candidate k is seeded from its own stream (candidate_seed), each of its batches (or vLLM
    requests) from a seed derived from that. The Ray
    executor gives byte-identical candidates to the in-process one (transformers engine)."""
    import torch

    from rlaif.training.models import resolve_policy

    engine = resolve_engine(g, resolve_policy(policy))
    threads = torch.get_num_threads()
    openings = candidate_openings(g)
    n, kinds = len(prompts), len(openings)
    if g.executor == "local":
        if engine == "vllm":
            shard = PolicyShard(str(policy), engine, g.max_new_tokens, g.temperature, g.top_p, seed)
            flat = shard.sample_requests(vllm_requests(prompts, openings, seed))
            samples = [flat[k * n : (k + 1) * n] for k in range(kinds)]
        else:
            from rlaif.training.models import load_policy

            model, tokenizer = load_policy(policy)
            samples = [generate_texts(model, tokenizer, prompts, g.max_new_tokens, g.temperature, candidate_seed(seed, k),
                                      g.top_p, g.batch_size, label=f"generate candidate {k + 1}/{kinds}",
                                      opening=opening)
                       for k, opening in enumerate(openings)]
        return Candidates(samples, engine, "local", 1, threads)
    return _generate_on_ray(policy, prompts, g, seed, engine)


def _generate_on_ray(policy: Path | str, prompts: list[str], g, seed: int, engine: str) -> Candidates:
    """The same units of work as in-process, on Ray shards: whole batches with their derived seeds
    (transformers), or contiguous slices of the seeded requests, one per shard (vLLM)."""
    import torch

    from rlaif.errors import InputError
    from rlaif.training.scaleout import ray_shards

    openings = candidate_openings(g)
    n, kinds = len(prompts), len(openings)
    samples = [[""] * n for _ in range(kinds)]
    args = (str(policy), engine, g.max_new_tokens, g.temperature, g.top_p, seed, g.ray_num_gpus_per_shard or 1.0)
    if engine == "transformers":
        tokenizer = _tokenizer(policy)
        _, batches = plan_batches(tokenizer, prompts, g.batch_size)  # the same batches with any opening
        texts = [[prompt_text(tokenizer, p, opening) for p in prompts] for opening in openings]
    with ray_shards(g, "generate", InputError) as pool, progress() as bar:
        task = bar.add_task(f"generate {kinds} candidates ({engine}, {pool.shards} Ray shards)", total=n * kinds)
        if engine == "vllm":
            requests = vllm_requests(prompts, openings, seed)
            slices = split_contiguous(len(requests), pool.shards)

            def place(index: int, answers: list[str]) -> None:
                for position, text in zip(slices[index], answers):
                    samples[position // n][position % n] = text
                bar.advance(task, len(answers))

            used = pool.run(PolicyShard, args, "sample_requests",
                            [(requests[r.start : r.stop],) for r in slices], place)
        else:
            units = [(k, b) for k in range(kinds) for b in range(len(batches))]

            def place(index: int, answers: list[str]) -> None:
                k, b = units[index]
                for i, text in zip(batches[b], answers):
                    samples[k][i] = text
                bar.advance(task, len(answers))

            used = pool.run(PolicyShard, args, "sample_batch",
                            [([texts[k][i] for i in batches[b]], derived_seed(candidate_seed(seed, k), b), openings[k])
                             for k, b in units], place)
    return Candidates(samples, engine, "ray", used, torch.get_num_threads())


def _tokenizer(policy: Path | str):
    """The policy's tokenizer alone (the driver of a Ray run plans the batches; the shards load the model)."""
    from transformers import AutoTokenizer

    from rlaif.errors import InputError
    from rlaif.training.models import resolve_policy

    source = resolve_policy(policy)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise InputError(f"policy {source!r}: its tokenizer cannot be loaded ({err})") from None


def answer_logprobs(model, tokenizer, prompts: list[str], answers: list[str], batch_size: int = 32) -> list[float]:
    """Total log-probability of each answer given its prompt under `model` (teacher forcing, no sampling).
    The difference between two policies' values on one policy's samples estimates their KL divergence."""
    import torch

    from rlaif.training.models import format_completion

    results: list[float] = []
    model.eval()
    for start in range(0, len(prompts), batch_size):
        chunk = range(start, min(start + batch_size, len(prompts)))
        heads = [tokenizer(format_prompt(tokenizer, prompts[i]), add_special_tokens=False)["input_ids"] for i in chunk]
        tails = [tokenizer(format_completion(tokenizer, answers[i]), add_special_tokens=False)["input_ids"] for i in chunk]
        width = max(len(h) + len(t) for h, t in zip(heads, tails))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(heads), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        scored = torch.zeros_like(ids, dtype=torch.bool)  # the answer's tokens only
        for row, (head, tail) in enumerate(zip(heads, tails)):
            ids[row, : len(head) + len(tail)] = torch.tensor(head + tail)
            mask[row, : len(head) + len(tail)] = 1
            scored[row, len(head) : len(head) + len(tail)] = True
        ids, mask, scored = ids.to(model.device), mask.to(model.device), scored.to(model.device)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        token_logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        results += (token_logps * scored[:, 1:]).sum(dim=1).tolist()
    return results
