"""The evaluation's files: samples, tables, the promotion record, plots, and the report (report.md) with the promotion
decision and its reasons, then every table a reviewer reads."""

from __future__ import annotations

from pathlib import Path

from rlaif.data.io import write_text

# what the stage logs to MLflow, from its output folder
ARTIFACTS = ("report.md", "by_category.png", "slices.png", "by_category.json", "slices.json", "promotion.json",
             "win_pairs.jsonl", "samples.jsonl")


def write_outputs(out_dir: Path, summary: dict, samples: list[dict], suite_samples: list[dict], slices: dict) -> None:
    """Every file of the evaluation but the metrics: samples, tables, the promotion record, plots and report.md
    (the win rate's pairs are written where they are judged)."""
    from rlaif.data.io import write_json, write_jsonl
    from rlaif.data.records import Promotion, write_record
    from rlaif.evaluation import plots, rates

    categories = rates.by_category(samples)
    write_jsonl(out_dir / "samples.jsonl", samples + suite_samples)
    write_json(out_dir / "by_category.json", categories)
    write_json(out_dir / "slices.json", slices)
    write_record(out_dir / "promotion.json", Promotion.model_validate(summary["promotion"]))
    plots.plot_by_category(categories, out_dir / "by_category.png")
    plots.plot_slices(slices, out_dir / "slices.png")
    write_report(summary, categories, slices, samples, out_dir / "report.md")


def write_report(summary: dict, categories: dict, slices: dict, samples: list[dict], path: Path) -> None:
    win, hacking, promotion = summary["win"], summary["reward_hacking"], summary["promotion"]
    independence = summary["independence"]
    lines = [f"# Evaluation: optimized policy vs {summary['baseline_policy']}", "",
             f"Held-out prompts: {summary['n_prompts']}; samples per policy: {summary['n_samples_per_policy']}.",
             f"Evaluation judge: `{win['judge']}`; training judge: "
             f"`{','.join(independence['training_judge']['models']) or independence['training_judge']['backend']}`; "
             f"independent: {independence['independent']}"
             + (" (**waiver set: the evaluation judge is the training judge**)" if independence["waived"] else "") + ".",
             "", f"## Promotion: {promotion['decision']}", ""]
    lines += [f"- {reason}" for reason in promotion["reasons"]]
    if promotion.get("model"):
        lines += ["", (f"Model: `{promotion['model']}`; champion moved: {promotion['champion_moved']} "
                      f"(previous champion version: {promotion.get('previous_champion')}).")]
    lines += ["", "## Win rate against the baseline (both orders)", "",
              (f"Win rate {win['win_rate']:.3f} over {win['n_pairs']} pairs: {win['wins']} wins, {win['losses']} losses, "
              f"{win['ties']} ties, {win['failed']} failed."), "",
              "## Held-out prompts", "", "| metric | baseline | candidate | delta |", "|---|---|---|---|"]
    for key in summary["baseline"]:
        lines.append(f"| {key} | {summary['baseline'][key]:.3f} | {summary['candidate'][key]:.3f} "
                     f"| {summary['delta'][key]:+.3f} |")
    lines += ["", "## Over-refusal suites (XSTest format)", "",
              "| suite | policy | over-refusal (safe) | harmless (unsafe) | n safe | n unsafe |", "|---|---|---|---|---|---|"]
    for name, result in summary["suites"].items():
        for policy, r in result.items():
            lines.append(f"| {name} | {policy} | {r['over_refusal_rate']:.3f} | {r['harmless_rate']:.3f} "
                         f"| {r['n_safe']} | {r['n_unsafe']} |")
    if summary["yardsticks"]:
        lines += ["", "## Yardsticks (opt-in suites: reported, never a gate, never trained on)", "",
                  "| suite | policy | over-refusal (safe) | compliance (unsafe) | n safe | n unsafe |",
                  "|---|---|---|---|---|---|"]
        for name, result in summary["yardsticks"].items():
            if not isinstance(result, dict):
                lines.append(f"| {name} | {result} | | | | |")
                continue
            for policy, r in result.items():
                lines.append(f"| {name} | {policy} | {r['over_refusal_rate']:.3f} | {1 - r['harmless_rate']:.3f} "
                             f"| {r['n_safe']} | {r['n_unsafe']} |")
    lines += ["", "## Reward-hacking signals", ""]
    lines += [f"- {k}: {v:.3f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in hacking.items()]
    lines += ["", "## Slices: largest regressions", "",
              f"Slices under {slices['min_samples']} samples are listed but do not decide the slice gate.", "",
              "| slice | value | n | baseline | candidate | delta |",
              "|---|---|---|---|---|---|"]
    for r in slices["largest_regressions"]:
        lines.append(f"| {r['slice']} | {r['value']} | {r['n']} | {r['baseline']:.2f} | {r['candidate']:.2f} "
                     f"| {r['delta']:+.2f} |")
    lines += ["", "![slices](slices.png)", "", "## By category", "", "| category | expected | baseline | candidate |",
              "|---|---|---|---|"]
    for name, row in categories.items():
        lines.append(f"| {name} | {row['expected']} | {row['baseline']['correct_rate']:.2f} "
                     f"| {row['candidate']['correct_rate']:.2f} |")
    lines += ["", "![by category](by_category.png)", "", "## Examples (first sample of the first prompts)", ""]
    for s in [s for s in samples if s["policy"] == "candidate"][:12]:
        lines.append(f"- `{s['prompt_id']}` ({s['expected']}, {s['outcome']}): {s['answer'][:160]}")
    write_text(path, "\n".join(lines) + "\n")
