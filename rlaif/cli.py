"""The `rlaif` command line.

  rlaif run                  the whole pipeline (Prefect flow over the DVC stage graph)
  rlaif stage NAME           one stage, through DVC (skipped when its inputs did not change)
  rlaif check                validate params and input files, load no model
  rlaif exec NAME ...        what dvc.yaml runs for a stage (explicit input and output paths)

Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rlaif.errors import RlaifError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Reinforcement learning from AI feedback.")
exec_app = typer.Typer(help="Run one stage's code directly (dvc.yaml calls these).", no_args_is_help=True)
app.add_typer(exec_app, name="exec")
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
def run(params: ParamsOpt = None, set_: SetOpt = None) -> None:
    """Run the pipeline: every stage whose inputs changed, in dvc.yaml's order, as a Prefect flow."""
    from rlaif.preflight import preflight

    cfg = preflight(params, set_ or [])  # bad params or inputs stop here, before any model loads
    from flows.pipeline import run_pipeline

    summary = run_pipeline(cfg)
    raise typer.Exit(0 if summary.ok else summary.exit_code)


@app.command()
@friendly
def stage(name: str, params: ParamsOpt = None, set_: SetOpt = None,
          force: Annotated[bool, typer.Option(help="Run even if its inputs did not change.")] = False) -> None:
    """Run one stage through DVC (it records the result in dvc.lock and the cache)."""
    from flows.pipeline import run_single_stage
    from rlaif.preflight import preflight

    preflight(params, set_ or [])
    raise typer.Exit(run_single_stage(name, force=force))


@app.command()
@friendly
def check(params: ParamsOpt = None, set_: SetOpt = None) -> None:
    """Validate the configuration and every input file; write params/run.yaml."""
    from rlaif.preflight import preflight

    preflight(params, set_ or [])
    Console().print("[green]params and inputs are valid[/]")


@app.command("constitution-import")
@friendly
def constitution_import_command(
    out: Annotated[Path, typer.Option(help="The constitution YAML to write.")],
    name: Annotated[str, typer.Option()],
    version: Annotated[str, typer.Option()],
    comparisons: Annotated[Optional[Path], typer.Option(help="JSON list of comparison instructions (RLMadisonInstructions.json).")] = None,
    critiques: Annotated[Optional[Path], typer.Option(help="JSON object of critique and revision requests (CritiqueRevisionInstructions.json).")] = None,
) -> None:
    """Start a constitution from the Constitutional AI paper's published prompt files."""
    from rlaif.constitution_import import import_cai, write_constitution

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
    context: Annotated[str, typer.Option(help="hh-rlhf prompt: last (last human turn) or dialogue (every human turn).")] = "last",
) -> None:
    """Agreement of the AI judge with people: agreement, Cohen's kappa, position consistency, speed."""
    import json

    from rlaif.config import load_config
    from rlaif.errors import InputError
    from rlaif.judge_eval import judge_eval, read_pairs
    from rlaif.tracking import quiet_telemetry

    if format_ not in ("hh-rlhf", "jsonl"):
        raise InputError(f"--format {format_!r}: expected hh-rlhf or jsonl")
    quiet_telemetry()
    cfg = load_config(params, set_ or [])
    result = judge_eval(cfg, read_pairs(pairs, format_, limit, cfg.seed, context), constitution, templates, principle)
    if as_json:
        print(json.dumps(result))
    else:
        Console().print(result)


def stage_command(name: str):
    """An `rlaif exec` command: errors reported like any command, and their exit code passed to the flow."""

    def decorate(fn):
        @exec_app.command(name)
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from rlaif.launch import relaunch_if_needed
            from rlaif.tracking import record_event

            try:
                processes = friendly(lambda: getattr(_cfg().section(name), "num_processes", 1))()
                code = relaunch_if_needed(processes)  # several processes: under accelerate launch
                if code is not None:
                    raise typer.Exit(code)
                return friendly(fn)(*args, **kwargs)
            except typer.Exit as done:
                if done.exit_code:
                    record_event(name, "failed", exit_code=done.exit_code)
                raise
            except Exception:
                record_event(name, "failed", exit_code=1)
                raise

        return wrapper

    return decorate


def _cfg():
    from rlaif.config import load_run_params
    from rlaif.tracking import quiet_telemetry

    quiet_telemetry()
    return load_run_params()


@stage_command("bootstrap")
def exec_bootstrap(seed_dialogues: Annotated[Path, typer.Option()], prompts: Annotated[Path, typer.Option()],
                   out: Annotated[Path, typer.Option()]) -> None:
    from tasks.bootstrap import bootstrap

    bootstrap(_cfg(), seed_dialogues, prompts, out)


@stage_command("generate")
def exec_generate(policy: Annotated[Path, typer.Option()], prompts: Annotated[Path, typer.Option()],
                  out: Annotated[Path, typer.Option()]) -> None:
    from tasks.generate import generate

    generate(_cfg(), policy, prompts, out)


@stage_command("critique_revise")
def exec_critique_revise(candidates: Annotated[Path, typer.Option()], constitution: Annotated[Path, typer.Option()],
                         templates: Annotated[Path, typer.Option()], out: Annotated[Path, typer.Option()]) -> None:
    from tasks.critique_revise import critique_revise

    critique_revise(_cfg(), candidates, constitution, templates, out)


@stage_command("judge")
def exec_judge(candidates: Annotated[Path, typer.Option()], constitution: Annotated[Path, typer.Option()],
               templates: Annotated[Path, typer.Option()], gold: Annotated[Path, typer.Option()],
               out: Annotated[Path, typer.Option()], metrics: Annotated[Path, typer.Option()],
               revisions: Annotated[Optional[Path], typer.Option(help="critique_revise output")] = None) -> None:
    from tasks.judge import judge

    judge(_cfg(), candidates, constitution, templates, gold, revisions, out, metrics)


@stage_command("validate")
def exec_validate(labels: Annotated[Path, typer.Option()], out: Annotated[Path, typer.Option()],
                  report: Annotated[Path, typer.Option()]) -> None:
    from tasks.validate import run_stage

    run_stage(_cfg(), labels, out, report)


@stage_command("train_reward")
def exec_train_reward(preferences: Annotated[Path, typer.Option()], gold: Annotated[Path, typer.Option()],
                      out: Annotated[Path, typer.Option()], metrics: Annotated[Path, typer.Option()]) -> None:
    from tasks.train_reward import train_reward

    train_reward(_cfg(), preferences, gold, out, metrics)


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
                  metrics: Annotated[Path, typer.Option()]) -> None:
    from tasks.evaluate import evaluate

    evaluate(_cfg(), baseline, candidate, prompts, seed_dialogues, markers, out, metrics)

