"""MLflow pyfunc wrappers, so registered versions of rlaif-policy and rlaif-reward load and predict."""

from __future__ import annotations

import mlflow.pyfunc


class PolicyModel(mlflow.pyfunc.PythonModel):
    """predict(list of prompts) -> list of greedy answers."""

    def load_context(self, context):
        from rlaif.models import load_policy

        self.model, self.tokenizer = load_policy(context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        from rlaif.generation import generate_texts

        prompts = list(model_input.iloc[:, 0]) if hasattr(model_input, "iloc") else list(model_input)
        return generate_texts(self.model, self.tokenizer, prompts, max_new_tokens=48, temperature=None, seed=0)


class RewardModel(mlflow.pyfunc.PythonModel):
    """predict(list of "prompt\\tanswer" texts or a frame with prompt, response) -> scalar rewards."""

    def load_context(self, context):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(context.artifacts["model_dir"])
        self.model = AutoModelForSequenceClassification.from_pretrained(context.artifacts["model_dir"], num_labels=1).eval()

    def predict(self, context, model_input, params=None):
        import torch

        texts = list(model_input.iloc[:, 0]) if hasattr(model_input, "iloc") else list(model_input)
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            return self.model(**batch).logits[:, 0].tolist()
