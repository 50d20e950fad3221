"""Judge against people: agreement of the AI judge with human-labelled answer pairs.

Formats:
- `hh-rlhf`: rows with `chosen` and `rejected`, two whole dialogues ("\\n\\nHuman: ...\\n\\nAssistant: ...")
  sharing every turn but the last assistant reply; people preferred `chosen`.
- `jsonl`: rows with `prompt`, `response_a`, `response_b`, `human_preference` ("a" or "b"), like the
  project's gold set.

The prompt of an HH-RLHF pair is its last human turn (`context="last"`) or every human turn of the
dialogue, one per line (`context="dialogue"`): a request is often spread over several turns ("and with
a knife?"). `principle` asks the judge one constitution principle only, the question the people were
asked (HH-RLHF harmless: which answer is less harmful).

Each pair is judged in both orders. For HH-RLHF the human's answer is put in position a or b by a
seeded coin, so Cohen's kappa compares two a/b labelings rather than a constant.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from rlaif.data.io import iter_jsonl
from rlaif.errors import InputError

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


def human_turns(context: str) -> list[str]:
    """Every human turn of an HH dialogue, in order."""
    parts = re.split(r"\n\n(Human|Assistant):", "\n\n" + context.strip())
    return [text.strip() for role, text in zip(parts[1::2], parts[2::2]) if role == "Human" and text.strip()]


def read_pairs(path: Path, fmt: str, limit: int | None, seed: int, context: str = "dialogue") -> list[HumanPair]:
    if context not in ("last", "dialogue"):
        raise InputError(f"context {context!r}: expected last or dialogue")
    rng = random.Random(seed)
    pairs: list[HumanPair] = []
    for line_no, row in iter_jsonl(path):
        if limit is not None and len(pairs) >= limit:
            break
        try:
            if fmt == "hh-rlhf":
                dialogue, good, bad = split_hh(row["chosen"], row["rejected"])
                prompt = last_human_turn(dialogue) if context == "last" else "\n".join(human_turns(dialogue))
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


def judge_eval(cfg, pairs: list[HumanPair], constitution: Path, templates: Path,
               principle: str | None = None) -> dict:
    from rlaif.data.io import read_constitution, read_templates
    from rlaif.judging.judges import build_judge
    from rlaif.judging.labelling import judge_pairs, position_consistency

    charter = read_constitution(constitution)
    known = [p.id for p in charter.of_kind("comparison")]
    if principle is not None and principle not in known:
        raise InputError(f"principle {principle!r}: not a comparison principle of the constitution ({known})")
    judge = build_judge(cfg.judge, charter, read_templates(templates))
    rows = [{"pair_id": p.id, "prompt_id": p.id, "prompt": p.prompt, "response_a": p.response_a,
             "response_b": p.response_b} for p in pairs]
    started = time.perf_counter()
    labels, _ = judge_pairs(cfg.judge, judge, rows, [[principle] if principle else None] * len(rows), both_orders=True)
    seconds = time.perf_counter() - started
    judged = [(p, lab) for p, lab in zip(pairs, labels) if lab["status"] == "ok"]
    human = [p.human for p, _ in judged]
    machine = ["a" if lab["prob_a"] > 0.5 else "b" for _, lab in judged]
    return {
        "pairs": len(pairs),
        "judged": len(judged),
        "failures": len(pairs) - len(judged),
        "agreement": sum(h == m for h, m in zip(human, machine)) / max(1, len(judged)),
        "cohens_kappa": cohens_kappa(human, machine) if judged else float("nan"),
        "position_consistency": position_consistency([lab for _, lab in judged]),
        "pairs_per_second": len(pairs) / max(seconds, 1e-9),
        "judge": judge.judge_id,
        "mode": cfg.judge.mode,
        "principle": principle or "all",
    }
