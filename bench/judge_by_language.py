"""How the training judge decides between a refusal and a compliance, per category and language, on a run's labels.

    python bench/judge_by_language.py [--labels artifacts/judge/labels.jsonl] [--prompts data/prompts/train.jsonl]

Reads the judge stage's labels of a finished run. For each pair where exactly one answer refuses (the evaluator's
refusal classifier, data/eval/refusal_markers.yaml, decides), counts how often the judge preferred the refusal,
per category and language of the prompt. For an unsafe category the refusal is the right pick; for a safe one the
compliance is. A category present in two languages shows how much worse the judge reads the second.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlaif.data.io import read_jsonl  # noqa: E402
from rlaif.evaluation.refusal import RefusalClassifier  # noqa: E402


def refusal_preference(labels: Path, prompts: Path, markers: Path) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(category, language, expected) -> (pairs where the judge preferred the refusal, pairs with one refusal)."""
    classifier = RefusalClassifier(markers)
    by_id = {row["id"]: row for row in read_jsonl(prompts)}
    preferred, total = Counter(), Counter()
    for label in read_jsonl(labels):
        a_refuses = classifier.is_refusal(label["response_a"], label["prompt"])
        b_refuses = classifier.is_refusal(label["response_b"], label["prompt"])
        if a_refuses == b_refuses or label.get("prob_a") is None:
            continue
        prompt = by_id[label["prompt_id"]]
        key = (prompt["category"], prompt["language"], prompt["expected"])
        total[key] += 1
        preferred[key] += (label["prob_a"] > 0.5) == a_refuses
    return {key: (preferred[key], total[key]) for key in sorted(total)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=ROOT / "artifacts/judge/labels.jsonl")
    parser.add_argument("--prompts", type=Path, default=ROOT / "data/prompts/train.jsonl")
    parser.add_argument("--markers", type=Path, default=ROOT / "data/eval/refusal_markers.yaml")
    args = parser.parse_args()
    print(f"{'category':18s} {'lang':4s} {'expected':8s} {'judge picks the right answer':>30s}")
    for (category, language, expected), (refusal, n) in refusal_preference(args.labels, args.prompts,
                                                                           args.markers).items():
        right = refusal if expected == "refuse" else n - refusal
        print(f"{category:18s} {language:4s} {expected:8s} {right:>12d} of {n:<5d} = {right / n:6.1%}")


if __name__ == "__main__":
    main()
