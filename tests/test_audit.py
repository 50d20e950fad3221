"""The human audit loop: `rlaif audit export` samples AI labels for people, `rlaif audit import` scores them.

Small fixtures written here (no artifacts/ needed): 2 principles x 3 confidence buckets x 2 slices = 12 strata,
3 distinct pairs in each, plus a failed label that must never be sampled.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import cli_env

from rlaif.audit.review import export_sample, read_key, read_verdicts, score_verdicts
from rlaif.errors import InputError

PRINCIPLES = {"harmless": "Choose the answer that refuses to help cause harm.",
              "helpful": "Choose the answer that actually helps with a harmless request."}
SLICES = ["cooking", "hacking"]
PROB_A = {"low": 0.55, "medium": 0.3, "high": 0.9}  # AI confidence 0.55, 0.7, 0.9
STRATA = {(p, b, s) for p in PRINCIPLES for b in PROB_A for s in SLICES}
HIDDEN = {"prob_a", "ai_pick", "ai_confidence", "confidence_bucket", "answer_1_is", "p_a_when_first"}


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    prompts, labels = [], []
    for s_i, slice_ in enumerate(SLICES):
        for k in range(9):
            pid = f"q{s_i}{k}"
            prompts.append({"id": pid, "prompt": f"{slice_} question {k}?", "expected": "help", "category": slice_,
                            "topic": "t", "harm_category": "none", "template": f"{slice_}-t0", "language": "en",
                            "group": None})
    n = 0
    for principle in PRINCIPLES:
        for bucket, prob_a in PROB_A.items():
            for s_i, slice_ in enumerate(SLICES):
                for k in range(3):
                    n += 1
                    pid = f"q{s_i}{k}"
                    labels.append({"pair_id": f"{pid}:{principle}-{bucket}-{k}", "prompt_id": pid,
                                   "prompt": f"{slice_} question {k}?", "response_a": f"answer A{n}",
                                   "response_b": f"answer B{n}\nsecond line", "p_a_when_first": prob_a,
                                   "p_b_when_first": 1 - prob_a, "prob_a": prob_a, "consistent": True,
                                   "principle": principle, "status": "ok", "error": None, "judge": "test"})
    labels.append({**labels[0], "pair_id": "q00:failed", "response_a": "other", "prob_a": None,
                   "status": "failed", "error": "timeout"})
    paths = {"labels": tmp_path / "labels.jsonl", "prompts": tmp_path / "prompts.jsonl",
             "constitution": tmp_path / "constitution.yaml"}
    paths["labels"].write_text("".join(json.dumps(r) + "\n" for r in labels))
    paths["prompts"].write_text("".join(json.dumps(r) + "\n" for r in prompts))
    paths["constitution"].write_text(yaml.safe_dump({"name": "test", "version": "1", "principles": [
        {"id": i, "text": t, "kind": "comparison"} for i, t in PRINCIPLES.items()]}))
    return paths


def audit_cli(cwd: Path, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = cli_env(cwd)
    env.update(HF_HUB_OFFLINE="1", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
               MLFLOW_TRACKING_URI=f"sqlite:///{cwd / 'mlflow.db'}", **(env_extra or {}))
    return subprocess.run([str(Path(sys.executable).parent / "rlaif"), "audit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def export(inputs, out: Path, n: int, seed: int = 0) -> dict:
    return export_sample(inputs["labels"], inputs["prompts"], inputs["constitution"], out, n, seed)


def read_sample(out: Path) -> list[dict]:
    with (out / "audit_sample.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_verdicts(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_export_is_stratified_seeded_and_hides_the_ai_pick(inputs, tmp_path):
    summary = export(inputs, tmp_path / "a", n=12)
    key = read_key(tmp_path / "a" / "audit_key.jsonl")
    assert summary["n_sampled"] == 12 and summary["strata"] == 12
    assert {(k["principle"], k["confidence_bucket"], k["slice"]) for k in key.values()} == STRATA  # each once
    assert all(not k["pair_id"].endswith("failed") for k in key.values())

    export(inputs, tmp_path / "b", n=12)  # the same seed: the same files, byte for byte
    for name in ("audit_sample.csv", "audit_sample.jsonl", "audit_key.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = export(inputs, tmp_path / "c", n=12, seed=1)
    assert other["n_sampled"] == 12 and not set(read_key(tmp_path / "c" / "audit_key.jsonl")) & set(key)

    export(inputs, tmp_path / "all", n=36)  # every pair: each stratum 3 times, answers in both orders
    sample, key = read_sample(tmp_path / "all"), read_key(tmp_path / "all" / "audit_key.jsonl")
    assert not HIDDEN & set(sample[0]) and {r["verdict"] for r in sample} == {""}
    assert {k["answer_1_is"] for k in key.values()} == {"a", "b"}
    assert {k["ai_pick"] for k in key.values()} == {"1", "2"}
    for row in sample:  # answer_1 is response_a exactly when the key says so
        assert row["answer_1"].startswith("answer A") == (key[row["audit_id"]]["answer_1_is"] == "a")
        assert row["principle_text"] == PRINCIPLES[row["principle"]]
    assert (tmp_path / "all" / "INSTRUCTIONS.md").read_text().count("verdict") >= 1


def test_an_export_over_an_earlier_one_is_refused_unless_forced(inputs, tmp_path):
    export(inputs, tmp_path / "audit", n=12)
    key = (tmp_path / "audit" / "audit_key.jsonl").read_bytes()
    with pytest.raises(InputError, match=r"audit_key.jsonl exists .*reviewers may still be filling in.*--force"):
        export(inputs, tmp_path / "audit", n=12, seed=1)
    assert (tmp_path / "audit" / "audit_key.jsonl").read_bytes() == key  # the open sample can still be scored
    export_sample(inputs["labels"], inputs["prompts"], inputs["constitution"], tmp_path / "audit", 12, 1, force=True)
    assert (tmp_path / "audit" / "audit_key.jsonl").read_bytes() != key


@pytest.mark.slow
def test_round_trip_reports_agreement_kappa_and_logs_to_mlflow(inputs, tmp_path):
    done = audit_cli(tmp_path, "export", "--labels", str(inputs["labels"]), "--prompts", str(inputs["prompts"]),
                     "--constitution", str(inputs["constitution"]), "--out", "audit", "--n", "12", "--seed", "0")
    assert done.returncode == 0, done.stderr
    key = read_key(tmp_path / "audit" / "audit_key.jsonl")
    sample = read_sample(tmp_path / "audit")
    flip = {"1": "2", "2": "1"}
    # rows 0-7 agree with the AI, 8-9 disagree, 10-11 ties
    for i, row in enumerate(sample):
        ai = key[row["audit_id"]]["ai_pick"]
        row["verdict"] = ai if i < 8 else flip[ai] if i < 10 else "tie"
        row["note"] = "unsure" if i == 8 else ""
    write_verdicts(tmp_path / "reviewed.csv", sample)

    human = [r["verdict"] for r in sample[:10]]
    ai = [key[r["audit_id"]]["ai_pick"] for r in sample[:10]]
    expected_chance = (human.count("1") * ai.count("1") + human.count("2") * ai.count("2")) / 100
    expected_kappa = (0.8 - expected_chance) / (1 - expected_chance)
    by_principle = {p: [i < 8 for i, r in enumerate(sample[:10]) if r["principle"] == p] for p in PRINCIPLES}

    done = audit_cli(tmp_path, "import", "--verdicts", "reviewed.csv", "--key", "audit/audit_key.jsonl",
                     "--json", "--out", "report.json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == json.loads((tmp_path / "report.json").read_text())
    assert (report["n"], report["human_ties"], report["n_reviewed"]) == (10, 2, 12)
    assert report["agreement"] == pytest.approx(0.8)
    assert report["cohens_kappa"] == pytest.approx(expected_kappa)
    for principle, agrees in by_principle.items():
        assert report["by_principle"][principle]["agreement"] == pytest.approx(sum(agrees) / len(agrees))
    assert {d["audit_id"] for d in report["disagreements"]} == {sample[8]["audit_id"], sample[9]["audit_id"]}
    assert {d["note"] for d in report["disagreements"]} == {"unsure", ""}

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(report["mlflow_run_id"])
    assert run.data.metrics["audit.agreement"] == pytest.approx(0.8)
    assert run.data.metrics["audit.kappa"] == pytest.approx(expected_kappa)
    assert run.data.metrics["audit.n"] == 10
    assert {a.path for a in client.list_artifacts(run.info.run_id, "audit")} == {
        "audit/report.json", "audit/disagreements.csv", "audit/agreement.png"}


def test_score_counts_unreviewed_and_ai_ties(inputs, tmp_path):
    export(inputs, tmp_path / "a", n=4)
    key = read_key(tmp_path / "a" / "audit_key.jsonl")
    first, second = list(key)[:2]
    key[second]["ai_pick"] = "tie"  # prob_a exactly 0.5: the AI picked neither
    verdicts = [{"audit_id": first, "verdict": key[first]["ai_pick"], "note": ""},
                {"audit_id": second, "verdict": "1", "note": ""}]
    report = score_verdicts(verdicts, key)
    assert (report["n"], report["ai_ties"], report["n_unreviewed"], report["agreement"]) == (1, 1, 2, 1.0)
    assert report["cohens_kappa"] is None  # one label on each side: undefined, not a number


@pytest.mark.parametrize("fault, named", [
    ("missing", "missing verdict: line 5 ("),
    ("unknown", "unknown audit_id: line 7 (au-bogus)"),
    ("duplicate", "on lines 5, 27"),
    ("invalid", "invalid verdict"),
])
def test_bad_verdict_files_name_the_rows(inputs, tmp_path, fault, named):
    export(inputs, tmp_path / "audit", n=12)
    sample = read_sample(tmp_path / "audit")
    for row in sample:
        row["verdict"] = "1"
    # every answer_2 has two lines, and the first note too: records start on lines 2, 5, 7, 9, ...
    sample[0]["note"] = "two\nlines"
    if fault == "missing":
        sample[1]["verdict"] = ""
    elif fault == "unknown":
        sample[2]["audit_id"] = "au-bogus"
    elif fault == "duplicate":
        sample.append(dict(sample[1]))  # the 13th record: line 5 + 2 * 11
    else:
        sample[3]["verdict"] = "answer 2"
    write_verdicts(tmp_path / "reviewed.csv", sample)
    done = audit_cli(tmp_path, "import", "--verdicts", "reviewed.csv", "--key", "audit/audit_key.jsonl")
    assert done.returncode != 0
    message = " ".join(done.stderr.split())
    assert named in message and "Traceback" not in done.stderr
    if fault != "unknown":
        assert sample[3 if fault == "invalid" else 1]["audit_id"] in message


def test_jsonl_verdicts_are_read_and_checked(inputs, tmp_path):
    export(inputs, tmp_path / "audit", n=12)
    key = read_key(tmp_path / "audit" / "audit_key.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "audit" / "audit_sample.jsonl").read_text().splitlines()]
    for row in rows:
        row["verdict"] = int(key[row["audit_id"]]["ai_pick"])  # a number, as a JSON tool may write it
    path = tmp_path / "reviewed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert score_verdicts(read_verdicts(path, key), key)["agreement"] == 1.0
    rows[5]["verdict"] = None
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=rf"missing verdict: line 6 \({rows[5]['audit_id']}\)"):
        read_verdicts(path, key)
