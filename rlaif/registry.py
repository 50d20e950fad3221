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
    """predict(a frame with prompt and response columns, or a list of {prompt, response}) -> scalar rewards,
    scored on the text the model was trained on (rlaif.reward_model)."""

    def load_context(self, context):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(context.artifacts["model_dir"])
        self.model = AutoModelForSequenceClassification.from_pretrained(context.artifacts["model_dir"], num_labels=1).eval()

    def predict(self, context, model_input, params=None):
        from rlaif.reward_model import score

        rows = model_input.to_dict("records") if hasattr(model_input, "to_dict") else list(model_input)
        missing = [i for i, row in enumerate(rows) if not {"prompt", "response"} <= set(row)]
        if missing:
            raise ValueError(f"rlaif-reward predict: row {missing[0]} has no 'prompt' and 'response' "
                             "(pass a frame with those two columns)")
        return score(self.model, self.tokenizer, [r["prompt"] for r in rows], [r["response"] for r in rows])
