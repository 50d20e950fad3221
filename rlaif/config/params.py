"""Loading the settings: the embedded profile, a params file layered on it, `--set` overrides, and params/run.yaml.

`params/default.yaml` is the embedded CPU profile. A run may layer another params file and `--set stage.key=value`
overrides on top; each layer is validated against the schema (`rlaif.config`; unknown keys and bad values are
errors naming the file and the key), and the result is written to `params/run.yaml`, the file that dvc.yaml
declares as each stage's params dependency, so DVC reruns exactly the stages whose section changed.

A layer that changes a section's choice (`judge.backend`, `evaluate.judge.backend`, `optimize_policy.algorithm`)
starts that choice's own settings afresh: the keys of the layers below that the new choice does not have are
dropped (and a judge's model), the others are kept. In the same layer, a key of another choice is an error naming it.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rlaif.config import EvaluationJudgeConfig, FieldProblem, JudgeConfig, OptimizePolicyConfig, PipelineConfig
from rlaif.errors import ConfigError

DEFAULT_PARAMS = Path("params/default.yaml")
RUN_PARAMS = Path("params/run.yaml")

# the sections that are discriminated unions: where they are, and the schema of their variants
CHOICES = {("judge",): JudgeConfig, ("evaluate", "judge"): EvaluationJudgeConfig,
           ("optimize_policy",): OptimizePolicyConfig}


def _variants(union) -> tuple[str, tuple]:
    """The discriminating key of an Annotated discriminated union, and its variant classes."""
    members, field = get_args(union)
    return field.discriminator, get_args(members)


def _variant(union, value) -> type[BaseModel] | None:
    key, classes = _variants(union)
    return next((c for c in classes if value in get_args(c.model_fields[key].annotation)), None)


# a model name means another thing under each judge backend (an encoder, a causal LM, a name the server serves)
NEVER_CARRIED = {"model"}


def carried_keys(union, old, new) -> set[str]:
    """The settings of the choice `old` that still hold under `new`: those both declare (a judge's mode and
    sharding; grpo's kl_coef under online_judge), but never the model."""
    before, after = _variant(union, old), _variant(union, new)
    if before is None or after is None:
        return set(after.model_fields if after else ()) - NEVER_CARRIED
    return (set(before.model_fields) & set(after.model_fields)) - NEVER_CARRIED


def _read_yaml(path: Path) -> dict[str, Any]:
    from rlaif.data.io import read_yaml

    data = read_yaml(path, "a params file", ConfigError) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of stage -> settings, got {type(data).__name__}")
    return data


def _section(data: dict[str, Any], where: tuple[str, ...]) -> dict | None:
    node: Any = data
    for key in where:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def layer(base: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    """`upper` over `base`; where `upper` changes a choice, the settings of `base`'s choice are dropped first."""
    base = copy.deepcopy(base)
    for where, union in CHOICES.items():
        key, _ = _variants(union)
        below, above = _section(base, where), _section(upper, where)
        if below is not None and above is not None and key in above and above[key] != below.get(key):
            kept = carried_keys(union, below.get(key), above[key])
            for name in [k for k in below if k not in kept]:
                del below[name]
    return _deep_merge(base, upper)


def _overrides_layer(overrides: list[str]) -> dict[str, Any]:
    """The `--set stage.key=value` assignments as one layer; each value is parsed as YAML (numbers, lists, null)."""
    data: dict[str, Any] = {}
    for assignment in overrides:
        if "=" not in assignment:
            raise ConfigError(f"--set {assignment!r}: expected stage.key=value")
        dotted, raw = assignment.split("=", 1)
        keys = dotted.strip().split(".")
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {assignment!r}: {key!r} is not a section")
        node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else None
    return data


def _validate(data: dict[str, Any], source: str) -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: " + "; ".join(_problem(e) for e in err.errors())) from None


def _problem(e: ErrorDetails) -> str:
    """One validation error as a line naming the key."""
    loc = _user_loc(e["loc"])
    key = ".".join(loc)
    problem = (e.get("ctx") or {}).get("error")
    if e["type"] == "extra_forbidden":
        return f"unknown key '{key}'" + _choice_hint(e, loc)
    if e["type"] in ("union_tag_invalid", "union_tag_not_found"):  # the choice itself: no such backend/algorithm
        ctx = e.get("ctx") or {}
        name = str(ctx.get("discriminator", "")).strip("'")
        if e["type"] == "union_tag_not_found":
            return f"'{key}.{name}': required"
        return f"'{key}.{name}': {ctx.get('tag')!r} is not one of {ctx.get('expected_tags')}"
    if isinstance(problem, FieldProblem):  # a check across fields, blamed on the field it is about
        value = e["input"].get(problem.field) if isinstance(e.get("input"), dict) else None
        return f"'{key}.{problem.field}': {problem} (got {value!r})"
    if e["type"] == "missing":
        return f"'{key}': required" + _choice_hint(e, loc)
    return f"'{key}': {e['msg']} (got {e.get('input')!r})"


def _user_loc(loc: tuple) -> list[str]:
    """An error's location as the user wrote the key. Pydantic puts the chosen variant of a discriminated union in
    it (judge.openai.base_url; judge.jury.0.openai.model for a jury member): that tag is left out."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        previous = loc[i - 1] if i else None
        after_choice = (tuple(parts) in CHOICES and previous not in _tags()) or isinstance(previous, int)
        if not (after_choice and isinstance(part, str) and part in _tags()):
            parts.append("validate" if part == "validate_" else str(part))
    return parts


def _chosen(loc: tuple) -> str | None:
    """The variant an error's location went through (the last tag in it)."""
    tags = [part for part in loc if isinstance(part, str) and part in _tags()]
    return tags[-1] if tags else None


@functools.cache
def _tags() -> frozenset[str]:
    """Every value a choice can take (embedding, rubric, dpo, ...): the tags pydantic puts in an error's location."""
    tags = set()
    for union in CHOICES.values():
        key, classes = _variants(union)
        tags |= {value for c in classes for value in get_args(c.model_fields[key].annotation)}
    return frozenset(tags)


def _choice_hint(e: ErrorDetails, loc: list[str]) -> str:
    chosen = _chosen(e["loc"])
    if chosen is None or len(loc) < 2:
        return ""
    where = max((w for w in CHOICES if tuple(loc[:len(w)]) == w), key=len, default=None)
    if where is None:
        return ""
    key, _ = _variants(CHOICES[where])
    return f" under {key} {chosen!r} (each {key}'s keys are in rlaif/config/__init__.py)"


def load_config(params_file: Path | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Default profile, then an optional params file, then --set overrides; each layer validated."""
    data = _read_yaml(DEFAULT_PARAMS)
    _validate(data, str(DEFAULT_PARAMS))
    if params_file is not None:
        data = layer(data, _read_yaml(Path(params_file)))
        _validate(data, str(params_file))
    if not overrides:
        return _validate(data, str(params_file or DEFAULT_PARAMS))
    data = layer(data, _overrides_layer(overrides))
    # validated together: `--set judge.backend=openai --set judge.base_url=...` is only valid as a whole
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as err:
        culprits = [a for a in overrides if any(_overlaps(a, e["loc"]) for e in err.errors())]
        return _validate(data, " ".join(f"--set {a}" for a in culprits) or "params")


def _overlaps(assignment: str, loc: tuple) -> bool:
    """Whether an override's key and an error's location are the same field or one contains the other."""
    keys = assignment.split("=", 1)[0].strip().split(".")
    where = _user_loc(loc)
    if tuple(keys[:-1]) in CHOICES and keys[-1] == _variants(CHOICES[tuple(keys[:-1])])[0]:
        keys = keys[:-1]  # the choice itself (judge.backend) is behind every error of its section
    shorter = min(len(keys), len(where))
    return keys[:shorter] == where[:shorter]


def write_run_params(cfg: PipelineConfig, path: Path = RUN_PARAMS) -> Path:
    """Write the effective configuration atomically (DVC reads it as the stages' params)."""
    from rlaif.data.io import write_text

    text = yaml.safe_dump(cfg.as_dict(), sort_keys=False)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path  # unchanged: keep mtime so nothing looks modified
    return write_text(path, text)


def load_run_params() -> PipelineConfig:
    """What a stage process reads: params/run.yaml, written by `rlaif run` (defaults when absent)."""
    if not RUN_PARAMS.exists():
        cfg = load_config()
        write_run_params(cfg)
        return cfg
    return _validate(_read_yaml(RUN_PARAMS), str(RUN_PARAMS))
