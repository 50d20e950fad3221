"""optimize_policy: the new policy, by the algorithm that `optimize_policy.algorithm` names.

- dpo: TRL's DPOTrainer on the validated preferences. The default loss is DPO plus a likelihood term
  on the chosen answer (loss_type ["sigmoid", "sft"]): plain DPO on a tiny policy can push the chosen
  answer's log-probability down with the rejected one and end in garbled text. `soft_labels` changes
  the sigmoid term's target from "the chosen answer wins for sure" to 1 - label_smoothing
  (conservative DPO) or to each pair's own judge confidence (see SoftLabelDPO).
- grpo, rloo: TRL's GRPOTrainer or RLOOTrainer on fresh samples of the training prompts, rewarded by
  the trained reward model's scalar (rlaif.rewards.RewardModelReward), with a KL penalty to the
  starting policy (kl_coef).
- online_judge: the same online loop (GRPO by default, `online_trainer`), rewarded by the judge itself
  (rlaif.rewards.JudgeReward): its pointwise score mapped to [-1, 1], or pairwise against the starting
  policy's greedy answer ("direct RLAIF", Lee et al. 2023).

Every algorithm logs per step to MLflow (through MlflowSteps): its loss and reward, the KL to the
starting policy, the completion length and the refusal rate of sampled completions, by the
independent evaluator's refusal classifier (tasks/evaluate.py). Online algorithms measure these on the
completions they train on; DPO samples a fixed set of training prompts at each logging step
(SampleProbe). The curves are plotted to `<algorithm>_curves.png` and logged as an artifact.

With `optimize_policy.lora` the policy trains LoRA adapters; `lora.merge` saves them merged into a
plain model, or as adapters only (adapter + tokenizer), which rlaif.models.load_policy loads on top
of the base model the adapter config names. Checkpoints for resume work the same for every algorithm
(rlaif.training.train_resumably).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transformers import TrainerCallback

from rlaif.config import OptimizePolicyConfig, PipelineConfig
from rlaif.errors import InputError
from rlaif.io import read_constitution, read_prompts, read_templates, write_json

CURVES = {
    "dpo": ["loss", "rewards/margins", "kl", "completions/mean_length", "refusal_rate"],
    "online": ["reward", "kl", "completions/mean_length", "refusal_rate", "loss"],
}


def optimize_policy(cfg: PipelineConfig, preferences: Path | None, policy: Path, out_dir: Path,
                    prompts: Path | None = None, reward_model: Path | None = None, constitution: Path | None = None,
                    templates: Path | None = None, markers: Path | None = None) -> Path:
    from rlaif.checkpoint import CHECKPOINT_DIR, fingerprint
    from rlaif.rounds import read_start
    from rlaif.registry import register_model
    from rlaif.tracking import stage_run

    o = cfg.optimize_policy.resolved()
    out_dir = Path(out_dir)
    data = check_inputs(o, preferences, Path(policy), prompts, reward_model, constitution, templates, markers)
    used = {"dpo": {"preferences": preferences}, "grpo": {"prompts": prompts, "reward_model": reward_model},
            "rloo": {"prompts": prompts, "reward_model": reward_model},
            "online_judge": {"prompts": prompts, "constitution": constitution, "templates": templates}}[o.algorithm]
    dataset = {"preferences": preferences} if o.algorithm == "dpo" else {"prompts": prompts}
    with stage_run("optimize_policy", cfg, inputs={"base_policy": policy, **used}, datasets=dataset,
                   outputs={"optimize_policy": out_dir}) as run:
        # resume only from checkpoints of the same inputs, params (the judge's too, when it is the reward) and seed
        settings = {"seed": cfg.seed, "optimize_policy": o.model_dump(mode="json")}
        if o.algorithm == "online_judge":
            settings["judge"] = cfg.judge.model_dump(mode="json")
        files = [f for path in [policy, *used.values()] for f in _files(Path(path))]
        checkpoints = CHECKPOINT_DIR / f"optimize_policy-{fingerprint(files, settings)}"
        refusals = _refusals(markers)
        if o.algorithm == "dpo":
            history = _train_dpo(cfg, o, data["preferences"], Path(policy), out_dir, checkpoints, refusals)
        else:
            reward = _build_reward(cfg, o, reward_model, data, refusals)
            history = _train_online(cfg, o, data["prompts"], Path(policy), out_dir, checkpoints, reward)
        last = {k: v for row in history for k, v in row.items() if k != "step"}
        nan = float("nan")
        summary = {"final_loss": last.get("loss", nan), "final_kl": last.get("kl", nan),
                   "final_mean_length": last.get("completions/mean_length", nan),
                   "final_refusal_rate": last.get("refusal_rate", nan)}
        if o.algorithm == "dpo":
            summary |= {"train_pairs": len(data["preferences"]), "final_reward_margin": last.get("rewards/margins", nan),
                        "final_logps_chosen": last.get("logps/chosen", nan)}
        else:
            summary |= {"train_prompts": len(data["prompts"]), "final_reward": last.get("reward", nan)}
        run.metrics(summary)
        run.artifact(out_dir / f"{o.algorithm}_curves.png", "plots")
        adapter = bool(o.lora and not o.lora.merge)
        start = read_start(Path(policy))  # the genealogy: the version this round started from, and the round
        version = register_model(out_dir / "policy", "rlaif-policy", "policy", f"{o.algorithm} on AI feedback"
                                 + (" (LoRA adapter only; needs its base model)" if adapter else ""), alias="challenger",
                                 tags={"rlaif.round": start["round"], "rlaif.parent": start["parent"],
                                       "rlaif.parent_version": start["version"] or "none"})
        # evaluate reads this to promote the right version; lineage starts from the version's run
        write_json(out_dir / "registered.json", {"name": "rlaif-policy", "version": version, "run_id": run.run_id,
                                                 "algorithm": o.algorithm})
    return out_dir / "policy"


# ---------------------------------------------------------------------------------------------------------------------
# inputs: every problem is an InputError (exit code 2) naming the file, before any model loads


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
        data["preferences"] = _read_preferences(Path(preferences), o)
        return data
    if prompts is None:
        raise InputError(f"algorithm {o.algorithm!r} needs --prompts (the training prompts it samples answers to)")
    data["prompts"] = read_prompts(Path(prompts))
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


def _read_preferences(path: Path, o: OptimizePolicyConfig) -> list[dict]:
    """The preference pairs (rlaif.records' one reader), at least one batch (and two) of them."""
    from rlaif.records import read_preferences

    rows = read_preferences(path, max(2, o.batch_size), "optimize_policy.batch_size")
    return [row.model_dump() for row in rows]


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _refusals(markers: Path | None):
    if markers is None:
        return None
    from rlaif.refusal import RefusalClassifier

    return RefusalClassifier(Path(markers))


def _build_reward(cfg: PipelineConfig, o: OptimizePolicyConfig, reward_model: Path | None, data: dict, refusals):
    from rlaif.rewards import JudgeReward, RewardModelReward

    if o.algorithm in ("grpo", "rloo"):
        return RewardModelReward(Path(reward_model), refusals)
    from rlaif.judges import build_judge

    judge = build_judge(cfg.judge, data["constitution"], data["templates"])
    return JudgeReward(judge, o.judge_reward, cfg.judge.both_orders, refusals)


def _with_lora(model, o: OptimizePolicyConfig, seed: int):
    """LoRA adapters when the params ask for them, initialised from the seed (reproducible runs)."""
    from transformers import set_seed

    from rlaif.training import apply_lora

    if o.lora is not None:
        set_seed(seed)
    return apply_lora(model, o.lora, "CAUSAL_LM")


def _save(trainer, tokenizer, o: OptimizePolicyConfig, out_dir: Path, checkpoints: Path, history: list[dict]) -> None:
    from rlaif.training import plot_curves, save_atomically

    tokenizer.padding_side = "left"  # what generation (evaluate) needs
    save_atomically(trainer.model, tokenizer, out_dir / "policy", merge_lora=o.lora.merge if o.lora else True)
    shutil.rmtree(checkpoints, ignore_errors=True)
    keys = CURVES["dpo" if o.algorithm == "dpo" else "online"]
    plot_curves(history, keys, out_dir / f"{o.algorithm}_curves.png", f"optimize_policy ({o.algorithm})")


# ---------------------------------------------------------------------------------------------------------------------
# dpo


def _train_dpo(cfg: PipelineConfig, o: OptimizePolicyConfig, rows: list[dict], policy: Path, out_dir: Path,
               checkpoints: Path, refusals) -> list[dict]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from rlaif.models import format_completion, format_prompt, load_policy
    from rlaif.training import MlflowSteps, train_resumably, trainer_kwargs

    model, tokenizer = load_policy(policy, for_generation=False)
    reference = None
    if o.lora is None:  # a frozen copy: DPO's reference and the probe's KL baseline (LoRA disables its adapters instead)
        reference, _ = load_policy(policy, for_generation=False)
        reference.eval()
    model = _with_lora(model, o, cfg.seed)
    tokenizer.padding_side = "right"
    soft = o.soft_labels != "none"
    data = Dataset.from_list([
        {"prompt": format_prompt(tokenizer, x["prompt"]),
         "chosen": format_completion(tokenizer, x["chosen"]),
         "rejected": format_completion(tokenizer, x["rejected"]),
         **({"target": _soft_target(o, x)} if soft else {})}
        for x in rows
    ])
    args = DPOConfig(beta=o.beta, loss_type=o.loss_type, loss_weights=o.loss_weights, max_length=o.max_length,
                     precompute_ref_log_probs=soft, **trainer_kwargs(cfg.seed, o, checkpoints))
    steps = MlflowSteps("dpo")
    probe = SampleProbe(_probe_prompts(rows, o.probe_prompts), tokenizer, refusals, o.max_new_tokens, cfg.seed, reference)
    trainer_class = soft_label_dpo_trainer() if soft else DPOTrainer
    trainer = trainer_class(model=model, ref_model=reference, args=args, train_dataset=data, processing_class=tokenizer,
                            callbacks=[probe, steps])
    probe.trainer = trainer
    train_resumably(trainer, checkpoints, "optimize_policy")
    _save(trainer, tokenizer, o, out_dir, checkpoints, steps.history)
    return steps.history


def _soft_target(o: OptimizePolicyConfig, row: dict) -> float:
    """P(chosen better) that the sigmoid term learns: 1 - epsilon, or the judge's confidence in the pair."""
    return 1.0 - o.label_smoothing if o.soft_labels == "label_smoothing" else float(row["confidence"])


def _probe_prompts(rows: list[dict], n: int) -> list[str]:
    prompts = sorted({x["prompt"] for x in rows})
    stride = max(1, len(prompts) // max(n, 1))
    return prompts[::stride][:n]


def soft_label_dpo_trainer():
    """DPOTrainer whose sigmoid term has a soft target p per pair (conservative DPO, Mitchell 2023):
        -p log sigmoid(beta d) - (1 - p) log sigmoid(-beta d)  =  -log sigmoid(beta d) + (1 - p) beta d,
    d the DPO margin (policy minus reference log-ratio of chosen over rejected). TRL 1.16's "sigmoid"
    loss ignores DPOConfig.label_smoothing, so the (1 - p) beta d term is added here to TRL's own loss.
    At the start (d = 0) a pair pulls with weight 2p - 1: confident pairs pull hardest, and each stops
    once the policy prefers its chosen answer with probability p. The reference log-probabilities are
    precomputed, so the policy's forward is the only one in a step; a forward hook reads its per-token
    log-probabilities."""
    from trl import DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    class TargetCollator:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, examples):
            import torch

            batch = self.inner(examples)
            batch["target"] = torch.tensor([float(e["target"]) for e in examples])
            return batch

    class SoftLabelDPO(DPOTrainer):
        def __init__(self, *args, processing_class=None, **kwargs):
            config = kwargs["args"]
            tokenizer = processing_class
            kwargs["data_collator"] = TargetCollator(DataCollatorForPreference(
                pad_token_id=tokenizer.pad_token_id, max_length=config.max_length,
                truncation_mode=config.truncation_mode, pad_to_multiple_of=config.pad_to_multiple_of))
            super().__init__(*args, processing_class=processing_class, **kwargs)
            types = list(self.loss_types)
            self.sigmoid_weight = self.loss_weights[types.index("sigmoid")]

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if "target" not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, "target"]

        def compute_ref_log_probs(self, model, inputs):
            return super().compute_ref_log_probs(model, {k: v for k, v in inputs.items() if k != "target"})

        def _compute_loss(self, model, inputs, return_outputs):
            target = inputs.pop("target")
            captured = []
            handle = model.register_forward_hook(lambda module, args, output: captured.append(output))
            try:
                result = super()._compute_loss(model, inputs, return_outputs)
            finally:
                handle.remove()
            mask = inputs["completion_mask"][..., 1:]
            logps = (captured[0].log_probs[:, -mask.size(1):] * mask).sum(dim=1)
            chosen, rejected = logps.chunk(2, dim=0)
            margin = (chosen - inputs["ref_chosen_logps"]) - (rejected - inputs["ref_rejected_logps"])
            extra = self.sigmoid_weight * ((1.0 - target.to(margin.dtype)) * self.beta * margin).mean()
            if return_outputs:
                return result[0] + extra, result[1]
            return result + extra

    return SoftLabelDPO


class SampleProbe(TrainerCallback):
    """DPO trains on fixed pairs and samples nothing; at each logging step this samples one answer to
    each of a fixed set of training prompts and adds to the step's logs: the refusal rate (the
    evaluator's classifier), the mean completion length in tokens, and the per-token KL to the
    starting policy (the k3 estimator GRPO logs). Sampling runs under a forked RNG, so training draws
    the same random numbers with or without it."""

    def __init__(self, prompts: list[str], tokenizer, refusals, max_new_tokens: int, seed: int, reference=None):
        self.prompts, self.tokenizer, self.refusals = prompts, tokenizer, refusals
        self.max_new_tokens, self.seed, self.reference = max_new_tokens, seed, reference
        self.trainer = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs or self.trainer is None or not self.prompts:
            return
        logs.update(self.measure(self.trainer.model, state.global_step))

    def measure(self, model, step: int) -> dict[str, float]:
        import contextlib

        import torch

        from rlaif.generation import derived_seed
        from rlaif.models import format_prompt

        tok = self.tokenizer
        batch = tok([format_prompt(tok, p) for p in self.prompts], return_tensors="pt", padding=True,
                    padding_side="left", add_special_tokens=False).to(model.device)
        was_training = model.training
        model.eval()
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                torch.manual_seed(derived_seed(self.seed, "probe", step))
                out = model.generate(**batch, do_sample=True, temperature=1.0, max_new_tokens=self.max_new_tokens,
                                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                completion = out[:, batch["input_ids"].shape[1]:]
                is_eos = completion == tok.eos_token_id
                ended = is_eos.cumsum(dim=1) - is_eos.long()  # tokens after the first eos
                mask = (ended == 0).long()
                attention = torch.cat([batch["attention_mask"], mask], dim=1)
                policy_logps = _token_logps(model, out, attention, completion.shape[1])
                if self.reference is not None:
                    reference_logps = _token_logps(self.reference, out, attention, completion.shape[1])
                else:
                    disable = getattr(model, "disable_adapter", None)
                    with disable() if disable else contextlib.nullcontext():
                        reference_logps = _token_logps(model, out, attention, completion.shape[1])
        finally:
            model.train(was_training)
        diff = (reference_logps - policy_logps) * mask
        kl = ((torch.exp(diff) - diff - 1) * mask).sum() / mask.sum().clamp(min=1)
        texts = [t.strip() for t in tok.batch_decode(completion, skip_special_tokens=True)]
        metrics = {"kl": float(kl), "completions/mean_length": float(mask.sum(dim=1).float().mean())}
        if self.refusals is not None:
            metrics["refusal_rate"] = sum(self.refusals.is_refusal(t) for t in texts) / len(texts)
        return metrics


def _token_logps(model, sequences, attention, n_completion: int):
    import torch

    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)  # left padding: count positions from the first real token
    logits = model(input_ids=sequences, attention_mask=attention, position_ids=positions).logits
    logits = logits[:, -n_completion - 1:-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, sequences[:, -n_completion:].unsqueeze(-1)).squeeze(-1)


# ---------------------------------------------------------------------------------------------------------------------
# grpo, rloo, online_judge


def _train_online(cfg: PipelineConfig, o: OptimizePolicyConfig, prompts: list, policy: Path, out_dir: Path,
                  checkpoints: Path, reward) -> list[dict]:
    from datasets import Dataset

    from rlaif.generation import generate_texts
    from rlaif.models import format_prompt, load_policy
    from rlaif.training import MlflowSteps, train_resumably, trainer_kwargs

    model, tokenizer = load_policy(policy, for_generation=True)
    rows = [{"prompt": format_prompt(tokenizer, p.prompt), "raw_prompt": p.prompt} for p in prompts]
    if o.algorithm == "online_judge" and o.judge_reward == "pairwise":
        # the reference each sample is judged against: the starting policy's greedy answer
        answers = generate_texts(model, tokenizer, [p.prompt for p in prompts], o.max_new_tokens, None, cfg.seed,
                                 label="optimize_policy: reference answers")
        for row, answer in zip(rows, answers):
            row["reference"] = answer
    model = _with_lora(model, o, cfg.seed)
    trainer_name = o.algorithm if o.algorithm in ("grpo", "rloo") else o.online_trainer
    common = dict(num_generations=o.num_generations, max_completion_length=o.max_new_tokens,
                  temperature=o.temperature, beta=o.kl_coef, log_completions=False,
                  **trainer_kwargs(cfg.seed, o, checkpoints))
    if trainer_name == "grpo":
        from trl import GRPOConfig as Config, GRPOTrainer as Trainer

        args = Config(**common)
    else:
        from trl import RLOOConfig as Config, RLOOTrainer as Trainer

        args = Config(normalize_advantages=True, **common)
    steps = MlflowSteps(o.algorithm)
    trainer = Trainer(model=model, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                      processing_class=tokenizer, callbacks=[steps])
    train_resumably(trainer, checkpoints, "optimize_policy")
    _save(trainer, tokenizer, o, out_dir, checkpoints, steps.history)
    return steps.history
