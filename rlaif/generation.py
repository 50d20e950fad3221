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
