"""A jury: a panel of judges (different backends or models) behind the one judge contract.

Panels of smaller judges from different families can beat one large judge (Verga et al. 2024).
Each member judges every item; the panel's P(first better) is the mean of the members' probabilities
(`mean`) or the share of members that prefer the first answer (`majority`). Members that fail on an
item are left out of its vote; an item is failed only when every member failed. Each verdict keeps
every member's probability in `raw["members"]`, so inter-judge agreement can be computed from the
audit log alone (`jury_agreement`), also after a resumed run.
"""

from __future__ import annotations

import time
from itertools import combinations

from rlaif.judging.judges.base import JudgeError, JudgeItem, Score, ScoreItem, Verdict


class Jury:
    backend = "jury"

    def __init__(self, members: list, aggregate: str = "mean"):
        ids = [m.judge_id for m in members]
        if len(set(ids)) != len(ids):
            raise ValueError(f"jury members must differ (backend or model); got {ids}")
        self.members = members
        self.aggregate = aggregate
        self.model_name = "+".join(ids)

    @property
    def judge_id(self) -> str:
        return f"jury[{self.aggregate}]:{self.model_name}"

    @property
    def order_invariant(self) -> bool:
        """Votes of order-invariant members aggregate to an order-invariant verdict; one member that reads
        both answers together makes the panel's verdict depend on the order."""
        from rlaif.judging.judges.base import order_invariant

        return all(order_invariant(m) for m in self.members)

    def judge(self, items: list[JudgeItem]) -> list[Verdict]:
        started = time.perf_counter()
        ballots = [member.judge(items) for member in self.members]
        each_ms = (time.perf_counter() - started) * 1000 / max(1, len(items))
        return [self._verdict(item, [b[i] for b in ballots], each_ms) for i, item in enumerate(items)]

    def _verdict(self, item: JudgeItem, votes: list[Verdict], latency_ms: float) -> Verdict:
        members = {m.judge_id: v.p_first for m, v in zip(self.members, votes)}
        errors = {m.judge_id: v.error for m, v in zip(self.members, votes) if v.status != "ok"}
        raw = {"members": members, "member_errors": errors}
        rendered = "\n\n".join(f"### {m.judge_id}\n{v.rendered}" for m, v in zip(self.members, votes))
        ok = [v.p_first for v in votes if v.status == "ok" and v.p_first is not None]  # an ok verdict has one
        if not ok:
            return Verdict(None, item.principle, "failed", "every jury member failed: " + "; ".join(
                f"{k}: {e}" for k, e in errors.items()), raw=raw, latency_ms=latency_ms, rendered=rendered)
        if self.aggregate == "mean":
            p_first = sum(ok) / len(ok)
        else:
            p_first = sum((p > 0.5) + 0.5 * (p == 0.5) for p in ok) / len(ok)
        return Verdict(p_first, votes[0].principle, raw=raw, latency_ms=latency_ms, rendered=rendered)

    def score(self, items: list[ScoreItem]) -> list[Score]:
        """Pointwise: the mean of the members' scores (a majority of numbers is not defined)."""
        ballots = [member.score(items) for member in self.members]
        scores = []
        for i, item in enumerate(items):
            votes = [b[i] for b in ballots]
            members = {m.judge_id: v.value for m, v in zip(self.members, votes)}
            ok = [v.value for v in votes if v.status == "ok"]
            if not ok:
                scores.append(Score(None, item.principle, "failed", "every jury member failed",
                                    raw={"members": members}))
            else:
                scores.append(Score(sum(ok) / len(ok), votes[0].principle, raw={"members": members},
                                    latency_ms=sum(v.latency_ms for v in votes)))
        return scores

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """Free text comes from the first member that can write."""
        for member in self.members:
            try:
                return member.generate(prompts, max_new_tokens)
            except JudgeError:
                continue
        raise JudgeError("no jury member can write text; critique and revision need a transformers or openai member")


def jury_agreement(audit: list[dict]) -> dict:
    """Inter-judge agreement from the audit log: for each pair of members, the share of judgments
    where both picked the same answer, and the mean over all member pairs."""
    decisions: dict[str, list[bool | None]] = {}
    rows = [r for r in audit if isinstance(r.get("raw"), dict) and "members" in r["raw"]]
    for row in rows:
        for member, p in row["raw"]["members"].items():
            decisions.setdefault(member, []).append(None if p is None else p > 0.5)
    per_pair = {}
    for a, b in combinations(sorted(decisions), 2):
        both = [(x, y) for x, y in zip(decisions[a], decisions[b]) if x is not None and y is not None]
        per_pair[f"{a} vs {b}"] = sum(x == y for x, y in both) / len(both) if both else None
    values = [v for v in per_pair.values() if v is not None]
    return {"judgments": len(rows), "pairwise": per_pair,
            "mean_agreement": sum(values) / len(values) if values else None}
