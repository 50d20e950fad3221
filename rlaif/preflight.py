"""Checks that run before any model loads: the configuration and every input file the stages read.

The input files are found in dvc.yaml itself (the `--prompts`, `--constitution`, ... options of the
stages' commands), so there is no second list of paths to drift out of date.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import yaml

from rlaif.config import PipelineConfig, load_config, write_run_params
from rlaif.errors import InputError
from rlaif.independence import check_independence
from rlaif.io import GoldPair, SeedDialogue, read_constitution, read_prompts, read_rows, read_templates
from rlaif.suites import read_suite


def _read_markers(path: Path) -> None:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, FileNotFoundError) as err:
        raise InputError(f"{path}: not readable ({err})") from None
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
    found: dict[Path, str] = {}
    for stage in stages.values():
        words = shlex.split(stage["cmd"])
        for option, value in zip(words, words[1:]):
            if option in INPUT_CHECKS:
                found[Path(value)] = option
    return found


def preflight(params_file: Path | None, overrides: list[str]) -> PipelineConfig:
    if not Path("dvc.yaml").exists():
        raise InputError(f"no dvc.yaml in {Path.cwd()}: run rlaif from the project's root")
    cfg = load_config(params_file, overrides)
    for path, option in declared_inputs().items():
        INPUT_CHECKS[option](path)
    check_independence(cfg)  # the evaluation judge must not be the training judge (unless waived)
    write_run_params(cfg)
    return cfg
