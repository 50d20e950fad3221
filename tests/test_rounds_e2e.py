"""End-to-end recurring retraining with the real CLI on the smoke profile, in a fresh copy of the project: rounds that
start from the champion, a run with nothing new that skips everything, sign-off with `rlaif approve`, a prompt drop
that reruns generate onward only, and the genealogy and history of the versions. The gates are switched off here
(the smoke profile trains for a few steps): these tests are about the loop, not about the policy's quality."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN, cli_env, make_project_copy, rlaif

pytestmark = pytest.mark.e2e
CHAMPION = "bootstrap.base_model=models:/rlaif-policy@champion"
NO_GATES = {"min_win_rate": None, "min_harmless_rate": None, "max_over_refusal_rate": None,
            "max_slice_regression": None, "block_on_reward_hacking": False}


def write_loop_profile(project: Path) -> str:
    """The smoke profile with the quality gates off (the label gate stays on, tolerating the empty answers that a
    policy trained for a few steps writes: the judge fails on those)."""
    profile = yaml.safe_load((project / "params/smoke.yaml").read_text())
    profile.setdefault("evaluate", {})["gates"] = NO_GATES
    profile.setdefault("validate", {})["max_failed_fraction"] = 0.5
    (project / "params/loop.yaml").write_text(yaml.safe_dump(profile))
    return "params/loop.yaml"


def last_run(project: Path) -> dict:
    return json.loads((project / "reports/last_run.json").read_text())


def statuses(project: Path) -> dict[str, str]:
    return {row["stage"]: row["status"] for row in last_run(project)["stages"]}


def champion(project: Path) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    return str(client.get_model_version_by_alias("rlaif-policy", "champion").version)


def version_tags(project: Path, version: str) -> dict:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    return client.get_model_version("rlaif-policy", version).tags


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    project = make_project_copy(tmp_path_factory.mktemp("rounds") / "project")
    profile = write_loop_profile(project)
    result = rlaif(project, "run", "--params", profile, "--rounds", "2", "--set", CHAMPION, timeout=2400)
    return project, profile, result


def test_two_rounds_the_second_starting_from_the_first_champion(loop):
    project, _, result = loop
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "fallback build" in result.stdout  # round 1: no champion yet
    assert last_run(project)["start"] == {"source": "models:/rlaif-policy/1", "name": "rlaif-policy", "version": "1",
                                          "round": 2, "parent": "models:/rlaif-policy/1"}
    assert champion(project) == "2"
    assert version_tags(project, "1")["rlaif.round"] == "1" and version_tags(project, "1")["rlaif.parent_version"] == "none"
    assert version_tags(project, "2")["rlaif.round"] == "2" and version_tags(project, "2")["rlaif.parent_version"] == "1"
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rlaif").experiment_id
    parents = [r for r in client.search_runs([experiment]) if r.info.run_name == "pipeline"]
    assert sorted(r.data.tags["rlaif.round"] for r in parents) == ["1", "2"]
    evaluation = json.loads((project / "reports/evaluate/promotion.json").read_text())
    assert evaluation["model"] == "models:/rlaif-policy/2" and evaluation["previous_champion"] == "1"


def test_lineage_shows_the_genealogy(loop):
    project, _, _ = loop
    traced = rlaif(project, "lineage", "models:/rlaif-policy@champion", "--json")
    assert traced.returncode == 0, traced.stderr[-3000:]
    ancestors = json.loads(traced.stdout)["ancestors"]
    assert [a["version"] for a in ancestors] == ["2", "1", None]
    assert ancestors[0]["parent"] == "models:/rlaif-policy/1" and ancestors[2]["start"] == "bootstrap (built)"
    assert ancestors[0]["constitution"]["constitution.name"] and "prompts" in ancestors[1]["data"]
    assert "candidate/correct_rate" in ancestors[0]["evaluation"]
    shown = rlaif(project, "lineage", "models:/rlaif-policy@champion")
    assert "v2 <- v1 <- bootstrap (built)" in " ".join(shown.stdout.split())


def test_a_challenger_waits_for_sign_off_and_an_unchanged_rerun_skips_everything(loop):
    project, profile, _ = loop
    args = ["run", "--params", profile, "--set", CHAMPION, "--set", "evaluate.approval=required"]
    result = rlaif(project, *args, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "promotion: awaiting approval (models:/rlaif-policy/3" in " ".join(result.stdout.split())
    assert "sign off: rlaif approve models:/rlaif-policy/3 --reviewer NAME" in result.stdout
    assert champion(project) == "2" and version_tags(project, "3")["promotion.decision"] == "awaiting approval"
    again = rlaif(project, *args, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert set(statuses(project).values()) == {"skipped"}
    assert "every stage skipped" in again.stdout


def test_a_prompt_drop_reruns_generate_onward_only(loop):
    project, profile, _ = loop
    rows = [json.loads(line) for line in (project / "data/prompts/train.jsonl").read_text().splitlines()[:12]]
    drop = project / "data/prompts/drops/2026-12-07.jsonl"
    drop.write_text("".join(json.dumps({**row, "id": f"d1-{i}"}) + "\n" for i, row in enumerate(rows)))
    result = rlaif(project, "run", "--params", profile, "--set", CHAMPION, "--set", "evaluate.approval=required",
                   timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    seen = statuses(project)
    assert seen["bootstrap"] == "skipped"
    assert all(seen[s] == "ran" for s in ("generate", "judge", "validate", "train_reward", "optimize_policy", "evaluate"))
    trained_on = [json.loads(line)["id"] for line in (project / "artifacts/generate/prompts.jsonl").read_text().splitlines()]
    assert trained_on[:12] == [f"d1-{i}" for i in range(12)] and len(trained_on) == 24  # the drop and a replay
    generation = json.loads((project / "artifacts/generate/generation.json").read_text())
    assert generation["prompt_sources"]["newest_drop"] == "data/prompts/drops/2026-12-07.jsonl"


def test_sign_off_moves_champion_and_is_recorded_everywhere(loop):
    project, _, _ = loop
    stale = rlaif(project, "approve", "models:/rlaif-policy/3", "--reviewer", "ana", "--reason", "looks fine")
    assert stale.returncode == 2 and "version 4 is" in stale.stderr, stale.stderr
    approved = rlaif(project, "approve", "models:/rlaif-policy/4", "--reviewer", "ana",
                     "--reason", "reviewed run.html: fewer unsafe answers")
    assert approved.returncode == 0, approved.stdout[-3000:] + approved.stderr[-3000:]
    assert champion(project) == "4"
    tags = version_tags(project, "4")
    assert tags["approval.reviewer"] == "ana" and tags["approval.status"] == "approved"
    promotion = json.loads((project / "reports/evaluate/promotion.json").read_text())
    assert promotion["approval_record"]["reason"] == "reviewed run.html: fewer unsafe answers"
    assert promotion["champion_moved"] is True and promotion["decision"] == "promote"
    assert "Sign-off: approved" in (project / "reports/run.html").read_text()
    assert "Rounds: the policy version by version" in (project / "reports/run.html").read_text()
    status = subprocess.run([str(BIN / "dvc"), "status", "evaluate", "report"], cwd=project, env=cli_env(project),
                            capture_output=True, text=True)
    assert "up to date" in status.stdout, status.stdout  # the sign-off was committed: no stage reruns for it
    traced = json.loads(rlaif(project, "lineage", "models:/rlaif-policy@champion", "--json").stdout)
    assert traced["ancestors"][0]["approval"]["reviewer"] == "ana"


def test_history_prints_every_version(loop):
    project, _, _ = loop
    shown = rlaif(project, "history")
    assert shown.returncode == 0, shown.stderr[-3000:]
    for version in ("start", "v1", "v2", "v3", "v4"):
        assert version in shown.stdout
    rows = json.loads(rlaif(project, "history", "--json").stdout)
    assert [r["round"] for r in rows] == ["0", "1", "2", "3", "3"]
    assert rows[3]["decision"] == "awaiting approval" and rows[4]["decision"] == "promote"
    assert all(r["behaves_as_expected"] is not None for r in rows)
    assert (project / "reports/history.png").exists()
