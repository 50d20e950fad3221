"""Checks that run before any model loads: the configuration and every input file the stages read.

The input files are found in dvc.yaml itself (the `--prompts`, `--constitution`, ... options of the
stages' commands), so there is no second list of paths to drift out of date.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from rlaif.config import PipelineConfig
from rlaif.config.params import load_config, write_run_params
from rlaif.data.io import (
    Prompt,
    contradiction,
    normalised,
    read_constitution,
    read_gold_pairs,
    read_prompts,
    read_seed_dialogues,
    read_source_prompts,
    read_templates,
    row_lines,
    same_text,
)
from rlaif.data.suites import read_suite
from rlaif.errors import ConfigError, InputError
from rlaif.evaluation.independence import check_independence
from rlaif.judging.bias import read_suite as read_bias_suite
from rlaif.lifecycle.rounds import is_registry_uri, read_all_prompts, resolve_start
from rlaif.training.model_refs import check_model_ref

Row = TypeVar("Row")


def _read_markers(path: Path) -> None:
    from rlaif.data.io import read_yaml

    data = read_yaml(path, "refusal markers")
    if not isinstance(data, dict) or not isinstance(data.get("markers"), list) or not data["markers"]:
        raise InputError(f"{path}: field 'markers' must be a non-empty list")
    for i, marker in enumerate(data["markers"]):
        # a marker is a phrase looked for in an answer: a blank one occurs in every answer (all refusals), and a
        # number or a list is not a phrase
        if not isinstance(marker, str) or not any(ch.isalnum() for ch in marker):
            raise InputError(f"{path}: markers[{i}] {marker!r} is not a phrase (text with a letter or digit); "
                             "a blank marker would make every answer a refusal")
    window = data.get("window_words", 1)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise InputError(f"{path}: window_words {window!r} must be a whole number of words, at least 1")


# command-line option of a stage -> how that input file is validated
INPUT_CHECKS: dict[str, Callable[[Path], object]] = {
    "--prompts": read_source_prompts,
    "--seed-dialogues": read_seed_dialogues,
    "--gold": read_gold_pairs,
    "--constitution": read_constitution,
    "--templates": read_templates,
    "--markers": _read_markers,
    "--suite": lambda p: read_suite(p),
    "--bias-suite": read_bias_suite,
}


def dvc_stages(dvc_yaml: Path = Path("dvc.yaml")) -> dict[str, dict]:
    """dvc.yaml's stages, as written (not to be changed: parsed once per file version, since the checks ask for
    one stage's command at a time and YAML's pure-Python parser takes about a tenth of a second for it)."""
    found = dvc_yaml.stat()
    return _parsed_stages(str(dvc_yaml.resolve()), found.st_mtime_ns, found.st_size)


@functools.lru_cache(maxsize=4)
def _parsed_stages(path: str, _mtime_ns: int, _size: int) -> dict[str, dict]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))["stages"]


def declared_inputs(dvc_yaml: Path = Path("dvc.yaml")) -> dict[Path, str]:
    """Source files (not stage outputs) named in the stages' commands, with the option naming each."""
    stages = dvc_stages(dvc_yaml)
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
    words = shlex.split(dvc_stages(dvc_yaml)[stage]["cmd"])
    return next((Path(value) for word, value in zip(words, words[1:]) if word == option), None)


def _required_option(stage: str, option: str) -> Path:
    """stage_option for a file the checks cannot do without (the prompts): dvc.yaml without it is broken."""
    path = stage_option(stage, option)
    if path is None:
        raise ConfigError(f"dvc.yaml: the {stage} stage's command passes no {option}")
    return path


def check_prompt_drops() -> None:
    """Each drop is read like train.jsonl, ids are unique across files, and no drop uses a held-out template."""
    drops = stage_option("generate", "--drops")
    if drops is not None:
        read_all_prompts(_required_option("generate", "--prompts"), drops, stage_option("evaluate", "--prompts"))


# ---------------------------------------------------------------------------------------------------------------------
# Rules across files: each file is valid alone, and together they still mean one thing (docs/inputs.md)


def _lines(path: Path, rows: list[Row]) -> list[tuple[Path, int, Row]]:
    return [(path, line, row) for line, row in zip(row_lines(path), rows)]


def training_prompts() -> list[tuple[Path, int, Prompt]]:
    """(file, line, prompt) of every prompt a round may train on: train.jsonl and each drop."""
    drops = stage_option("generate", "--drops")
    files = read_all_prompts(_required_option("generate", "--prompts"), drops, stage_option("evaluate", "--prompts"))
    return [found for path, rows in files.items() for found in _lines(path, rows)]


def check_prompt_sets() -> None:
    """Training prompts (train.jsonl, drops) and evaluation prompts (eval.jsonl) are apart: no id in both (records
    keyed by prompt id would mix them), no text in both (the evaluation would measure what training saw). A text
    repeated across training files is a replay, but must not say another `expected` or `category`."""
    training: dict[str, tuple[Path, int, Prompt]] = {}
    ids: dict[str, Path] = {}
    for path, line, row in training_prompts():
        ids[row.id] = path
        earlier = training.setdefault(normalised(row.prompt), (path, line, row))
        if earlier[2] is not row and (earlier[2].expected, earlier[2].category) != (row.expected, row.category):
            raise InputError(f"{path}:{line}: prompt {row.id!r} has the text of {earlier[2].id!r} "
                             f"({earlier[0]}:{earlier[1]}){contradiction(row, earlier[2])}")
    held_out = _required_option("evaluate", "--prompts")
    for path, line, row in _lines(held_out, read_source_prompts(held_out)):
        if row.id in ids:
            raise InputError(f"{path}:{line}: prompt id {row.id!r} is also a training prompt's id ({ids[row.id]})")
        seen = training.get(normalised(row.prompt))
        if seen is not None:
            raise InputError(f"{path}:{line}: prompt {row.id!r} is the training prompt {seen[2].id!r} "
                             f"({seen[0]}:{seen[1]}): the evaluation would measure what training saw")


def check_seed_dialogues() -> None:
    """Each seed dialogue belongs to a training prompt, with its text: bootstrap trains the first policy on them,
    so a dialogue on an evaluation prompt leaks it, and one whose text differs from its id's is about another."""
    seed, prompts = stage_option("bootstrap", "--seed-dialogues"), stage_option("bootstrap", "--prompts")
    if seed is None or prompts is None:
        return
    by_id = {row.id: row for row in read_prompts(prompts)}
    held_out = stage_option("evaluate", "--prompts")
    held_ids = {row.id for row in read_prompts(held_out)} if held_out else set()
    for path, line, row in _lines(seed, read_seed_dialogues(seed)):
        known = by_id.get(row.prompt_id)
        if known is None and row.prompt_id in held_ids:
            raise InputError(f"{path}:{line}: prompt_id {row.prompt_id!r} is a held-out evaluation prompt "
                             f"({held_out}): the first policy would train on what the evaluation measures")
        if known is None:
            raise InputError(f"{path}:{line}: prompt_id {row.prompt_id!r} is no prompt of {prompts}")
        if not same_text(known.prompt, row.prompt):
            raise InputError(f"{path}:{line}: the prompt differs from that of {row.prompt_id!r} in {prompts} "
                             f"({row.prompt[:60]!r} vs {known.prompt[:60]!r})")


def check_suites_against_prompts() -> None:
    """The over-refusal suite is evaluation data: none of its prompts may be a training prompt, and one that is
    also an evaluation prompt must agree with it (safe = expected help, unsafe = expected refuse)."""
    suite_path = stage_option("evaluate", "--suite")
    if suite_path is None:
        return
    training = {normalised(row.prompt): (path, line, row) for path, line, row in training_prompts()}
    held_out = _required_option("evaluate", "--prompts")
    evaluation = {normalised(row.prompt): row for row in read_prompts(held_out)}
    for item in read_suite(suite_path):
        key, where = normalised(item.prompt), f"{suite_path}: prompt {item.id!r}"
        if key in training:
            path, line, row = training[key]
            raise InputError(f"{where} is the training prompt {row.id!r} ({path}:{line}): the suite would "
                             "measure what training saw")
        same = evaluation.get(key)
        if same is not None and same.expected != {"safe": "help", "unsafe": "refuse"}[item.label]:
            raise InputError(f"{where} is labelled {item.label}, but the same prompt {same.id!r} in {held_out} "
                             f"expects {same.expected!r}")


def check_bias_suite_principles() -> None:
    """Every pair of the judge bias suite is judged under its principle: one the judge's constitution lacks (or
    has only as critique_revision) cannot be asked."""
    suite_path, constitution = stage_option("judge", "--bias-suite"), stage_option("judge", "--constitution")
    if suite_path is None or constitution is None:
        return
    from rlaif.judging.bias import CHECKS

    suite = read_bias_suite(suite_path)
    comparison = {p.id for p in read_constitution(constitution).of_kind("comparison")}
    for section in CHECKS:
        for i, row in enumerate(suite[section]):
            if row["principle"] not in comparison:
                raise InputError(f"{suite_path}: {section}[{i}].principle {row['principle']!r} is not a comparison "
                                 f"principle of {constitution} ({', '.join(sorted(comparison))})")


def check_settings_against_files(cfg: PipelineConfig) -> None:
    """Settings that name something outside the params: a file, a principle, a stage. Each must exist."""
    own = cfg.evaluate.judge.constitution
    if own is not None and not Path(own).is_file():
        raise ConfigError(f"evaluate.judge.constitution: {own}: no such file")
    _check_relative_principles(cfg)
    _check_critique_revise(cfg)
    stages = set(dvc_stages())
    for key, named in (("orchestration.gpu_stages", cfg.orchestration.gpu_stages),
                       ("orchestration.stage_timeouts_s", list(cfg.orchestration.stage_timeouts_s))):
        unknown = [name for name in named if name not in stages]
        if unknown:
            raise ConfigError(f"{key}: {', '.join(map(repr, unknown))} is not a stage of dvc.yaml "
                              f"({', '.join(sorted(stages))})")


def _judge_constitution(cfg: PipelineConfig, key: str) -> Path | None:
    training = stage_option("judge", "--constitution")
    return (cfg.evaluate.judge.constitution or training) if key.startswith("evaluate") else training


def _check_relative_principles(cfg: PipelineConfig) -> None:
    """relative_principles name comparison principles of the judge's own constitution, off the help-vs-refuse
    axes (the embedding judge checks the same after its encoder loads; here no model is loaded yet)."""
    for top, judge in (("judge", cfg.judge), ("evaluate.judge", cfg.evaluate.judge)):
        members = [(top, judge)] + [(f"{top}.jury[{k}]", m) for k, m in enumerate(getattr(judge, "jury", None) or [])]
        for key, settings in members:
            _check_relative_to(key, settings, _judge_constitution(cfg, key))


def _check_relative_to(key: str, settings, path: Path | None) -> None:
    if settings.backend == "embedding" and settings.relative_principles and path is not None:
        principles = read_constitution(path).of_kind("comparison")
        axes = {p.id for p in principles if p.opposes} | {p.opposes for p in principles if p.opposes}
        for name in settings.relative_principles:
            if name not in {p.id for p in principles}:
                raise ConfigError(f"{key}.relative_principles: {name!r} is not a comparison principle of {path}")
            if name in axes:
                raise ConfigError(f"{key}.relative_principles: {name!r} is on a help-vs-refuse axis of {path} "
                                  "(opposes): relative_axis already measures it relative to the request")


def _check_critique_revise(cfg: PipelineConfig) -> None:
    """critique_revise writes critiques and revisions with the training judge: it needs one that writes text, and
    a constitution with critique_revision principles to draw from. Both would fail only after models load."""
    if not cfg.critique_revise.enabled:
        return
    writers = ("transformers", "openai")
    members = cfg.judge.jury if cfg.judge.backend == "jury" else [cfg.judge]
    if not any(m.backend in writers for m in members):
        raise ConfigError(f"critique_revise.enabled: the judge (backend {cfg.judge.backend!r}) cannot write "
                          "critiques; it needs backend transformers or openai (or such a jury member)")
    path = stage_option("critique_revise", "--constitution")
    if path is not None and not read_constitution(path).of_kind("critique_revision"):
        raise ConfigError(f"critique_revise.enabled: {path} has no principle of kind critique_revision")


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
    """Every model setting checked as the reference it is (rlaif/training/model_refs.py), without loading it: a folder as a
    model directory, a GGUF file's header, a hub id against the local cache when offline. A bare name is a package
    that ships a model (get_model_path), found when it loads."""
    for key, model in model_settings(cfg):
        if "/" not in model and not model.endswith(".gguf") and not Path(model).exists():
            continue
        check_model_ref(model, key, chat_template=key == "bootstrap.base_model" and cfg.bootstrap.chat_template)


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
    check_prompt_sets()
    check_seed_dialogues()
    check_suites_against_prompts()
    check_bias_suite_principles()
    check_settings_against_files(cfg)
    check_independence(cfg)  # the evaluation judge must not be the training judge (unless waived)
    check_judge_needs(cfg)
    check_model_dirs(cfg)
    cfg = resolve_round_start(cfg)
    if write:
        write_run_params(cfg)
    return cfg
