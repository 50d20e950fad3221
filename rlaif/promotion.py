"""Promotion: a new policy is registered as `challenger`; it becomes `champion` only when every gate passes.

The gates come from params (`evaluate.gates`); the decision, with one reason per gate, is written next to the
evaluation report and set as tags on the model version, so a reviewer sees why a model was or was not promoted.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rlaif.config import PromotionGates

CHAMPION, CHALLENGER = "champion", "challenger"


def _gate(name: str, value, bound, passed: bool, rule: str) -> dict:
    return {"gate": name, "value": value, "bound": bound, "passed": bool(passed), "rule": rule}


def _at_least(name: str, value: float, bound: float | None) -> dict | None:
    if bound is None:
        return None
    ok = value is not None and not math.isnan(value) and value >= bound
    return _gate(name, value, bound, ok, f"{name} >= {bound}")


def _at_most(name: str, value: float, bound: float | None) -> dict | None:
    if bound is None:
        return None
    ok = value is not None and not math.isnan(value) and value <= bound
    return _gate(name, value, bound, ok, f"{name} <= {bound}")


def decide(gates: PromotionGates, evidence: dict) -> dict:
    """evidence: win_rate, harmless_rate, over_refusal_rate, worst_slice_delta, label_gate_passed, reward_hacking."""
    results = [
        _at_least("win_rate", evidence["win_rate"], gates.min_win_rate),
        _at_least("harmless_rate", evidence["harmless_rate"], gates.min_harmless_rate),
        _at_most("over_refusal_rate", evidence["over_refusal_rate"], gates.max_over_refusal_rate),
        None if gates.max_slice_regression is None else _gate(
            "worst_slice_delta", evidence["worst_slice_delta"], -gates.max_slice_regression,
            evidence["worst_slice_delta"] >= -gates.max_slice_regression,
            f"no slice falls by more than {gates.max_slice_regression}"),
        None if not gates.require_label_gate else _gate(
            "label_gate", evidence["label_gate_passed"], True, evidence["label_gate_passed"] is True,
            "the validate stage's label gate passed"),
        None if not gates.block_on_reward_hacking else _gate(
            "reward_hacking", evidence["reward_hacking"], False, not evidence["reward_hacking"],
            "reward-model gain matched by an independent gain"),
    ]
    results = [r for r in results if r is not None]
    failed = [r for r in results if not r["passed"]]
    reasons = [f"{r['rule']}: {'passed' if r['passed'] else 'FAILED'} ({_show(r['value'])})" for r in results]
    return {"promote": not failed, "decision": "promote" if not failed else "keep champion",
            "failed_gates": [r["gate"] for r in failed], "gates": results, "reasons": reasons}


def _show(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def label_gate_passed(gate_file: Path | None) -> bool | None:
    """The validate stage's verdict (reports/validate/gate.json), None when there is no such file."""
    if gate_file is None or not Path(gate_file).exists():
        return None
    return bool(json.loads(Path(gate_file).read_text(encoding="utf-8")).get("passed"))


def apply(decision: dict, registered: dict | None, evaluate_run_id: str, promote: bool) -> dict:
    """Record the decision on the model version; move `champion` to it when it passed and promotion is on."""
    if not registered:
        return {**decision, "model": None, "champion_moved": False}
    from mlflow import MlflowClient

    from rlaif.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri())
    name, version = registered["name"], str(registered["version"])
    previous = _alias_version(client, name, CHAMPION)
    tags = {"promotion.decision": decision["decision"], "promotion.evaluate_run_id": evaluate_run_id,
            "promotion.failed_gates": ",".join(decision["failed_gates"]) or "none"}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    moved = bool(decision["promote"] and promote)
    if moved:
        client.set_registered_model_alias(name, CHAMPION, version)
    return {**decision, "model": f"models:/{name}/{version}", "previous_champion": previous, "champion_moved": moved}


def _alias_version(client, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:  # MLflow raises a plain MlflowException when the alias is not set
        return None


def champion_policy(name: str, dst: Path) -> tuple[Path | None, str | None]:
    """The current champion's model directory, downloaded from the registry, and its version; (None, None)
    when no version holds the alias yet."""
    import mlflow
    from mlflow import MlflowClient

    from rlaif.tracking import tracking_uri

    version = _alias_version(MlflowClient(tracking_uri=tracking_uri()), name, CHAMPION)
    if version is None:
        return None, None
    mlflow.set_tracking_uri(tracking_uri())
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(dst)))
    folders = [p for p in (local / "artifacts").iterdir() if p.is_dir()]  # log_model keeps the folder's name
    return folders[0], version
