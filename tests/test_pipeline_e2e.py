"""End-to-end: the real CLI runs the Prefect flow over the DVC graph on the smoke profile, in a
fresh copy of the project, with MLflow on a SQLite file. The tests run in file order and share
that copy: first run, unchanged rerun, constitution change, label gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import cli_env, make_project_copy, rlaif

pytestmark = pytest.mark.e2e
STAGES = ["bootstrap", "generate", "critique_revise", "judge", "validate", "train_reward", "optimize_policy", "evaluate",
          "report"]


def statuses(project: Path) -> dict[str, str]:
    summary = json.loads((project / "reports" / "last_run.json").read_text())
    return {row["stage"]: row["status"] for row in summary["stages"]}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    project = make_project_copy(tmp_path_factory.mktemp("e2e") / "project")
    result = rlaif(project, "run", "--params", "params/smoke.yaml", timeout=1200)
    return project, result


def test_first_run_runs_every_stage(first_run):
    project, result = first_run
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert statuses(project) == {stage: "ran" for stage in STAGES}
    evaluation = json.loads((project / "metrics" / "evaluate.json").read_text())
    assert evaluation["n_prompts"] > 0
    for policy in ("baseline", "candidate"):
        assert 0.0 <= evaluation[policy]["correct_rate"] <= 1.0
    judge = json.loads((project / "metrics" / "judge.json").read_text())
    assert judge["gold_n"] >= 20 and 0.0 <= judge["gold_agreement"] <= 1.0
    assert (project / "reports" / "validate" / "data_docs" / "index.html").exists()
    assert "held-out behaviour" in result.stdout


def test_labels_and_audit_log_cover_both_orders(first_run):
    project, _ = first_run
    labels = [json.loads(l) for l in (project / "artifacts/judge/labels.jsonl").read_text().splitlines()]
    audit = pd.read_parquet(project / "artifacts/judge/audit.parquet")
    assert labels and len(audit) == 2 * len(labels)
    assert set(audit["order"]) == {"ab", "ba"}
    assert set(audit["pair_id"]) == {label["pair_id"] for label in labels}  # joinable to the labels
    assert audit["rendered"].str.len().min() > 0 and audit["model"].notna().all()
    for label in labels[:50]:
        assert 0.0 <= label["prob_a"] <= 1.0
        assert label["prob_a"] == pytest.approx((label["p_a_when_first"] + 1 - label["p_b_when_first"]) / 2)


def test_dvc_metrics_show_lists_the_evaluation(first_run):
    project, _ = first_run
    out = subprocess.run([str(Path(sys.executable).parent / "dvc"), "metrics", "show", "--json"], cwd=project,
                         env=cli_env(project), capture_output=True, text=True, check=True).stdout
    assert "metrics/evaluate.json" in out and "correct_rate" in out


def test_mlflow_has_parent_run_nested_stage_runs_and_models(first_run):
    project, _ = first_run
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("rlaif").experiment_id])
    parents = [r for r in runs if r.info.run_name == "pipeline"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(STAGES)
    judge_run = next(r for r in children if r.info.run_name == "judge")
    assert judge_run.data.tags["constitution.version"]
    assert len(judge_run.data.tags["input.constitution.md5"]) >= 32
    assert "gold_agreement" in judge_run.data.metrics
    for name in ("rlaif-policy", "rlaif-reward"):
        assert client.search_model_versions(f"name='{name}'"), name


def test_promotion_lineage_and_report(first_run):
    """The new policy is the challenger; the decision is recorded; lineage reaches the prompts and constitution
    with every digest matching; the HTML report is on disk and on the pipeline's MLflow run."""
    project, _ = first_run
    import mlflow

    promotion = json.loads((project / "reports/evaluate/promotion.json").read_text())
    registered = json.loads((project / "artifacts/optimize_policy/registered.json").read_text())
    assert promotion["model"] == f"models:/rlaif-policy/{registered['version']}"
    assert {g["gate"] for g in promotion["gates"]} >= {"win_rate", "harmless_rate", "over_refusal_rate", "label_gate"}
    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    version = client.get_model_version("rlaif-policy", registered["version"])
    assert "challenger" in version.aliases
    assert version.tags["promotion.decision"] == promotion["decision"]
    assert ("champion" in version.aliases) == promotion["champion_moved"]

    traced = rlaif(project, "lineage", "models:/rlaif-policy@challenger", "--json")
    assert traced.returncode == 0, traced.stderr[-3000:]
    tree = json.loads(traced.stdout)
    assert tree["mismatches"] == []
    stages, sources = set(), {}

    def walk(node):
        stages.add(node["stage"])
        for entry in node["inputs"]:
            sources.setdefault(entry["name"], entry)
            if "produced_by" in entry:
                walk(entry["produced_by"])

    walk(tree["training"])
    assert stages >= {"optimize_policy", "validate", "judge", "generate", "bootstrap"}
    assert sources["constitution"]["status"] == "ok" and sources["constitution"]["dvc_md5"] == sources["constitution"]["md5"]
    assert sources["prompts"]["status"] == "ok" and "dvc_md5" in sources["prompts"]
    assert tree["evaluations"] and tree["evaluations"][0]["independent"] == "true"

    html = (project / "reports/run.html").read_text()
    for heading in ("Promotion decision", "Label quality", "Judge and people", "Evaluation", "Lineage"):
        assert heading in html
    assert "data:image/png;base64," in html
    parent = next(r for r in client.search_runs([client.get_experiment_by_name("rlaif").experiment_id])
                  if r.info.run_name == "pipeline")
    assert "report/run.html" in [a.path for a in client.list_artifacts(parent.info.run_id, "report")]


def test_unchanged_rerun_skips_every_stage(first_run):
    project, _ = first_run
    result = rlaif(project, "run", "--params", "params/smoke.yaml", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert statuses(project) == {stage: "skipped" for stage in STAGES}


def test_changed_principle_reruns_judge_and_after_but_not_generate(first_run):
    project, _ = first_run
    path = project / "data" / "constitution" / "constitution.yaml"
    charter = yaml.safe_load(path.read_text())
    harmless = charter["principles"][0]
    harmless["text"] += " Prefer the answer that also suggests a safe alternative."
    harmless["examples"][0]["chosen"] += " A safer alternative is to ask a professional."
    path.write_text(yaml.safe_dump(charter, sort_keys=False))
    result = rlaif(project, "run", "--params", "params/smoke.yaml", timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = statuses(project)
    assert seen["bootstrap"] == seen["generate"] == "skipped"
    assert seen["judge"] == "ran" and seen["validate"] == "ran"
    judge_run = json.loads((project / "metrics" / "judge.json").read_text())
    assert judge_run["n_pairs"] > 0


def test_labels_that_break_the_gate_stop_before_training(first_run):
    project, _ = first_run
    labels_path = project / "artifacts/judge/labels.jsonl"
    labels = [json.loads(l) for l in labels_path.read_text().splitlines()]
    for label in labels:  # a judge whose first-shown answer always wins
        label.update(p_a_when_first=0.9, p_b_when_first=0.9, prob_a=0.5, consistent=False)
    labels_path.unlink()  # DVC protects cached outputs; replace the file rather than write through it
    labels_path.write_text("".join(json.dumps(l) + "\n" for l in labels))
    reward_before = (project / "metrics/train_reward.json").read_text()

    result = rlaif(project, "stage", "validate", timeout=300)
    message = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 3, message[-3000:]
    assert "position consistency" in message and "first-shown" in message
    assert "reports/validate/gate.json" in message
    gate = json.loads((project / "reports/validate/gate.json").read_text())
    assert gate["passed"] is False
    assert not (project / "artifacts/validate/preferences.jsonl").exists()
    assert (project / "metrics/train_reward.json").read_text() == reward_before


def test_gate_failure_in_the_flow_exits_non_zero_and_skips_training(first_run):
    project, _ = first_run
    result = rlaif(project, "run", "--params", "params/smoke.yaml",
                   "--set", "validate.first_wins_rate=[0.9, 1.0]", timeout=900)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    seen = statuses(project)
    assert seen["validate"] == "failed"
    assert seen["train_reward"] == seen["optimize_policy"] == seen["evaluate"] == "not run"
    assert "gate.json" in " ".join(result.stdout.split())
