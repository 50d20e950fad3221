"""Online policy optimisation: TRL's GRPOTrainer or RLOOTrainer on fresh samples of the training prompts, rewarded by
the trained reward model (grpo, rloo) or by the judge itself (online_judge: its pointwise score mapped to [-1, 1],
or pairwise against the starting policy's greedy answer, "direct RLAIF", Lee et al. 2023)."""

from __future__ import annotations

from pathlib import Path

from rlaif.config import OnlineJudgeSettings, OnlineSettings, PipelineConfig
from rlaif.training.policy import save_policy, with_lora


def build_reward(cfg: PipelineConfig, o: OnlineSettings | OnlineJudgeSettings, reward_model: Path | None, data: dict,
                 refusals):
    from rlaif.training.rewards import JudgeReward, RewardModelReward

    if isinstance(o, OnlineSettings):  # grpo, rloo
        assert reward_model is not None  # check_inputs requires it for grpo and rloo
        return RewardModelReward(Path(reward_model), refusals)
    from rlaif.judging.judges import build_judge

    judge = build_judge(cfg.judge, data["constitution"], data["templates"])
    return JudgeReward(judge, o.judge_reward, cfg.judge.both_orders, refusals)


def train_online(cfg: PipelineConfig, o: OnlineSettings | OnlineJudgeSettings, prompts: list, policy: Path,
                 out_dir: Path, checkpoints: Path, reward) -> list[dict]:
    from datasets import Dataset

    from rlaif.training.generation import generate_texts
    from rlaif.training.models import format_prompt, load_policy
    from rlaif.training.trainer import MlflowSteps, train_resumably, trainer_kwargs

    model, tokenizer = load_policy(policy, for_generation=True)
    rows = [{"prompt": format_prompt(tokenizer, p.prompt), "raw_prompt": p.prompt} for p in prompts]
    if o.algorithm == "online_judge" and o.judge_reward == "pairwise":
        # the reference each sample is judged against: the starting policy's greedy answer
        answers = generate_texts(model, tokenizer, [p.prompt for p in prompts], o.max_new_tokens, None, cfg.seed,
                                 label="optimize_policy: reference answers")
        for row, answer in zip(rows, answers):
            row["reference"] = answer
    model = with_lora(model, o, cfg.seed)
    trainer_name = o.online_trainer if isinstance(o, OnlineJudgeSettings) else o.algorithm
    common = dict(num_generations=o.num_generations, max_completion_length=o.max_new_tokens,
                  temperature=o.temperature, beta=o.kl_coef, log_completions=False,
                  **trainer_kwargs(cfg.seed, o, checkpoints))
    if trainer_name == "grpo":
        from trl import GRPOConfig as Config
        from trl import GRPOTrainer as Trainer

        args = Config(**common)
    else:
        from trl import RLOOConfig as Config
        from trl import RLOOTrainer as Trainer

        args = Config(normalize_advantages=True, **common)
    steps = MlflowSteps(o.algorithm)
    trainer = Trainer(model=model, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                      processing_class=tokenizer, callbacks=[steps])
    train_resumably(trainer, checkpoints, "optimize_policy")
    save_policy(trainer, tokenizer, o, out_dir, checkpoints, steps.history)
    return steps.history
