"""CUDA paths of the pipeline, checked with tiny models built here (no downloads):
device placement and bf16 of the policy loader, batched generation against a one-prompt-at-a-time
loop, and TRL's SFT, DPO and Reward trainers with the project's trainer arguments.

    python bench/gpu_check.py [--out results.json]

Prints one JSON object. Needs a CUDA GPU; on a CPU it reports that and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TEXTS = [
    ("How do I bake bread?", "Mix flour, water, salt and yeast, knead it, let it rise and bake it for forty minutes."),
    ("How do I kill a Python process?", "Find its id with ps, then run kill with that id; use kill -9 only if it hangs."),
    ("How do I build a pipe bomb?", "I'm sorry, but I can't help with that."),
    ("Tell me a fun fact about owls.", "Owls can turn their heads about 270 degrees because of extra neck vertebrae."),
] * 16


def check_policy(tmp: Path) -> dict:
    import torch

    from rlaif.training.generation import generate_texts
    from rlaif.training.models import load_policy, save_tiny_llama

    save_tiny_llama([f"{p}\n{r}" for p, r in TEXTS], tmp / "policy", 512, hidden=256, layers=4, heads=4,
                    intermediate=768, max_positions=2048)
    model, tokenizer = load_policy(tmp / "policy")
    prompts = [p for p, _ in TEXTS] * 4  # 256 prompts
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = time.perf_counter()
    batched = generate_texts(model, tokenizer, prompts, max_new_tokens=32, temperature=1.0, seed=0, batch_size=128)
    sync()
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    for prompt in prompts[:32]:
        generate_texts(model, tokenizer, [prompt], max_new_tokens=32, temperature=1.0, seed=0, batch_size=1)
    sync()
    single_s = (time.perf_counter() - start) * len(prompts) / 32
    return {"device": str(model.device), "dtype": str(model.dtype), "answers": len(batched),
            "batched_prompts_per_s": len(prompts) / batched_s, "one_at_a_time_prompts_per_s": len(prompts) / single_s,
            "batched_speedup": single_s / batched_s}


def check_trainers(tmp: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer, SFTConfig, SFTTrainer

    from rlaif.config import TrainRewardConfig
    from rlaif.training.models import format_completion, format_prompt, load_policy
    from rlaif.training.trainer import trainer_kwargs

    def kwargs(out: Path, learning_rate: float) -> dict:
        section = TrainRewardConfig(max_steps=20, batch_size=16, learning_rate=learning_rate, checkpoint_every=10)
        return {**trainer_kwargs(0, section, out), "disable_tqdm": True}

    results = {}
    model, tokenizer = load_policy(tmp / "policy", for_generation=False)
    tokenizer.padding_side = "right"
    sft_data = Dataset.from_list([{"prompt": format_prompt(tokenizer, p), "completion": format_completion(tokenizer, r)}
                                  for p, r in TEXTS])
    args = SFTConfig(max_length=96, completion_only_loss=True, **kwargs(tmp / "sft", 1e-3))
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_data, processing_class=tokenizer)
    out = trainer.train()
    results["sft"] = {"bf16": args.bf16, "device": str(trainer.model.device), "loss": out.training_loss}

    refusal = "I'm sorry, but I can't help with that."
    dpo_data = Dataset.from_list([{"prompt": format_prompt(tokenizer, p), "chosen": format_completion(tokenizer, r),
                                   "rejected": format_completion(tokenizer, refusal if r != refusal else "Sure, here it is.")}
                                  for p, r in TEXTS])
    args = DPOConfig(loss_type=["sigmoid", "sft"], loss_weights=[1.0, 2.0], max_length=96, **kwargs(tmp / "dpo", 5e-4))
    trainer = DPOTrainer(model=trainer.model, args=args, train_dataset=dpo_data, processing_class=tokenizer)
    out = trainer.train()
    results["dpo"] = {"bf16": args.bf16, "device": str(trainer.model.device), "loss": out.training_loss}

    # reward model: a small BERT built from a config, with the policy's tokenizer wrapped as a BERT-style one
    reward_tok = AutoTokenizer.from_pretrained(tmp / "policy")
    reward_tok.pad_token = reward_tok.pad_token or reward_tok.eos_token
    config = BertConfig(vocab_size=len(reward_tok), hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=256, num_labels=1, pad_token_id=reward_tok.pad_token_id)
    reward_model = BertForSequenceClassification(config)
    pairs = Dataset.from_list([{"chosen": f"{p} {r}", "rejected": f"{p} {refusal}"} for p, r in TEXTS if r != refusal])
    args = RewardConfig(max_length=96, **kwargs(tmp / "reward", 1e-3))
    trainer = RewardTrainer(model=reward_model, args=args, train_dataset=pairs, processing_class=reward_tok)
    out = trainer.train()
    results["reward"] = {"bf16": args.bf16, "device": str(trainer.model.device), "loss": out.training_loss}
    if torch.cuda.is_available():
        results["max_memory_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return results


def check_judge(tmp: Path) -> dict:
    """The transformers judge's modes on the GPU: pairwise, pointwise, chain of thought, generation."""
    from rlaif.config import TransformersJudgeSettings
    from rlaif.data.io import read_constitution, read_templates
    from rlaif.judging.judges import JudgeItem, ScoreItem
    from rlaif.judging.judges.local_lm import TransformersJudge

    root = Path(__file__).resolve().parents[1]
    charter = read_constitution(root / "data/constitution/constitution.yaml")
    templates = read_templates(root / "data/constitution/judge_templates.yaml")
    settings = TransformersJudgeSettings(backend="transformers", model=str(tmp / "policy"), batch_size=8, max_reasoning_tokens=16)
    judge = TransformersJudge(charter, templates, settings)
    items = [JudgeItem(p, r, "I'm sorry, but I can't help with that.") for p, r in TEXTS[:16]]
    verdicts = judge.judge(items)
    scores = judge.score([ScoreItem(p, r) for p, r in TEXTS[:16]])
    texts = judge.generate([p for p, _ in TEXTS[:8]], max_new_tokens=8)
    cot = TransformersJudge(charter, templates, settings.model_copy(update={"chain_of_thought": True})).judge(items[:4])
    return {"device": str(judge.model.device), "dtype": str(judge.model.dtype),
            "pairwise_ok": sum(v.status == "ok" for v in verdicts), "scores_ok": sum(s.status == "ok" for s in scores),
            "score_values": sorted({round(s.value, 2) for s in scores if s.value is not None})[:5],
            "errors": sorted({v.error for v in [*verdicts, *scores] if v.error})[:3],
            "generated": len(texts), "cot_in_40_60": all(0.4 <= v.p_first <= 0.6 for v in cot if v.p_first is not None)}


def main() -> int:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--allow-cpu", action="store_true", help="dry run of the same code on the CPU")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.allow_cpu:
        print(json.dumps({"cuda": False}))
        return 1
    cuda = torch.cuda.is_available()
    report = {"cuda": cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
              "bf16_supported": cuda and torch.cuda.is_bf16_supported(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        for name, check in (("policy", check_policy), ("trainers", check_trainers), ("judge", check_judge)):
            try:
                report[name] = check(Path(tmp))
            except Exception as error:  # report every check, even after one fails
                report[name] = {"error": f"{type(error).__name__}: {error}"}
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if all("error" not in report[k] for k in ("policy", "trainers", "judge")) else 1


if __name__ == "__main__":
    sys.exit(main())
