"""End-to-end: the real CLI runs the Prefect flow over the DVC graph on the smoke profile, in one fresh copy of the
project with MLflow on a SQLite file. The tests run in file order and share that copy, the way a team's checkout
lives week after week:

1. two rounds in a row, the second starting from the first's champion (every stage runs in each);
2. what the rounds left: labels and audit, DVC metrics, MLflow runs and models, promotion, lineage, the report;
3. a label gate that fails inside the flow (training does not start);
4. a changed principle (what DVC would rerun), then a prompt drop run that needs sign-off while a second run waits
   for the first and, finding nothing to do, skips every stage without starting Prefect;
5. sign-off with `rlaif approve`, the history of the versions, and tampered labels that the gate stops;
6. `rlaif reproduce`: the first version rebuilt cold, byte for byte; the version trained on uncommitted inputs
   refused, naming them.

The smoke profile trains for a few steps, so the quality gates are given bounds that any policy meets: these tests
are about the loop and its records, not about the policy's quality (that is the default profile's, in the README).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import BIN, cli_env, make_project_copy, rlaif

pytestmark = pytest.mark.e2e
STAGES = ["bootstrap", "generate", "critique_revise", "judge", "validate", "train_reward", "optimize_policy", "evaluate",
          "report"]
CHAMPION = "bootstrap.base_model=models:/rlaif-policy@champion"
ANY_POLICY_PASSES = {"min_win_rate": 0.0, "min_harmless_rate": 0.0, "max_over_refusal_rate": 1.0,
                     "max_slice_regression": 1.0, "block_on_reward_hacking": False}


def write_loop_profile(project: Path) -> str:
    """The smoke profile with gates any policy passes (its label gate stays on, tolerating the empty answers that a
    policy trained for a few steps writes: the judge fails on those)."""
    profile = yaml.safe_load((project / "params/smoke.yaml").read_text())
    profile.setdefault("evaluate", {})["gates"] = ANY_POLICY_PASSES
    (project / "params/loop.yaml").write_text(yaml.safe_dump(profile))
    return "params/loop.yaml"


def last_run(project: Path) -> dict:
    return json.loads((project / "reports/last_run.json").read_text())


def statuses(project: Path) -> dict[str, str]:
    return {row["stage"]: row["status"] for row in last_run(project)["stages"]}


def registry(project: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def champion(project: Path) -> str:
    return str(registry(project).get_model_version_by_alias("rlaif-policy", "champion").version)


def version_tags(project: Path, version: str) -> dict:
    return registry(project).get_model_version("rlaif-policy", version).tags


def pipeline_runs(project: Path) -> list:
    client = registry(project)
    runs = client.search_runs([client.get_experiment_by_name("rlaif").experiment_id], order_by=["start_time ASC"])
    return [r for r in runs if r.info.run_name == "pipeline"]


def prefect_flow_runs(project: Path) -> int:
    """Flow runs in the project's Prefect database (the temporary server of `rlaif run` keeps them there)."""
    import sqlite3

    with sqlite3.connect(project / ".prefect/prefect.db") as db:
        return db.execute("SELECT count(*) FROM flow_run").fetchone()[0]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    project = make_project_copy(tmp_path_factory.mktemp("e2e") / "project")
    profile = write_loop_profile(project)
    # committed, as a team's profile is: `rlaif reproduce` rebuilds a version from its commit
    for cmd in (["git", "add", profile], ["git", "-c", "user.email=t@example.com", "-c", "user.name=test", "commit",
                                          "-qm", "the loop's profile"]):
        subprocess.run(cmd, cwd=project, check=True)
    result = rlaif(project, "run", "--params", profile, "--rounds", "2", "--set", CHAMPION, timeout=2400)
    return project, ["run", "--params", profile, "--set", CHAMPION], result


def test_two_rounds_the_second_starting_from_the_first_champion(loop):
    project, _, result = loop
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "fallback build" in result.stdout  # round 1: no champion yet
    assert statuses(project) == {stage: "ran" for stage in STAGES}  # round 2 started from another policy
    assert last_run(project)["start"] == {"source": "models:/rlaif-policy/1", "name": "rlaif-policy", "version": "1",
                                          "round": 2, "parent": "models:/rlaif-policy/1"}
    assert champion(project) == "2"
    assert version_tags(project, "1")["rlaif.round"] == "1" and version_tags(project, "1")["rlaif.parent_version"] == "none"
    assert version_tags(project, "2")["rlaif.round"] == "2" and version_tags(project, "2")["rlaif.parent_version"] == "1"
    assert [r.data.tags["rlaif.round"] for r in pipeline_runs(project)] == ["1", "2"]
    evaluation = json.loads((project / "reports/evaluate/promotion.json").read_text())
    assert evaluation["model"] == "models:/rlaif-policy/2" and evaluation["previous_champion"] == "1"
    assert "held-out behaviour" in result.stdout


def test_round_two_reward_model_also_learns_the_first_rounds_preferences(loop, tmp_path: Path):
    """Round 2's bootstrap replays the preferences round 1's validate run logged, and its reward model trains on
    them beside its own, less those of its held-out prompts."""
    from rlaif.training.reward import read_preferences
    from rlaif.training.reward import split_by_prompt as _split_by_prompt

    project, _, _ = loop
    client = registry(project)
    experiment = client.get_experiment_by_name("rlaif").experiment_id
    first_validate = client.search_runs([experiment], "attributes.run_name = 'validate'",
                                        order_by=["attributes.start_time ASC"])[0]
    logged = jsonl(Path(client.download_artifacts(first_validate.info.run_id, "preferences/preferences.jsonl",
                                                  str(tmp_path))))
    replay = jsonl(project / "artifacts/bootstrap/replay_preferences.jsonl")
    assert logged and [{k: v for k, v in row.items() if k != "replayed_from"} for row in replay] == logged
    assert {row["replayed_from"] for row in replay} == {"rlaif-policy/1"}

    params = yaml.safe_load((project / "params/run.yaml").read_text())
    own = read_preferences(project / "artifacts/validate/preferences.jsonl", 1, False)
    _, held = _split_by_prompt(own, params["train_reward"]["eval_fraction"], params["seed"])
    held_ids = {row.prompt_id for row in held}
    metrics = json.loads((project / "metrics/train_reward.json").read_text())
    assert metrics["train_pairs_replayed"] == sum(row["prompt_id"] not in held_ids for row in replay) > 0


def test_evaluation_and_judge_figures_are_those_of_their_samples(loop):
    """The figures in the metrics files, recomputed from the rows they summarise."""
    project, _, _ = loop
    evaluation = json.loads((project / "metrics/evaluate.json").read_text())
    samples = [s for s in jsonl(project / "reports/evaluate/samples.jsonl") if "suite" not in s]  # held-out prompts
    for policy in ("baseline", "candidate"):
        rows = [s for s in samples if s["policy"] == policy]
        assert len(rows) == evaluation["n_samples_per_policy"] > 0
        assert evaluation[policy]["correct_rate"] == pytest.approx(sum(s["correct"] for s in rows) / len(rows))
        incoherent = sum(s["outcome"] == "incoherent" for s in rows) / len(rows)
        assert evaluation[policy]["incoherent_rate"] == pytest.approx(incoherent)
    judge = json.loads((project / "metrics/judge.json").read_text())
    gold = [g for g in jsonl(project / "artifacts/judge/gold_verdicts.jsonl") if g["status"] == "ok"]
    assert judge["gold_n"] >= 20
    assert judge["gold_agreement"] == pytest.approx(sum(g["human"] == g["judge"] for g in gold) / len(gold))
    assert (project / "reports/validate/data_docs/index.html").exists()


def test_labels_and_audit_log_of_the_order_invariant_judge(loop):
    """The smoke profile's embedding judge scores each answer on its own: one judgment per pair, no position
    measurement in the labels, and the label gate reports its position checks as not applicable."""
    project, _, _ = loop
    labels = jsonl(project / "artifacts/judge/labels.jsonl")
    audit = pd.read_parquet(project / "artifacts/judge/audit.parquet")
    assert labels and len(audit) == len(labels) and set(audit["order"]) == {"ab"}
    assert set(audit["pair_id"]) == {label["pair_id"] for label in labels}  # joinable to the labels
    assert audit["rendered"].str.len().min() > 0 and audit["model"].notna().all()
    judged = [label for label in labels if label["status"] == "ok"]
    assert judged and all(label["prob_a"] is None for label in labels if label["status"] == "failed")
    p_first = dict(zip(audit["pair_id"], audit["p_first"]))
    for label in judged:  # P(a better) is the verdict with a shown first; nothing about position is claimed
        assert label["prob_a"] == pytest.approx(p_first[label["pair_id"]])
        assert label["consistent"] is None and label["p_a_when_first"] is None and label["p_b_when_first"] is None
    gate = json.loads((project / "reports/validate/gate.json").read_text())
    skipped = sorted(gate["not_applicable"])
    assert len(skipped) == 2 and skipped[0].startswith("first-shown") and skipped[1].startswith("position consistency")


def test_dvc_metrics_show_lists_the_evaluation(loop):
    project, _, _ = loop
    out = subprocess.run([str(BIN / "dvc"), "metrics", "show", "--json"], cwd=project, env=cli_env(project),
                         capture_output=True, text=True, check=True).stdout
    assert "metrics/evaluate.json" in out and "correct_rate" in out


def test_mlflow_has_parent_runs_nested_stage_runs_and_models(loop):
    project, _, _ = loop
    client = registry(project)
    runs = client.search_runs([client.get_experiment_by_name("rlaif").experiment_id])
    for parent in pipeline_runs(project):
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(r.info.run_name for r in children) == sorted(STAGES)
        judge_run = next(r for r in children if r.info.run_name == "judge")
        assert judge_run.data.tags["constitution.version"]
        assert len(judge_run.data.tags["input.constitution.md5"]) >= 32
        assert "gold_agreement" in judge_run.data.metrics
    for name in ("rlaif-policy", "rlaif-reward"):
        assert len(client.search_model_versions(f"name='{name}'")) == 2, name


def test_promotion_lineage_and_report(loop):
    """The new policy's decision is recorded; lineage reaches the prompts and constitution with every digest
    matching; the HTML report is on disk and on the pipeline's MLflow run."""
    project, _, _ = loop
    promotion = json.loads((project / "reports/evaluate/promotion.json").read_text())
    registered = json.loads((project / "artifacts/optimize_policy/registered.json").read_text())
    assert promotion["model"] == f"models:/rlaif-policy/{registered['version']}"
    assert {g["gate"] for g in promotion["gates"]} >= {"win_rate", "harmless_rate", "over_refusal_rate", "label_gate"}
    client = registry(project)
    version = client.get_model_version("rlaif-policy", registered["version"])
    assert "challenger" in version.aliases
    assert version.tags["promotion.decision"] == promotion["decision"] == "promote"
    assert ("champion" in version.aliases) == promotion["champion_moved"] is True

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
    parent = pipeline_runs(project)[-1]
    assert "report/run.html" in [a.path for a in client.list_artifacts(parent.info.run_id, "report")]


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


def test_reproduce_rebuilds_the_first_version_cold_byte_for_byte(loop, tmp_path: Path):
    """Version 1, rebuilt from its record alone in a scratch clone: every stage cold (a fresh process each, where
    round 1 forked them from the flow's warm server), on the same inputs, params, seed and packages, gives the
    bytes round 1 recorded."""
    from rlaif.lifecycle.reproduce import ancestry_nodes

    project, _, _ = loop
    traced = json.loads(rlaif(project, "lineage", "models:/rlaif-policy/1", "--json").stdout)
    prompts = {e["name"]: e for e in ancestry_nodes(traced["training"])["bootstrap"]["inputs"]}["prompts"]
    assert prompts["source"] == "git" and "produced_by" not in prompts  # not generate's copy of the same bytes

    rebuilt = rlaif(project, "reproduce", "models:/rlaif-policy/1", "--json", "--workdir", str(tmp_path / "scratch"),
                    timeout=1800)
    assert rebuilt.returncode == 0, rebuilt.stdout[-4000:] + rebuilt.stderr[-3000:]
    result = json.loads(rebuilt.stdout)
    assert {s["stage"] for s in result["stages"]} >= {"bootstrap", "generate", "judge", "validate", "optimize_policy"}
    for stage in result["stages"]:
        compared = [f for f in stage["files"] if f["status"] != "volatile"]
        assert compared and all(f["status"] == "match" for f in compared), stage
    assert result["packages_changed"] == [] and result["machine_changed"] == []


def test_gate_failure_in_the_flow_exits_non_zero_and_skips_training(loop):
    """Round 2's inputs again, now with a label gate that asks for more pairs than the round has. Round 2 started
    from version 1 (then champion): named by its number, the start resolves as before, so DVC skips bootstrap to
    judge and only the gate runs, and fails."""
    project, args, _ = loop
    result = rlaif(project, *args, "--set", "bootstrap.base_model=models:/rlaif-policy/1",
                   "--set", "validate.min_pairs=100000", timeout=1200)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    seen = statuses(project)
    assert seen["bootstrap"] == seen["judge"] == "skipped" and seen["validate"] == "failed"
    assert seen["train_reward"] == seen["optimize_policy"] == seen["evaluate"] == "not run"
    shown = " ".join(result.stdout.split())
    assert "label gate (failed attempt): .rlaif/failed/validate/reports/validate/gate.json" in shown
    assert not json.loads((project / ".rlaif/failed/validate/reports/validate/gate.json").read_text())["passed"]
    assert json.loads((project / "reports/validate/gate.json").read_text())["passed"]  # round 2's, kept in place
    assert champion(project) == "2"


def test_a_changed_principle_makes_judge_and_after_stale_but_not_generate(loop, monkeypatch):
    """What the next run would redo, as the flow asks DVC (the run itself is round three's test)."""
    from flows.dvc_ops import stage_graph, stale_stages

    project, _, _ = loop
    path = project / "data/constitution/constitution.yaml"
    charter = yaml.safe_load(path.read_text())
    harmless = charter["principles"][0]
    harmless["text"] += " Prefer the answer that also suggests a safe alternative."
    harmless["examples"][0]["chosen"] += " A safer alternative is to ask a professional."
    path.write_text(yaml.safe_dump(charter, sort_keys=False))
    monkeypatch.chdir(project)
    assert stale_stages(stage_graph()) == set(STAGES) - {"bootstrap", "generate"}


def test_round_three_trains_on_a_prompt_drop_and_waits_for_sign_off_while_a_second_run_waits(loop):
    """Round 3 starts from champion v2 with a prompt drop in place (generate takes the drop first and replays
    earlier prompts); a second run started meanwhile waits for the first, then finds
    every stage up to date: it records a run that skipped everything, without starting Prefect. Neither corrupts
    the other; DVC's record is clean. The first run's challenger needs sign-off, so champion stays."""
    project, args, _ = loop
    rows = jsonl(project / "data/prompts/train.jsonl")[:12]
    drop = project / "data/prompts/drops/2026-12-07.jsonl"
    drop.write_text("".join(json.dumps({**row, "id": f"d1-{i}"}) + "\n" for i, row in enumerate(rows)))
    command = [str(BIN / "rlaif"), *args, "--set", "evaluate.approval=required"]
    env = cli_env(project)
    runs_before, flow_runs_before = len(pipeline_runs(project)), prefect_flow_runs(project)
    first = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    second = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [process.communicate(timeout=1500) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [o[0][-3000:] + o[1][-3000:] for o in outputs]
    # one of them (the second, unless the first was slower to start) waited for the other's lock
    waited = [stdout for stdout, _ in outputs if "waiting for the pipeline run" in stdout]
    worked = [" ".join(stdout.split()) for stdout, _ in outputs if "waiting for the pipeline run" not in stdout]
    assert len(waited) == len(worked) == 1
    assert "every stage skipped" in waited[0]
    waited_log = next(stdout + stderr for stdout, stderr in outputs if "waiting for the pipeline run" in stdout)
    assert "temporary server" not in waited_log  # Prefect's server was not started for a run with nothing to do
    assert "promotion: awaiting approval (models:/rlaif-policy/3" in worked[0]
    assert "sign off: rlaif approve models:/rlaif-policy/3 --reviewer NAME" in worked[0]
    assert champion(project) == "2" and version_tags(project, "3")["promotion.decision"] == "awaiting approval"

    assert len(pipeline_runs(project)) == runs_before + 2  # both recorded, though the second ran nothing
    first_run, second_run = pipeline_runs(project)[-2:]
    ran = {s: first_run.data.tags[f"stage.{s}"] for s in STAGES}  # from champion v2: every stage
    assert all(ran[s] == "ran" for s in STAGES)
    assert {second_run.data.tags[f"stage.{s}"] for s in STAGES} == {"skipped"}
    assert set(statuses(project).values()) == {"skipped"}  # last_run.json is the second's
    assert prefect_flow_runs(project) == flow_runs_before + 1  # nothing to run: the second did not start Prefect
    status = subprocess.run([str(BIN / "dvc"), "status"], cwd=project, env=env, capture_output=True, text=True)
    assert "up to date" in status.stdout, status.stdout
    trained_on = [row["id"] for row in jsonl(project / "artifacts/generate/prompts.jsonl")]
    assert trained_on[:12] == [f"d1-{i}" for i in range(12)] and len(trained_on) == 24  # the drop and a replay
    generation = json.loads((project / "artifacts/generate/generation.json").read_text())
    assert generation["prompt_sources"]["newest_drop"] == "data/prompts/drops/2026-12-07.jsonl"


def test_reproduce_names_the_uncommitted_constitution_edit_before_rebuilding(loop, tmp_path: Path):
    """Version 3 trained on the principle edited above and on the prompt drop, neither committed: `rlaif reproduce`
    names each changed input with its stage, judge and the constitution among them, and rebuilds nothing."""
    project, _, _ = loop
    refused = rlaif(project, "reproduce", "models:/rlaif-policy/3", "--workdir", str(tmp_path / "scratch"))
    assert refused.returncode == 6, refused.stdout[-3000:] + refused.stderr[-3000:]
    shown = " ".join(refused.stderr.split())
    assert "judge: input constitution (data/constitution/constitution.yaml)" in shown, shown
    assert "generate: input drops (data/prompts/drops)" in shown, shown  # the prompt drop, first stage first
    assert not (tmp_path / "scratch/artifacts").exists()  # named before anything was rebuilt


def test_sign_off_moves_champion_and_is_recorded_everywhere(loop):
    project, _, _ = loop
    approved = rlaif(project, "approve", "models:/rlaif-policy/3", "--reviewer", "ana",
                     "--reason", "reviewed run.html: fewer unsafe answers")
    assert approved.returncode == 0, approved.stdout[-3000:] + approved.stderr[-3000:]
    assert champion(project) == "3"
    tags = version_tags(project, "3")
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


def test_the_run_report_and_data_docs_open_in_a_browser(loop):
    """What a reviewer opens: reports/run.html in a headless chromium, every plot loaded and no console error; the
    Great Expectations Data Docs, whose own pages and images load (their styling comes from public CDNs, which a
    machine without internet cannot reach: those requests alone fail)."""
    from browser import broken_images, browser_page, screenshot

    project, _, _ = loop
    with browser_page() as (page, seen):
        page.goto((project / "reports/run.html").as_uri())
        assert page.locator("h1").first.inner_text().startswith("RLAIF run report")
        assert page.locator("img").count() >= 4 and broken_images(page) == []
        assert "Sign-off: approved" in page.content()
        assert seen.console_errors == [] and seen.failed_requests == [], seen
        assert screenshot(page, "run-report").stat().st_size > 10_000
    with browser_page() as (page, seen):
        page.goto((project / "reports/validate/data_docs/index.html").as_uri())
        page.get_by_text("labels", exact=False).first.wait_for()
        assert all(image.startswith("https://") for image in broken_images(page)), broken_images(page)
        local = [url for url in seen.failed_requests if not url.startswith("https://")]
        assert local == [], local
        screenshot(page, "data-docs")


def test_the_mlflow_ui_shows_the_pipeline_run_its_stage_runs_and_the_report(loop, tmp_path: Path):
    """The MLflow UI on the project's store, in a headless chromium: the pipeline run's page lists a child run for
    every stage that ran in it, and its artefacts hold the run report."""
    from browser import mlflow_ui_shows_the_run

    project, _, _ = loop
    seen = mlflow_ui_shows_the_run(project, tmp_path / "mlflow-ui.log")
    listed = [name.strip(" ,") for name in seen["children"].splitlines()[1:]]
    assert sorted(listed) == seen["stages_ran"] and "report" in listed, seen["children"]
    assert "run.html" in seen["listed"] and seen["screenshot"].stat().st_size > 10_000


def test_history_prints_every_version(loop):
    project, _, _ = loop
    shown = rlaif(project, "history")
    assert shown.returncode == 0, shown.stderr[-3000:]
    for version in ("start", "v1", "v2", "v3"):
        assert version in shown.stdout
    rows = json.loads(rlaif(project, "history", "--json").stdout)
    assert [r["round"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[3]["decision"] == "promote" and [r["decision"] for r in rows[1:3]] == ["promote", "promote"]
    assert all(r["behaves_as_expected"] is not None for r in rows)
    assert (project / "reports/history.png").exists()


def test_labels_that_break_the_gate_stop_before_training(loop):
    project, _, _ = loop
    labels_path = project / "artifacts/judge/labels.jsonl"
    labels = jsonl(labels_path)
    for label in labels:  # a judge whose first-shown answer always wins
        label.update(p_a_when_first=0.9, p_b_when_first=0.9, prob_a=0.5, consistent=False)
    labels_path.unlink()  # DVC protects cached outputs; replace the file rather than write through it
    labels_path.write_text("".join(json.dumps(lab) + "\n" for lab in labels))
    reward_before = (project / "metrics/train_reward.json").read_text()
    earlier = {path: (project / path).read_bytes() for path in
               ("artifacts/validate/preferences.jsonl", "artifacts/validate/stats.json", "reports/validate/gate.json")}

    result = rlaif(project, "stage", "validate", timeout=300)
    message = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 3, message[-3000:]
    assert "position consistency" in message and "first-shown" in message
    assert "stage validate failed: its earlier outputs were kept" in message and ".rlaif/failed/validate" in message
    gate = json.loads((project / ".rlaif/failed/validate/reports/validate/gate.json").read_text())
    assert gate["passed"] is False  # the refused attempt's gate, kept for the reviewer
    assert not (project / ".rlaif/failed/validate/artifacts/validate/preferences.jsonl").exists()  # none written
    assert {path: (project / path).read_bytes() for path in earlier} == earlier  # the earlier outputs, byte for byte
    assert (project / "metrics/train_reward.json").read_text() == reward_before
