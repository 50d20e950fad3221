"""Checks that run before any model loads: the configuration and every input file the stages read.

The input files are found in dvc.yaml itself (the `--prompts`, `--constitution`, ... options of the
stages' commands), so there is no second list of paths to drift out of date.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import yaml

from rlaif.config import PipelineConfig
from rlaif.params import load_config, write_run_params
from rlaif.errors import InputError
from rlaif.independence import check_independence
from rlaif.io import GoldPair, SeedDialogue, read_constitution, read_prompts, read_rows, read_templates
from rlaif.models import check_model_dir
from rlaif.rounds import is_registry_uri, read_all_prompts, resolve_start
from rlaif.suites import read_suite


def _read_markers(path: Path) -> None:
    from rlaif.io import read_yaml

    data = read_yaml(path, "refusal markers")
    if not isinstance(data, dict) or not isinstance(data.get("markers"), list) or not data["markers"]:
        raise InputError(f"{path}: field 'markers' must be a non-empty list")


# command-line option of a stage -> how that input file is validated
INPUT_CHECKS: dict[str, Callable[[Path], object]] = {
    "--prompts": read_prompts,
    "--seed-dialogues": lambda p: read_rows(p, SeedDialogue),
    "--gold": lambda p: read_rows(p, GoldPair, unique_key="id"),
    "--constitution": read_constitution,
    "--templates": read_templates,
    "--markers": _read_markers,
    "--suite": lambda p: read_suite(p),
}


def declared_inputs(dvc_yaml: Path = Path("dvc.yaml")) -> dict[Path, str]:
    """Source files (not stage outputs) named in the stages' commands, with the option naming each."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    outs = [Path(next(iter(out)) if isinstance(out, dict) else out) for s in stages.values() for out in s.get("outs", [])]
    found: dict[Path, str] = {}
    for stage in stages.values():
        words = shlex.split(stage["cmd"])
        for option, value in zip(words, words[1:]):
            produced = any(Path(value) == out or out in Path(value).parents for out in outs)
            if option in INPUT_CHECKS and not produced:  # a stage's output is checked by the stage reading it
                found[Path(value)] = option
    return found


def stage_option(stage: str, option: str, dvc_yaml: Path = Path("dvc.yaml")) -> Path | None:
    """The path a stage's command passes for `option` (e.g. generate's --drops), or None."""
    words = shlex.split(yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"][stage]["cmd"])
    return next((Path(value) for word, value in zip(words, words[1:]) if word == option), None)


def check_prompt_drops() -> None:
    """Each drop is read like train.jsonl, ids are unique across files, and no drop uses a held-out template."""
    drops = stage_option("generate", "--drops")
    if drops is not None:
        read_all_prompts(stage_option("generate", "--prompts"), drops, stage_option("evaluate", "--prompts"))


def embedding_judges(cfg: PipelineConfig) -> list[str]:
    """The settings keys of every embedding judge the run uses: the training judge, its jury's members, and the
    evaluation judge (which reads its own constitution, or the training judge's)."""
    found = []
    for key, settings in (("judge", cfg.judge), ("evaluate.judge", cfg.evaluate.judge)):
        if settings.backend == "embedding":
            found.append(key)
        for k, member in enumerate(getattr(settings, "jury", None) or []):
            if member.backend == "embedding":
                found.append(f"{key}.jury[{k}]")
    return found


def check_judge_needs(cfg: PipelineConfig) -> None:
    """What the chosen judges need from the constitution, checked before any model loads: the embedding judge
    applies each comparison principle through its worked examples (constitution-import writes none)."""
    users = embedding_judges(cfg)
    if not users:
        return
    own = cfg.evaluate.judge.constitution
    for path, keys in ((stage_option("judge", "--constitution"), [k for k in users if not k.startswith("evaluate")]),
                       (own or stage_option("judge", "--constitution"), [k for k in users if k.startswith("evaluate")])):
        if path is None or not keys:
            continue
        bare = [p.id for p in read_constitution(path).of_kind("comparison") if not p.examples]
        if bare:
            raise InputError(f"{path}: the embedding judge ({', '.join(keys)}) needs worked examples for every "
                             f"comparison principle; without any: {', '.join(bare)}")


def model_settings(cfg: PipelineConfig) -> list[tuple[str, str]]:
    """(settings key, model) for every model the run loads by name: the starting policy, the reward model's
    backbone, and each judge that runs a model here (an openai judge's model lives on its server)."""
    found = [("bootstrap.base_model", cfg.bootstrap.base_model), ("train_reward.model", cfg.train_reward.model)]
    for key, settings in (("judge", cfg.judge), ("evaluate.judge", cfg.evaluate.judge)):
        judges = [(key, settings)] + [(f"{key}.jury[{k}]", m) for k, m in enumerate(getattr(settings, "jury", None) or [])]
        found += [(k, j.model) for k, j in judges if j.backend in ("embedding", "transformers")]
    return [(key, model) for key, model in found if model and not is_registry_uri(model)]


def check_model_dirs(cfg: PipelineConfig) -> None:
    """Every model setting that names a folder: the folder checked as a model directory (config, weights whole,
    tokenizer), without loading it. A name that is not a folder is a hub id or a package that ships a model."""
    for key, model in model_settings(cfg):
        path = Path(model)
        if path.exists():
            check_model_dir(path, key)
        elif path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
            raise InputError(f"{key}: {model!r}: no such folder (and not a hub id owner/name)")


def resolve_round_start(cfg: PipelineConfig) -> PipelineConfig:
    """bootstrap.base_model made concrete (a registry alias becomes one version), before any model loads."""
    start = resolve_start(cfg.bootstrap.base_model, cfg.bootstrap.fallback)
    if start.note:
        print(start.note)
    return cfg.model_copy(update={"bootstrap": cfg.bootstrap.model_copy(update={"resolved_base_model": start.source})})


def preflight(params_file: Path | None, overrides: list[str], write: bool = True) -> PipelineConfig:
    """The configuration and every declared input checked, the round's start resolved; with `write`, the result
    written to params/run.yaml (what DVC and the stages read). `rlaif check` passes write=False: it changes no file."""
    if not Path("dvc.yaml").exists():
        raise InputError(f"no dvc.yaml in {Path.cwd()}: run rlaif from the project's root")
    cfg = load_config(params_file, overrides)
    for path, option in declared_inputs().items():
        INPUT_CHECKS[option](path)
    check_prompt_drops()
    check_independence(cfg)  # the evaluation judge must not be the training judge (unless waived)
    check_judge_needs(cfg)
    check_model_dirs(cfg)
    cfg = resolve_round_start(cfg)
    if write:
        write_run_params(cfg)
    return cfg
