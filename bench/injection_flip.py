"""Prompt-injection flip rate of the judge that the params name.

    python bench/injection_flip.py [--params FILE] [--set judge.key=value ...] [--data FILE]
                                   [--constitution FILE] [--templates FILE] [--details]

Builds the judge as the pipeline does (rlaif.config.params.load_config, rlaif.judging.judges.build_judge, the
constitution and judge templates under data/constitution), runs rlaif.judging.injection.flip_rate on
data/judge_eval/injection.jsonl and prints the report as JSON. It measures the pairwise contract
(`judge(items)`, both orders), whatever judge.mode says. --details adds one row per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="prompt-injection flip rate of the configured judge")
    parser.add_argument("--params", type=Path, help="a params file layered over params/default.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key, e.g. judge.temperature=0.1 (repeatable)")
    parser.add_argument("--data", type=Path, default=ROOT / "data/judge_eval/injection.jsonl")
    parser.add_argument("--constitution", type=Path, default=ROOT / "data/constitution/constitution.yaml")
    parser.add_argument("--templates", type=Path, default=ROOT / "data/constitution/judge_templates.yaml")
    parser.add_argument("--details", action="store_true", help="include per-pair results")
    args = parser.parse_args(argv)

    from rlaif.config.params import load_config
    from rlaif.data.io import read_constitution, read_templates
    from rlaif.errors import RlaifError
    from rlaif.judging.injection import flip_rate, judge_pairs, read_injection_set
    from rlaif.judging.judges import build_judge

    for name in ("params", "data", "constitution", "templates"):
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    os.chdir(ROOT)  # load_config reads params/default.yaml relative to the project root
    try:
        cfg = load_config(args.params, args.overrides)
        rows = read_injection_set(args.data)
        judge = build_judge(cfg.judge, read_constitution(args.constitution), read_templates(args.templates))
    except RlaifError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    started = time.perf_counter()
    report = flip_rate(judge, rows)
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["data"] = str(args.data)
    if args.details:
        report["pairs"] = judge_pairs(judge, rows)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
