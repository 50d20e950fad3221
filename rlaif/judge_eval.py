"""Judge against people: agreement of the AI judge with human-labelled answer pairs.

Formats:
- `hh-rlhf`: rows with `chosen` and `rejected`, two whole dialogues ("\\n\\nHuman: ...\\n\\nAssistant: ...")
  sharing every turn but the last assistant reply; people preferred `chosen`.
- `jsonl`: rows with `prompt`, `response_a`, `response_b`, `human_preference` ("a" or "b"), like the
  project's gold set.

Each pair is judged in both orders. For HH-RLHF the human's answer is put in position a or b by a
seeded coin, so Cohen's kappa compares two a/b labelings rather than a constant.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from rlaif.errors import InputError
from rlaif.io import iter_jsonl

ASSISTANT = "\n\nAssistant:"


@dataclass
class HumanPair:
    id: str
    prompt: str
    response_a: str
    response_b: str
    human: str  # "a" or "b"


def split_hh(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(shared dialogue before the last assistant turn, chosen reply, rejected reply)."""
    cut_c, cut_r = chosen.rfind(ASSISTANT), rejected.rfind(ASSISTANT)
    if cut_c < 0 or cut_r < 0:
        raise ValueError("no '\\n\\nAssistant:' turn")
    context = chosen[:cut_c]
    return context.strip(), chosen[cut_c + len(ASSISTANT):].strip(), rejected[cut_r + len(ASSISTANT):].strip()


def last_human_turn(context: str) -> str:
    return context.rsplit("Human:", 1)[-1].strip()


def read_pairs(path: Path, fmt: str, limit: int | None, seed: int) -> list[HumanPair]:
    rng = random.Random(seed)
    pairs: list[HumanPair] = []
    for line_no, row in iter_jsonl(path):
        if limit is not None and len(pairs) >= limit:
            break
        try:
            if fmt == "hh-rlhf":
                context, good, bad = split_hh(row["chosen"], row["rejected"])
                prompt = last_human_turn(context)
                human = "a" if rng.random() < 0.5 else "b"
                a, b = (good, bad) if human == "a" else (bad, good)
                pairs.append(HumanPair(f"{path.name}:{line_no}", prompt, a, b, human))
            else:
                if row["human_preference"] not in ("a", "b"):
                    raise ValueError("human_preference must be 'a' or 'b'")
                pairs.append(HumanPair(str(row.get("id", line_no)), row["prompt"], row["response_a"],
                                       row["response_b"], row["human_preference"]))
        except (KeyError, ValueError, AttributeError, TypeError) as err:
            raise InputError(f"{path}:{line_no}: not a {fmt} pair ({err!r})") from None
    if not pairs:
        raise InputError(f"{path}: no pairs")
    return pairs


def cohens_kappa(first: list[str], second: list[str]) -> float:
    n = len(first)
    observed = sum(x == y for x, y in zip(first, second)) / n
    labels = set(first) | set(second)
    expected = sum((first.count(label) / n) * (second.count(label) / n) for label in labels)
    return (observed - expected) / (1 - expected) if expected < 1 else float("nan")


def judge_eval(cfg, pairs: list[HumanPair], constitution: Path, templates: Path) -> dict:
    from rlaif.io import read_constitution, read_templates
    from rlaif.judges import build_judge
    from tasks.judge import judge_pairs

    judge = build_judge(cfg, read_constitution(constitution), read_templates(templates))
    rows = [{"pair_id": p.id, "prompt_id": p.id, "prompt": p.prompt, "response_a": p.response_a,
             "response_b": p.response_b} for p in pairs]
    started = time.perf_counter()
    labels, _ = judge_pairs(cfg, judge, rows, [None] * len(rows), both_orders=True)
    seconds = time.perf_counter() - started
    judged = [(p, l) for p, l in zip(pairs, labels) if l["status"] == "ok"]
    human = [p.human for p, _ in judged]
    machine = ["a" if l["prob_a"] > 0.5 else "b" for _, l in judged]
    return {
        "pairs": len(pairs),
        "judged": len(judged),
        "failures": len(pairs) - len(judged),
        "agreement": sum(h == m for h, m in zip(human, machine)) / max(1, len(judged)),
        "cohens_kappa": cohens_kappa(human, machine) if judged else float("nan"),
        "position_consistency": sum(bool(l["consistent"]) for _, l in judged) / max(1, len(judged)),
        "pairs_per_second": len(pairs) / max(seconds, 1e-9),
        "judge": judge.judge_id,
        "mode": cfg.judge.mode,
    }
