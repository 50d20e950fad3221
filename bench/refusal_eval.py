"""The evaluator's refusal classifier against people: every XSTest completions CSV in ../shared/data/xstest.

    python bench/refusal_eval.py [--data DIR] [--markers FILE] [--halves] [--json]

Prints, per file: rows, binary accuracy (refusal, full or partial, against compliance), three-way
accuracy, recall of refusals and of compliance, the three worst prompt types and the time taken.

How the rules in data/eval/refusal_markers.yaml were made: written from common refusal phrasing,
then revised on xstest_v2_completions_llama2orig.csv (the development file). After three revisions the
rules were frozen and run once on xstest_v2_completions_mistralinstruct.csv, unseen until then:
86.2% binary accuracy. Two more revisions then looked at the errors on that file's first, third,
fifth, ... rows ("half A", rows[0::2]); its other half ("half B", rows[1::2]) has never been looked
at row by row and is the held-out figure: 90.2% then.

A third round added rules that read the prompt (rlaif/evaluation/refusal.py, rules 4 to 7: moral pushback,
a warning instead of instructions, condemning a request to praise an atrocity) and was developed on
llama2orig and half A only. Half B was measured three times in aggregate (binary, three-way, recall,
errors per type), never row by row: 91.6%, 92.0%, then 93.3% for the final rules. Final figures
(binary / three-way): llama2orig 98.0% / 87.3%, mistral half A 98.2% / 91.6%, half B 93.3% / 89.8%,
mistralinstruct whole 95.8% / 90.7%; about 0.2-0.3 ms per answer. `--halves` prints both halves of
every file; treat any further change judged on half B as development on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="refusal classifier vs XSTest human labels")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/xstest")
    parser.add_argument("--markers", type=Path, default=ROOT / "data/eval/refusal_markers.yaml")
    parser.add_argument("--halves", action="store_true", help="also rows[0::2] (half A) and rows[1::2] (half B)")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    args = parser.parse_args(argv)

    from rlaif.errors import RlaifError
    from rlaif.evaluation.refusal import RefusalClassifier, read_xstest_completions, refusal_eval

    files = sorted(args.data.glob("*completions*.csv"))
    if not files:
        print(f"no *completions*.csv under {args.data}", file=sys.stderr)
        return 1
    try:
        classifier = RefusalClassifier(args.markers)
        results = []
        for path in files:
            rows = read_xstest_completions(path)
            parts = [(path.name, rows)]
            if args.halves:
                parts += [(f"{path.name} [half A]", rows[0::2]), (f"{path.name} [half B]", rows[1::2])]
            for name, part in parts:
                start = time.perf_counter()
                result = refusal_eval(classifier, part, name)
                result["ms_per_answer"] = 1000 * (time.perf_counter() - start) / len(part)
                results.append(result)
    except RlaifError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    width = max(len(r["file"]) for r in results)
    print(f"{'file':<{width}}  {'n':>4}  {'binary':>6}  {'3-way':>6}  {'refusal rec':>11}  {'compl. rec':>10}  "
          f"{'ms/ans':>6}  worst types (binary accuracy)")
    for r in results:
        worst = sorted(r["per_type"].items(), key=lambda kv: (kv[1]["accuracy"], kv[0]))[:3]
        print(f"{r['file']:<{width}}  {r['n']:>4}  {r['accuracy']:>6.1%}  {r['three_way_accuracy']:>6.1%}  "
              f"{_pct(r['refusal_recall']):>11}  {_pct(r['compliance_recall']):>10}  {r['ms_per_answer']:>6.2f}  "
              + ", ".join(f"{t} {v['accuracy']:.0%}" for t, v in worst))
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


if __name__ == "__main__":
    raise SystemExit(main())
