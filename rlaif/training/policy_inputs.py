"""What the policy optimisation reads, checked before any model loads: every problem is an InputError (exit code 2)
naming the file."""

from __future__ import annotations

from pathlib import Path

from rlaif.config import OptimizePolicyConfig
from rlaif.data.io import read_constitution, read_prompts, read_templates
from rlaif.errors import InputError


def check_inputs(o: OptimizePolicyConfig, preferences: Path | None, policy: Path, prompts: Path | None,
                 reward_model: Path | None, constitution: Path | None, templates: Path | None,
                 markers: Path | None) -> dict:
    if not policy.is_dir() or not any((policy / name).exists() for name in
                                      ("config.json", "adapter_config.json", "reference.json")):
        raise InputError(f"policy {str(policy)!r}: no such model directory (no config.json, adapter_config.json "
                         "or reference.json)")
    if markers is not None and not Path(markers).exists():
        raise InputError(f"{markers}: file not found (the refusal markers)")
    data: dict = {}
    if o.algorithm == "dpo":
        if preferences is None:
            raise InputError("algorithm 'dpo' needs --preferences")
        data["preferences"] = read_policy_preferences(Path(preferences), o)
        return data
    if prompts is None:
        raise InputError(f"algorithm {o.algorithm!r} needs --prompts (the training prompts it samples answers to)")
    data["prompts"] = read_prompts(Path(prompts))
    assert o.batch_size is not None  # o is resolved(): an unset batch_size holds the algorithm's default
    groups = o.batch_size // o.num_generations
    if len(data["prompts"]) < groups:
        raise InputError(f"{prompts}: {len(data['prompts'])} prompts, fewer than the {groups} that one step samples "
                         f"(optimize_policy.batch_size {o.batch_size} / num_generations {o.num_generations})")
    if o.algorithm in ("grpo", "rloo"):
        if reward_model is None:
            raise InputError(f"algorithm {o.algorithm!r} needs --reward-model (the train_reward stage's model)")
        if not (Path(reward_model) / "config.json").exists():
            raise InputError(f"reward model {str(reward_model)!r}: no such model directory (expected "
                             f"{Path(reward_model) / 'config.json'}); run the train_reward stage first")
    else:
        if constitution is None or templates is None:
            raise InputError("algorithm 'online_judge' needs --constitution and --templates (the judge's)")
        data["constitution"] = read_constitution(Path(constitution))
        data["templates"] = read_templates(Path(templates))
    return data


def given(paths: dict[str, Path | None]) -> dict[str, Path]:
    """The inputs the algorithm uses: check_inputs has required each of them, so none is None."""
    found = {name: path for name, path in paths.items() if path is not None}
    assert len(found) == len(paths), f"check_inputs let a missing input through: {paths}"
    return found


def read_policy_preferences(path: Path, o: OptimizePolicyConfig) -> list[dict]:
    """The preference pairs (rlaif.data.records' one reader), at least one batch (and two) of them."""
    from rlaif.data.records import read_preferences

    assert o.batch_size is not None  # o is resolved(), as in check_inputs
    rows = read_preferences(path, max(2, o.batch_size), "optimize_policy.batch_size")
    return [row.model_dump() for row in rows]


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def refusal_classifier(markers: Path | None):
    if markers is None:
        return None
    from rlaif.evaluation.refusal import RefusalClassifier

    return RefusalClassifier(Path(markers))


def algorithm_inputs(algorithm: str, preferences: Path | None, prompts: Path | None, reward_model: Path | None,
                     constitution: Path | None, templates: Path | None) -> tuple[dict[str, Path], dict[str, Path]]:
    """(the inputs the algorithm trains from, recorded in the lineage; the dataset MLflow logs with the run)."""
    online = {"prompts": prompts, "reward_model": reward_model}
    used = given({"dpo": {"preferences": preferences}, "grpo": online, "rloo": online,
                  "online_judge": {"prompts": prompts, "constitution": constitution, "templates": templates},
                  }[algorithm])
    dataset = given({"preferences": preferences} if algorithm == "dpo" else {"prompts": prompts})
    return used, dataset
