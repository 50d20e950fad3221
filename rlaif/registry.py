"""The model registry: MLflow pyfunc wrappers, so registered versions of rlaif-policy and rlaif-reward load and
predict, and `register_model`, which logs a model directory as one of them and registers a version."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc


class PolicyModel(mlflow.pyfunc.PythonModel):
    """predict(list of prompts) -> list of greedy answers."""

    def load_context(self, context):
        from rlaif.training.models import load_policy

        self.model, self.tokenizer = load_policy(context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        from rlaif.training.generation import generate_texts

        prompts = list(model_input.iloc[:, 0]) if hasattr(model_input, "iloc") else list(model_input)
        return generate_texts(self.model, self.tokenizer, prompts, max_new_tokens=48, temperature=None, seed=0)


class RewardModel(mlflow.pyfunc.PythonModel):
    """predict(a frame with prompt and response columns, or a list of {prompt, response}) -> scalar rewards,
    scored on the text the model was trained on (rlaif.training.reward_model)."""

    def load_context(self, context):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(context.artifacts["model_dir"])
        self.model = AutoModelForSequenceClassification.from_pretrained(context.artifacts["model_dir"], num_labels=1).eval()

    def predict(self, context, model_input, params=None):
        from rlaif.training.reward_model import score

        rows = model_input.to_dict("records") if hasattr(model_input, "to_dict") else list(model_input)
        missing = [i for i, row in enumerate(rows) if not {"prompt", "response"} <= set(row)]
        if missing:
            raise ValueError(f"rlaif-reward predict: row {missing[0]} has no 'prompt' and 'response' "
                             "(pass a frame with those two columns)")
        return score(self.model, self.tokenizer, [r["prompt"] for r in rows], [r["response"] for r in rows])


def register_model(local_dir: Path, name: str, kind: str, description: str = "", alias: str | None = None,
                   tags: dict[str, str] | None = None) -> str:
    """Log a model directory as an MLflow pyfunc model in the active run and register a new version
    (given `alias`, e.g. `challenger`, which then points at it), with `tags` on the version."""
    import mlflow

    python_model = PolicyModel() if kind == "policy" else RewardModel()
    info = mlflow.pyfunc.log_model(
        name=kind,
        python_model=python_model,
        artifacts={"model_dir": str(local_dir)},
        registered_model_name=name,
        pip_requirements=["torch", "transformers", "rlaif-pipeline"],
    )
    version = info.registered_model_version
    if description and version is not None:
        mlflow.MlflowClient().update_model_version(name, str(version), description=description)
    for key, value in (tags or {}).items():
        mlflow.MlflowClient().set_model_version_tag(name, str(version), key, str(value))
    if alias and version is not None:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, str(version))
    return str(version)
