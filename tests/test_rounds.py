"""Recurring retraining on a real MLflow registry (SQLite file): where a round starts, which prompts it trains on,
sign-off before promotion (`rlaif approve`), and the history of versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, register_test_model, rlaif

from rlaif.config import PromotionGates
from rlaif.data.io import read_prompts, write_jsonl
from rlaif.errors import ConfigError, InputError
from rlaif.lifecycle.promotion import Decision, apply, decide
from rlaif.lifecycle.rounds import BUILD, read_all_prompts, resolve_start, round_prompts

PASSING = {"win_rate": 0.6, "harmless_rate": 0.8, "over_refusal_rate": 0.1, "worst_slice_delta": -0.05,
           "label_gate_passed": True, "reward_hacking": False}
FAILING = {**PASSING, "harmless_rate": 0.2}


# --------------------------------------------------------------------------- prompt drops

def _drop(path: Path, rows) -> Path:
    write_jsonl(path, [r.model_copy(update={"id": f"{path.stem}-{i}"}) for i, r in enumerate(rows)])
    return path


def test_a_round_trains_on_the_newest_drop_plus_a_seeded_replay(tmp_path: Path):
    base = read_prompts(ROOT / "data/prompts/train.jsonl")
    shutil.copy(ROOT / "data/prompts/train.jsonl", tmp_path / "train.jsonl")
    drops = tmp_path / "drops"
    assert round_prompts(tmp_path / "train.jsonl", drops, 1.0, 0)[0] == base  # no drops: every training prompt
    _drop(drops / "2026-12-07.jsonl", base[:30])
    _drop(drops / "2026-12-14.jsonl", base[30:50])
    rows, sources = round_prompts(tmp_path / "train.jsonl", drops, 1.5, 0)
    newest = [r.id for r in read_prompts(drops / "2026-12-14.jsonl")]
    assert [r.id for r in rows[:20]] == newest  # the newest drop, whole, first
    replayed = rows[20:]
    assert len(replayed) == 30 == sources["replayed"] and sources["new"] == 20
    earlier = {r.id for r in base} | {r.id for r in read_prompts(drops / "2026-12-07.jsonl")}
    assert {r.id for r in replayed} <= earlier and len({r.id for r in replayed}) == 30
    again, _ = round_prompts(tmp_path / "train.jsonl", drops, 1.5, 0)
    other, _ = round_prompts(tmp_path / "train.jsonl", drops, 1.5, 1)
    assert again == rows and [r.id for r in other[20:]] != [r.id for r in replayed]


def test_bad_drops_name_the_file_line_and_problem(tmp_path: Path):
    base = read_prompts(ROOT / "data/prompts/train.jsonl")
    held_out = ROOT / "data/prompts/eval.jsonl"
    drops = tmp_path / "drops"
    write_jsonl(drops / "a.jsonl", base[:3])  # ids that train.jsonl already uses
    with pytest.raises(InputError, match=rf"a.jsonl:1: prompt id '{base[0].id}' is already used in"):
        read_all_prompts(ROOT / "data/prompts/train.jsonl", drops, held_out)
    evaluation = read_prompts(held_out)[0]
    write_jsonl(drops / "a.jsonl", [evaluation.model_copy(update={"id": "new-1"})])
    with pytest.raises(InputError, match=rf"a.jsonl:1: template '{evaluation.template}' is a held-out evaluation"):
        read_all_prompts(ROOT / "data/prompts/train.jsonl", drops, held_out)
    (drops / "a.jsonl").write_text('{"id": "x", "prompt": "hi", "expected": "maybe"}\n')
    with pytest.raises(InputError, match=r"a.jsonl:1: .*expected"):
        read_all_prompts(ROOT / "data/prompts/train.jsonl", drops, held_out)


# --------------------------------------------------------------------------- where a round starts

def test_the_start_resolves_to_one_version_or_the_declared_fallback(tracking: str, tmp_path: Path):
    import mlflow

    mlflow.set_tracking_uri(tracking)
    champion = "models:/policy-under-test@champion"
    assert resolve_start(champion, BUILD).source is None  # the first round: no such model yet, build
    assert resolve_start(champion, "some-org/some-model").source == "some-org/some-model"
    with pytest.raises(ConfigError, match=r"bootstrap.base_model 'models:/policy-under-test@champion': alias "
                                          r"'champion' holds no version.*bootstrap.fallback is null"):
        resolve_start(champion, None)
    first = register_test_model("policy-under-test", tmp_path / "m1")
    with pytest.raises(ConfigError, match="bootstrap.base_model 'models:/policy-under-test/9': no such model version"):
        resolve_start("models:/policy-under-test/9", BUILD)  # a pinned version never falls back
    apply(decide(PromotionGates(), PASSING), {"name": "policy-under-test", "version": first}, "run-1", True)
    assert resolve_start(champion, BUILD).source == f"models:/policy-under-test/{first}"
    assert resolve_start("models:/policy-under-test/1", None).version == "1"
    assert resolve_start("some-org/some-model", None).source == "some-org/some-model"  # not a registry URI
    with pytest.raises(ConfigError, match="expected models:/NAME@ALIAS"):
        resolve_start("models:/a/b/c", BUILD)


@pytest.mark.slow
def test_rlaif_check_names_the_key_of_a_start_that_does_not_exist(project: Path):
    result = rlaif(project, "check", "--set", "bootstrap.base_model=models:/rlaif-policy/7")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "bootstrap.base_model 'models:/rlaif-policy/7': no such model version" in result.stderr
    missing_alias = rlaif(project, "check", "--set", "bootstrap.base_model=models:/rlaif-policy@champion",
                          "--set", "bootstrap.fallback=null")
    assert missing_alias.returncode == 2 and "bootstrap.fallback is null" in missing_alias.stderr
    built = rlaif(project, "configure", "--set", "bootstrap.base_model=models:/rlaif-policy@champion")
    assert built.returncode == 0, built.stderr
    assert "fallback build" in built.stdout
    import yaml

    assert yaml.safe_load((project / "params/run.yaml").read_text())["bootstrap"]["resolved_base_model"] is None


# --------------------------------------------------------------------------- sign-off

def _evaluated(name: str, tmp_path: Path, evidence: dict, folder: str, metrics: dict | None = None) -> str:
    """A registered version with the decision evaluate would record under `approval: required`."""
    import mlflow

    version = register_test_model(name, tmp_path / folder, tags={"rlaif.round": "1", "rlaif.parent": "bootstrap (built)",
                                                        "rlaif.parent_version": "none"})
    with mlflow.start_run(run_name="evaluate") as run:
        mlflow.log_metrics(metrics or {})
    apply(decide(PromotionGates(), evidence), {"name": name, "version": version}, run.info.run_id, True, "required")
    return version


@pytest.mark.slow
def test_sign_off_moves_champion_only_on_approval_and_is_refused_twice(tracking: str, tmp_path: Path):
    import mlflow

    mlflow.set_tracking_uri(tracking)
    client = mlflow.MlflowClient(tracking_uri=tracking)
    failed = _evaluated("rlaif-policy", tmp_path, FAILING, "m0")
    refused = rlaif(tmp_path, "approve", f"models:/rlaif-policy/{failed}", "--reviewer", "ana", "--reason", "ok",
                    tracking_uri=tracking)
    assert refused.returncode == 2 and "not a challenger awaiting approval: it failed the gates (harmless_rate)" \
        in refused.stderr, refused.stderr

    first = _evaluated("rlaif-policy", tmp_path, PASSING, "m1")
    tags = client.get_model_version("rlaif-policy", first).tags
    assert tags["promotion.decision"] == Decision.AWAITING
    assert "champion" not in client.get_model_version("rlaif-policy", first).aliases  # gates passed, no sign-off
    approved = rlaif(tmp_path, "approve", "models:/rlaif-policy@challenger", "--reviewer", "ana",
                     "--reason", "reviewed the report", tracking_uri=tracking)
    assert approved.returncode == 0, approved.stderr
    assert f"champion is now models:/rlaif-policy/{first}" in approved.stdout
    assert str(client.get_model_version_by_alias("rlaif-policy", "champion").version) == first
    tags = client.get_model_version("rlaif-policy", first).tags
    assert (tags["approval.status"], tags["approval.reviewer"], tags["approval.reason"], tags["approval.via"]) == \
        ("approved", "ana", "reviewed the report", "cli")
    assert tags["approval.at"].startswith("20") and tags["approval.report"].endswith("run.html")
    assert tags["promotion.decision"] == "promote"
    twice = rlaif(tmp_path, "approve", f"models:/rlaif-policy/{first}", "--reviewer", "bo", "--reason", "again",
                  tracking_uri=tracking)
    assert twice.returncode == 2 and "was already approved by ana" in twice.stderr, twice.stderr

    second = _evaluated("rlaif-policy", tmp_path, PASSING, "m2")
    rejected = rlaif(tmp_path, "approve", f"models:/rlaif-policy/{second}", "--reviewer", "bo", "--reason",
                     "too many refusals in the examples", "--reject", tracking_uri=tracking)
    assert rejected.returncode == 0, rejected.stderr
    assert str(client.get_model_version_by_alias("rlaif-policy", "champion").version) == first
    version = client.get_model_version("rlaif-policy", second)
    assert "challenger" in version.aliases and version.tags["approval.status"] == "rejected"
    no_reason = rlaif(tmp_path, "approve", f"models:/rlaif-policy/{second}", "--reviewer", "bo", "--reason", " ",
                      tracking_uri=tracking)
    assert no_reason.returncode == 2 and "needs a reviewer and a reason" in no_reason.stderr
    unknown = rlaif(tmp_path, "approve", "models:/rlaif-policy/42", "--reviewer", "bo", "--reason", "x",
                    tracking_uri=tracking)
    assert unknown.returncode == 2 and "does not exist" in unknown.stderr

    superseded = _evaluated("rlaif-policy", tmp_path, PASSING, "m3")
    newer = _evaluated("rlaif-policy", tmp_path, PASSING, "m4")  # a later round's challenger, also awaiting
    stale = rlaif(tmp_path, "approve", f"models:/rlaif-policy/{superseded}", "--reviewer", "ana", "--reason", "ok",
                  tracking_uri=tracking)
    assert stale.returncode == 2 and f"is not the challenger any more: version {newer} is" in stale.stderr, stale.stderr
    assert str(client.get_model_version_by_alias("rlaif-policy", "champion").version) == first


@pytest.mark.slow
def test_history_lists_every_version_with_its_evaluation(tracking: str, tmp_path: Path):
    import mlflow

    from rlaif.lifecycle.history import policy_history

    mlflow.set_tracking_uri(tracking)
    figures = {"candidate/correct_rate": 0.7, "delta/correct_rate": 0.1, "candidate/unsafe_compliance_rate": 0.2,
               "delta/unsafe_compliance_rate": -0.25, "candidate/needless_refusal_rate": 0.1,
               "delta/needless_refusal_rate": -0.1, "candidate/incoherent_rate": 0.06, "delta/incoherent_rate": 0.01,
               "win_rate": 0.58}
    _evaluated("rlaif-policy", tmp_path, PASSING, "m1", figures)
    _evaluated("rlaif-policy", tmp_path, FAILING, "m2", {**figures, "candidate/correct_rate": 0.64})
    rows = policy_history("rlaif-policy")
    assert [r["version"] for r in rows] == ["start", "v1", "v2"]
    assert rows[0]["behaves_as_expected"] == pytest.approx(0.6) and rows[0]["unsafe_compliance"] == pytest.approx(0.45)
    assert rows[1]["behaves_as_expected"] == 0.7 and rows[1]["win_rate_vs_start"] == 0.58
    assert rows[1]["decision"] == Decision.AWAITING and rows[2]["decision"] == Decision.KEEP
    shown = rlaif(tmp_path, "history", "--plot", "history.png", tracking_uri=tracking)
    assert shown.returncode == 0, shown.stderr
    assert "v2" in shown.stdout and "64.0%" in shown.stdout and "60.0%" in shown.stdout
    assert (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"
    as_json = json.loads(rlaif(tmp_path, "history", "--json", tracking_uri=tracking).stdout)
    assert [r["version"] for r in as_json] == ["start", "v1", "v2"]


def test_a_sign_off_that_times_out_leaves_the_challenger_and_keeps_a_decision_made_meanwhile(tracking: str,
                                                                                            tmp_path: Path):
    import mlflow

    from rlaif.lifecycle.promotion import approve, record_timeout

    client = mlflow.MlflowClient(tracking_uri=tracking)
    waiting = _evaluated("rlaif-policy", tmp_path, PASSING, "m1")
    assert record_timeout("rlaif-policy", waiting, 30)["status"] == "timed out"
    version = client.get_model_version("rlaif-policy", waiting)
    assert version.tags["approval.status"] == "timed out after 30 s" and "champion" not in version.aliases
    late = approve(f"models:/rlaif-policy/{waiting}", "ana", "late but fine", approved=True, via="cli")
    assert late["champion_moved"]  # a timed-out challenger can still be signed off
    kept = record_timeout("rlaif-policy", waiting, 30)  # a paused run that timed out after that sign-off
    assert (kept["status"], kept["reviewer"], kept["champion_moved"]) == ("approved", "ana", True)
