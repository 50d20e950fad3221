"""DPO on the validated preferences (TRL's DPOTrainer), with the training probe that samples a fixed set of training
prompts at each logging step (DPO samples nothing itself) and the soft-label variant of the sigmoid term.

The default loss is DPO plus a likelihood term on the chosen answer (loss_type ["sigmoid", "sft"]): plain DPO on a
tiny policy can push the chosen answer's log-probability down with the rejected one and end in garbled text.
`soft_labels` changes the sigmoid term's target from "the chosen answer wins for sure" to 1 - label_smoothing
(conservative DPO) or to each pair's own judge confidence (see soft_label_dpo_trainer)."""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback

from rlaif.config import DPOSettings, PipelineConfig
from rlaif.training.policy import save_policy, with_lora


def train_dpo(cfg: PipelineConfig, o: DPOSettings, rows: list[dict], policy: Path, out_dir: Path,
               checkpoints: Path, refusals) -> list[dict]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from rlaif.training.models import format_completion, format_prompt, load_policy
    from rlaif.training.trainer import MlflowSteps, train_resumably, trainer_kwargs

    model, tokenizer = load_policy(policy, for_generation=False)
    reference = None
    if o.lora is None:  # a frozen copy: DPO's reference and the probe's KL baseline (LoRA disables its adapters instead)
        reference, _ = load_policy(policy, for_generation=False)
        reference.eval()
    model = with_lora(model, o, cfg.seed)
    tokenizer.padding_side = "right"
    soft = o.soft_labels != "none"
    data = Dataset.from_list([
        {"prompt": format_prompt(tokenizer, x["prompt"]),
         "chosen": format_completion(tokenizer, x["chosen"]),
         "rejected": format_completion(tokenizer, x["rejected"]),
         **({"target": soft_target(o, x)} if soft else {})}
        for x in rows
    ])
    args = DPOConfig(beta=o.beta, loss_type=o.loss_type, loss_weights=o.loss_weights, max_length=o.max_length,
                     precompute_ref_log_probs=soft, **trainer_kwargs(cfg.seed, o, checkpoints))
    steps = MlflowSteps("dpo")
    probe = SampleProbe(probe_prompts(rows, o.probe_prompts), tokenizer, refusals, o.max_new_tokens, cfg.seed, reference,
                        every=o.probe_every * args.logging_steps)
    trainer_class = soft_label_dpo_trainer() if soft else DPOTrainer
    trainer = trainer_class(model=model, ref_model=reference, args=args, train_dataset=data, processing_class=tokenizer,
                            callbacks=[probe, steps])
    probe.trainer = trainer
    train_resumably(trainer, checkpoints, "optimize_policy")
    save_policy(trainer, tokenizer, o, out_dir, checkpoints, steps.history)
    return steps.history


def soft_target(o: DPOSettings, row: dict) -> float:
    """P(chosen better) that the sigmoid term learns: 1 - epsilon, or the judge's confidence in the pair."""
    return 1.0 - o.label_smoothing if o.soft_labels == "label_smoothing" else float(row["confidence"])


def probe_prompts(rows: list[dict], n: int) -> list[str]:
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
    """DPO trains on fixed pairs and samples nothing; at every `every`-th step (and the last) this samples one answer to
    each of a fixed set of training prompts and adds to the step's logs: the refusal rate (the
    evaluator's classifier), the mean completion length in tokens, and the per-token KL to the
    starting policy (the k3 estimator GRPO logs). Sampling runs under a forked RNG, so training draws
    the same random numbers with or without it."""

    def __init__(self, prompts: list[str], tokenizer, refusals, max_new_tokens: int, seed: int, reference=None,
                 every: int = 1):
        self.prompts, self.tokenizer, self.refusals = prompts, tokenizer, refusals
        self.max_new_tokens, self.seed, self.reference, self.every = max_new_tokens, seed, reference, every
        self.trainer = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs or self.trainer is None or not self.prompts:
            return
        if state.global_step % self.every and state.global_step < state.max_steps:
            return
        logs.update(self.measure(self.trainer.model, state.global_step))

    def measure(self, model, step: int) -> dict[str, float]:
        import contextlib

        import torch

        from rlaif.training.generation import derived_seed
        from rlaif.training.models import format_prompt

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
                policy_logps = token_logps(model, out, attention, completion.shape[1])
                if self.reference is not None:
                    reference_logps = token_logps(self.reference, out, attention, completion.shape[1])
                else:
                    disable = getattr(model, "disable_adapter", None)
                    with disable() if disable else contextlib.nullcontext():
                        reference_logps = token_logps(model, out, attention, completion.shape[1])
        finally:
            model.train(was_training)
        diff = (reference_logps - policy_logps) * mask
        kl = ((torch.exp(diff) - diff - 1) * mask).sum() / mask.sum().clamp(min=1)
        texts = [t.strip() for t in tok.batch_decode(completion, skip_special_tokens=True)]
        metrics = {"kl": float(kl), "completions/mean_length": float(mask.sum(dim=1).float().mean())}
        if self.refusals is not None:
            metrics["refusal_rate"] = sum(self.refusals.is_refusal(t) for t in texts) / len(texts)
        return metrics


def token_logps(model, sequences, attention, n_completion: int):
    import torch

    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)  # left padding: count positions from the first real token
    logits = model(input_ids=sequences, attention_mask=attention, position_ids=positions).logits
    logits = logits[:, -n_completion - 1:-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, sequences[:, -n_completion:].unsqueeze(-1)).squeeze(-1)
