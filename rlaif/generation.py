"""Batched, seeded sampling from a policy (used by `generate`, `evaluate` and the registry wrapper)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rlaif.models import format_prompt


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )


def generate_texts(model, tokenizer, prompts: list[str], max_new_tokens: int, temperature: float | None,
                   seed: int, top_p: float = 1.0, batch_size: int = 64, label: str | None = None) -> list[str]:
    """One answer per prompt. temperature None means greedy. Prompts are length-sorted into batches
    (less padding), and the answers returned in the caller's order."""
    import torch

    texts = [format_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: list[str] = [""] * len(texts)
    torch.manual_seed(seed)
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature else dict(do_sample=False)
    model.eval()
    with progress() as bar:
        task = bar.add_task(label or "generate", total=len(texts))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            with torch.no_grad():
                out = model.generate(
                    **batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id, **sampling,
                )
            new_tokens = out[:, batch["input_ids"].shape[1] :]
            for i, text in zip(idx, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                answers[i] = text.strip()
            bar.advance(task, len(idx))
    return answers


def answer_logprobs(model, tokenizer, prompts: list[str], answers: list[str], batch_size: int = 32) -> list[float]:
    """Total log-probability of each answer given its prompt under `model` (teacher forcing, no sampling).
    The difference between two policies' values on one policy's samples estimates their KL divergence."""
    import torch

    from rlaif.models import format_completion

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
