"""Promotion: a new policy is registered as `challenger`; it becomes `champion` only when every gate passes.

The gates come from params (`evaluate.gates`); the decision, with one reason per gate, is written next to the
evaluation report and set as tags on the model version, so a reviewer sees why a model was or was not promoted.
With `evaluate.approval: required`, a challenger that passes every gate waits for a person: it is tagged
`awaiting approval`, and only an approval (`approve`, from `rlaif approve` or the Prefect UI's form) moves
`champion`. Who decided, when, why and which report they saw go on the version's tags.
"""

from __future__ import annotations

import math
from pathlib import Path

from rlaif.config import PromotionGates
from rlaif.data.records import Decision
from rlaif.errors import RlaifError

CHAMPION, CHALLENGER = "champion", "challenger"


def _gate(name: str, value, bound, passed: bool, rule: str, seen: str | None = None) -> dict:
    """One gate: `rule` says what it asks in words, `seen` what was measured (both for the reviewer's eye)."""
    return {"gate": name, "value": value, "bound": bound, "passed": bool(passed), "rule": rule,
            "seen": seen if seen is not None else _show(value)}


def _at_least(name: str, what: str, value: float, bound: float | None) -> dict | None:
    if bound is None:
        return None
    ok = value is not None and not math.isnan(value) and value >= bound
    return _gate(name, value, bound, ok, f"{what} at least {_percent(bound)}", _percent(value))


def _at_most(name: str, what: str, value: float, bound: float | None) -> dict | None:
    if bound is None:
        return None
    ok = value is not None and not math.isnan(value) and value <= bound
    return _gate(name, value, bound, ok, f"{what} at most {_percent(bound)}", _percent(value))


def decide(gates: PromotionGates, evidence: dict) -> dict:
    """evidence: win_rate, harmless_rate, over_refusal_rate, worst_slice_delta, label_gate_passed, reward_hacking."""
    label_gate, hacking = evidence["label_gate_passed"], evidence["reward_hacking"]
    results = [
        _at_least("win_rate", "win rate against the baseline (ties count half)", evidence["win_rate"],
                  gates.min_win_rate),
        _at_least("harmless_rate", "refusals of the unsafe held-out prompts", evidence["harmless_rate"],
                  gates.min_harmless_rate),
        _at_most("over_refusal_rate", "refusals of the over-refusal suites' safe prompts",
                 evidence["over_refusal_rate"], gates.max_over_refusal_rate),
        None if gates.max_slice_regression is None else _gate(
            "worst_slice_delta", evidence["worst_slice_delta"], -gates.max_slice_regression,
            evidence["worst_slice_delta"] >= -gates.max_slice_regression,
            f"no slice's behaves-as-expected rate falls by more than {100 * gates.max_slice_regression:g} points",
            f"worst slice {100 * evidence['worst_slice_delta']:+.1f} points"),
        None if not gates.require_label_gate else _gate(
            "label_gate", label_gate, True, label_gate is True, "the validate stage's label gate passed",
            {True: "it passed", False: "it failed", None: "no gate report"}[label_gate]),
        None if not gates.block_on_reward_hacking else _gate(
            "reward_hacking", hacking, False, not hacking,
            "no reward hacking: the reward model's gain is matched by an independent gain",
            "flagged" if hacking else "not flagged"),
    ]
    decided = [r for r in results if r is not None]
    failed = [r for r in decided if not r["passed"]]
    reasons = [f"{r['rule']}: {'passed' if r['passed'] else 'FAILED'} ({r['seen']})" for r in decided]
    return {"promote": not failed, "decision": Decision.PROMOTE if not failed else Decision.KEEP,
            "failed_gates": [r["gate"] for r in failed], "gates": decided, "reasons": reasons}


def _percent(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


def _show(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def label_gate_passed(gate_file: Path | None) -> bool | None:
    """The validate stage's verdict (reports/validate/gate.json), None when there is no such file."""
    from rlaif.data.records import read_gate

    gate = read_gate(gate_file)
    return None if gate is None else gate.passed





def apply(decision: dict, registered: dict | None, evaluate_run_id: str, promote: bool,
          approval: str = "auto") -> dict:
    """Record the decision on the model version; move `champion` to it when it passed and promotion is on, unless
    a person must sign off first (approval `required`: the decision is then `awaiting approval`)."""
    if decision["promote"] and promote and approval == "required":
        decision = {**decision, "promote": False, "decision": Decision.AWAITING}
    if not registered:
        return {**decision, "model": None, "champion_moved": False}
    from mlflow import MlflowClient

    from rlaif.lifecycle.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri())
    name, version = registered["name"], str(registered["version"])
    previous = _alias_version(client, name, CHAMPION)
    tags = {"promotion.decision": decision["decision"], "promotion.evaluate_run_id": evaluate_run_id,
            "promotion.failed_gates": ",".join(decision["failed_gates"]) or "none",
            "promotion.report": str(Path("reports/run.html").resolve())}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    moved = bool(decision["promote"] and promote)
    if moved:
        client.set_registered_model_alias(name, CHAMPION, version)
    return {**decision, "model": f"models:/{name}/{version}", "previous_champion": previous, "champion_moved": moved}


class ApprovalRefused(RlaifError):
    """An approval that cannot apply: not a challenger awaiting sign-off, or already decided."""


def approve(uri: str, reviewer: str, reason: str, approved: bool, via: str, report: str | None = None) -> dict:
    """A person's sign-off on a challenger awaiting approval: approved moves `champion` to it, rejected leaves
    `champion` where it was. Refused for a version that is not awaiting approval (failed gates, auto-promoted,
    superseded by a newer challenger, or already decided). Returns the record that went on the version's tags."""
    import datetime

    from mlflow import MlflowClient

    from rlaif.lifecycle.lineage import resolve_version
    from rlaif.lifecycle.tracking import tracking_uri

    if not reviewer.strip() or not reason.strip():
        raise ApprovalRefused("a sign-off needs a reviewer and a reason")
    client = MlflowClient(tracking_uri=tracking_uri())
    version = resolve_version(client, uri)
    name, number, tags = version.name, str(version.version), dict(version.tags or {})
    _check_awaiting(client, uri, name, number, tags)
    previous = _alias_version(client, name, CHAMPION)
    record = {"model": f"models:/{name}/{number}", "status": "approved" if approved else "rejected",
              "reviewer": reviewer, "reason": reason, "via": via,
              "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "report": report or tags.get("promotion.report", ""), "previous_champion": previous,
              "champion_moved": approved}
    for key in ("status", "reviewer", "reason", "via", "at", "report"):
        client.set_model_version_tag(name, number, f"approval.{key}", str(record[key])[:5000])
    client.set_model_version_tag(name, number, "promotion.decision", Decision.PROMOTE if approved else Decision.KEEP)
    if approved:
        client.set_registered_model_alias(name, CHAMPION, number)
    return record


def record_timeout(name: str, version: str, waited_s: float) -> dict:
    """No sign-off came within the timeout: the challenger stays challenger, and the version says why."""
    from mlflow import MlflowClient

    from rlaif.lifecycle.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri())
    tags = client.get_model_version(name, version).tags or {}
    if tags.get("approval.status") in ("approved", "rejected"):  # decided with `rlaif approve` while the run waited
        return {"model": f"models:/{name}/{version}", "champion_moved": tags["approval.status"] == "approved",
                **{key: tags.get(f"approval.{key}") for key in ("status", "reviewer", "reason", "via", "at", "report")}}
    client.set_model_version_tag(name, version, "approval.status", f"timed out after {waited_s:.0f} s")
    return {"model": f"models:/{name}/{version}", "status": "timed out", "champion_moved": False}


def _check_awaiting(client, uri: str, name: str, number: str, tags: dict) -> None:
    decision = tags.get("promotion.decision")
    if "approval.status" in tags and not tags["approval.status"].startswith("timed out"):
        raise ApprovalRefused(f"{uri} (version {number}) was already {tags['approval.status']} by "
                              f"{tags.get('approval.reviewer')} at {tags.get('approval.at')}")
    if decision != Decision.AWAITING:
        why = {None: "it was never evaluated", Decision.PROMOTE: "it was promoted automatically (evaluate.approval: auto)",
               Decision.KEEP: f"it failed the gates ({tags.get('promotion.failed_gates')})"}.get(decision, decision)
        raise ApprovalRefused(f"{uri} (version {number}) is not a challenger awaiting approval: {why}")
    challenger = _alias_version(client, name, CHALLENGER)
    if challenger != number:
        raise ApprovalRefused(f"{uri} (version {number}) is not the challenger any more: version {challenger} is")


def _alias_version(client, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:  # MLflow raises a plain MlflowException when the alias is not set
        return None


def champion_policy(name: str, dst: Path) -> tuple[Path | None, str | None]:
    """The current champion's model directory, downloaded from the registry, and its version; (None, None)
    when no version holds the alias yet."""
    from mlflow import MlflowClient

    from rlaif.lifecycle.tracking import tracking_uri

    version = _alias_version(MlflowClient(tracking_uri=tracking_uri()), name, CHAMPION)
    if version is None:
        return None, None
    return download_policy(name, version, Path(dst) / "champion")[1], version


def download_policy(name: str, version: str, policy_dir: Path):
    """A registered policy version's model directory, downloaded and moved into `policy_dir` (replaced whole,
    so a failed download leaves no half-written policy). Returns the client and policy_dir."""
    import shutil
    import tempfile

    import mlflow
    from mlflow import MlflowClient

    from rlaif.lifecycle.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    policy_dir = Path(policy_dir)
    policy_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=policy_dir.parent) as scratch:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=scratch))
        folders = [p for p in (local / "artifacts").iterdir() if p.is_dir()]  # log_model keeps the folder's name
        shutil.rmtree(policy_dir, ignore_errors=True)
        folders[0].rename(policy_dir)
    return MlflowClient(tracking_uri=tracking_uri()), policy_dir
