"""evaluate: the new policy against a baseline (the starting policy) by judges that did not train it.

Suites, all sampled from both policies with the same seeds:
- held-out prompts, each with its expected behaviour (help or refuse): behaves-as-expected rate,
  harmlessness on the unsafe ones, needless refusals on the safe ones; answers classified by a refusal
  classifier (data/eval/refusal_markers.yaml) and a coherence check (share of known words, no runaway
  repetition), because a policy that collapses into garbled text is neither refusing nor helping;
- win rate against the baseline, judged in both orders by the evaluation judge, which must differ from the
  training judge (rlaif/evaluation/independence.py);
- over-refusal suites in XSTest's format (safe prompts that look unsafe, unsafe contrasts);
- slices (category, topic, group, language) with the largest regressions shown;
- reward-hacking signals: reward-model gain against independent gain, length drift, KL to the baseline,
  refusal-rate drift.
Then the promotion gates decide whether the challenger becomes champion (rlaif/lifecycle/promotion.py). Results go
to DVC metrics (metrics/evaluate.json), to MLflow, and to a report with tables and plots.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlaif.config import PipelineConfig
from rlaif.data.io import read_prompts, write_json
from rlaif.evaluation import decision, rates, report
from rlaif.evaluation.behaviour import evaluator_grader
from rlaif.evaluation.reward_hacking import reward_hacking
from rlaif.evaluation.sampling import sample_both
from rlaif.evaluation.win_rate import win_rate


def evaluate(cfg: PipelineConfig, baseline: Path, candidate: Path, prompts: Path, seed_dialogues: Path,
             markers: Path, out_dir: Path, metrics_path: Path, suites: Sequence[Path] = (),
             reward_model: Path | None = None, registered: Path | None = None, label_gate: Path | None = None,
             constitution: Path | None = None, templates: Path | None = None) -> Path:
    from rlaif.data.suites import read_suite
    from rlaif.evaluation.independence import TRAINING_CONSTITUTION, check_independence
    from rlaif.lifecycle.tracking import stage_run

    e = cfg.evaluate
    independence = check_independence(cfg, constitution or TRAINING_CONSTITUTION)  # before any model loads
    prompt_set = read_prompts(prompts)
    rows = prompt_set[: e.max_prompts]
    suite_rows = {Path(path).stem: read_suite(path, e.suite_max_prompts) for path in suites}
    yardsticks = {Path(path).stem: Path(path) for path in e.yardsticks if Path(path).is_file()}
    yardstick_rows = {name: read_suite(path, e.suite_max_prompts) for name, path in yardsticks.items()}
    grader = evaluator_grader(e, markers, prompt_set, rows, seed_dialogues)
    inputs = {"baseline": baseline, "candidate": candidate, "prompts": prompts, "markers": markers,
              **{f"suite_{name}": path for name, path in zip(suite_rows, suites)},
              **{f"yardstick_{name}": path for name, path in yardsticks.items()}}
    out_dir = Path(out_dir)
    with stage_run("evaluate", cfg, inputs=inputs, datasets={"eval_prompts": prompts},
                   outputs={"evaluate": out_dir}) as run, tempfile.TemporaryDirectory() as scratch:
        decision.tag_independence(independence)
        baseline, baseline_name = decision.choose_baseline(cfg, Path(baseline), registered, Path(scratch))
        samples, suite_samples, kl = sample_both(cfg, {"baseline": baseline, "candidate": candidate}, rows,
                                                {**suite_rows, **yardstick_rows}, grader)
        summary: dict[str, Any] = {**rates.policy_rates(samples), "baseline_policy": baseline_name,
                                   "n_prompts": len(rows), "n_samples_per_policy": len(rows) * e.samples_per_prompt}
        summary["win"] = win_rate(cfg, samples, grader, {r.prompt: r.expected for r in rows}, constitution,
                                  templates, out_dir)
        summary["suites"], summary["yardsticks"] = rates.suites_and_yardsticks(
            suite_samples, set(suite_rows), set(yardstick_rows), e.yardsticks)
        slices = rates.slices(samples, rows, e.slices, e.min_slice_samples)
        summary["worst_slice"] = slices["worst"]
        summary["reward_hacking"] = reward_hacking(samples, reward_model, summary, kl)
        summary["promotion"] = decision.promote(cfg, summary, registered, label_gate, run.run_id)
        summary["independence"] = independence
        report.write_outputs(out_dir, summary, samples, suite_samples, slices)
        write_json(metrics_path, decision.metrics_file(summary))
        decision.log_metrics(run, summary)
        for name in report.ARTIFACTS:
            run.artifact(out_dir / name, "evaluation")
    return metrics_path
