"""What a reward model scores, in one place: training evaluation, the online reward and the registered model.

TRL's RewardTrainer appends the end-of-sequence token to every text it trains on, and a decoder-only backbone
reads the reward at the last token. A reward read from text without that token is read at another position than
it was trained at (train/serve skew), so every scorer builds its input with `scored_text` and scores with `score`.
"""

from __future__ import annotations

import math

SCORE_MAX_LENGTH = 256  # tokens; the longest text any scorer reads (training drops pairs over train_reward.max_length)


def dialogue(prompt: str, response: str) -> str:
    """The dialogue as the reward model's training pairs hold it (RewardTrainer adds the EOS token itself)."""
    from rlaif.training.models import ASSISTANT_PREFIX, USER_PREFIX

    return f"{USER_PREFIX}{prompt}{ASSISTANT_PREFIX} {response}"


def scored_text(tokenizer, prompt: str, response: str) -> str:
    """The dialogue ending with the end-of-sequence token, exactly as RewardTrainer trained on it."""
    text = dialogue(prompt, response)
    eos = tokenizer.eos_token or ""
    return text if text.endswith(eos) else text + eos


def score(model, tokenizer, prompts: list[str], responses: list[str], batch_size: int = 64,
          max_length: int = SCORE_MAX_LENGTH) -> list[float]:
    """The reward model's scalar for each (prompt, response)."""
    import torch

    limit = min(max_length, getattr(model.config, "max_position_embeddings", None) or max_length)
    texts = [scored_text(tokenizer, p, r) for p, r in zip(prompts, responses, strict=True)]
    values: list[float] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=limit,
                          return_tensors="pt").to(model.device)
        with torch.no_grad():
            values += model(**batch).logits[:, 0].double().tolist()
    return values


def pair_probabilities(model, tokenizer, triples: list[tuple[str, str, str]]) -> list[float]:
    """P(chosen better) = sigmoid(r_chosen - r_rejected) for each (prompt, chosen, rejected)."""
    prompts = [p for p, _, _ in triples]
    chosen = score(model, tokenizer, prompts, [c for _, c, _ in triples])
    rejected = score(model, tokenizer, prompts, [r for _, _, r in triples])
    return [_sigmoid(c - r) for c, r in zip(chosen, rejected)]


def _sigmoid(gap: float) -> float:
    return 1.0 / (1.0 + math.exp(-gap)) if gap >= 0 else math.exp(gap) / (1.0 + math.exp(gap))
