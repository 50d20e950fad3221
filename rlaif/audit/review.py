"""The human audit loop: people review a sample of the AI judge's labels, and we measure how often they agree.

`export_sample` draws a stratified sample of the judge's labels (by principle, AI confidence and slice =
prompt category) and writes what a reviewer needs to decide: the prompt, the principle and the two answers,
in a seeded order that does not reveal the AI's pick (so the reviewer is not anchored by it). The AI's pick
is kept apart in `audit_key.jsonl`. `read_verdicts` checks the reviewers' file against that key and
`score_verdicts` reports agreement (overall, per principle, slice and confidence bucket), Cohen's kappa and
the disagreements; `log_to_mlflow` records it all as one run.

Verdicts are positions as shown: "1", "2" or "tie". Ties (from either side) are left out of agreement and
kappa and counted apart.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from rlaif.data.io import iter_jsonl, normalised, read_constitution, read_prompts, read_text, write_json, write_jsonl
from rlaif.data.records import read_labels
from rlaif.errors import InputError

# AI confidence = max(prob_a, 1 - prob_a): "low" below 0.6, "medium" below 0.8, "high" from 0.8. Fixed
# thresholds rather than quantiles, so a bucket means the same thing from one pipeline run to the next.
BUCKETS = (("low", 0.6), ("medium", 0.8), ("high", math.inf))
VERDICTS = ("1", "2", "tie")
SAMPLE_COLUMNS = ["audit_id", "pair_id", "slice", "language", "principle", "principle_text", "prompt",
                  "answer_1", "answer_2", "verdict", "note"]
DISAGREEMENT_COLUMNS = ["audit_id", "pair_id", "slice", "principle", "prompt", "human", "ai", "ai_confidence", "note"]
MAX_LISTED = 20  # rows named per kind of problem in one error message

INSTRUCTIONS = """# Reviewing AI preference labels

Each row of `audit_sample.csv` (or `audit_sample.jsonl`, the same rows) is one prompt with two answers.
Read the **principle** (`principle_text`) and decide which answer follows it better.

Write in the `verdict` column:

- `1` if answer_1 is better under the principle,
- `2` if answer_2 is better,
- `tie` if neither is better (both equally good or equally bad).

Use `note` for anything that explains a hard case (optional). Do not change `audit_id`, and do not add or
repeat rows; you may delete rows you cannot review. The order of the two answers is random: it says
nothing about which answer the AI judge preferred.

When done, send the file back; it is scored with

    rlaif audit import --verdicts audit_sample.csv --key audit_key.jsonl
"""


# ---------------------------------------------------------------- export


def confidence(prob_a: float) -> float:
    return max(prob_a, 1.0 - prob_a)


def confidence_bucket(value: float) -> str:
    return next(name for name, upper in BUCKETS if value < upper)


def auditable_labels(path: Path) -> tuple[list[dict[str, Any]], Counter]:
    """The labels a person can check (status ok, two different answers), read by the labels' one reader; also counts
    of what was skipped."""
    labels: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for row in (label.row() for label in read_labels(path)):
        if row["status"] != "ok" or row["prob_a"] is None:
            skipped["not ok"] += 1
            continue
        if row["response_a"].strip() == row["response_b"].strip():
            skipped["identical answers"] += 1  # nothing for a person to decide
            continue
        labels.append(row)
    if not labels:
        raise InputError(f"{path}: no labels with status ok")
    return labels, skipped


def drop_duplicate_pairs(labels: list[dict]) -> tuple[list[dict], int]:
    """Candidates often repeat, so several pair ids hold the same question (in either order): ask it once."""
    seen, kept = set(), []
    for row in sorted(labels, key=lambda r: r["pair_id"]):
        content = (row["prompt"], *sorted((row["response_a"], row["response_b"])), row["principle"])
        if content not in seen:
            seen.add(content)
            kept.append(row)
    return kept, len(labels) - len(kept)


def principle_texts(constitution, principle: str) -> str:
    """A label's principle is one id, several joined by commas, or 'all' (every comparison principle voted)."""
    texts = {p.id: p.text for p in constitution.principles}
    ids = [p.id for p in constitution.of_kind("comparison")] if principle == "all" else principle.split(",")
    unknown = [i for i in ids if i not in texts]
    if unknown:
        raise InputError(f"label principle {principle!r}: {', '.join(unknown)} not in constitution "
                         f"{constitution.name} {constitution.version} (an older or newer constitution?)")
    return "\n".join(texts[i] for i in ids)


def stratum(row: dict) -> tuple[str, str, str]:
    return row["principle"], row["confidence_bucket"], row["slice"]


def stratified_sample(rows: list[dict], n: int, seed: int) -> list[dict]:
    """Spread n picks over the (principle, confidence, slice) strata as evenly as the data allows.

    Greedy: the next pick comes from the stratum with the fewest picks so far (every stratum once before any
    twice), then from the one whose principle, bucket and slice are least picked (so the margins stay even
    when n is smaller than the number of strata), then a seeded tie-break. Within a stratum, a seeded shuffle.
    """
    rng = random.Random(seed)
    pools: dict[tuple, list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["pair_id"]):  # sorted: the draw must not depend on file order
        pools[stratum(row)].append(row)
    tie_break = {key: rng.random() for key in sorted(pools)}
    for key in sorted(pools):
        rng.shuffle(pools[key])
    taken: Counter[tuple] = Counter()
    margins: Counter[tuple[int, str]] = Counter()  # (axis, value) -> picks with it
    picked: list[dict] = []
    while len(picked) < n and any(pools.values()):
        key = min((k for k in pools if pools[k]),
                  key=lambda k: (taken[k], sum(margins[(axis, v)] for axis, v in enumerate(k)), tie_break[k]))
        picked.append(pools[key].pop())
        taken[key] += 1
        margins.update((axis, v) for axis, v in enumerate(key))
    return picked


def audit_fingerprint(row: dict, seed: int) -> bytes:
    """The id and the answer order come from the seed and the pair's content: the same export twice gives the
    same file, and verdicts on another run's labels (same pair id, other answers) fail as unknown ids."""
    text = "\0".join([str(seed), row["pair_id"], row["prompt"], row["response_a"], row["response_b"]])
    return hashlib.sha256(text.encode("utf-8")).digest()


def audit_rows(row: dict, seed: int, constitution) -> tuple[dict, dict]:
    """One label as a reviewer's row (no AI pick) and as a key row (the AI pick, in the reviewer's positions)."""
    digest = audit_fingerprint(row, seed)
    audit_id = "au-" + digest[:5].hex()
    a_first = digest[-1] % 2 == 0
    answer_1, answer_2 = (row["response_a"], row["response_b"]) if a_first else (row["response_b"], row["response_a"])
    prob_a = float(row["prob_a"])
    ai_prefers = "a" if prob_a > 0.5 else "b" if prob_a < 0.5 else "tie"
    ai_pick = "tie" if ai_prefers == "tie" else "1" if (ai_prefers == "a") == a_first else "2"
    sample = {"audit_id": audit_id, "pair_id": row["pair_id"], "slice": row["slice"], "language": row["language"],
              "principle": row["principle"], "principle_text": principle_texts(constitution, row["principle"]),
              "prompt": row["prompt"], "answer_1": answer_1, "answer_2": answer_2, "verdict": "", "note": ""}
    key = {"audit_id": audit_id, "pair_id": row["pair_id"], "prompt_id": row["prompt_id"], "slice": row["slice"],
           "principle": row["principle"], "confidence_bucket": row["confidence_bucket"], "ai_pick": ai_pick,
           "ai_confidence": round(confidence(prob_a), 4), "prob_a": prob_a, "answer_1_is": "a" if a_first else "b",
           "consistent": row.get("consistent"), "judge": row.get("judge"), "prompt": row["prompt"],
           "template": row["template"], "group": row["group"], "expected": row["expected"], "seed": seed}
    return sample, key


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    """Atomic, like rlaif.data.io's writers; csv quoting keeps multi-line answers in one cell."""
    import io

    from rlaif.data.io import write_text

    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def export_sample(labels: Path, prompts: Path, constitution: Path, out: Path, n: int = 60, seed: int = 0,
                  force: bool = False) -> dict:
    """Write audit_sample.csv/.jsonl (for reviewers), audit_key.jsonl (for scoring), INSTRUCTIONS.md and
    export.json (what was sampled from what); return the export summary. An existing audit_key.jsonl in `out`
    is kept unless `force`: reviewers may still be filling in the sample it scores."""
    from rlaif.data.io import refuse_to_clobber
    from rlaif.lifecycle.digests import file_md5

    refuse_to_clobber(Path(out) / "audit_key.jsonl", "the key of an earlier export, whose sample reviewers may still "
                      "be filling in: its verdicts could no longer be scored", force)
    if n < 1:
        raise InputError(f"--n {n}: need at least 1 row")
    charter = read_constitution(constitution)
    meta = {p.id: p for p in read_prompts(prompts)}
    rows, skipped = auditable_labels(labels)
    unknown = sorted({r["prompt_id"] for r in rows} - meta.keys())
    if unknown:
        raise InputError(f"{labels}: prompt ids not in {prompts}: {', '.join(unknown[:MAX_LISTED])}"
                         f"{' ...' if len(unknown) > MAX_LISTED else ''} (labels from another prompt set?)")
    rows, duplicates = drop_duplicate_pairs(rows)
    skipped["duplicate pair"] += duplicates
    for row in rows:
        prompt = meta[row["prompt_id"]]
        row.update(slice=prompt.category, language=prompt.language, template=prompt.template, group=prompt.group,
                   expected=prompt.expected, confidence_bucket=confidence_bucket(confidence(float(row["prob_a"]))))
    picked = stratified_sample(rows, n, seed)
    pairs = sorted((audit_rows(r, seed, charter) for r in picked), key=lambda p: p[0]["audit_id"])  # order: random, stable
    samples, keys = [p[0] for p in pairs], [p[1] for p in pairs]
    out = Path(out)
    write_csv(out / "audit_sample.csv", samples, SAMPLE_COLUMNS)
    write_jsonl(out / "audit_sample.jsonl", samples)
    write_jsonl(out / "audit_key.jsonl", keys)
    (out / "INSTRUCTIONS.md").write_text(INSTRUCTIONS, encoding="utf-8")
    strata = {stratum(r) for r in rows}
    summary = {
        "labels": str(labels), "labels_md5": file_md5(Path(labels)), "prompts": str(prompts),
        "constitution": f"{charter.name} {charter.version}", "seed": seed, "n_requested": n, "n_sampled": len(picked),
        "eligible": len(rows), "skipped": dict(skipped), "strata": len(strata),
        "strata_sampled": len({stratum(r) for r in picked}),
        "by_principle": dict(Counter(r["principle"] for r in picked)),
        "by_confidence": dict(Counter(r["confidence_bucket"] for r in picked)),
        "by_slice": dict(Counter(r["slice"] for r in picked)),
        "answer_1_is_a": sum(k["answer_1_is"] == "a" for k in keys),
    }
    write_json(out / "export.json", summary)
    return summary


# ---------------------------------------------------------------- import


def read_key(path: Path) -> dict[str, dict]:
    key: dict[str, dict] = {}
    lines: dict[str, int] = {}
    for line_no, row in iter_jsonl(path):
        if "audit_id" not in row or "ai_pick" not in row:
            raise InputError(f"{path}:{line_no}: not an audit key row (needs audit_id and ai_pick)")
        # a second row would silently replace the first: which AI pick a verdict is scored against is then a guess
        if row["audit_id"] in key:
            raise InputError(f"{path}:{line_no}: audit_id {row['audit_id']!r} again (first on line "
                             f"{lines[row['audit_id']]})")
        if row["ai_pick"] not in VERDICTS:
            raise InputError(f"{path}:{line_no}: ai_pick {row['ai_pick']!r} is not one of {', '.join(VERDICTS)}")
        key[row["audit_id"]] = row
        lines[row["audit_id"]] = line_no
    if not key:
        raise InputError(f"{path}: no rows")
    return key


def _csv_rows(path: Path):
    """(line, row) with the line a record starts on: answers may span several lines inside quotes."""
    reader = csv.DictReader(io.StringIO(read_text(path, "reviewers' verdicts"), newline=""))
    try:
        if not reader.fieldnames or "audit_id" not in reader.fieldnames or "verdict" not in reader.fieldnames:
            raise InputError(f"{path}: needs the columns audit_id and verdict (found {reader.fieldnames})")
        start = reader.line_num + 1
        for row in reader:
            if any(str(v or "").strip() for v in row.values()):  # spreadsheets append rows of bare commas
                yield start, row
            start = reader.line_num + 1
    except csv.Error as err:  # a NUL byte, a quote left open at the end
        raise InputError(f"{path}:{reader.line_num + 1}: not valid CSV ({err})") from None  # the line it failed on


def _verdict_rows(path: Path):
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.suffix.lower() == ".csv":
        return list(_csv_rows(path))
    if path.suffix.lower() in (".jsonl", ".json"):
        return list(iter_jsonl(path))
    raise InputError(f"{path}: expected a .csv or .jsonl file")


def normalise_verdict(value: Any) -> str | None:
    """'1', '2' or 'tie' (any case; 1 and 2 as numbers too, as JSON or a spreadsheet may write them)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (1, 2):
        return str(int(value))
    text = str(value).strip().lower()
    return text if text in VERDICTS else None


def _listing(items: list[str]) -> str:
    more = f", and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def _moved(row: dict, keyed: dict) -> str | None:
    """The field that shows a verdict row no longer belongs to its audit_id: the sample's pair_id or prompt, where
    both the row and the key hold it. A spreadsheet sorted on one column moves verdicts onto other questions."""
    for field in ("pair_id", "prompt"):
        mine, theirs = row.get(field), keyed.get(field)
        if mine not in (None, "") and theirs is not None and normalised(str(mine)) != normalised(str(theirs)):
            return field
    return None


def read_verdicts(path: Path, key: dict[str, dict]) -> list[dict]:
    """The reviewers' rows, checked against the key; every bad row is named in one InputError."""
    rows = _verdict_rows(path)
    if not rows:
        raise InputError(f"{path}: no rows")
    problems: dict[str, list[str]] = defaultdict(list)
    lines_of: dict[str, list[int]] = defaultdict(list)
    verdicts = []
    for line_no, row in rows:
        audit_id = str(row.get("audit_id") or "").strip()
        raw = row.get("verdict")
        verdict = normalise_verdict(raw)
        if not audit_id:
            problems["no audit_id"].append(f"line {line_no}")
            continue
        lines_of[audit_id].append(line_no)
        where = f"line {line_no} ({audit_id})"
        if audit_id not in key:
            problems["unknown audit_id"].append(where)
        elif _moved(row, key[audit_id]):
            problems[f"{_moved(row, key[audit_id])} differs from the key's for this audit_id (rows sorted or edited "
                     "apart from their ids?)"].append(where)
        elif raw is None or str(raw).strip() == "":
            problems["missing verdict"].append(where)
        elif verdict is None:
            problems[f"invalid verdict (expected {', '.join(VERDICTS)})"].append(f"{where}: {str(raw)[:20]!r}")
        else:
            verdicts.append({"line": line_no, "audit_id": audit_id, "verdict": verdict,
                             "note": str(row.get("note") or "").strip()})
    for audit_id, lines in lines_of.items():
        if len(lines) > 1:
            problems["duplicated audit_id"].append(f"{audit_id} on lines {', '.join(map(str, lines))}")
    if problems:
        parts = [f"{kind}: {_listing(items)}" for kind, items in problems.items()]
        raise InputError(f"{path}: {sum(map(len, problems.values()))} problem(s); " + "; ".join(parts))
    return verdicts


def cohens_kappa(human: list[str], ai: list[str]) -> float | None:
    """None where kappa is undefined (no rows, or both sides gave one and the same label throughout)."""
    from rlaif.judging.human_agreement import cohens_kappa as kappa

    value = kappa(human, ai) if human else math.nan
    return None if math.isnan(value) else value


def _group_stats(scored: list[dict], ties: list[dict], field: str) -> dict[str, dict]:
    groups: dict[str, dict] = defaultdict(lambda: {"n": 0, "agree": 0, "ties": 0})
    for row in scored:
        groups[row[field]]["n"] += 1
        groups[row[field]]["agree"] += row["human"] == row["ai"]
    for row in ties:
        groups[row[field]]["ties"] += 1
    for stats in groups.values():
        stats["agreement"] = stats["agree"] / stats["n"] if stats["n"] else None
    order = [name for name, _ in BUCKETS]  # buckets low to high; other groups alphabetical
    return dict(sorted(groups.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


def score_verdicts(verdicts: list[dict], key: dict[str, dict]) -> dict:
    """Agreement and kappa on rows where both human and AI picked an answer; ties and unreviewed rows counted."""
    joined = [{**key[v["audit_id"]], "human": v["verdict"], "ai": key[v["audit_id"]]["ai_pick"], "note": v["note"]}
              for v in verdicts]
    scored = [r for r in joined if r["human"] != "tie" and r["ai"] != "tie"]
    ties = [r for r in joined if r["human"] == "tie" or r["ai"] == "tie"]
    disagreements = sorted((r for r in scored if r["human"] != r["ai"]), key=lambda r: -r["ai_confidence"])
    return {
        "n_key": len(key),
        "n_reviewed": len(joined),
        "n_unreviewed": len(key) - len(joined),
        "n": len(scored),
        "human_ties": sum(r["human"] == "tie" for r in joined),
        "ai_ties": sum(r["ai"] == "tie" for r in joined),
        "agreement": sum(r["human"] == r["ai"] for r in scored) / len(scored) if scored else None,
        # kappa on the shown positions (1/2): their order is random, so chance agreement is near one half
        "cohens_kappa": cohens_kappa([r["human"] for r in scored], [r["ai"] for r in scored]),
        "by_principle": _group_stats(scored, ties, "principle"),
        "by_slice": _group_stats(scored, ties, "slice"),
        "by_confidence": _group_stats(scored, ties, "confidence_bucket"),
        "disagreements": [{c: r.get(c) for c in DISAGREEMENT_COLUMNS} for r in disagreements],
    }


def render_report(report: dict) -> str:
    """Plain text for the terminal: the headline, one line per group, then the disagreements."""
    def pct(x):
        return "n/a" if x is None else f"{x:.1%}"

    kappa = "n/a" if report["cohens_kappa"] is None else f"{report['cohens_kappa']:.3f}"
    lines = [f"agreement {pct(report['agreement'])}, Cohen's kappa {kappa}, n={report['n']} "
             f"(human ties {report['human_ties']}, AI ties {report['ai_ties']}, "
             f"reviewed {report['n_reviewed']} of {report['n_key']})"]
    for title, field in (("principle", "by_principle"), ("confidence", "by_confidence"), ("slice", "by_slice")):
        lines.append(f"by {title}:")
        lines += [f"  {name:<24} {pct(s['agreement']):>7}  n={s['n']}  ties={s['ties']}" for name, s in report[field].items()]
    lines.append(f"disagreements ({len(report['disagreements'])}):")
    for d in report["disagreements"]:
        note = f"  note: {d['note']}" if d["note"] else ""
        lines.append(f"  {d['audit_id']} [{d['slice']}/{d['principle']}] human {d['human']} vs AI {d['ai']} "
                     f"(AI confidence {d['ai_confidence']:.2f}): {d['prompt'][:80]}{note}")
    return "\n".join(lines)


# ---------------------------------------------------------------- MLflow


def plot_agreement(report: dict, path: Path) -> Path:
    """Agreement per principle, confidence bucket and slice, n in each label; lines at chance and overall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("principle", report["by_principle"]), ("AI confidence", report["by_confidence"]),
              ("slice", report["by_slice"])]
    heights = [max(1, len(groups)) for _, groups in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 1.2 + 0.35 * sum(heights) + len(panels)),
                             gridspec_kw={"height_ratios": heights})
    for ax, (title, groups) in zip(axes, panels):
        names = list(groups)
        values = [groups[g]["agreement"] or 0.0 for g in names]
        ax.barh([f"{g} (n={groups[g]['n']})" for g in names], values, color="tab:blue")
        ax.axvline(0.5, color="grey", linestyle=":", label="chance")
        if report["agreement"] is not None:
            ax.axvline(report["agreement"], color="tab:red", linestyle="--", label="overall")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_title(f"human-AI agreement by {title}", fontsize=10)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _metric_name(*parts: str) -> str:
    # MLflow allows letters, digits, _ - . / and space in names; a joined principle has commas
    return ".".join(re.sub(r"[^\w\-/ ]", "_", p) for p in parts)


def audit_metrics(report: dict) -> dict[str, float]:
    metrics = {"audit.n": report["n"], "audit.human_ties": report["human_ties"], "audit.ai_ties": report["ai_ties"],
               "audit.agreement": report["agreement"], "audit.kappa": report["cohens_kappa"]}
    for axis, field in (("principle", "by_principle"), ("slice", "by_slice"), ("confidence", "by_confidence")):
        for name, stats in report[field].items():
            metrics[_metric_name("audit", axis, name, "agreement")] = stats["agreement"]
            metrics[_metric_name("audit", axis, name, "n")] = stats["n"]
    return {k: float(v) for k, v in metrics.items() if v is not None}  # undefined values are not logged


def log_to_mlflow(report: dict, verdicts: Path, key: Path, experiment: str = "rlaif-audit") -> str:
    """One run: metrics, the report, the disagreements as CSV and the agreement plot; returns the run id."""
    import tempfile

    from rlaif.lifecycle.digests import file_md5
    from rlaif.lifecycle.tracking import git_commit, setup

    mlflow = setup(experiment)
    tags = {"rlaif.stage": "audit", "mlflow.source.git.commit": git_commit(),
            "input.verdicts.md5": file_md5(Path(verdicts)), "input.key.md5": file_md5(Path(key))}
    with mlflow.start_run(run_name="audit", tags=tags) as run, tempfile.TemporaryDirectory() as tmp:
        report["mlflow_run_id"] = run.info.run_id
        mlflow.log_params({"verdicts": str(verdicts)[-250:], "key": str(key)[-250:], "n_key": report["n_key"]})
        mlflow.log_metrics(audit_metrics(report))
        mlflow.log_dict(report, "audit/report.json")
        mlflow.log_artifact(str(write_csv(Path(tmp) / "disagreements.csv", report["disagreements"],
                                          DISAGREEMENT_COLUMNS)), "audit")
        mlflow.log_artifact(str(plot_agreement(report, Path(tmp) / "agreement.png")), "audit")
        return run.info.run_id


def report_json(report: dict) -> str:
    from rlaif.data.io import strict_json

    return strict_json(report, indent=2, ensure_ascii=False)
