"""A bare TRL script doing the optimize_policy stage's default DPO training, for bench/train_overhead.py:
the same policy, preferences, DPOConfig values and prompt format; no MLflow, no checkpoints, no plots,
no registry, no probes. Saves the trained model like the stage does.

    python bench/bare_trl_dpo.py --policy DIR --preferences FILE --out DIR [--params FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--preferences", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--params", type=Path)
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from rlaif.config.params import load_config

    o = load_config(args.params).optimize_policy
    o = o.resolved() if hasattr(o, "resolved") else o
    tokenizer = AutoTokenizer.from_pretrained(args.policy)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    tokenizer.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(args.policy)
    rows = [json.loads(line) for line in args.preferences.read_text().splitlines() if line.strip()]
    data = Dataset.from_list([{"prompt": f"User: {r['prompt']}\nAssistant:", "chosen": f" {r['chosen']}",
                               "rejected": f" {r['rejected']}"} for r in rows])
    config = DPOConfig(
        output_dir=str(args.out / "trainer"), beta=o.beta, loss_type=o.loss_type, loss_weights=o.loss_weights,
        max_length=o.max_length, seed=0, max_steps=o.max_steps, per_device_train_batch_size=o.batch_size,
        learning_rate=o.learning_rate, lr_scheduler_type="cosine", warmup_steps=max(1, o.max_steps // 20),
        logging_steps=max(1, o.max_steps // 25), save_strategy="no", report_to="none", bf16=False,
        use_cpu=not torch.cuda.is_available(), disable_tqdm=True,
    )
    trainer = DPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    trainer.model.save_pretrained(args.out / "policy")
    tokenizer.save_pretrained(args.out / "policy")


if __name__ == "__main__":
    main()
