"""The `rlaif` command line.

  rlaif run [--rounds N]     the whole pipeline (Prefect flow over the DVC stage graph), N rounds
  rlaif approve MODEL_URI    a reviewer's sign-off on a challenger awaiting approval
  rlaif history              the policy's versions round by round: key figures as a table and a plot
  rlaif stage NAME           one stage, through DVC (skipped when its inputs did not change)
  rlaif check                validate params and input files, load no model, change no file
  rlaif configure            the same checks, then write params/run.yaml (what the stages and DVC read)
  rlaif exec NAME ...        what dvc.yaml runs for a stage (explicit input and output paths)
  rlaif lineage MODEL_URI    a model's runs, inputs and their producers, digests checked
  rlaif reproduce MODEL_URI  rebuild a model from its record and compare every stage's outputs

Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

from rlaif.errors import RlaifError

if TYPE_CHECKING:
    from flows.run_record import Summary
    from rlaif.config import PipelineConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Reinforcement learning from AI feedback.")
exec_app = typer.Typer(help="Run one stage's code directly (dvc.yaml calls these).", no_args_is_help=True)
app.add_typer(exec_app, name="exec")
audit_app = typer.Typer(help="Human review of AI labels.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
err = Console(stderr=True)

ParamsOpt = Annotated[Optional[Path], typer.Option("--params", help="A params file layered over params/default.yaml.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override one key: stage.key=value (repeatable).")]


def friendly(fn):
    """Turn project errors into a one-line message and their exit code, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RlaifError as error:
            err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None

    return wrapper


@app.command()
@friendly
def run(params: ParamsOpt = None, set_: SetOpt = None,
        rounds: Annotated[int, typer.Option(min=1, help="Rounds in a row: each starts from the champion the round "
                                            "before left (needs bootstrap.base_model models:/NAME@champion).")] = 1) -> None:
    """Run the pipeline: every stage whose inputs changed, in dvc.yaml's order, as a Prefect flow."""
    from flows.run_record import champion_moved
    from rlaif.config.preflight import preflight
    from rlaif.errors import ConfigError
    from rlaif.lifecycle.locking import project_lock
    from rlaif.lifecycle.rounds import is_registry_uri

    # the temporary Prefect server of a run without PREFECT_API_URL: its default 20 s start-up is short on a busy machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    with project_lock():  # a second run in this checkout waits, then finds the stages up to date
        for round_ in range(1, rounds + 1):
            cfg = preflight(params, set_ or [])  # bad params or inputs stop here, before any model loads
            if rounds > 1 and not is_registry_uri(cfg.bootstrap.base_model):
                raise ConfigError(f"--rounds {rounds}: bootstrap.base_model is {cfg.bootstrap.base_model!r}, so every "
                                  "round would start from the same policy; set it to a registry alias, e.g. "
                                  "--set bootstrap.base_model=models:/rlaif-policy@champion")
            summary = run_or_record(cfg)
            if not summary.ok:
                break
            if round_ < rounds and not champion_moved(summary):
                Console().print(f"the champion did not move in this run: round {round_ + 1} would repeat it; stopping")
                break
    raise typer.Exit(0 if summary.ok else summary.exit_code)


def run_or_record(cfg: PipelineConfig) -> Summary:
    """One pipeline run: the flow for the stages DVC finds stale; with none, only its record (no Prefect)."""
    from flows.dvc_ops import plan
    from flows.run_record import LAST_RUN, print_summary, record_skipped_run
    from rlaif.lifecycle.tracking import quiet_telemetry

    quiet_telemetry()
    Path(LAST_RUN).unlink(missing_ok=True)
    graph, stale = plan()
    if stale:
        from flows.pipeline import run_pipeline

        summary = run_pipeline(cfg)
    else:
        summary = record_skipped_run(cfg, graph)
    print_summary(summary)
    return summary


@app.command()
@friendly
def approve(
    model_uri: Annotated[str, typer.Argument(help="The challenger: models:/NAME/VERSION or models:/NAME@challenger")],
    reviewer: Annotated[str, typer.Option(help="Who signs off (goes on the model version).")],
    reason: Annotated[str, typer.Option(help="Why.")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject it: champion stays where it is.")] = False,
) -> None:
    """Sign off on a challenger that passed every gate and awaits approval (evaluate.approval: required).
    An approval moves `champion` to it; a rejection leaves it challenger. Recorded on the version's tags, in this
    checkout's promotion.json and run report when they are about the same model, and in `rlaif lineage`."""
    from rlaif.lifecycle.locking import project_lock
    from rlaif.lifecycle.promotion import approve as sign_off
    from rlaif.lifecycle.tracking import quiet_telemetry

    quiet_telemetry()
    record = sign_off(model_uri, reviewer, reason, approved=not reject, via="cli")
    with project_lock(wait=False) as held:  # a paused deployment run holds it while it waits for the form
        if held:
            from flows.pipeline import record_sign_off, run_single_stage

            if record_sign_off(record):
                run_single_stage("report")  # the run report shows the sign-off
        else:
            Console().print("a pipeline run holds this checkout (a deployment run paused for sign-off?): the decision "
                            "is on the model version; that run records it when it resumes (its form in the Prefect "
                            "UI resumes it now)", highlight=False, soft_wrap=True)
    moved = f"champion is now {record['model']}" if record["champion_moved"] else \
        f"champion stays {record['previous_champion'] or 'unset'}"
    Console().print(f"{record['model']} {record['status']} by {reviewer} at {record['at']}: {moved}", highlight=False,
                    soft_wrap=True)


@app.command()
@friendly
def history(
    name: Annotated[str, typer.Option(help="The registered policy.")] = "rlaif-policy",
    plot: Annotated[Optional[Path], typer.Option(help="Where to draw the trend.")] = Path("reports/history.png"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every version of the policy, oldest first: round, parent, decision, and its held-out figures."""

    from rlaif.lifecycle.history import plot_history, policy_history, render_history
    from rlaif.lifecycle.tracking import quiet_telemetry

    quiet_telemetry()
    rows = policy_history(name)
    if plot is not None:
        plot_history(rows, plot)
    if as_json:
        _print_json(rows)
        return
    # piped or logged (no terminal to measure), rich would cut the table to 80 columns: every figure stays readable
    Console(width=None if sys.stdout.isatty() else 160).print(render_history(rows))
    if plot is not None:
        Console().print(f"trend: {plot}")


@app.command()
@friendly
def stage(name: str, params: ParamsOpt = None, set_: SetOpt = None,
          force: Annotated[bool, typer.Option(help="Run even if its inputs did not change.")] = False) -> None:
    """Run one stage through DVC (it records the result in dvc.lock and the cache)."""
    from flows.pipeline import run_single_stage
    from rlaif.config.preflight import preflight
    from rlaif.lifecycle.locking import project_lock

    with project_lock():
        preflight(params, set_ or [])
        code = run_single_stage(name, force=force)
    raise typer.Exit(code)


def _print_json(data, **kwargs) -> None:
    """--json output: strict JSON (NaN and infinities as null, listed under non_finite)."""
    from rlaif.data.io import strict_json

    print(strict_json(data, **kwargs))


@app.command()
@friendly
def check(params: ParamsOpt = None, set_: SetOpt = None) -> None:
    """Validate the configuration and every input file; load no model and change no file."""
    from rlaif.config.preflight import preflight

    preflight(params, set_ or [], write=False)
    Console().print("[green]params and inputs are valid[/] (nothing written)")


@app.command()
@friendly
def configure(params: ParamsOpt = None, set_: SetOpt = None) -> None:
    """Check like `check`, then write the effective params to params/run.yaml, what the stages and DVC read
    (`rlaif run` and `rlaif stage` do this themselves; use it before `rlaif exec` or `dvc repro`)."""
    from rlaif.config.preflight import preflight

    preflight(params, set_ or [])
    Console().print("[green]params and inputs are valid[/]: params/run.yaml written")


@app.command()
@friendly
def lineage(
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION, e.g. models:/rlaif-policy@champion")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Trace a registered model to its runs, data digests, judge and constitution; check the digests still match.
    Exit code 5 when a recorded digest no longer matches the stored data."""

    from rlaif.lifecycle.lineage import LineageMismatch, render
    from rlaif.lifecycle.lineage import lineage as trace

    result = trace(model_uri)
    if as_json:
        _print_json(result, indent=2)
    else:
        Console().print(render(result))
    if result["mismatches"]:
        raise LineageMismatch(f"{len(result['mismatches'])} recorded digest(s) no longer match the stored data: "
                              + "; ".join(f"{m['path']} ({m['stage']})" for m in result["mismatches"]))


@app.command()
@friendly
def reproduce(
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    workdir: Annotated[Optional[Path], typer.Option("--workdir", help="An empty folder for the rebuild.")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the rebuild when it matches.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rebuild a model version from its record (commit, input digests, params, seed) in a scratch clone and compare
    every stage's outputs with the recorded digests. Exit 0 when reproduced; 6 naming the first stage that differs
    and why (a changed input, package or machine)."""
    from rlaif.lifecycle.reproduce import ReproduceMismatch, first_difference, render
    from rlaif.lifecycle.reproduce import reproduce as rebuild

    result = rebuild(model_uri, workdir, keep)
    if as_json:
        _print_json(result, indent=2)
    else:
        Console().print(render(result))
    difference = first_difference(result)
    if difference:
        raise ReproduceMismatch(difference)
    if not as_json:
        Console().print(f"[green]reproduced[/]: every compared output of {model_uri} has its recorded digest")


@app.command("constitution-import")
@friendly
def constitution_import_command(
    out: Annotated[Path, typer.Option(help="The constitution YAML to write.")],
    name: Annotated[str, typer.Option()],
    version: Annotated[str, typer.Option()],
    comparisons: Annotated[Optional[Path], typer.Option(help="JSON list of comparison instructions (RLMadisonInstructions.json).")] = None,
    critiques: Annotated[Optional[Path], typer.Option(help="JSON object of critique and revision requests (CritiqueRevisionInstructions.json).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing file at --out.")] = False,
) -> None:
    """Start a constitution from the Constitutional AI paper's published prompt files."""
    from rlaif.data.constitution_import import import_cai, write_constitution
    from rlaif.data.io import refuse_to_clobber

    refuse_to_clobber(out, "a constitution, perhaps the one the pipeline trains under", force)
    constitution = import_cai(comparisons, critiques, name, version)
    write_constitution(constitution, out)
    Console().print(f"{out}: {len(constitution.of_kind('comparison'))} comparison and "
                    f"{len(constitution.of_kind('critique_revision'))} critique-revision principles")


@app.command("judge-eval")
@friendly
def judge_eval_command(
    pairs: Annotated[Path, typer.Option(help="Human-labelled pairs.")],
    format_: Annotated[str, typer.Option("--format", help="hh-rlhf or jsonl")] = "jsonl",
    params: ParamsOpt = None,
    set_: SetOpt = None,
    limit: Annotated[Optional[int], typer.Option(help="Judge only the first N pairs.")] = None,
    constitution: Annotated[Path, typer.Option()] = Path("data/constitution/constitution.yaml"),
    templates: Annotated[Path, typer.Option()] = Path("data/constitution/judge_templates.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    principle: Annotated[Optional[str], typer.Option(help="Judge by this comparison principle only (e.g. harmless).")] = None,
    context: Annotated[str, typer.Option(help="hh-rlhf prompt: dialogue (every human turn, as the pipeline's judge sees a whole request) or last (last human turn only).")] = "dialogue",
) -> None:
    """Agreement of the AI judge with people: agreement, Cohen's kappa, position consistency, speed."""

    from rlaif.config.params import load_config
    from rlaif.errors import InputError
    from rlaif.judging.human_agreement import judge_eval, read_pairs
    from rlaif.lifecycle.tracking import quiet_telemetry

    if format_ not in ("hh-rlhf", "jsonl"):
        raise InputError(f"--format {format_!r}: expected hh-rlhf or jsonl")
    quiet_telemetry()
    cfg = load_config(params, set_ or [])
    result = judge_eval(cfg, read_pairs(pairs, format_, limit, cfg.seed, context), constitution, templates, principle)
    if as_json:
        _print_json(result)
    else:
        Console().print(result)


@app.command("judge-bias")
@friendly
def judge_bias_command(
    params: ParamsOpt = None,
    set_: SetOpt = None,
    suite: Annotated[Path, typer.Option(help="The suite's pairs.")] = Path("data/bias/suite.yaml"),
    constitution: Annotated[Path, typer.Option()] = Path("data/constitution/constitution.yaml"),
    templates: Annotated[Path, typer.Option()] = Path("data/constitution/judge_templates.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Also write the figures, gates and judged pairs here.")] = None,
) -> None:
    """The judge bias suite on the configured judge: group swaps, padding, fluency, sycophancy, languages, position.
    Exit 3 when a check of judge_bias.gates fails."""
    from rlaif.config.params import load_config
    from rlaif.data.io import read_constitution, read_templates, write_json
    from rlaif.errors import GateFailed
    from rlaif.judging.bias import check, describe, read_suite
    from rlaif.judging.judges import build_judge
    from rlaif.judging.labelling import judge_bias_suite
    from rlaif.lifecycle.tracking import quiet_telemetry

    quiet_telemetry()
    cfg = load_config(params, set_ or [])
    pairs = read_suite(suite)
    judge = build_judge(cfg.judge, read_constitution(constitution), read_templates(templates))
    figures, judged = judge_bias_suite(cfg.judge, judge, pairs)
    gates = check(figures, cfg.judge_bias.gates)
    result = {"judge": judge.judge_id, **figures, "gates": gates, "passed": all(g["passed"] for g in gates)}
    if out is not None:
        write_json(out, {**result, "judged_pairs": judged})
    if as_json:
        _print_json(result)
    else:
        for row in gates:
            print(describe(row))
    failed = [g["gate"] for g in gates if not g["passed"]]
    if failed:
        raise GateFailed(f"the judge {judge.judge_id} failed the bias checks {', '.join(failed)}"
                         + (f" (figures in {out})" if out else ""))


@app.command("refusal-eval")
@friendly
def refusal_eval_command(
    completions: Annotated[Path, typer.Option(help="XSTest completions CSV: prompt, completion, final_label (type optional).")],
    markers: Annotated[Path, typer.Option(help="The refusal classifier's rules.")] = Path("data/eval/refusal_markers.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Agreement of the evaluator's refusal classifier with people: binary and 3-way accuracy, per type."""

    from rich.table import Table

    from rlaif.evaluation.refusal import RefusalClassifier, read_xstest_completions, refusal_eval

    classifier = RefusalClassifier(markers)
    result = refusal_eval(classifier, read_xstest_completions(completions), completions.name)
    if as_json:
        _print_json(result)
        return
    console = Console()
    console.print(f"{result['file']}: n={result['n']}  accuracy (refusal vs compliance) {result['accuracy']:.1%}  "
                  f"3-way {result['three_way_accuracy']:.1%}", highlight=False)
    table = Table("human \\ predicted", *result["confusion"])
    for human, row in result["confusion"].items():
        table.add_row(human, *(str(v) for v in row.values()))
    console.print(table)
    if result["per_type"]:
        worst = sorted(result["per_type"].items(), key=lambda kv: kv[1]["accuracy"])
        console.print("worst types: " + ", ".join(f"{t} {v['accuracy']:.0%} (n={v['n']})" for t, v in worst[:5]),
                      highlight=False)


def stage_command(name: str):
    """An `rlaif exec` command: errors reported like any command, and their exit code passed to the flow."""

    def decorate(fn):
        @exec_app.command(name)
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from rlaif.lifecycle.tracking import failure_recorded, one_line, record_event
            from rlaif.training.launch import relaunch_if_needed

            def failed(code: int, error: BaseException | None = None) -> None:
                if not failure_recorded():  # the stage's MLflow run may have said it already, with its run id
                    record_event(name, "failed", exit_code=code, error=one_line(error) if error else None)

            try:
                processes = friendly(lambda: getattr(_cfg().section(name), "num_processes", 1))()
                code = relaunch_if_needed(processes)  # several processes: under accelerate launch
                if code is not None:
                    raise typer.Exit(code)
                return fn(*args, **kwargs)
            except RlaifError as error:  # its one line also goes to the flow, for the stage's task log
                failed(error.exit_code, error)
                err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
                raise typer.Exit(error.exit_code) from None
            except typer.Exit as done:
                if done.exit_code:
                    failed(done.exit_code)
                raise
            except Exception as error:
                failed(1, error)
                raise

        return wrapper

    return decorate


def _cfg():
    from rlaif.config.params import load_run_params
    from rlaif.lifecycle.tracking import quiet_telemetry

    quiet_telemetry()
    return load_run_params()


@stage_command("bootstrap")
def exec_bootstrap(seed_dialogues: Annotated[Path, typer.Option()], prompts: Annotated[Path, typer.Option()],
                   out: Annotated[Path, typer.Option()]) -> None:
    from tasks.bootstrap import bootstrap

    bootstrap(_cfg(), seed_dialogues, prompts, out)


@stage_command("generate")
def exec_generate(policy: Annotated[Path, typer.Option()], prompts: Annotated[Path, typer.Option()],
                  out: Annotated[Path, typer.Option()],
                  drops: Annotated[Optional[Path], typer.Option(help="A folder of prompt drops (*.jsonl).")] = None) -> None:
    from tasks.generate import generate

    generate(_cfg(), policy, prompts, out, drops)


@stage_command("critique_revise")
def exec_critique_revise(candidates: Annotated[Path, typer.Option()], constitution: Annotated[Path, typer.Option()],
                         templates: Annotated[Path, typer.Option()], out: Annotated[Path, typer.Option()]) -> None:
    from tasks.critique_revise import critique_revise

    critique_revise(_cfg(), candidates, constitution, templates, out)


@stage_command("judge")
def exec_judge(candidates: Annotated[Path, typer.Option()], constitution: Annotated[Path, typer.Option()],
               templates: Annotated[Path, typer.Option()], gold: Annotated[Path, typer.Option()],
               out: Annotated[Path, typer.Option()], metrics: Annotated[Path, typer.Option()],
               revisions: Annotated[Optional[Path], typer.Option(help="critique_revise output")] = None,
               bias_suite: Annotated[Optional[Path], typer.Option(help="The judge bias suite to run the judge on.")] = None,
               ) -> None:
    from tasks.judge import judge

    judge(_cfg(), candidates, constitution, templates, gold, revisions, out, metrics, bias_suite)


@stage_command("validate")
def exec_validate(labels: Annotated[Path, typer.Option()], out: Annotated[Path, typer.Option()],
                  report: Annotated[Path, typer.Option()]) -> None:
    from tasks.validate import run_stage

    run_stage(_cfg(), labels, out, report)


@stage_command("train_reward")
def exec_train_reward(preferences: Annotated[Path, typer.Option()], gold: Annotated[Path, typer.Option()],
                      out: Annotated[Path, typer.Option()], metrics: Annotated[Path, typer.Option()],
                      replay: Annotated[Optional[Path], typer.Option(
                          help="Earlier rounds' preferences (bootstrap's replay_preferences.jsonl).")] = None) -> None:
    from tasks.train_reward import train_reward

    train_reward(_cfg(), preferences, gold, out, metrics, replay)


@stage_command("optimize_policy")
def exec_optimize_policy(
    policy: Annotated[Path, typer.Option(help="The starting policy.")],
    out: Annotated[Path, typer.Option()],
    preferences: Annotated[Optional[Path], typer.Option(help="dpo: the validated preferences.")] = None,
    prompts: Annotated[Optional[Path], typer.Option(help="grpo, rloo, online_judge: the training prompts.")] = None,
    reward_model: Annotated[Optional[Path], typer.Option(help="grpo, rloo: the train_reward stage's model.")] = None,
    constitution: Annotated[Optional[Path], typer.Option(help="online_judge: the judge's constitution.")] = None,
    templates: Annotated[Optional[Path], typer.Option(help="online_judge: the judge's templates.")] = None,
    markers: Annotated[Optional[Path], typer.Option(help="The evaluator's refusal markers (logged refusal rate).")] = None,
) -> None:
    """Each algorithm reads only the inputs it needs; dvc.yaml passes them all."""
    from tasks.optimize_policy import optimize_policy

    optimize_policy(_cfg(), preferences, policy, out, prompts=prompts, reward_model=reward_model,
                    constitution=constitution, templates=templates, markers=markers)


@stage_command("evaluate")
def exec_evaluate(baseline: Annotated[Path, typer.Option()], candidate: Annotated[Path, typer.Option()],
                  prompts: Annotated[Path, typer.Option()], seed_dialogues: Annotated[Path, typer.Option()],
                  markers: Annotated[Path, typer.Option()], out: Annotated[Path, typer.Option()],
                  metrics: Annotated[Path, typer.Option()],
                  suite: Annotated[Optional[list[Path]], typer.Option(help="An over-refusal suite in XSTest's format (repeatable).")] = None,
                  reward_model: Annotated[Optional[Path], typer.Option(help="For the reward-hacking signal.")] = None,
                  registered: Annotated[Optional[Path], typer.Option(help="optimize_policy's registered.json: the version to promote.")] = None,
                  label_gate: Annotated[Optional[Path], typer.Option(help="validate's gate.json (a promotion gate).")] = None,
                  constitution: Annotated[Optional[Path], typer.Option(help="The training judge's constitution (independence check).")] = None,
                  templates: Annotated[Optional[Path], typer.Option(help="Judge templates, for a model-based evaluation judge.")] = None) -> None:
    from tasks.evaluate import evaluate

    evaluate(_cfg(), baseline, candidate, prompts, seed_dialogues, markers, out, metrics, suites=suite or [],
             reward_model=reward_model, registered=registered, label_gate=label_gate, constitution=constitution,
             templates=templates)


@stage_command("report")
def exec_report(out: Annotated[Path, typer.Option(help="The HTML page to write.")],
                evaluation: Annotated[Path, typer.Option(help="The evaluate stage's report folder.")],
                registered: Annotated[Optional[Path], typer.Option()] = None,
                gate: Annotated[Optional[Path], typer.Option()] = None,
                judge_metrics: Annotated[Optional[Path], typer.Option()] = None,
                reward_metrics: Annotated[Optional[Path], typer.Option()] = None,
                reward_dir: Annotated[Optional[Path], typer.Option()] = None,
                policy_dir: Annotated[Optional[Path], typer.Option()] = None) -> None:
    from tasks.report import report

    report(_cfg(), out, registered, evaluation, gate, judge_metrics, reward_metrics, reward_dir, policy_dir)


LabelStudioUrl = Annotated[Optional[str], typer.Option(
    "--label-studio-url", help="The Label Studio server (default $LABEL_STUDIO_URL); the token is read from "
    "$LABEL_STUDIO_API_KEY only.")]


@audit_app.command("export")
@friendly
def audit_export_command(
    out: Annotated[Path, typer.Option(help="Folder for the sample, the key and the reviewers' instructions.")],
    labels: Annotated[Path, typer.Option(help="The judge stage's labels.")] = Path("artifacts/judge/labels.jsonl"),
    prompts: Annotated[Path, typer.Option(help="Prompt metadata (category = slice).")] = Path("data/prompts/train.jsonl"),
    constitution: Annotated[Path, typer.Option()] = Path("data/constitution/constitution.yaml"),
    n: Annotated[int, typer.Option("--n", help="Rows to sample.")] = 60,
    seed: Annotated[int, typer.Option(help="Seeds the sample and the answer order.")] = 0,
    force: Annotated[bool, typer.Option(help="Replace an earlier export in --out (its key is lost).")] = False,
    to: Annotated[str, typer.Option(help="files: the sample as CSV/JSONL for reviewers; label-studio: also as a "
                                         "Label Studio project (created, or updated with the rows it lacks).")] = "files",
    label_studio_url: LabelStudioUrl = None,
    project_title: Annotated[Optional[str], typer.Option(help="The Label Studio project's title (default: one per "
                                                              "labels file and seed).")] = None,
) -> None:
    """Write a stratified sample of AI labels (principle x confidence x slice) for people to review."""
    from rlaif.audit.review import export_sample

    if to not in ("files", "label-studio"):
        raise typer.BadParameter(f"--to {to!r}: expected files or label-studio")
    summary = export_sample(labels, prompts, constitution, out, n, seed, force=force)
    print(f"{out}: {summary['n_sampled']} rows from {summary['eligible']} labels, "
          f"{summary['strata_sampled']} of {summary['strata']} strata; keep audit_key.jsonl")
    if to == "files":
        print("send audit_sample.csv (or .jsonl) and INSTRUCTIONS.md to reviewers")
        return
    from rlaif.audit.label_studio import push_sample

    title = project_title or f"rlaif audit {summary['labels_md5'][:8]} seed {seed}"
    project = push_sample(out, label_studio_url, title)
    print(f"Label Studio project {project['project_id']} ({title!r}): {project['tasks']} tasks, {project['added']} "
          f"added; reviewers label them at {project['project_url']}")


@audit_app.command("import")
@friendly
def audit_import_command(
    key: Annotated[Path, typer.Option(help="The export's audit_key.jsonl.")],
    verdicts: Annotated[Optional[Path], typer.Option(help="The reviewed audit_sample.csv or .jsonl (--from file).")] = None,
    from_: Annotated[str, typer.Option("--from", help="file: the reviewed --verdicts file; label-studio: the "
                                                      "submitted annotations of the export's project.")] = "file",
    label_studio_url: LabelStudioUrl = None,
    label_studio_project: Annotated[Optional[int], typer.Option(help="The project's id (default: the one the "
                                                                     "export recorded beside the key).")] = None,
    partial: Annotated[bool, typer.Option(help="Score the submitted verdicts even where tasks are unfinished.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Also write the report JSON here.")] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="Log the report as an MLflow run.")] = True,
) -> None:
    """Human-AI agreement on the reviewed sample: overall, per principle and slice, Cohen's kappa, disagreements."""
    from rlaif.audit.review import log_to_mlflow, read_key, read_verdicts, render_report, report_json, score_verdicts
    from rlaif.data.io import write_json

    if from_ not in ("file", "label-studio"):
        raise typer.BadParameter(f"--from {from_!r}: expected file or label-studio")
    pulled = None
    if from_ == "label-studio":
        from rlaif.audit.label_studio import pull_verdicts

        verdicts, pulled = pull_verdicts(key, label_studio_url, label_studio_project, partial)
    elif verdicts is None:
        raise typer.BadParameter("--verdicts is needed with --from file")
    answer_key = read_key(key)
    report = score_verdicts(read_verdicts(verdicts, answer_key), answer_key)
    if pulled is not None:
        report["label_studio"] = pulled
    if mlflow:
        log_to_mlflow(report, verdicts, key)  # adds mlflow_run_id to the report
    if out is not None:
        write_json(out, report)
    if as_json:
        print(report_json(report))
        return
    if pulled is not None:
        print(f"Label Studio project {pulled['project_id']}: {pulled['submitted']} of {pulled['tasks']} tasks "
              f"submitted ({pulled['missing']} not annotated, {pulled['skipped']} skipped); verdicts in {verdicts}")
    print(render_report(report))
    if mlflow:
        print(f"MLflow run {report['mlflow_run_id']} (experiment rlaif-audit)")

