"""optimize_policy: the new policy, by the algorithm that `optimize_policy.algorithm` names.

- dpo: TRL's DPOTrainer on the validated preferences. The default loss is DPO plus a likelihood term
  on the chosen answer (loss_type ["sigmoid", "sft"]): plain DPO on a tiny policy can push the chosen
  answer's log-probability down with the rejected one and end in garbled text. `soft_labels` changes
  the sigmoid term's target from "the chosen answer wins for sure" to 1 - label_smoothing
  (conservative DPO) or to each pair's own judge confidence (see SoftLabelDPO).
- grpo, rloo: TRL's GRPOTrainer or RLOOTrainer on fresh samples of the training prompts, rewarded by
  the trained reward model's scalar (rlaif.training.rewards.RewardModelReward), with a KL penalty to the
  starting policy (kl_coef).
- online_judge: the same online loop (GRPO by default, `online_trainer`), rewarded by the judge itself
  (rlaif.training.rewards.JudgeReward): its pointwise score mapped to [-1, 1], or pairwise against the starting
  policy's greedy answer ("direct RLAIF", Lee et al. 2023).

Every algorithm logs per step to MLflow (through MlflowSteps): its loss and reward, the KL to the
starting policy, the completion length and the refusal rate of sampled completions, by the
independent evaluator's refusal classifier (rlaif/evaluation/refusal.py). Online algorithms measure these on the
completions they train on; DPO samples a fixed set of training prompts at each logging step
(rlaif.training.dpo.SampleProbe). The curves are plotted to `<algorithm>_curves.png` and logged as an artifact.

With `optimize_policy.lora` the policy trains LoRA adapters; `lora.merge` saves them merged into a
plain model, or as adapters only (adapter + tokenizer), which rlaif.training.models.load_policy loads on top
of the base model the adapter config names. Checkpoints for resume work the same for every algorithm
(rlaif.training.trainer.train_resumably).
"""

from __future__ import annotations

from pathlib import Path

from rlaif.config import PipelineConfig
from rlaif.data.records import Registered, write_record
from rlaif.training.dpo import train_dpo
from rlaif.training.online import build_reward, train_online
from rlaif.training.policy import final_figures, policy_checkpoints
from rlaif.training.policy_inputs import algorithm_inputs, check_inputs, refusal_classifier


def optimize_policy(cfg: PipelineConfig, preferences: Path | None, policy: Path, out_dir: Path,
                    prompts: Path | None = None, reward_model: Path | None = None, constitution: Path | None = None,
                    templates: Path | None = None, markers: Path | None = None) -> Path:
    from rlaif.lifecycle.rounds import read_start
    from rlaif.lifecycle.tracking import stage_run
    from rlaif.registry import register_model

    o = cfg.optimize_policy.resolved()
    out_dir = Path(out_dir)
    data = check_inputs(o, preferences, Path(policy), prompts, reward_model, constitution, templates, markers)
    used, dataset = algorithm_inputs(o.algorithm, preferences, prompts, reward_model, constitution, templates)
    with stage_run("optimize_policy", cfg, inputs={"base_policy": policy, **used}, datasets=dataset,
                   outputs={"optimize_policy": out_dir}) as run:
        checkpoints = policy_checkpoints(cfg, o, Path(policy), list(used.values()))
        refusals = refusal_classifier(markers)
        if o.algorithm == "dpo":
            history = train_dpo(cfg, o, data["preferences"], Path(policy), out_dir, checkpoints, refusals)
        else:
            reward = build_reward(cfg, o, reward_model, data, refusals)
            history = train_online(cfg, o, data["prompts"], Path(policy), out_dir, checkpoints, reward)
        run.metrics(final_figures(o.algorithm, history, data))
        run.artifact(out_dir / f"{o.algorithm}_curves.png", "plots")
        adapter = bool(o.lora and not o.lora.merge)
        start = read_start(Path(policy))  # the genealogy: the version this round started from, and the round
        version = register_model(out_dir / "policy", "rlaif-policy", "policy", f"{o.algorithm} on AI feedback"
                                 + (" (LoRA adapter only; needs its base model)" if adapter else ""), alias="challenger",
                                 tags={"rlaif.round": start.round, "rlaif.parent": start.parent,
                                       "rlaif.parent_version": start.version or "none"})
        # evaluate reads this to promote the right version; lineage starts from the version's run
        write_record(out_dir / "registered.json", Registered(name="rlaif-policy", version=str(version),
                                                             run_id=run.run_id, algorithm=o.algorithm))
    return out_dir / "policy"
